//! [`BufferPool`]: reusable per-call buffers shared by every call of an engine — a lock-free bounded
//! queue, so taking and returning a buffer never waits, and a warm call allocates nothing.

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicUsize, Ordering};

use crossbeam_queue::ArrayQueue;

use crate::error::Result;

/// A buffer the pool can lend out again.
pub trait Reusable: Default + Send {
    /// Make the buffer ready for a call over `nodes` nodes (sizes are reserved fallibly).
    fn prepare(&mut self, nodes: usize) -> Result<()>;
    /// Restore the between-uses invariant after a call that returned normally.
    fn recycle(&mut self);
    /// Approximate heap bytes held.
    fn bytes(&self) -> usize;
}

/// A pool of buffers. A buffer that was in use when a panic unwound is dropped rather than
/// returned, so a half-written buffer never serves another call.
#[derive(Debug)]
pub struct BufferPool<T> {
    /// Boxed, so lending and returning move a pointer rather than the buffer's fields.
    idle: ArrayQueue<Box<T>>,
    in_use: AtomicUsize,
    capacity: AtomicUsize,
}

impl<T: Reusable> BufferPool<T> {
    /// A pool that keeps at most `max_idle` idle buffers.
    pub fn new(max_idle: usize) -> Self {
        BufferPool {
            idle: ArrayQueue::new(max_idle.max(1)),
            in_use: AtomicUsize::new(0),
            capacity: AtomicUsize::new(0),
        }
    }

    /// Buffers currently lent out.
    pub fn in_use(&self) -> usize {
        self.in_use.load(Ordering::Relaxed)
    }

    /// Buffers in existence (lent out plus idle).
    pub fn capacity(&self) -> usize {
        self.capacity.load(Ordering::Relaxed)
    }

    /// Approximate heap bytes held by the pool's buffers (idle and lent), from one buffer's size.
    pub fn approximate_bytes(&self) -> usize {
        match self.idle.pop() {
            Some(buffer) => {
                let bytes = buffer.bytes() * self.capacity();
                self.return_idle(buffer);
                bytes
            }
            None => 0,
        }
    }

    /// Lend a clean buffer prepared for `nodes` nodes; an error when it cannot be prepared (the
    /// buffer is freed).
    pub fn checkout(&self, nodes: usize) -> Result<Lease<'_, T>> {
        let buffer = self.idle.pop().unwrap_or_else(|| {
            self.capacity.fetch_add(1, Ordering::Relaxed);
            Box::default()
        });
        self.in_use.fetch_add(1, Ordering::Relaxed);
        let mut lease = Lease { pool: self, buffer: Some(buffer) };
        if let Err(e) = lease.prepare(nodes) {
            lease.discard();
            return Err(e);
        }
        Ok(lease)
    }

    fn give_back(&self, mut buffer: Box<T>) {
        self.in_use.fetch_sub(1, Ordering::Relaxed);
        if std::thread::panicking() {
            self.capacity.fetch_sub(1, Ordering::Relaxed);
        } else {
            buffer.recycle();
            self.return_idle(buffer);
        }
    }

    /// Keep `buffer` for reuse, or free it when the pool already holds its maximum.
    fn return_idle(&self, buffer: Box<T>) {
        if self.idle.push(buffer).is_err() {
            self.capacity.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// A buffer lent by a [`BufferPool`]; returned when dropped.
pub struct Lease<'a, T: Reusable> {
    pool: &'a BufferPool<T>,
    buffer: Option<Box<T>>,
}

impl<T: Reusable> Lease<'_, T> {
    /// Drop the buffer instead of returning it.
    pub fn discard(mut self) {
        if self.buffer.take().is_some() {
            self.pool.in_use.fetch_sub(1, Ordering::Relaxed);
            self.pool.capacity.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl<T: Reusable> Deref for Lease<'_, T> {
    type Target = T;
    fn deref(&self) -> &T {
        self.buffer.as_ref().expect("a buffer until drop")
    }
}

impl<T: Reusable> DerefMut for Lease<'_, T> {
    fn deref_mut(&mut self) -> &mut T {
        self.buffer.as_mut().expect("a buffer until drop")
    }
}

impl<T: Reusable> Drop for Lease<'_, T> {
    fn drop(&mut self) {
        if let Some(buffer) = self.buffer.take() {
            self.pool.give_back(buffer);
        }
    }
}

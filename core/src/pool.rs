//! [`BufferPool`]: reusable per-call buffers shared by every call of an engine — a lock-free bounded
//! queue, so taking and returning a buffer never waits, and a warm call allocates nothing.

use std::ops::{Deref, DerefMut};
use std::sync::atomic::{AtomicPtr, AtomicUsize, Ordering};

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
    /// The buffer returned last (null when none): lent first, so a call reuses the buffer whose
    /// memory is hottest in cache — a FIFO queue alone would rotate through every idle buffer, and
    /// after a parallel batch a one-by-one caller would get a cold buffer on every call.
    hot: AtomicPtr<T>,
    /// Boxed, so lending and returning move a pointer rather than the buffer's fields.
    idle: ArrayQueue<Box<T>>,
    in_use: AtomicUsize,
    capacity: AtomicUsize,
}

impl<T: Reusable> BufferPool<T> {
    /// A pool that keeps at most `max_idle` idle buffers in its queue, plus the hot one.
    pub fn new(max_idle: usize) -> Self {
        BufferPool {
            hot: AtomicPtr::new(std::ptr::null_mut()),
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
        match self.take_idle() {
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
        let buffer = self.take_idle().unwrap_or_else(|| {
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

    /// An idle buffer: the hot one if there is one, else the queue's oldest.
    fn take_idle(&self) -> Option<Box<T>> {
        let hot = self.hot.swap(std::ptr::null_mut(), Ordering::Acquire);
        if hot.is_null() {
            return self.idle.pop();
        }
        // SAFETY: a non-null `hot` came from `Box::into_raw` in `return_idle`, and the swap gave this
        // thread the only copy of the pointer.
        Some(unsafe { Box::from_raw(hot) })
    }

    /// Keep `buffer` for reuse as the hot one; the one it displaces goes to the queue, or is freed
    /// when the queue already holds its maximum.
    fn return_idle(&self, buffer: Box<T>) {
        let displaced = self.hot.swap(Box::into_raw(buffer), Ordering::AcqRel);
        if displaced.is_null() {
            return;
        }
        // SAFETY: as in `take_idle`: the swap handed this thread the only copy of the pointer.
        let displaced = unsafe { Box::from_raw(displaced) };
        if self.idle.push(displaced).is_err() {
            self.capacity.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

impl<T> Drop for BufferPool<T> {
    fn drop(&mut self) {
        let hot = std::mem::replace(self.hot.get_mut(), std::ptr::null_mut());
        if !hot.is_null() {
            // SAFETY: as in `take_idle`; `&mut self` means no other thread holds the pool.
            drop(unsafe { Box::from_raw(hot) });
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

#[cfg(test)]
mod tests {
    use super::{BufferPool, Reusable};

    #[derive(Default)]
    struct Tagged(u32);

    impl Reusable for Tagged {
        fn prepare(&mut self, _nodes: usize) -> crate::Result<()> {
            Ok(())
        }
        fn recycle(&mut self) {}
        fn bytes(&self) -> usize {
            0
        }
    }

    #[test]
    fn the_buffer_returned_last_is_lent_first_and_none_is_lost() {
        let pool = BufferPool::<Tagged>::new(4);
        let mut a = pool.checkout(0).unwrap();
        let mut b = pool.checkout(0).unwrap();
        a.0 = 1;
        b.0 = 2;
        drop(a);
        drop(b);
        assert_eq!(pool.checkout(0).unwrap().0, 2, "the hottest buffer first");
        // One after another, a caller keeps getting the same buffer.
        for _ in 0..5 {
            assert_eq!(pool.checkout(0).unwrap().0, 2);
        }
        let (x, y, z) = (pool.checkout(0).unwrap(), pool.checkout(0).unwrap(), pool.checkout(0).unwrap());
        assert_eq!((x.0, y.0, z.0), (2, 1, 0), "the hot one, the queued one, a new one");
        assert_eq!(pool.capacity(), 3);
        drop((x, y, z));
        assert_eq!((pool.in_use(), pool.capacity()), (0, 3));
    }
}

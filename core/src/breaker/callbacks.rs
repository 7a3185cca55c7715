//! Delivery of breaker transition events to host callbacks: in order, one at a time, from one
//! dispatcher thread (`axonal-breaker-events`), never while a breaker lock is held, so a callback may
//! call back into the engine. A panicking callback is contained and counted.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, Sender, channel};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::{JoinHandle, ThreadId};

use super::TransitionEvent;
use crate::telemetry::Counter;

/// A transition callback.
pub type TransitionCallback = Box<dyn Fn(&TransitionEvent) + Send>;

enum Message {
    Event(TransitionEvent),
    /// Reply once every event queued before this one has been delivered.
    Flush(Sender<()>),
    Stop,
}

/// Queues events for the dispatcher (held by the breaker).
#[derive(Debug, Clone)]
pub struct EventSender(Sender<Message>);

impl EventSender {
    pub(super) fn send(&self, event: TransitionEvent) {
        // The dispatcher outlives every sender but the engine's last moments; a closed channel
        // means nobody is listening any more.
        let _ = self.0.send(Message::Event(event));
    }
}

impl std::fmt::Debug for Message {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Message::Event(e) => write!(f, "Event({e:?})"),
            Message::Flush(_) => write!(f, "Flush"),
            Message::Stop => write!(f, "Stop"),
        }
    }
}

struct Slot {
    id: u64,
    callback: Mutex<Option<TransitionCallback>>,
    /// Set when the callback unregisters itself from inside its own call.
    removed: std::sync::atomic::AtomicBool,
}

/// Registered callbacks, shared by the engine (register/unregister) and the dispatcher thread.
pub struct Callbacks {
    slots: Mutex<Vec<Arc<Slot>>>,
    next_id: AtomicU64,
    dispatcher: OnceLock<ThreadId>,
    failures: Counter,
    delivered: AtomicU64,
}

impl std::fmt::Debug for Callbacks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Callbacks").field("next_id", &self.next_id).finish_non_exhaustive()
    }
}

impl Callbacks {
    /// Register `callback`; returns its id.
    pub fn register(&self, callback: TransitionCallback) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let slot = Slot { id, callback: Mutex::new(Some(callback)), removed: Default::default() };
        self.slots.lock().unwrap_or_else(|p| p.into_inner()).push(Arc::new(slot));
        id
    }

    /// Unregister: no call starts after this returns, and the callback is dropped exactly once (after
    /// any call in progress — unless called from that very call, which drops it when it returns).
    /// Returns whether `id` was registered.
    pub fn unregister(&self, id: u64) -> bool {
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            let Some(position) = slots.iter().position(|s| s.id == id) else { return false };
            slots.remove(position)
        };
        if self.dispatcher.get() == Some(&std::thread::current().id()) {
            match slot.callback.try_lock() {
                Ok(mut callback) => drop(callback.take()),
                Err(_) => slot.removed.store(true, Ordering::Release),
            }
        } else {
            drop(slot.callback.lock().unwrap_or_else(|p| p.into_inner()).take());
        }
        true
    }

    /// Callbacks that panicked (or, through a binding, raised).
    pub fn failures(&self) -> u64 {
        self.failures.total()
    }

    /// Events delivered to the dispatcher so far.
    pub fn delivered(&self) -> u64 {
        self.delivered.load(Ordering::Acquire)
    }

    fn deliver(&self, event: &TransitionEvent) {
        let slots: Vec<Arc<Slot>> = self.slots.lock().unwrap_or_else(|p| p.into_inner()).clone();
        for slot in slots {
            let mut callback = slot.callback.lock().unwrap_or_else(|p| p.into_inner());
            if let Some(f) = callback.as_ref()
                && catch_unwind(AssertUnwindSafe(|| f(event))).is_err()
            {
                self.failures.increment();
                tracing::error!(callback = slot.id, "breaker transition callback panicked");
            }
            if slot.removed.load(Ordering::Acquire) {
                drop(callback.take());
            }
        }
        self.delivered.fetch_add(1, Ordering::Release);
    }

    /// Drop every callback (engine shutdown). On the dispatcher thread itself — a callback dropped
    /// the engine — the callback in progress is marked and dropped when it returns.
    fn clear(&self) {
        let slots = std::mem::take(&mut *self.slots.lock().unwrap_or_else(|p| p.into_inner()));
        let on_dispatcher = self.dispatcher.get() == Some(&std::thread::current().id());
        for slot in slots {
            if on_dispatcher {
                match slot.callback.try_lock() {
                    Ok(mut callback) => drop(callback.take()),
                    Err(_) => slot.removed.store(true, Ordering::Release),
                }
            } else {
                drop(slot.callback.lock().unwrap_or_else(|p| p.into_inner()).take());
            }
        }
    }
}

/// The dispatcher thread; stopping it delivers what is queued, then drops every callback.
pub struct Dispatcher {
    sender: Sender<Message>,
    callbacks: Arc<Callbacks>,
    thread: Option<JoinHandle<()>>,
}

impl Dispatcher {
    /// Start the dispatcher; `failures` counts panicking callbacks.
    pub fn start(failures: Counter) -> std::io::Result<Dispatcher> {
        let (sender, receiver) = channel();
        let callbacks = Arc::new(Callbacks {
            slots: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(0),
            dispatcher: OnceLock::new(),
            failures,
            delivered: AtomicU64::new(0),
        });
        let shared = Arc::clone(&callbacks);
        let thread = std::thread::Builder::new()
            .name("axonal-breaker-events".into())
            .spawn(move || run(&shared, &receiver))?;
        let _ = callbacks.dispatcher.set(thread.thread().id());
        Ok(Dispatcher { sender, callbacks, thread: Some(thread) })
    }

    /// A sender for the breaker.
    pub fn sender(&self) -> EventSender {
        EventSender(self.sender.clone())
    }

    /// The callback registry.
    pub fn callbacks(&self) -> &Arc<Callbacks> {
        &self.callbacks
    }

    /// Block until every event queued so far has been delivered (returns at once when called from
    /// the dispatcher thread itself, which cannot wait for itself).
    pub fn flush(&self) {
        if self.callbacks.dispatcher.get() == Some(&std::thread::current().id()) {
            return;
        }
        let (done, wait) = channel();
        if self.sender.send(Message::Flush(done)).is_ok() {
            let _ = wait.recv();
        }
    }
}

fn run(callbacks: &Callbacks, receiver: &Receiver<Message>) {
    while let Ok(message) = receiver.recv() {
        match message {
            Message::Event(event) => callbacks.deliver(&event),
            Message::Flush(done) => {
                let _ = done.send(());
            }
            Message::Stop => break,
        }
    }
}

impl Dispatcher {
    /// Deliver what is queued, stop the thread, and drop every callback (running `userdata_free`s).
    /// Idempotent; the engine calls it first thing when dropped, while everything a callback may
    /// call back into is still alive.
    pub fn shutdown(&mut self) {
        let _ = self.sender.send(Message::Stop);
        if let Some(thread) = self.thread.take()
            && thread.thread().id() != std::thread::current().id()
        {
            let _ = thread.join();
        }
        self.callbacks.clear();
    }
}

impl Drop for Dispatcher {
    fn drop(&mut self) {
        self.shutdown();
    }
}

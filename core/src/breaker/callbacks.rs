//! Delivery of breaker transition events to host callbacks (docs/spec.md §7): in order, one at a
//! time, never while an engine lock is held, so a callback may call back into the engine. A callback
//! that panics or reports a failure is contained and counted.
//!
//! Two threads do the work. The coordinator (`axonal-breaker-events`) takes events off the queue and
//! hands each call to the caller thread (`axonal-breaker-callback`), waiting for it at most
//! `callbacks.timeout_ms`. A call that overruns is abandoned: it is counted and logged once, its
//! thread is left to finish on its own (detached), and a fresh caller takes the next call. So a hung
//! callback delays later events by the timeout once, and shutdown — `close()`, `axonal_engine_free`,
//! interpreter exit — never waits longer than the timeout for it.

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, RecvTimeoutError, Sender, channel};
use std::sync::{Arc, Condvar, Mutex, MutexGuard};
use std::thread::{JoinHandle, ThreadId};
use std::time::{Duration, Instant};

use super::TransitionEvent;
use crate::telemetry::Counter;

/// A transition callback that cannot fail (a panic is still contained and counted).
pub type TransitionCallback = Box<dyn Fn(&TransitionEvent) + Send>;

/// A transition callback that reports failure (a binding's callback that raised, say) without
/// panicking; `Err` is counted like a panic.
pub type FallibleTransitionCallback = Box<dyn Fn(&TransitionEvent) -> Result<(), String> + Send>;

/// The default `callbacks.timeout_ms`.
pub const DEFAULT_TIMEOUT: Duration = Duration::from_secs(5);

thread_local! {
    /// Set on caller threads: a callback calling back into the dispatcher must not wait for itself.
    static ON_CALLER: Cell<bool> = const { Cell::new(false) };
}

fn on_caller_thread() -> bool {
    ON_CALLER.with(Cell::get)
}

enum Message {
    Event(TransitionEvent),
    /// Reply once every event queued before this one has been delivered (or abandoned).
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

/// One registered callback. Its lock is only ever held for a few instructions — never across the
/// call itself — so unregistering never waits on a lock a callback holds.
struct Slot {
    id: u64,
    state: Mutex<SlotState>,
    /// Signalled when a call of this callback returns.
    returned: Condvar,
}

struct SlotState {
    /// Taken out while a call runs, put back after (or dropped, if the slot was removed meanwhile).
    callback: Option<FallibleTransitionCallback>,
    /// The thread running a call of this callback, and since when.
    in_call: Option<(ThreadId, Instant)>,
    removed: bool,
}

impl Slot {
    fn lock(&self) -> MutexGuard<'_, SlotState> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }
}

/// Registered callbacks, shared by the engine (register/unregister) and the dispatcher threads.
pub struct Callbacks {
    slots: Mutex<Vec<Arc<Slot>>>,
    next_id: AtomicU64,
    failures: Counter,
    timeouts: Counter,
    /// `callbacks.timeout_ms`, changeable at run time.
    timeout_ms: AtomicU64,
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
        self.register_fallible(Box::new(move |event| {
            callback(event);
            Ok(())
        }))
    }

    /// Register a callback that reports failure by returning `Err`; returns its id.
    pub fn register_fallible(&self, callback: FallibleTransitionCallback) -> u64 {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed) + 1;
        let state = SlotState { callback: Some(callback), in_call: None, removed: false };
        let slot = Slot { id, state: Mutex::new(state), returned: Condvar::new() };
        self.slots.lock().unwrap_or_else(|p| p.into_inner()).push(Arc::new(slot));
        id
    }

    /// Unregister: no call starts after this returns, and the callback is dropped exactly once —
    /// here, or when a call in progress returns. That call is waited for up to the callback timeout
    /// (counted from its start), never from inside itself, and not at all once it was abandoned.
    /// Returns whether `id` was registered.
    pub fn unregister(&self, id: u64) -> bool {
        let slot = {
            let mut slots = self.slots.lock().unwrap_or_else(|p| p.into_inner());
            let Some(position) = slots.iter().position(|s| s.id == id) else { return false };
            slots.remove(position)
        };
        self.retire(&slot, None);
        true
    }

    /// Mark `slot` removed and drop its callback once no call of it is running, waiting for a call
    /// in progress until its timeout or `deadline`, whichever is first.
    fn retire(&self, slot: &Slot, deadline: Option<Instant>) {
        let mut state = slot.lock();
        state.removed = true;
        loop {
            match state.in_call {
                None => {
                    let callback = state.callback.take();
                    drop(state);
                    drop(callback);
                    return;
                }
                // From inside its own call: dropped when the call returns.
                Some((thread, _)) if thread == std::thread::current().id() => return,
                Some((_, started)) => {
                    let mut until = started + self.timeout();
                    if let Some(deadline) = deadline {
                        until = until.min(deadline);
                    }
                    let now = Instant::now();
                    if now >= until {
                        return; // abandoned: its thread drops the callback when the call returns
                    }
                    state =
                        slot.returned.wait_timeout(state, until - now).unwrap_or_else(|p| p.into_inner()).0;
                }
            }
        }
    }

    /// Callbacks that panicked or reported failure.
    pub fn failures(&self) -> u64 {
        self.failures.total()
    }

    /// Calls abandoned because they overran `callbacks.timeout_ms`.
    pub fn timeouts(&self) -> u64 {
        self.timeouts.total()
    }

    /// Events delivered so far.
    pub fn delivered(&self) -> u64 {
        self.delivered.load(Ordering::Acquire)
    }

    /// The callback timeout in force.
    pub fn timeout(&self) -> Duration {
        Duration::from_millis(self.timeout_ms.load(Ordering::Relaxed))
    }

    /// Change the callback timeout (`callbacks.timeout_ms`).
    pub fn set_timeout(&self, timeout: Duration) {
        self.timeout_ms.store(timeout.as_millis().clamp(1, u64::MAX as u128) as u64, Ordering::Relaxed);
    }

    /// Run one call of `slot` on this (caller) thread, unless it is removed or still running
    /// elsewhere (an abandoned call: the event is skipped for it).
    fn call(&self, slot: &Slot, event: &TransitionEvent) {
        let callback = {
            let mut state = slot.lock();
            if state.removed {
                return;
            }
            if state.in_call.is_some() {
                tracing::warn!(
                    callback = slot.id,
                    "breaker transition callback still running: event skipped for it"
                );
                return;
            }
            let Some(callback) = state.callback.take() else { return };
            state.in_call = Some((std::thread::current().id(), Instant::now()));
            callback
        };
        let started = Instant::now();
        let outcome = catch_unwind(AssertUnwindSafe(|| callback(event)));
        match outcome {
            Ok(Ok(())) => {}
            Ok(Err(why)) => {
                self.failures.increment();
                tracing::debug!(callback = slot.id, reason = %why, "breaker transition callback failed");
            }
            Err(_) => {
                self.failures.increment();
                tracing::error!(callback = slot.id, "breaker transition callback panicked");
            }
        }
        let elapsed = started.elapsed();
        let mut state = slot.lock();
        state.in_call = None;
        let dropped = if state.removed {
            Some(callback)
        } else {
            state.callback = Some(callback);
            None
        };
        drop(state);
        slot.returned.notify_all();
        if elapsed > self.timeout() {
            tracing::info!(
                callback = slot.id,
                elapsed_ms = elapsed.as_millis() as u64,
                "an abandoned breaker transition callback returned"
            );
        }
        drop(dropped);
    }

    fn snapshot(&self) -> Vec<Arc<Slot>> {
        self.slots.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Drop every callback (engine shutdown), waiting for calls in progress until `deadline`.
    fn clear(&self, deadline: Instant) {
        let slots = std::mem::take(&mut *self.slots.lock().unwrap_or_else(|p| p.into_inner()));
        for slot in slots {
            self.retire(&slot, Some(deadline));
        }
    }
}

/// A call for the caller thread, and where to say it returned.
struct Job {
    slot: Arc<Slot>,
    event: Arc<TransitionEvent>,
}

/// The thread that runs callbacks, one call at a time.
struct Caller {
    jobs: Sender<Job>,
    returned: Receiver<()>,
    thread: JoinHandle<()>,
}

impl Caller {
    fn spawn(callbacks: &Arc<Callbacks>) -> std::io::Result<Caller> {
        let (jobs, inbox) = channel::<Job>();
        let (done, returned) = channel();
        let callbacks = Arc::clone(callbacks);
        let thread = std::thread::Builder::new().name("axonal-breaker-callback".into()).spawn(move || {
            ON_CALLER.with(|c| c.set(true));
            while let Ok(job) = inbox.recv() {
                callbacks.call(&job.slot, &job.event);
                if done.send(()).is_err() {
                    return; // abandoned: nobody waits for this thread any more
                }
            }
        })?;
        Ok(Caller { jobs, returned, thread })
    }
}

/// The coordinator: delivers each event to every callback in registration order.
struct Coordinator {
    callbacks: Arc<Callbacks>,
    caller: Option<Caller>,
    /// Set by `shutdown`: past it, calls are not waited for and queued events are dropped.
    deadline: Arc<Mutex<Option<Instant>>>,
}

impl Coordinator {
    fn run(mut self, inbox: Receiver<Message>) {
        while let Ok(message) = inbox.recv() {
            match message {
                Message::Event(event) => self.deliver(Arc::new(event)),
                Message::Flush(done) => {
                    let _ = done.send(());
                }
                Message::Stop => break,
            }
        }
        // An idle caller stops when its queue closes; it is joined. An abandoned one was detached.
        if let Some(caller) = self.caller.take() {
            drop(caller.jobs);
            let _ = caller.thread.join();
        }
    }

    fn deadline(&self) -> Option<Instant> {
        *self.deadline.lock().unwrap_or_else(|p| p.into_inner())
    }

    fn deliver(&mut self, event: Arc<TransitionEvent>) {
        for slot in self.callbacks.snapshot() {
            if self.deadline().is_some_and(|d| Instant::now() >= d) {
                tracing::warn!(event = ?event, "engine shutting down: breaker transition event not delivered");
                return;
            }
            self.call(slot, Arc::clone(&event));
        }
        self.callbacks.delivered.fetch_add(1, Ordering::Release);
    }

    /// Hand one call to the caller and wait for it, at most the timeout (or the shutdown deadline).
    fn call(&mut self, slot: Arc<Slot>, event: Arc<TransitionEvent>) {
        if self.caller.is_none() {
            match Caller::spawn(&self.callbacks) {
                Ok(caller) => self.caller = Some(caller),
                Err(e) => {
                    tracing::error!(error = %e, "cannot start a breaker callback thread: event not delivered");
                    return;
                }
            }
        }
        let Some(caller) = &self.caller else { return };
        let id = slot.id;
        if caller.jobs.send(Job { slot, event }).is_err() {
            self.caller = None; // the thread is gone; a fresh one takes the next call
            return;
        }
        let started = Instant::now();
        let mut until = started + self.callbacks.timeout();
        if let Some(deadline) = self.deadline() {
            until = until.min(deadline);
        }
        match caller.returned.recv_timeout(until.saturating_duration_since(Instant::now())) {
            Ok(()) => {}
            Err(RecvTimeoutError::Timeout) => {
                self.callbacks.timeouts.increment();
                tracing::warn!(
                    callback = id,
                    waited_ms = started.elapsed().as_millis() as u64,
                    "breaker transition callback did not return in time: abandoned; later events go to a fresh thread"
                );
                // Dropping the caller's channels detaches its thread: it exits when the call returns.
                self.caller = None;
            }
            Err(RecvTimeoutError::Disconnected) => self.caller = None,
        }
    }
}

/// The dispatcher's threads; stopping it delivers what is queued (within the callback timeout),
/// then drops every callback.
pub struct Dispatcher {
    sender: Sender<Message>,
    callbacks: Arc<Callbacks>,
    deadline: Arc<Mutex<Option<Instant>>>,
    thread: Option<JoinHandle<()>>,
}

impl Dispatcher {
    /// Start the dispatcher with the default timeout; `failures` counts failing callbacks.
    pub fn start(failures: Counter) -> std::io::Result<Dispatcher> {
        Dispatcher::with_timeout(failures, Counter::detached(), DEFAULT_TIMEOUT)
    }

    /// Start the dispatcher; `failures` counts failing callbacks, `timeouts` abandoned calls.
    pub fn with_timeout(
        failures: Counter,
        timeouts: Counter,
        timeout: Duration,
    ) -> std::io::Result<Dispatcher> {
        let (sender, receiver) = channel();
        let callbacks = Arc::new(Callbacks {
            slots: Mutex::new(Vec::new()),
            next_id: AtomicU64::new(0),
            failures,
            timeouts,
            timeout_ms: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
        });
        callbacks.set_timeout(timeout);
        let deadline = Arc::new(Mutex::new(None));
        let coordinator =
            Coordinator { callbacks: Arc::clone(&callbacks), caller: None, deadline: Arc::clone(&deadline) };
        let thread = std::thread::Builder::new()
            .name("axonal-breaker-events".into())
            .spawn(move || coordinator.run(receiver))?;
        Ok(Dispatcher { sender, callbacks, deadline, thread: Some(thread) })
    }

    /// A sender for the breaker.
    pub fn sender(&self) -> EventSender {
        EventSender(self.sender.clone())
    }

    /// The callback registry.
    pub fn callbacks(&self) -> &Arc<Callbacks> {
        &self.callbacks
    }

    /// Block until every event queued so far has been delivered or abandoned (returns at once when
    /// called from inside a callback, which cannot wait for itself).
    pub fn flush(&self) {
        if on_caller_thread() {
            return;
        }
        let (done, wait) = channel();
        if self.sender.send(Message::Flush(done)).is_ok() {
            let _ = wait.recv();
        }
    }

    /// Deliver what is queued, stop the threads, and drop every callback (running `userdata_free`s),
    /// all within one callback timeout: a callback still running then is abandoned. Idempotent; the
    /// engine calls it first thing when dropped, while everything a callback may call back into is
    /// still alive.
    pub fn shutdown(&mut self) {
        let deadline = Instant::now() + self.callbacks.timeout();
        {
            let mut slot = self.deadline.lock().unwrap_or_else(|p| p.into_inner());
            *slot = Some(slot.map_or(deadline, |d| d.min(deadline)));
        }
        let _ = self.sender.send(Message::Stop);
        if let Some(thread) = self.thread.take() {
            // From inside a callback (it dropped the engine) the coordinator may be waiting for this
            // very call: leave it to stop on its own once the call returns.
            if !on_caller_thread() {
                let _ = thread.join();
            }
        }
        self.callbacks.clear(deadline);
    }
}

impl Drop for Dispatcher {
    fn drop(&mut self) {
        self.shutdown();
    }
}

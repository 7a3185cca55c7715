//! [`Worker`]: a named background thread that runs a body repeatedly, sleeping as long as the body
//! asks between runs (or until [`Nudge::nudge`] wakes it early), and that is woken, stopped and
//! joined when dropped.

use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// What wakes a worker: a stop, or a nudge to run its body now.
#[derive(Debug, Default)]
struct Signal {
    stopped: bool,
    nudged: bool,
}

type Shared = Arc<(Mutex<Signal>, Condvar)>;

/// An owned, named, stoppable background loop.
pub(crate) struct Worker {
    signal: Shared,
    thread: Option<JoinHandle<()>>,
}

/// Wakes a worker to run its body now rather than at the end of its sleep.
#[derive(Clone)]
pub(crate) struct Nudge(Shared);

impl Nudge {
    pub(crate) fn nudge(&self) {
        let (lock, wake) = &*self.0;
        lock.lock().unwrap_or_else(|p| p.into_inner()).nudged = true;
        wake.notify_all();
    }
}

impl Worker {
    /// Start `name`, running `body` at once and then again after each sleep it returns. The body
    /// runs without the signal lock held, so dropping the worker waits at most for one run.
    pub(crate) fn spawn(
        name: &str,
        mut body: impl FnMut() -> Duration + Send + 'static,
    ) -> std::io::Result<Worker> {
        let signal: Shared = Arc::default();
        let shared = Arc::clone(&signal);
        let thread = std::thread::Builder::new().name(name.to_owned()).spawn(move || {
            let (lock, wake) = &*shared;
            loop {
                let sleep = body();
                let state = lock.lock().unwrap_or_else(|p| p.into_inner());
                // `_while` re-waits after a spurious wake-up, so the body never runs early unasked.
                let mut state = wake
                    .wait_timeout_while(state, sleep, |s| !s.stopped && !s.nudged)
                    .unwrap_or_else(|p| p.into_inner())
                    .0;
                if state.stopped {
                    return;
                }
                state.nudged = false;
            }
        })?;
        Ok(Worker { signal, thread: Some(thread) })
    }

    /// A handle that wakes this worker early.
    pub(crate) fn nudger(&self) -> Nudge {
        Nudge(Arc::clone(&self.signal))
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let (lock, wake) = &*self.signal;
        lock.lock().unwrap_or_else(|p| p.into_inner()).stopped = true;
        wake.notify_all();
        if let Some(thread) = self.thread.take()
            && thread.thread().id() != std::thread::current().id()
        {
            let _ = thread.join();
        }
    }
}

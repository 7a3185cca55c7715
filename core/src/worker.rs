//! [`Worker`]: a named background thread that runs a body repeatedly, sleeping as long as the body
//! asks between runs, and that is woken, stopped and joined when dropped.

use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

/// An owned, named, stoppable background loop.
pub(crate) struct Worker {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl Worker {
    /// Start `name`, running `body` at once and then again after each sleep it returns. The body
    /// runs without the stop lock held, so dropping the worker waits at most for one run.
    pub(crate) fn spawn(
        name: &str,
        mut body: impl FnMut() -> Duration + Send + 'static,
    ) -> std::io::Result<Worker> {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let signal = Arc::clone(&stop);
        let thread = std::thread::Builder::new().name(name.to_owned()).spawn(move || {
            let (lock, wake) = &*signal;
            loop {
                let sleep = body();
                let stopped = lock.lock().unwrap_or_else(|p| p.into_inner());
                if *stopped {
                    return;
                }
                // `_while` re-waits after a spurious wake-up, so the body never runs early.
                let stopped =
                    wake.wait_timeout_while(stopped, sleep, |s| !*s).unwrap_or_else(|p| p.into_inner()).0;
                if *stopped {
                    return;
                }
            }
        })?;
        Ok(Worker { stop, thread: Some(thread) })
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        let (lock, wake) = &*self.stop;
        *lock.lock().unwrap_or_else(|p| p.into_inner()) = true;
        wake.notify_all();
        if let Some(thread) = self.thread.take()
            && thread.thread().id() != std::thread::current().id()
        {
            let _ = thread.join();
        }
    }
}

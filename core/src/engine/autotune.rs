//! The `axonal-autotune` thread: runs a tuning step once per (backed-off) interval of the engine's
//! clock while the tuner is enabled.

use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use super::core::Core;
use crate::clock::SharedClock;

/// Longest sleep between looks at the clock (a manual clock, or a changed interval, is noticed).
const MAX_SLEEP: Duration = Duration::from_secs(1);

pub(super) struct AutotuneThread {
    stop: Arc<(Mutex<bool>, Condvar)>,
    thread: Option<JoinHandle<()>>,
}

impl AutotuneThread {
    pub(super) fn start(core: Arc<Core>, clock: SharedClock) -> std::io::Result<AutotuneThread> {
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let signal = Arc::clone(&stop);
        let thread = std::thread::Builder::new().name("axonal-autotune".into()).spawn(move || {
            let (lock, wake) = &*signal;
            core.last_autotune_step
                .store(clock.now().as_nanos() as u64, std::sync::atomic::Ordering::Relaxed);
            let mut stopped = lock.lock().unwrap_or_else(|p| p.into_inner());
            while !*stopped {
                let now = clock.now();
                // A full (backed-off) interval after the last step, whoever ran it.
                let last =
                    Duration::from_nanos(core.last_autotune_step.load(std::sync::atomic::Ordering::Relaxed));
                let next_due = last + core.autotune_interval();
                if now >= next_due {
                    drop(stopped);
                    if core.autotune_enabled.load(std::sync::atomic::Ordering::Relaxed) {
                        core.autotune_step();
                    } else {
                        core.last_autotune_step
                            .store(now.as_nanos() as u64, std::sync::atomic::Ordering::Relaxed);
                    }
                    stopped = lock.lock().unwrap_or_else(|p| p.into_inner());
                    continue;
                }
                let wait = next_due.saturating_sub(now).min(MAX_SLEEP);
                stopped = wake.wait_timeout(stopped, wait).unwrap_or_else(|p| p.into_inner()).0;
            }
        })?;
        Ok(AutotuneThread { stop, thread: Some(thread) })
    }
}

impl Drop for AutotuneThread {
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

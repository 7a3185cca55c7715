//! The `axonal-autotune` thread: runs a tuning step once per (backed-off) interval of the engine's
//! clock while the tuner is enabled.

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use super::state::EngineState;
use crate::clock::SharedClock;
use crate::worker::Worker;

/// Longest sleep between looks at the clock (a manual clock, or a changed interval, is noticed).
const MAX_SLEEP: Duration = Duration::from_secs(1);

pub(super) fn start(state: Arc<EngineState>, clock: SharedClock) -> std::io::Result<Worker> {
    state.last_autotune_step.store(clock.now().as_nanos() as u64, Ordering::Relaxed);
    Worker::spawn("axonal-autotune", move || {
        let now = clock.now();
        // A full (backed-off) interval after the last step, whoever ran it.
        let last = Duration::from_nanos(state.last_autotune_step.load(Ordering::Relaxed));
        let next_due = last + state.autotune_interval();
        if now < next_due {
            return next_due.saturating_sub(now).min(MAX_SLEEP);
        }
        if state.autotune_enabled.load(Ordering::Relaxed) {
            state.autotune_step();
        } else {
            state.last_autotune_step.store(now.as_nanos() as u64, Ordering::Relaxed);
        }
        Duration::ZERO
    })
}

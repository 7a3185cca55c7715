//! The closed state's count-based window: a ring of the last `window_size` outcomes with running
//! counts of failures and of calls over the latency budget, updated lock-free.

use std::sync::atomic::{AtomicI64, AtomicU64, Ordering};

use super::{BreakerSettings, CallOutcome, TransitionReason};

const OCCUPIED: u64 = 1 << 63;
const FAILED: u64 = 1;
const OVER_BUDGET: u64 = 2;

#[derive(Debug)]
pub(super) struct Window {
    pub(super) settings: BreakerSettings,
    /// Identifies this window; admissions carry it so late results never land in a newer window.
    pub(super) epoch: u64,
    slots: Box<[AtomicU64]>,
    calls: AtomicU64,
    /// Signed: a decrement may land before the increment it follows; reads clamp to [0, n].
    failures: AtomicI64,
    over_budget: AtomicI64,
}

impl Window {
    pub(super) fn new(settings: BreakerSettings, epoch: u64) -> Self {
        let slots = (0..settings.window_size.max(1)).map(|_| AtomicU64::new(0)).collect();
        Window {
            settings,
            epoch,
            slots,
            calls: AtomicU64::new(0),
            failures: AtomicI64::new(0),
            over_budget: AtomicI64::new(0),
        }
    }

    /// Record one outcome; return why the breaker should trip, if it should.
    #[inline]
    pub(super) fn record(&self, outcome: CallOutcome) -> Option<TransitionReason> {
        let over = outcome.latency > self.settings.latency_budget;
        let new = OCCUPIED | if outcome.failed { FAILED } else { 0 } | if over { OVER_BUDGET } else { 0 };
        let index = self.calls.fetch_add(1, Ordering::Relaxed);
        let old = self.slots[(index % self.slots.len() as u64) as usize].swap(new, Ordering::Relaxed);
        // Each slot change adjusts the counts by exactly its own delta, so the counts equal the
        // slots' contents once concurrent recorders are done.
        adjust(&self.failures, old & FAILED != 0, outcome.failed);
        adjust(&self.over_budget, old & OVER_BUDGET != 0, over);
        self.evaluate(index + 1)
    }

    fn evaluate(&self, recorded: u64) -> Option<TransitionReason> {
        let n = recorded.min(self.slots.len() as u64);
        if n < self.settings.min_calls as u64 {
            return None;
        }
        let failures = clamp(&self.failures, n);
        if failures as f64 / n as f64 > self.settings.failure_rate_threshold {
            return Some(TransitionReason::FailureRate);
        }
        // p95 (nearest rank) exceeds the budget ⇔ more than n − ⌈0.95·n⌉ calls exceed it.
        let allowed = n - (0.95 * n as f64).ceil() as u64;
        (clamp(&self.over_budget, n) > allowed).then_some(TransitionReason::LatencyBudget)
    }

    /// Outcomes in the window.
    pub(super) fn calls(&self) -> u64 {
        self.calls.load(Ordering::Relaxed).min(self.slots.len() as u64)
    }

    /// Failures / outcomes in the window (0 when empty).
    pub(super) fn failure_rate(&self) -> f64 {
        let n = self.calls();
        if n == 0 { 0.0 } else { clamp(&self.failures, n) as f64 / n as f64 }
    }
}

fn clamp(count: &AtomicI64, n: u64) -> u64 {
    count.load(Ordering::Relaxed).clamp(0, n as i64) as u64
}

#[inline]
fn adjust(count: &AtomicI64, was: bool, is: bool) {
    match (was, is) {
        (false, true) => {
            count.fetch_add(1, Ordering::Relaxed);
        }
        (true, false) => {
            count.fetch_sub(1, Ordering::Relaxed);
        }
        _ => {}
    }
}

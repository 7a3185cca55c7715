//! The closed state's count-based window: a ring of the last `window_size` outcomes with running
//! counts of failures and of calls over the latency budget, updated lock-free.
//!
//! Each thread walks the whole ring with its own cursor (starting at a per-thread offset), so a call
//! writes one slot and no counter shared by every call: with one thread the ring holds exactly the
//! last `window_size` outcomes; with several, each slot holds the latest outcome written to it, and
//! threads rarely touch the same cache line.

use std::cell::Cell;
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
    /// One cache line per slot, so threads recording consecutive calls do not share a line.
    slots: Box<[Slot]>,
    /// Slots holding an outcome (grows to the ring size, then stays).
    occupied: AtomicU64,
    /// Signed: a decrement may land before the increment it follows; reads clamp to [0, n].
    failures: AtomicI64,
    over_budget: AtomicI64,
}

impl Window {
    pub(super) fn new(settings: BreakerSettings, epoch: u64) -> Self {
        let slots = (0..settings.window_size.max(1)).map(|_| Slot::default()).collect();
        Window {
            settings,
            epoch,
            slots,
            occupied: AtomicU64::new(0),
            failures: AtomicI64::new(0),
            over_budget: AtomicI64::new(0),
        }
    }

    /// Record one outcome; return why the breaker should trip, if it should.
    #[inline]
    pub(super) fn record(&self, outcome: CallOutcome) -> Option<TransitionReason> {
        let over = outcome.latency > self.settings.latency_budget;
        let new = OCCUPIED | if outcome.failed { FAILED } else { 0 } | if over { OVER_BUDGET } else { 0 };
        let index = next_cursor() % self.slots.len() as u64;
        let old = self.slots[index as usize].0.swap(new, Ordering::Relaxed);
        let recorded = if old & OCCUPIED == 0 {
            self.occupied.fetch_add(1, Ordering::Relaxed) + 1
        } else {
            self.occupied.load(Ordering::Relaxed)
        };
        // Each slot change adjusts the counts by exactly its own delta, so the counts equal the
        // slots' contents once concurrent recorders are done.
        adjust(&self.failures, old & FAILED != 0, outcome.failed);
        adjust(&self.over_budget, old & OVER_BUDGET != 0, over);
        self.evaluate(recorded)
    }

    fn evaluate(&self, n: u64) -> Option<TransitionReason> {
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
        self.occupied.load(Ordering::Relaxed)
    }

    /// Failures / outcomes in the window (0 when empty).
    pub(super) fn failure_rate(&self) -> f64 {
        let n = self.calls();
        if n == 0 { 0.0 } else { clamp(&self.failures, n) as f64 / n as f64 }
    }
}

#[derive(Debug, Default)]
#[repr(align(64))]
struct Slot(AtomicU64);

thread_local! {
    static CURSOR: Cell<u64> = const { Cell::new(u64::MAX) };
}
static THREADS: AtomicU64 = AtomicU64::new(0);

/// This thread's next ring position: a per-thread start spread far apart, then one step per call.
#[inline]
fn next_cursor() -> u64 {
    CURSOR.with(|cursor| {
        let mut c = cursor.get();
        if c == u64::MAX {
            c = THREADS.fetch_add(1, Ordering::Relaxed).wrapping_mul(0x9E37_79B9_7F4A_7C15) >> 1;
        }
        cursor.set(c.wrapping_add(1));
        c
    })
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

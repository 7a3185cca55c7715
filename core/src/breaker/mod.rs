//! The circuit breaker (docs/spec.md §7): a count-based window of recent outcomes, trips on failure rate or
//! p95 latency, open for a jittered, doubling cooldown, then half-open for a few probe calls.
//!
//! Closed is the common state and costs no lock: `admit` is two atomic loads, `on_result` an atomic
//! slot swap plus counter adjustments. Transitions take a mutex, and queue their event for the
//! dispatcher thread ([`callbacks`]), which calls host callbacks in order, never under that mutex.

pub mod callbacks;
mod types;
mod window;

pub use types::{
    Admission, BreakerOverride, BreakerSettings, BreakerState, BreakerStatus, CallOutcome, TransitionEvent,
    TransitionReason,
};

use std::sync::Mutex;
use std::sync::atomic::{AtomicU8, AtomicU64, Ordering};
use std::time::Duration;

use arc_swap::ArcSwap;

use crate::clock::SharedClock;
use crate::telemetry::{Counter, Gauge};
use callbacks::EventSender;
use window::Window;

/// Telemetry the breaker feeds.
#[derive(Debug, Clone)]
pub struct BreakerMetrics {
    /// `spreading_breaker_transitions_total`.
    pub transitions: Counter,
    /// `spreading_breaker_state`.
    pub state: Gauge,
}

/// State guarded by the transition mutex.
#[derive(Debug)]
struct Transitions {
    /// Consecutive opens without an intervening close (drives the doubling backoff).
    reopens: u32,
    half_open_successes: u32,
    /// When the current half-open period began (breaker clock).
    half_open_since: Duration,
    since_unix_ms: u64,
    rng: u64,
}

/// The half-open probe slots: (low 32 bits of the period's epoch) << 32 | slots taken, in one word,
/// so a slot is always taken in the period whose epoch the probe carries.
fn pack(epoch: u64, taken: u64) -> u64 {
    (epoch & 0xFFFF_FFFF) << 32 | (taken & 0xFFFF_FFFF)
}

/// The circuit breaker of one engine.
#[derive(Debug)]
pub struct CircuitBreaker {
    state: AtomicU8,
    mode: AtomicU8,
    window: ArcSwap<Window>,
    /// Bumped on every transition (and settings change); windows and probe periods carry it.
    epoch: AtomicU64,
    /// Monotonic nanoseconds (breaker clock) at which open becomes half-open.
    open_until: AtomicU64,
    half_open_slots: AtomicU64,
    transitions: Mutex<Transitions>,
    clock: SharedClock,
    events: EventSender,
    metrics: BreakerMetrics,
}

impl CircuitBreaker {
    /// A closed breaker in `auto` mode; transition events go to `events`.
    pub fn new(
        settings: BreakerSettings,
        clock: SharedClock,
        events: EventSender,
        metrics: BreakerMetrics,
    ) -> Self {
        let since_unix_ms = clock.unix_ms();
        let rng = clock.now().as_nanos() as u64 ^ 0x5DEE_CE66_D1CE_4E5B;
        metrics.state.set(0.0);
        CircuitBreaker {
            state: AtomicU8::new(BreakerState::Closed as u8),
            mode: AtomicU8::new(BreakerOverride::Auto as u8),
            window: ArcSwap::from_pointee(Window::new(settings, 0)),
            epoch: AtomicU64::new(0),
            open_until: AtomicU64::new(u64::MAX),
            half_open_slots: AtomicU64::new(pack(0, u64::MAX)),
            transitions: Mutex::new(Transitions {
                reopens: 0,
                half_open_successes: 0,
                half_open_since: Duration::ZERO,
                since_unix_ms,
                rng,
            }),
            clock,
            events,
            metrics,
        }
    }

    /// Whether a call would be admitted now. A query only: it takes no probe slot (recalls use
    /// [`CircuitBreaker::admit`], which does, and report through [`CircuitBreaker::on_result`]).
    pub fn should_attempt(&self) -> bool {
        match self.state() {
            BreakerState::Closed => true,
            BreakerState::Open => {
                self.override_mode() != BreakerOverride::ForcedOpen
                    && self.clock.now().as_nanos() as u64 >= self.open_until.load(Ordering::Acquire)
            }
            BreakerState::HalfOpen => {
                let word = self.half_open_slots.load(Ordering::Acquire);
                (word & 0xFFFF_FFFF) < self.window.load().settings.half_open_max_probes as u64
            }
        }
    }

    /// Admit or refuse a call. Lock-free while closed.
    #[inline]
    pub fn admit(&self) -> Admission {
        match BreakerState::from_u8(self.state.load(Ordering::Acquire)) {
            BreakerState::Closed => match BreakerOverride::from_u8(self.mode.load(Ordering::Relaxed)) {
                BreakerOverride::ForcedClosed => Admission::Forced,
                // The closed window is stamped with the epoch of the transition that created it.
                _ => Admission::Closed { epoch: self.epoch.load(Ordering::Acquire) },
            },
            BreakerState::Open => {
                let due = self.clock.now().as_nanos() as u64 >= self.open_until.load(Ordering::Acquire);
                if due && self.enter_half_open() { self.admit_probe() } else { Admission::Refused }
            }
            BreakerState::HalfOpen => self.admit_probe(),
        }
    }

    /// Take a probe slot of the current half-open period, if one is left.
    fn admit_probe(&self) -> Admission {
        let max = self.window.load().settings.half_open_max_probes as u64;
        let mut word = self.half_open_slots.load(Ordering::Acquire);
        loop {
            let taken = word & 0xFFFF_FFFF;
            if taken >= max {
                return self.expire_silent_probes();
            }
            match self.half_open_slots.compare_exchange_weak(
                word,
                word + 1,
                Ordering::AcqRel,
                Ordering::Acquire,
            ) {
                Ok(_) => return Admission::Probe { epoch: word >> 32 },
                Err(current) => word = current,
            }
        }
    }

    /// Every probe slot is taken: refuse, unless the probes have been silent for a whole base
    /// cooldown (their callers never reported), in which case they count as failed and the breaker
    /// opens again, so half-open can never wedge.
    fn expire_silent_probes(&self) -> Admission {
        let mut t = self.lock();
        let settings_cooldown = self.window.load().settings.cooldown;
        if self.state() == BreakerState::HalfOpen
            && self.clock.now().saturating_sub(t.half_open_since) >= settings_cooldown
        {
            t.reopens += 1;
            let cooldown = self.open_for(&mut t);
            let event = self.transition(&mut t, BreakerState::Open, TransitionReason::ProbeFailed, cooldown);
            drop(t);
            log(event);
        }
        Admission::Refused
    }

    /// Record an admitted call's outcome.
    #[inline]
    pub fn on_result(&self, admission: Admission, outcome: CallOutcome) {
        match admission {
            Admission::Closed { epoch } => {
                let window = self.window.load();
                if window.epoch != epoch {
                    return; // admitted under a window that has since been replaced
                }
                if let Some(reason) = window.record(outcome) {
                    self.trip(epoch, reason);
                }
            }
            Admission::Probe { epoch } => self.probe_result(epoch, outcome.failed),
            Admission::Forced | Admission::Refused => {}
        }
    }

    /// Current state.
    pub fn state(&self) -> BreakerState {
        BreakerState::from_u8(self.state.load(Ordering::Acquire))
    }

    /// The manual override.
    pub fn override_mode(&self) -> BreakerOverride {
        BreakerOverride::from_u8(self.mode.load(Ordering::Relaxed))
    }

    /// Set the manual override: `forced_open` opens, `forced_closed` closes, and a switch back to
    /// `auto` leaves a closed breaker with a fresh window. Each state change is a transition with
    /// reason `override`; setting the mode already in force changes nothing.
    pub fn set_override(&self, mode: BreakerOverride) {
        let mut t = self.lock();
        if self.override_mode() == mode {
            return;
        }
        self.mode.store(mode as u8, Ordering::Relaxed);
        t.reopens = 0;
        let event = match mode {
            BreakerOverride::ForcedOpen => {
                let event =
                    self.transition(&mut t, BreakerState::Open, TransitionReason::Override, Duration::ZERO);
                self.open_until.store(u64::MAX, Ordering::Release);
                event
            }
            BreakerOverride::ForcedClosed => {
                self.transition(&mut t, BreakerState::Closed, TransitionReason::Override, Duration::ZERO)
            }
            BreakerOverride::Auto => {
                let event =
                    self.transition(&mut t, BreakerState::Closed, TransitionReason::Override, Duration::ZERO);
                if event.is_none() {
                    self.fresh_window();
                }
                event
            }
        };
        drop(t);
        log(event);
    }

    /// Apply new settings; the window restarts empty if they changed.
    pub fn update_settings(&self, settings: BreakerSettings) {
        let mut t = self.lock();
        if self.window.load().settings != settings {
            let epoch = self.epoch.fetch_add(1, Ordering::AcqRel) + 1;
            self.window.store(std::sync::Arc::new(Window::new(settings, epoch)));
            if self.state() == BreakerState::HalfOpen {
                // Probes admitted under the old settings no longer count: open a fresh set.
                t.half_open_successes = 0;
                t.half_open_since = self.clock.now();
                self.half_open_slots.store(pack(epoch, 0), Ordering::Release);
            }
        }
    }

    /// The snapshot's `breaker` object.
    pub fn status(&self) -> BreakerStatus {
        let t = self.lock();
        let window = self.window.load();
        BreakerStatus {
            state: self.state(),
            since_unix_ms: t.since_unix_ms,
            failure_rate: window.failure_rate(),
            window_calls: window.calls(),
            r#override: self.override_mode(),
        }
    }

    /// The `spreading_breaker_state` gauge value: 0 closed, 1 half-open, 2 open.
    pub fn state_gauge(&self) -> f64 {
        self.state() as u8 as f64
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Transitions> {
        self.transitions.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Replace the window with an empty one under a new epoch (transition mutex held).
    fn fresh_window(&self) {
        let epoch = self.epoch.fetch_add(1, Ordering::AcqRel) + 1;
        let settings = self.window.load().settings.clone();
        self.window.store(std::sync::Arc::new(Window::new(settings, epoch)));
    }

    fn trip(&self, epoch: u64, reason: TransitionReason) {
        let mut t = self.lock();
        // Another thread may have tripped first, or the operator overridden.
        if self.state() != BreakerState::Closed
            || self.window.load().epoch != epoch
            || self.override_mode() != BreakerOverride::Auto
        {
            return;
        }
        t.reopens = 0;
        let cooldown = self.open_for(&mut t);
        let event = self.transition(&mut t, BreakerState::Open, reason, cooldown);
        drop(t);
        log(event);
    }

    /// Open → half-open when the cooldown has ended; false when there is nothing to admit.
    fn enter_half_open(&self) -> bool {
        let mut t = self.lock();
        match self.state() {
            BreakerState::Open => {
                let due = self.clock.now().as_nanos() as u64 >= self.open_until.load(Ordering::Acquire);
                if !due || self.override_mode() == BreakerOverride::ForcedOpen {
                    return false;
                }
                let event = self.transition(
                    &mut t,
                    BreakerState::HalfOpen,
                    TransitionReason::CooldownElapsed,
                    Duration::ZERO,
                );
                drop(t);
                log(event);
                true
            }
            BreakerState::HalfOpen => true,
            BreakerState::Closed => false,
        }
    }

    fn probe_result(&self, epoch: u64, failed: bool) {
        let mut t = self.lock();
        if self.state() != BreakerState::HalfOpen || self.epoch.load(Ordering::Acquire) & 0xFFFF_FFFF != epoch
        {
            return;
        }
        let event = if failed {
            t.reopens += 1;
            let cooldown = self.open_for(&mut t);
            self.transition(&mut t, BreakerState::Open, TransitionReason::ProbeFailed, cooldown)
        } else {
            t.half_open_successes += 1;
            if t.half_open_successes < self.window.load().settings.half_open_max_probes {
                return;
            }
            t.reopens = 0;
            self.transition(&mut t, BreakerState::Closed, TransitionReason::ProbesSucceeded, Duration::ZERO)
        };
        drop(t);
        log(event);
    }

    /// Pick the next open period and set `open_until`.
    fn open_for(&self, t: &mut Transitions) -> Duration {
        let settings = &self.window.load().settings;
        t.rng = t.rng.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let unit = (mix(t.rng) >> 11) as f64 / (1u64 << 53) as f64;
        let cooldown = cooldown_for(settings.cooldown, settings.max_cooldown, t.reopens, unit);
        let until = self.clock.now().saturating_add(cooldown);
        self.open_until.store(until.as_nanos().min(u64::MAX as u128) as u64, Ordering::Release);
        cooldown
    }

    /// Change state (transition mutex held), reset what the new state starts with, and queue the
    /// event — the queue order is the transition order. Returns the event for logging once the
    /// mutex is released; `None` when already in `to`.
    fn transition(
        &self,
        t: &mut Transitions,
        to: BreakerState,
        reason: TransitionReason,
        cooldown: Duration,
    ) -> Option<TransitionEvent> {
        let from = self.state();
        if from == to {
            return None;
        }
        let old_window = self.window.load_full();
        let epoch = self.epoch.fetch_add(1, Ordering::AcqRel) + 1;
        match to {
            // Stored before the state flips, so a closed admission's epoch always names a window
            // that exists.
            BreakerState::Closed => {
                self.window.store(std::sync::Arc::new(Window::new(old_window.settings.clone(), epoch)));
            }
            BreakerState::HalfOpen => {
                t.half_open_successes = 0;
                t.half_open_since = self.clock.now();
                self.half_open_slots.store(pack(epoch, 0), Ordering::Release);
            }
            BreakerState::Open => {}
        }
        if to != BreakerState::Open {
            self.open_until.store(u64::MAX, Ordering::Release);
        }
        self.state.store(to as u8, Ordering::Release);
        let at_unix_ms = self.clock.unix_ms();
        t.since_unix_ms = at_unix_ms;
        let event = TransitionEvent {
            from,
            to,
            reason,
            at_unix_ms,
            failure_rate: old_window.failure_rate(),
            window_calls: old_window.calls(),
            cooldown_ms: cooldown.as_millis() as u64,
        };
        self.metrics.transitions.increment();
        self.metrics.state.set(to as u8 as f64);
        self.events.send(event.clone());
        Some(event)
    }
}

/// The structured `tracing` event of a transition (after the breaker's mutex is released, so a
/// subscriber never runs under it).
fn log(event: Option<TransitionEvent>) {
    if let Some(event) = event {
        tracing::info!(
            from = event.from.as_str(),
            to = event.to.as_str(),
            reason = ?event.reason,
            failure_rate = event.failure_rate,
            window_calls = event.window_calls,
            cooldown_ms = event.cooldown_ms,
            "circuit breaker transition"
        );
    }
}

/// The open period after `reopens` consecutive re-opens: `base × 2^reopens`, capped at `max`, then
/// scaled by a jitter factor in [0.9, 1.1) drawn from `unit` ∈ [0, 1).
pub fn cooldown_for(base: Duration, max: Duration, reopens: u32, unit: f64) -> Duration {
    let doubled = base.saturating_mul(1u32.checked_shl(reopens.min(31)).unwrap_or(u32::MAX));
    doubled.min(max).mul_f64(0.9 + 0.2 * unit.clamp(0.0, 1.0))
}

fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

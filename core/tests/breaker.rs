//! The circuit breaker's state machine (docs/spec.md §7), on an injected clock.

use std::sync::{Arc, Barrier, Mutex};
use std::time::Duration;

use axonal_core::breaker::callbacks::Dispatcher;
use axonal_core::breaker::{
    Admission, BreakerMetrics, BreakerOverride, BreakerSettings, BreakerState, CallOutcome, CircuitBreaker,
    TransitionEvent, TransitionReason, cooldown_for,
};
use axonal_core::clock::ManualClock;
use axonal_core::telemetry::Telemetry;
use proptest::prelude::*;

const BASE: Duration = Duration::from_secs(30);
const MAX: Duration = Duration::from_secs(300);

struct Harness {
    clock: Arc<ManualClock>,
    breaker: CircuitBreaker,
    dispatcher: Dispatcher,
    events: Arc<Mutex<Vec<TransitionEvent>>>,
    _telemetry: Telemetry,
}

fn settings() -> BreakerSettings {
    BreakerSettings {
        window_size: 50,
        min_calls: 20,
        failure_rate_threshold: 0.05,
        latency_budget: Duration::from_millis(50),
        cooldown: BASE,
        max_cooldown: MAX,
        half_open_max_probes: 5,
    }
}

fn harness() -> Harness {
    let clock = ManualClock::new(1_700_000_000_000);
    let telemetry = Telemetry::new(clock.clone());
    let m = axonal_core::engine::EngineMetrics::register(telemetry.registry()).unwrap();
    let dispatcher =
        Dispatcher::start(telemetry.registry().counter("callback_failures_total", "t").unwrap()).unwrap();
    let breaker = CircuitBreaker::new(
        settings(),
        clock.clone(),
        dispatcher.sender(),
        BreakerMetrics { transitions: m.breaker_transitions_total.clone(), state: m.breaker_state.clone() },
    );
    let events = Arc::new(Mutex::new(Vec::new()));
    let sink = Arc::clone(&events);
    dispatcher
        .callbacks()
        .register(Box::new(move |e: &TransitionEvent| sink.lock().unwrap().push(e.clone())));
    Harness { clock, breaker, dispatcher, events, _telemetry: telemetry }
}

impl Harness {
    fn call(&self, failed: bool, latency_ms: u64) -> Admission {
        let admission = self.breaker.admit();
        if admission.allowed() {
            self.breaker
                .on_result(admission, CallOutcome { failed, latency: Duration::from_millis(latency_ms) });
        }
        admission
    }

    fn events(&self) -> Vec<TransitionEvent> {
        self.dispatcher.flush();
        self.events.lock().unwrap().clone()
    }

    fn last(&self) -> TransitionEvent {
        self.events().last().cloned().expect("a transition")
    }

    fn trip(&self) {
        for _ in 0..20 {
            self.call(true, 1);
        }
        assert_eq!(self.breaker.state(), BreakerState::Open);
    }

    /// Advance past the longest possible (jittered) cooldown of the last opening.
    fn past_cooldown(&self) {
        let cooldown = self.last().cooldown_ms;
        self.clock.advance(Duration::from_millis(cooldown + 1));
    }
}

#[test]
fn closed_to_open_on_failure_rate_after_min_calls() {
    let h = harness();
    for _ in 0..19 {
        h.call(true, 1);
    }
    assert_eq!(h.breaker.state(), BreakerState::Closed, "fewer than min_calls outcomes: not evaluated");
    h.call(true, 1);
    assert_eq!(h.breaker.state(), BreakerState::Open);
    let e = h.last();
    assert_eq!(
        (e.from, e.to, e.reason),
        (BreakerState::Closed, BreakerState::Open, TransitionReason::FailureRate)
    );
    assert_eq!(e.window_calls, 20);
    assert_eq!(e.failure_rate, 1.0);
    assert!((27_000..=33_000).contains(&e.cooldown_ms), "base cooldown ±10 %: {}", e.cooldown_ms);
    assert_eq!(h.call(false, 1), Admission::Refused, "open refuses at once");
}

#[test]
fn failure_rate_must_exceed_the_threshold() {
    let h = harness();
    for i in 0..20 {
        h.call(i == 0, 1); // 1 failure in 20 calls: exactly 5 %, not above it
    }
    assert_eq!(h.breaker.state(), BreakerState::Closed);
    h.call(true, 1); // 2 / 21 > 5 %
    assert_eq!(h.breaker.state(), BreakerState::Open);
}

#[test]
fn closed_to_open_on_p95_latency_over_budget() {
    let h = harness();
    for _ in 0..19 {
        h.call(false, 10);
    }
    h.call(false, 60); // 1 of 20 over budget: p95 (nearest rank 19) is still 10 ms
    assert_eq!(h.breaker.state(), BreakerState::Closed);
    h.call(false, 60); // 2 of 21: p95 is over
    let e = h.last();
    assert_eq!((e.to, e.reason), (BreakerState::Open, TransitionReason::LatencyBudget));
    assert_eq!(e.failure_rate, 0.0);
}

#[test]
fn open_to_half_open_after_cooldown_then_closed_after_five_successes() {
    let h = harness();
    h.trip();
    h.clock.advance(Duration::from_millis(h.last().cooldown_ms - 1));
    assert_eq!(h.call(false, 1), Admission::Refused, "still cooling down");
    h.clock.advance(Duration::from_millis(2));
    assert!(matches!(h.call(false, 1), Admission::Probe { .. }));
    assert_eq!(h.breaker.state(), BreakerState::HalfOpen);
    let e = h.events()[1].clone();
    assert_eq!(
        (e.from, e.to, e.reason),
        (BreakerState::Open, BreakerState::HalfOpen, TransitionReason::CooldownElapsed)
    );
    for _ in 0..4 {
        assert!(matches!(h.call(false, 1), Admission::Probe { .. }));
    }
    assert_eq!(h.breaker.state(), BreakerState::Closed);
    let e = h.last();
    assert_eq!((e.from, e.reason), (BreakerState::HalfOpen, TransitionReason::ProbesSucceeded));
    assert!(matches!(h.call(true, 1), Admission::Closed { .. }), "a closed breaker with a fresh window");
    assert_eq!(h.breaker.state(), BreakerState::Closed, "one failure in a cleared window does not trip");
}

#[test]
fn half_open_to_open_on_a_failed_probe_with_doubling_backoff_capped() {
    let h = harness();
    h.trip();
    let mut expected = BASE;
    for _ in 0..6 {
        h.past_cooldown();
        assert!(matches!(h.call(true, 1), Admission::Probe { .. }));
        let e = h.last();
        assert_eq!(
            (e.from, e.to, e.reason),
            (BreakerState::HalfOpen, BreakerState::Open, TransitionReason::ProbeFailed)
        );
        expected = (expected * 2).min(MAX);
        let ms = expected.as_millis() as u64;
        assert!(
            (ms * 9 / 10..=ms * 11 / 10).contains(&e.cooldown_ms),
            "expected ~{ms} ms, got {}",
            e.cooldown_ms
        );
    }
    assert!(h.last().cooldown_ms >= 270_000, "capped at 300 s (±10 %)");
    // A successful recovery resets the backoff.
    h.past_cooldown();
    for _ in 0..5 {
        h.call(false, 1);
    }
    h.trip();
    assert!(h.last().cooldown_ms <= 33_000);
}

#[test]
fn jitter_stays_within_ten_percent() {
    for i in 0..=1000 {
        let unit = i as f64 / 1001.0;
        for reopens in [0, 1, 3, 10, 40] {
            let expected = (BASE * 2u32.pow(reopens.min(20))).min(MAX).as_secs_f64();
            let got = cooldown_for(BASE, MAX, reopens, unit).as_secs_f64();
            assert!(got >= expected * 0.9 - 1e-9 && got < expected * 1.1 + 1e-9, "{reopens} {unit}: {got}");
        }
    }
    assert_eq!(cooldown_for(BASE, MAX, 0, 0.0), BASE.mul_f64(0.9));
}

#[test]
fn overrides_force_and_release() {
    let h = harness();
    h.breaker.set_override(BreakerOverride::ForcedOpen);
    assert_eq!(h.call(false, 1), Admission::Refused);
    assert_eq!((h.last().to, h.last().reason), (BreakerState::Open, TransitionReason::Override));
    h.clock.advance(Duration::from_secs(3600));
    assert_eq!(h.call(false, 1), Admission::Refused, "forced open ignores the cooldown");
    h.breaker.set_override(BreakerOverride::ForcedClosed);
    assert_eq!(h.breaker.state(), BreakerState::Closed);
    for _ in 0..100 {
        assert_eq!(h.call(true, 1000), Admission::Forced);
    }
    assert_eq!(h.breaker.state(), BreakerState::Closed, "forced closed never trips");
    h.breaker.set_override(BreakerOverride::Auto);
    assert_eq!(h.breaker.override_mode(), BreakerOverride::Auto);
    h.trip();
    let reasons: Vec<_> = h.events().iter().map(|e| (e.from, e.to, e.reason)).collect();
    assert_eq!(
        reasons,
        vec![
            (BreakerState::Closed, BreakerState::Open, TransitionReason::Override),
            (BreakerState::Open, BreakerState::Closed, TransitionReason::Override),
            (BreakerState::Closed, BreakerState::Open, TransitionReason::FailureRate),
        ]
    );
}

#[test]
fn half_open_admits_at_most_five_of_eight_concurrent_callers() {
    let h = harness();
    h.trip();
    h.past_cooldown();
    let barrier = Barrier::new(8);
    let admissions: Vec<Admission> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..8)
            .map(|_| {
                scope.spawn(|| {
                    barrier.wait();
                    h.breaker.admit()
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().unwrap()).collect()
    });
    let probes = admissions.iter().filter(|a| matches!(a, Admission::Probe { .. })).count();
    assert_eq!(probes, 5, "{admissions:?}");
    assert_eq!(admissions.iter().filter(|a| **a == Admission::Refused).count(), 3);
    assert_eq!(h.breaker.state(), BreakerState::HalfOpen);
    let half_opens = h.events().iter().filter(|e| e.to == BreakerState::HalfOpen).count();
    assert_eq!(half_opens, 1, "one transition however many callers saw the cooldown end");
}

#[test]
fn stale_results_never_reach_a_newer_window() {
    let h = harness();
    let early = h.breaker.admit();
    h.trip();
    h.past_cooldown();
    for _ in 0..5 {
        h.call(false, 1);
    }
    assert_eq!(h.breaker.state(), BreakerState::Closed);
    // A call admitted before the trip reports late: it must not count in the fresh window.
    for _ in 0..30 {
        h.breaker.on_result(early, CallOutcome { failed: true, latency: Duration::from_millis(1) });
    }
    for _ in 0..20 {
        h.call(false, 1);
    }
    assert_eq!(h.breaker.state(), BreakerState::Closed);
}

#[derive(Debug, Clone)]
enum Op {
    Call { failed: bool, latency_ms: u64 },
    Advance { ms: u64 },
    Override(BreakerOverride),
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        8 => (prop::bool::weighted(0.3), prop_oneof![0u64..40, 40u64..120]).prop_map(|(failed, latency_ms)| Op::Call { failed, latency_ms }),
        2 => prop_oneof![0u64..1000, 20_000u64..400_000].prop_map(|ms| Op::Advance { ms }),
        1 => prop_oneof![Just(BreakerOverride::Auto), Just(BreakerOverride::ForcedOpen), Just(BreakerOverride::ForcedClosed)].prop_map(Op::Override),
    ]
}

fn legal(e: &TransitionEvent) -> bool {
    use BreakerState::*;
    use TransitionReason::*;
    matches!(
        (e.from, e.to, e.reason),
        (Closed, Open, FailureRate | LatencyBudget | Override)
            | (Open, HalfOpen, CooldownElapsed)
            | (HalfOpen, Closed, ProbesSucceeded | Override)
            | (HalfOpen, Open, ProbeFailed | Override)
            | (Open, Closed, Override)
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(200))]

    #[test]
    fn state_machine_never_makes_an_illegal_transition(ops in prop::collection::vec(op(), 1..300)) {
        let h = harness();
        let mut states = vec![h.breaker.state()];
        for op in &ops {
            match *op {
                Op::Call { failed, latency_ms } => { h.call(failed, latency_ms); }
                Op::Advance { ms } => h.clock.advance(Duration::from_millis(ms)),
                Op::Override(mode) => h.breaker.set_override(mode),
            }
            let state = h.breaker.state();
            if state != *states.last().unwrap() {
                states.push(state);
            }
        }
        let events = h.events();
        for e in &events {
            prop_assert!(legal(e), "illegal transition {:?}", e);
            prop_assert_ne!(e.from, e.to);
        }
        // The event stream is the state history: consecutive, starting closed, ending in the state.
        prop_assert_eq!(events.first().map_or(BreakerState::Closed, |e| e.from), BreakerState::Closed);
        for pair in events.windows(2) {
            prop_assert_eq!(pair[0].to, pair[1].from);
        }
        prop_assert_eq!(events.last().map_or(BreakerState::Closed, |e| e.to), h.breaker.state());
        let mut history = vec![BreakerState::Closed];
        history.extend(events.iter().map(|e| e.to));
        // Every state observed after an operation appears, in order, in the event history.
        let mut at = 0;
        for state in &states {
            while at < history.len() && history[at] != *state {
                at += 1;
            }
            prop_assert!(at < history.len(), "observed {:?} not in history {:?}", state, history);
        }
    }
}

#[test]
fn should_attempt_is_a_query_and_silent_probes_expire() {
    let h = harness();
    h.trip();
    h.past_cooldown();
    for _ in 0..20 {
        assert!(h.breaker.should_attempt() || h.breaker.state() == BreakerState::Open);
    }
    // Five callers are admitted as probes and never report.
    for _ in 0..5 {
        assert!(matches!(h.breaker.admit(), Admission::Probe { .. }));
    }
    assert_eq!(h.breaker.state(), BreakerState::HalfOpen);
    assert!(!h.breaker.should_attempt(), "no probe slot left");
    assert_eq!(h.breaker.admit(), Admission::Refused);
    // A whole base cooldown later the silent probes count as failed: open again, not wedged.
    h.clock.advance(BASE);
    assert_eq!(h.breaker.admit(), Admission::Refused);
    let e = h.last();
    assert_eq!(
        (e.from, e.to, e.reason),
        (BreakerState::HalfOpen, BreakerState::Open, TransitionReason::ProbeFailed)
    );
    h.past_cooldown();
    for _ in 0..5 {
        assert!(matches!(h.call(false, 1), Admission::Probe { .. }));
    }
    assert_eq!(h.breaker.state(), BreakerState::Closed);
}

#[test]
fn setting_the_mode_in_force_changes_nothing() {
    let h = harness();
    h.trip();
    h.breaker.set_override(BreakerOverride::Auto);
    assert_eq!(h.breaker.state(), BreakerState::Open, "auto while auto does not close an open breaker");
    assert_eq!(h.events().len(), 1);
}

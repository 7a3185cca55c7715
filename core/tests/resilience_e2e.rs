//! End to end with real threads and short real intervals: injected latency opens the breaker, recalls
//! answer from the fallback (`breaker_open`) and health degrades; without it the breaker half-opens,
//! closes, and health recovers. Metrics and transition events agree with what happened.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axonal_core::ToJson;
use axonal_core::chaos::TierLatency;
use axonal_core::generate;
use axonal_core::{
    BreakerState, ChaosConfig, Cue, Engine, EngineConfig, FallbackReason, HealthStatus, Source,
    TransitionEvent, TransitionReason,
};
use serde_json::json;

mod common;
use common::eventually;

#[test]
fn chaos_opens_the_breaker_and_degrades_health_then_both_recover() {
    let config = EngineConfig::default()
        .patched(&json!({
            "spreading": {"latency_budget_ms": 20, "tier_timeouts_ms": {"hot": 0, "warm": 0, "cold": 0}},
            "breaker": {"window_size": 20, "min_calls": 10, "cooldown_ms": 300, "max_cooldown_ms": 1200},
            "health": {"interval_ms": 100, "timeout_ms": 1000}
        }))
        .unwrap();
    let edges = generate::barabasi_albert(2_000, 4, 0.9, 5);
    let engine = Arc::new(Engine::new(edges.build().unwrap(), config).unwrap());
    let events: Arc<Mutex<Vec<TransitionEvent>>> = Arc::default();
    let sink = Arc::clone(&events);
    let weak = Arc::downgrade(&engine);
    let reentrant_calls = Arc::new(AtomicU64::new(0));
    let reentrant = Arc::clone(&reentrant_calls);
    engine.on_breaker_transition(move |event| {
        sink.lock().unwrap().push(event.clone());
        // A callback may call back into the engine: no lock of the breaker is held here. (Events are
        // delivered asynchronously, so the state read here may already be a later one.)
        if let Some(engine) = weak.upgrade() {
            let _ = engine.breaker_state();
            let _ = engine.spreading_section().to_json();
            reentrant.fetch_add(1, Ordering::Relaxed);
        }
    });
    assert!(eventually(Duration::from_secs(5), || engine.health_status() == HealthStatus::Healthy));

    let stop = AtomicBool::new(false);
    let breaker_open_answers = AtomicU64::new(0);
    std::thread::scope(|scope| {
        for t in 0..2u32 {
            let (engine, stop, answers) = (&engine, &stop, &breaker_open_answers);
            scope.spawn(move || {
                let mut seed = t;
                while !stop.load(Ordering::Relaxed) {
                    seed = (seed * 7 + 13) % 2_000;
                    let recall = engine.recall(&Cue::nodes([seed])).unwrap();
                    if recall.reason == Some(FallbackReason::BreakerOpen) {
                        assert_eq!(recall.source, Source::Fallback);
                        assert!(!recall.results.is_empty(), "the fallback still answers");
                        answers.fetch_add(1, Ordering::Relaxed);
                    }
                }
            });
        }

        // Phase 1: every spread takes > 1.5 × budget on the hot tier.
        let slow = TierLatency { hot: 35.0, ..Default::default() };
        engine.set_chaos(ChaosConfig { latency_ms: slow, ..Default::default() }).unwrap();
        assert!(
            eventually(Duration::from_secs(10), || engine.breaker_state() == BreakerState::Open),
            "breaker opened"
        );
        assert!(eventually(Duration::from_secs(10), || breaker_open_answers.load(Ordering::Relaxed) > 0));
        assert!(
            eventually(Duration::from_secs(10), || engine.health_status() != HealthStatus::Healthy),
            "health degraded: {}",
            engine.health_report().to_json()
        );

        // Phase 2: faults stop; the breaker half-opens after its cooldown, probes succeed, it closes.
        engine.clear_chaos();
        assert!(
            eventually(Duration::from_secs(10), || engine.breaker_state() == BreakerState::Closed
                && engine.health_status() == HealthStatus::Healthy),
            "recovered: breaker {:?}, health {}",
            engine.breaker_state(),
            engine.health_report().to_json()
        );
        stop.store(true, Ordering::Relaxed);
    });

    engine.flush_transition_events();
    let events = events.lock().unwrap().clone();
    let path: Vec<_> = events.iter().map(|e| (e.from, e.to)).collect();
    assert_eq!(path.first(), Some(&(BreakerState::Closed, BreakerState::Open)), "{events:?}");
    assert!(matches!(events[0].reason, TransitionReason::FailureRate | TransitionReason::LatencyBudget));
    assert!(events[0].window_calls >= 10 && events[0].cooldown_ms >= 270);
    assert!(path.contains(&(BreakerState::Open, BreakerState::HalfOpen)));
    let last = events.last().unwrap();
    assert_eq!(
        (last.from, last.to, last.reason),
        (BreakerState::HalfOpen, BreakerState::Closed, TransitionReason::ProbesSucceeded)
    );
    for pair in events.windows(2) {
        assert_eq!(pair[0].to, pair[1].from, "events in order");
    }
    assert_eq!(reentrant_calls.load(Ordering::Relaxed), events.len() as u64);

    let snapshot = engine.streaming_snapshot().to_json();
    let counters = &snapshot["totals"]["counters"];
    assert_eq!(counters["spreading_breaker_transitions_total"], events.len() as u64);
    assert_eq!(counters["spreading_breaker_open_total"], breaker_open_answers.load(Ordering::Relaxed));
    assert_eq!(
        snapshot["spreading"]["fallback"]["by_reason"]["breaker_open"],
        breaker_open_answers.load(Ordering::Relaxed)
    );
    assert!(counters["spreading_failures_total"].as_u64().unwrap() >= 10);
    assert!(counters["spreading_health_failures_total"].as_u64().unwrap() >= 1);
    assert_eq!(snapshot["spreading"]["breaker"]["state"], "closed");
    assert_eq!(snapshot["health"]["status"], "healthy");
    assert_eq!(snapshot["totals"]["gauges"]["spreading_breaker_state"], 0.0);
    assert_eq!(engine.transition_callback_failures(), 0);
}

#[test]
fn a_panicking_transition_callback_is_contained_and_counted() {
    let graph = axonal_core::Graph::from_edges(2, &[0], &[1], &[1.0]).unwrap();
    let engine = Engine::new(graph, EngineConfig::default()).unwrap();
    let seen: Arc<Mutex<Vec<BreakerState>>> = Arc::default();
    engine.on_breaker_transition(|_| panic!("host bug"));
    let sink = Arc::clone(&seen);
    engine.on_breaker_transition(move |e| sink.lock().unwrap().push(e.to));
    engine.set_breaker_override(axonal_core::BreakerOverride::ForcedOpen);
    engine.set_breaker_override(axonal_core::BreakerOverride::Auto);
    engine.flush_transition_events();
    assert_eq!(
        *seen.lock().unwrap(),
        vec![BreakerState::Open, BreakerState::Closed],
        "later callbacks still run"
    );
    assert_eq!(engine.transition_callback_failures(), 2);
    assert_eq!(engine.telemetry().totals_json()["counters"]["spreading_callback_failures_total"], 2);
}

#[test]
fn unregistered_callbacks_are_not_called_and_may_unregister_themselves() {
    let graph = axonal_core::Graph::from_edges(2, &[0], &[1], &[1.0]).unwrap();
    let engine = Arc::new(Engine::new(graph, EngineConfig::default()).unwrap());
    let calls = Arc::new(AtomicU64::new(0));
    let (c, weak) = (Arc::clone(&calls), Arc::downgrade(&engine));
    let own_id = Arc::new(AtomicU64::new(0));
    let id_cell = Arc::clone(&own_id);
    let id = engine.on_breaker_transition(move |_| {
        c.fetch_add(1, Ordering::SeqCst);
        if let Some(engine) = weak.upgrade() {
            assert!(
                engine.remove_transition_callback(id_cell.load(Ordering::SeqCst)),
                "self-unregister from inside"
            );
        }
    });
    own_id.store(id, Ordering::SeqCst);
    let other = Arc::new(AtomicU64::new(0));
    let o = Arc::clone(&other);
    let other_id = engine.on_breaker_transition(move |_| {
        o.fetch_add(1, Ordering::SeqCst);
    });
    engine.set_breaker_override(axonal_core::BreakerOverride::ForcedOpen);
    engine.flush_transition_events();
    assert!(engine.remove_transition_callback(other_id));
    assert!(!engine.remove_transition_callback(other_id));
    engine.set_breaker_override(axonal_core::BreakerOverride::Auto);
    engine.flush_transition_events();
    assert_eq!((calls.load(Ordering::SeqCst), other.load(Ordering::SeqCst)), (1, 1));
}

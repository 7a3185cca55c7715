//! The auto-tuner on a real graph with injected faults: it acts on cold-tier latency as its model
//! predicts and explains itself in the audit log, walks back to the operator's base when the faults
//! stop, rolls a change back (with backoff) when things got worse, and does nothing when disabled or
//! when the workload is steady.

use std::time::Duration;

use axonal_core::ToJson;
use axonal_core::chaos::TierLatency;
use axonal_core::clock::ManualClock;
use axonal_core::generate::{self, SplitMix64};
use axonal_core::tuner::Decision;
use axonal_core::{BreakerOverride, ChaosConfig, Cue, Engine, EngineConfig, Tier};
use serde_json::json;

mod common;
use common::eventually;

fn engine(autotune_enabled: bool) -> Engine {
    let edges = generate::barabasi_albert(2_000, 4, 0.9, 3);
    let mut builder = edges.builder().unwrap();
    for v in 0..2_000u32 {
        builder.set_tier(v, [Tier::Hot, Tier::Warm, Tier::Cold][(v % 3) as usize]).unwrap();
    }
    let config = EngineConfig::default()
        .patched(&json!({
            "threads": 1,
            "spreading": {"max_depth": 4, "latency_budget_ms": 20},
            // The test drives the tuner with autotune_now(); the background schedule (every 10 min of
            // real time) does not fire during a test.
            "autotune": {"enabled": autotune_enabled, "interval_ms": 600_000}
        }))
        .unwrap();
    let engine = Engine::new(builder.build().unwrap(), config).unwrap();
    // The breaker would answer slow calls with the fallback; the tuner needs them to spread.
    engine.set_breaker_override(BreakerOverride::ForcedClosed);
    engine
}

/// One tuning interval: 30 recalls from random seeds, then a tuning step.
fn interval(engine: &Engine, rng: &mut SplitMix64) -> Decision {
    for _ in 0..30 {
        engine.recall(&Cue::nodes([rng.below(2_000) as u32])).unwrap();
    }
    engine.autotune_now()
}

fn cold(ms: f64) -> ChaosConfig {
    ChaosConfig {
        latency_ms: TierLatency { cold: ms, ..Default::default() },
        seed: Some(9),
        ..Default::default()
    }
}

fn knobs(engine: &Engine) -> (u32, u32, f64) {
    let s = engine.config().spreading;
    (s.max_depth, s.batch_size, s.tier_timeouts_ms.cold)
}

#[test]
fn acts_on_cold_latency_explains_itself_and_walks_back_to_base() {
    let engine = engine(true);
    let mut rng = SplitMix64(1);
    let base = knobs(&engine);
    assert!(matches!(interval(&engine, &mut rng), Decision::NoChange(r) if r.contains("baseline")));
    assert!(matches!(interval(&engine, &mut rng), Decision::NoChange(r) if r.contains("no pressure")));

    engine.set_chaos(cold(8.0)).unwrap();
    let first = match interval(&engine, &mut rng) {
        Decision::Applied(entry) => entry,
        other => panic!("cold-tier latency over budget should change the config: {other:?}"),
    };
    assert_eq!(first.action, "apply");
    assert!(first.predicted > 0.10, "{first:?}");
    assert!(first.reason.contains("over the 20.0 ms budget"), "{}", first.reason);
    assert!(
        first.new.max_depth < first.old.max_depth
            || first.new.tier_timeouts_ms.cold != first.old.tier_timeouts_ms.cold,
        "lowers depth or changes the cold timeout: {first:?}"
    );
    assert_ne!(knobs(&engine), base, "the live config follows the tuner");
    // The next interval judges it: the observed improvement lands in the audit log.
    let judged = interval(&engine, &mut rng);
    let audit = engine.autotune_audit();
    let observed = audit[0].observed.expect("observed after the next interval");
    assert!(observed > 0.0, "the change helped: {audit:?} ({judged:?})");
    let totals = engine.telemetry().totals_json();
    assert!(totals["counters"]["spreading_autotune_changes_total"].as_u64().unwrap() >= 1);

    // Faults stop: one guarded step at a time back to the operator's base.
    engine.clear_chaos();
    for _ in 0..16 {
        interval(&engine, &mut rng);
        if knobs(&engine) == base {
            break;
        }
    }
    assert_eq!(knobs(&engine), base, "walked back: {:#?}", engine.autotune_audit());
    let walk_backs = engine.autotune_audit().iter().filter(|e| e.action == "walk_back").count();
    assert!(walk_backs >= 1);
    assert!(matches!(interval(&engine, &mut rng), Decision::NoChange(_)));
    let section = engine.spreading_section().to_json();
    assert_eq!(section["autotune"]["enabled"], true);
    assert_eq!(section["autotune"]["last"]["action"], "walk_back");
}

#[test]
fn a_change_that_made_things_worse_is_rolled_back_with_backoff() {
    let engine = engine(true);
    let mut rng = SplitMix64(2);
    interval(&engine, &mut rng);
    engine.set_chaos(cold(8.0)).unwrap();
    let applied = match interval(&engine, &mut rng) {
        Decision::Applied(entry) => entry,
        other => panic!("{other:?}"),
    };
    // Whatever the change, the next interval is much slower: the hot tier stalls too (its timeout
    // stops it after one phase, so this adds ~15 ms to every call whatever the knobs).
    let hot_and_cold = TierLatency { hot: 15.0, cold: 8.0, ..Default::default() };
    engine.set_chaos(ChaosConfig { latency_ms: hot_and_cold, seed: Some(9), ..Default::default() }).unwrap();
    match interval(&engine, &mut rng) {
        Decision::RolledBack(entry) => {
            assert_eq!(entry.action, "rollback");
            assert_eq!(entry.new, applied.old, "back to the knobs before the change");
            assert!(entry.observed.unwrap() < 0.0);
            assert!(entry.reason.contains("backing off"), "{}", entry.reason);
        }
        other => panic!("expected a rollback: {other:?}"),
    }
    let state = engine.autotune_state().to_json();
    assert_eq!(state["backoff"], 1);
    assert_eq!(state["interval_ms"], 1_200_000, "the 10 min interval doubled: {state}");
    engine.clear_chaos();
}

#[test]
fn a_disabled_tuner_never_changes_the_config() {
    let engine = engine(false);
    let mut rng = SplitMix64(3);
    let before = engine.config();
    engine.set_chaos(cold(8.0)).unwrap();
    for _ in 0..4 {
        match interval(&engine, &mut rng) {
            Decision::NoChange(reason) => assert!(reason.contains("disabled"), "{reason}"),
            other => panic!("{other:?}"),
        }
    }
    engine.clear_chaos();
    assert_eq!(engine.config(), before);
    assert!(engine.autotune_audit().is_empty());
    // Enabling at run time lets it act.
    engine.set_autotune_enabled(true);
    assert!(engine.autotune_enabled());
}

#[test]
fn a_steady_workload_under_pressure_never_oscillates() {
    let engine = engine(true);
    let mut rng = SplitMix64(6);
    interval(&engine, &mut rng);
    engine.set_chaos(cold(8.0)).unwrap();
    // Eight intervals: a rolled-back change stays barred for eight steps, so within them a repeat
    // can only come from oscillation, not from a deliberate retry.
    for _ in 0..8 {
        interval(&engine, &mut rng);
    }
    engine.clear_chaos();
    let audit = engine.autotune_audit();
    assert!(audit.iter().any(|e| e.action == "apply"), "it acted on the pressure: {audit:#?}");
    // Oscillation means making the same change twice (it was undone in between): whatever the
    // noise, no (old → new) change may be made twice by the tuner's own moves (rollbacks undo a
    // change by design and are judged by the rollback test).
    let moves: Vec<_> = audit.iter().filter(|e| e.action != "rollback").collect();
    for (i, a) in moves.iter().enumerate() {
        for b in &moves[i + 1..] {
            assert!(!(a.old == b.old && a.new == b.new), "the same change twice: {a:?} and {b:?}");
        }
    }
    // So the changes are bounded by the guardrails: depth 4 → 2 and the cold multiplier's range.
    assert!(audit.len() <= 8, "{audit:#?}");
}

#[test]
fn a_steady_workload_produces_no_change() {
    let engine = engine(true);
    let mut rng = SplitMix64(4);
    let before = engine.config();
    for _ in 0..6 {
        assert!(matches!(interval(&engine, &mut rng), Decision::NoChange(_)));
    }
    assert_eq!(engine.config(), before);
    assert!(engine.autotune_audit().is_empty());
}

#[test]
fn truncation_inside_the_budget_raises_the_cold_timeout() {
    let engine = engine(true);
    // A tight cold timeout (5 ms) and 3 ms per cold phase: the cold tier is cut off in most calls
    // while the calls stay far inside a 200 ms budget.
    engine
        .update_config(&json!({"spreading": {"latency_budget_ms": 200, "tier_timeouts_ms": {"cold": 5}}}))
        .unwrap();
    let mut rng = SplitMix64(6);
    interval(&engine, &mut rng);
    engine.set_chaos(cold(3.0)).unwrap();
    let mut raised = None;
    for _ in 0..8 {
        if let Decision::Applied(entry) = interval(&engine, &mut rng)
            && entry.new.tier_timeouts_ms.cold > entry.old.tier_timeouts_ms.cold
        {
            raised = Some(entry);
            break;
        }
    }
    let entry = raised.expect("the tuner raises the cold timeout");
    assert!(entry.reason.contains("cold tier timed out"), "{}", entry.reason);
    assert!(entry.predicted > 0.10);
    assert!(entry.new.tier_timeouts_ms.cold <= 10.0, "within the 2× guardrail");
    engine.clear_chaos();
}

#[test]
fn enabling_at_run_time_survives_the_tuners_own_changes() {
    let engine = engine(false);
    engine.set_autotune_enabled(true);
    let mut rng = SplitMix64(7);
    interval(&engine, &mut rng);
    engine.set_chaos(cold(8.0)).unwrap();
    assert!(matches!(interval(&engine, &mut rng), Decision::Applied(_)));
    assert!(engine.autotune_enabled(), "the tuner's change must not switch the tuner off");
    assert!(engine.config().autotune.enabled);
    engine.clear_chaos();
}

#[test]
fn an_operator_write_replaces_the_tuners_adjustments() {
    let engine = engine(true);
    let base = knobs(&engine);
    let mut rng = SplitMix64(8);
    interval(&engine, &mut rng);
    engine.set_chaos(cold(8.0)).unwrap();
    assert!(matches!(interval(&engine, &mut rng), Decision::Applied(_)));
    assert_ne!(knobs(&engine), base);
    engine.clear_chaos();
    // An unrelated operator write: the operator's config is back, the tuner's change is gone.
    engine.update_config(&json!({"recall": {"k": 5}})).unwrap();
    assert_eq!(knobs(&engine), base);
    assert_eq!(engine.config().recall.k, 5);
    assert_eq!(engine.autotune_state().to_json()["pending"], serde_json::Value::Null);
}

#[test]
fn the_background_thread_steps_once_per_interval_of_the_injected_clock() {
    let edges = generate::barabasi_albert(2_000, 4, 0.9, 3);
    let mut builder = edges.builder().unwrap();
    for v in 0..2_000u32 {
        builder.set_tier(v, [Tier::Hot, Tier::Warm, Tier::Cold][(v % 3) as usize]).unwrap();
    }
    let config = EngineConfig::default()
        .patched(&json!({"threads": 1, "spreading": {"max_depth": 4, "latency_budget_ms": 20},
                         "autotune": {"enabled": true, "interval_ms": 60_000}}))
        .unwrap();
    let clock = ManualClock::new(1_700_000_000_000);
    let engine = Engine::with_clock(builder.build().unwrap(), config, clock.clone()).unwrap();
    engine.set_breaker_override(BreakerOverride::ForcedClosed);
    let mut rng = SplitMix64(5);
    let mut workload = |engine: &Engine| {
        for _ in 0..30 {
            engine.recall(&Cue::nodes([rng.below(2_000) as u32])).unwrap();
        }
    };
    let changes = |engine: &Engine| engine.autotune_audit().len();
    let last_decision = |engine: &Engine| engine.autotune_state().to_json()["last_decision"].to_string();
    // The thread's first step takes the baseline; no change can come from it.
    workload(&engine);
    assert_eq!(last_decision(&engine), "null", "no step before the first interval elapsed");
    clock.advance(Duration::from_secs(60));
    // The thread looks at the clock at least once a second.
    assert!(
        eventually(Duration::from_secs(10), || last_decision(&engine).contains("baseline")),
        "the thread stepped once the interval elapsed: {}",
        last_decision(&engine)
    );
    assert_eq!(changes(&engine), 0);

    engine.set_chaos(cold(8.0)).unwrap();
    workload(&engine);
    // Pressure, but the interval has not elapsed on the engine's clock: nothing happens.
    std::thread::sleep(Duration::from_millis(1_300));
    assert_eq!(changes(&engine), 0, "no step before the interval: {:?}", engine.autotune_audit());
    clock.advance(Duration::from_secs(60));
    assert!(
        eventually(Duration::from_secs(5), || changes(&engine) == 1),
        "one step once the interval elapsed"
    );
    let after_first = engine.config();
    workload(&engine);
    std::thread::sleep(Duration::from_millis(1_300));
    assert_eq!(changes(&engine), 1, "at most one change per interval");
    assert_eq!(engine.config(), after_first);
    assert_eq!(engine.spreading_section().to_json()["autotune"]["changes_total"], 1);
    drop(engine); // joins the thread (a hang here fails the test by timeout)
}

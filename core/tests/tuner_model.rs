//! Property tests of the auto-tuner: whatever the statistics, recommendations and applied changes stay
//! inside the guardrails, nothing applies at or below the threshold, and the audit log stays bounded.

use axonal_core::EngineConfig;
use axonal_core::tuner::model::{self, Context, Ewma, IntervalStats, Knobs, Pins};
use axonal_core::tuner::{Decision, SpreadingAutoTuner, StepEnv};
use proptest::prelude::*;
use serde_json::json;

fn stats() -> impl Strategy<Value = IntervalStats> {
    (
        0u64..300,
        1e-5f64..0.3,
        0f64..1.0,
        prop::array::uniform3(0f64..0.3),
        0f64..1.0,
        prop::array::uniform3(prop_oneof![Just(0.0), 0f64..0.3]),
        prop_oneof![Just(0.0), 0f64..0.5],
        prop::collection::vec(0u64..10_000, 16),
        prop::collection::vec(0u64..10_000_000, 16),
        prop_oneof![Just(0.0), 0f64..4.0],
        prop::collection::vec((0usize..2049, 1u64..100), 0..20),
        0f64..6.0,
    )
        .prop_map(
            |(
                recalls,
                p95,
                mean_share,
                tier_p95,
                spread_share,
                truncation_rate,
                violation_rate,
                edges,
                nanos,
                pulls,
                tier_points,
                mean_depth_reached,
            )| {
                let mut tier_buckets: [Vec<u64>; 3] = Default::default();
                for (t, buckets) in tier_buckets.iter_mut().enumerate() {
                    *buckets = vec![0; 2049];
                    for &(i, c) in tier_points.iter().skip(t) {
                        buckets[i] += c;
                    }
                }
                IntervalStats {
                    recalls,
                    spreads: recalls,
                    p95,
                    mean: p95 * mean_share,
                    tier_p95,
                    spread_share,
                    truncation_rate,
                    violation_rate,
                    depth_edges: edges.try_into().unwrap(),
                    depth_nanos: nanos.try_into().unwrap(),
                    sampled_spread_time: p95 * spread_share,
                    pull_phases_per_recall: pulls,
                    mean_depth_reached,
                    tier_buckets,
                }
            },
        )
}

fn config() -> impl Strategy<Value = EngineConfig> {
    (1u32..=16, 1u32..=4096, 2u32..=6, 0u32..3, 8u32..=64, 0u32..64, 0.25f64..1.0, 1.0f64..3.0, 0f64..0.5, 1usize..8, 0.5f64..100.0)
        .prop_map(|(depth, batch, dlo, dspan, blo, bspan, mlo, mhi, min_improvement, capacity, budget)| {
            let patch = json!({
                "spreading": {"max_depth": depth, "batch_size": batch, "latency_budget_ms": budget},
                "autotune": {"min_improvement": min_improvement, "audit_capacity": capacity,
                             "guardrails": {"max_depth": [dlo, (dlo + dspan).min(16)], "batch_size": [blo, blo + bspan],
                                            "timeout_multiplier": [mlo, mhi]}}
            });
            EngineConfig::default().patched(&patch).unwrap()
        })
}

/// Every knob inside its guardrail — or, when the operator pinned it outside, at the operator's value.
fn inside(k: &Knobs, c: &EngineConfig) -> bool {
    let pins = Pins::of(&c.spreading, &c.autotune.guardrails);
    let unpinned = Knobs {
        max_depth: pins.max_depth.map_or(k.max_depth, |_| c.autotune.guardrails.max_depth[0]),
        batch_size: pins.batch_size.map_or(k.batch_size, |_| c.autotune.guardrails.batch_size[0]),
        ..*k
    };
    pins.max_depth.is_none_or(|d| d == k.max_depth)
        && pins.batch_size.is_none_or(|b| b == k.batch_size)
        && inside_guardrails(&unpinned, c)
}

/// Every knob inside its guardrail.
fn inside_guardrails(k: &Knobs, c: &EngineConfig) -> bool {
    let g = &c.autotune.guardrails;
    (g.max_depth[0]..=g.max_depth[1]).contains(&k.max_depth)
        && (g.batch_size[0]..=g.batch_size[1]).contains(&k.batch_size)
        && k.timeout_multiplier
            .iter()
            .all(|m| (g.timeout_multiplier[0] - 1e-9..=g.timeout_multiplier[1] + 1e-9).contains(m))
}

fn knobs_of(values: &axonal_core::tuner::KnobValues, base: &EngineConfig) -> Knobs {
    let b = &base.spreading.tier_timeouts_ms;
    let t = &values.tier_timeouts_ms;
    Knobs {
        max_depth: values.max_depth,
        batch_size: values.batch_size,
        timeout_multiplier: [t.hot / b.hot, t.warm / b.warm, t.cold / b.cold],
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(300))]

    #[test]
    fn recommendations_stay_inside_guardrails(s in stats(), config in config(), depth in 1u32..=16, batch in 1u32..=4096) {
        let mut e = Ewma::default();
        e.update(&s, depth);
        let knobs = Knobs { max_depth: depth, batch_size: batch, timeout_multiplier: [1.0; 3] };
        let context = Context {
            knobs,
            base_timeouts: [0.01, 0.02, 0.04],
            guardrails: &config.autotune.guardrails,
            pins: Pins::default(),
            budget: config.latency_budget().as_secs_f64(),
            threads: 2,
            nodes: 100_000,
            task_overhead: 2e-6,
            nodes_per_batch_unit: 256,
        };
        for candidate in model::recommend(&e, &s, &context) {
            prop_assert!(inside_guardrails(&candidate.knobs, &config), "{:?} outside {:?}", candidate.knobs, config.autotune.guardrails);
            prop_assert_ne!(candidate.knobs, knobs);
            prop_assert!(candidate.predicted.is_finite() && candidate.predicted >= 0.0);
        }
    }

    #[test]
    fn applied_changes_respect_threshold_guardrails_and_audit_capacity(
        intervals in prop::collection::vec(stats(), 1..25),
        config in config(),
    ) {
        let mut tuner = SpreadingAutoTuner::new(&config.spreading, &config.autotune);
        let env = StepEnv { spreading: &config.spreading, autotune: &config.autotune, now_unix_ms: 1, threads: 2, nodes: 50_000, task_overhead: 2e-6, nodes_per_batch_unit: 256 };
        for s in &intervals {
            let (decision, applied) = tuner.step_on_stats(s, &env);
            match &decision {
                Decision::Applied(entry) => {
                    if entry.action == "apply" {
                        prop_assert!(entry.predicted > config.autotune.min_improvement, "{:?}", entry);
                    }
                    prop_assert!(inside(&knobs_of(&entry.new, &config), &config), "{:?}", entry);
                    prop_assert!(applied.is_some());
                }
                Decision::RolledBack(entry) => {
                    prop_assert!(inside(&knobs_of(&entry.new, &config), &config), "{:?}", entry);
                    prop_assert!(applied.is_some());
                }
                Decision::NoChange(_) => prop_assert!(applied.is_none()),
            }
            if let Some(applied) = applied {
                let mut whole = config.clone();
                whole.spreading = applied;
                whole.validate().unwrap();
                let s = &whole.spreading;
                let written = Knobs { max_depth: s.max_depth, batch_size: s.batch_size, timeout_multiplier: [1.0; 3] };
                prop_assert!(inside(&written, &config), "{:?}", s);
            }
            prop_assert!(tuner.audit().len() <= config.autotune.audit_capacity);
        }
        // An operator lowering the capacity trims the log at once, keeping the newest entries.
        let newest = tuner.audit().last().cloned();
        let lowered = config.patched(&json!({"autotune": {"audit_capacity": 1}})).unwrap();
        tuner.operator_changed(&lowered.spreading, &lowered.autotune);
        prop_assert!(tuner.audit().len() <= 1);
        prop_assert_eq!(tuner.audit().last().cloned(), newest);
    }
}

#[test]
fn nothing_applies_when_the_best_prediction_is_at_the_threshold() {
    let config = EngineConfig::default().patched(&json!({"autotune": {"min_improvement": 0.5}})).unwrap();
    let mut tuner = SpreadingAutoTuner::new(&config.spreading, &config.autotune);
    let env = StepEnv {
        spreading: &config.spreading,
        autotune: &config.autotune,
        now_unix_ms: 1,
        threads: 1,
        nodes: 10,
        task_overhead: 0.0,
        nodes_per_batch_unit: 256,
    };
    // Latency pressure, and depth 3 holds exactly half of the propagation time, all of recall time.
    let mut s = IntervalStats {
        recalls: 100,
        spreads: 100,
        p95: 0.2,
        mean: 0.1,
        spread_share: 1.0,
        ..Default::default()
    };
    s.depth_nanos[0] = 1;
    s.depth_nanos[1] = 1;
    s.depth_nanos[2] = 2;
    let (decision, applied) = tuner.step_on_stats(&s, &env);
    assert!(applied.is_none());
    match decision {
        Decision::NoChange(reason) => {
            assert!(reason.contains("predicts 50.0 %") && reason.contains("threshold 50 %"), "{reason}")
        }
        other => panic!("{other:?}"),
    }
}

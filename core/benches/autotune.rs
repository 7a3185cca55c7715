//! The auto-tuner's predictions against what applying them actually did. Run:
//! `cargo bench -p axonal-core --bench autotune`. Under `cargo test --all-targets` it runs once at
//! small scale as a smoke test.
//!
//! Each scenario runs tuning intervals (a batch of recalls, then `autotune_now()`) and reports every
//! change the tuner applied with its predicted improvement and the improvement observed over the
//! next interval.

use axonal_core::chaos::TierLatency;
use axonal_core::generate::{self, SplitMix64};
use axonal_core::tuner::Decision;
use axonal_core::{BreakerOverride, ChaosConfig, Cue, Engine, EngineConfig, Tier};
use serde_json::{Value, json};

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let scale = if full { 1 } else { 10 };
    println!("## Auto-tuner: predicted vs observed improvement\n");
    println!("| scenario | action | change | predicted | observed |");
    println!("|---|---|---|---|---|");
    cold_tier_latency(scale);
    compute_bound_depth(scale);
    small_batches(scale);
}

fn engine(nodes: u32, patch: Value) -> Engine {
    let edges = generate::barabasi_albert(nodes, 4, 0.9, 11);
    let mut builder = edges.builder().unwrap();
    for v in 0..nodes {
        builder.set_tier(v, [Tier::Hot, Tier::Warm, Tier::Cold][(v % 3) as usize]).unwrap();
    }
    let mut config = EngineConfig::default().patched(&patch).unwrap();
    config.autotune.interval_ms = 86_400_000; // driven by autotune_now() below
    let engine = Engine::new(builder.build().unwrap(), config).unwrap();
    engine.set_breaker_override(BreakerOverride::ForcedClosed);
    engine
}

/// Run `intervals` tuning intervals of `recalls` recalls each; print every change with the improvement
/// observed over the interval after it.
fn run(name: &str, engine: &Engine, nodes: u32, recalls: usize, intervals: usize) {
    let mut rng = SplitMix64(5);
    for _ in 0..intervals {
        for _ in 0..recalls {
            engine.recall(&Cue::nodes([rng.below(nodes as u64) as u32])).unwrap();
        }
        let decision = engine.autotune_now();
        if std::env::var_os("AUTOTUNE_DEBUG").is_some() {
            eprintln!("{name}: {decision:?}");
        }
        if let Decision::RolledBack(entry) = decision {
            println!(
                "| {name} | rollback | {} | | {:+.1} % |",
                describe(&entry.old, &entry.new),
                entry.observed.unwrap_or(0.0) * 100.0
            );
        }
    }
    for entry in engine.autotune_audit().iter().filter(|e| e.action != "rollback") {
        let observed = entry.observed.map_or("—".to_owned(), |o| format!("{:+.1} %", o * 100.0));
        println!(
            "| {name} | {} | {} | {:.1} % | {observed} |",
            entry.action,
            describe(&entry.old, &entry.new),
            entry.predicted * 100.0
        );
    }
}

fn describe(old: &axonal_core::tuner::KnobValues, new: &axonal_core::tuner::KnobValues) -> String {
    let mut parts = Vec::new();
    if old.max_depth != new.max_depth {
        parts.push(format!("max_depth {} → {}", old.max_depth, new.max_depth));
    }
    if old.batch_size != new.batch_size {
        parts.push(format!("batch_size {} → {}", old.batch_size, new.batch_size));
    }
    for (tier, (a, b)) in [
        ("hot", (old.tier_timeouts_ms.hot, new.tier_timeouts_ms.hot)),
        ("warm", (old.tier_timeouts_ms.warm, new.tier_timeouts_ms.warm)),
        ("cold", (old.tier_timeouts_ms.cold, new.tier_timeouts_ms.cold)),
    ] {
        if a != b {
            parts.push(format!("{tier} timeout {a} → {b} ms"));
        }
    }
    parts.join(", ")
}

/// Injected cold-tier latency (8 ms per cold phase, every depth) over a 20 ms budget.
fn cold_tier_latency(scale: usize) {
    let nodes = 20_000 / scale as u32;
    let engine = engine(nodes, json!({"threads": 1, "spreading": {"max_depth": 4, "latency_budget_ms": 20}}));
    engine.autotune_now();
    let cold = TierLatency { cold: 8.0, ..Default::default() };
    engine.set_chaos(ChaosConfig { latency_ms: cold, seed: Some(1), ..Default::default() }).unwrap();
    run("cold tier +8 ms per phase, 20 ms budget", &engine, nodes, 40 / scale.min(4), 6);
    engine.clear_chaos();
}

/// No faults: a deep spread over a large graph is simply slower than a tight budget.
fn compute_bound_depth(scale: usize) {
    let nodes = 100_000 / scale as u32;
    let engine = engine(
        nodes,
        json!({"threads": 2, "spreading": {"max_depth": 6, "threshold": 0.001, "latency_budget_ms": 3,
               "tier_timeouts_ms": {"hot": 0, "warm": 0, "cold": 0}},
               "autotune": {"guardrails": {"max_depth": [2, 6]}}}),
    );
    engine.autotune_now();
    run("compute-bound, depth 6, 3 ms budget", &engine, nodes, 40 / scale.min(4), 8);
}

/// The batch-size model: depth pinned by its guardrail, small batches on a graph whose spreads pull,
/// so the only lever left is fewer, larger parallel tasks. The 2 % threshold lets the (small)
/// predicted saving apply, so that it can be compared with what happened.
fn small_batches(scale: usize) {
    let nodes = 200_000 / scale as u32;
    let engine = engine(
        nodes,
        json!({"threads": 2, "spreading": {"max_depth": 4, "batch_size": 8, "threshold": 0.0, "latency_budget_ms": 1,
               "tier_timeouts_ms": {"hot": 0, "warm": 0, "cold": 0}},
               "autotune": {"min_improvement": 0.02, "guardrails": {"max_depth": [4, 4], "batch_size": [8, 128]}}}),
    );
    engine.autotune_now();
    let name = "pinned depth 4, batch 8, 1 ms budget";
    run(name, &engine, nodes, 40 / scale.min(4), 8);
    // The tuner measured the per-task cost and declined (its prediction is below even 2 %). Check
    // that prediction the other way round: apply the doublings by hand and observe the mean.
    let mut rng = SplitMix64(8);
    let recalls = 200 / scale;
    let mut mean = |engine: &Engine| {
        let start = std::time::Instant::now();
        for _ in 0..recalls {
            engine.recall(&Cue::nodes([rng.below(nodes as u64) as u32])).unwrap();
        }
        start.elapsed().as_secs_f64() / recalls as f64
    };
    // The tuner's prediction for batch 8 → 16, from the next interval in which a parallel pull ran.
    let mut predicted = None;
    for _ in 0..4 {
        mean(&engine);
        if let Decision::NoChange(reason) = engine.autotune_now() {
            predicted = reason
                .split("predicts ")
                .nth(1)
                .and_then(|rest| rest.split(' ').next())
                .and_then(|value| value.parse::<f64>().ok());
        }
        if predicted.is_some() {
            break;
        }
    }
    let mut before = mean(&engine);
    for batch in [16, 32, 64, 128] {
        let old = engine.config().spreading.batch_size;
        engine.update_config(&json!({"spreading": {"batch_size": batch}})).unwrap();
        let after = mean(&engine);
        println!(
            "| {name} | by hand (tuner declined) | batch_size {old} → {batch} | {} | {:+.1} % |",
            predicted.filter(|_| old == 8).map_or("—".to_owned(), |p| format!("{p:.1} %")),
            (before - after) / before * 100.0
        );
        before = after;
    }
}

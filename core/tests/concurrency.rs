//! Recalls from 8 threads while `replace_graph` and config updates happen: no panic, and every recall
//! answers from one consistent graph and one consistent config.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};

use axonal_core::{Cue, Engine, EngineConfig, Graph, Source};
use serde_json::json;

fn cycle(weight: f32) -> Graph {
    let src: Vec<u32> = (0..5).collect();
    let dst: Vec<u32> = (0..5).map(|i| (i + 1) % 5).collect();
    Graph::from_edges(5, &src, &dst, &[weight; 5]).unwrap()
}

/// Expected `(node, activation)` for graph weight `w`, decay 0.8, depth `d`.
fn expected(w: f32, depth: u32) -> Vec<(u32, f32)> {
    let mut a = 1.0f32;
    let mut rows = vec![(0, 1.0)];
    for node in 1..=depth {
        a = a * 0.8 * w;
        rows.push((node, a));
    }
    rows
}

#[test]
fn recalls_stay_consistent_under_graph_and_config_swaps() {
    // Tier timeouts off: with 9 threads on 2 cores a preempted phase may legitimately time out, and
    // this test is about consistency, not timing.
    let config = EngineConfig::default()
        .patched(&json!({"spreading": {"tier_timeouts_ms": {"hot": 0, "warm": 0, "cold": 0}}}))
        .unwrap();
    let engine = Engine::new(cycle(1.0), config).unwrap();
    engine.update_config(&json!({"spreading": {"latency_budget_ms": 1e6}})).unwrap();
    let patterns: Vec<Vec<(u32, f32)>> =
        [1.0, 0.5].iter().flat_map(|&w| [2, 3].map(|d| expected(w, d))).collect();
    let stop = AtomicBool::new(false);
    let recalls = AtomicUsize::new(0);
    let graphs = [Arc::new(cycle(1.0)), Arc::new(cycle(0.5))];
    std::thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| {
                while !stop.load(Ordering::Relaxed) {
                    let recall = engine.recall(&Cue::nodes([0])).unwrap();
                    assert_eq!(recall.source, Source::Spreading);
                    let rows: Vec<(u32, f32)> =
                        recall.results.iter().map(|a| (a.node, a.activation)).collect();
                    assert!(
                        patterns.iter().any(|p| p.len() == rows.len()
                            && p.iter().zip(&rows).all(|(e, r)| e.0 == r.0 && (e.1 - r.1).abs() < 1e-6)),
                        "inconsistent recall {rows:?} {:?}",
                        recall.stats
                    );
                    recalls.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
        for i in 0..400 {
            engine.replace_graph(Arc::clone(&graphs[i % 2]));
            engine.update_config(&json!({"spreading": {"max_depth": 2 + (i % 2)}})).unwrap();
            std::thread::yield_now();
        }
        stop.store(true, Ordering::Relaxed);
    });
    assert!(recalls.load(Ordering::Relaxed) > 0);
    assert_eq!(engine.pool_in_use(), 0);
}

#[test]
fn pooled_pull_from_many_threads_matches_single_thread() {
    // Big enough that recalls pull on the pool (nodes + edges ≥ 200 000).
    let n = 40_000u32;
    let mut src = Vec::new();
    let mut dst = Vec::new();
    for v in 0..n {
        for k in [1, 7, 101, 4001] {
            src.push(v);
            dst.push((v * 31 + k) % n);
        }
    }
    let weights: Vec<f32> = (0..src.len()).map(|i| 0.5 + (i % 5) as f32 / 10.0).collect();
    let graph = Arc::new(Graph::from_edges(n, &src, &dst, &weights).unwrap());
    let config = |threads: usize| {
        // Timeouts off and a generous budget: 8 threads on 2 cores in a debug build are slow, and a
        // slow call would (rightly) be answered by the fallback.
        let patch = json!({"threads": threads, "spreading": {"max_depth": 8, "threshold": 0.0001,
                           "tier_timeouts_ms": {"hot": 0, "warm": 0, "cold": 0}, "latency_budget_ms": 1e6},
                           "autotune": {"guardrails": {"max_depth": [2, 8]}}});
        EngineConfig::default().patched(&patch).unwrap()
    };
    let single = Engine::new(Arc::clone(&graph), config(1)).unwrap();
    let pooled = Engine::new(Arc::clone(&graph), config(4)).unwrap();
    let cue = Cue::nodes([0, 17, 999]).with_k(1000);
    let baseline = single.recall(&cue).unwrap();
    assert_eq!(baseline.results.len(), 1000, "{:?}", baseline.stats);
    assert!(baseline.stats.pulled, "the frontier grows past the pull threshold");
    std::thread::scope(|scope| {
        for _ in 0..8 {
            scope.spawn(|| {
                for _ in 0..3 {
                    let recall = pooled.recall(&cue).unwrap();
                    assert_eq!(recall.source, axonal_core::Source::Spreading);
                    assert!(recall.results == baseline.results, "pooled results differ from single-thread");
                    assert_eq!(recall.stats.mass.to_bits(), baseline.stats.mass.to_bits());
                }
            });
        }
    });
}

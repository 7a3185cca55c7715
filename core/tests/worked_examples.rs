//! The three worked examples of docs/spec.md §3, through the engine's recall path.

use axonal_core::{Cue, CyclePolicy, Engine, EngineConfig, Graph, Source};

fn engine(n: u32, edges: &[(u32, u32, f32)], configure: impl FnOnce(&mut EngineConfig)) -> Engine {
    let src: Vec<u32> = edges.iter().map(|e| e.0).collect();
    let dst: Vec<u32> = edges.iter().map(|e| e.1).collect();
    let weight: Vec<f32> = edges.iter().map(|e| e.2).collect();
    let graph = Graph::from_edges(n, &src, &dst, &weight).expect("valid graph");
    let mut config = EngineConfig::default();
    configure(&mut config);
    Engine::new(graph, config).expect("engine")
}

fn activations(recall: &axonal_core::Recall) -> Vec<(u32, f32, u32)> {
    let mut rows: Vec<_> = recall.results.iter().map(|a| (a.node, a.activation, a.hops)).collect();
    rows.sort_by_key(|r| r.0);
    rows
}

fn assert_close(actual: f64, expected: f64) {
    assert!((actual - expected).abs() < 1e-6, "expected {expected}, got {actual}");
}

#[test]
fn cycle_of_five_depth_three() {
    let edges: Vec<_> = (0..5).map(|i| (i, (i + 1) % 5, 1.0)).collect();
    let engine = engine(5, &edges, |c| c.spreading.max_depth = 3);
    let recall = engine.recall(&Cue::nodes([0])).unwrap();
    assert_eq!(recall.source, Source::Spreading);
    let rows = activations(&recall);
    let expected = [(0, 1.0, 0), (1, 0.8, 1), (2, 0.64, 2), (3, 0.512, 3)];
    assert_eq!(rows.len(), 4, "node 4 must not be reached: {rows:?}");
    for ((node, a, hops), (en, ea, eh)) in rows.iter().zip(expected) {
        assert_eq!((*node, *hops), (en, eh));
        assert_close(*a as f64, ea);
    }
    assert_close(recall.stats.mass, 1.952);
    assert_eq!(recall.stats.depth_reached, 3);
    assert_eq!(recall.stats.total_edges_traversed(), 3);
    // Sorted by activation descending.
    let order: Vec<u32> = recall.results.iter().map(|a| a.node).collect();
    assert_eq!(order, vec![0, 1, 2, 3]);
}

#[test]
fn diamond_depth_two() {
    let edges = [(0, 1, 0.5), (0, 2, 0.5), (1, 3, 1.0), (2, 3, 1.0)];
    let engine = engine(4, &edges, |c| c.spreading.max_depth = 2);
    let recall = engine.recall(&Cue::nodes([0])).unwrap();
    let rows = activations(&recall);
    assert_eq!(rows.len(), 4);
    assert_close(rows[1].1 as f64, 0.4);
    assert_close(rows[2].1 as f64, 0.4);
    assert_close(rows[3].1 as f64, 0.64);
    assert_eq!(rows[3].2, 2);
    // Ties (nodes 1 and 2) are ordered by id.
    let order: Vec<u32> = recall.results.iter().map(|a| a.node).collect();
    assert_eq!(order, vec![0, 3, 1, 2]);
}

#[test]
fn two_cycle_fire_once_and_reverberate() {
    let edges = [(0, 1, 1.0), (1, 0, 1.0)];
    for (policy, a1, mass) in [(CyclePolicy::FireOnce, 0.5, 0.5), (CyclePolicy::Reverberate, 0.625, 0.625)] {
        let engine = engine(2, &edges, |c| {
            c.spreading.decay = 0.5;
            c.spreading.max_depth = 4;
            c.spreading.cycle_policy = policy;
        });
        let recall = engine.recall(&Cue::nodes([0])).unwrap();
        let rows = activations(&recall);
        assert_eq!(rows.len(), 2, "{policy:?}");
        assert_close(rows[0].1 as f64, 1.0);
        assert_close(rows[1].1 as f64, a1);
        assert_close(recall.stats.mass, mass);
    }
}

//! The recall pipeline: failure classification, fallback answers, similarity seeding, config and graph
//! swaps, and the scratch pool.

use std::sync::Arc;

use axonal_core::ToJson;
use axonal_core::{BreakerOverride, Cue, Engine, EngineConfig, FallbackReason, Graph, GraphBuilder, Source};
use serde_json::json;

fn star() -> Graph {
    // 0 → 1 (0.5), 0 → 2 (1.0), 1 → 3 (1.0), 2 → 3 (0.5); 4 isolated.
    Graph::from_edges(5, &[0, 0, 1, 2], &[1, 2, 3, 3], &[0.5, 1.0, 1.0, 0.5]).unwrap()
}

fn engine_with(graph: Graph, patch: serde_json::Value) -> Engine {
    Engine::new(graph, EngineConfig::default().patched(&patch).unwrap()).unwrap()
}

#[test]
fn forced_open_breaker_answers_with_seeds_and_direct_neighbours() {
    let engine = engine_with(star(), json!({}));
    engine.set_breaker_override(BreakerOverride::ForcedOpen);
    let recall = engine.recall(&Cue::weighted([(0, 0.8)])).unwrap();
    assert_eq!(recall.source, Source::Fallback);
    assert_eq!(recall.reason, Some(FallbackReason::BreakerOpen));
    let rows: Vec<_> = recall.results.iter().map(|a| (a.node, a.activation, a.hops)).collect();
    assert_eq!(rows, vec![(0, 0.8, 0), (2, 0.8, 1), (1, 0.4, 1)], "no second hop in the fallback");
    assert_eq!(recall.stats.depth_reached, 0);
    engine.set_breaker_override(BreakerOverride::Auto);
    assert_eq!(engine.recall(&Cue::nodes([0])).unwrap().source, Source::Spreading);
}

#[test]
fn slow_calls_answer_with_the_fallback() {
    let engine = engine_with(star(), json!({"spreading": {"latency_budget_ms": 1e-9}}));
    let recall = engine.recall(&Cue::nodes([0])).unwrap();
    assert_eq!((recall.source, recall.reason), (Source::Fallback, Some(FallbackReason::Slow)));
    // The fallback answer, not the spread's (node 3 is two hops away).
    assert!(recall.results.iter().all(|a| a.node != 3));
    assert!(recall.stats.depth_reached > 0, "the spread ran and its stats are kept");
}

#[test]
fn low_mass_is_a_failure_only_when_a_seed_fired_along_an_edge() {
    let engine = engine_with(star(), json!({"recall": {"min_activation_mass": 100.0}}));
    let recall = engine.recall(&Cue::nodes([0])).unwrap();
    assert_eq!(recall.reason, Some(FallbackReason::LowMass));
    // The isolated node fires along no edge: an empty spread is an honest answer, not a failure.
    let recall = engine.recall(&Cue::nodes([4])).unwrap();
    assert_eq!((recall.source, recall.reason), (Source::Spreading, None));
    assert_eq!(recall.results.len(), 1);
}

#[test]
fn classification_order_error_then_slow_then_low_mass() {
    use axonal_core::SpreadStats;
    use axonal_core::recall::classify;
    use std::time::Duration;
    let mut stats = SpreadStats::default();
    stats.edges_traversed[0] = 3;
    stats.mass = 0.0;
    let ms = Duration::from_millis;
    assert_eq!(classify(None, ms(1), ms(75), 0.0), Some(FallbackReason::Error));
    assert_eq!(classify(Some(&stats), ms(80), ms(75), 0.0), Some(FallbackReason::Slow));
    assert_eq!(classify(Some(&stats), ms(1), ms(75), 0.0), Some(FallbackReason::LowMass));
    // Low mass judges the activation delivered along edges (seeds included), not the non-seed mass.
    stats.mass = 0.5;
    assert_eq!(classify(Some(&stats), ms(1), ms(75), 0.0), Some(FallbackReason::LowMass));
    stats.mass = 0.0;
    stats.delivered = 0.5;
    assert_eq!(classify(Some(&stats), ms(1), ms(75), 0.0), None);
    assert_eq!(classify(Some(&stats), ms(75), ms(75), 0.0), None, "at the limit is not slow");
}

fn embedded() -> Graph {
    let mut b = GraphBuilder::new(4);
    b.add_edges(&[0, 1], &[2, 3], &[1.0, 1.0]).unwrap();
    b.set_embedding(0, &[1.0, 0.0]).unwrap();
    b.set_embedding(1, &[0.6, 0.8]).unwrap();
    b.set_embedding(2, &[-1.0, 0.0]).unwrap();
    b.build().unwrap()
}

#[test]
fn embedding_seeds_are_the_top_similar_nodes() {
    let engine = engine_with(embedded(), json!({"recall": {"seed_k": 1}}));
    let recall = engine.recall(&Cue::embedding(vec![1.0, 0.0])).unwrap();
    let rows: Vec<_> = recall.results.iter().map(|a| (a.node, a.activation, a.hops)).collect();
    assert_eq!(rows, vec![(0, 1.0, 0), (2, 0.8, 1)]);
    let engine = engine_with(embedded(), json!({"recall": {"seed_k": 5}}));
    let recall = engine.recall(&Cue::embedding(vec![1.0, 0.0])).unwrap();
    let seeds: Vec<_> = recall.results.iter().filter(|a| a.hops == 0).map(|a| a.node).collect();
    assert_eq!(seeds, vec![0, 1], "node 2 is dissimilar (cosine -1), node 3 has no embedding");
    let engine = engine_with(embedded(), json!({"recall": {"min_similarity": 0.9}}));
    let recall = engine.recall(&Cue::embedding(vec![0.6, 0.8])).unwrap();
    assert_eq!(recall.results.iter().filter(|a| a.hops == 0).count(), 1);
}

#[test]
fn fallback_with_embeddings_ranks_by_similarity() {
    let engine = engine_with(embedded(), json!({}));
    engine.set_breaker_override(BreakerOverride::ForcedOpen);
    let recall = engine.recall(&Cue::embedding(vec![1.0, 0.0]).with_k(2)).unwrap();
    let nodes: Vec<_> = recall.results.iter().map(|a| a.node).collect();
    assert_eq!(nodes, vec![0, 1]);
    assert!((recall.results[1].activation - 0.6).abs() < 1e-6);
}

#[test]
fn k_truncates_and_json_round_trips() {
    let engine = engine_with(star(), json!({"recall": {"k": 2}}));
    assert_eq!(engine.recall(&Cue::nodes([0])).unwrap().results.len(), 2);
    assert_eq!(engine.recall(&Cue::nodes([0]).with_k(10)).unwrap().results.len(), 4);
    let text = engine.recall_json(r#"{"seeds": {"0": 1.0, "1": 0.5}, "k": 3}"#).unwrap();
    let value: serde_json::Value = serde_json::from_str(&text).unwrap();
    assert_eq!(value["source"], "spreading");
    assert_eq!(value["reason"], serde_json::Value::Null);
    assert_eq!(value["results"].as_array().unwrap().len(), 3);
    assert_eq!(value["results"][0]["tier"], "hot");
    for key in
        ["depth_reached", "nodes_fired", "edges_traversed", "mass", "truncated", "backend", "latency_us"]
    {
        assert!(value["stats"].get(key).is_some(), "stats.{key} missing: {text}");
    }
    assert_eq!(value["stats"]["backend"], "cpu");
}

#[test]
fn labels_appear_in_json_results() {
    let mut b = GraphBuilder::new(2);
    b.add_edge(0, 1, 1.0).unwrap();
    b.set_label(0, "doctor").unwrap();
    b.set_label(1, "nurse").unwrap();
    let engine = engine_with(b.build().unwrap(), json!({}));
    let value: serde_json::Value =
        serde_json::from_str(&engine.recall_json(r#"{"seeds": [0]}"#).unwrap()).unwrap();
    assert_eq!(value["results"][1]["label"], "nurse");
}

#[test]
fn duplicate_seeds_sum_and_cap() {
    let engine = engine_with(star(), json!({}));
    let recall = engine.recall(&Cue::weighted([(1, 0.3), (1, 0.4), (2, 0.7), (2, 0.9)])).unwrap();
    let seed = |n| recall.results.iter().find(|a| a.node == n).unwrap().activation;
    assert!((seed(1) - 0.7).abs() < 1e-6);
    assert_eq!(seed(2), 1.0);
}

#[test]
fn update_config_applies_and_rejects_fixed_fields() {
    let engine = engine_with(star(), json!({}));
    // Node 3 fires at depth 2 (F is non-empty even though it has no out-edges).
    assert_eq!(engine.recall(&Cue::nodes([0])).unwrap().stats.depth_reached, 3);
    let patch = json!({"spreading": {"max_depth": 1}, "autotune": {"guardrails": {"max_depth": [1, 6]}}});
    let applied = engine.update_config(&patch).unwrap();
    assert_eq!(applied.spreading.max_depth, 1);
    assert_eq!(engine.config().spreading.max_depth, 1);
    assert_eq!(engine.recall(&Cue::nodes([0])).unwrap().stats.depth_reached, 1);
    let e = engine.update_config(&json!({"threads": 3})).unwrap_err();
    assert!(e.to_string().contains("threads"), "{e}");
    let e = engine.update_config(&json!({"spreading": {"decay": 2.0}})).unwrap_err();
    assert!(e.to_string().contains("spreading.decay"), "{e}");
    assert_eq!(engine.config().spreading.max_depth, 1, "a rejected patch changes nothing");
}

#[test]
fn operator_writes_outside_the_guardrails_apply_as_given_and_are_pinned() {
    let engine = engine_with(star(), json!({}));
    let applied = engine.update_config(&json!({"spreading": {"max_depth": 12, "batch_size": 1000}})).unwrap();
    assert_eq!(
        (applied.spreading.max_depth, applied.spreading.batch_size),
        (12, 1000),
        "guardrails [2, 6] and [8, 128] bound the tuner, not the operator"
    );
    assert_eq!(engine.config().spreading.max_depth, 12);
    assert_eq!(
        engine.autotune_state().to_json()["pinned"],
        json!(["spreading.max_depth", "spreading.batch_size"])
    );
    assert_eq!(
        engine.autotune_audit_log().to_json()["pinned"],
        json!(["spreading.max_depth", "spreading.batch_size"])
    );
    // max_depth 1 means one depth (it was silently clamped to 2 before revision 2 of the spec).
    let applied = engine.update_config(&json!({"spreading": {"max_depth": 1, "batch_size": 64}})).unwrap();
    assert_eq!((applied.spreading.max_depth, applied.spreading.batch_size), (1, 64));
    assert_eq!(engine.recall(&Cue::nodes([0])).unwrap().stats.depth_reached, 1);
    assert_eq!(engine.autotune_state().to_json()["pinned"], json!(["spreading.max_depth"]));
    // Back inside: nothing is pinned.
    engine.update_config(&json!({"spreading": {"max_depth": 3}})).unwrap();
    assert_eq!(engine.autotune_state().to_json()["pinned"], json!([]));
}

#[test]
fn the_creation_config_applies_as_given() {
    // A 12-node chain: a depth-12 spread from node 0 goes 11 hops.
    let chain = Graph::from_edges(12, &(0..11).collect::<Vec<_>>(), &(1..12).collect::<Vec<_>>(), &[1.0; 11])
        .unwrap();
    let engine = engine_with(chain, json!({"spreading": {"max_depth": 12, "batch_size": 2, "decay": 1.0}}));
    let config = engine.config();
    assert_eq!((config.spreading.max_depth, config.spreading.batch_size), (12, 2));
    // The engine runs what it reports: eleven hops, the whole chain.
    let recall = engine.recall(&Cue::nodes([0]).with_k(12)).unwrap();
    assert_eq!(recall.stats.depth_reached, 12);
    assert_eq!(recall.results.iter().map(|a| a.hops).max(), Some(11));
}

#[test]
#[cfg(not(feature = "opencl"))]
fn opencl_required_without_backend_is_a_clear_error() {
    for mode in ["required", "always"] {
        let config = EngineConfig::from_json(&format!(r#"{{"opencl": "{mode}"}}"#)).unwrap();
        let e = Engine::new(star(), config).err().expect("no OpenCL backend in this build");
        assert!(e.to_string().starts_with("opencl:"), "{e}");
    }
}

#[test]
fn replace_graph_takes_effect_for_new_recalls() {
    let engine = engine_with(star(), json!({}));
    let first = engine.recall(&Cue::nodes([0])).unwrap();
    engine.replace_graph(Graph::from_edges(5, &[0], &[4], &[1.0]).unwrap());
    let second = engine.recall(&Cue::nodes([0])).unwrap();
    assert_ne!(first.results, second.results);
    assert_eq!(second.results.iter().map(|a| a.node).collect::<Vec<_>>(), vec![0, 4]);
    // A larger graph resizes the scratch buffers.
    engine.replace_graph(Arc::new(Graph::from_edges(1000, &[0, 999], &[999, 998], &[1.0, 1.0]).unwrap()));
    assert_eq!(engine.recall(&Cue::nodes([0])).unwrap().results.len(), 3);
}

#[test]
fn scratch_pool_reuses_buffers() {
    let engine = engine_with(star(), json!({}));
    assert_eq!((engine.pool_in_use(), engine.pool_capacity()), (0, 0));
    for _ in 0..100 {
        engine.recall(&Cue::nodes([0])).unwrap();
    }
    assert_eq!((engine.pool_in_use(), engine.pool_capacity()), (0, 1));
    std::thread::scope(|scope| {
        for _ in 0..4 {
            scope.spawn(|| {
                for _ in 0..200 {
                    engine.recall(&Cue::nodes([0])).unwrap();
                }
            });
        }
    });
    assert_eq!(engine.pool_in_use(), 0);
    assert!((1..=4).contains(&engine.pool_capacity()));
}

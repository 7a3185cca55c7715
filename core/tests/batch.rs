//! Batched recall (docs/spec.md §19): every cue of a batch gets the answer its own recall gives —
//! bit for bit, small and large cues, seeds and embeddings, in parallel or not — with its own
//! source, reason, breaker admission and telemetry; and every malformed batch is an error naming the
//! cue or offset at fault, with nothing recalled.

use axonal_core::recall::batch_from_csr;
use axonal_core::{
    BreakerOverride, Cue, Engine, EngineConfig, ErrorKind, FallbackReason, Graph, GraphBuilder, Recall,
    Source, Tier, generate,
};
use std::sync::Arc;

use proptest::prelude::*;
use serde_json::json;

fn config(threads: usize, k: usize) -> EngineConfig {
    EngineConfig::default()
        .patched(&json!({"threads": threads, "opencl": "off", "autotune": {"enabled": false},
                         "spreading": {"tier_timeouts_ms": {"hot": 0, "warm": 0, "cold": 0}, "latency_budget_ms": 60000},
                         
                         "recall": {"k": k}}))
        .unwrap()
}

/// What a recall answered, bit for bit: results, who answered and why, and the spread's stats
/// (times excepted). How it ran (`pulled`, `pull_phases`) is compared only for cues that ran alone:
/// a cue of a group sharing passes pulled every depth, and its group's phases count once.
fn bits(r: &Recall) -> impl PartialEq + std::fmt::Debug {
    let results: Vec<_> =
        r.results.iter().map(|a| (a.node, a.activation.to_bits(), a.hops, a.tier)).collect();
    let s = &r.stats;
    (
        results,
        r.source,
        r.reason,
        r.graph_version,
        (s.depth_reached, s.nodes_fired, s.edges_traversed, s.mass.to_bits(), s.delivered.to_bits()),
        (s.truncated, s.backend),
        (s.shared_lanes == 0).then_some((s.pulled, s.pull_phases)),
    )
}

/// Cues of `seeds_per_cue` random seeds (some repeated, some weighted), the last few large.
fn cues(n: u32, count: usize, seeds_per_cue: usize, seed: u64) -> Vec<Cue> {
    let mut rng = generate::SplitMix64(seed);
    (0..count)
        .map(|i| {
            let seeds = (0..seeds_per_cue)
                .map(|_| {
                    (
                        rng.below(n as u64) as u32,
                        if i % 3 == 0 { 0.25 + 0.75 * rng.unit() as f32 } else { 1.0 },
                    )
                })
                .collect::<Vec<_>>();
            Cue { seeds, embedding: None, k: (i % 4 == 1).then_some(3 + i % 7) }
        })
        .collect()
}

fn assert_batch_matches_one_by_one(graph: Arc<Graph>, threads: usize, cues: &[Cue]) {
    let one = Engine::new(Arc::clone(&graph), config(threads, 50)).unwrap();
    let batch = Engine::new(graph, config(threads, 50)).unwrap();
    let expected: Vec<_> = cues.iter().map(|c| one.recall(c).unwrap()).collect();
    let got = batch.recall_batch(cues).unwrap();
    assert_eq!(got.len(), cues.len());
    for (i, (e, g)) in expected.iter().zip(&got).enumerate() {
        let mut e = e.clone();
        e.stats.shared_lanes = g.stats.shared_lanes;
        assert_eq!(bits(&e), bits(g), "cue {i}: {:?}", cues[i]);
    }
}

/// How many of `batch`'s answers came from groups sharing passes.
fn shared(batch: &[Recall]) -> usize {
    batch.iter().filter(|r| r.stats.shared_lanes > 0).count()
}

#[test]
fn a_batch_of_small_cues_answers_each_as_its_own_recall() {
    let graph = generate::barabasi_albert(5_000, 4, 0.9, 7).build().unwrap().into();
    for threads in [1, 2] {
        assert_batch_matches_one_by_one(Arc::clone(&graph), threads, &cues(5_000, 200, 5, 1));
    }
}

#[test]
fn large_cues_that_pull_answer_as_their_own_recall() {
    // Seeds covering most of the graph make every depth a pull, on the pool with 2 threads.
    let graph: Arc<Graph> = generate::uniform(60_000, 300_000, 0.1, 3).build().unwrap().into();
    let mut batch = cues(60_000, 6, 20_000, 2);
    batch.extend(cues(60_000, 6, 3, 5));
    for threads in [1, 2] {
        assert_batch_matches_one_by_one(Arc::clone(&graph), threads, &batch);
    }
}

#[test]
fn large_cues_share_passes_and_answer_as_their_own_recall() {
    // Cues that reach most of a BA graph: the first runs alone, the rest in groups of eight lanes.
    let mut b = generate::barabasi_albert(6_000, 4, 0.9, 5).builder().unwrap();
    for v in (0..6_000).step_by(3) {
        b.set_tier(v, if v % 2 == 0 { Tier::Warm } else { Tier::Cold }).unwrap();
    }
    let graph: Arc<Graph> = b.build().unwrap().into();
    for (count, last) in [(25, 8), (21, 4), (19, 0)] {
        let batch = cues(6_000, count, 300, 8);
        for threads in [1, 2] {
            assert_batch_matches_one_by_one(Arc::clone(&graph), threads, &batch);
            let engine = Engine::new(Arc::clone(&graph), config(threads, 50)).unwrap();
            let answers = engine.recall_batch(&batch).unwrap();
            assert_eq!(answers[0].stats.shared_lanes, 0, "the first cue runs alone");
            assert!(answers[1..17].iter().all(|r| r.stats.shared_lanes == 8));
            // Four cues left make a group; two would not pay for its passes and run alone.
            assert_eq!(answers[count - 1].stats.shared_lanes, last, "{count} cues");
            assert_eq!(shared(&answers), 16 + last as usize);
            assert!(answers.iter().all(|r| r.stats.pulled), "every depth here is a pull");
        }
    }
}

#[test]
fn a_batch_too_small_for_a_group_runs_its_cues_alone() {
    let graph: Arc<Graph> = generate::barabasi_albert(6_000, 4, 0.9, 5).build().unwrap().into();
    let engine = Engine::new(Arc::clone(&graph), config(2, 50)).unwrap();
    // The first alone and a group of 3 would never pay for the group's passes.
    let answers = engine.recall_batch(&cues(6_000, 4, 300, 8)).unwrap();
    assert_eq!(shared(&answers), 0);
    assert_batch_matches_one_by_one(graph, 2, &cues(6_000, 4, 300, 8));
}

#[test]
fn small_cues_run_alone() {
    let graph: Arc<Graph> = generate::barabasi_albert(6_000, 4, 0.9, 5).build().unwrap().into();
    let engine = Engine::new(graph, config(2, 10)).unwrap();
    let answers = engine.recall_batch(&cues(6_000, 64, 2, 3)).unwrap();
    assert_eq!(shared(&answers), 0);
}

fn embedded_graph(n: u32) -> Graph {
    let mut b = generate::barabasi_albert(n, 3, 0.8, 11).builder().unwrap();
    let vectors = generate::mixture(n as usize, 8, 20, 4);
    for v in 0..n {
        b.set_embedding(v, &vectors[v as usize * 8..(v as usize + 1) * 8]).unwrap();
    }
    b.build().unwrap()
}

#[test]
fn embedding_cues_in_a_batch_answer_as_their_own_recall() {
    let n = 2_000;
    let queries = generate::mixture_queries(12, 8, 20, 9);
    let mut cues: Vec<Cue> = queries.chunks(8).map(|q| Cue::embedding(q.to_vec())).collect();
    cues[3].seeds = vec![(5, 1.0), (9, 0.5)];
    cues.push(Cue::nodes([1, 2, 3]));
    for threads in [1, 2] {
        assert_batch_matches_one_by_one(embedded_graph(n).into(), threads, &cues);
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn batches_on_random_graphs_match_one_by_one(
        n in 2u32..300,
        edges in proptest::collection::vec((0u32..300, 0u32..300, 1u32..=10), 0..1500),
        batch in proptest::collection::vec(proptest::collection::vec((0u32..300, 1u32..=4), 1..6), 0..40),
        threads in 1usize..=2,
    ) {
        let mut b = GraphBuilder::new(n);
        for &(s, d, w) in &edges {
            b.add_edge(s % n, d % n, w as f32 / 10.0).unwrap();
        }
        let cues: Vec<Cue> = batch
            .iter()
            .map(|seeds| Cue::weighted(seeds.iter().map(|&(v, a)| (v % n, a as f32 / 4.0))))
            .collect();
        assert_batch_matches_one_by_one(b.build().unwrap().into(), threads, &cues);
    }
}

#[test]
fn an_empty_batch_answers_nothing_and_counts_nothing() {
    let engine = Engine::new(generate::uniform(100, 400, 0.2, 1).build().unwrap(), config(2, 10)).unwrap();
    assert!(engine.recall_batch(&[]).unwrap().is_empty());
    assert_eq!(engine.engine_metrics().recalls_total.total(), 0);
    let cues = batch_from_csr(&[], None, &[0], None).unwrap();
    assert!(cues.is_empty());
}

#[test]
fn an_invalid_cue_fails_the_whole_batch_naming_it_and_recalls_nothing() {
    let engine = Engine::new(generate::uniform(100, 400, 0.2, 1).build().unwrap(), config(2, 10)).unwrap();
    let mut cues = vec![Cue::nodes([1]); 5];
    let cases: Vec<(Cue, &str)> = vec![
        (Cue::nodes([7, 100]), "cues[3].seeds: node 100 out of range (graph has 100 nodes)"),
        (Cue::weighted([(4, 1.5)]), "cues[3].seeds: node 4 activation 1.5 must be finite and in (0, 1]"),
        (Cue::weighted([(4, f32::NAN)]), "cues[3].seeds: node 4 activation NaN"),
        (Cue::default(), "cues[3].seeds: a cue needs seeds or an embedding"),
        (Cue::nodes([1]).with_k(0), "cues[3].k: must be >= 1"),
        (Cue::embedding(vec![1.0, 2.0]), "cues[3].embedding: the graph has no embeddings"),
    ];
    for (bad, message) in cases {
        cues[3] = bad;
        let error = engine.recall_batch(&cues).unwrap_err();
        assert_eq!(error.kind(), ErrorKind::Recall);
        assert!(error.to_string().contains(message), "{error} (expected {message})");
    }
    assert_eq!(engine.engine_metrics().recalls_total.total(), 0, "nothing ran");
    cues[3] = Cue::nodes([2]);
    assert_eq!(engine.recall_batch(&cues).unwrap().len(), 5);
    assert_eq!(engine.engine_metrics().recalls_total.total(), 5);
}

#[test]
fn malformed_csr_offsets_are_errors_naming_the_entry() {
    let ids = [1u32, 2, 3, 4];
    type Case<'a> = (&'a [usize], Option<&'a [f32]>, &'a str);
    let cases: Vec<Case> = vec![
        (&[], None, "offsets: must hold one entry per cue plus one"),
        (&[1, 4], None, "offsets[0]: must be 0, got 1"),
        (&[0, 3, 2, 4], None, "offsets[2]: 2 is less than offsets[1] = 3"),
        (&[0, 5, 4], None, "offsets[1]: 5 overruns the 4 seed ids"),
        (&[0, 2, 3], None, "offsets[2]: must equal the number of seed ids (4), got 3"),
        (&[0, 2, 4], Some(&[1.0, 1.0]), "activations: has 2 entries, seed_ids has 4"),
    ];
    for (offsets, activations, message) in cases {
        let error = batch_from_csr(&ids, activations, offsets, None).unwrap_err();
        assert!(error.to_string().contains(message), "{error} (expected {message})");
    }
    let cues = batch_from_csr(&ids, Some(&[1.0, 0.5, 0.25, 1.0]), &[0, 1, 1, 4], Some(2)).unwrap();
    assert_eq!(cues.len(), 3);
    assert_eq!(cues[0].seeds, vec![(1, 1.0)]);
    assert!(cues[1].seeds.is_empty(), "an empty cue parses; the batch then names it");
    assert_eq!(cues[2].seeds, vec![(2, 0.5), (3, 0.25), (4, 1.0)]);
    assert_eq!(cues[2].k, Some(2));
}

#[test]
fn each_cue_has_its_own_breaker_admission_reason_and_telemetry() {
    let graph = generate::barabasi_albert(3_000, 4, 0.9, 2).build().unwrap();
    let engine = Engine::new(graph, config(2, 10)).unwrap();
    let batch = cues(3_000, 64, 5, 3);
    let m = engine.engine_metrics();

    // Half the spreads fail by injection: each failed cue is answered by the fallback, the others
    // by spreading, and every one is counted once.
    engine.set_chaos_json(r#"{"failure_rate": 0.5, "seed": 7}"#).unwrap();
    engine.set_breaker_override(BreakerOverride::ForcedClosed);
    let got = engine.recall_batch(&batch).unwrap();
    let fallbacks = got.iter().filter(|r| r.source == Source::Fallback).count();
    assert!(fallbacks > 5 && fallbacks < 59, "{fallbacks} of 64 failed at rate 0.5");
    for r in &got {
        assert_eq!(r.reason.is_some(), r.source == Source::Fallback);
        if let Some(reason) = r.reason {
            assert_eq!(reason, FallbackReason::Error);
            assert!(!r.results.is_empty(), "the fallback answers");
        }
    }
    assert_eq!(m.recalls_total.total(), 64);
    assert_eq!(m.fallback_by_reason[1].total(), fallbacks as u64, "reason error");
    assert_eq!(m.fallback_total.total(), fallbacks as u64);
    assert_eq!(m.failures_total.total(), fallbacks as u64);

    // A forced-open breaker refuses every cue of the next batch, each counted as refused.
    engine.clear_chaos();
    engine.set_breaker_override(BreakerOverride::ForcedOpen);
    let got = engine.recall_batch(&batch).unwrap();
    assert!(got.iter().all(|r| r.reason == Some(FallbackReason::BreakerOpen)));
    assert_eq!(m.recalls_total.total(), 128);
    assert_eq!(m.breaker_open_total.total(), 64);
    assert_eq!(m.fallback_by_reason[0].total(), 64, "reason breaker_open");
    assert_eq!(m.failures_total.total(), fallbacks as u64, "refused cues do not spread, so do not fail");
}

#[test]
fn every_cue_of_a_batch_runs_on_one_graph_version() {
    let engine = Engine::new(generate::uniform(500, 2_000, 0.2, 4).build().unwrap(), config(2, 10)).unwrap();
    engine.add_edges(&[0], &[1], &[0.5]).unwrap();
    let (results, graph) = engine.recall_batch_with_graph(&cues(500, 300, 5, 8)).unwrap();
    assert!(results.iter().all(|r| r.graph_version == graph.version()));
    assert_eq!(graph.version(), 1);
}

#[test]
fn a_bad_seed_beside_an_embedding_is_refused() {
    let engine = Engine::new(embedded_graph(300), config(1, 10)).unwrap();
    let cue = Cue { seeds: vec![(5, 1.0), (999, 1.0)], embedding: Some(vec![1.0; 8]), k: None };
    let error = engine.recall(&cue).unwrap_err();
    assert!(error.to_string().contains("node 999 out of range"), "{error}");
    let error = engine.recall_batch(&[Cue::nodes([1]), cue]).unwrap_err();
    assert!(error.to_string().contains("cues[1].seeds: node 999 out of range"), "{error}");
}

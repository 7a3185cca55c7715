//! The living graph (docs/spec.md §16): random batches, recalls and compactions on an engine give
//! results bit-identical to a graph built from scratch from the same edge list, before and after
//! compaction, on both cycle policies and every execution path; a bad batch changes nothing; and
//! recalls from four threads while a writer streams batches each run on exactly one version.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use axonal_core::{
    Activation, Batch, Cue, CyclePolicy, Engine, EngineConfig, ErrorKind, Execution, Graph, GraphBuilder,
    GraphVersion, Source, SpreadParams, Tier, spread_standalone,
};
use proptest::prelude::*;
use serde_json::json;

const DIM: usize = 3;

/// The graph as a list: what a from-scratch build is made of.
#[derive(Debug, Clone)]
struct Model {
    tiers: Vec<Tier>,
    labels: Vec<Option<String>>,
    embeddings: Vec<Option<[f32; DIM]>>,
    /// Every edge in insertion order; a weight change keeps its place, a removal closes the gap.
    edges: Vec<(u32, u32, f32)>,
}

impl Model {
    fn n(&self) -> u32 {
        self.tiers.len() as u32
    }

    fn build(&self) -> Graph {
        let mut b = GraphBuilder::new(self.n());
        for &(s, d, w) in &self.edges {
            b.add_edge(s, d, w).unwrap();
        }
        for (v, &tier) in self.tiers.iter().enumerate() {
            b.set_tier(v as u32, tier).unwrap();
        }
        for (v, label) in self.labels.iter().enumerate() {
            if let Some(label) = label {
                b.set_label(v as u32, label.clone()).unwrap();
            }
        }
        for (v, e) in self.embeddings.iter().enumerate() {
            if let Some(e) = e {
                b.set_embedding(v as u32, e).unwrap();
            }
        }
        b.build().unwrap()
    }
}

/// One step of a random run. Indices are taken modulo what exists when the step runs.
#[derive(Debug, Clone)]
enum Op {
    AddNodes {
        tiers: Vec<Tier>,
        labelled: bool,
        embedded: bool,
    },
    AddEdges(Vec<(u32, u32, f32)>),
    SetWeights(Vec<(usize, f32)>),
    RemoveEdges(Vec<usize>),
    SetTiers(Vec<(u32, Tier)>),
    /// A batch that must be rejected whole.
    Bad(u8, u32),
    Compact,
    Recall(Vec<(u32, f32)>),
}

fn tier() -> impl Strategy<Value = Tier> {
    prop_oneof![Just(Tier::Hot), Just(Tier::Warm), Just(Tier::Cold)]
}

fn weight() -> impl Strategy<Value = f32> {
    prop_oneof![Just(1.0f32), (1u32..=1000).prop_map(|x| x as f32 / 1000.0)]
}

fn op() -> impl Strategy<Value = Op> {
    let id = 0u32..1000;
    prop_oneof![
        1 => (prop::collection::vec(tier(), 1..4), any::<bool>(), any::<bool>())
            .prop_map(|(tiers, labelled, embedded)| Op::AddNodes { tiers, labelled, embedded }),
        4 => prop::collection::vec((id.clone(), id.clone(), weight()), 1..30).prop_map(Op::AddEdges),
        2 => prop::collection::vec((0usize..10_000, weight()), 1..6).prop_map(Op::SetWeights),
        2 => prop::collection::vec(0usize..10_000, 1..6).prop_map(Op::RemoveEdges),
        1 => prop::collection::vec((id.clone(), tier()), 1..6).prop_map(Op::SetTiers),
        1 => (0u8..6, id.clone()).prop_map(|(kind, x)| Op::Bad(kind, x)),
        1 => Just(Op::Compact),
        3 => prop::collection::vec((id, (1u32..=100).prop_map(|x| x as f32 / 100.0)), 1..4).prop_map(Op::Recall),
    ]
}

fn initial() -> impl Strategy<Value = Model> {
    (1u32..25).prop_flat_map(|n| {
        (prop::collection::vec(tier(), n as usize), prop::collection::vec((0..n, 0..n, weight()), 0..80))
            .prop_map(move |(tiers, edges)| Model {
                labels: (0..n).map(|v| (v % 3 == 0).then(|| format!("node-{v}"))).collect(),
                embeddings: (0..n)
                    .map(|v| (v % 2 == 0).then(|| [v as f32, 1.0, -(v as f32) / 7.0]))
                    .collect(),
                tiers,
                edges,
            })
    })
}

fn config(policy: CyclePolicy, threads: u32) -> EngineConfig {
    let policy = match policy {
        CyclePolicy::FireOnce => "fire_once",
        _ => "reverberate",
    };
    EngineConfig::default()
        .patched(&json!({
            "threads": threads,
            "opencl": "off",
            "autotune": {"enabled": false},
            "spreading": {"max_depth": 4, "threshold": 0.01, "cycle_policy": policy,
                          "tier_timeouts_ms": {"hot": 0, "warm": 0, "cold": 0}, "latency_budget_ms": 86_400_000},
            "recall": {"k": 100_000, "seed_k": 3},
            "breaker": {"failure_rate_threshold": 1.0},
            "health": {"interval_ms": 3_600_000},
        }))
        .unwrap()
}

fn pool() -> &'static rayon::ThreadPool {
    static POOL: OnceLock<rayon::ThreadPool> = OnceLock::new();
    POOL.get_or_init(|| rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap())
}

/// Results as (node, activation bits, hops, tier).
type Bits = Vec<(u32, u32, u32, Tier)>;

fn bits(results: &[Activation]) -> Bits {
    results.iter().map(|a| (a.node, a.activation.to_bits(), a.hops, a.tier)).collect()
}

fn params(policy: CyclePolicy, execution: Execution) -> SpreadParams {
    SpreadParams {
        max_depth: 4,
        decay: 0.8,
        threshold: 0.01,
        max_fan_out: 0,
        cycle_policy: policy,
        batch_size: 1,
        tier_timeouts: [None; 3],
        execution,
    }
}

/// Spreading on `version` equals spreading on `rebuilt`, bit for bit, on both cycle policies, push
/// and pull, inline and on a pool.
fn assert_same_spread(
    version: &GraphVersion,
    rebuilt: &Graph,
    seeds: &[(u32, f32)],
) -> Result<(), TestCaseError> {
    for policy in [CyclePolicy::FireOnce, CyclePolicy::Reverberate] {
        for (execution, pool) in [
            (Execution::push_only(), None),
            (Execution::pull_always(), None),
            (Execution::pull_always(), Some(pool())),
            (Execution::default(), Some(pool())),
            (Execution::dense_seeds(), None),
            (
                Execution {
                    pull_share: 2,
                    last_pull_share: 2,
                    pull_min_edges: 0,
                    ..Execution::dense_seeds()
                },
                Some(pool()),
            ),
        ] {
            let p = params(policy, execution);
            let (live, live_stats) = spread_standalone(version, &p, seeds, pool, None).unwrap();
            let (fresh, fresh_stats) = spread_standalone(rebuilt, &p, seeds, pool, None).unwrap();
            prop_assert_eq!(bits(&live), bits(&fresh), "{:?} {:?}", policy, execution);
            prop_assert_eq!(live_stats.mass.to_bits(), fresh_stats.mass.to_bits());
            prop_assert_eq!(
                (live_stats.nodes_fired, live_stats.edges_traversed),
                (fresh_stats.nodes_fired, fresh_stats.edges_traversed)
            );
        }
    }
    Ok(())
}

/// Everything a caller can read of a version equals the rebuilt graph.
fn assert_same_graph(version: &GraphVersion, rebuilt: &Graph) -> Result<(), TestCaseError> {
    prop_assert_eq!(version.node_count(), rebuilt.node_count());
    prop_assert_eq!(version.edge_count(), rebuilt.edge_count());
    prop_assert_eq!(version.tier_counts(), rebuilt.tier_counts());
    for v in 0..rebuilt.node_count() as u32 {
        prop_assert_eq!(version.tier(v), rebuilt.tier(v));
        prop_assert_eq!(version.label(v), rebuilt.label(v));
        prop_assert_eq!(version.out_edges(v), rebuilt.out_edges(v).collect::<Vec<_>>());
    }
    if !version.has_changes() {
        // A compacted base is the from-scratch build, array for array.
        let base = version.base();
        prop_assert_eq!(base.out_csr(), rebuilt.out_csr());
        for tier in Tier::ALL {
            prop_assert_eq!(base.in_csr_from(tier), rebuilt.in_csr_from(tier), "in-edges from {:?}", tier);
        }
        for v in 0..rebuilt.node_count() as u32 {
            prop_assert_eq!(base.embedding(v), rebuilt.embedding(v));
        }
    }
    Ok(())
}

/// The engine's recall and a fresh engine's recall on the rebuilt graph agree bit for bit (the cue
/// by ids, and by embedding: similarity seeding reads the living graph's embeddings too).
fn assert_same_recall(
    engine: &Engine,
    reference: &Engine,
    seeds: &[(u32, f32)],
) -> Result<(), TestCaseError> {
    for cue in [Cue::weighted(seeds.iter().copied()), Cue::embedding(vec![1.0, 0.5, -0.25])] {
        let live = engine.recall(&cue);
        let fresh = reference.recall(&cue);
        match (live, fresh) {
            (Ok(live), Ok(fresh)) => {
                prop_assert_eq!(live.source, Source::Spreading);
                prop_assert_eq!(live.graph_version, engine.graph_version());
                prop_assert_eq!(bits(&live.results), bits(&fresh.results));
            }
            (Err(live), Err(fresh)) => prop_assert_eq!(live.to_string(), fresh.to_string()),
            (live, fresh) => prop_assert!(false, "live {:?} vs fresh {:?}", live.err(), fresh.err()),
        }
    }
    Ok(())
}

/// The batch a mutation op stands for (None: nothing to do, or not a mutation), with the model
/// changed to match.
fn batch_for(op: &Op, model: &mut Model) -> Option<Batch> {
    let n = model.n();
    match op {
        Op::AddNodes { tiers, labelled, embedded } => {
            let count = tiers.len() as u32;
            let labels: Option<Vec<Option<String>>> = labelled
                .then(|| (0..count).map(|i| (i % 2 == 0).then(|| format!("new-{}", n + i))).collect());
            let rows: Vec<[f32; DIM]> = (0..count).map(|i| [1.0, (n + i) as f32 / 10.0, 0.5]).collect();
            let embeddings = embedded.then(|| (DIM, rows.iter().flatten().copied().collect()));
            model.tiers.extend(tiers);
            model.labels.extend(labels.clone().unwrap_or_else(|| vec![None; count as usize]));
            model.embeddings.extend(rows.iter().map(|r| embedded.then_some(*r)));
            Some(Batch::AddNodes { count, tiers: Some(tiers.clone()), labels, embeddings })
        }
        Op::AddEdges(edges) => {
            let edges: Vec<_> = edges.iter().map(|&(s, d, w)| (s % n, d % n, w)).collect();
            let (src, dst, weight) = split(&edges);
            model.edges.extend(edges);
            Some(Batch::AddEdges { src, dst, weight })
        }
        Op::SetWeights(changes) if !model.edges.is_empty() => {
            let pairs: Vec<_> = changes
                .iter()
                .map(|&(i, w)| {
                    let (s, d, _) = model.edges[i % model.edges.len()];
                    (s, d, w)
                })
                .collect();
            for &(s, d, w) in &pairs {
                for e in model.edges.iter_mut().filter(|e| e.0 == s && e.1 == d) {
                    e.2 = w;
                }
            }
            let (src, dst, weight) = split(&pairs);
            Some(Batch::SetWeights { src, dst, weight })
        }
        Op::RemoveEdges(picks) if !model.edges.is_empty() => {
            let mut pairs: Vec<(u32, u32)> = Vec::new();
            for &i in picks {
                let (s, d, _) = model.edges[i % model.edges.len()];
                if !pairs.contains(&(s, d)) {
                    pairs.push((s, d));
                }
            }
            model.edges.retain(|e| !pairs.contains(&(e.0, e.1)));
            let (src, dst) = pairs.into_iter().unzip();
            Some(Batch::RemoveEdges { src, dst })
        }
        Op::SetTiers(moves) => {
            let moves: Vec<_> = moves.iter().map(|&(v, t)| (v % n, t)).collect();
            for &(v, t) in &moves {
                model.tiers[v as usize] = t;
            }
            let (nodes, tiers) = moves.into_iter().unzip();
            Some(Batch::SetTiers { nodes, tiers })
        }
        _ => None,
    }
}

/// Apply `op` to the engine and the model; check the engine against a rebuild.
fn step(engine: &Engine, reference: &Engine, model: &mut Model, op: &Op) -> Result<(), TestCaseError> {
    let before = engine.graph_version();
    let n = model.n();
    match op {
        Op::AddNodes { .. } => {
            let Some(Batch::AddNodes { count, tiers, labels, embeddings }) = batch_for(op, model) else {
                unreachable!()
            };
            let first = engine.add_nodes(count, tiers, labels, embeddings).unwrap();
            prop_assert_eq!(first, n);
        }
        Op::AddEdges(_) | Op::SetWeights(_) | Op::RemoveEdges(_) | Op::SetTiers(_) => {
            if let Some(batch) = batch_for(op, model) {
                prop_assert_eq!(engine.apply(batch).unwrap(), before + 1);
            }
        }
        Op::Bad(kind, x) => {
            let e = match kind {
                0 => engine.add_edges(&[0, n + x], &[0, 0], &[0.5, 0.5]).unwrap_err(),
                1 => engine.add_edges(&[0, 0], &[0, 0], &[0.5, f32::NAN]).unwrap_err(),
                2 => engine.set_weights(&[0], &[0], &[1.5]).unwrap_err(),
                3 => engine.add_edges(&[0, 0], &[0], &[0.5, 0.5]).unwrap_err(),
                4 => engine.add_nodes(1, None, None, Some((DIM + 1, vec![1.0; DIM + 1]))).unwrap_err(),
                _ => {
                    // A pair that does not exist, after a valid one.
                    let missing = (0..n)
                        .flat_map(|s| (0..n).map(move |d| (s, d)))
                        .find(|&(s, d)| !model.edges.iter().any(|e| e.0 == s && e.1 == d));
                    let Some((s, d)) = missing else { return Ok(()) };
                    let (src, dst) = match model.edges.first() {
                        Some(e) => (vec![e.0, s], vec![e.1, d]),
                        None => (vec![s], vec![d]),
                    };
                    let e = engine.remove_edges(&src, &dst).unwrap_err();
                    prop_assert!(
                        e.to_string().contains(&format!("entry 1: no edge {s} -> {d}")) || src.len() == 1,
                        "{}",
                        e
                    );
                    e
                }
            };
            prop_assert_eq!(e.kind(), ErrorKind::Graph, "{:?}", e);
            prop_assert_eq!(engine.graph_version(), before, "a rejected batch made a version");
        }
        Op::Compact => {
            prop_assert_eq!(engine.compact().unwrap(), before);
            prop_assert!(!engine.graph().has_changes());
        }
        Op::Recall(seeds) => {
            let seeds: Vec<_> = seeds.iter().map(|&(v, a)| (v % n, a)).collect();
            let rebuilt = model.build();
            let version = engine.graph();
            assert_same_graph(&version, &rebuilt)?;
            assert_same_spread(&version, &rebuilt, &seeds)?;
            reference.replace_graph(rebuilt);
            assert_same_recall(engine, reference, &seeds)?;
        }
    }
    Ok(())
}

fn split(edges: &[(u32, u32, f32)]) -> (Vec<u32>, Vec<u32>, Vec<f32>) {
    (
        edges.iter().map(|e| e.0).collect(),
        edges.iter().map(|e| e.1).collect(),
        edges.iter().map(|e| e.2).collect(),
    )
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(96))]

    /// A compaction that started at an earlier version `start`, rebased most of the way at a later
    /// `earlier` (outside the writer lock) and finished at the current version: the result equals
    /// a rebuild, and keeps doing so as batches continue — also after a second such compaction.
    #[test]
    fn rebasing_onto_an_earlier_materialization_equals_a_rebuild(
        begin in initial(),
        ops in prop::collection::vec(op(), 3..40),
        marks in prop::collection::vec(any::<prop::sample::Index>(), 6),
    ) {
        let mut model = begin;
        let mut current = Arc::new(GraphVersion::fresh(Arc::new(model.build()), 0));
        // Two compactions: (start, earlier, finish) step indices, in order.
        let mut points: Vec<usize> = marks.iter().map(|m| m.index(ops.len())).collect();
        points.sort_unstable();
        let plans = [(points[0], points[1], points[2]), (points[3], points[4], points[5])];
        let mut start = None;
        let mut ahead = None;
        for (i, op) in ops.iter().enumerate() {
            for &(begin_at, earlier_at, finish_at) in &plans {
                if i == begin_at && start.is_none() {
                    start = Some(Arc::clone(&current));
                }
                if i == earlier_at && ahead.is_none() && let Some(start) = &start {
                    let base = Arc::new(start.materialize().unwrap());
                    ahead = Some((Arc::clone(&current), current.rebase(start, Arc::clone(&base)), base));
                }
                if i == finish_at && let (Some(begun), Some((earlier, rebased, base))) = (start.take(), ahead.take()) {
                    let full = current.rebase(&begun, Arc::clone(&base));
                    let late = current.rebase_after(&begun, base, &earlier, &rebased);
                    prop_assert_eq!(late.version(), current.version());
                    prop_assert_eq!(late.delta_edges(), full.delta_edges());
                    let rebuilt = model.build();
                    assert_same_graph(&full, &rebuilt)?;
                    assert_same_graph(&late, &rebuilt)?;
                    assert_same_spread(&late, &rebuilt, &[(0, 1.0), (model.n() - 1, 0.5)])?;
                    current = Arc::new(late);
                }
            }
            if let Some(batch) = batch_for(op, &mut model) {
                current = Arc::new(current.apply(&batch, current.version() + 1).unwrap());
            }
        }
        let rebuilt = model.build();
        assert_same_graph(&current, &rebuilt)?;
        assert_same_spread(&current, &rebuilt, &[(0, 1.0), (model.n() / 2, 0.75)])?;
    }

    #[test]
    fn batches_recalls_and_compactions_equal_a_rebuild(
        start in initial(),
        ops in prop::collection::vec(op(), 1..40),
        policy in prop_oneof![Just(CyclePolicy::FireOnce), Just(CyclePolicy::Reverberate)],
    ) {
        let mut model = start;
        let engine = Engine::new(model.build(), config(policy, 1)).unwrap();
        let reference = Engine::new(model.build(), config(policy, 1)).unwrap();
        for op in &ops {
            step(&engine, &reference, &mut model, op)?;
        }
        // The end state, before and after a final compaction.
        let last = Op::Recall(vec![(0, 1.0), (1, 0.5)]);
        step(&engine, &reference, &mut model, &last)?;
        step(&engine, &reference, &mut model, &Op::Compact)?;
        step(&engine, &reference, &mut model, &last)?;
    }
}

#[test]
fn the_graph_an_engine_was_built_from_never_changes() {
    let graph = Arc::new(Graph::from_edges(3, &[0, 1], &[1, 2], &[0.5, 0.5]).unwrap());
    let a = Engine::new(Arc::clone(&graph), config(CyclePolicy::FireOnce, 1)).unwrap();
    let b = Engine::new(Arc::clone(&graph), config(CyclePolicy::FireOnce, 1)).unwrap();
    assert_eq!(a.add_edges(&[2], &[0], &[1.0]).unwrap(), 1);
    a.remove_edges(&[0], &[1]).unwrap();
    a.compact().unwrap();
    assert_eq!(graph.edge_count(), 2);
    assert_eq!(graph.out_edges(0).collect::<Vec<_>>(), vec![(1, 0.5)]);
    assert_eq!(b.graph().edge_count(), 2);
    assert_eq!(b.graph_version(), 0);
    assert_eq!(a.graph().out_edges(2), vec![(0, 1.0)]);
    assert_eq!(a.graph_version(), 2, "compaction keeps the version");
}

#[test]
fn every_bad_batch_names_its_entry_and_applies_nothing() {
    let engine = Engine::new(
        Graph::from_edges(4, &[0, 1, 2], &[1, 2, 3], &[0.5, 0.5, 0.5]).unwrap(),
        config(CyclePolicy::FireOnce, 1),
    )
    .unwrap();
    let cue = Cue::nodes([0]);
    let before = engine.recall(&cue).unwrap();
    let cases: Vec<(axonal_core::Error, &str)> = vec![
        (engine.add_edges(&[0, 9], &[1, 1], &[0.5, 0.5]).unwrap_err(), "edge 1: source node 9 out of range"),
        (engine.add_edges(&[0, 0], &[1, 7], &[0.5, 0.5]).unwrap_err(), "edge 1: target node 7"),
        (engine.add_edges(&[0], &[1], &[f32::NAN]).unwrap_err(), "NaN"),
        (engine.add_edges(&[0], &[1], &[f32::INFINITY]).unwrap_err(), "inf"),
        (engine.add_edges(&[0], &[1], &[0.0]).unwrap_err(), "edge 0"),
        (engine.add_edges(&[0], &[1], &[1.5]).unwrap_err(), "1.5"),
        (engine.add_edges(&[0, 1], &[1], &[0.5]).unwrap_err(), "differ in length"),
        (
            engine.set_weights(&[0, 0], &[1, 3], &[0.5, 0.5]).unwrap_err(),
            "set_weights entry 1: no edge 0 -> 3",
        ),
        (engine.set_weights(&[0], &[1], &[-0.5]).unwrap_err(), "-0.5"),
        (engine.remove_edges(&[1, 3], &[2, 0]).unwrap_err(), "remove_edges entry 1: no edge 3 -> 0"),
        (engine.remove_edges(&[0, 0], &[1, 1]).unwrap_err(), "already listed at entry 0"),
        (engine.set_tiers(&[0, 4], &[Tier::Cold, Tier::Cold]).unwrap_err(), "entry 1: node 4 out of range"),
        (engine.set_tiers(&[0], &[]).unwrap_err(), "1 nodes but 0 tiers"),
        (engine.add_nodes(0, None, None, None).unwrap_err(), "count must be at least 1"),
        (
            engine.add_nodes(2, Some(vec![Tier::Hot]), None, None).unwrap_err(),
            "tiers: 1 entries for 2 new nodes",
        ),
        (engine.add_nodes(2, None, Some(vec![None]), None).unwrap_err(), "labels: 1 entries for 2 new nodes"),
        (
            engine.add_nodes(1, None, None, Some((2, vec![1.0]))).unwrap_err(),
            "1 values for 1 nodes of dimension 2",
        ),
        (engine.add_nodes(1, None, None, Some((1, vec![f32::NAN]))).unwrap_err(), "not finite"),
    ];
    for (e, expected) in &cases {
        assert!(e.to_string().contains(expected), "{e:?} should mention {expected:?}");
    }
    assert_eq!(engine.graph_version(), 0);
    assert_eq!(engine.graph().edge_count(), 3);
    let m = engine.spreading_section().graph;
    assert_eq!(m.batches_rejected_total, cases.len() as u64);
    assert_eq!(m.batches_total, 0);
    // The engine keeps serving, unchanged.
    let after = engine.recall(&cue).unwrap();
    assert_eq!(bits(&after.results), bits(&before.results));
    // A dimension other than the graph's is refused once the graph has embeddings.
    engine.add_nodes(1, None, None, Some((2, vec![1.0, 0.0]))).unwrap();
    let e = engine.add_nodes(1, None, None, Some((3, vec![1.0, 0.0, 0.0]))).unwrap_err();
    assert!(e.to_string().contains("dimension"), "{e}");
}

#[test]
fn telemetry_counts_batches_compactions_and_the_graph() {
    let engine =
        Engine::new(Graph::from_edges(3, &[0], &[1], &[0.5]).unwrap(), config(CyclePolicy::FireOnce, 1))
            .unwrap();
    engine.add_edges(&[1, 2], &[2, 0], &[0.5, 0.5]).unwrap();
    let first = engine.add_nodes(2, None, Some(vec![Some("x".into()), None]), None).unwrap();
    assert_eq!(first, 3);
    assert_eq!(engine.graph().find("x"), Some(3));
    let s = engine.spreading_section().graph;
    assert_eq!((s.version, s.nodes, s.edges, s.delta_edges, s.batches_total), (2, 5, 3, 2, 2));
    assert_eq!(s.compaction_threshold_edges, 10_000);
    engine.compact().unwrap();
    let s = engine.spreading_section().graph;
    assert_eq!((s.version, s.delta_edges, s.compactions_total), (2, 0, 1));
    let text = engine.prometheus_text();
    for line in [
        "axonal_spreading_graph_version 2",
        "axonal_spreading_graph_nodes 5",
        "axonal_spreading_graph_edges 3",
        "axonal_spreading_graph_delta_edges 0",
        "axonal_spreading_graph_batches_total 2",
        "axonal_spreading_graph_compactions_total 1",
        "axonal_spreading_graph_compaction_seconds_count 1",
    ] {
        assert!(text.lines().any(|l| l == line), "missing {line:?} in\n{text}");
    }
    let report = engine.health_report();
    assert!(!report.probes["graph"].critical, "the graph probe is not critical");
}

#[test]
fn the_graph_probe_degrades_while_compaction_lags() {
    let config =
        config(CyclePolicy::FireOnce, 1).patched(&json!({"compaction": {"max_delta_edges": 2}})).unwrap();
    let engine = Engine::new(Graph::from_edges(3, &[0], &[1], &[0.5]).unwrap(), config).unwrap();
    // 20 pending changes, over 4 × 2: degraded until the background compactor (nudged by the batch)
    // folds them.
    let (src, dst, weight) = (vec![0u32; 20], vec![2u32; 20], vec![0.5f32; 20]);
    engine.add_edges(&src, &dst, &weight).unwrap();
    let delta = engine.graph().delta_edges();
    let probe = engine.check_probe("graph").unwrap();
    if delta > 8 && engine.graph().delta_edges() > 8 {
        // The compactor had not caught up when the probe ran.
        assert_eq!(probe.status, axonal_core::HealthStatus::Degraded, "{probe:?}");
        assert!(probe.reason.as_deref().unwrap_or("").contains("falling behind"), "{probe:?}");
    }
    // The compactor catches up on its own.
    let caught_up = common_eventually(Duration::from_secs(5), || engine.graph().delta_edges() == 0);
    assert!(caught_up, "the background compactor never ran");
    // Hysteresis: two healthy checks in a row bring it back.
    engine.check_probe("graph").unwrap();
    assert_eq!(engine.check_probe("graph").unwrap().status, axonal_core::HealthStatus::Healthy);
    assert!(engine.spreading_section().graph.compactions_total >= 1);
}

#[test]
fn added_nodes_count_toward_compaction_and_a_held_base_does_not_slow_it() {
    let config =
        config(CyclePolicy::FireOnce, 1).patched(&json!({"compaction": {"max_delta_edges": 50}})).unwrap();
    // The host keeps the graph (as the C and Python handles do): the replaced base outlives the
    // compaction, which must not wait for it.
    let graph = Arc::new(Graph::from_edges(3, &[0], &[1], &[0.5]).unwrap());
    let engine = Engine::new(Arc::clone(&graph), config).unwrap();
    // Nodes alone (no edge changes) pass the threshold: the background compactor folds them.
    engine.add_nodes(100, None, None, None).unwrap();
    let folded = common_eventually(Duration::from_secs(5), || !engine.graph().has_changes());
    assert!(folded, "added nodes never triggered a compaction");
    assert_eq!(engine.graph().node_count(), 103);
    engine.add_edges(&[0], &[2], &[0.5]).unwrap();
    let started = std::time::Instant::now();
    engine.compact().unwrap();
    let took = started.elapsed();
    assert!(took < Duration::from_millis(500), "an explicit compaction took {took:?}");
    drop(graph);
}

fn common_eventually(limit: Duration, mut condition: impl FnMut() -> bool) -> bool {
    let deadline = std::time::Instant::now() + limit;
    while std::time::Instant::now() < deadline {
        if condition() {
            return true;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    condition()
}

/// A random graph big enough that pull steps run on the pool (nodes + edges ≥ 200 000).
fn big_model(n: u32, degree: u32, seed: u64) -> Model {
    let mut state = seed;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut edges = Vec::with_capacity((n * degree) as usize);
    for s in 0..n {
        for _ in 0..degree {
            let d = (next() % n as u64) as u32;
            let w = ((next() % 1000) + 1) as f32 / 1000.0;
            edges.push((s, d, w));
        }
    }
    Model {
        tiers: (0..n).map(|v| Tier::ALL[(v % 7 == 0) as usize + (v % 11 == 0) as usize]).collect(),
        labels: vec![None; n as usize],
        embeddings: vec![None; n as usize],
        edges,
    }
}

#[test]
fn recalls_from_four_threads_while_a_writer_streams_batches_and_compactions_run() {
    let mut model = big_model(25_000, 8, 0x9e37_79b9_7f4a_7c15);
    let config =
        config(CyclePolicy::FireOnce, 2).patched(&json!({"compaction": {"max_delta_edges": 4000}})).unwrap();
    let engine = Arc::new(Engine::new(model.build(), config.clone()).unwrap());
    let cues: Vec<Cue> =
        (0..4u32).map(|i| Cue::nodes((0..40).map(|j| (i * 997 + j * 131) % 25_000)).with_k(500)).collect();
    let done = Arc::new(AtomicBool::new(false));
    let seen: Arc<Mutex<BTreeMap<(u64, usize), Bits>>> = Arc::default();
    let readers: Vec<_> = (0..4)
        .map(|t| {
            let (engine, done, seen, cues) =
                (Arc::clone(&engine), Arc::clone(&done), Arc::clone(&seen), cues.clone());
            std::thread::spawn(move || {
                let mut calls = 0;
                while !done.load(Ordering::Acquire) || calls < 3 {
                    let i = (t + calls) % cues.len();
                    let r = engine.recall(&cues[i]).unwrap();
                    assert_eq!(r.source, Source::Spreading);
                    let got = bits(&r.results);
                    let mut seen = seen.lock().unwrap();
                    match seen.get(&(r.graph_version, i)) {
                        Some(first) => assert_eq!(first, &got, "two recalls of one version differ"),
                        None => {
                            seen.insert((r.graph_version, i), got);
                        }
                    }
                    calls += 1;
                }
                calls
            })
        })
        .collect();
    // The writer: every batch kind, and explicit compactions beside the background ones.
    let mut log: Vec<(u64, Model)> = vec![(0, model.clone())];
    let mut rng = 0x2545_f491_4f6c_dd1du64;
    let mut rand = move |m: u64| {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        rng % m
    };
    for round in 0..40u32 {
        let n = model.n() as u64;
        let version = match round % 5 {
            0 | 1 => {
                let edges: Vec<_> = (0..1500)
                    .map(|_| (rand(n) as u32, rand(n) as u32, (rand(1000) + 1) as f32 / 1000.0))
                    .collect();
                let (s, d, w) = split(&edges);
                model.edges.extend(edges);
                engine.add_edges(&s, &d, &w).unwrap()
            }
            2 => {
                let mut pairs = Vec::new();
                for _ in 0..200 {
                    let (s, d, _) = model.edges[rand(model.edges.len() as u64) as usize];
                    if !pairs.contains(&(s, d)) {
                        pairs.push((s, d));
                    }
                }
                let (src, dst): (Vec<u32>, Vec<u32>) = pairs.iter().copied().unzip();
                model.edges.retain(|e| !pairs.contains(&(e.0, e.1)));
                engine.remove_edges(&src, &dst).unwrap()
            }
            3 => {
                let picks: Vec<_> = (0..300)
                    .map(|_| {
                        let (s, d, _) = model.edges[rand(model.edges.len() as u64) as usize];
                        (s, d, (rand(1000) + 1) as f32 / 1000.0)
                    })
                    .collect();
                for &(s, d, w) in &picks {
                    for e in model.edges.iter_mut().filter(|e| e.0 == s && e.1 == d) {
                        e.2 = w;
                    }
                }
                let (s, d, w) = split(&picks);
                engine.set_weights(&s, &d, &w).unwrap()
            }
            _ => {
                let nodes: Vec<u32> = (0..100).map(|_| rand(n) as u32).collect();
                let tiers: Vec<Tier> = (0..100).map(|_| Tier::ALL[rand(3) as usize]).collect();
                for (&v, &t) in nodes.iter().zip(&tiers) {
                    model.tiers[v as usize] = t;
                }
                if round % 10 == 4 {
                    engine.compact().unwrap();
                }
                engine.set_tiers(&nodes, &tiers).unwrap()
            }
        };
        log.push((version, model.clone()));
        std::thread::sleep(Duration::from_millis(5));
    }
    done.store(true, Ordering::Release);
    let calls: usize = readers.into_iter().map(|r| r.join().unwrap()).sum();
    let compactions = engine.spreading_section().graph.compactions_total;
    assert!(compactions >= 2, "{compactions} compactions");
    // Every recall equals a fresh engine's recall on the rebuild of the version it reports.
    let versions: BTreeMap<u64, Model> = log.into_iter().collect();
    let seen = seen.lock().unwrap();
    let reference = Engine::new(model.build(), config).unwrap();
    let mut checked_versions = 0;
    let mut last = None;
    for (&(version, i), got) in seen.iter() {
        let model =
            versions.get(&version).unwrap_or_else(|| panic!("a recall ran on unknown version {version}"));
        if last != Some(version) {
            reference.replace_graph(model.build());
            last = Some(version);
            checked_versions += 1;
        }
        let fresh = reference.recall(&cues[i]).unwrap();
        assert_eq!(&bits(&fresh.results), got, "version {version}, cue {i}");
    }
    assert!(checked_versions >= 3, "recalls saw only {checked_versions} versions in {calls} calls");
}

/// Graphs replaced while compactions of older ones run: a compaction's result is dropped, never
/// mixed into the newer graph — also when the newer one is larger and has changes of its own, or is
/// the very same `Arc` (only the generation tells those apart). Explicit compactions run on this
/// thread, so a panic in one fails the test.
#[test]
fn replacing_the_graph_during_compactions_never_mixes_graphs() {
    let small = Arc::new(big_model(20_000, 6, 0x5eed).build());
    let large = Arc::new(big_model(30_000, 6, 0x5eee).build());
    let config = config(CyclePolicy::FireOnce, 1)
        .patched(&json!({"compaction": {"max_delta_edges": u32::MAX}}))
        .unwrap();
    let engine = Arc::new(Engine::new(Arc::clone(&small), config.clone()).unwrap());
    let edges = |seed: u64, count: usize| {
        let mut rng = seed;
        let edges: Vec<_> = (0..count)
            .map(|_| {
                rng = rng.wrapping_mul(6364136223846793005).wrapping_add(1442695040888963407);
                ((rng >> 33) as u32 % 20_000, (rng >> 13) as u32 % 20_000, 0.5)
            })
            .collect();
        split(&edges)
    };
    let done = Arc::new(AtomicBool::new(false));
    let replacer = {
        let (engine, done, small, large) =
            (Arc::clone(&engine), Arc::clone(&done), Arc::clone(&small), Arc::clone(&large));
        std::thread::spawn(move || {
            let mut replaced = 0u64;
            while !done.load(Ordering::Acquire) {
                engine.replace_graph(Arc::clone(if replaced % 3 == 2 { &large } else { &small }));
                let (s, d, w) = edges(replaced, 50);
                engine.add_edges(&s, &d, &w).unwrap();
                replaced += 1;
                std::thread::sleep(Duration::from_micros(200));
            }
            replaced
        })
    };
    for round in 0..80 {
        let (s, d, w) = edges(1_000_000 + round, 2000);
        engine.add_edges(&s, &d, &w).unwrap();
        engine.compact().unwrap();
    }
    done.store(true, Ordering::Release);
    assert!(replacer.join().unwrap() > 0);
    // A final replacement and compaction leave exactly the graph.
    engine.replace_graph(Arc::clone(&small));
    engine.compact().unwrap();
    assert!(!engine.graph().has_changes());
    assert_eq!(engine.graph().edge_count(), small.edge_count());
    let reference = Engine::new(Arc::clone(&small), config).unwrap();
    let cue = Cue::nodes([1, 2, 3]).with_k(200);
    assert_eq!(bits(&engine.recall(&cue).unwrap().results), bits(&reference.recall(&cue).unwrap().results));
}

//! Property tests: on random graphs the engine equals a plain reference implementation of docs/spec.md §3, and
//! results are bit-identical across push/pull, thread counts and batch sizes.

use std::sync::OnceLock;

use axonal_core::{
    Activation, CyclePolicy, Execution, Graph, GraphBuilder, SpreadParams, Tier, spread_standalone,
};
use proptest::prelude::*;

#[derive(Debug, Clone)]
struct Case {
    n: u32,
    edges: Vec<(u32, u32, f32)>,
    tiers: Vec<Tier>,
    seeds: Vec<(u32, f32)>,
    max_depth: u32,
    decay: f32,
    threshold: f32,
    max_fan_out: u32,
    policy: CyclePolicy,
}

fn weight() -> impl Strategy<Value = f32> {
    prop_oneof![Just(1.0f32), (1u32..=1000).prop_map(|x| x as f32 / 1000.0)]
}

fn case() -> impl Strategy<Value = Case> {
    (1u32..40).prop_flat_map(|n| {
        let edge = (0..n, 0..n, weight());
        // A hub: node 0 points at many nodes, so fan-out limits and big frontiers are exercised.
        let hub = prop::collection::vec((Just(0u32), 0..n, weight()), 0..(n as usize * 2));
        (
            Just(n),
            prop::collection::vec(edge, 0..200),
            hub,
            prop::collection::vec(
                prop_oneof![Just(Tier::Hot), Just(Tier::Warm), Just(Tier::Cold)],
                n as usize,
            ),
            prop::collection::vec((0..n, (1u32..=100).prop_map(|x| x as f32 / 100.0)), 1..5),
            1u32..=6,
            prop_oneof![Just(0.8f32), Just(0.5), Just(1.0), Just(0.93)],
            prop_oneof![Just(0.0f32), Just(0.01), Just(0.05), Just(0.2)],
            prop_oneof![Just(0u32), Just(2), Just(5)],
            prop_oneof![Just(CyclePolicy::FireOnce), Just(CyclePolicy::Reverberate)],
        )
            .prop_map(
                |(n, mut edges, hub, tiers, seeds, max_depth, decay, threshold, max_fan_out, policy)| {
                    edges.extend(hub);
                    Case { n, edges, tiers, seeds, max_depth, decay, threshold, max_fan_out, policy }
                },
            )
    })
}

fn build(case: &Case) -> Graph {
    let mut builder = GraphBuilder::new(case.n);
    for &(s, d, w) in &case.edges {
        builder.add_edge(s, d, w).unwrap();
    }
    for (v, &tier) in case.tiers.iter().enumerate() {
        builder.set_tier(v as u32, tier).unwrap();
    }
    builder.build().unwrap()
}

fn params(case: &Case, batch_size: u32, execution: Execution) -> SpreadParams {
    SpreadParams {
        max_depth: case.max_depth,
        decay: case.decay,
        threshold: case.threshold,
        max_fan_out: case.max_fan_out,
        cycle_policy: case.policy,
        batch_size,
        tier_timeouts: [None; 3],
        execution,
    }
}

/// docs/spec.md §3's pseudo-code, written out plainly in f64.
fn reference(case: &Case) -> (Vec<(u32, f64, u32)>, f64) {
    let n = case.n as usize;
    let mut x = vec![0f64; n];
    for &(v, a) in &case.seeds {
        x[v as usize] = (x[v as usize] + a as f64).min(1.0);
    }
    let mut activation = x.clone();
    let mut hops: Vec<Option<u32>> = x.iter().map(|&a| (a > 0.0).then_some(0)).collect();
    let mut fired = vec![false; n];
    let degree = |u: usize| case.edges.iter().filter(|e| e.0 as usize == u).count();
    for d in 0..case.max_depth {
        let frontier: Vec<bool> = (0..n)
            .map(|u| {
                x[u] > 0.0
                    && x[u] >= case.threshold as f64
                    && (case.max_fan_out == 0 || degree(u) <= case.max_fan_out as usize)
                    && (case.policy == CyclePolicy::Reverberate || !fired[u])
            })
            .collect();
        if !frontier.contains(&true) {
            break;
        }
        for u in 0..n {
            fired[u] |= frontier[u];
        }
        let mut next = vec![0f64; n];
        for &(u, v, w) in &case.edges {
            if frontier[u as usize] {
                next[v as usize] += x[u as usize] * w as f64 * case.decay as f64;
            }
        }
        for v in 0..n {
            next[v] = next[v].min(1.0);
            if next[v] > 0.0 {
                activation[v] = (activation[v] + next[v]).min(1.0);
                hops[v].get_or_insert(d + 1);
            }
        }
        x = next;
    }
    let mut results = Vec::new();
    let mut mass = 0.0;
    for v in 0..n {
        if activation[v] > 0.0 && hops[v] != Some(0) {
            mass += activation[v];
        }
        if hops[v] == Some(0) || (activation[v] > 0.0 && activation[v] >= case.threshold as f64) {
            results.push((v as u32, activation[v], hops[v].unwrap_or(u32::MAX)));
        }
    }
    (results, mass)
}

fn pools() -> &'static [rayon::ThreadPool] {
    static POOLS: OnceLock<Vec<rayon::ThreadPool>> = OnceLock::new();
    POOLS.get_or_init(|| {
        [1, 2, 4].iter().map(|&t| rayon::ThreadPoolBuilder::new().num_threads(t).build().unwrap()).collect()
    })
}

fn bits(results: &[Activation]) -> Vec<(u32, u32, u32)> {
    results.iter().map(|a| (a.node, a.activation.to_bits(), a.hops)).collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(400))]

    #[test]
    fn equals_reference_implementation(case in case()) {
        let graph = build(&case);
        let (results, stats) = spread_standalone(&graph, &params(&case, 64, Execution::default()), &case.seeds, None, None).unwrap();
        let (expected, expected_mass) = reference(&case);
        let mut actual: Vec<_> = results.iter().map(|a| (a.node, a.activation as f64, a.hops)).collect();
        actual.sort_by_key(|r| r.0);
        prop_assert_eq!(actual.len(), expected.len(), "actual {:?}\nexpected {:?}", actual, expected);
        for (a, e) in actual.iter().zip(&expected) {
            prop_assert_eq!(a.0, e.0);
            prop_assert_eq!(a.2, e.2, "hops of node {}", a.0);
            prop_assert!((a.1 - e.1).abs() <= 1e-6, "node {}: {} vs {}", a.0, a.1, e.1);
        }
        prop_assert!((stats.mass - expected_mass).abs() <= 1e-5, "mass {} vs {}", stats.mass, expected_mass);
        // Results are sorted by activation descending, then id ascending.
        for pair in results.windows(2) {
            prop_assert!(pair[0].activation > pair[1].activation
                || (pair[0].activation == pair[1].activation && pair[0].node < pair[1].node));
        }
    }

    #[test]
    fn bit_identical_across_direction_threads_and_batch_size(case in case()) {
        let graph = build(&case);
        let (baseline, base_stats) =
            spread_standalone(&graph, &params(&case, 64, Execution::push_only()), &case.seeds, None, None).unwrap();
        for pool in pools() {
            for batch_size in [8, 64, 128] {
                // Push first, then switch to pull once the frontier reaches half the edges.
                let switching =
                    Execution { pull_share: 2, last_pull_share: 2, pull_min_edges: 0, ..Execution::pull_always() };
                // Pulls, then a last depth pushed (its finish collects after a dense state).
                let push_last = Execution { pull_share: 4, last_pull_share: 1, ..switching };
                // Seeds in the dense arrays: pushes after a dense marking, and switches both ways.
                let dense_switching =
                    Execution { pull_share: 2, last_pull_share: 2, pull_min_edges: 0, ..Execution::dense_seeds() };
                let dense_parallel = Execution { parallel_min_work: 0, nodes_per_batch_unit: 1, ..dense_switching };
                for execution in [
                    Execution::pull_always(),
                    Execution::default(),
                    switching,
                    push_last,
                    Execution::dense_seeds(),
                    dense_switching,
                    dense_parallel,
                ] {
                    let p = params(&case, batch_size, execution);
                    let (results, stats) = spread_standalone(&graph, &p, &case.seeds, Some(pool), None).unwrap();
                    prop_assert_eq!(bits(&results), bits(&baseline),
                        "threads {} batch {} {:?}", pool.current_num_threads(), batch_size, execution);
                    prop_assert_eq!(stats.mass.to_bits(), base_stats.mass.to_bits());
                    prop_assert_eq!(stats.nodes_fired, base_stats.nodes_fired);
                    prop_assert_eq!(stats.edges_traversed, base_stats.edges_traversed);
                    prop_assert_eq!(stats.depth_reached, base_stats.depth_reached);
                }
            }
        }
    }
}

//! A graph split by destination into shards, spread one depth per superstep with the frontiers
//! exchanged between them, answers bit-identically to the single engine (docs/spec.md §20): random
//! graphs with tiers, parallel edges and self-loops, both cycle policies, 1–4 shards.

use axonal_core::shard::{FrontierView, Marked, Shard, delivered_from_units, mass_from_units};
use axonal_core::{
    Activation, CyclePolicy, Execution, Graph, GraphBuilder, SpreadParams, SpreadStats, Tier,
    spread_standalone,
};
use proptest::prelude::*;

/// A random case: nodes, edges, tiers, seeds, parameters, k.
type Case = (u32, Vec<(u32, u32, f32)>, Vec<Tier>, [Vec<(u32, f32)>; 2], SpreadParams, usize);

fn params(depth: u32, decay: f32, threshold: f32, fan_out: u32, policy: CyclePolicy) -> SpreadParams {
    SpreadParams {
        max_depth: depth,
        decay,
        threshold,
        max_fan_out: fan_out,
        cycle_policy: policy,
        batch_size: 64,
        tier_timeouts: [None; 3],
        execution: Execution::default(),
    }
}

/// Ranges `lo..hi` splitting `n` nodes into `count` shards (the last ones may be empty).
fn ranges(n: u32, count: u32) -> Vec<(u32, u32)> {
    let per = n.div_ceil(count);
    (0..count).map(|s| ((s * per).min(n), ((s + 1) * per).min(n))).collect()
}

/// The coordinator: supersteps over `shards` until the frontier is empty, then the merged top `k`.
fn sharded(
    shards: &mut [Shard],
    p: &SpreadParams,
    seeds: &[(u32, f32)],
    k: usize,
) -> (Vec<Activation>, SpreadStats) {
    let mut stats = SpreadStats::default();
    for shard in shards.iter_mut() {
        shard.begin(p, seeds).unwrap();
    }
    let mut delivered = 0u64;
    for d in 0.. {
        let parts: Vec<Marked> = shards.iter_mut().map(|s| s.mark().unwrap()).collect();
        let merged = Marked::merge(&parts);
        if merged.ids.is_empty() {
            break;
        }
        stats.depth_reached = d + 1;
        stats.nodes_fired[d as usize] = merged.ids.len() as u32;
        stats.edges_traversed[d as usize] = merged.edges;
        let view = merged.view();
        for shard in shards.iter_mut() {
            delivered = delivered.saturating_add(shard.gather(view, merged.edges).unwrap());
        }
    }
    let mut results = Vec::new();
    let mut mass = 0u128;
    for shard in shards.iter_mut() {
        let c = shard.collect(k).unwrap();
        results.extend(c.results);
        mass += c.mass_units;
    }
    results.sort_by(|a, b| b.activation.total_cmp(&a.activation).then(a.node.cmp(&b.node)));
    results.truncate(k);
    stats.mass = mass_from_units(mass);
    stats.delivered = delivered_from_units(delivered);
    (results, stats)
}

fn bits(results: &[Activation]) -> Vec<(u32, u32, u32, Tier)> {
    results.iter().map(|a| (a.node, a.activation.to_bits(), a.hops, a.tier)).collect()
}

/// Every shard count 1–4 with each push/pull switch (always push, the default, always pull) answers
/// `seeds` as the engine does, and then `second`, from the state the first recall cleared.
fn check(
    graph: &Graph,
    p: &SpreadParams,
    seeds: &[(u32, f32)],
    second: &[(u32, f32)],
    k: usize,
) -> Result<(), String> {
    let expect = |cue: &[(u32, f32)]| {
        let mut merged = Vec::new();
        axonal_core::spread::normalise_seeds(graph.view(), cue, &mut merged).unwrap();
        let (mut single, want) = spread_standalone(graph, p, cue, None, None).unwrap();
        single.truncate(k);
        (merged, single, want)
    };
    let cues = [expect(seeds), expect(second)];
    let switches = [0, axonal_core::shard::PULL_SHARE, u64::MAX];
    for (count, share) in (1..=4).flat_map(|c| switches.map(|s| (c, s))) {
        let mut shards: Vec<Shard> = ranges(graph.node_count() as u32, count)
            .into_iter()
            .map(|(lo, hi)| Shard::from_graph(graph, lo, hi).unwrap())
            .collect();
        for shard in &mut shards {
            shard.set_pull_share(share);
        }
        for (round, (merged, single, want)) in cues.iter().enumerate() {
            let (got, stats) = sharded(&mut shards, p, merged, k);
            let at = format!("{count} shards, pull share {share}, cue {round}");
            if bits(&got) != bits(single) {
                return Err(format!("{at}: results {got:?} vs {single:?}"));
            }
            if stats.mass.to_bits() != want.mass.to_bits()
                || stats.delivered.to_bits() != want.delivered.to_bits()
            {
                return Err(format!(
                    "{at}: mass {} / {} vs delivered {} / {}",
                    stats.mass, want.mass, stats.delivered, want.delivered
                ));
            }
            if (stats.depth_reached, stats.nodes_fired, stats.edges_traversed)
                != (want.depth_reached, want.nodes_fired, want.edges_traversed)
            {
                return Err(format!("{at}: depths {stats:?} vs {want:?}"));
            }
        }
    }
    Ok(())
}

#[test]
fn worked_examples_across_shards() {
    let cycle = Graph::from_edges(5, &[0, 1, 2, 3, 4], &[1, 2, 3, 4, 0], &[1.0; 5]).unwrap();
    check(&cycle, &params(3, 0.8, 0.01, 0, CyclePolicy::FireOnce), &[(0, 1.0)], &[(2, 0.5)], 10).unwrap();
    let two = Graph::from_edges(2, &[0, 1], &[1, 0], &[1.0; 2]).unwrap();
    for policy in [CyclePolicy::FireOnce, CyclePolicy::Reverberate] {
        check(&two, &params(4, 0.5, 0.01, 0, policy), &[(0, 1.0)], &[(1, 0.5)], 10).unwrap();
    }
    let mut shard = Shard::from_graph(&cycle, 0, 3).unwrap();
    let p = params(3, 0.8, 0.01, 0, CyclePolicy::FireOnce);
    shard.begin(&p, &[(0, 1.0)]).unwrap();
    let marked = shard.mark().unwrap();
    assert_eq!(
        (marked.ids, marked.sends, marked.tier_ends, marked.edges),
        (vec![0], vec![0.8], [1, 1, 1], 1)
    );
}

#[test]
fn bad_frontiers_and_seeds_are_errors_naming_the_value() {
    let graph = Graph::from_edges(4, &[0, 1, 2], &[1, 2, 3], &[1.0; 3]).unwrap();
    let mut shard = Shard::from_graph(&graph, 2, 4).unwrap();
    let p = params(3, 0.8, 0.01, 0, CyclePolicy::FireOnce);
    let frontier =
        |ids: &'static [u32], sends: &'static [f32], ends| FrontierView { ids, sends, tier_ends: ends };
    assert!(shard.gather(frontier(&[1], &[0.8], [1, 1, 1]), 1).unwrap_err().to_string().contains("begin"));
    shard.begin(&p, &[(1, 1.0)]).unwrap();
    for (f, want) in [
        (frontier(&[9], &[0.8], [1, 1, 1]), "node 9 out of range"),
        (frontier(&[1, 0], &[0.8, 0.8], [2, 2, 2]), "ascend"),
        (frontier(&[1], &[0.8, 0.1], [1, 1, 1]), "1 ids but 2 sends"),
        (frontier(&[1], &[f32::NAN], [1, 1, 1]), "send NaN"),
        (frontier(&[1], &[-0.5], [1, 1, 1]), "send -0.5"),
        (frontier(&[1], &[0.8], [1, 0, 1]), "tier ends"),
    ] {
        let error = shard.gather(f, 1).unwrap_err().to_string();
        assert!(error.contains(want), "{error} lacks {want}");
    }
    assert!(shard.begin(&p, &[(2, 1.0), (1, 1.0)]).unwrap_err().to_string().contains("ascending"));
    assert!(shard.begin(&p, &[(7, 1.0)]).unwrap_err().to_string().contains("out of range"));
    assert!(Shard::from_graph(&graph, 3, 9).unwrap_err().to_string().contains("3..9"));
}

fn case() -> impl Strategy<Value = Case> {
    (2u32..80).prop_flat_map(|n| {
        (
            Just(n),
            prop::collection::vec((0..n, 0..n, (1u32..=1000).prop_map(|x| x as f32 / 1000.0)), 1..400),
            prop::collection::vec(
                prop_oneof![Just(Tier::Hot), Just(Tier::Warm), Just(Tier::Cold)],
                n as usize,
            ),
            prop::array::uniform2(prop::collection::vec(
                (0..n, (1u32..=100).prop_map(|x| x as f32 / 100.0)),
                1..12,
            )),
            (
                1u32..=6,
                prop_oneof![Just(0.5f32), Just(0.8), Just(1.0)],
                prop_oneof![Just(0.0f32), Just(0.01), Just(0.2)],
            ),
            (
                prop_oneof![Just(0u32), Just(3)],
                prop_oneof![Just(CyclePolicy::FireOnce), Just(CyclePolicy::Reverberate)],
            ),
            prop_oneof![Just(3usize), Just(1000)],
        )
            .prop_map(|(n, edges, tiers, seeds, (depth, decay, threshold), (fan_out, policy), k)| {
                (n, edges, tiers, seeds, params(depth, decay, threshold, fan_out, policy), k)
            })
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(120))]

    #[test]
    fn sharded_recall_is_bit_identical_to_the_engine((n, edges, tiers, seeds, p, k) in case()) {
        let mut builder = GraphBuilder::new(n);
        for &(s, d, w) in &edges {
            builder.add_edge(s, d, w).unwrap();
        }
        for (v, &tier) in tiers.iter().enumerate() {
            builder.set_tier(v as u32, tier).unwrap();
        }
        let graph = builder.build().unwrap();
        let outcome = check(&graph, &p, &seeds[0], &seeds[1], k);
        prop_assert!(outcome.is_ok(), "{:?}", outcome);
    }
}

//! A graph split by destination into shards, spread one depth per superstep with the frontiers
//! exchanged between them, answers bit-identically to the single engine (docs/spec.md §20): random
//! graphs with tiers, parallel edges and self-loops, both cycle policies, 1–4 shards.

use axonal_core::shard::{
    FrontierView, Marked, Shard, balanced_ranges, delivered_from_units, mass_from_units, seed_frontier,
};
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
/// `fused`: the coordinator computes the seeds' frontier from `graph` and sends it with the seeds
/// (`begin_at`), as `axonal.ray` does; otherwise every shard begins and marks its own.
fn sharded(
    graph: &Graph,
    shards: &mut [Shard],
    p: &SpreadParams,
    seeds: &[(u32, f32)],
    k: usize,
    fused: bool,
) -> (Vec<Activation>, SpreadStats) {
    let mut stats = SpreadStats::default();
    let mut first = None;
    if fused {
        let frontier = seed_frontier(graph, p, seeds).unwrap();
        for shard in shards.iter_mut() {
            shard.begin_at(p, seeds, frontier.view()).unwrap();
        }
        first = Some(frontier);
    } else {
        for shard in shards.iter_mut() {
            shard.begin(p, seeds).unwrap();
        }
    }
    let mut delivered = 0u64;
    let mut results = Vec::new();
    let mut mass = 0u128;
    let mut collected = false;
    for d in 0.. {
        let merged = match first.take() {
            Some(frontier) => frontier,
            None => Marked::merge(&shards.iter_mut().map(|s| s.mark().unwrap()).collect::<Vec<_>>()),
        };
        if !merged.ids.is_empty() {
            stats.depth_reached = d + 1;
            stats.nodes_fired[d as usize] = merged.ids.len() as u32;
            stats.edges_traversed[d as usize] = merged.edges;
        }
        let view = merged.view();
        // Fused, the round of the last depth (or of an empty frontier) also collects.
        if fused && (merged.ids.is_empty() || d + 1 >= p.max_depth) {
            for shard in shards.iter_mut() {
                let (units, c) = shard.gather_and_collect(view, merged.edges, k).unwrap();
                delivered = delivered.saturating_add(units);
                results.extend(c.results);
                mass += c.mass_units;
            }
            collected = true;
            break;
        }
        if merged.ids.is_empty() {
            break;
        }
        for shard in shards.iter_mut() {
            delivered = delivered.saturating_add(shard.gather(view, merged.edges).unwrap());
        }
    }
    if !collected {
        for shard in shards.iter_mut() {
            let c = shard.collect(k).unwrap();
            results.extend(c.results);
            mass += c.mass_units;
        }
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

/// Every shard count 1–4 with each push/pull switch (always push, pulls for half the edges, the default, always pull) answers
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
    // Always push, a pull only for frontiers with half the edges (pushes after pulls are common),
    // the default, always pull.
    let switches = [0, 2, axonal_core::shard::PULL_SHARE, u64::MAX];
    for (count, share) in (1..=4).flat_map(|c| switches.map(|s| (c, s))) {
        // Equal node counts, or cuts balanced by in-edges (as `axonal.ray` splits a graph).
        let split = if share == axonal_core::shard::PULL_SHARE {
            balanced_ranges(graph, count.min(graph.node_count() as u32)).unwrap()
        } else {
            ranges(graph.node_count() as u32, count)
        };
        let mut shards: Vec<Shard> =
            split.into_iter().map(|(lo, hi)| Shard::from_graph(graph, lo, hi).unwrap()).collect();
        for shard in &mut shards {
            shard.set_pull_share(share);
        }
        for (round, (merged, single, want)) in cues.iter().enumerate() {
            // The seeds' frontier as the coordinator computes it is the shards' own marking merged.
            let mut marks = Vec::new();
            for shard in &mut shards {
                shard.begin(p, merged).unwrap();
                marks.push(shard.mark().unwrap());
                shard.reset();
            }
            if seed_frontier(graph, p, merged).unwrap() != Marked::merge(&marks) {
                return Err(format!("{count} shards, cue {round}: the seeds' frontier differs"));
            }
            // Alternate the fused first superstep with the plain one.
            let fused = (round + count as usize).is_multiple_of(2);
            let (got, stats) = sharded(graph, &mut shards, p, merged, k, fused);
            let at = format!("{count} shards, pull share {share}, cue {round}, fused {fused}");
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
    // A first frontier that is not this shard's marking of the seeds (another graph's) is refused,
    // and the shard is left with no recall in progress.
    // (With a fan-out limit of 1, node 0 fires here, where it has one out-edge, and not in `other`.)
    let p = params(3, 0.8, 0.01, 1, CyclePolicy::FireOnce);
    let mut shard = Shard::from_graph(&graph, 0, 2).unwrap();
    let other = Graph::from_edges(4, &[0, 0, 2], &[1, 2, 3], &[1.0; 3]).unwrap();
    let theirs = seed_frontier(&other, &p, &[(0, 1.0)]).unwrap();
    assert!(theirs.ids.is_empty());
    let error = shard.begin_at(&p, &[(0, 1.0)], theirs.view()).unwrap_err().to_string();
    assert!(error.contains("nodes 0..2") && error.contains("different graphs"), "{error}");
    assert!(shard.gather(theirs.view(), 0).unwrap_err().to_string().contains("begin"));
    let ours = seed_frontier(&graph, &p, &[(0, 1.0)]).unwrap();
    shard.begin_at(&p, &[(0, 1.0)], ours.view()).unwrap();
    // Collecting after a depth that is not the last is refused before anything is gathered.
    let error = shard.gather_and_collect(ours.view(), 1, 10).unwrap_err().to_string();
    assert!(error.contains("depth 1 of 3 is not the last"), "{error}");
    shard.gather(ours.view(), 1).unwrap();
    assert!(seed_frontier(&graph, &p, &[(4, 1.0)]).unwrap_err().to_string().contains("out of range"));
}

#[test]
fn balanced_ranges_split_the_in_edges_evenly() {
    // A star into node 0 (999 in-edges) and a path 1 → 2 → … → 999. With a node weighing
    // NODE_WEIGHT = 10 in-edges, nodes 0..v (v ≥ 2) weigh 999 + (v − 2) + 10 v = 11 v + 997, of
    // 1 997 + 10 000 = 11 997 in all.
    assert_eq!(axonal_core::shard::NODE_WEIGHT, 10);
    let n = 1000u32;
    let src: Vec<u32> = (1..n).chain(1..n - 1).collect();
    let dst: Vec<u32> = (1..n).map(|_| 0).chain(2..n).collect();
    let graph = Graph::from_edges(n, &src, &dst, &vec![1.0; src.len()]).unwrap();
    for count in 1..=5u32 {
        let split = balanced_ranges(&graph, count).unwrap();
        assert_eq!(split.len(), count as usize);
        assert_eq!((split[0].0, split[count as usize - 1].1), (0, n));
        assert!(split.windows(2).all(|w| w[0].1 == w[1].0 && w[0].0 <= w[0].1), "{split:?}");
    }
    // Each cut is the node boundary nearest its share: 5 998 for halves (nodes 0..455 weigh 6 002,
    // 0..454 5 991), 3 999 and 7 998 for thirds (0..636: 7 993, 0..637: 8 004), 2 999, 5 998 and
    // 8 997 for quarters (0..727: 8 994, 0..728: 9 005).
    assert_eq!(balanced_ranges(&graph, 2).unwrap(), vec![(0, 455), (455, 1000)]);
    assert_eq!(balanced_ranges(&graph, 3).unwrap(), vec![(0, 273), (273, 636), (636, 1000)]);
    assert_eq!(balanced_ranges(&graph, 4).unwrap(), vec![(0, 182), (182, 455), (455, 727), (727, 1000)]);
    // A hub heavier than a share is a shard of its own: 12 parallel edges from every other node.
    let hub_src: Vec<u32> = (1..n).flat_map(|u| [u; 12]).collect();
    let hub = Graph::from_edges(n, &hub_src, &vec![0; hub_src.len()], &vec![1.0; hub_src.len()]).unwrap();
    assert_eq!(balanced_ranges(&hub, 2).unwrap(), vec![(0, 1), (1, 1000)]);
    assert!(balanced_ranges(&graph, 0).unwrap_err().to_string().contains("0 shards"));
    assert!(balanced_ranges(&graph, 1001).unwrap_err().to_string().contains("1001 shards"));
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

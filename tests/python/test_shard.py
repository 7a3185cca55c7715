"""The shard kernel from Python (`axonal._native.Shard`, docs/spec.md §20), without Ray: a
coordinator of a few lines over it answers as one engine does, and bad frontiers, seeds and ranges
are errors naming the value — the shard stays usable after each."""

import numpy as np
import pytest

import axonal
from axonal._native import Shard

CONFIG = {"spreading": {"max_depth": 4, "tier_timeouts_ms": {"hot": 0, "warm": 0, "cold": 0}}}


def graph():
    rng = np.random.default_rng(5)
    n, m = 300, 2500
    return axonal.Graph.from_edges(
        rng.integers(0, n, m), rng.integers(0, n, m), rng.integers(1, 1001, m) / 1000.0, num_nodes=n,
        tiers=rng.integers(0, 3, n).astype(np.uint8),
    )


def sharded_recall(shards, seeds, node_count, k):
    ids, acts = Shard.normalise_seeds(seeds, node_count)
    parts = [s.begin(ids, acts) for s in shards]
    delivered = 0
    while True:
        frontier, work = merge(parts)
        if len(frontier[0]) == 0:
            break
        parts = [s.step(*frontier, work) for s in shards]
        delivered += sum(p[4] for p in parts)
    return answer([s.collect(k) for s in shards], k, delivered)


def merge(parts):
    """The whole frontier from the shards' markings: hot tier first, each tier in shard order."""
    merged_ids, merged_sends, ends = [], [], []
    for t in range(3):
        for p in parts:
            start = 0 if t == 0 else p[2][t - 1]
            merged_ids.append(p[0][start : p[2][t]])
            merged_sends.append(p[1][start : p[2][t]])
        ends.append(sum(len(x) for x in merged_ids))
    return (np.concatenate(merged_ids), np.concatenate(merged_sends), tuple(ends)), sum(p[3] for p in parts)


def answer(collected, k, delivered):
    """The shards' collected parts merged: the top `k` best first, mass and delivered."""
    nodes = np.concatenate([c[0] for c in collected])
    acts = np.concatenate([c[1] for c in collected])
    order = np.lexsort((nodes, -acts.astype(np.float64)))[:k]
    mass, delivered = Shard.totals(sum(c[4] for c in collected), delivered)
    return nodes[order], acts[order], mass, delivered


def test_a_coordinator_over_shards_answers_as_one_engine():
    g = graph()
    with axonal.Engine(g, CONFIG) as e:
        for shard_count in (1, 2, 5):
            per = -(-g.num_nodes // shard_count)
            shards = [Shard(g, i * per, min((i + 1) * per, g.num_nodes), CONFIG) for i in range(shard_count)]
            assert sum(s.in_edge_count for s in shards) == g.num_edges
            for seeds in ([0, 1, 2], {7: 0.5, 9: 1.0}, [(3, 0.6), (3, 0.7)]):
                want = e.recall(seeds, k=50)
                nodes, acts, mass, delivered = sharded_recall(shards, seeds, g.num_nodes, 50)
                assert nodes.tolist() == want.nodes.tolist()
                assert acts.tobytes() == want.activations.tobytes()
                assert (mass, delivered) == (want.stats["mass"], want.stats["delivered"])


def fused_recall(g, shards, seeds, k):
    """As `axonal.ray` drives them: the seeds' frontier from the whole graph goes with the seeds in
    the first superstep, and the last depth's superstep collects."""
    ids, acts = Shard.normalise_seeds(seeds, g.num_nodes)
    first = Shard.seed_frontier(g, ids, acts, CONFIG)
    frontier, work, depth, delivered = (first[0], first[1], tuple(first[2])), first[3], 0, 0
    begin = (ids, acts)
    while True:
        last = len(frontier[0]) == 0 or depth + 1 >= shards[0].max_depth
        parts = [s.step(*frontier, work, begin, k if last else None) for s in shards]
        begin, depth = None, depth + 1
        delivered += sum(p[4] for p in parts)
        if last:
            collected = [p[5] for p in parts]
            break
        assert all(p[5] is None for p in parts)
        frontier, work = merge(parts)
    return answer(collected, k, delivered)


def test_fused_rounds_answer_as_one_engine():
    g = graph()
    with axonal.Engine(g, CONFIG) as e:
        shards = [Shard(g, 0, 100, CONFIG), Shard(g, 100, 300, CONFIG)]
        # The last cue's seed never fires (a threshold above its activation): one round begins and
        # collects.
        for seeds in ([0, 1, 2], {7: 0.5, 9: 1.0}, [(3, 0.6), (3, 0.7)], {11: 0.005}):
            want = e.recall(seeds, k=50)
            nodes, acts, mass, delivered = fused_recall(g, shards, seeds, 50)
            assert nodes.tolist() == want.nodes.tolist()
            assert acts.tobytes() == want.activations.tobytes()
            assert (mass, delivered) == (want.stats["mass"], want.stats["delivered"])
    # A first frontier that is not the shard's marking of the seeds (another graph's) is refused; a
    # collect before the last depth too, before anything is gathered.
    ids, acts = Shard.normalise_seeds([0], g.num_nodes)
    s = Shard(g, 0, 300, CONFIG)
    with pytest.raises(axonal.RecallError, match="different graphs"):
        s.step(np.zeros(0, np.uint32), np.zeros(0, np.float32), (0, 0, 0), 0, (ids, acts))
    f = Shard.seed_frontier(g, ids, acts, CONFIG)
    with pytest.raises(axonal.RecallError, match="depth 1 of 4 is not the last"):
        s.step(f[0], f[1], tuple(f[2]), f[3], (ids, acts), 10)
    # The recall that call began is not left behind.
    with pytest.raises(axonal.RecallError, match="begin first"):
        s.step(f[0], f[1], tuple(f[2]), f[3])
    with pytest.raises(axonal.RecallError, match="unique and ascending"):
        Shard.seed_frontier(g, np.array([5, 1], np.uint32), np.array([1.0, 1.0], np.float32))


def test_balanced_ranges_cover_the_graph_and_split_its_in_edges():
    # Node 0 is a hub with 299 in-edges, then a path 1 → 2 → … → 299; a node weighs 10 in-edges.
    n = 300
    src = list(range(1, n)) + list(range(1, n - 1))
    dst = [0] * (n - 1) + list(range(2, n))
    g = axonal.Graph.from_edges(src, dst, [1.0] * len(src), num_nodes=n)
    ranges = Shard.balanced_ranges(g, 3)
    assert ranges[0][0] == 0 and ranges[-1][1] == n
    assert all(a[1] == b[0] for a, b in zip(ranges, ranges[1:]))
    shards = [Shard(g, lo, hi) for lo, hi in ranges]
    work = [s.in_edge_count + 10 * (s.hi - s.lo) for s in shards]
    assert max(work) - min(work) <= 11, work
    assert ranges[0][1] < 100, "the hub's shard has fewer nodes"
    with pytest.raises(axonal.ConfigError, match="0 shards for a graph of 300 nodes"):
        Shard.balanced_ranges(g, 0)


def test_bad_frontiers_seeds_and_ranges_are_errors_and_change_nothing():
    g = graph()
    assert g.version == 0
    with pytest.raises(axonal.ConfigError, match="range 200..400 is not within the graph's 300 nodes"):
        Shard(g, 200, 400)
    s = Shard(g, 0, 150, CONFIG)
    assert (s.lo, s.hi, s.node_count, s.k, s.max_depth) == (0, 150, 300, 10, 4)
    ids, acts = Shard.normalise_seeds([5, 5, 1], 300)
    assert ids.tolist() == [1, 5] and acts.tolist() == [1.0, 1.0]
    with pytest.raises(axonal.RecallError, match="node 300 out of range"):
        Shard.normalise_seeds([300], 300)
    with pytest.raises(axonal.RecallError, match="begin first"):
        s.step(np.array([1], np.uint32), np.array([0.5], np.float32), (1, 1, 1), 1)
    with pytest.raises(axonal.RecallError, match="unique and ascending"):
        s.begin(np.array([5, 1], np.uint32), np.array([1.0, 1.0], np.float32))
    with pytest.raises(axonal.RecallError, match="2 ids but 1 activations"):
        s.begin(np.array([1, 5], np.uint32), np.array([1.0], np.float32))
    s.begin(ids, acts)
    for frontier, message in [
        ((np.array([400], np.uint32), np.array([0.5], np.float32), (1, 1, 1)), "node 400 out of range"),
        ((np.array([2, 1], np.uint32), np.array([0.5, 0.5], np.float32), (2, 2, 2)), "ascend"),
        ((np.array([1], np.uint32), np.array([np.inf], np.float32), (1, 1, 1)), "send inf"),
        ((np.array([1], np.uint32), np.array([0.5], np.float32), (0, 2, 1)), "tier ends"),
    ]:
        with pytest.raises(axonal.RecallError, match=message):
            s.step(*frontier, 1)
    with pytest.raises(TypeError, match="ids"):
        s.step(["a"], [0.5], (1, 1, 1), 1)
    # Still usable: the recall in progress continues.
    out = s.step(np.array([1, 5], np.uint32), np.array([0.8, 0.8], np.float32), (2, 2, 2), 10)
    assert len(out) == 6 and out[5] is None

"""Batched recall from Python (docs/spec.md §19): a list of seed specs or CSR NumPy arrays in, each
cue answered as its own recall (bit for bit), as a list or in columnar form; malformed batches are
errors naming the cue or the array entry, and nothing is recalled."""

import types

import numpy as np
import pytest

import axonal


def random_graph(n=2_000, m=12_000, seed=3):
    rng = np.random.default_rng(seed)
    src = rng.integers(0, n, m, dtype=np.uint32)
    dst = rng.integers(0, n, m, dtype=np.uint32)
    w = rng.uniform(0.1, 1.0, m).astype(np.float32)
    return axonal.Graph.from_edges(src, dst, w)


CONFIG = {"threads": 2, "autotune": {"enabled": False}, "spreading": {"latency_budget_ms": 60000}}


def same(a, b):
    return (
        a.nodes.tolist() == b.nodes.tolist()
        and a.activations.tobytes() == b.activations.tobytes()
        and a.hops.tolist() == b.hops.tolist()
        and (a.source, a.reason) == (b.source, b.reason)
    )


def test_each_cue_of_a_list_answers_as_its_own_recall():
    g = random_graph()
    cues = [[1, 2, 3], {4: 0.5, 9: 1.0}, [(7, 0.25), (7, 0.5)], np.array([11, 12], dtype=np.int64), [1999]]
    cues = cues * 30
    with axonal.Engine(g, CONFIG) as one, axonal.Engine(g, CONFIG) as batched:
        results = batched.recall_batch(cues, k=25)
        assert isinstance(results, list) and len(results) == len(cues)
        for cue, got in zip(cues, results):
            assert same(one.recall(cue, k=25), got), cue


def test_csr_arrays_and_the_columnar_form_agree_with_the_list():
    g = random_graph()
    rng = np.random.default_rng(5)
    sizes = rng.integers(1, 6, 200)
    offsets = np.concatenate([[0], np.cumsum(sizes)]).astype(np.int64)
    ids = rng.integers(0, 2_000, offsets[-1]).astype(np.uint32)
    with axonal.Engine(g, CONFIG) as e:
        listed = e.recall_batch([ids[offsets[i] : offsets[i + 1]] for i in range(200)])
        columns = e.recall_batch((ids, offsets), columnar=True)
        assert len(columns) == 200 and columns.offsets.dtype == np.uint64
        assert columns.graph_version == 0
        for i, r in enumerate(listed):
            start, end = columns.offsets[i], columns.offsets[i + 1]
            assert columns.nodes[start:end].tolist() == r.nodes.tolist()
            assert columns.activations[start:end].tobytes() == r.activations.tobytes()
            assert columns.hops[start:end].tolist() == r.hops.tolist()
            assert same(columns[i], r)
        assert columns[-1].nodes.tolist() == listed[-1].nodes.tolist()
        assert [r.nodes.tolist() for r in columns] == [r.nodes.tolist() for r in listed]
        assert not columns.fallback.any() and columns.reasons == [None] * 200
        with pytest.raises(IndexError, match="cue 200 is out of range for a batch of 200"):
            columns[200]


def test_each_cue_has_its_own_source_and_reason():
    with axonal.Engine(random_graph(), CONFIG) as e:
        e.breaker_override = "forced_open"
        results = e.recall_batch([[1], [2, 3]])
        assert [(r.source, r.reason) for r in results] == [("fallback", "breaker_open")] * 2
        columns = e.recall_batch([[1], [2, 3]], columnar=True)
        assert columns.fallback.tolist() == [True, True]
        assert columns.reasons == ["breaker_open", "breaker_open"]


def test_an_empty_batch_answers_nothing():
    with axonal.Engine(random_graph(), CONFIG) as e:
        assert e.recall_batch([]) == []
        empty = e.recall_batch((np.array([], dtype=np.uint32), np.array([0])), columnar=True)
        assert len(empty) == 0 and empty.offsets.tolist() == [0]


def recalls_total(e):
    for line in e.prometheus().splitlines():
        if line.startswith("axonal_spreading_recalls_total "):
            return float(line.split()[-1])
    raise AssertionError("no axonal_spreading_recalls_total")


@pytest.mark.parametrize(
    ("cues", "error", "message"),
    [
        ([[1], [2], [5000]], axonal.RecallError, r"cues\[2\]\.seeds: node 5000 out of range"),
        ([[1], []], axonal.RecallError, r"cues\[1\]\.seeds: a cue needs seeds"),
        ([[1], [-3]], axonal.RecallError, r"cues\[1\]\.seeds\[0\]: -3 is not a node id"),
        ([[1], {2: 1.5}], axonal.RecallError, r"cues\[1\]\.seeds\[2\]: activation 1.5"),
        ([[1], "ab"], TypeError, r"cues\[1\]\.seeds: expected a list of ids"),
        ("abc", TypeError, r"cues: expected a list of seed specs"),
        ({1: 1.0}, TypeError, r"cues: expected a list of seed specs"),
        ((np.array([1, 2]), np.array([0, 1, 3])), axonal.RecallError, r"offsets\[2\]: 3 overruns the 2 seed ids"),
        ((np.array([1, 2]), np.array([0, 2, 1])), axonal.RecallError, r"offsets\[2\]: 1 is less than"),
        ((np.array([1, 2]), np.array([1, 2])), axonal.RecallError, r"offsets\[0\]: must be 0"),
        ((np.array([1, 2]), np.array([], dtype=np.int64)), axonal.RecallError, r"offsets: must hold one entry"),
        ((np.array([1, -2]), np.array([0, 2])), axonal.RecallError, r"seed_ids\[1\]: -2 is not a node id"),
        ((np.array([1, 2]), np.array([0, -1, 2])), axonal.RecallError, r"offsets\[1\]: -1 is not an offset"),
        ((np.array([1.0, 2.0]), np.array([0, 2])), TypeError, r"seed_ids: expected a 1-D NumPy integer array"),
        (types.MappingProxyType({1: [1]}), TypeError, r"cues: expected a list of seed specs"),
        ([[1], [2, 1.5]], axonal.RecallError, r"^cue cues\[1\]\.seeds\[1\]: 1.5 \(float\) is not a node id"),
        ((np.array([1, 2]), np.array([0, 1, 2])), None, None),
    ],
)
def test_bad_batches_name_what_is_wrong_and_recall_nothing(cues, error, message):
    with axonal.Engine(random_graph(), CONFIG) as e:
        if error is None:
            assert len(e.recall_batch(cues)) == 2
            return
        with pytest.raises(error, match=message):
            e.recall_batch(cues)
        assert recalls_total(e) == 0


def test_k_applies_to_every_cue_and_zero_is_refused():
    with axonal.Engine(random_graph(), CONFIG) as e:
        assert all(len(r) <= 3 for r in e.recall_batch([[1], [2]], k=3))
        with pytest.raises(axonal.RecallError, match=r"k: must be >= 1 \(it applies to every cue\)"):
            e.recall_batch([[1]], k=0)
        with pytest.raises(axonal.RecallError, match="k: must be >= 1"):
            e.recall_batch([], k=0)


def test_k_that_is_not_a_count_is_named():
    with axonal.Engine(random_graph(), CONFIG) as e:
        for call in (lambda k: e.recall([1], k=k), lambda k: e.recall_batch([[1]], k=k)):
            for k, error, message in [
                (-1, axonal.RecallError, r"^cue k: -1 must be >= 1"),
                (2**64, axonal.RecallError, r"^cue k: 18446744073709551616 does not fit in 64 bits"),
                (2**200, axonal.RecallError, r"^cue k: \d+ \(int\) does not fit in 64 bits"),
                (1.5, TypeError, r"^k: expected an int >= 1 or None, got 1.5 \(float\)"),
                ("3", TypeError, r"^k: expected an int >= 1 or None, got '3' \(str\)"),
                (True, TypeError, r"^k: expected an int >= 1 or None, got True \(bool\)"),
            ]:
                with pytest.raises(error, match=message):
                    call(k)
            assert len(call(np.int64(2))) <= 2
        assert recalls_total(e) == 2


def test_a_mapping_of_seeds_is_read_as_id_to_activation():
    """Any `Mapping`, not only a dict, gives its activations (iterating one yields keys alone)."""
    with axonal.Engine(random_graph(), CONFIG) as e:
        plain = {1: 0.05, 7: 0.5}
        want = e.recall(plain)
        proxy = types.MappingProxyType(plain)
        assert same(e.recall(proxy), want)
        assert same(e.recall_batch([proxy])[0], want)
        with pytest.raises(axonal.RecallError, match=r"cues\[0\]\.seeds\[7\]: activation 1.5"):
            e.recall_batch([types.MappingProxyType({7: 1.5})])


def test_an_exception_from_the_hosts_objects_comes_through_as_raised():
    class Odd(Exception):
        def __init__(self, a, b):
            super().__init__(f"{a}/{b}")

    def cue():
        yield 1
        raise Odd(1, 2)

    with axonal.Engine(random_graph(), CONFIG) as e:
        with pytest.raises(Odd, match="^1/2$"):
            e.recall_batch([[1], cue()])
        with pytest.raises(Odd, match="^1/2$"):
            e.recall(cue())
        assert recalls_total(e) == 0


def test_csr_arrays_in_the_other_byte_order_are_read():
    with axonal.Engine(random_graph(), CONFIG) as e:
        ids, offsets = np.array([1, 2, 3, 4]), np.array([0, 2, 4])
        want = e.recall_batch((ids, offsets))
        swapped = e.recall_batch((ids.astype(">u4"), offsets.astype(">i8")))
        assert all(same(a, b) for a, b in zip(swapped, want))


def test_stats_say_how_each_cue_ran():
    """§19: `pulled`, `pull_phases` and `shared_lanes` in every cue's stats: a batch of cues that
    reach most of a graph whose lanes fit the cache runs its first cue alone, the next in a group."""
    n = 6_000
    rng = np.random.default_rng(9)
    cues = [rng.choice(n, 300, replace=False).astype(np.uint32) for _ in range(9)]
    config = {**CONFIG, "spreading": {"latency_budget_ms": 60000, "tier_timeouts_ms": {"hot": 0, "warm": 0, "cold": 0}}}
    with axonal.Engine(random_graph(n, 6 * n), config) as e:
        batch = e.recall_batch(cues, k=5)
        alone = [e.recall(c, k=5) for c in cues]
        assert all(same(a, b) for a, b in zip(batch, alone))
        for r in alone:
            assert r.stats["shared_lanes"] == 0 and r.stats["pulled"] is True and r.stats["pull_phases"] >= 1
        assert [r.stats["shared_lanes"] for r in batch] == [0] + [8] * 8
        # A group's pull phases count once, on its first cue.
        assert batch[1].stats["pull_phases"] >= 1 and all(r.stats["pull_phases"] == 0 for r in batch[2:])

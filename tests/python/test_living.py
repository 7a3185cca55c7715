"""The living graph and snapshots from Python (docs/spec.md §16-17): batches from NumPy arrays or
sequences, versions, compaction, results bit-identical to a graph built from scratch, bad batches
that change nothing, and snapshots that load back identical or fail naming what is wrong."""

import threading

import numpy as np
import pytest

import axonal

CONFIG = {"autotune": {"enabled": False}, "spreading": {"tier_timeouts_ms": {"hot": 0, "warm": 0, "cold": 0}}}


def cycle():
    return axonal.Graph.from_edges([0, 1, 2, 3, 4], [1, 2, 3, 4, 0], [1.0] * 5, labels=["a", None, None, None, None])


def results(r):
    return r.nodes.tolist(), r.activations.view(np.uint32).tolist(), r.hops.tolist(), r.tiers


def test_batches_make_versions_and_recalls_see_them():
    g = cycle()
    with axonal.Engine(g, CONFIG) as e:
        assert e.graph_version == 0
        first = e.add_nodes(2, tiers=np.array([1, 0], dtype=np.uint8), labels=["added", None])
        assert (first, e.graph_version) == (5, 1)
        v = e.add_edges(np.array([4, 5], dtype=np.uint32), np.array([5, 6], dtype=np.uint32), np.array([1.0, 0.5], dtype=np.float32))
        assert v == 2
        r = e.recall([4], k=10)
        assert r.stats["graph_version"] == 2
        assert 5 in r.nodes.tolist() and 6 in r.nodes.tolist()
        assert r.labels[r.nodes.tolist().index(5)] == "added"
        assert r.tiers[r.nodes.tolist().index(5)] == "warm"
        assert e.set_weights([5], [6], [0.25]) == 3
        assert e.set_tiers([6], ["cold"]) == 4
        assert e.remove_edges([4], [5]) == 5
        assert e.compact() == 5 and e.graph_version == 5
        # The result keeps the version it ran on: its labels are those of version 2.
        assert r.labels[r.nodes.tolist().index(5)] == "added"
    # The graph the engine was built from never changes.
    assert (g.num_nodes, g.num_edges) == (5, 5)


def test_random_batches_equal_a_graph_built_from_scratch():
    rng = np.random.default_rng(7)
    n = 200
    src = rng.integers(0, n, 1500, dtype=np.uint32)
    dst = rng.integers(0, n, 1500, dtype=np.uint32)
    w = rng.uniform(0.05, 1.0, 1500).astype(np.float32)
    edges = list(zip(src.tolist(), dst.tolist(), w.tolist()))
    tiers = ["hot"] * n
    with axonal.Engine(axonal.Graph.from_edges(src[:500], dst[:500], w[:500], num_nodes=n), CONFIG) as e:
        model = edges[:500]
        for start in range(500, 1500, 250):
            e.add_edges(src[start : start + 250], dst[start : start + 250], w[start : start + 250])
            model += edges[start : start + 250]
            pairs = list(dict.fromkeys((s, d) for s, d, _ in model[start - 100 : start - 80]))
            e.remove_edges([p[0] for p in pairs], [p[1] for p in pairs])
            model = [x for x in model if (x[0], x[1]) not in set(pairs)]
            s, d, _ = model[start // 10]
            e.set_weights([s], [d], [0.125])
            model = [(a, b, 0.125 if (a, b) == (s, d) else c) for a, b, c in model]
            moved = int(rng.integers(0, n))
            e.set_tiers([moved], ["warm"])
            tiers[moved] = "warm"
            if start % 500 == 0:
                e.compact()
            fresh = axonal.Graph.from_edges(
                [x[0] for x in model], [x[1] for x in model], np.array([x[2] for x in model], dtype=np.float32), num_nodes=n, tiers=tiers
            )
            with axonal.Engine(fresh, CONFIG) as reference:
                for seeds in ([0], [3, 17], [int(moved)]):
                    assert results(e.recall(seeds, k=n)) == results(reference.recall(seeds, k=n))


def test_bad_batches_name_the_entry_and_change_nothing():
    with axonal.Engine(cycle(), CONFIG) as e:
        before = results(e.recall([0]))
        cases = [
            (lambda: e.add_edges([0, 9], [1, 1], [0.5, 0.5]), axonal.GraphError, "edge 1: source node 9 out of range"),
            (lambda: e.add_edges([0], [1], [float("nan")]), axonal.GraphError, "nan"),
            (lambda: e.add_edges([0], [1], [1.5]), axonal.GraphError, "1.5"),
            (lambda: e.add_edges([0, 1], [1], [0.5, 0.5]), axonal.GraphError, "differ in length"),
            (lambda: e.add_edges(["0"], [1], [0.5]), TypeError, "src[0]: '0' (str)"),
            (lambda: e.set_weights([0], [3], [0.5]), axonal.GraphError, "set_weights entry 0: no edge 0 -> 3"),
            (lambda: e.remove_edges([0, 0], [1, 1]), axonal.GraphError, "already listed at entry 0"),
            (lambda: e.set_tiers([0], ["lukewarm"]), axonal.GraphError, "tiers[0]: unknown tier"),
            (lambda: e.set_tiers([7], ["cold"]), axonal.GraphError, "node 7 out of range"),
            (lambda: e.add_nodes(1, labels=["\ud800"]), axonal.GraphError, "labels[0]"),
            (lambda: e.add_nodes(1, labels=[b"bytes"]), TypeError, "labels[0]: b'bytes' (bytes) is not a str or None"),
            (lambda: e.add_nodes(2, labels=["x"]), axonal.GraphError, "labels: 1 entries for 2 new nodes"),
            (lambda: e.add_nodes(1, embeddings=[[1.0, 2.0], [3.0]]), axonal.GraphError, "embeddings"),
            (lambda: e.add_nodes(0), axonal.GraphError, "count must be at least 1"),
        ]
        for call, kind, text in cases:
            with pytest.raises(kind) as raised:
                call()
            assert text.lower() in str(raised.value).lower(), str(raised.value)
        assert e.graph_version == 0
        # Seven reached the engine as batches; the others failed converting their arguments.
        assert e.snapshot()["spreading"]["graph"]["batches_rejected_total"] == 7
        assert results(e.recall([0])) == before
        # Embeddings: the graph's dimension once it has one.
        e.add_nodes(1, embeddings=np.ones((1, 3), dtype=np.float32))
        with pytest.raises(axonal.GraphError, match="dimension"):
            e.add_nodes(1, embeddings=np.ones((1, 4), dtype=np.float32))


def test_writers_and_readers_in_threads():
    with axonal.Engine(cycle(), CONFIG) as e:
        first = e.add_nodes(100)
        stop = threading.Event()
        seen = []

        def reader():
            while not stop.is_set():
                seen.append(e.recall([0]).stats["graph_version"])

        thread = threading.Thread(target=reader)
        thread.start()
        for i in range(50):
            e.add_edges([4], [first + i], [0.5])
        stop.set()
        thread.join()
        assert e.graph_version == 51
        assert seen == sorted(seen) and seen[-1] <= 51


def test_snapshots_round_trip_and_engines_continue(tmp_path):
    g = axonal.Graph.from_edges(
        [0, 1, 2], [1, 2, 0], [0.5, 0.5, 1.0], tiers=["hot", "warm", "cold"], labels=["x", None, "zé"], embeddings=np.eye(3, dtype=np.float32)
    )
    path = tmp_path / "g.axs"
    assert g.save(path) == path.stat().st_size
    loaded = axonal.Graph.load(str(path))
    assert (loaded.num_nodes, loaded.num_edges, loaded.label(2), loaded.find("x")) == (3, 3, "zé", 0)
    with axonal.Engine(g, CONFIG) as a, axonal.Engine(loaded, CONFIG) as b:
        assert results(a.recall([0])) == results(b.recall([0]))
        assert results(a.recall(embedding=[0.0, 1.0, 0.0])) == results(b.recall(embedding=[0.0, 1.0, 0.0]))
        a.add_edges([2], [1], [0.75])
        a.add_nodes(1, labels=["new"], embeddings=[[0.5, 0.5, 0.0]])
        assert a.save(tmp_path / "engine.axs") == 2
    with axonal.Engine(axonal.Graph.load(tmp_path / "engine.axs"), CONFIG) as c:
        assert c.graph_version == 2
        assert c.recall([3]).labels[0] == "new"
        assert c.add_edges([3], [0], [1.0]) == 3


def test_damaged_or_missing_snapshots_raise_naming_the_problem(tmp_path):
    path = tmp_path / "g.axs"
    cycle().save(path)
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0xFF
    damaged = tmp_path / "damaged.axs"
    damaged.write_bytes(bytes(data))
    with pytest.raises(axonal.GraphError, match="damaged.axs.*checksum"):
        axonal.Graph.load(damaged)
    truncated = tmp_path / "truncated.axs"
    truncated.write_bytes(bytes(data[:100]))
    with pytest.raises(axonal.GraphError, match="truncated"):
        axonal.Graph.load(truncated)
    with pytest.raises(axonal.GraphError, match="not an Axonal snapshot"):
        (tmp_path / "foreign.axs").write_bytes(b"\x89PNG\r\n\x1a\n" + bytes(100))
        axonal.Graph.load(tmp_path / "foreign.axs")
    with pytest.raises(axonal.GraphError, match="opening"):
        axonal.Graph.load(tmp_path / "missing.axs")

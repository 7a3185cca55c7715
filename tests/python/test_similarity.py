"""The embedding index from Python (docs/spec.md §18): NumPy query vectors, the index's status,
added nodes found at once, snapshots that keep the index, and bad queries."""

import numpy as np
import pytest

import axonal

DIM = 16


def clustered(n: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    centres = rng.normal(size=(20, DIM))
    rows = centres[rng.integers(0, 20, size=n)] + 0.5 * rng.normal(size=(n, DIM))
    return (rows / np.linalg.norm(rows, axis=1, keepdims=True)).astype(np.float32)


def engine_with(n: int = 1500, mode: str = "ann") -> tuple[axonal.Engine, np.ndarray]:
    data = clustered(n, 1)
    src = np.arange(n, dtype=np.uint32)
    g = axonal.Graph.from_edges(src, (src + 1) % n, np.full(n, 0.5, dtype=np.float32), embeddings=data)
    return axonal.Engine(g, {"similarity": {"index": mode}, "threads": 1}), data


def exact_top(data: np.ndarray, query: np.ndarray, k: int) -> list[int]:
    scores = data @ query / (np.linalg.norm(data, axis=1) * np.linalg.norm(query))
    return [int(i) for i in np.argsort(-scores, kind="stable")[:k]]


def test_numpy_queries_use_the_index_and_agree_with_an_exact_scan():
    e, data = engine_with()
    with e:
        assert e.wait_for_similarity_index(60.0)
        status = e.similarity()
        assert status["method"] == "ann" and status["size"] == 1500 and status["lag_nodes"] == 0
        e.breaker_override = "forced_open"  # the similarity fallback: top-k by similarity
        queries = clustered(100, 2)
        agree = 0
        for q in queries:
            r = e.recall(embedding=q, k=5)  # float32, read in place
            assert r.source == "fallback"
            agree += len(set(r.nodes.tolist()) & set(exact_top(data, q, 5)))
            assert e.recall(embedding=q.astype(np.float64), k=5).nodes.tolist() == r.nodes.tolist()
            assert e.recall(embedding=q.tolist(), k=5).nodes.tolist() == r.nodes.tolist()
        assert agree / 500 >= 0.95
        assert e.snapshot()["spreading"]["similarity"]["method"] == "ann"
        assert "axonal_spreading_similarity_query_seconds_count" in e.prometheus()


def test_added_nodes_are_found_by_the_next_recall(tmp_path):
    e, _ = engine_with()
    with e:
        e.wait_for_similarity_index(60.0)
        fresh = clustered(20, 3)
        first = e.add_nodes(20, embeddings=fresh)
        e.breaker_override = "forced_open"
        for i, q in enumerate(fresh):
            assert e.recall(embedding=q, k=1).nodes.tolist() == [first + i]
        assert e.wait_for_similarity_index(60.0)
        assert e.similarity()["size"] == 1520
        e.save(tmp_path / "g.axs")
    with axonal.Engine(axonal.Graph.load(tmp_path / "g.axs"), {"similarity": {"index": "ann"}}) as loaded:
        status = loaded.similarity()
        assert (status["method"], status["size"]) == ("ann", 1520), "loaded with the snapshot, no rebuild"


def test_ef_search_applies_at_run_time_and_bad_values_are_named():
    e, _ = engine_with(mode="ann")
    with e:
        e.wait_for_similarity_index(60.0)
        e.update_config({"similarity": {"ef_search": 128}})
        assert e.similarity()["ef_search"] == 128
        with pytest.raises(axonal.ConfigError, match="similarity.ef_search"):
            e.update_config({"similarity": {"ef_search": 0}})
        with pytest.raises(axonal.ConfigError, match="similarity.index"):
            e.update_config({"similarity": {"index": "hnsw"}})
        e.update_config({"similarity": {"index": "exact"}})
        assert e.similarity()["method"] == "exact"


def test_bad_queries_are_errors_naming_the_value():
    e, _ = engine_with(n=300)
    with e:
        bad = np.ones(DIM, dtype=np.float32)
        bad[2] = np.nan
        for query, error, says in [
            (np.ones(DIM + 1, dtype=np.float32), axonal.RecallError, "dimension 17"),
            (bad, axonal.RecallError, "NaN at index 2"),
            (np.zeros(DIM), axonal.RecallError, "zero vector"),
            (np.ones((2, DIM), dtype=np.float32), TypeError, r"1-D float array, got shape \[2, 16\]"),
            ("sixteen", TypeError, "embedding"),
        ]:
            with pytest.raises(error, match=says):
                e.recall(embedding=query)
        assert len(e.recall(embedding=np.ones(DIM, dtype=np.float32), k=3)) == 3

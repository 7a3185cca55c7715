"""The Python surface (docs/spec.md §11) end to end: worked examples, documents, callbacks from engine
threads, bad input as typed exceptions, concurrency with the GIL released, and close()."""

import math
import os
import sys
import threading
import time

import numpy as np
import pytest

import axonal


def cycle(n=5):
    return axonal.Graph.from_edges(list(range(n)), [(i + 1) % n for i in range(n)], [1.0] * n)


def threads_of_this_process():
    return len(os.listdir("/proc/self/task"))


def eventually(condition, limit=10.0):
    deadline = time.monotonic() + limit
    while time.monotonic() < deadline:
        if condition():
            return True
        time.sleep(0.01)
    return condition()


# --- worked examples (docs/spec.md §3) ---


def test_cycle_depth_3():
    with axonal.Engine(cycle()) as e:
        r = e.recall([0])
        assert r.nodes.dtype == np.uint32 and r.activations.dtype == np.float32
        assert r.nodes.tolist() == [0, 1, 2, 3]
        assert np.allclose(r.activations, [1.0, 0.8, 0.64, 0.512])
        assert r.hops.tolist() == [0, 1, 2, 3]
        assert r.source == "spreading" and r.reason is None
        assert math.isclose(r.stats["mass"], 1.952, rel_tol=1e-6)
        assert r.stats["depth_reached"] == 3
        assert list(r)[1] == (1, pytest.approx(0.8), 1, "hot")
        assert len(r) == 4


def test_diamond_and_the_seed_forms():
    g = axonal.Graph.from_edges([0, 0, 1, 2], [1, 2, 3, 3], [0.5, 0.5, 1.0, 1.0])
    with axonal.Engine(g, {"spreading": {"max_depth": 2}}) as e:
        plain = e.recall([0])
        assert plain.nodes.tolist() == [0, 3, 1, 2]
        assert plain.activations.tolist() == pytest.approx([1.0, 0.64, 0.4, 0.4])
        assert e.recall({0: 1.0}).nodes.tolist() == plain.nodes.tolist()
        assert e.recall([(0, 1.0)]).nodes.tolist() == plain.nodes.tolist()
        assert e.recall(np.array([0], dtype=np.uint32)).nodes.tolist() == plain.nodes.tolist()
        assert len(e.recall([0], k=2)) == 2


@pytest.mark.parametrize("policy, mass", [("fire_once", 0.5), ("reverberate", 0.625)])
def test_two_cycle_under_both_cycle_policies(policy, mass):
    g = axonal.Graph.from_edges([0, 1], [1, 0], [1.0, 1.0])
    config = {"spreading": {"decay": 0.5, "max_depth": 4, "cycle_policy": policy}}
    with axonal.Engine(g, config) as e:
        r = e.recall({0: 1.0})
        assert r.stats["mass"] == pytest.approx(mass, abs=1e-6)


def test_graph_from_numpy_with_tiers_labels_and_embeddings():
    src = np.array([0, 1, 2], dtype=np.uint32)
    dst = np.array([1, 2, 3], dtype=np.uint32)
    w = np.array([0.9, 0.9, 0.9], dtype=np.float32)
    g = axonal.Graph.from_edges(
        src,
        dst,
        w,
        num_nodes=5,
        tiers=np.array([0, 1, 2, 0, 1], dtype=np.uint8),
        labels=["a", "b", None, "d", "e"],
        embeddings=np.eye(5, dtype=np.float32),
    )
    assert (g.num_nodes, g.num_edges) == (5, 3)
    assert g.label(1) == "b" and g.label(2) is None and g.find("d") == 3 and g.find("zz") is None
    with axonal.Engine(g) as e:
        r = e.recall(embedding=[0.0, 1.0, 0.0, 0.0, 0.0], k=3)
        assert r.nodes[0] == 1 and r.tiers[0] == "warm"
    # Arrays of another dtype or layout are converted, not refused.
    strided = np.array([0, 9, 1, 9, 2, 9], dtype=np.int64)[::2]
    g2 = axonal.Graph.from_edges(strided, strided + 1, np.full(3, 0.5), num_nodes=4)
    assert (g2.num_nodes, g2.num_edges) == (4, 3)
    with pytest.raises(TypeError, match="src"):
        axonal.Graph.from_edges(np.array([-1]), [0], [0.5])


def test_from_tsv(tmp_path):
    edges = tmp_path / "edges.tsv"
    edges.write_text("0\t1\t0.5\n1\t2\t0.5\n")
    nodes = tmp_path / "nodes.tsv"
    nodes.write_text("0\thot\tzero\n1\twarm\tone\n2\tcold\ttwo\n")
    g = axonal.Graph.from_tsv(str(edges), str(nodes))
    assert (g.num_nodes, g.num_edges, g.label(2)) == (3, 2, "two")
    bad = tmp_path / "bad.tsv"
    bad.write_text("0\t1\n")
    with pytest.raises(axonal.GraphError, match=":1:"):
        axonal.Graph.from_tsv(str(bad))


# --- documents ---


def test_snapshot_health_prometheus_config():
    with axonal.Engine(cycle()) as e:
        for _ in range(20):
            e.recall([0])
        snapshot = e.snapshot()
        assert snapshot["schema"] == "axonal.snapshot.v1"
        assert snapshot["spreading"]["recalls_total"] == 20
        assert e.health()["probes"]["spreading"]["critical"] is True
        assert e.check("spreading")["status"] == "healthy"
        assert "axonal_spreading_recalls_total 20" in e.prometheus()
        assert e.config["spreading"]["max_depth"] == 3
        applied = e.update_config({"spreading": {"max_depth": 4}})
        assert applied["spreading"]["max_depth"] == 4 and e.config["spreading"]["max_depth"] == 4
        assert e.recall([0]).stats["depth_reached"] == 4


def test_breaker_override_chaos_and_the_fallback():
    with axonal.Engine(cycle()) as e:
        e.breaker_override = "forced_open"
        r = e.recall([0])
        assert (r.source, r.reason) == ("fallback", "breaker_open")
        assert r.nodes.tolist() == [0, 1]  # the seed and its direct out-neighbour
        e.breaker_override = "forced_closed"
        e.set_chaos(failure_rate=1.0, seed=3)
        assert e.recall([0]).reason == "error"
        e.clear_chaos()
        assert e.recall([0]).source == "spreading"
        assert e.breaker_override == "forced_closed" and e.breaker_state == "closed"


def test_autotune_controls():
    with axonal.Engine(cycle()) as e:
        e.autotune_enabled = False
        assert e.autotune_enabled is False
        assert e.autotune_now()["action"] == "no_change"
        assert e.autotune_audit() == []


def test_replace_graph():
    with axonal.Engine(cycle()) as e:
        e.replace_graph(axonal.Graph.from_edges([0], [1], [1.0]))
        assert e.recall([0]).nodes.tolist() == [0, 1]


# --- callbacks from engine threads ---


def test_a_python_probe_runs_on_its_schedule_and_reports_its_reason():
    with axonal.Engine(cycle()) as e:
        calls = []

        def disk():
            calls.append(threading.get_ident())
            return ("degraded", "disk 97% full")

        probe = e.register_probe("disk", disk, interval=0.05, timeout=1.0, critical=False)
        assert eventually(lambda: len(calls) >= 3), "runs on its schedule"
        assert threading.get_ident() not in calls, "from the probe's own thread"
        entry = e.check("disk")
        assert entry["reason"] == "disk 97% full" and entry["status"] in ("degraded", "unhealthy")
        assert e.health()["status"] == "healthy", "non-critical"
        assert e.unregister_probe(probe) is True and e.unregister_probe(probe) is False


def test_a_raising_probe_goes_to_the_unraisable_hook_and_counts_as_failed(monkeypatch):
    seen = []
    monkeypatch.setattr(sys, "unraisablehook", lambda info: seen.append(info))
    with axonal.Engine(cycle()) as e:

        def broken():
            raise RuntimeError("probe bug")

        e.register_probe("broken", broken, interval=3600.0)
        entry = e.check("broken")
        assert entry["status"] != "healthy" and entry["reason"] == "the probe raised"
        assert eventually(lambda: any(isinstance(i.exc_value, RuntimeError) for i in seen))


def test_a_hanging_probe_times_out_without_blocking_recalls():
    release = threading.Event()
    with axonal.Engine(cycle()) as e:
        e.register_probe("hang", lambda: release.wait(5.0), interval=3600.0, timeout=0.05)
        start = time.monotonic()
        entry = e.check("hang")
        assert entry["status"] == "unhealthy" and entry["reason"].startswith("timeout")
        assert time.monotonic() - start < 2.0
        assert e.recall([0]).source == "spreading"
        release.set()


def test_a_probe_may_call_back_into_the_engine():
    with axonal.Engine(cycle()) as e:

        def reentrant():
            try:
                return e.recall([0]).source == "spreading"
            except axonal.ClosedError:  # a check racing close() finds the engine closed
                return True

        e.register_probe("reentrant", reentrant, interval=3600.0)
        assert e.check("reentrant")["status"] == "healthy"


def test_breaker_transitions_reach_python_in_order():
    config = {"breaker": {"window_size": 10, "min_calls": 5, "cooldown_ms": 600000, "max_cooldown_ms": 600000}}
    events = []
    with axonal.Engine(cycle(), config) as e:
        e.on_breaker_transition(lambda event: events.append((event["from"], event["to"], e.breaker_state)))
        e.set_chaos(failure_rate=1.0, seed=1)
        for _ in range(10):
            e.recall([0])
        assert eventually(lambda: len(events) >= 1)
        assert events[0][:2] == ("closed", "open")


def test_a_removed_transition_callback_is_not_called():
    config = {"breaker": {"window_size": 10, "min_calls": 5, "cooldown_ms": 600000, "max_cooldown_ms": 600000}}
    removed, control = [], []
    with axonal.Engine(cycle(), config) as e:
        callback = e.on_breaker_transition(removed.append)  # registered first: called first
        e.on_breaker_transition(control.append)
        assert e.remove_transition_callback(callback) is True
        assert e.remove_transition_callback(callback) is False
        e.set_chaos(failure_rate=1.0, seed=1)
        for _ in range(10):
            e.recall([0])
        assert eventually(lambda: len(control) >= 1)
        assert removed == []


def test_a_raising_transition_callback_is_reported_not_propagated(monkeypatch):
    seen = []
    monkeypatch.setattr(sys, "unraisablehook", lambda info: seen.append(info))
    config = {"breaker": {"window_size": 10, "min_calls": 5, "cooldown_ms": 600000, "max_cooldown_ms": 600000}}
    with axonal.Engine(cycle(), config) as e:

        def broken(event):
            raise ValueError("callback bug")

        e.on_breaker_transition(broken)
        e.set_chaos(failure_rate=1.0, seed=1)
        for _ in range(10):
            assert e.recall([0]).source == "fallback"
        assert eventually(lambda: any(isinstance(i.exc_value, ValueError) for i in seen))
        assert eventually(lambda: e.snapshot()["totals"]["counters"]["spreading_callback_failures_total"] >= 1)


# --- bad input: typed exceptions with useful messages ---


def test_bad_graphs():
    with pytest.raises(axonal.GraphError, match="same length"):
        axonal.Graph.from_edges([0, 1], [1], [1.0])
    with pytest.raises(axonal.GraphError, match="weight"):
        axonal.Graph.from_edges([0], [1], [float("nan")])
    with pytest.raises(axonal.GraphError, match="out of range|node 9"):
        axonal.Graph.from_edges([0], [9], [1.0], num_nodes=3)
    with pytest.raises(TypeError):
        axonal.Graph.from_edges(["a"], [1], [1.0])
    with pytest.raises(axonal.GraphError, match="tiers\\[1\\]"):
        axonal.Graph.from_edges([0], [1], [1.0], tiers=["hot", "lukewarm"])
    with pytest.raises(axonal.GraphError, match="node 7 out of range"):
        cycle().label(7)


def test_bad_config_and_patches():
    with pytest.raises(axonal.ConfigError, match="bogus"):
        axonal.Engine(cycle(), {"bogus": 1})
    with pytest.raises(axonal.ConfigError, match="spreading.decay"):
        axonal.Engine(cycle(), {"spreading": {"decay": 2.0}})
    with pytest.raises(axonal.ConfigError, match="JSON"):
        axonal.Engine(cycle(), {"spreading": {"decay": float("nan")}})
    with axonal.Engine(cycle()) as e:
        with pytest.raises(axonal.ConfigError, match="spreading.nope"):
            e.update_config({"spreading": {"nope": 1}})
        with pytest.raises(axonal.ConfigError, match="sideways"):
            e.breaker_override = "sideways"
        with pytest.raises(axonal.ConfigError, match="failure_rate"):
            e.set_chaos(failure_rate=3.0)
        with pytest.raises(axonal.ConfigError, match="interval"):
            e.register_probe("p", lambda: True, interval=0.0)
        assert e.config["spreading"]["decay"] == 0.8, "a rejected patch changes nothing"


def test_bad_recalls():
    with axonal.Engine(cycle()) as e:
        with pytest.raises(axonal.RecallError, match="node 99 out of range"):
            e.recall([99])
        with pytest.raises(axonal.RecallError, match="not a node id"):
            e.recall([-1])
        with pytest.raises(axonal.RecallError):
            e.recall({0: float("nan")})
        with pytest.raises(TypeError):
            e.recall(5)
        with pytest.raises(axonal.RecallError):
            e.recall([0], k=0)
        with pytest.raises(axonal.ConfigError, match="no probe|nope"):
            e.check("nope")
        assert e.recall([0]).source == "spreading", "bad input lost nothing"


def test_a_closed_engine_raises_closed_error():
    e = axonal.Engine(cycle())
    e.close()
    e.close()  # idempotent
    assert e.closed
    for call in (lambda: e.recall([0]), e.snapshot, e.health, e.prometheus, lambda: e.config):
        with pytest.raises(axonal.ClosedError):
            call()
    assert issubclass(axonal.ClosedError, axonal.AxonalError)


# --- concurrency and lifetime ---


def test_eight_threads_recall_while_another_polls_snapshots():
    g = axonal.Graph.from_edges(
        np.random.default_rng(1).integers(0, 2000, 20000, dtype=np.uint32),
        np.random.default_rng(2).integers(0, 2000, 20000, dtype=np.uint32),
        np.full(20000, 0.5, dtype=np.float32),
        num_nodes=2000,
    )
    errors = []
    with axonal.Engine(g, {"spreading": {"latency_budget_ms": 1e6}}) as e:
        stop = threading.Event()

        def recall(seed):
            try:
                for i in range(200):
                    assert len(e.recall([(seed * 7919 + i) % 2000])) > 0
            except Exception as x:  # noqa: BLE001 - collected and asserted below
                errors.append(x)

        def poll():
            while not stop.is_set():
                e.snapshot()

        poller = threading.Thread(target=poll)
        poller.start()
        workers = [threading.Thread(target=recall, args=(t,)) for t in range(8)]
        for w in workers:
            w.start()
        for w in workers:
            w.join(timeout=60)
        stop.set()
        poller.join(timeout=10)
        assert not any(w.is_alive() for w in workers) and not poller.is_alive(), "no deadlock"
        assert not errors, errors
        assert e.snapshot()["spreading"]["recalls_total"] == 1600


def test_close_and_garbage_collection_join_the_engine_threads():
    before = threads_of_this_process()
    e = axonal.Engine(cycle())
    e.register_probe("p", lambda: True, interval=0.05)
    assert threads_of_this_process() > before
    e.close()
    # A probe detached by an earlier test may still be finishing: compare once the count settles.
    assert eventually(lambda: threads_of_this_process() <= before), "close() joined every thread"
    before = threads_of_this_process()
    e = axonal.Engine(cycle())
    del e
    assert eventually(lambda: threads_of_this_process() <= before), "garbage collection too"


def test_dropping_an_engine_whose_callbacks_wait_for_the_gil_does_not_deadlock():
    """Garbage collection joins the engine's threads with the GIL released: a breaker callback
    waiting for the GIL must be able to finish."""
    before = threads_of_this_process()
    config = {"breaker": {"window_size": 10, "min_calls": 5, "cooldown_ms": 600000, "max_cooldown_ms": 600000}}
    e = axonal.Engine(cycle(), config)
    slow = []
    e.on_breaker_transition(lambda event: (time.sleep(0.2), slow.append(event)))
    e.set_chaos(failure_rate=1.0, seed=1)
    for _ in range(10):
        e.recall([0])
    del e  # the transition callback is likely still running or queued
    assert eventually(lambda: threads_of_this_process() <= before), "threads joined, no deadlock"


# --- the binding's shape (issue 14) ---


def test_exceptions_live_under_the_axonal_module():
    for cls in (axonal.AxonalError, axonal.ConfigError, axonal.GraphError, axonal.RecallError, axonal.ClosedError):
        assert cls.__module__ == "axonal", cls


def test_a_result_keeps_the_graph_its_recall_ran_on():
    first = axonal.Graph.from_edges([0], [1], [1.0], labels=["cat", "mouse"])
    second = axonal.Graph.from_edges([0], [1], [1.0], labels=["dog", "bone"])
    with axonal.Engine(first) as e:
        r = e.recall([0])
        e.replace_graph(second)
        assert r.labels == ["cat", "mouse"], "labels from the graph the recall ran on"
        assert e.recall([0]).labels == ["dog", "bone"]


def test_numpy_seed_arrays_of_any_integer_dtype():
    with axonal.Engine(cycle(10)) as e:
        expected = e.recall([0, 3]).nodes.tolist()
        for dtype in (np.int64, np.uint32, np.int32, np.uint64, np.int16):
            assert e.recall(np.array([0, 3], dtype=dtype)).nodes.tolist() == expected, dtype
        with pytest.raises(axonal.RecallError, match=r"seeds\[1\]: -1 is not a node id"):
            e.recall(np.array([0, -1]))

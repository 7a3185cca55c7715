"""Axonal on a local Ray cluster (docs/spec.md §20), started by the test with 4 worker slots on this
machine: sharded recall bit-identical to one engine across 1/2/4 shards, a shard process killed
mid-recall (retried, or answered by the fallback, counted), and a replicated Serve fleet whose
replicas reach the same versions, reject bad mutations together, replace a killed or unhealthy
replica, refuse a snapshot of another graph version, and expose their metrics to Prometheus."""

import json
import os
import pathlib
import re
import shutil
import signal
import subprocess
import threading
import time
import urllib.request

import warnings

import numpy as np
import pytest

import axonal

with warnings.catch_warnings():  # Ray's modules warn about their own Pydantic use on import
    warnings.simplefilter("ignore", DeprecationWarning)
    import ray
    from ray import serve

    from axonal.ray import Fleet, GraphLog, ShardedRecall
    from axonal.ray._fleet import file_digest, open_base

NO_TIMEOUTS = {"hot": 0, "warm": 0, "cold": 0}

# Ray's own modules warn about their Pydantic use on import; not this project's to fix.
pytestmark = pytest.mark.filterwarnings("ignore::DeprecationWarning")


@pytest.fixture(scope="module", autouse=True)
def cluster():
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False)
    serve.start(proxy_location="Disabled")
    yield
    serve.shutdown()
    ray.shutdown()


def random_graph(rng, n, m):
    src = rng.integers(0, n, m)
    dst = rng.integers(0, n, m)
    # Parallel edges and self-loops on purpose.
    src[: m // 20] = src[0]
    dst[: m // 40] = src[: m // 40]
    weight = rng.integers(1, 1001, m) / 1000.0
    tiers = rng.integers(0, 3, n).astype(np.uint8)
    return axonal.Graph.from_edges(src, dst, weight, num_nodes=n, tiers=tiers)


def answer(r):
    return r.nodes.tolist(), r.activations.view(np.uint32).tolist(), r.hops.tolist(), list(r.tiers)


def stats(s):
    keys = ("depth_reached", "nodes_fired_per_depth", "edges_traversed_per_depth", "mass", "delivered")
    return {k: s[k] for k in keys}


def promtool_accepts(text, tmp_path):
    promtool = shutil.which("promtool")
    if promtool is None:
        assert not os.environ.get("CI"), "CI installs promtool (Debian's prometheus)"
        return
    out = subprocess.run([promtool, "check", "metrics"], input=text, capture_output=True, text=True)
    assert out.returncode == 0, out.stdout + out.stderr


# --- sharded recall -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "seed,n,m,spreading,shard_counts",
    [
        (2, 3000, 30000, {"max_depth": 4, "decay": 1.0, "threshold": 0.0, "cycle_policy": "reverberate"}, (1, 2, 4)),
        (1, 60, 400, {"max_depth": 6, "decay": 0.5, "threshold": 0.05, "max_fan_out": 12}, (3,)),
    ],
)
def test_sharded_recall_is_bit_identical_to_one_engine(tmp_path, seed, n, m, spreading, shard_counts):
    # Random graphs and configs by the hundred run against the kernel in core/tests/shard.rs; here
    # the coordinator itself, over Ray, on a large and a small graph.
    rng = np.random.default_rng(seed)
    graph = random_graph(rng, n, m)
    path = str(tmp_path / "g.axs")
    graph.save(path)
    config = {"spreading": {**spreading, "tier_timeouts_ms": NO_TIMEOUTS}, "autotune": {"enabled": False}}
    cues = [rng.integers(0, n, rng.integers(1, 9)).tolist() for _ in range(12)]
    cues.append({int(v): float(a) for v, a in zip(rng.integers(0, n, 4), rng.uniform(0.05, 1, 4))})
    cues.append([(0, 0.7), (0, 0.6), (n - 1, 1.0)])  # duplicates summed and capped
    with axonal.Engine(graph, config) as engine:
        want = [(engine.recall(c, k=k), k) for c in cues for k in (5, n)]
        for shards in shard_counts:
            with ShardedRecall(path, shards, config) as sharded:
                for (w, k), c in zip(want, [c for c in cues for _ in (5, n)]):
                    got = sharded.recall(c, k=k)
                    assert got.source == "spreading" and got.reason is None
                    assert answer(got) == answer(w), f"{shards} shards, cue {c}, k {k}"
                    assert stats(got.stats) == stats(w.stats), f"{shards} shards, cue {c}"
                    assert got.stats["supersteps"] == w.stats["depth_reached"]


def cycle_snapshot(tmp_path):
    g = axonal.Graph.from_edges(list(range(8)), [1, 2, 3, 4, 5, 6, 7, 0], [1.0] * 8)
    path = str(tmp_path / "cycle.axs")
    g.save(path)
    return g, path


def test_concurrent_callers_take_turns_and_each_gets_its_own_answer(tmp_path):
    g, path = cycle_snapshot(tmp_path)
    config = {"spreading": {"max_depth": 5}}
    with axonal.Engine(g, config) as engine, ShardedRecall(path, 2, config) as sharded:
        want = {v: answer(engine.recall([v])) for v in range(8)}
        got, errors = [], []

        def caller(v):
            try:
                for _ in range(5):
                    got.append((v, answer(sharded.recall([v]))))
            except Exception as e:  # noqa: BLE001 - the test reports it
                errors.append(repr(e))

        threads = [threading.Thread(target=caller, args=(v,)) for v in range(4)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert errors == [] and len(got) == 20
        assert all(a == want[v] for v, a in got)


def test_a_shard_killed_mid_recall_is_restarted_and_the_recall_retried(tmp_path):
    g, path = cycle_snapshot(tmp_path)
    config = {"spreading": {"max_depth": 5, "tier_timeouts_ms": NO_TIMEOUTS}}
    with axonal.Engine(g, config) as engine, ShardedRecall(path, 2, config) as sharded:
        want = engine.recall([0])
        before = sharded.health()["shards"][1]["pid"]
        sharded.inject_shard_crash(1, after_steps=2)  # its process exits in the second superstep
        got = sharded.recall([0])
        assert (got.source, got.stats["retries"]) == ("spreading", 1)
        assert answer(got) == answer(want)
        health = sharded.health()
        assert health["status"] == "healthy"
        assert health["shards"][1]["pid"] != before, "Ray restarted the shard's process"
        text = sharded.prometheus()
        assert 'axonal_shard_restarts_total{shard="1"} 1' in text
        assert 'axonal_shard_failures_total{shard="1"} 1' in text
        assert "axonal_shard_retries_total 1" in text
        assert 'axonal_shard_recalls_total{source="spreading"} 1' in text
        promtool_accepts(text, tmp_path)


def test_without_retries_a_crash_is_answered_by_the_fallback_and_opens_the_breaker(tmp_path):
    _, path = cycle_snapshot(tmp_path)
    breaker = {"window_size": 4, "min_calls": 2, "failure_rate_threshold": 0.3, "cooldown_s": 600}
    with ShardedRecall(path, 2, {"recall": {"k": 3}}, retries=0, breaker=breaker) as sharded:
        assert sharded.recall([0]).source == "spreading"
        sharded.inject_shard_crash(0, after_steps=1)
        r = sharded.recall({3: 0.5, 0: 1.0})
        assert (r.source, r.reason) == ("fallback", "error")
        # The fallback needs no shard: the seeds, best first.
        assert r.nodes.tolist() == [0, 3] and r.activations.tolist() == [1.0, 0.5] and r.hops.tolist() == [0, 0]
        assert sharded.breaker_state == "open", "1 failure in 2 calls is over 30 %"
        r = sharded.recall([1])
        assert (r.source, r.reason) == ("fallback", "breaker_open")
        assert sharded.health()["status"] == "degraded"
        text = sharded.prometheus()
        assert 'axonal_shard_fallback_total{reason="error"} 1' in text
        assert 'axonal_shard_fallback_total{reason="breaker_open"} 1' in text
        assert "axonal_shard_breaker_state 2" in text
        promtool_accepts(text, tmp_path)


def test_a_timed_out_recall_leaves_no_work_behind_and_no_mix_of_recalls(tmp_path):
    g, path = cycle_snapshot(tmp_path)
    config = {"spreading": {"max_depth": 6, "tier_timeouts_ms": NO_TIMEOUTS}}
    with axonal.Engine(g, config) as engine, ShardedRecall(
        path, 2, config, timeout_s=1.0, retries=0, recover_s=1.5
    ) as sharded:
        want = answer(engine.recall([0]))
        assert answer(sharded.recall([0])) == want
        # Shard 1 takes 0.8 s a superstep for 6 supersteps: the recall times out in its second.
        # Recovery's call does not wait behind the 4 queued supersteps (3.2 s; a shard answers
        # calls while a superstep runs or waits), so the shard is not counted as failed, and the
        # abandoned supersteps, when they run, drop out instead of spreading into the next recall.
        sharded.inject_shard_delay(1, 0.8, steps=6)
        r = sharded.recall([0])
        assert (r.source, r.reason) == ("fallback", "error")
        text = sharded.prometheus()
        assert 'axonal_shard_failures_total{shard="1"}' not in text, text
        t = time.perf_counter()
        health = sharded.health(timeout_s=2.0)
        assert health["status"] == "healthy" and time.perf_counter() - t < 1.0, health
        sharded.inject_shard_delay(1, 0.0)  # the 4 delays left over are replaced by none
        for cue in ([0], [3], [0]):
            assert answer(sharded.recall(cue)) == answer(engine.recall(cue)), cue
        with pytest.raises(ValueError, match="steps >= 1"):
            sharded.inject_shard_delay(0, 0.1, steps=0)


def test_a_shard_restarted_on_a_replaced_file_is_refused(tmp_path):
    g, path = cycle_snapshot(tmp_path)
    with ShardedRecall(path, 2) as sharded:
        assert sharded.recall([0]).source == "spreading"
        # The file is replaced by another version of the graph, then a shard dies and restarts on it.
        with axonal.Engine(g) as e:
            e.add_edges([0], [5], [0.5])
            e.save(path)
        sharded.inject_shard_crash(1, after_steps=1)
        r = sharded.recall([0])
        assert (r.source, r.reason) == ("fallback", "error"), "nothing answered from a mix of versions"
        health = sharded.health()
        assert health["status"] == "unhealthy"
        assert "loaded version 1" in health["shards"][1]["error"]
        assert sharded.recall([0]).source == "fallback"


def test_sharded_bad_input_is_a_clear_error(tmp_path):
    _, path = cycle_snapshot(tmp_path)
    with pytest.raises(ValueError, match="shards: expected an int >= 1, got 0"):
        ShardedRecall(path, 0)
    with pytest.raises(ValueError, match="9 shards for a graph of 8 nodes"):
        ShardedRecall(path, 9)
    with pytest.raises(axonal.ConfigError, match="spreading.decay"):
        ShardedRecall(path, 2, {"spreading": {"decay": 2.0}})
    with pytest.raises(ValueError, match="breaker: unknown key 'window'"):
        ShardedRecall(path, 2, breaker={"window": 3})
    for bad, key in [({"window_size": 0}, "window_size"), ({"min_calls": 99}, "min_calls"),
                     ({"half_open_max_probes": 0}, "half_open_max_probes"), ({"failure_rate_threshold": 1.5}, "failure_rate")]:
        with pytest.raises(ValueError, match=f"breaker.{key}"):
            ShardedRecall(path, 2, breaker=bad)
    broken = tmp_path / "broken.axs"
    broken.write_bytes(open(path, "rb").read()[:100])
    with pytest.raises(axonal.GraphError, match="broken.axs"):
        ShardedRecall(str(broken), 2)
    with ShardedRecall(path, 2) as sharded:
        with pytest.raises(axonal.RecallError, match="node 8 out of range"):
            sharded.recall([8])
        with pytest.raises(axonal.RecallError, match="at least one seed"):
            sharded.recall([])
        with pytest.raises(axonal.RecallError, match="k: must be an int >= 1"):
            sharded.recall([0], k=0)
        with pytest.raises(axonal.RecallError, match=r"seeds\[0\].*activation"):
            sharded.recall([(0, 1.5)])
        assert sharded.recall([0]).source == "spreading", "bad input broke nothing"
        assert "axonal_shard_fallback_total{" not in sharded.prometheus(), "bad input is not a failure"
    with pytest.raises(axonal.ClosedError, match="closed"):
        sharded.recall([0])


# --- the replicated fleet ---------------------------------------------------------------------------

FLEET_CONFIG = {"threads": 1, "health": {"interval_ms": 200}, "autotune": {"enabled": False}}


@pytest.fixture(scope="module")
def fleet_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("fleet")
    random_graph(np.random.default_rng(7), 400, 3000).save(str(d / "base.axs"))
    return d


@pytest.fixture(scope="module")
def fleet(fleet_dir):
    f = Fleet(
        str(fleet_dir / "base.axs"),
        replicas=2,
        config=FLEET_CONFIG,
        name="test-fleet",
        journal=str(fleet_dir / "journal"),
        sync_interval_s=0.1,
        health_check_period_s=0.5,
        max_ongoing_requests=3,
    )
    assert f._deployment.max_ongoing_requests == 3
    # Every test below starts past the base (so "another version" of the graph exists).
    f.add_nodes(2)
    MUTATIONS.append(("add_nodes", (2,)))
    yield f
    f.close()


def test_fleet_arguments_out_of_range_are_value_errors(fleet_dir):
    for kwargs, message in [
        ({"replicas": 0}, "replicas: expected an int >= 1, got 0"),
        ({"max_ongoing_requests": 0}, "max_ongoing_requests: expected an int >= 1, got 0"),
        ({"max_ongoing_requests": True}, "max_ongoing_requests: expected an int >= 1, got True"),
        ({"retry_s": -1}, "retry_s: expected a number >= 0, got -1"),
    ]:
        with pytest.raises(ValueError, match=message):
            Fleet(str(fleet_dir / "base.axs"), name="never-started", **kwargs)


def local_engine(fleet_dir, mutations):
    e = axonal.Engine(axonal.Graph.load(str(fleet_dir / "base.axs")), FLEET_CONFIG)
    for op, args in mutations:
        getattr(e, op)(*args)
    return e


MUTATIONS = []


def test_mutations_reach_every_replica_in_one_order(fleet, fleet_dir):
    start = fleet.graph_version
    r = fleet.recall([1, 2, 3])
    assert r["graph_version"] == start and len(r["nodes"]) == 10
    for op, args in [
        ("add_edges", ([1, 400, 2], [400, 401, 401], [0.9, 0.8, 0.7])),
        ("set_weights", ([1], [400], [0.5])),
        ("set_tiers", ([401], ["cold"])),
    ]:
        getattr(fleet, op)(*args)
        MUTATIONS.append((op, args))
    head = fleet.graph_version
    assert head == start + 3
    # Read-your-writes: this client's next answer is from the head, whichever replica answers.
    r = fleet.recall([1, 2])
    assert r["graph_version"] == head
    versions = fleet.wait_for_version(head, timeout_s=20)
    assert len(versions) == 2 and set(versions.values()) == {head}
    with local_engine(fleet_dir, MUTATIONS) as e:
        want = e.recall([1, 2], k=20)
        seen = set()
        for _ in range(12):
            r = fleet.recall([1, 2], k=20)
            seen.add(r["replica"])
            assert r["graph_version"] == head
            assert r["nodes"].tolist() == want.nodes.tolist()
            assert r["activations"].tobytes() == want.activations.tobytes()
        assert len(seen) == 2, "both replicas answered, identically"
        b = fleet.recall_batch([[1, 2], [3]], k=20)
        assert b["graph_version"] == head
        assert b["nodes"][: b["offsets"][1]].tolist() == want.nodes.tolist()


def test_a_rejected_mutation_changes_no_replica(fleet):
    head = fleet.graph_version
    with pytest.raises(axonal.GraphError, match="remove_edges entry 0: no edge 5 -> 399") as raised:
        fleet.remove_edges([5], [399])
    assert "Traceback" not in str(raised.value)
    with pytest.raises(axonal.GraphError, match="node 999999 out of range"):
        fleet.add_edges([0], [999999], [0.5])
    with pytest.raises(axonal.GraphError, match="weight"):
        fleet.add_edges([0], [1], [float("nan")])
    assert fleet.graph_version == head
    started = time.monotonic()
    with pytest.raises(axonal.RecallError, match="node 1000000 out of range"):
        fleet.recall([10**6])
    assert time.monotonic() - started < 2, "a bad cue is the caller's error, not retried"
    time.sleep(0.3)
    assert set(fleet.wait_for_version(head, timeout_s=10).values()) == {head}
    assert fleet.recall([0])["graph_version"] == head


def test_metrics_of_every_replica_for_prometheus(fleet, fleet_dir, tmp_path):
    head = fleet.graph_version
    fleet.wait_for_version(head, timeout_s=10)
    targets = fleet.write_targets(fleet_dir / "targets.json")
    groups = json.loads((fleet_dir / "targets.json").read_text())
    assert len(targets) == 2 and {g["labels"]["job"] for g in groups} == {"axonal"}
    for target in targets:
        text = urllib.request.urlopen(f"http://{target}/metrics", timeout=5).read().decode()
        assert f"axonal_spreading_graph_version {head}" in text
        promtool_accepts(text, tmp_path)


def test_a_replica_killed_under_load_and_its_replacement_killed_while_loading_every_call_answered(fleet):
    head = fleet.graph_version
    fleet.wait_for_version(head, timeout_s=10)
    victim, info = sorted(fleet.replicas().items())[0]
    with pytest.raises(ValueError, match="count: expected an int >= 1, got 0"):
        fleet.inject_load_crash(0)
    # The replacement Serve starts dies too, with its base open and the log not yet replayed.
    fleet.inject_load_crash(1)
    errors, answered = [], []
    stop = threading.Event()

    def load():
        while not stop.is_set():
            try:
                answered.append(fleet.recall([1, 2, 3])["graph_version"])
            except Exception as e:  # noqa: BLE001 - the test counts them
                errors.append(repr(e))

    threads = [threading.Thread(target=load) for _ in range(2)]
    for t in threads:
        t.start()
    time.sleep(0.5)
    os.kill(info["pid"], signal.SIGKILL)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        live = fleet.replicas()
        if victim not in live and len(live) == 2 and all(i["version"] == head for i in live.values()):
            break
        time.sleep(0.2)
    stop.set()
    for t in threads:
        t.join()
    assert errors == []
    assert len(answered) > 20 and set(answered) == {head}
    live = fleet.replicas()
    assert victim not in live and len(live) == 2, live
    assert ray.get(fleet._log.load_crashes.remote()) == (0, 1), "the replacement died loading once"


def test_an_unhealthy_replica_is_replaced(fleet):
    head = fleet.graph_version
    fleet.wait_for_version(head, timeout_s=10)
    sick = fleet.set_chaos(failure_rate=1.0)  # its engine's own health probe now fails
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and sick in fleet.replicas():
        time.sleep(0.2)
    assert sick not in fleet.replicas(), "Serve's health check (the engine's health) replaced it"
    versions = fleet.wait_for_version(head, timeout_s=30)
    assert sick not in versions


def test_a_replacement_refuses_a_snapshot_of_another_version_and_the_fleet_keeps_answering(fleet, fleet_dir, tmp_path):
    head = fleet.graph_version
    fleet.wait_for_version(head, timeout_s=10)
    base = ray.get(fleet._log.base.remote())["path"]
    other, saved = str(tmp_path / "other.axs"), str(tmp_path / "base.good")
    with local_engine(fleet_dir, MUTATIONS[:1]) as e:
        e.save(other)
    shutil.copyfile(base, saved)
    # An operator copies the wrong file over the base, and then a replica dies.
    os.replace(other, base)
    try:
        victim, info = sorted(fleet.replicas().items())[0]
        os.kill(info["pid"], signal.SIGKILL)
        refused = False
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and not (refused and time.monotonic() > deadline - 26):
            r = fleet.recall([1, 2])
            assert r["graph_version"] == head and r["replica"] != victim
            live = fleet.replicas()
            assert all(i["version"] == head for i in live.values()), live
            message = serve.status().applications["test-fleet"].deployments["test-fleet"].message
            refused = refused or "is not the log's base" in message
            time.sleep(0.2)
        assert refused, "Serve saw the replacement refuse the file (its digest)"
        assert len(fleet.replicas()) == 1, "nothing else answered meanwhile"
    finally:
        os.replace(saved, base)
    versions = fleet.wait_for_version(head, timeout_s=60)
    assert len(versions) == 2 and victim not in versions


def test_a_snapshot_of_another_version_is_refused(fleet, fleet_dir, tmp_path):
    base = ray.get(fleet._log.base.remote())
    # The same graph at another version, or another graph: neither is the log's base.
    other = str(tmp_path / "other.axs")
    with local_engine(fleet_dir, MUTATIONS[:1]) as e:
        e.save(other)
    with pytest.raises(axonal.GraphError, match="digest .* is not the log's base"):
        open_base({**base, "path": other}, FLEET_CONFIG)
    with pytest.raises(axonal.GraphError, match="graph version 1, the log's base is 0"):
        open_base({**base, "path": other, "digest": file_digest(other)}, FLEET_CONFIG)
    # A log on another base refuses this fleet's journal instead of replaying it onto the wrong graph.
    foreign = GraphLog.remote(other, FLEET_CONFIG, str(fleet_dir / "journal"))
    with pytest.raises(axonal.GraphError, match="written for another base snapshot"):
        ray.get(foreign.head.remote())
    ray.kill(foreign)
    # A replica ahead of the log is not this log's graph.
    with pytest.raises(axonal.GraphError, match="ahead of the log's head"):
        ray.get(fleet._log.since.remote(10**6))


def test_a_checkpoint_becomes_the_base_new_replicas_load(fleet, fleet_dir):
    head = fleet.graph_version
    assert fleet.checkpoint(fleet_dir / "checkpoint.axs") == head
    v = fleet.add_edges([3], [4], [0.25])
    MUTATIONS.append(("add_edges", ([3], [4], [0.25])))
    fleet.scale(3)
    versions = fleet.wait_for_version(v, replicas=3, timeout_s=60)
    assert len(versions) == 3
    # A log restarted on the journal resumes from the checkpoint and replays what followed.
    again = GraphLog.remote(str(fleet_dir / "base.axs"), FLEET_CONFIG, str(fleet_dir / "journal"))
    assert ray.get(again.head.remote()) == v
    assert ray.get(again.base.remote())["path"].endswith("checkpoint.axs")
    ray.kill(again)
    with local_engine(fleet_dir, MUTATIONS) as e:
        assert fleet.recall([3], k=20)["nodes"].tolist() == e.recall([3], k=20).nodes.tolist()


def test_the_readme_ray_example_runs(capsys):
    readme = (pathlib.Path(__file__).parents[2] / "README.md").read_text()
    block = re.findall(r"```python\n(.*?)```", readme, re.S)[1]
    exec(compile(block, "README.md", "exec"), {})
    assert capsys.readouterr().out == "True [0 2 1 3]\n[0 1 2 3]\n"

"""Axonal on a local Ray cluster (issue 19; docs/performance.md "Beyond one machine"). Run against a
release build with Ray installed:

    scripts/wheel target/wheels-bench
    target/venv-bench/bin/pip install "ray[serve]" target/wheels-bench/axonal-*.whl
    target/venv-bench/bin/python tests/python/bench_ray.py [replicas|sharded]

- replicas: small cues (5 random seeds, depth 3, spec defaults) on the 100 k-node Barabási–Albert
  graph, answered by a `Fleet` of 1 and then 2 Serve replicas: recalls/s unbatched (client threads
  calling `recall`) and batched (`recall_batch` of 64 cues), against the same engine in this
  process; the Ray overhead per call is the median Serve call minus the median in-process recall.
  Then replicas as the unit of scale: each runs one call at a time (`max_ongoing_requests=1`),
  batches of 256, for 1 and 2 replicas.
- sharded: the 1 M-node BA graph (8 M edges) as one engine (2 threads) and as a `ShardedRecall` over
  2 shards: a small cue and a full activation (hub seed, depth 4), every answer checked identical
  first; per superstep the exchanged bytes and time.
"""

import os
import statistics
import sys
import tempfile
import threading
import time

import numpy as np
import ray
from ray import serve

import axonal
from axonal.ray import Fleet, ShardedRecall
from benchlib import barabasi_albert, machine

NO_TIMEOUTS = {"hot": 0, "warm": 0, "cold": 0}


def ba_snapshot(n, directory):
    src, dst = barabasi_albert(n, 4, 7)
    graph = axonal.Graph.from_edges(src, dst, np.full(len(src), 0.5, dtype=np.float32), num_nodes=n)
    path = os.path.join(directory, f"ba{n}.axs")
    graph.save(path)
    return graph, path


def rate(fn, calls, threads, seconds=3.0):
    """Calls per second of `fn(i)` from `threads` client threads over about `seconds`."""
    done = [0] * threads
    stop = time.perf_counter() + seconds

    def client(t):
        i = t
        while time.perf_counter() < stop:
            fn(i % calls)
            done[t] += 1
            i += threads

    workers = [threading.Thread(target=client, args=(t,)) for t in range(threads)]
    start = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    return sum(done) / (time.perf_counter() - start)


def replicas(directory):
    n = 100_000
    graph, path = ba_snapshot(n, directory)
    rng = np.random.default_rng(3)
    cues = [rng.integers(0, n, 5).tolist() for _ in range(256)]
    batches = [cues[i : i + 64] for i in range(0, 256, 64)]
    config = {"threads": 1, "autotune": {"enabled": False}}
    with axonal.Engine(graph, config) as engine:
        for c in cues:
            engine.recall(c)
        samples = []
        for c in cues:
            t = time.perf_counter()
            engine.recall(c)
            samples.append(time.perf_counter() - t)
        local_median = statistics.median(samples)
        print(f"in process: one recall {local_median * 1e6:.0f} us (median), "
              f"{rate(lambda i: engine.recall(cues[i]), 256, 1):.0f} recalls/s on 1 thread")
        want = [engine.recall(c).nodes.tolist() for c in cues[:16]]
    fleet = Fleet(path, replicas=1, config=config, name="bench", metrics_host=None)
    try:
        for count in (1, 2):
            if count == 2:
                fleet.scale(2)
                fleet.wait_for_version(0, replicas=2)
            for i, c in enumerate(cues[:16]):
                assert fleet.recall(c)["nodes"].tolist() == want[i]
            samples = []
            for c in cues:
                t = time.perf_counter()
                fleet.recall(c)
                samples.append(time.perf_counter() - t)
            serve_median = statistics.median(samples)
            for threads in (1, 4, 8):
                r = rate(lambda i: fleet.recall(cues[i]), 256, threads)
                print(f"{count} replica(s), unbatched, {threads} client threads: {r:.0f} recalls/s")
            for threads in (1, 4):
                r = 64 * rate(lambda i: fleet.recall_batch(batches[i]), 4, threads)
                print(f"{count} replica(s), batches of 64, {threads} client threads: {r:.0f} recalls/s")
            print(f"{count} replica(s): one Serve call {serve_median * 1e3:.2f} ms (median); "
                  f"Ray overhead per call {(serve_median - local_median) * 1e3:.2f} ms")
    finally:
        fleet.close()
    # Replicas as the unit of scale: one call at a time each (`max_ongoing_requests=1`, engines with
    # one thread), batches of 256, as many client threads as replicas and one more.
    big = [cues] * 4
    fleet = Fleet(path, replicas=1, config=config, name="bench-one", metrics_host=None, max_ongoing_requests=1)
    try:
        for count in (1, 2):
            if count == 2:
                fleet.scale(2)
                fleet.wait_for_version(0, replicas=2)
            for threads in (count, count + 1):
                r = 256 * rate(lambda i: fleet.recall_batch(big[i]), 4, threads, seconds=4.0)
                print(f"{count} replica(s), one call at a time each, batches of 256, {threads} client threads: "
                      f"{r:.0f} recalls/s")
    finally:
        fleet.close()


def sharded(directory):
    n = 1_000_000
    graph, path = ba_snapshot(n, directory)
    print(f"graph: BA {n} nodes, {graph.num_edges} edges")
    config = {"threads": 2, "autotune": {"enabled": False}, "recall": {"k": 10},
              "spreading": {"tier_timeouts_ms": NO_TIMEOUTS, "max_depth": 4, "threshold": 0.0,
                             "latency_budget_ms": 10_000}}
    hub = 0
    cues = {"small cue (5 seeds, depth 4)": [1000, 2000, 3000, 4000, 5000], "full activation (hub, depth 4)": [hub]}
    with axonal.Engine(graph, config) as engine:
        single = {}
        for name, c in cues.items():
            engine.recall(c)
            times = []
            for _ in range(7):
                t = time.perf_counter()
                r = engine.recall(c)
                times.append(time.perf_counter() - t)
            single[name] = (r, statistics.median(times))
    t = time.perf_counter()
    with ShardedRecall(path, 2, config) as s:
        print(f"2 shards ready in {time.perf_counter() - t:.1f} s")
        for name, c in cues.items():
            want, single_s = single[name]
            got = s.recall(c)
            assert (want.source, got.source) == ("spreading", "spreading"), (name, want.source, want.reason, got.reason)
            assert got.nodes.tolist() == want.nodes.tolist()
            assert got.activations.tobytes() == want.activations.tobytes()
            assert got.stats["mass"] == want.stats["mass"]
            times, steps = [], []
            for _ in range(7):
                before = s.health()["shards"]
                t = time.perf_counter()
                got = s.recall(c)
                times.append(time.perf_counter() - t)
                after = s.health()["shards"]
                steps.append([a["busy_seconds"] - b["busy_seconds"] for a, b in zip(after, before)])
                assert got.activations.tobytes() == want.activations.tobytes()
            sharded_s, kernel_s = statistics.median(times), statistics.median(max(x) for x in steps)
            each = ", ".join(f"{statistics.median(x[i] for x in steps) * 1e3:.1f}" for i in range(len(s.ranges)))
            supersteps = got.stats["supersteps"]
            print(f"{name}: single engine {single_s * 1e3:.1f} ms, 2 shards {sharded_s * 1e3:.1f} ms "
                  f"({sharded_s / single_s:.2f}x); {supersteps} supersteps, fired per depth "
                  f"{got.stats['nodes_fired_per_depth']}, exchanged {got.stats['exchange_bytes'] / 1e6:.2f} MB "
                  f"({got.stats['exchange_bytes'] / max(supersteps, 1) / 1e6:.2f} MB per superstep), "
                  f"busiest shard's kernel {kernel_s * 1e3:.1f} ms per recall (each shard: {each} ms; "
                  f"ranges {s.ranges}); Ray calls, exchange and merge "
                  f"{(sharded_s - kernel_s) / supersteps * 1e3:.1f} ms per superstep")


def main():
    machine()
    chosen = sys.argv[1:] or ["replicas", "sharded"]
    ray.init(num_cpus=4, include_dashboard=False, log_to_driver=False)
    with tempfile.TemporaryDirectory() as directory:
        for name in chosen:
            if name == "replicas":
                # Serve's controller polls while it runs: only while the replicas are measured.
                serve.start(proxy_location="Disabled")
                replicas(directory)
                serve.shutdown()
            else:
                sharded(directory)
    ray.shutdown()


if __name__ == "__main__":
    main()

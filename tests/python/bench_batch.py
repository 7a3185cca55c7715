"""Batched and large-cue recall benchmark (issue 17; docs/performance.md "Batched recall"). Run against
a release build, with SciPy for the reference loops:

    scripts/wheel target/wheels-bench   # a release wheel
    python3 -m venv target/venv-bench
    target/venv-bench/bin/pip install numpy scipy target/wheels-bench/axonal-*.whl
    target/venv-bench/bin/python tests/python/bench_batch.py [small|large|ba|large-batch]

Everything runs in this one process, alternating the contenders, and every answer is checked equal
to the reference before anything is timed:
- small: 256 cues of 5 random seeds (depth 3, spec defaults) on a 100 k-node Barabási–Albert graph —
  one thread calling `recall` per cue, two Python threads calling `recall`, and `recall_batch`.
- large: one depth-1 recall seeded with 999 999 of 1 M nodes (10 M uniform random edges) against a
  bare single-thread C pull loop over the same in-edge CSR (compiled here with `cc -O2`).
- ba: full activation of the 100 k-node BA graph (hub seed, depth 4, every result returned) against
  a single-thread SciPy CSR pull loop with the same semantics.
- large-batch: 8 and 33 full activations of that graph (hub seeds), one by one, from two Python
  threads, and as one batch.
"""

import ctypes
import os
import statistics
import subprocess
import sys
import tempfile
import threading
import time

import numpy as np
import scipy.sparse as sp

import axonal
from benchlib import barabasi_albert, machine

NO_TIMEOUTS = {"hot": 0, "warm": 0, "cold": 0}


def best(samples):
    return min(samples), statistics.median(samples)


def timed(fn, repeats):
    out = []
    for _ in range(repeats):
        # Let the engine's pool threads go idle first: on 2 cores a worker still spinning after the
        # previous contender would slow whichever runs next.
        time.sleep(0.05)
        start = time.perf_counter()
        fn()
        out.append(time.perf_counter() - start)
    return out


# --- 256 small cues ---


def small(rounds=15):
    n = 100_000
    src, dst = barabasi_albert(n, 4, 7)
    g = axonal.Graph.from_edges(src, dst, np.full(len(src), 0.9, dtype=np.float32), num_nodes=n)
    rng = np.random.default_rng(1)
    ids = rng.integers(0, n, 256 * 5).astype(np.uint32)
    offsets = np.arange(0, 256 * 5 + 1, 5, dtype=np.int64)
    cues = [ids[i : i + 5] for i in range(0, len(ids), 5)]
    config = {"autotune": {"enabled": False}, "spreading": {"tier_timeouts_ms": NO_TIMEOUTS}}
    with axonal.Engine(g, config) as e:
        one = [e.recall(c) for c in cues]
        batch = e.recall_batch(cues)
        assert all(a.nodes.tolist() == b.nodes.tolist() and a.activations.tobytes() == b.activations.tobytes()
                   for a, b in zip(one, batch)), "batch differs from one-by-one"
        fired = np.mean([r.stats["nodes_fired"] for r in one])
        print(f"256 cues × 5 seeds, depth 3, BA {n} ({len(src)} edges): {fired:.0f} nodes fired per cue on average")

        def one_by_one():
            for c in cues:
                e.recall(c).nodes

        def two_threads():
            def half(part):
                for c in part:
                    e.recall(c).nodes
            workers = [threading.Thread(target=half, args=(cues[t::2],)) for t in range(2)]
            for w in workers:
                w.start()
            for w in workers:
                w.join()

        def batched():
            for r in e.recall_batch(cues):
                r.nodes

        def columnar():
            e.recall_batch((ids, offsets), columnar=True).nodes

        contenders = {"one thread, recall per cue": one_by_one, "two Python threads, recall per cue": two_threads,
                      "recall_batch (list of results)": batched, "recall_batch (CSR in, columnar out)": columnar}
        times = {name: [] for name in contenders}
        for _ in range(rounds):
            for name, fn in contenders.items():
                times[name] += timed(fn, 1)
        base = statistics.median(times["one thread, recall per cue"])
        threads = statistics.median(times["two Python threads, recall per cue"])
        print("| how | median per batch of 256 | recalls/s | × one thread | × two threads |\n|---|---|---|---|---|")
        for name, t in times.items():
            m = statistics.median(t)
            print(f"| {name} | {m * 1e3:.2f} ms | {256 / m:,.0f} | {base / m:.2f}× | {threads / m:.2f}× |")


# --- one huge cue against a bare C pull loop ---

C_PULL = r"""
#include <stddef.h>
#include <stdint.h>
void pull(size_t n, const int32_t *indptr, const int32_t *indices, const float *w, const float *x, float *y) {
    for (size_t v = 0; v < n; v++) {
        float s = 0.0f;
        for (int32_t e = indptr[v]; e < indptr[v + 1]; e++) s += x[indices[e]] * w[e];
        y[v] = s;
    }
}
"""


def c_pull_loop():
    directory = tempfile.mkdtemp()
    source, library = os.path.join(directory, "pull.c"), os.path.join(directory, "pull.so")
    with open(source, "w") as f:
        f.write(C_PULL)
    subprocess.run(["cc", "-O2", "-shared", "-fPIC", source, "-o", library], check=True)
    pull = ctypes.CDLL(library).pull
    p = ctypes.c_void_p
    pull.argtypes = [ctypes.c_size_t, p, p, p, p, p]
    return pull


def large(rounds=11):
    n, m = 1_000_000, 10_000_000
    rng = np.random.default_rng(3)
    src = rng.integers(0, n, m).astype(np.uint32)
    dst = rng.integers(0, n, m).astype(np.uint32)
    w = rng.uniform(0.1, 1.0, m).astype(np.float32)
    g = axonal.Graph.from_edges(src, dst, w, num_nodes=n)
    # The in-edge CSR the pull reads: row v lists v's in-edges.
    into = sp.csr_matrix((w, (dst, src)), shape=(n, n))
    into.sort_indices()
    indptr, indices = into.indptr.astype(np.int32), into.indices.astype(np.int32)
    weights = into.data.astype(np.float32)
    seeds = np.arange(1, n, dtype=np.uint32)  # 999 999 seeds
    x = np.zeros(n, dtype=np.float32)
    x[seeds] = 0.8  # x0 · decay
    y = np.empty(n, dtype=np.float32)
    pull = c_pull_loop()

    def c_loop():
        pull(n, indptr.ctypes.data, indices.ctypes.data, weights.ctypes.data, x.ctypes.data, y.ctypes.data)

    config = {"autotune": {"enabled": False}, "spreading": {"max_depth": 1, "tier_timeouts_ms": NO_TIMEOUTS,
                                                           "latency_budget_ms": 10_000}}
    with axonal.Engine(g, config) as e:
        r = e.recall(seeds, k=10)
        c_loop()
        a = np.minimum(np.where(np.arange(n) >= 1, 1.0, 0.0) + np.minimum(y, 1.0), 1.0).astype(np.float32)
        top = np.lexsort((np.arange(n), -a))[:10]
        assert r.nodes.tolist() == top.tolist(), (r.nodes, top)
        assert np.allclose(r.activations, a[top], rtol=1e-6)
        times = {"C pull loop, 1 thread": [], "Axonal depth-1 recall, 999 999 seeds": []}
        for _ in range(rounds):
            times["C pull loop, 1 thread"] += timed(c_loop, 1)
            times["Axonal depth-1 recall, 999 999 seeds"] += timed(lambda: e.recall(seeds, k=10), 1)
            stats = e.recall(seeds, k=10).stats
    base = statistics.median(times["C pull loop, 1 thread"])
    print(f"uniform {n} nodes / {m} edges, 999 999 seeds, depth 1, k=10 (edges traversed {stats['edges_traversed']})")
    print("| what | median | best | × C loop |\n|---|---|---|---|")
    for name, t in times.items():
        lo, med = best(t)
        print(f"| {name} | {med * 1e3:.2f} ms | {lo * 1e3:.2f} ms | {med / base:.2f}× |")


# --- BA full activation against a SciPy pull loop ---


def scipy_spread(into, seeds, decay, threshold, depth):
    """docs/spec.md §3 (fire_once, no fan-out limit) as a pull per depth over the in-edge CSR."""
    n = into.shape[0]
    x = np.zeros(n, dtype=np.float32)
    x[seeds] = 1.0
    activation = x.copy()
    fired = np.zeros(n, dtype=bool)
    hops = np.full(n, 255, dtype=np.uint8)
    hops[seeds] = 0
    for d in range(depth):
        frontier = (x > 0) & (x >= threshold) & ~fired
        if not frontier.any():
            break
        fired |= frontier
        send = np.where(frontier, x * np.float32(decay), np.float32(0))
        x = np.minimum(into @ send, np.float32(1))
        hops[(x > 0) & (hops == 255)] = d + 1
        activation = np.minimum(activation + x, np.float32(1))
    keep = (hops == 0) | ((activation > 0) & (activation >= threshold))
    nodes = np.flatnonzero(keep)
    order = np.lexsort((nodes, -activation[nodes]))
    return nodes[order], activation[nodes[order]]


def ba(rounds=21):
    n = 100_000
    src, dst = barabasi_albert(n, 4, 7)
    weights = np.full(len(src), 0.9, dtype=np.float32)
    g = axonal.Graph.from_edges(src, dst, weights, num_nodes=n)
    into = sp.csr_matrix((weights, (dst, src)), shape=(n, n))
    hub = int(np.bincount(src, minlength=n).argmax())
    config = {"autotune": {"enabled": False}, "spreading": {"max_depth": 4, "tier_timeouts_ms": NO_TIMEOUTS},
              "recall": {"k": n}}
    with axonal.Engine(g, config) as e:
        r = e.recall([hub])
        nodes, acts = scipy_spread(into, [hub], 0.8, 0.01, 4)
        assert len(r) == len(nodes), (len(r), len(nodes))
        assert np.allclose(np.sort(r.activations), np.sort(acts), rtol=1e-5)
        times = {"SciPy pull loop, 1 thread": [], "Axonal recall, all results": []}
        for _ in range(rounds):
            times["SciPy pull loop, 1 thread"] += timed(lambda: scipy_spread(into, [hub], 0.8, 0.01, 4), 1)
            times["Axonal recall, all results"] += timed(lambda: (e.recall([hub]).nodes, None), 1)
    base = statistics.median(times["SciPy pull loop, 1 thread"])
    print(f"BA {n} nodes / {len(src)} edges, hub seed, depth 4, all {n} results")
    print("| what | median | best | × SciPy |\n|---|---|---|---|")
    for name, t in times.items():
        lo, med = best(t)
        print(f"| {name} | {med * 1e3:.2f} ms | {lo * 1e3:.2f} ms | {med / base:.2f}× |")


# --- a batch of large cues ---


def large_batch(rounds=9):
    """Full activations of BA 100 k from hub seeds: one by one, two Python threads calling `recall`,
    and `recall_batch` (its first cue alone, then groups of eight sharing each pass over the graph)."""
    n = 100_000
    src, dst = barabasi_albert(n, 4, 7)
    g = axonal.Graph.from_edges(src, dst, np.full(len(src), 0.9, dtype=np.float32), num_nodes=n)
    degree = np.bincount(src, minlength=n)
    hubs = [[int(v)] for v in np.argsort(-degree)]
    config = {"autotune": {"enabled": False}, "spreading": {"max_depth": 4, "tier_timeouts_ms": NO_TIMEOUTS},
              "recall": {"k": 100}}
    with axonal.Engine(g, config) as e:
        for count in (8, 33):
            seeds = hubs[:count]
            one = [e.recall(c) for c in seeds]
            batch = e.recall_batch(seeds)
            assert all(a.nodes.tolist() == b.nodes.tolist() for a, b in zip(one, batch))
            fired = np.mean([r.stats["nodes_fired"] for r in one])

            def two_threads():
                halves = [seeds[: count // 2], seeds[count // 2 :]]
                threads = [threading.Thread(target=lambda h=h: [e.recall(c) for c in h]) for h in halves]
                for t in threads:
                    t.start()
                for t in threads:
                    t.join()

            times = {"one by one": [], "two Python threads": [], "recall_batch": []}
            for _ in range(rounds):
                times["one by one"] += timed(lambda: [e.recall(c) for c in seeds], 1)
                times["two Python threads"] += timed(two_threads, 1)
                times["recall_batch"] += timed(lambda: e.recall_batch(seeds), 1)
            base = statistics.median(times["one by one"])
            pair = statistics.median(times["two Python threads"])
            print(f"{count} large cues (top hubs, depth 4, {fired:.0f} nodes fired each) on BA {n}, k=100")
            print("| how | median per batch | × one by one | × two threads |\n|---|---|---|---|")
            for name, t in times.items():
                m = statistics.median(t)
                print(f"| {name} | {m * 1e3:.2f} ms | {base / m:.2f}× | {pair / m:.2f}× |")


if __name__ == "__main__":
    machine()
    chosen = sys.argv[1:] or ["small", "large", "ba", "large-batch"]
    for name in chosen:
        {"small": small, "large": large, "ba": ba, "large-batch": large_batch}[name]()

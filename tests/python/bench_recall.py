"""Python recall benchmark (docs/spec.md §11 performance bars). Run against a release build:

    scripts/wheel target/wheels-release   # a release wheel
    target/venv/bin/pip install --force-reinstall --no-deps target/wheels-release/axonal-*.whl
    target/venv/bin/python tests/python/bench_recall.py

Prints the 5-node cycle's per-call latency and the throughput of 1 and 8 Python threads recalling on
a 10 k-node Barabási–Albert graph (the 8-thread figure shows whether the GIL is released).
"""

import os
import platform
import threading
import time

import numpy as np

import axonal


def barabasi_albert(n, m, weight, seed):
    """Preferential attachment, both directions, as `axonal_core::generate::barabasi_albert`."""
    rng = np.random.default_rng(seed)
    targets = list(range(m))
    repeated = []
    src, dst = [], []
    for v in range(m, n):
        for t in set(targets):
            src += [v, t]
            dst += [t, v]
        repeated += targets + [v] * m
        targets = [repeated[i] for i in rng.integers(0, len(repeated), m)]
    return axonal.Graph.from_edges(src, dst, [weight] * len(src), num_nodes=n)


def cycle_latency(calls=20000):
    g = axonal.Graph.from_edges([0, 1, 2, 3, 4], [1, 2, 3, 4, 0], [1.0] * 5)
    with axonal.Engine(g) as e:
        for _ in range(2000):
            e.recall([0])
        samples = np.empty(calls)
        clock = time.perf_counter_ns
        for i in range(calls):
            start = clock()
            e.recall([0])
            samples[i] = clock() - start
    p50, p99 = np.percentile(samples, [50, 99]) / 1000
    print(f"| engine.recall([0]), 5-node cycle | {p50:.2f} µs | {p99:.2f} µs | p50 ≤ 3 µs |")


def threads_throughput(seconds=3.0):
    g = barabasi_albert(10_000, 4, 0.9, 7)
    rates = {}
    with axonal.Engine(g) as e:
        for threads in (1, 8):
            counts = [0] * threads
            stop = threading.Event()

            def work(t):
                rng = np.random.default_rng(t)
                seeds = rng.integers(0, 10_000, 100_000).tolist()
                i = 0
                while not stop.is_set():
                    e.recall([seeds[i % len(seeds)]])
                    i += 1
                counts[t] = i

            workers = [threading.Thread(target=work, args=(t,)) for t in range(threads)]
            for w in workers:
                w.start()
            time.sleep(seconds)
            stop.set()
            for w in workers:
                w.join()
            rates[threads] = sum(counts) / seconds
            print(f"| {threads} thread(s), 10 k-node BA, single-node cues | {rates[threads]:.0f} recalls/s | |")
    print(f"8 threads / 1 thread: {rates[8] / rates[1]:.2f}× (bar ≥ 1.6× on 2 cores)")


if __name__ == "__main__":
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    print("| what | p50 | p99 | bar |\n|---|---|---|---|")
    cycle_latency()
    threads_throughput()

"""Sharded recall on Ray (docs/spec.md §20.2): a graph partitioned by destination across Ray actors,
each holding its shard's in-edges and the native kernel (`axonal._native.Shard`); one depth per
superstep, the frontiers exchanged through Ray's object store; answers bit-identical to one engine.
"""

from __future__ import annotations

import collections
import os
import random
import threading
import time
from dataclasses import dataclass, field
from typing import Any, Optional

import numpy as np
import ray
from ray.exceptions import ActorUnavailableError, GetTimeoutError, RayActorError, RayError

from .. import ClosedError, Graph, RecallError
from .._native import Shard
from ._metrics import Registry

_TIERS = ("hot", "warm", "cold")

# The coordinator's metric families (docs/spec.md §20): name, type, help.
METRICS = [
    ("axonal_shard_recalls_total", "counter", "Sharded recalls answered, by source."),
    ("axonal_shard_fallback_total", "counter", "Sharded recalls answered by the fallback, by reason."),
    ("axonal_shard_retries_total", "counter", "Sharded recalls retried after a shard failed."),
    ("axonal_shard_failures_total", "counter", "Shard calls that failed (actor died, timed out), by shard."),
    ("axonal_shard_restarts_total", "counter", "Shard actors seen restarted (a new process), by shard."),
    ("axonal_shard_supersteps_total", "counter", "Supersteps that gathered a frontier (one depth across every shard)."),
    ("axonal_shard_exchange_bytes_total", "counter", "Frontier bytes exchanged through the object store."),
    ("axonal_shard_recall_seconds", "histogram", "Latency of sharded recalls, end to end."),
    ("axonal_shard_superstep_seconds", "histogram", "Latency of one superstep that gathered a frontier, exchange included."),
    ("axonal_shard_in_edges", "gauge", "In-edges held by each shard."),
    ("axonal_shard_memory_bytes", "gauge", "Bytes held by each shard's kernel."),
    ("axonal_shard_up", "gauge", "1 when the shard answered its last call or health check."),
    ("axonal_shard_busy_seconds", "gauge", "Kernel time each shard spent, since it started."),
    ("axonal_shard_breaker_state", "gauge", "The sharded recall's breaker: 0 closed, 1 half_open, 2 open."),
    ("axonal_shard_graph_version", "gauge", "Graph version the shards loaded."),
    ("axonal_shards", "gauge", "Shards of the graph."),
]


# A first frontier up to this size goes inline with the calls (Ray inlines arguments under 100 KiB);
# a larger one is put in the object store once.
_INLINE_BYTES = 64 * 1024


@ray.remote
class _ShardActor:
    """One shard in its own process. Built from the snapshot at `path` (mapped; only this shard's
    rows are copied), so Ray can restart it from its constructor arguments.

    Threaded (`max_concurrency`): `ready` and `abort` answer while a superstep runs or waits for its
    parts. Supersteps of one recall never overlap on a shard (each needs this shard's part of the
    last), and one lock runs them one at a time; a superstep of a recall that is no longer the
    shard's current one (abandoned by the coordinator) returns at once without touching the
    kernel."""

    def __init__(self, path: str, lo: int, hi: int, config: Optional[dict]) -> None:
        self._shard, self._version = Shard.load(path, lo, hi, config)
        self._busy_s = 0.0
        self._crash_after: Optional[int] = None
        self._delays: list[float] = []
        self._run = threading.Lock()
        self._recall: Optional[int] = None  # the recall in progress here
        self._floor = 0  # recalls numbered below this were abandoned or superseded

    def ready(self) -> dict[str, Any]:
        s = self._shard
        return {
            "pid": os.getpid(),
            "version": self._version,
            "lo": s.lo,
            "hi": s.hi,
            "node_count": s.node_count,
            "in_edges": s.in_edge_count,
            "memory_bytes": s.memory_bytes,
            "busy_seconds": self._busy_s,
        }

    def crash_after(self, steps: int) -> None:
        """Chaos: end this process (a real crash, `os._exit`) at its `steps`-th superstep from now."""
        self._crash_after = steps

    def delay(self, seconds: float, steps: int) -> None:
        """Chaos: each of its next `steps` supersteps first sleeps `seconds` (a slow shard); replaces
        any delays left."""
        self._delays = [seconds] * steps

    def abort(self, recall: int) -> None:
        """The coordinator abandoned `recall`: its supersteps still to run here return at once."""
        self._floor = max(self._floor, recall + 1)
        if self._recall == recall:
            self._recall = None

    def _tick(self) -> None:
        if self._delays:
            time.sleep(self._delays.pop())
        if self._crash_after is not None:
            self._crash_after -= 1
            if self._crash_after <= 0:
                os._exit(17)

    @ray.method(num_returns=2)
    def step(self, recall: int, seeds: Optional[tuple], collect: Optional[int], *parts: tuple) -> tuple:
        """One superstep. `parts` are every shard's marking of the last depth, in range order (Ray
        hands this shard the other shards' results straight from the object store), or the seeds'
        frontier alone in the first superstep, where `seeds` begins the recall; with `collect=k`
        the superstep ends the recall. Returns this shard's marking of the next depth (its part, read
        by every shard in the next superstep) and a small summary for the coordinator: the merged
        frontier's size and out-edges, the delivered units, the collected answer (or None) and, in
        the first superstep, the graph version this shard loaded (so a shard that Ray restarted on a
        replaced file is refused). `recall` numbers the coordinator's attempt: a superstep of one it
        abandoned (`abort`, or a newer one began) returns `(None, None)` at once."""
        with self._run:
            if seeds is not None and recall >= self._floor:
                self._recall, self._floor = recall, recall
            elif seeds is not None or recall != self._recall:
                return None, None
            self._tick()
            t = time.perf_counter()
            ids, sends, ends, work = _merge(parts)
            out = self._shard.step(ids, sends, ends, work, seeds, collect)
            self._busy_s += time.perf_counter() - t
        summary = (len(ids), work, out[4], out[5], None if seeds is None else self._version)
        return out[:4], summary


class _WrongGraph(RayError):
    """A shard answers from another graph than the one the shards started on."""


class _Abandoned(RayError):
    """A shard dropped a superstep of this recall as abandoned (it began a newer one)."""


@dataclass
class ShardedResult:
    """A sharded recall's answer, shaped like `RecallResult`: NumPy arrays best first, its source
    (`spreading` or `fallback`), the fallback's reason, and the stats."""

    nodes: np.ndarray
    activations: np.ndarray
    hops: np.ndarray
    tiers: list[Optional[str]]
    source: str
    reason: Optional[str]
    stats: dict[str, Any] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.nodes)


# The breaker's settings and defaults (docs/spec.md §7's names; seconds where §7 has ms).
BREAKER_DEFAULTS = {
    "window_size": 50,
    "min_calls": 20,
    "failure_rate_threshold": 0.05,
    "cooldown_s": 30.0,
    "max_cooldown_s": 300.0,
    "half_open_max_probes": 5,
}


class _Breaker:
    """The whole sharded recall's breaker, §7's state machine on failures: a ring of outcomes judged
    from `min_calls`, open for a cooldown doubled on each consecutive re-open (±10 % jitter, at most
    `max_cooldown_s`), then half-open for `half_open_max_probes` calls. A recall needs every shard,
    so one breaker guards them together."""

    def __init__(self, settings: Optional[dict[str, Any]]):
        b = dict(BREAKER_DEFAULTS)
        unknown = set(settings or {}) - set(b)
        if unknown:
            raise ValueError(f"breaker: unknown key {sorted(unknown)[0]!r} (expected one of {sorted(b)})")
        b.update(settings or {})
        if "max_cooldown_s" not in (settings or {}) and isinstance(b["cooldown_s"], (int, float)):
            b["max_cooldown_s"] = max(b["max_cooldown_s"], b["cooldown_s"])  # a long cooldown set alone
        checks = {
            "window_size": lambda v: isinstance(v, int) and v >= 1,
            "min_calls": lambda v: isinstance(v, int) and 1 <= v <= b["window_size"],
            "failure_rate_threshold": lambda v: isinstance(v, (int, float)) and 0 <= v < 1,
            "cooldown_s": lambda v: isinstance(v, (int, float)) and v > 0,
            "max_cooldown_s": lambda v: isinstance(v, (int, float)) and v >= b["cooldown_s"],
            "half_open_max_probes": lambda v: isinstance(v, int) and v >= 1,
        }
        for key, ok in checks.items():
            if isinstance(b[key], bool) or not ok(b[key]):
                raise ValueError(f"breaker.{key}: {b[key]!r} is out of range")
        self.window: collections.deque[bool] = collections.deque(maxlen=b["window_size"])
        self.min_calls, self.failure_rate = b["min_calls"], float(b["failure_rate_threshold"])
        self.cooldown_s, self.max_cooldown_s = float(b["cooldown_s"]), float(b["max_cooldown_s"])
        self.probes = b["half_open_max_probes"]
        self.state = "closed"
        self._opened_at = 0.0
        self._cooldown = self.cooldown_s
        self._reopens = 0
        self._admitted = 0
        self._succeeded = 0
        self._lock = threading.Lock()
        self._random = random.Random()

    def _open(self) -> None:
        base = min(self.cooldown_s * 2**self._reopens, self.max_cooldown_s)
        self._cooldown = base * self._random.uniform(0.9, 1.1)
        self._opened_at = time.monotonic()
        self.state = "open"

    def admit(self) -> bool:
        with self._lock:
            if self.state == "open":
                if time.monotonic() - self._opened_at < self._cooldown:
                    return False
                self.state, self._admitted, self._succeeded = "half_open", 0, 0
            if self.state == "half_open":
                if self._admitted >= self.probes:
                    return False
                self._admitted += 1
            return True

    def record(self, ok: bool) -> None:
        with self._lock:
            if self.state == "half_open":
                if not ok:
                    self._reopens += 1
                    self._open()
                    return
                self._succeeded += 1
                if self._succeeded >= self.probes:
                    self.state, self._reopens = "closed", 0
                    self.window.clear()
                return
            if self.state == "open":
                return  # a call admitted before the trip finished afterwards
            self.window.append(ok)
            failures = self.window.count(False)
            if len(self.window) >= self.min_calls and failures / len(self.window) > self.failure_rate:
                self._reopens = 0
                self._open()


class ShardedRecall:
    """One graph split by destination into `shards` Ray actors, recalled one depth per superstep.

    `snapshot` is a path every worker can read (a snapshot: `Graph.save` / `Engine.save`); each shard
    maps it and copies only its own nodes' rows. `config` is `Engine`'s (the `spreading` section,
    `recall.k` and `recall.min_activation_mass` apply). `timeout_s` bounds a whole recall; a recall
    whose shard dies is retried `retries` times on the restarted shard (Ray restarts shard actors),
    then answered by the fallback (the seeds alone), counted. `breaker` overrides the breaker's
    `window_size`, `min_calls`, `failure_rate_threshold`, `cooldown_s`, `half_open_max_probes`.
    """

    def __init__(
        self,
        snapshot: str | os.PathLike[str],
        shards: int = 2,
        config: Optional[dict[str, Any]] = None,
        *,
        timeout_s: float = 30.0,
        retries: int = 1,
        recover_s: float = 10.0,
        breaker: Optional[dict[str, Any]] = None,
        actor_options: Optional[dict[str, Any]] = None,
    ) -> None:
        if not isinstance(shards, int) or isinstance(shards, bool) or shards < 1:
            raise ValueError(f"shards: expected an int >= 1, got {shards!r}")
        if not timeout_s > 0:
            raise ValueError(f"timeout_s: expected a positive number, got {timeout_s!r}")
        if not isinstance(retries, int) or isinstance(retries, bool) or retries < 0:
            raise ValueError(f"retries: expected an int >= 0, got {retries!r}")
        if not recover_s > 0:
            raise ValueError(f"recover_s: expected a positive number, got {recover_s!r}")
        self._path = os.fspath(snapshot)
        self._config = dict(config or {})
        # The snapshot mapped here (nothing is read but the header, checksums and, per recall, the
        # seeds' degrees and tiers: the first frontier is computed here and sent with the seeds) and
        # an empty shard of it: the file and the config are checked before any actor starts.
        self._graph = Graph.load(self._path)
        self.graph_version = self._graph.version
        probe = Shard(self._graph, 0, 0, self._config)
        self.node_count, self.edge_count, self._k = probe.node_count, probe.edge_count, probe.k
        self._max_depth = probe.max_depth
        self._attempt = 0  # numbers each recall attempt (a shard drops supersteps of abandoned ones)
        if shards > max(self.node_count, 1):
            raise ValueError(f"shards: {shards} shards for a graph of {self.node_count} nodes")
        recall = self._config.get("recall", {})
        self._min_mass = float(recall.get("min_activation_mass", 0.0))
        self.timeout_s, self.retries, self.recover_s = float(timeout_s), retries, float(recover_s)
        self._breaker = _Breaker(breaker)
        # Contiguous ranges of about equal work (in-edges and nodes), not of equal node counts: in
        # a graph whose old nodes are its hubs, equal counts leave the first shard the most edges.
        self.ranges = Shard.balanced_ranges(self._graph, shards)
        options = {"max_restarts": -1, "max_task_retries": 0, "num_cpus": 0, "max_concurrency": 4}
        options.update(actor_options or {})
        self._actors = [
            _ShardActor.options(**options).remote(self._path, lo, hi, self._config) for lo, hi in self.ranges
        ]
        self._lock = threading.Lock()
        self._metrics = Registry()
        for name, kind, help_text in METRICS:
            self._metrics.describe(name, kind, help_text)
        infos = ray.get([a.ready.remote() for a in self._actors], timeout=max(self.timeout_s, 60.0))
        versions = {i["version"] for i in infos}
        if versions != {self.graph_version}:
            raise RecallError(f"snapshot {self._path}: shards loaded versions {sorted(versions)}")
        self._pids = [i["pid"] for i in infos]
        for s, info in enumerate(infos):
            self._metrics.set("axonal_shard_in_edges", info["in_edges"], shard=str(s))
            self._metrics.set("axonal_shard_memory_bytes", info["memory_bytes"], shard=str(s))
            self._metrics.set("axonal_shard_up", 1, shard=str(s))
        self._metrics.set("axonal_shard_graph_version", self.graph_version)
        self._metrics.set("axonal_shards", shards)

    # --- recall -------------------------------------------------------------------------------

    def recall(self, seeds: Any, k: Optional[int] = None) -> ShardedResult:
        """Recall `seeds` (as `Engine.recall`'s) across the shards: the same nodes, activations,
        hops, order, mass and delivered as `Engine(graph, config).recall(seeds, k)`."""
        if k is not None and (not isinstance(k, int) or isinstance(k, bool) or k < 1):
            raise RecallError(f"k: must be an int >= 1, got {k!r}")
        k = self._k if k is None else k
        ids, activations = Shard.normalise_seeds(seeds, self.node_count)
        if len(ids) == 0:
            raise RecallError("seeds: a cue needs at least one seed")
        # The shards hold one recall's state at a time: concurrent callers take turns.
        with self._lock:
            if not self._actors:
                raise ClosedError("this sharded recall was closed")
            return self._recall(ids, activations, k)

    def _recall(self, ids: np.ndarray, activations: np.ndarray, k: int) -> ShardedResult:
        started = time.perf_counter()
        if not self._breaker.admit():
            return self._fallback(ids, activations, k, "breaker_open", started, 0)
        ok = False
        try:
            attempts = 0
            while True:
                try:
                    result = self._spread(ids, activations, k, started)
                    break
                except RayError:
                    # A shard died, a call timed out, or the object store failed: wait for every
                    # shard to answer again (Ray restarts a dead one), then retry from the start.
                    recovered = self._recover(time.perf_counter() + self.recover_s)
                    if not recovered or attempts >= self.retries:
                        return self._fallback(ids, activations, k, "error", started, attempts)
                    attempts += 1
                    self._metrics.inc("axonal_shard_retries_total")
            for s in range(len(self._actors)):
                self._metrics.set("axonal_shard_up", 1, shard=str(s))
            stats = result.stats
            stats["retries"] = attempts
            first = stats["edges_traversed_per_depth"][:1]
            if first and first[0] > 0 and stats["delivered"] <= self._min_mass:
                return self._fallback(ids, activations, k, "low_mass", started, attempts)
            ok = True
            self._finish(result, started)
            return result
        finally:
            # Every admitted call is judged, whatever ended it (a half-open probe is never lost).
            self._breaker.record(ok)

    def _spread(self, ids: np.ndarray, activations: np.ndarray, k: int, started: float) -> ShardedResult:
        """One recall as a pipeline of `max_depth` supersteps, submitted at once: each superstep's
        call to a shard takes every shard's part of the last one as Ray object references, so the
        frontiers go from shard to shard through the object store and the coordinator only reads
        the small summaries. The first frontier (the seeds') is computed here and goes with the
        seeds; the last superstep collects. A frontier that dies out leaves empty supersteps (no
        work); one that is empty from the start takes a single superstep."""
        deadline = started + self.timeout_s
        left = lambda: max(deadline - time.perf_counter(), 0.001)  # noqa: E731
        first = Shard.seed_frontier(self._graph, ids, activations, self._config)
        rounds = self._max_depth if len(first[0]) > 0 else 1
        parts: list[Any] = [first if first[0].nbytes + first[1].nbytes <= _INLINE_BYTES else ray.put(first)]
        self._attempt += 1
        recall = self._attempt
        summaries = []
        for r in range(rounds):
            seeds = (ids, activations) if r == 0 else None
            collect = k if r == rounds - 1 else None
            calls = [a.step.remote(recall, seeds, collect, *parts) for a in self._actors]
            parts = [c[0] for c in calls]
            summaries.append([c[1] for c in calls])
        try:
            return self._read(summaries, k, left)
        except BaseException:
            # A failed or timed-out recall leaves no work behind on a shard: its supersteps still
            # to run return at once, so recovery's calls and the retry find the shards free.
            for actor in self._actors:
                actor.abort.remote(recall)
            raise

    def _read(self, summaries: list[list[Any]], k: int, left: Any) -> ShardedResult:
        """The supersteps' summaries in order, as they complete, and the merged answer."""
        nodes_fired: list[int] = []
        edges: list[int] = []
        delivered = 0
        exchanged = 0
        supersteps = 0
        step_start = time.perf_counter()
        for r, refs in enumerate(summaries):
            done = ray.get(refs, timeout=left())
            if any(summary is None for summary in done):
                raise _Abandoned(f"superstep {r + 1}: a shard dropped it as abandoned")
            if r == 0:
                for s, summary in enumerate(done):
                    if summary[4] != self.graph_version:
                        # A shard restarted on a replaced snapshot file: never merge another graph in.
                        raise _WrongGraph(
                            f"shard {s} loaded version {summary[4]}, this recall's graph is {self.graph_version}"
                        )
            fired, work = done[0][0], done[0][1]
            delivered += sum(int(summary[2]) for summary in done)
            if fired > 0:
                nodes_fired.append(fired)
                edges.append(work)
                supersteps += 1
                # Each shard's part written once, the whole frontier read by every shard.
                exchanged += 8 * fired * (len(self._actors) + (r > 0))
                now = time.perf_counter()
                self._metrics.observe("axonal_shard_superstep_seconds", now - step_start)
                step_start = now
            collected = [summary[3] for summary in done]
        nodes = np.concatenate([c[0] for c in collected])
        acts = np.concatenate([c[1] for c in collected])
        hops = np.concatenate([c[2] for c in collected])
        tiers = np.concatenate([c[3] for c in collected])
        # Best first: activation descending, then id ascending (the engine's order), the top k.
        order = np.lexsort((nodes, -acts.astype(np.float64)))[:k]
        mass, delivered_value = Shard.totals(sum(int(c[4]) for c in collected), min(delivered, 2**64 - 1))
        self._metrics.inc("axonal_shard_supersteps_total", supersteps)
        self._metrics.inc("axonal_shard_exchange_bytes_total", exchanged)
        return ShardedResult(
            nodes=nodes[order],
            activations=acts[order],
            hops=hops[order],
            tiers=[_TIERS[t] for t in tiers[order]],
            source="spreading",
            reason=None,
            stats={
                "graph_version": self.graph_version,
                "shards": len(self._actors),
                "depth_reached": len(nodes_fired),
                "nodes_fired": sum(nodes_fired),
                "edges_traversed": sum(edges),
                "nodes_fired_per_depth": nodes_fired,
                "edges_traversed_per_depth": edges,
                "mass": mass,
                "delivered": delivered_value,
                "supersteps": supersteps,
                "rounds": len(summaries),
                "exchange_bytes": exchanged,
            },
        )

    def _fallback(
        self, ids: np.ndarray, activations: np.ndarray, k: int, reason: str, started: float, attempts: int
    ) -> ShardedResult:
        """The cheapest answer that needs no shard: the seeds themselves, best first, the top `k`."""
        order = np.lexsort((ids, -activations.astype(np.float64)))[:k]
        result = ShardedResult(
            nodes=ids[order],
            activations=activations[order],
            hops=np.zeros(len(order), dtype=np.uint32),
            tiers=[None] * len(order),
            source="fallback",
            reason=reason,
            stats={"graph_version": self.graph_version, "shards": len(self._actors), "retries": attempts},
        )
        self._metrics.inc("axonal_shard_fallback_total", reason=reason)
        self._finish(result, started)
        return result

    def _finish(self, result: ShardedResult, started: float) -> None:
        seconds = time.perf_counter() - started
        result.stats["seconds"] = seconds
        self._metrics.observe("axonal_shard_recall_seconds", seconds)
        self._metrics.inc("axonal_shard_recalls_total", source=result.source)
        self._metrics.set("axonal_shard_breaker_state", {"closed": 0, "half_open": 1, "open": 2}[self._breaker.state])

    def _recover(self, deadline: float) -> bool:
        """After a failed superstep: wait (until `deadline`) for every shard to answer, counting the
        ones that failed — a restarted process (Ray restarts shard actors) or one that does not
        answer. True when every shard is up again (the recall can be retried from its start: its
        first superstep begins anew on every shard)."""
        all_up = True
        for s, actor in enumerate(self._actors):
            info = None
            while info is None:
                try:
                    info = ray.get(actor.ready.remote(), timeout=max(deadline - time.perf_counter(), 0.001))
                except ActorUnavailableError:
                    if time.perf_counter() >= deadline:
                        break
                    time.sleep(0.05)
                except (RayActorError, GetTimeoutError):
                    break
            if info is not None and (info["version"], (info["lo"], info["hi"])) != (self.graph_version, self.ranges[s]):
                # Restarted on a file that is no longer this graph's snapshot: never mix versions.
                info = None
            if info is None:
                all_up = False
                self._metrics.inc("axonal_shard_failures_total", shard=str(s))
                self._metrics.set("axonal_shard_up", 0, shard=str(s))
                continue
            if info["pid"] != self._pids[s]:
                self._pids[s] = info["pid"]
                self._metrics.inc("axonal_shard_failures_total", shard=str(s))
                self._metrics.inc("axonal_shard_restarts_total", shard=str(s))
            self._metrics.set("axonal_shard_up", 1, shard=str(s))
        return all_up

    # --- health and telemetry ------------------------------------------------------------------

    def health(self, timeout_s: float = 5.0) -> dict[str, Any]:
        """Each shard's liveness (a call to its process within `timeout_s`; Ray restarts a dead one)
        and the whole: `healthy` when every shard answers and the breaker is closed, `degraded` when
        the breaker is not closed, `unhealthy` when a shard does not answer."""
        shards = []
        for s, actor in enumerate(self._actors):
            lo, hi = self.ranges[s]
            entry: dict[str, Any] = {"shard": s, "lo": lo, "hi": hi}
            try:
                info = ray.get(actor.ready.remote(), timeout=timeout_s)
                if (info["version"], (info["lo"], info["hi"])) != (self.graph_version, self.ranges[s]):
                    raise _WrongGraph(f"loaded version {info['version']} of nodes {info['lo']}..{info['hi']}")
                entry.update(up=True, pid=info["pid"], busy_seconds=info["busy_seconds"])
                if info["pid"] != self._pids[s]:
                    self._metrics.inc("axonal_shard_restarts_total", shard=str(s))
                    self._pids[s] = info["pid"]
                self._metrics.set("axonal_shard_busy_seconds", info["busy_seconds"], shard=str(s))
            except (RayActorError, GetTimeoutError) as e:
                entry.update(up=False, error=type(e).__name__)
            except _WrongGraph as e:
                entry.update(up=False, error=str(e))
            self._metrics.set("axonal_shard_up", 1 if entry["up"] else 0, shard=str(s))
            shards.append(entry)
        if not all(e["up"] for e in shards):
            status = "unhealthy"
        elif self._breaker.state != "closed":
            status = "degraded"
        else:
            status = "healthy"
        return {"status": status, "breaker": self._breaker.state, "graph_version": self.graph_version, "shards": shards}

    @property
    def breaker_state(self) -> str:
        return self._breaker.state

    def prometheus(self) -> str:
        """The coordinator's metrics (per shard and for the whole) in Prometheus text format."""
        return self._metrics.text()

    def inject_shard_crash(self, shard: int, after_steps: int = 1) -> None:
        """Chaos: the shard's process exits (`os._exit`) at its `after_steps`-th superstep from now,
        mid-recall; Ray restarts it and the recall is retried or answered by the fallback."""
        if not 0 <= shard < len(self._actors):
            raise ValueError(f"shard: expected 0..{len(self._actors) - 1}, got {shard!r}")
        ray.get(self._actors[shard].crash_after.remote(after_steps))

    def inject_shard_delay(self, shard: int, seconds: float, steps: int = 1) -> None:
        """Chaos: the shard's next `steps` supersteps each take `seconds` longer (a slow shard); a
        recall that runs out of `timeout_s` meanwhile fails, is abandoned on every shard, and is
        retried or answered by the fallback."""
        if not 0 <= shard < len(self._actors):
            raise ValueError(f"shard: expected 0..{len(self._actors) - 1}, got {shard!r}")
        if not (seconds >= 0 and isinstance(steps, int) and not isinstance(steps, bool) and steps >= 1):
            raise ValueError(f"seconds >= 0 and steps >= 1 expected, got {seconds!r}, {steps!r}")
        ray.get(self._actors[shard].delay.remote(float(seconds), steps))

    def close(self) -> None:
        """Stop the shard actors."""
        for actor in self._actors:
            ray.kill(actor, no_restart=True)
        self._actors = []

    def __enter__(self) -> ShardedRecall:
        return self

    def __exit__(self, *_args: object) -> bool:
        self.close()
        return False


def _merge(parts: list[tuple]) -> tuple[np.ndarray, np.ndarray, tuple[int, int, int], int]:
    """The whole frontier from each shard's marking (shards own ascending ranges): hot tier first,
    each tier in ascending id order — the order every shard gathers in."""
    ids, sends, ends = [], [], []
    total = 0
    for t in range(3):
        for p in parts:
            start = 0 if t == 0 else p[2][t - 1]
            ids.append(p[0][start : p[2][t]])
            sends.append(p[1][start : p[2][t]])
            total += p[2][t] - start
        ends.append(total)
    work = sum(int(p[3]) for p in parts)
    return (
        np.concatenate(ids) if ids else np.zeros(0, np.uint32),
        np.concatenate(sends) if sends else np.zeros(0, np.float32),
        (ends[0], ends[1], ends[2]),
        work,
    )

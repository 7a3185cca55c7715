"""Replicated serving on Ray Serve (docs/spec.md §20.1): replicas of one engine that load the same
snapshot and apply the same ordered mutation log, so they reach the same graph versions.

- `GraphLog` (one Ray actor) orders and validates mutations: each batch is applied first to the
  log's own engine, so a batch that any replica would reject is rejected before it reaches one
  (replicas apply the same batches to the same graph, deterministically). Accepted batches are
  journaled (fsync) before they are acknowledged, and numbered by the version they produce.
- A replica loads the log's base snapshot (its digest and version checked), applies the entries
  after it, and keeps polling the log; a request may ask for a minimum version, which the replica
  reaches before answering. Every answer names the version and replica that answered it.
- Serve's health check is the replica engine's health (§6): an unhealthy replica is replaced, and
  its replacement catches up from the snapshot and the log.
"""

from __future__ import annotations

import hashlib
import json
import os
import threading
import time
import uuid
from typing import Any, Optional

import numpy as np
import ray
from ray import serve
from ray.exceptions import RayActorError, RayTaskError

from .. import AxonalError, Engine, Graph, GraphError

# The engine's mutations (§16) the log carries, with their parameters in call order.
OPERATIONS = {
    "add_nodes": ("count", "tiers", "labels", "embeddings"),
    "add_edges": ("src", "dst", "weight"),
    "set_weights": ("src", "dst", "weight"),
    "remove_edges": ("src", "dst"),
    "set_tiers": ("nodes", "tiers"),
}


def file_digest(path: str) -> str:
    """SHA-256 of a snapshot file: what ties a log to the exact graph it started from."""
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()


def _plain(value: Any) -> Any:
    """Arguments as JSON can hold them (NumPy arrays as lists; floats round-trip exactly)."""
    if isinstance(value, np.ndarray):
        return value.tolist()
    if isinstance(value, (list, tuple)):
        return [_plain(v) for v in value]
    if isinstance(value, np.generic):
        return value.item()
    return value


def apply_entry(engine: Engine, op: str, args: dict[str, Any]) -> Any:
    """Apply one logged mutation to `engine`; returns what the engine's method returns."""
    if op not in OPERATIONS:
        raise GraphError(f"log entry: unknown operation {op!r} (expected one of {sorted(OPERATIONS)})")
    return getattr(engine, op)(**args)


def open_base(base: dict[str, Any], config: Optional[dict[str, Any]]) -> Engine:
    """An engine on the log's base snapshot, refusing a file that is not the one the log started
    from (another graph, or another version of it): the digest and the version must match."""
    path = base["path"]
    found = file_digest(path)
    if found != base["digest"]:
        raise GraphError(
            f"snapshot {path}: digest {found[:16]}… is not the log's base {base['digest'][:16]}… "
            "(another graph or another version of it)"
        )
    graph = Graph.load(path)
    if graph.version != base["version"]:
        raise GraphError(f"snapshot {path}: graph version {graph.version}, the log's base is {base['version']}")
    return Engine(graph, config)


@ray.remote(num_cpus=0)
class GraphLog:
    """The fleet's ordered, validated, journaled mutation log (one actor: its calls run one at a
    time, which is the order every replica applies)."""

    def __init__(self, snapshot: str, config: Optional[dict[str, Any]] = None, journal: Optional[str] = None):
        # A bad snapshot or journal is kept and raised by every call, as the `AxonalError` it is
        # (an actor whose constructor raises only reports that it died).
        self._error: Optional[Exception] = None
        # Chaos (`Fleet.inject_load_crash`): replicas still to crash while they load, and crashed.
        self._load_crashes = [0, 0]
        try:
            self._open(snapshot, config, journal)
        except (AxonalError, OSError) as e:
            self._error = e

    def _check(self) -> None:
        if self._error is not None:
            raise self._error

    def _open(self, snapshot: str, config: Optional[dict[str, Any]], journal: Optional[str]) -> None:
        path = os.path.abspath(os.fspath(snapshot))
        self._config = config
        self._base = {"path": path, "version": Graph.load(path).version, "digest": file_digest(path)}
        # The journal's origin: the snapshot its first base was (a checkpoint keeps it).
        self._origin = self._base["digest"]
        self._entries: list[tuple[int, str, dict[str, Any]]] = []
        self._journal = os.path.abspath(journal) if journal else None
        self._replicas: dict[str, dict[str, Any]] = {}
        lines = self._read_journal()
        bases = [(number, entry) for number, entry in lines if "base" in entry]
        if lines and not bases:
            raise GraphError(f"journal {self._journal}: no base line (not a journal of this log)")
        if bases:
            number, last = bases[-1]
            # The snapshot given must be the journal's origin (the log restarted with its own
            # arguments) or its current base: a journal of another graph is refused.
            if self._base["digest"] not in (last["origin"], last["base"]["digest"]):
                raise GraphError(
                    f"journal {self._journal} line {number}: written for another base snapshot "
                    f"(its base {last['base']['digest'][:16]}…, origin {last['origin'][:16]}…; "
                    f"{path} is {self._base['digest'][:16]}…)"
                )
            self._base, self._origin = dict(last["base"]), last["origin"]
            lines = lines[lines.index((number, last)) + 1 :]
        self._engine = open_base(self._base, config)
        self._replay(lines)
        if self._journal and not bases:
            self._write_journal([self._base_line()], truncate=True)

    def _base_line(self) -> str:
        return json.dumps({"base": self._base, "origin": self._origin})

    def _read_journal(self) -> list[tuple[int, dict[str, Any]]]:
        if not self._journal or not os.path.exists(self._journal):
            return []
        out = []
        with open(self._journal, encoding="utf-8") as f:
            raw = f.readlines()
        for number, line in enumerate(raw, 1):
            if not line.strip():
                continue
            try:
                entry = json.loads(line)
                if not isinstance(entry, dict) or not (
                    {"base", "origin"} <= set(entry) or {"version", "op", "args", "base_digest"} <= set(entry)
                ):
                    raise ValueError("expected a base or an entry object")
            except ValueError as e:
                if number == len(raw) and not line.endswith("\n"):
                    # A write cut short by a crash: never acknowledged, so not part of the log.
                    break
                raise GraphError(f"journal {self._journal} line {number}: not a log entry ({e})") from None
            out.append((number, entry))
        return out

    def _write_journal(self, lines: list[str], truncate: bool = False) -> None:
        """Append (or with `truncate`, replace atomically) and make it durable: the file synced, and
        its directory synced when the file is new or replaced."""
        assert self._journal is not None
        directory = os.path.dirname(self._journal) or "."
        if truncate:
            tmp = self._journal + ".tmp"
            with open(tmp, "w", encoding="utf-8") as f:
                f.write("".join(line + "\n" for line in lines))
                f.flush()
                os.fsync(f.fileno())
            os.replace(tmp, self._journal)
        else:
            # The journal exists (its base line was written when the log opened it).
            with open(self._journal, "a", encoding="utf-8") as f:
                f.write("".join(line + "\n" for line in lines))
                f.flush()
                os.fsync(f.fileno())
            return
        fd = os.open(directory, os.O_RDONLY)
        try:
            os.fsync(fd)
        finally:
            os.close(fd)

    def _replay(self, lines: list[tuple[int, dict[str, Any]]]) -> None:
        """Re-apply the journal's entries after its base; an entry that does not reproduce its
        version, or that was written for another base, is an error naming the line."""
        for number, entry in lines:
            if "base" in entry:
                continue
            version, op, args = int(entry["version"]), entry["op"], entry["args"]
            if entry["base_digest"] != self._base["digest"]:
                raise GraphError(f"journal {self._journal} line {number}: written for another base snapshot")
            apply_entry(self._engine, op, args)
            if self._engine.graph_version != version:
                raise GraphError(
                    f"journal {self._journal} line {number}: produced version {self._engine.graph_version}, "
                    f"the journal says {version}"
                )
            self._entries.append((version, op, args))

    def apply(self, op: str, args: dict[str, Any]) -> dict[str, Any]:
        """Validate and apply one batch on the log's engine, journal it, then acknowledge it:
        `{"version", "result"}`. A rejected batch raises the engine's error and is not logged; a
        batch whose journal write fails is undone (the engine is rebuilt) and raises."""
        self._check()
        if op not in OPERATIONS:
            raise GraphError(f"operation: unknown {op!r} (expected one of {sorted(OPERATIONS)})")
        unknown = set(args) - set(OPERATIONS[op])
        if unknown:
            raise GraphError(f"{op}: unknown argument {sorted(unknown)[0]!r}")
        args = {k: _plain(v) for k, v in args.items()}
        # Every batch is one new version; the line is written out before the engine changes, so
        # arguments JSON cannot hold are refused with nothing applied.
        version = self._engine.graph_version + 1
        try:
            line = json.dumps({"version": version, "op": op, "args": args, "base_digest": self._base["digest"]})
        except (TypeError, ValueError) as e:
            raise GraphError(f"{op}: arguments cannot be logged ({e})") from None
        result = apply_entry(self._engine, op, args)
        if self._engine.graph_version != version:  # pragma: no cover - the engine's contract (§16)
            raise GraphError(f"{op} produced version {self._engine.graph_version}, expected {version}")
        if self._journal:
            try:
                self._write_journal([line])
            except OSError as e:
                self._engine = self._rebuild()
                raise GraphError(f"{op}: journal {self._journal} could not be written ({e}); not applied") from None
        self._entries.append((version, op, args))
        return {"version": version, "result": _plain(result)}

    def _rebuild(self) -> Engine:
        """The log's engine from its base and entries (undoes a batch that was not journaled)."""
        engine = open_base(self._base, self._config)
        for _, op, args in self._entries:
            apply_entry(engine, op, args)
        return engine

    def since(self, version: int) -> list[tuple[int, str, dict[str, Any]]]:
        """The entries after `version`. A version before the base (the log was checkpointed past it)
        or beyond the head (not this log's graph) is an error: the replica reloads the base."""
        self._check()
        head = self._engine.graph_version
        if version > head:
            raise GraphError(f"version {version} is ahead of the log's head {head}: not this log's graph")
        if version < self._base["version"]:
            raise GraphError(f"version {version} predates the log's base {self._base['version']}: reload the base")
        return [e for e in self._entries if e[0] > version]

    def base(self) -> dict[str, Any]:
        self._check()
        return dict(self._base)

    def head(self) -> int:
        self._check()
        return self._engine.graph_version

    def checkpoint(self, path: str) -> dict[str, Any]:
        """Save the head as a new base snapshot at `path` (atomic) and drop the entries it holds:
        replicas that start (or fall behind it) from now on load it."""
        self._check()
        path = os.path.abspath(os.fspath(path))
        self._engine.save(path)
        self._base = {"path": path, "version": self._engine.graph_version, "digest": file_digest(path)}
        self._entries = [e for e in self._entries if e[0] > self._base["version"]]
        if self._journal:
            self._write_journal([self._base_line()], truncate=True)
        return dict(self._base)

    def crash_next_loads(self, count: int) -> None:
        """Chaos: the next `count` replicas to load crash in the middle of it."""
        self._load_crashes[0] += count

    def loading(self) -> bool:
        """Asked by a replica between opening the base and catching up: True when it must crash."""
        if self._load_crashes[0] > 0:
            self._load_crashes = [self._load_crashes[0] - 1, self._load_crashes[1] + 1]
            return True
        return False

    def load_crashes(self) -> tuple[int, int]:
        """Chaos crashes while loading: (still to come, happened)."""
        return self._load_crashes[0], self._load_crashes[1]

    def report(self, replica: str, info: dict[str, Any]) -> None:
        """A replica's heartbeat: its version, metrics URL and process."""
        self._replicas[replica] = {**info, "seen": time.time()}

    def forget(self, replica: str) -> None:
        self._replicas.pop(replica, None)

    def replicas(self, fresh_s: float) -> dict[str, dict[str, Any]]:
        """Replicas that reported within `fresh_s` seconds."""
        now = time.time()
        return {r: i for r, i in self._replicas.items() if now - i["seen"] <= fresh_s}


class ReplicaUnavailable(RuntimeError):
    """A replica cannot answer this request (it is broken and being replaced, or behind the version
    the request needs); the `Fleet` client retries it on another replica."""


class _Replica:
    """One Serve replica: an engine on the log's base, kept at the log's head."""

    def __init__(
        self,
        log_name: str,
        config: Optional[dict[str, Any]],
        sync_interval_s: float,
        metrics_host: Optional[str],
    ) -> None:
        self._log = ray.get_actor(log_name)
        self._config = config
        self._id = uuid.uuid4().hex[:12]
        self._lock = threading.Lock()
        self._broken: Optional[str] = None
        self._metrics_host = metrics_host
        self._http: Any = None
        self._url: Optional[str] = None
        self._engine = open_base(ray.get(self._log.base.remote()), config)
        if ray.get(self._log.loading.remote()):
            os._exit(17)  # chaos (`Fleet.inject_load_crash`): a real crash in the middle of loading
        self._serve_metrics()
        self._sync()
        self._interval = sync_interval_s
        self._stop = threading.Event()
        self._report()
        self._thread = threading.Thread(target=self._follow, name="axonal-replica-sync", daemon=True)
        self._thread.start()

    def _serve_metrics(self) -> None:
        """Serve the current engine's metrics (again, after a reload swapped the engine)."""
        if self._metrics_host is None:
            return
        if self._http is not None:
            self._http.stop()
        self._http = self._engine.serve_http(f"{self._metrics_host}:0")
        self._url = self._http.url

    def _sync(self) -> None:
        """Apply the log's entries after this engine's version; reload the base when the log was
        checkpointed past it. An entry that fails here (the log accepted it) breaks the replica:
        it stops answering and fails its health check, so Serve replaces it."""
        with self._lock:
            if self._broken:
                return
            engine = self._engine
            try:
                entries = ray.get(self._log.since.remote(engine.graph_version))
            except GraphError as e:
                if "predates" not in str(e):
                    self._broken = str(e)
                    return
                # A fresh engine on the new base; requests still running on the old one finish
                # there (it is dropped with its last reference, not closed under them).
                engine = open_base(ray.get(self._log.base.remote()), self._config)
                entries = ray.get(self._log.since.remote(engine.graph_version))
            for version, op, args in entries:
                try:
                    apply_entry(engine, op, args)
                except Exception as e:  # noqa: BLE001 - any failure breaks the replica
                    self._broken = f"entry {version} ({op}) failed: {e}"
                    return
                if engine.graph_version != version:
                    self._broken = f"entry {op} produced version {engine.graph_version}, the log says {version}"
                    return
            if engine is not self._engine:
                self._engine = engine
                self._serve_metrics()

    def _report(self) -> None:
        info = {"version": self._engine.graph_version, "url": self._url, "pid": os.getpid(), "broken": self._broken}
        self._log.report.remote(self._id, info)

    def _follow(self) -> None:
        while not self._stop.wait(self._interval):
            try:
                self._sync()
                self._report()
            except Exception:  # noqa: BLE001 - the log is restarting; try again next tick
                continue

    def _at(self, min_version: Optional[int]) -> Engine:
        if self._broken:
            raise ReplicaUnavailable(f"replica {self._id} is broken ({self._broken}) and is being replaced")
        engine = self._engine
        if min_version is not None and engine.graph_version < min_version:
            self._sync()
            engine = self._engine
            if engine.graph_version < min_version:
                raise ReplicaUnavailable(f"replica {self._id} is at version {engine.graph_version}, below {min_version}")
        return engine

    def recall(self, seeds: Any, k: Optional[int] = None, min_version: Optional[int] = None) -> dict[str, Any]:
        r = self._at(min_version).recall(seeds, k)
        return {
            "nodes": r.nodes,
            "activations": r.activations,
            "hops": r.hops,
            "source": r.source,
            "reason": r.reason,
            "graph_version": r.stats["graph_version"],
            "replica": self._id,
        }

    def recall_batch(self, cues: Any, k: Optional[int] = None, min_version: Optional[int] = None) -> dict[str, Any]:
        b = self._at(min_version).recall_batch(cues, k, columnar=True)
        return {
            "offsets": b.offsets,
            "nodes": b.nodes,
            "activations": b.activations,
            "hops": b.hops,
            "fallback": b.fallback,
            "reasons": b.reasons,
            "graph_version": b.graph_version,
            "replica": self._id,
        }

    def info(self) -> dict[str, Any]:
        engine = self._engine
        return {
            "replica": self._id,
            "pid": os.getpid(),
            "version": engine.graph_version,
            "url": self._url,
            "health": engine.health()["status"],
            "broken": self._broken,
        }

    def set_chaos(self, **chaos: Any) -> str:
        """Game days: inject faults into this replica's engine (`Engine.set_chaos`)."""
        self._engine.set_chaos(**chaos)
        return self._id

    def check_health(self) -> None:
        """Serve's health check: the engine's health (§6). Unhealthy or broken raises, and Serve
        replaces the replica."""
        if self._broken:
            raise RuntimeError(f"replica {self._id} is broken: {self._broken}")
        status = self._engine.health()["status"]
        if status == "unhealthy":
            raise RuntimeError(f"replica {self._id}: engine health is unhealthy")

    def __del__(self) -> None:
        stop = getattr(self, "_stop", None)
        if stop is not None:
            stop.set()


class Fleet:
    """N Serve replicas of one engine, kept at one graph version sequence by a `GraphLog`.

    `snapshot` is a path every replica can read. `config` is every replica's `Engine` config.
    `journal` (a file path) makes the log durable: accepted batches are appended and fsynced there,
    and a log started on the same base replays them. `metrics_host` is where each replica's engine
    serves its Prometheus metrics (`None`: not served); `write_targets` lists them for Prometheus.
    Reads are monotonic per `Fleet` object: a call never answers from a version older than the
    newest this object wrote or saw. A call that reaches a replica as it dies, or one that is broken
    or cannot reach that version, is retried on another for up to `retry_s` seconds.
    `max_ongoing_requests` [5] is how many calls a replica runs at once, each on its own thread:
    with `threads: 1` in `config`, 1 makes each replica one core's worth of work.
    """

    def __init__(
        self,
        snapshot: str | os.PathLike[str],
        *,
        replicas: int = 2,
        config: Optional[dict[str, Any]] = None,
        name: str = "axonal",
        journal: Optional[str] = None,
        sync_interval_s: float = 0.2,
        health_check_period_s: float = 2.0,
        metrics_host: Optional[str] = "127.0.0.1",
        ray_actor_options: Optional[dict[str, Any]] = None,
        retry_s: float = 10.0,
        max_ongoing_requests: int = 5,
    ) -> None:
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 1:
            raise ValueError(f"replicas: expected an int >= 1, got {replicas!r}")
        if not isinstance(max_ongoing_requests, int) or isinstance(max_ongoing_requests, bool) or max_ongoing_requests < 1:
            raise ValueError(f"max_ongoing_requests: expected an int >= 1, got {max_ongoing_requests!r}")
        if not sync_interval_s > 0:
            raise ValueError(f"sync_interval_s: expected a positive number, got {sync_interval_s!r}")
        if not retry_s >= 0:
            raise ValueError(f"retry_s: expected a number >= 0, got {retry_s!r}")
        self.name = name
        self._sync_interval_s = sync_interval_s
        self._retry_s = float(retry_s)
        self._seen_lock = threading.Lock()
        # With a journal the log survives its process: Ray restarts it and it replays the journal.
        self._log = GraphLog.options(name=f"{name}-log", max_restarts=-1 if journal else 0).remote(
            os.fspath(snapshot), config, journal
        )
        try:
            self._seen = _get(self._log.head.remote())  # a bad snapshot or journal is raised here
        except Exception:
            ray.kill(self._log)
            raise
        self._deployment = serve.deployment(
            _Replica,
            name=name,
            num_replicas=replicas,
            health_check_period_s=health_check_period_s,
            health_check_timeout_s=max(health_check_period_s * 5, 10.0),
            # A replica holds no state a request needs once it is answered (recalls take
            # milliseconds): scaling down or replacing one need not wait Serve's default 20 s.
            graceful_shutdown_wait_loop_s=0.5,
            graceful_shutdown_timeout_s=5.0,
            ray_actor_options=ray_actor_options or {"num_cpus": 0},
            # Calls a replica runs at once, each on its own thread (the engine releases the GIL):
            # 1 makes a replica one core's worth of recalls, so replicas are the unit of scale.
            max_ongoing_requests=max_ongoing_requests,
        )
        self._args = (f"{name}-log", config, sync_interval_s, metrics_host)
        self._handle = serve.run(self._deployment.bind(*self._args), name=name, route_prefix=None)

    # --- reads ---------------------------------------------------------------------------------

    def _call(self, method: str, *args: Any, min_version: Optional[int]) -> dict[str, Any]:
        floor = self._seen if min_version is None else max(min_version, self._seen)
        deadline = time.monotonic() + self._retry_s
        pause = 0.05
        while True:
            try:
                out = getattr(self._handle, method).remote(*args, min_version=floor).result()
                break
            except (RayActorError, RayTaskError) as e:
                cause = _cause(e) if isinstance(e, RayTaskError) else e
                # A replica that died under the call, is broken, or is behind the version needed:
                # Serve routes the retry to another. Anything else (a bad cue) is the caller's.
                retry = isinstance(cause, (RayActorError, ReplicaUnavailable))
                if not retry or time.monotonic() + pause > deadline:
                    raise cause from None
                time.sleep(pause)
                pause = min(pause * 2, 0.5)
        self._see(out["graph_version"])
        return out

    def _see(self, version: int) -> None:
        with self._seen_lock:
            self._seen = max(self._seen, version)

    def recall(self, seeds: Any, k: Optional[int] = None, *, min_version: Optional[int] = None) -> dict[str, Any]:
        """One recall on some replica: `{"nodes", "activations", "hops", "source", "reason",
        "graph_version", "replica"}`, from a version at least `min_version` and at least the newest
        this object has seen."""
        return self._call("recall", seeds, k, min_version=min_version)

    def recall_batch(self, cues: Any, k: Optional[int] = None, *, min_version: Optional[int] = None) -> dict[str, Any]:
        """A batch (as `Engine.recall_batch`'s cues) on one replica and one version, columnar:
        `{"offsets", "nodes", "activations", "hops", "fallback", "reasons", "graph_version",
        "replica"}`."""
        return self._call("recall_batch", cues, k, min_version=min_version)

    # --- writes --------------------------------------------------------------------------------

    def _apply(self, op: str, **args: Any) -> dict[str, Any]:
        out = _get(self._log.apply.remote(op, args))
        self._see(out["version"])
        return out

    def add_nodes(self, count: int, tiers: Any = None, labels: Any = None, embeddings: Any = None) -> int:
        """As `Engine.add_nodes`, for the whole fleet: the first new id."""
        return self._apply("add_nodes", count=count, tiers=tiers, labels=labels, embeddings=embeddings)["result"]

    def add_edges(self, src: Any, dst: Any, weight: Any) -> int:
        """As `Engine.add_edges`, for the whole fleet: the new graph version."""
        return self._apply("add_edges", src=src, dst=dst, weight=weight)["version"]

    def set_weights(self, src: Any, dst: Any, weight: Any) -> int:
        return self._apply("set_weights", src=src, dst=dst, weight=weight)["version"]

    def remove_edges(self, src: Any, dst: Any) -> int:
        return self._apply("remove_edges", src=src, dst=dst)["version"]

    def set_tiers(self, nodes: Any, tiers: Any) -> int:
        return self._apply("set_tiers", nodes=nodes, tiers=tiers)["version"]

    @property
    def graph_version(self) -> int:
        """The log's head: the version every replica is converging to."""
        return _get(self._log.head.remote())

    def checkpoint(self, path: str | os.PathLike[str]) -> int:
        """Save the head as the fleet's new base snapshot (replicas starting from now load it
        instead of replaying the log); returns its version."""
        return _get(self._log.checkpoint.remote(os.fspath(path)))["version"]

    # --- the fleet -----------------------------------------------------------------------------

    def replicas(self) -> dict[str, dict[str, Any]]:
        """Live replicas by id (reported within three sync intervals): version, metrics URL, pid."""
        return ray.get(self._log.replicas.remote(max(3 * self._sync_interval_s, 1.0)))

    def wait_for_version(self, version: int, replicas: Optional[int] = None, timeout_s: float = 30.0) -> dict[str, int]:
        """Wait until `replicas` (default: the deployment's count) live replicas report `version` or
        later; returns their versions. `TimeoutError` names what was seen."""
        want = self._deployment.num_replicas if replicas is None else replicas
        deadline = time.monotonic() + timeout_s
        while True:
            seen = {r: i["version"] for r, i in self.replicas().items() if not i.get("broken")}
            if sum(v >= version for v in seen.values()) >= want:
                return seen
            if time.monotonic() > deadline:
                raise TimeoutError(f"waited {timeout_s} s for {want} replicas at version {version}; saw {seen}")
            time.sleep(self._sync_interval_s / 2)

    def scale(self, replicas: int) -> None:
        """Change the number of replicas (new ones catch up from the base and the log)."""
        if not isinstance(replicas, int) or isinstance(replicas, bool) or replicas < 1:
            raise ValueError(f"replicas: expected an int >= 1, got {replicas!r}")
        self._deployment = self._deployment.options(num_replicas=replicas)
        self._handle = serve.run(self._deployment.bind(*self._args), name=self.name, route_prefix=None)

    def inject_load_crash(self, count: int = 1) -> None:
        """Chaos: the next `count` replicas that start (a scale-up, a replacement) end their
        process (`os._exit`) in the middle of loading — the base snapshot opened, the log not yet
        replayed, nothing served. Serve starts them again; the others keep answering."""
        if not isinstance(count, int) or isinstance(count, bool) or count < 1:
            raise ValueError(f"count: expected an int >= 1, got {count!r}")
        _get(self._log.crash_next_loads.remote(count))

    def set_chaos(self, **chaos: Any) -> str:
        """Game days: inject faults (`Engine.set_chaos`) into the one replica this call reaches;
        returns its id."""
        return self._handle.set_chaos.remote(**chaos).result()

    def write_targets(self, path: str | os.PathLike[str]) -> list[str]:
        """Write a Prometheus file-based service discovery file listing every live replica's
        metrics endpoint (labels `job="axonal"`, `fleet`, `replica`); returns the targets."""
        groups = []
        for replica, info in sorted(self.replicas().items()):
            if info.get("url"):
                target = info["url"].split("://", 1)[-1].rstrip("/")
                groups.append({"targets": [target], "labels": {"job": "axonal", "fleet": self.name, "replica": replica}})
        tmp = os.fspath(path) + ".tmp"
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(groups, f, indent=2)
        os.replace(tmp, path)
        return [g["targets"][0] for g in groups]

    def close(self) -> None:
        """Delete the deployment and stop the log."""
        serve.delete(self.name)
        ray.kill(self._log)

    def __enter__(self) -> Fleet:
        return self

    def __exit__(self, *_args: object) -> bool:
        self.close()
        return False


def _cause(error: RayTaskError) -> BaseException:
    """The exception a remote call raised (an `AxonalError` with its own message), not Ray's
    wrapper with the remote traceback."""
    cause = getattr(error, "cause", None)
    return cause if isinstance(cause, Exception) else error


def _get(ref: Any) -> Any:
    """`ray.get`, raising a remote `AxonalError` as itself."""
    try:
        return ray.get(ref)
    except RayTaskError as e:
        raise _cause(e) from None

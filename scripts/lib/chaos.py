"""Game day for Axonal's spreading engine (run by scripts/chaos; docs/operations/spreading.md).

A real engine serves its HTTP surface; a real Prometheus (Debian's `prometheus`) on loopback scrapes it
every second with deploy/observability/prometheus/spreading.rules.yaml loaded; eight threads offer 200
recalls a second. Faults are injected in phases through the admin endpoint, as an operator would, and the
harness records a timeline: breaker transitions (from the engine's transition events), the answers of
/health/spreading, each alert's pending/firing/resolved (from Prometheus's API) and what the tuner did.
It writes the timeline as a Markdown table and a PNG plot and exits non-zero when an expected
reaction did not happen in time.
"""

import argparse
import json
import os
import pathlib
import platform
import re
import secrets
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

import numpy as np

import axonal

ROOT = pathlib.Path(__file__).resolve().parents[2]
RULES = ROOT / "deploy/observability/prometheus/spreading.rules.yaml"
RUNBOOK = ROOT / "docs/operations/spreading.md"
ALERTS = ("AxonalSpreadingBreakerOpen", "AxonalSpreadingUnhealthy", "AxonalSpreadingLatencySLOBurnFast")

# Game-day settings: production defaults except shorter probe, cooldown and tuner intervals, so a run
# takes minutes. The Prometheus rules are the shipped file, unchanged.
ENGINE_CONFIG = {
    "breaker": {"window_size": 20, "min_calls": 10, "cooldown_ms": 2000, "max_cooldown_ms": 8000},
    "health": {"interval_ms": 1000, "timeout_ms": 1000},
    "autotune": {"interval_ms": 10000},
}
SLOW_TIERS = {"hot": 30, "warm": 30, "cold": 30}
RATE = 200  # recalls offered per second, all threads together


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=pathlib.Path, default=ROOT / "docs/operations",
                        help="where chaos_timeline.md and chaos_timeline.png go (default docs/operations, "
                             "which also refreshes the runbook's timeline section)")
    parser.add_argument("--threads", type=int, default=8, help="recall threads (default 8)")
    args = parser.parse_args()
    prometheus = shutil.which("prometheus")
    if prometheus is None:
        sys.exit("chaos: Debian's prometheus package is required (scripts/chaos installs it)")
    args.out.mkdir(parents=True, exist_ok=True)

    day = GameDay(prometheus, args.threads)
    try:
        ok = day.run()
    finally:
        day.shutdown()
    table = day.markdown()
    (args.out / "chaos_timeline.md").write_text(table)
    day.plot(args.out / "chaos_timeline.png")
    if args.out.resolve() == (ROOT / "docs/operations").resolve():
        refresh_runbook(table)
    print(table)
    print(f"chaos: wrote {args.out / 'chaos_timeline.md'} and {args.out / 'chaos_timeline.png'}")
    sys.exit(0 if ok else 1)


class Phase:
    """A step of the game day: an admin write, then reactions expected within deadlines."""

    def __init__(self, name, write, expectations, min_seconds=0.0, linger=3.0):
        self.name, self.write, self.expectations = name, write, expectations
        self.min_seconds, self.linger = min_seconds, linger


class GameDay:
    def __init__(self, prometheus_binary, threads):
        self.token = secrets.token_hex(16)
        self.engine = axonal.Engine(demo_graph(), ENGINE_CONFIG)
        self.transitions = []  # (t, event)
        self.engine.on_breaker_transition(lambda ev: self.transitions.append((self.now(), ev)))
        self.server = self.engine.serve_http("127.0.0.1:0", admin_token=self.token)
        self.prometheus_binary = prometheus_binary
        self.prometheus = None  # started by run(), stopped by shutdown()
        self.t0 = time.monotonic()
        self.timeline = []  # (t, phase, source, text)
        self.results = []  # (phase, expectation, met_at or None, deadline)
        self.samples = []  # per monitor tick: t, breaker, health code, alert states
        self.phase = "setup"
        self.workload = Workload(self.engine, threads, self.now)
        self.health_code = None
        self.alert_states = {a: "inactive" for a in ALERTS}
        self.baseline_alerts = set()
        self.seen_transitions = 0
        self.phase_start = 0.0
        self.tuner_changes = 0  # audit entries seen (by time: the log is bounded)
        self.last_audit_at = None
        self.tuner_interval = None

    def now(self):
        return time.monotonic() - self.t0

    def log(self, source, text):
        t = self.now()
        self.timeline.append((t, self.phase, source, text))
        print(f"[{t:7.1f}s] {self.phase:<28} {source:<8} {text}", flush=True)

    # --- the run ---

    def run(self):
        self.prometheus = Prometheus(self.prometheus_binary, self.server.address[1])
        self.prometheus.wait_ready()
        self.log("setup", f"engine serving {self.server.url}; Prometheus on {self.prometheus.url} "
                          f"(scrape and rule evaluation every 1 s, {RULES.name})")
        self.workload.start()
        phases = [
            Phase("baseline", None, [
                ("Prometheus scrapes the engine (up == 1)", lambda: self.prometheus.up(), 20),
                ("/health/spreading answers 200", lambda: self.health_code == 200, 20),
            ], min_seconds=15),
            Phase("slow tiers, breaker forced closed",
                  {"breaker_override": "forced_closed", "chaos": {"latency_ms": SLOW_TIERS, "seed": 11}}, [
                ("/health/spreading answers 503", lambda: self.health_code == 503, 30),
                ("the auto-tuner changes the config", lambda: self.tuner_changes > 0, 60),
                ("AxonalSpreadingLatencySLOBurnFast fires",
                 lambda: self.alert_states["AxonalSpreadingLatencySLOBurnFast"] == "firing", 150),
            ]),
            Phase("recovery (override auto, chaos cleared)", {"breaker_override": "auto", "chaos": None}, [
                ("/health/spreading answers 200", lambda: self.health_code == 200, 30),
                ("breaker closed", lambda: self.engine.breaker_state == "closed", 60),
            ]),
            Phase("failures (failure_rate 1.0)", {"chaos": {"failure_rate": 1.0, "seed": 7}}, [
                ("breaker opens", lambda: self.transitioned_to("open"), 10),
                ("/health/spreading answers 503", lambda: self.health_code == 503, 30),
                ("AxonalSpreadingUnhealthy fires", lambda: self.alert_states["AxonalSpreadingUnhealthy"] == "firing", 120),
                ("AxonalSpreadingBreakerOpen fires", lambda: self.alert_states["AxonalSpreadingBreakerOpen"] == "firing", 150),
            ]),
            Phase("recovery", {"chaos": None}, [
                ("breaker half-opens", lambda: self.transitioned_to("half_open"), 20),
                ("breaker closes", lambda: self.transitioned_to("closed"), 60),
                ("/health/spreading answers 200", lambda: self.health_code == 200, 30),
                ("AxonalSpreadingUnhealthy resolves", lambda: self.alert_states["AxonalSpreadingUnhealthy"] == "inactive", 90),
                ("AxonalSpreadingBreakerOpen resolves", lambda: self.alert_states["AxonalSpreadingBreakerOpen"] == "inactive", 90),
            ], linger=5),
        ]
        ok = True
        for phase in phases:
            ok &= self.run_phase(phase)
        if self.baseline_alerts:
            self.log("check", f"FAILED: alerts went off during the baseline: {sorted(self.baseline_alerts)}")
            self.results.append(("baseline", "no alert pending or firing", None, "-"))
            ok = False
        return ok

    def run_phase(self, phase):
        self.phase = phase.name
        start = self.now()
        self.phase_start = start  # before the write: a transition it causes at once still counts
        if phase.write is not None:
            status, body = self.admin_write(phase.write)
            self.log("admin", f"PUT /api/v1/system/spreading/config {json.dumps(phase.write)} -> {status}")
            if status != 200:
                self.log("check", f"FAILED: admin write refused: {body}")
                return False
        pending = {name: (check, deadline) for name, check, deadline in phase.expectations}
        met = {}
        while True:
            self.tick()
            elapsed = self.now() - start
            for name, (check, deadline) in list(pending.items()):
                if check():
                    met[name] = elapsed
                    self.log("check", f"ok: {name} after {elapsed:.1f} s (deadline {deadline} s)")
                    del pending[name]
                elif elapsed > deadline:
                    met[name] = None
                    self.log("check", f"FAILED: {name} not within {deadline} s")
                    del pending[name]
            if phase.name == "baseline":
                self.baseline_alerts |= {a for a, state in self.alert_states.items() if state != "inactive"}
            if not pending and elapsed >= phase.min_seconds:
                break
            time.sleep(0.25)
        linger_until = self.now() + phase.linger
        while self.now() < linger_until:
            self.tick()
            time.sleep(0.25)
        for name, _, deadline in phase.expectations:
            self.results.append((phase.name, name, met.get(name), deadline))
        return all(met.get(name) is not None for name, _, _ in phase.expectations)

    def transitioned_to(self, state):
        return any(t >= self.phase_start and ev["to"] == state for t, ev in self.transitions)

    # --- observation ---

    def tick(self):
        for t, event in self.transitions[self.seen_transitions:]:
            self.timeline.append((t, self.phase, "breaker",
                                  f"{event['from']} → {event['to']} ({event['reason']}, failure rate "
                                  f"{event['failure_rate']:.2f}, cooldown {event['cooldown_ms']} ms)"))
            print(f"[{t:7.1f}s] {self.phase:<28} breaker  {event['from']} → {event['to']} ({event['reason']})", flush=True)
        self.seen_transitions = len(self.transitions)

        code = http_status(self.server.url + "/health/spreading")
        if code != self.health_code:
            self.log("health", f"/health/spreading answers {code}")
            self.health_code = code

        for alert, state in self.prometheus.alert_states(ALERTS).items():
            if state != self.alert_states[alert]:
                self.log("alert", f"{alert}: {self.alert_states[alert]} → {state}")
                self.alert_states[alert] = state

        if not self.samples or self.now() - self.samples[-1]["t"] >= 1.0:
            self.observe_tuner()
            self.samples.append({"t": self.now(), "breaker": self.engine.breaker_state, "health": self.health_code,
                                 "alerts": dict(self.alert_states)})

    def observe_tuner(self):
        try:
            view = json.loads(http_get(self.server.url + "/api/v1/system/spreading/config"))
        except (OSError, ValueError) as e:
            self.log("harness", f"config view unavailable this tick: {e}")
            return
        for entry in view["autotune"]["audit"]["entries"]:
            if self.last_audit_at is not None and entry["at"] <= self.last_audit_at:
                continue
            self.last_audit_at = entry["at"]
            self.tuner_changes += 1
            self.log("tuner", f"{entry.get('action', 'change')}: {json.dumps(entry.get('old'))} → "
                              f"{json.dumps(entry.get('new'))} ({entry.get('reason')})")
        interval = view["autotune"]["state"].get("interval_ms")
        if self.tuner_interval is not None and interval != self.tuner_interval:
            self.log("tuner", f"interval {self.tuner_interval} ms → {interval} ms (backoff "
                              f"{view['autotune']['state'].get('backoff')})")
        self.tuner_interval = interval

    def admin_write(self, body):
        request = urllib.request.Request(self.server.url + "/api/v1/system/spreading/config", method="PUT",
                                         data=json.dumps(body).encode(),
                                         headers={"Content-Type": "application/json",
                                                  "Authorization": f"Bearer {self.token}"})
        try:
            with urllib.request.urlopen(request, timeout=10) as reply:
                return reply.status, reply.read().decode()
        except urllib.error.HTTPError as e:
            return e.code, e.read().decode()

    def shutdown(self):
        """Stop everything, Prometheus first: an interrupt while joining threads must not leave it running."""
        try:
            if self.prometheus is not None:
                self.prometheus.stop()
        finally:
            try:
                self.workload.stop()
            finally:
                self.server.stop()
                self.engine.close()

    # --- output ---

    def markdown(self):
        lines = [
            f"Captured by `scripts/chaos` on {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}, "
            f"{platform.machine()} with {len(os.sched_getaffinity(0))} cores, "
            f"{self.workload.threads} recall threads offering {RATE} recalls/s; Prometheus {self.prometheus.version} scraping every 1 s. "
            f"Engine: {json.dumps(ENGINE_CONFIG)}.",
            "",
            "| phase | expected reaction | after | deadline |",
            "|---|---|---|---|",
        ]
        for phase, name, at, deadline in self.results:
            lines.append(f"| {phase} | {name} | {'**missed**' if at is None else f'{at:.1f} s'} | {deadline} s |")
        lines += ["", "| t (s) | phase | source | event |", "|---|---|---|---|"]
        for t, phase, source, text in sorted(self.timeline, key=lambda row: row[0]):
            if source == "check":
                continue
            lines.append(f"| {t:.1f} | {phase} | {source} | {text.replace('|', '/')} |")
        totals = self.workload.totals()
        lines += ["", f"Recalls: {totals['spreading']} answered by spreading, {totals['fallback']} by the fallback "
                      f"({', '.join(f'{k} {v}' for k, v in sorted(totals['reasons'].items())) or 'none'})."]
        return "\n".join(lines) + "\n"

    def plot(self, path):
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt

        seconds, spreading, fallback, p99 = self.workload.per_second()
        fig, axes = plt.subplots(4, 1, figsize=(11, 10), sharex=True,
                                 gridspec_kw={"height_ratios": [2.6, 1.8, 1.2, 1.3]})
        axes[0].stackplot(seconds, spreading, fallback, labels=["spreading", "fallback"],
                          colors=["#4c72b0", "#dd8452"], step="post")
        axes[0].set_ylabel("recalls / s")
        axes[0].legend(loc="upper right", fontsize=8)
        axes[1].step(seconds, [max(v, 0.01) for v in p99], where="post", color="#55a868")
        axes[1].axhline(50, color="grey", ls="--", lw=0.8)
        axes[1].text(seconds[0] if seconds else 0, 60, "latency budget 50 ms", fontsize=7, color="grey")
        axes[1].set_yscale("log")
        axes[1].set_ylabel("recall p99 (ms)")
        ts = [s["t"] for s in self.samples]
        breaker = [{"closed": 0, "half_open": 1, "open": 2}[s["breaker"]] for s in self.samples]
        health = [{200: 0, 503: 2}.get(s["health"], 1) for s in self.samples]
        axes[2].step(ts, breaker, where="post", label="breaker (0 closed, 1 half-open, 2 open)", color="#c44e52")
        axes[2].step(ts, health, where="post", label="/health/spreading (0 = 200, 2 = 503)", color="#8172b2", ls="--")
        axes[2].set_yticks([0, 1, 2])
        axes[2].legend(loc="upper right", fontsize=7)
        for row, alert in enumerate(ALERTS):
            for state, colour in (("pending", "#f2c14e"), ("firing", "#c44e52")):
                spans = spans_of([(s["t"], s["alerts"][alert] == state) for s in self.samples])
                axes[3].broken_barh(spans, (row - 0.35, 0.7), color=colour, label=state if row == 0 else None)
        axes[3].set_yticks(range(len(ALERTS)))
        axes[3].set_yticklabels([a.replace("AxonalSpreading", "") for a in ALERTS], fontsize=8)
        axes[3].legend(loc="upper right", fontsize=7)
        axes[3].set_xlabel("seconds since start")
        starts = [(t, p) for t, p, s, _ in self.timeline if s == "admin"]
        for ax in axes:
            for t, _ in starts:
                ax.axvline(t, color="black", lw=0.6, alpha=0.5)
        top = axes[0].get_ylim()[1]
        for t, p in starts:
            axes[0].text(t, top, " " + p, fontsize=7, va="top", rotation=90)
        fig.suptitle("Axonal game day: injected faults and the reactions of breaker, health and alerts")
        fig.tight_layout()
        fig.savefig(path, dpi=90)
        plt.close(fig)


def spans_of(points):
    """(start, width) spans where the flag is true, from (t, flag) samples."""
    spans, start = [], None
    for t, flag in points:
        if flag and start is None:
            start = t
        elif not flag and start is not None:
            spans.append((start, t - start))
            start = None
    if start is not None and points:
        spans.append((start, points[-1][0] - start))
    return spans


class Workload:
    """Threads recalling random single-node cues; per-second counts and p99 by source."""

    def __init__(self, engine, threads, now):
        self.engine, self.threads, self.now = engine, threads, now
        self.stop_flag = threading.Event()
        self.lock = threading.Lock()
        self.buckets = {}  # second -> [spreading, fallback, latencies]
        self.reasons = {}
        self.workers = []

    def start(self):
        for i in range(self.threads):
            worker = threading.Thread(target=self.loop, args=(i,), name=f"recall-{i}", daemon=True)
            worker.start()
            self.workers.append(worker)

    def loop(self, seed):
        # Paced (open loop, as traffic from users is): each thread aims at RATE / threads calls a
        # second whatever the answers cost, so every phase sees about the same offered load.
        rng = np.random.default_rng(seed)
        n = 5000
        period = self.threads / RATE
        next_call = time.perf_counter()
        while not self.stop_flag.is_set():
            delay = next_call - time.perf_counter()
            if delay > 0:
                time.sleep(delay)
            next_call = max(next_call + period, time.perf_counter() - 1.0)  # no burst after a stall
            started = time.perf_counter()
            result = self.engine.recall([int(rng.integers(0, n))], k=5)
            latency_ms = (time.perf_counter() - started) * 1e3
            second = int(self.now())
            with self.lock:
                bucket = self.buckets.setdefault(second, [0, 0, []])
                bucket[0 if result.source == "spreading" else 1] += 1
                bucket[2].append(latency_ms)
                if result.reason:
                    self.reasons[result.reason] = self.reasons.get(result.reason, 0) + 1

    def stop(self):
        self.stop_flag.set()
        for worker in self.workers:
            worker.join()

    def per_second(self):
        with self.lock:
            seconds = sorted(self.buckets)
            rows = [self.buckets[s] for s in seconds]
        return (seconds, [r[0] for r in rows], [r[1] for r in rows],
                [float(np.percentile(r[2], 99)) if r[2] else 0.0 for r in rows])

    def totals(self):
        with self.lock:
            return {"spreading": sum(b[0] for b in self.buckets.values()),
                    "fallback": sum(b[1] for b in self.buckets.values()), "reasons": dict(self.reasons)}


class Prometheus:
    """A real Prometheus server on loopback, scraping the engine with the shipped rules."""

    def __init__(self, binary, target_port):
        self.dir = tempfile.mkdtemp(prefix="axonal-chaos-")
        port = free_port()
        self.url = f"http://127.0.0.1:{port}"
        config = pathlib.Path(self.dir) / "prometheus.yml"
        config.write_text(json.dumps({
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s", "scrape_timeout": "900ms"},
            "rule_files": [str(RULES)],
            "scrape_configs": [{"job_name": "axonal", "static_configs": [{"targets": [f"127.0.0.1:{target_port}"]}]}],
        }))
        version = subprocess.run([binary, "--version"], capture_output=True, text=True)
        match = re.search(r"version (\S+)", version.stdout + version.stderr)
        self.version = match.group(1) if match else "?"
        self.log = open(pathlib.Path(self.dir) / "prometheus.log", "w")
        self.process = subprocess.Popen(
            [binary, f"--config.file={config}", f"--storage.tsdb.path={self.dir}/data",
             f"--web.listen-address=127.0.0.1:{port}", "--log.level=warn"],
            stdout=self.log, stderr=subprocess.STDOUT)

    def wait_ready(self, limit=60):
        deadline = time.monotonic() + limit
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise SystemExit(f"chaos: prometheus exited: {pathlib.Path(self.log.name).read_text()[-2000:]}")
            if http_status(self.url + "/-/ready") == 200:
                return
            time.sleep(0.2)
        raise SystemExit("chaos: prometheus did not become ready")

    def up(self):
        try:
            data = json.loads(http_get(self.url + "/api/v1/query?query=up%7Bjob%3D%22axonal%22%7D"))
            return any(r["value"][1] == "1" for r in data["data"]["result"])
        except (OSError, ValueError, KeyError):
            return False

    def alert_states(self, names):
        states = {name: "inactive" for name in names}
        try:
            alerts = json.loads(http_get(self.url + "/api/v1/alerts"))["data"]["alerts"]
        except (OSError, ValueError, KeyError):
            return states
        for alert in alerts:
            name = alert["labels"].get("alertname")
            if name in states and states[name] != "firing":
                states[name] = alert["state"]
        return states

    def stop(self):
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait()
        self.log.close()
        shutil.rmtree(self.dir, ignore_errors=True)


def demo_graph(n=5000, m=40000, seed=1):
    """A skewed random graph (heavy-tailed in-degree) with the three tiers."""
    rng = np.random.default_rng(seed)
    src = rng.integers(0, n, m, dtype=np.uint32)
    dst = (rng.pareto(1.2, m) * 50).astype(np.uint64) % n
    weight = rng.uniform(0.3, 0.9, m).astype(np.float32)
    tiers = rng.choice(np.array([0, 1, 2], dtype=np.uint8), n, p=[0.2, 0.3, 0.5])
    return axonal.Graph.from_edges(src, dst.astype(np.uint32), weight, num_nodes=n, tiers=tiers)


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http_get(url):
    with urllib.request.urlopen(url, timeout=5) as reply:
        return reply.read().decode()


def http_status(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as reply:
            return reply.status
    except urllib.error.HTTPError as e:
        return e.code
    except OSError:
        return None


def refresh_runbook(table):
    """Replace the runbook's captured timeline (between its markers) with this run's."""
    begin, end = "<!-- chaos-timeline:begin -->", "<!-- chaos-timeline:end -->"
    text = RUNBOOK.read_text() if RUNBOOK.exists() else ""
    if begin in text and end in text:
        head, rest = text.split(begin, 1)
        _, tail = rest.split(end, 1)
        plot = "![game-day timeline](chaos_timeline.png)\n\n"
        RUNBOOK.write_text(f"{head}{begin}\n{plot}{table}{end}{tail}")


if __name__ == "__main__":
    main()

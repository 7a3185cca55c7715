"""A live monitor for Jupyter (docs/spec.md §11): `Monitor(engine).show()` displays a panel that a background
poller updates in place — latency p50/p95/p99 per tier over time, the breaker's state timeline with
its transitions, the health probes, fallback rate by reason, pool utilisation and the tuner's audit
log. It needs only IPython's display updates (inline SVG); pandas and matplotlib are optional.

`render(history, audit)` is the pure part: rows in, HTML out.
"""

from __future__ import annotations

import collections
import html
import threading
import traceback
from collections.abc import Sequence
from typing import Any

__all__ = ["Monitor", "render", "row_of"]

TIERS = ("total", "hot", "warm", "cold")
QUANTILES = ("p50", "p95", "p99")
REASONS = ("breaker_open", "error", "slow", "low_mass")
STATE_COLOURS = {"closed": "#2e7d32", "half_open": "#f9a825", "open": "#c62828"}
LINE_COLOURS = {"p50": "#1565c0", "p95": "#ef6c00", "p99": "#6a1b9a"}


def row_of(snapshot: dict[str, Any]) -> dict[str, Any]:
    """Flatten one engine snapshot into a history row (latencies in milliseconds)."""
    s = snapshot["spreading"]
    row: dict[str, Any] = {"t": snapshot["at_unix_ms"] / 1000.0}
    for tier in TIERS:
        for q in QUANTILES:
            row[f"{tier}_{q}_ms"] = s["latency"][tier][q] * 1000.0
    row["breaker"] = s["breaker"]["state"]
    row["recalls_total"] = s["recalls_total"]
    row["fallback_total"] = s["fallback"]["total"]
    for reason in REASONS:
        row[f"fallback_{reason}"] = s["fallback"]["by_reason"][reason]
    row["pool_utilization"] = s["pool"]["utilization"]
    row["health"] = snapshot["health"]["status"]
    row["probes"] = snapshot["health"]["probes"]
    row["autotune_changes_total"] = s["autotune"]["changes_total"]
    graph = s["graph"]
    row["graph_version"] = graph["version"]
    row["graph_edges"] = graph["edges"]
    row["graph_delta_edges"] = graph["delta_edges"]
    row["graph_compactions_total"] = graph["compactions_total"]
    return row


def _esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _line_chart(title: str, times: list[float], series: dict[str, list[float]], width=300, height=110) -> str:
    pad = 28
    top = max([v for values in series.values() for v in values] + [1e-9])
    t0, t1 = (times[0], times[-1]) if times else (0.0, 1.0)
    span = max(t1 - t0, 1e-9)

    def xy(t: float, v: float) -> str:
        return f"{pad + (t - t0) / span * (width - pad - 4):.1f},{height - 16 - v / top * (height - 32):.1f}"

    lines = []
    for name, values in series.items():
        points = " ".join(xy(t, v) for t, v in zip(times, values))
        colour = LINE_COLOURS.get(name, "#555")
        lines.append(f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{points}"><title>{_esc(name)}</title></polyline>')
    legend = " ".join(f'<tspan fill="{LINE_COLOURS.get(n, "#555")}">{_esc(n)}</tspan>' for n in series)
    return (
        f'<svg class="axonal-chart" width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">'
        f'<text x="4" y="12" font-size="11">{_esc(title)} — max {top:.3g} ms · {legend}</text>'
        f'<line x1="{pad}" y1="{height - 16}" x2="{width - 4}" y2="{height - 16}" stroke="#999"/>'
        + "".join(lines)
        + "</svg>"
    )


def _breaker_timeline(times: list[float], states: list[str], width=620, height=40) -> str:
    if not times:
        return ""
    t0, t1 = times[0], times[-1]
    span = max(t1 - t0, 1e-9)

    def x(t: float) -> float:
        return 4 + (t - t0) / span * (width - 8)

    parts = []
    for i, state in enumerate(states):
        start = x(times[i])
        end = x(times[i + 1]) if i + 1 < len(times) else width - 4
        parts.append(
            f'<rect x="{start:.1f}" y="14" width="{max(end - start, 1):.1f}" height="14" '
            f'fill="{STATE_COLOURS.get(state, "#777")}"><title>{_esc(state)}</title></rect>'
        )
    marks = []
    for i in range(1, len(states)):
        if states[i] != states[i - 1]:
            marks.append(
                f'<line class="transition" x1="{x(times[i]):.1f}" y1="10" x2="{x(times[i]):.1f}" y2="32" stroke="#000">'
                f"<title>{_esc(states[i - 1])} → {_esc(states[i])}</title></line>"
            )
    return (
        f'<svg class="axonal-breaker" width="{width}" height="{height}" xmlns="http://www.w3.org/2000/svg">'
        f'<text x="4" y="10" font-size="11">breaker: {len(marks)} transition(s)</text>'
        + "".join(parts)
        + "".join(marks)
        + "</svg>"
    )


def _fallback_rates(history: Sequence[dict[str, Any]]) -> dict[str, float]:
    """Fallbacks per recall by reason over the history's span."""
    if len(history) < 2:
        return {reason: 0.0 for reason in REASONS}
    first, last = history[0], history[-1]
    recalls = max(last["recalls_total"] - first["recalls_total"], 0)
    return {
        reason: (last[f"fallback_{reason}"] - first[f"fallback_{reason}"]) / recalls if recalls else 0.0
        for reason in REASONS
    }


def _observed(value: Any) -> str:
    return "—" if value is None else f"{float(value) * 100:+.1f} %"


def render(history: Sequence[dict[str, Any]], audit: Sequence[dict[str, Any]] = ()) -> str:
    """The monitor panel as HTML: `history` rows (see `row_of`), oldest first, and audit entries."""
    if not history:
        return '<div class="axonal-monitor"><p>No samples yet.</p></div>'
    last = history[-1]
    times = [row["t"] for row in history]
    charts = "".join(
        _line_chart(
            f"{tier} latency",
            times,
            {q: [row[f"{tier}_{q}_ms"] for row in history] for q in QUANTILES},
        )
        for tier in TIERS
    )
    probes = "".join(
        f"<tr><td>{_esc(name)}</td><td>{_esc(p['status'])}</td><td>{_esc(p.get('critical'))}</td>"
        f"<td>{_esc(p.get('consecutive_failures'))}</td><td>{float(p.get('latency_ms') or 0):.3f}</td>"
        f"<td>{_esc(p.get('reason') or '')}</td></tr>"
        for name, p in sorted(last["probes"].items())
    )
    rates = _fallback_rates(history)
    fallback = "".join(f"<tr><td>{_esc(r)}</td><td>{rate * 100:.2f} %</td></tr>" for r, rate in rates.items())
    audit_rows = "".join(
        f"<tr><td>{_esc(e.get('action'))}</td><td>{_esc(e.get('reason'))}</td>"
        f"<td>{float(e.get('predicted') or 0) * 100:.1f} %</td>"
        f"<td>{_observed(e.get('observed'))}</td></tr>"
        for e in audit
    )
    return (
        '<div class="axonal-monitor" style="font-family: sans-serif; font-size: 12px">'
        f"<p><b>health</b> {_esc(last['health'])} · <b>breaker</b> {_esc(last['breaker'])} · "
        f"<b>recalls</b> {_esc(last['recalls_total'])} · <b>fallbacks</b> {_esc(last['fallback_total'])} · "
        f"<b>pool</b> {float(last['pool_utilization']) * 100:.0f} % · "
        f"<b>tuner changes</b> {_esc(last['autotune_changes_total'])}</p>"
        f"<div>{charts}</div>"
        f"{_breaker_timeline(times, [row['breaker'] for row in history])}"
        "<table class='axonal-probes'><tr><th>probe</th><th>status</th><th>critical</th>"
        f"<th>failures in a row</th><th>latency ms</th><th>reason</th></tr>{probes}</table>"
        f"<table class='axonal-fallback'><tr><th>fallback reason</th><th>per recall</th></tr>{fallback}</table>"
        "<table class='axonal-audit'><tr><th>tuner action</th><th>reason</th><th>predicted</th><th>observed</th></tr>"
        f"{audit_rows or '<tr><td colspan=4>no changes</td></tr>'}</table>"
        "</div>"
    )


class Monitor:
    """Poll `engine` every `interval` seconds, keep the last `history` samples, and show them."""

    def __init__(self, engine: Any, interval: float = 1.0, history: int = 600) -> None:
        if interval <= 0:
            raise ValueError(f"interval: must be positive seconds (got {interval})")
        if history < 1:
            raise ValueError(f"history: must be at least 1 sample (got {history})")
        self.engine = engine
        self.interval = interval
        self._rows: collections.deque[dict[str, Any]] = collections.deque(maxlen=history)
        self._audit: list[dict[str, Any]] = []
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._handle: Any = None

    def poll(self) -> dict[str, Any]:
        """Take one sample now (and refresh the displayed panel, if any)."""
        row = row_of(self.engine.snapshot())
        audit = self.engine.autotune_audit()
        with self._lock:
            self._rows.append(row)
            self._audit = audit
        if self._handle is not None:
            from IPython.display import HTML

            self._handle.update(HTML(self.html()))
        return row

    def html(self) -> str:
        with self._lock:
            return render(list(self._rows), list(self._audit))

    def _repr_html_(self) -> str:
        return self.html()

    def start(self) -> None:
        """Poll in a background thread until `stop()` (or until the engine closes)."""
        if self._thread is not None and self._thread.is_alive():
            return
        self._stop.clear()

        def run() -> None:
            from . import ClosedError

            while not self._stop.is_set():
                try:
                    self.poll()
                except ClosedError:  # the engine was closed: nothing more to poll
                    return
                except Exception:  # a bug: say so rather than let the panel freeze silently
                    traceback.print_exc()
                    return
                self._stop.wait(self.interval)

        self._thread = threading.Thread(target=run, name="axonal-monitor", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        """Stop the poller and wait for it (call it before dropping a started monitor: the poller
        holds the monitor, and so the engine, until it stops)."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join()
        self._thread = None

    def show(self) -> None:
        """Display the panel (updated in place by the poller) and start polling."""
        try:
            from IPython.display import HTML, display
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise RuntimeError("Monitor.show() needs IPython (run it in Jupyter)") from e
        self.poll()
        self._handle = display(HTML(self.html()), display_id=True)
        self.start()

    @property
    def history(self) -> Any:
        """The samples, oldest first: a pandas DataFrame when pandas is installed, else a list of dicts."""
        with self._lock:
            rows = [dict(row) for row in self._rows]
        try:
            import pandas
        except ImportError:
            return rows
        return pandas.DataFrame(rows)

    def plot(self) -> Any:
        """Draw the per-tier latencies and the breaker state with matplotlib; returns the figure."""
        import matplotlib.pyplot as plt

        with self._lock:
            rows = list(self._rows)
        times = [row["t"] - rows[0]["t"] for row in rows] if rows else []
        fig, axes = plt.subplots(len(TIERS) + 1, 1, figsize=(8, 2 * (len(TIERS) + 1)), sharex=True)
        for ax, tier in zip(axes, TIERS):
            for q in QUANTILES:
                ax.plot(times, [row[f"{tier}_{q}_ms"] for row in rows], label=q, color=LINE_COLOURS[q])
            ax.set_ylabel(f"{tier} ms")
            ax.legend(loc="upper right", fontsize="small")
        states = {"closed": 0, "half_open": 1, "open": 2}
        axes[-1].step(times, [states.get(row["breaker"], -1) for row in rows], where="post")
        axes[-1].set_yticks(list(states.values()), list(states))
        axes[-1].set_xlabel("seconds")
        return fig

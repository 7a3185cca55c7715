"""A live monitor for Jupyter (docs/spec.md §11): `Monitor(engine).show()` displays a panel that a background
poller updates in place — per-tier latency p50/p95/p99 per interval, with breaker transitions, faults
and the notebook's own marks drawn on every chart; the breaker's state timeline; the fallback rate by
reason over time; the health probes; pool utilisation and the tuner's audit log. It draws inline SVG
that follows the notebook's light or dark theme and needs only IPython; with ipywidgets installed the
panel is a widget (JupyterLab updates it while other cells run) and `show()` adds controls (breaker
override, chaos on/off, tuner on/off). pandas and matplotlib are optional.

`render(history, audit, marks)` is the pure part: rows in, HTML out.
"""

from __future__ import annotations

import collections
import html
import math
import threading
import time
import traceback
from collections.abc import Sequence
from typing import Any

__all__ = ["Monitor", "render", "row_of"]

TIERS = ("total", "hot", "warm", "cold")
QUANTILES = ("p50", "p95", "p99")
REASONS = ("breaker_open", "error", "slow", "low_mass")
# Mid-tone colours that read on a white and on a near-black background.
STATE_COLOURS = {"closed": "#43a047", "half_open": "#f9a825", "open": "#e53935"}
LINE_COLOURS = {"p50": "#1e88e5", "p95": "#fb8c00", "p99": "#8e24aa"}
REASON_COLOURS = {"breaker_open": "#e53935", "error": "#8e24aa", "slow": "#fb8c00", "low_mass": "#00897b"}
# The telemetry window each sample reads latency from: the last second, so a fault shows at once
# (a 60 s window would hide its start behind a minute of good calls).
WINDOW = "1s"
HISTOGRAMS = {
    "total": "spreading_recall_latency_seconds",
    "hot": "spreading_latency_hot_seconds",
    "warm": "spreading_latency_warm_seconds",
    "cold": "spreading_latency_cold_seconds",
}


def row_of(snapshot: dict[str, Any]) -> dict[str, Any]:
    """Flatten one engine snapshot into a history row: latencies in milliseconds over the last second
    (with the number of samples behind them), counters since the engine started."""
    s = snapshot["spreading"]
    row: dict[str, Any] = {"t": snapshot["at_unix_ms"] / 1000.0}
    window = snapshot["windows"][WINDOW]["histograms"]
    for tier in TIERS:
        h = window[HISTOGRAMS[tier]]
        row[f"{tier}_count"] = h["count"]
        for q in QUANTILES:
            row[f"{tier}_{q}_ms"] = h[q] * 1000.0
    row["breaker"] = s["breaker"]["state"]
    row["recalls_total"] = s["recalls_total"]
    row["failures_total"] = s["failures_total"]
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


def _nice_step(span: float, ticks: int) -> float:
    """A step of 1, 2 or 5 × 10^k that cuts `span` into at most `ticks` intervals."""
    raw = max(span, 1e-12) / ticks
    base = 10 ** math.floor(math.log10(raw))
    return next(m * base for m in (1, 2, 5, 10) if m * base >= raw)


def _multiples(step: float, top: float) -> list[float]:
    """0, step, 2·step, … up to `top` (each computed, not accumulated: no drift past the last one)."""
    return [i * step for i in range(int(top / step + 1e-9) + 1)]


def _number(v: float) -> str:
    return f"{v:.4g}"


class _Frame:
    """The axes shared by the panel's charts: time since the first sample on x."""

    LEFT, RIGHT, TOP, BOTTOM = 44, 8, 30, 22

    def __init__(self, t0: float, t1: float, top: float, width: int, height: int) -> None:
        self.t0, self.span = t0, max(t1 - t0, 1.0)
        self.step_y = _nice_step(top, 4)
        self.top = max(self.step_y * math.ceil(top / self.step_y), self.step_y)
        self.width, self.height = width, height

    def x(self, t: float) -> float:
        return self.LEFT + (t - self.t0) / self.span * (self.width - self.LEFT - self.RIGHT)

    def y(self, v: float) -> float:
        return self.height - self.BOTTOM - v / self.top * (self.height - self.TOP - self.BOTTOM)

    def time_ticks(self, ticks: int) -> list[tuple[float, float]]:
        """At most `ticks` + 1 round times since start, as (seconds, x)."""
        return [(t, self.x(self.t0 + t)) for t in _multiples(_nice_step(self.span, ticks), self.span)]

    def axes(self) -> str:
        """Axis lines, ticks and labels: seconds since start on x, values on y (the unit is in the title)."""
        parts = []
        y0 = self.height - self.BOTTOM
        parts.append(
            f'<line x1="{self.LEFT}" y1="{y0}" x2="{self.width - self.RIGHT}" y2="{y0}" stroke="currentColor" stroke-opacity="0.6"/>'
            f'<line x1="{self.LEFT}" y1="{self.TOP}" x2="{self.LEFT}" y2="{y0}" stroke="currentColor" stroke-opacity="0.6"/>'
        )
        for t, x in self.time_ticks(6):
            parts.append(
                f'<line x1="{x:.1f}" y1="{y0}" x2="{x:.1f}" y2="{y0 + 3}" stroke="currentColor" stroke-opacity="0.6"/>'
                f'<text class="tick" x="{x:.1f}" y="{y0 + 13}" font-size="9" text-anchor="middle" fill="currentColor">{_number(t)}</text>'
            )
        parts.append(
            f'<text x="{self.width - self.RIGHT}" y="{self.height - 1}" font-size="9" text-anchor="end" fill="currentColor" fill-opacity="0.7">s since start</text>'
        )
        for v in _multiples(self.step_y, self.top):
            y = self.y(v)
            parts.append(
                f'<line x1="{self.LEFT}" y1="{y:.1f}" x2="{self.width - self.RIGHT}" y2="{y:.1f}" stroke="currentColor" stroke-opacity="0.12"/>'
                f'<text class="tick" x="{self.LEFT - 4}" y="{y + 3:.1f}" font-size="9" text-anchor="end" fill="currentColor">{_number(v)}</text>'
            )
        return "".join(parts)


Event = tuple[float, str, str, bool]
Transition = tuple[float, str, str]


def _transitions(history: Sequence[dict[str, Any]], recorded: Sequence[Transition] | None) -> list[Transition]:
    """The breaker's transitions within the history's span, as (unix time, from, to): the ones the
    engine reported (exact, also those shorter than a poll interval) or, without them, the state
    changes between samples."""
    t0, t1 = history[0]["t"], history[-1]["t"]
    if recorded is not None:
        return sorted(tr for tr in recorded if t0 <= tr[0] <= t1)
    return [
        (history[i]["t"], history[i - 1]["breaker"], history[i]["breaker"])
        for i in range(1, len(history))
        if history[i]["breaker"] != history[i - 1]["breaker"]
    ]


def _events(
    history: Sequence[dict[str, Any]], marks: Sequence[tuple[float, str]], transitions: Sequence[Transition]
) -> list[Event]:
    """What the charts mark: breaker transitions and the notebook's marks, as (time, label, colour,
    whether it is a mark)."""
    events: list[Event] = [
        (t, f"breaker {old} → {new}", STATE_COLOURS.get(new, "#777"), False) for t, old, new in transitions
    ]
    events += [(t, label, "currentColor", True) for t, label in marks if history[0]["t"] <= t <= history[-1]["t"]]
    return sorted(events, key=lambda e: e[0])


def _overlays(frame: _Frame, history: Sequence[dict[str, Any]], events: list[Event]) -> str:
    """Shade the intervals in which spreads failed (errors, slow or low-mass calls); draw each event as a
    dashed vertical line (the notebook's marks with their label)."""
    parts = []
    for prev, row in zip(history, history[1:]):
        if row.get("failures_total", 0) > prev.get("failures_total", 0):
            x0, x1 = frame.x(prev["t"]), frame.x(row["t"])
            parts.append(
                f'<rect class="fault" x="{x0:.1f}" y="{frame.TOP}" width="{max(x1 - x0, 1):.1f}" '
                f'height="{frame.height - frame.TOP - frame.BOTTOM}" fill="#e53935" fill-opacity="0.15">'
                "<title>spreads failed in this interval</title></rect>"
            )
    for t, label, colour, is_mark in events:
        x = frame.x(t)
        parts.append(
            f'<line class="event" x1="{x:.1f}" y1="{frame.TOP}" x2="{x:.1f}" y2="{frame.height - frame.BOTTOM}" '
            f'stroke="{colour}" stroke-dasharray="3,2" stroke-width="1.2"><title>{_esc(label)}</title></line>'
        )
        if is_mark:  # the notebook's own marks are few: name them on the chart
            parts.append(
                f'<text class="mark" x="{x + 2:.1f}" y="{frame.TOP + 8}" font-size="8" fill="currentColor">{_esc(label)}</text>'
            )
    return "".join(parts)


def _polylines(
    frame: _Frame, times: list[float], values: list[float | None], colour: str, name: str, steps: bool = False
) -> str:
    """Lines through the samples that exist (`None` breaks a line: no fake zero where nothing ran).
    With `steps`, value i holds over the interval from sample i - 1 to sample i."""
    segments: list[list[str]] = [[]]
    for i, (t, v) in enumerate(zip(times, values)):
        if v is None or (steps and i == 0):
            if segments[-1]:
                segments.append([])
            continue
        if steps:
            segments[-1].append(f"{frame.x(times[i - 1]):.1f},{frame.y(v):.1f}")
        segments[-1].append(f"{frame.x(t):.1f},{frame.y(v):.1f}")
    out = []
    for points in segments:
        if len(points) == 1:
            x, y = points[0].split(",")
            out.append(f'<circle cx="{x}" cy="{y}" r="1.8" fill="{colour}"><title>{_esc(name)}</title></circle>')
        elif points:
            out.append(
                f'<polyline fill="none" stroke="{colour}" stroke-width="1.5" points="{" ".join(points)}"><title>{_esc(name)}</title></polyline>'
            )
    return "".join(out)


def _chart(title: str, history: Sequence[dict[str, Any]], series: dict[str, tuple[str, list[float | None]]],
           events: list[Event], empty: str, steps: bool = False, width: int = 340, height: int = 160) -> str:
    times = [row["t"] for row in history]
    values = [v for _, vs in series.values() for v in vs if v is not None]
    top = max(values, default=0.0)
    frame = _Frame(times[0], times[-1], top if top > 0 else 1.0, width, height)
    # Coloured swatches, labels in the text colour (a mid-tone label is hard to read on a white or a
    # black background alike).
    legend = " ".join(f'<tspan fill="{colour}">■</tspan> {_esc(name)}' for name, (colour, _) in series.items())
    latest = "".join(
        f" {_esc(name)} {_number(vs[-1])}" for name, (_, vs) in series.items() if vs and vs[-1] is not None
    )
    return (
        f'<svg class="axonal-chart" width="{width}" height="{height}" viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">'
        f'<text x="4" y="11" font-size="11" font-weight="bold" fill="currentColor">{_esc(title)}</text>'
        f'<text x="{width - 4}" y="23" font-size="9" text-anchor="end" fill="currentColor">{legend}</text>'
        + frame.axes()
        + (
            ""
            if values
            else f'<text x="{(frame.LEFT + width) / 2:.0f}" y="{height / 2:.0f}" font-size="10" text-anchor="middle" '
            f'fill="currentColor" fill-opacity="0.7">{_esc(empty)}</text>'
        )
        + _overlays(frame, history, events)
        + "".join(_polylines(frame, times, vs, colour, name, steps) for name, (colour, vs) in series.items())
        + f"<title>{_esc(title)}: latest{latest or ' —'}</title>"
        + "</svg>"
    )


def _latency_chart(tier: str, history: Sequence[dict[str, Any]], events: list[Event]) -> str:
    series = {
        q: (LINE_COLOURS[q], [row[f"{tier}_{q}_ms"] if row.get(f"{tier}_count", 1) > 0 else None for row in history])
        for q in QUANTILES
    }
    return _chart(f"{tier} latency, ms (last 1 s)", history, series, events, "no recall reached this tier")


def _fallback_chart(history: Sequence[dict[str, Any]], events: list[Event]) -> str:
    """Fallbacks per recall by reason in each interval between samples, in percent."""
    series: dict[str, tuple[str, list[float | None]]] = {r: (REASON_COLOURS[r], [None]) for r in REASONS}
    for prev, row in zip(history, history[1:]):
        recalls = row["recalls_total"] - prev["recalls_total"]
        for reason in REASONS:
            delta = max(row[f"fallback_{reason}"] - prev[f"fallback_{reason}"], 0)
            # Two counters read in one snapshot can be a few calls apart: a share, so at most 100 %.
            series[reason][1].append(min(100.0 * delta / recalls, 100.0) if recalls > 0 else None)
    return _chart(
        "fallbacks, % of recalls per interval", history, series, events, "no recalls between samples", steps=True
    )


def _breaker_timeline(
    history: Sequence[dict[str, Any]], transitions: Sequence[Transition], width: int = 690, height: int = 62
) -> str:
    times = [row["t"] for row in history]
    frame = _Frame(times[0], times[-1], 1.0, width, height)
    # The state over time: the first sample's, then each transition's new state, until the last sample.
    spans = []
    state, since = history[0]["breaker"], times[0]
    for t, _, new in transitions:
        spans.append((since, t, state))
        state, since = new, t
    spans.append((since, times[-1], state))
    parts = []
    for start, end, state in spans:
        x0, x1 = frame.x(start), frame.x(end)
        parts.append(
            f'<rect class="state-{_esc(state)}" x="{x0:.1f}" y="{frame.TOP}" width="{max(x1 - x0, 1):.1f}" height="12" '
            f'fill="{STATE_COLOURS.get(state, "#777")}"><title>{_esc(state)}</title></rect>'
        )
    marks = []
    for t, old, new in transitions:
        x = frame.x(t)
        marks.append(
            f'<line class="transition" x1="{x:.1f}" y1="{frame.TOP - 4}" x2="{x:.1f}" y2="{frame.TOP + 16}" stroke="currentColor">'
            f"<title>{_esc(old)} → {_esc(new)} at {t - times[0]:.1f} s</title></line>"
        )
    ticks = []
    for t, x in frame.time_ticks(8):
        ticks.append(f'<text class="tick" x="{x:.1f}" y="{height - 6}" font-size="9" text-anchor="middle" fill="currentColor">{_number(t)}</text>')
    legend = " ".join(f'<tspan fill="{c}">■</tspan> {s}' for s, c in STATE_COLOURS.items())
    return (
        f'<svg class="axonal-breaker" width="{width}" height="{height}" viewBox="0 0 {width} {height}" xmlns="http://www.w3.org/2000/svg">'
        f'<text x="4" y="11" font-size="11" font-weight="bold" fill="currentColor">breaker: {len(marks)} transition(s)</text>'
        f'<text x="{width - 4}" y="11" font-size="9" text-anchor="end" fill="currentColor">{legend}</text>'
        + "".join(parts)
        + "".join(marks)
        + "".join(ticks)
        + "</svg>"
    )


def _fallback_totals(history: Sequence[dict[str, Any]]) -> list[tuple[str, int, float]]:
    """Fallbacks by reason over the history's span: (reason, count, per recall). Summed per interval,
    counting only increases, so counters that restarted (a new engine) never give negative counts."""
    pairs = list(zip(history, history[1:]))
    recalls = sum(max(row["recalls_total"] - prev["recalls_total"], 0) for prev, row in pairs)
    out = []
    for reason in REASONS:
        key = f"fallback_{reason}"
        count = sum(max(row[key] - prev[key], 0) for prev, row in pairs)
        out.append((reason, count, min(count / recalls, 1.0) if recalls else 0.0))
    return out


def _observed(value: Any) -> str:
    return "—" if value is None else f"{float(value) * 100:+.1f} %"


def _ago(unix_ms: Any, now: float) -> str:
    if unix_ms is None:
        return "never"
    return f"{max(now - float(unix_ms) / 1000.0, 0.0):.1f} s ago"


STYLE = (
    "font-family: sans-serif; font-size: 12px; color: var(--jp-ui-font-color1, inherit); "
    "max-width: 720px"
)
TABLE = "style='border-collapse: collapse; margin: 6px 0' class='{cls}'"
CELL = "style='border-bottom: 1px solid rgba(127,127,127,0.35); padding: 2px 8px; text-align: left'"


def _table(cls: str, header: Sequence[str], rows: Sequence[Sequence[str]], empty: str) -> str:
    head = "".join(f"<th {CELL}>{_esc(h)}</th>" for h in header)
    body = "".join("<tr>" + "".join(f"<td {CELL}>{c}</td>" for c in r) + "</tr>" for r in rows)
    if not rows:
        body = f"<tr><td {CELL} colspan='{len(header)}'>{_esc(empty)}</td></tr>"
    return f"<table {TABLE.format(cls=cls)}><tr>{head}</tr>{body}</table>"


def render(
    history: Sequence[dict[str, Any]],
    audit: Sequence[dict[str, Any]] = (),
    marks: Sequence[tuple[float, str]] = (),
    transitions: Sequence[Transition] | None = None,
) -> str:
    """The monitor panel as HTML: `history` rows (see `row_of`), oldest first; the tuner's audit
    entries; `marks` as (unix time, label) pairs drawn on every chart (see `Monitor.mark`); the
    breaker's `transitions` as (unix time, from, to), as the engine reports them (`None`: the state
    changes between samples, which miss a state shorter than the poll interval)."""
    if not history:
        return f'<div class="axonal-monitor" style="{STYLE}"><p>No samples yet.</p></div>'
    last = history[-1]
    transitions = _transitions(history, transitions)
    events = _events(history, marks, transitions)
    charts = "".join(_latency_chart(tier, history, events) for tier in TIERS) + _fallback_chart(history, events)
    probes = [
        (
            _esc(name),
            _esc(p["status"]),
            _esc(p.get("critical")),
            _esc(p.get("consecutive_failures")),
            f"{float(p.get('latency_ms') or 0):.3f}",
            _ago(p.get("last_failure"), last["t"]),
            _esc(p.get("reason") or ""),
        )
        for name, p in sorted(last["probes"].items())
    ]
    fallback = [(_esc(r), str(count), f"{share * 100:.2f} %") for r, count, share in _fallback_totals(history)]
    audit_rows = [
        (_esc(e.get("action")), _esc(e.get("reason")), f"{float(e.get('predicted') or 0) * 100:.1f} %", _observed(e.get("observed")))
        for e in audit
    ]
    span = last["t"] - history[0]["t"]
    legend = (
        "Dashed lines: breaker transitions (coloured by the new state) and marks; shaded: intervals in which "
        f"spreads failed (errors, slow or low-mass calls). {len(history)} samples over {span:.1f} s."
    )
    return (
        f'<div class="axonal-monitor" style="{STYLE}">'
        f"<p><b>health</b> {_esc(last['health'])} · <b>breaker</b> {_esc(last['breaker'])} · "
        f"<b>recalls</b> {_esc(last['recalls_total'])} · <b>fallbacks</b> {_esc(last['fallback_total'])} · "
        f"<b>pool</b> {float(last['pool_utilization']) * 100:.0f} % · "
        f"<b>tuner changes</b> {_esc(last['autotune_changes_total'])}</p>"
        f"<div style='display: flex; flex-wrap: wrap; gap: 6px'>{charts}</div>"
        f"{_breaker_timeline(history, transitions)}"
        f"<p style='opacity: 0.75; margin: 2px 0'>{_esc(legend)}</p>"
        + _table(
            "axonal-probes",
            ("probe", "status", "critical", "failures in a row", "latency ms", "last failure", "reason"),
            probes,
            "no probes",
        )
        + _table("axonal-fallback", ("fallback reason", "count", "per recall"), fallback, "no recalls")
        + _table("axonal-audit", ("tuner action", "reason", "predicted", "observed"), audit_rows, "no changes")
        + "</div>"
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
        self._marks: list[tuple[float, str]] = []
        self._transitions: collections.deque[Transition] = collections.deque(maxlen=4 * history)
        self._transition_callback: int | None = None
        # Transitions are drawn from the engine's reports once recording has begun (the first poll).
        self._recorded = False
        self._lock = threading.Lock()
        # One poll at a time (the poller's and the caller's), so rows arrive in time order and an
        # older panel never overwrites a newer one.
        self._poll_lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._handle: Any = None
        self._widget: Any = None

    def poll(self) -> dict[str, Any]:
        """Take one sample now (and refresh the displayed panel, if any). The first poll also starts
        recording the breaker's transitions as the engine reports them (until `stop()`)."""
        with self._poll_lock:
            if self._transition_callback is None:
                self._transition_callback = self.engine.on_breaker_transition(self._on_transition)
                self._recorded = True
            row = row_of(self.engine.snapshot())
            audit = self.engine.autotune_audit()
            with self._lock:
                self._rows.append(row)
                self._audit = audit
                oldest = self._rows[0]["t"]
                self._marks = [m for m in self._marks if m[0] >= oldest]
            if self._widget is not None:
                self._widget.value = self.html()
            elif self._handle is not None:
                from IPython.display import HTML

                self._handle.update(HTML(self.html()))
            return row

    def _on_transition(self, event: dict[str, Any]) -> None:
        with self._lock:
            self._transitions.append((event["at_unix_ms"] / 1000.0, str(event["from"]), str(event["to"])))

    def mark(self, label: str) -> None:
        """Mark this moment on every chart (say, "chaos on"): a labelled dashed line."""
        with self._lock:
            self._marks.append((time.time(), str(label)))

    def html(self) -> str:
        with self._lock:
            transitions = list(self._transitions) if self._recorded else None
            return render(list(self._rows), list(self._audit), list(self._marks), transitions)

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
        with self._poll_lock:
            if self._transition_callback is not None:
                from . import ClosedError

                try:
                    self.engine.remove_transition_callback(self._transition_callback)
                except ClosedError:
                    pass
                # Keep drawing what was recorded; record no more.
                self._transition_callback = None

    def show(self, controls: bool = True) -> None:
        """Display the panel, updated in place by the poller, and start polling.

        With ipywidgets installed the panel is a widget, which every frontend updates while other
        cells run (JupyterLab drops display updates sent from a background thread once the showing
        cell has finished), and with `controls` a row of controls above it acts on the engine: the
        breaker override, injected failures on/off and the auto-tuner on/off, each marked on the
        charts. Without ipywidgets it is a display that the poller updates by its display id (the
        classic Notebook, VS Code and nbclient apply those updates)."""
        try:
            from IPython.display import HTML, display
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise RuntimeError("Monitor.show() needs IPython (run it in Jupyter)") from e
        try:
            import ipywidgets as widgets
        except ImportError:
            widgets = None
        self.poll()
        if widgets is not None:
            self._widget = widgets.HTML(self.html())
            parts = [self.controls(), self._widget] if controls else [self._widget]
            display(widgets.VBox(parts))
        else:
            self._handle = display(HTML(self.html()), display_id=True)
        self.start()

    def controls(self) -> Any:
        """The ipywidgets controls `show()` displays, or `None` without ipywidgets."""
        try:
            import ipywidgets as widgets
        except ImportError:
            return None
        engine = self.engine
        override = widgets.ToggleButtons(
            options=[("auto", "auto"), ("force open", "forced_open"), ("force closed", "forced_closed")],
            value=engine.breaker_override,
            description="breaker",
            tooltips=["the breaker decides", "refuse every call (fallback answers)", "spread every call"],
        )
        chaos = widgets.ToggleButton(value=False, description="inject failures", icon="bolt",
                                     tooltip="chaos: every spread fails until switched off")
        tuner = widgets.Checkbox(value=bool(engine.config["autotune"]["enabled"]), description="auto-tuner")

        def on_override(change: dict[str, Any]) -> None:
            engine.breaker_override = change["new"]
            self.mark(f"breaker {change['new']}")

        def on_chaos(change: dict[str, Any]) -> None:
            if change["new"]:
                engine.set_chaos(failure_rate=1.0)
                self.mark("failures on")
            else:
                engine.clear_chaos()
                self.mark("failures off")

        def on_tuner(change: dict[str, Any]) -> None:
            engine.update_config({"autotune": {"enabled": bool(change["new"])}})
            self.mark(f"tuner {'on' if change['new'] else 'off'}")

        override.observe(on_override, names="value")
        chaos.observe(on_chaos, names="value")
        tuner.observe(on_tuner, names="value")
        return widgets.HBox([override, chaos, tuner])

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
                # NaN where no recall ran in that second: a gap, as in the panel, not a fake zero.
                values = [row[f"{tier}_{q}_ms"] if row.get(f"{tier}_count", 1) > 0 else math.nan for row in rows]
                ax.plot(times, values, label=q, color=LINE_COLOURS[q])
            ax.set_ylabel(f"{tier} ms")
            ax.legend(loc="upper right", fontsize="small")
        states = {"closed": 0, "half_open": 1, "open": 2}
        axes[-1].step(times, [states.get(row["breaker"], -1) for row in rows], where="post")
        axes[-1].set_yticks(list(states.values()), list(states))
        axes[-1].set_xlabel("seconds")
        return fig

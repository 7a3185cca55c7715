"""The Jupyter monitor: `render` is pure (rows in, HTML out) and the poller samples a live engine."""

import threading
import time
import xml.etree.ElementTree as ET

import pytest

import axonal
from axonal.notebook import Monitor, render, row_of


def row(t, state, recalls, breaker_open=0, p95=0.002, probes=None):
    r = {"t": t, "breaker": state, "recalls_total": recalls, "fallback_total": breaker_open,
         "pool_utilization": 0.5, "health": "healthy", "autotune_changes_total": 1,
         "probes": probes or {"spreading": {"status": "healthy", "critical": True, "consecutive_failures": 0,
                                            "latency_ms": 0.001, "reason": None}}}
    for tier in ("total", "hot", "warm", "cold"):
        r.update({f"{tier}_p50_ms": p95 * 500, f"{tier}_p95_ms": p95 * 1000, f"{tier}_p99_ms": p95 * 1200})
    for reason in ("breaker_open", "error", "slow", "low_mass"):
        r[f"fallback_{reason}"] = breaker_open if reason == "breaker_open" else 0
    return r


def test_render_marks_breaker_transitions_and_rates():
    history = [row(0, "closed", 0), row(1, "open", 100, 40), row(2, "half_open", 150, 60), row(3, "closed", 250, 60)]
    audit = [{"action": "apply", "reason": "p95 over budget", "predicted": 0.25, "observed": 0.3}]
    out = render(history, audit)
    ET.fromstring(out)  # well-formed markup
    assert out.count('class="transition"') == 3
    assert "breaker: 3 transition(s)" in out
    assert "24.00 %" in out, "60 breaker_open fallbacks over 250 recalls"
    assert "+30.0 %" in out and "25.0 %" in out and "p95 over budget" in out
    assert out.count('class="axonal-chart"') == 5, "one chart per tier and the fallback rate"
    assert out.count('class="event"') == 3 * 5, "each transition marked on every chart"
    assert "s since start" in out and "latency, ms" in out and "% of recalls per interval" in out, "axes with units"
    assert ">40<" in out and ">60<" in out, "fallback counts beside the shares"


def test_render_draws_no_line_where_nothing_ran_and_shades_faults():
    history = [row(t, "closed", 10 * t) for t in range(6)]
    for r in history[:3]:
        r["total_count"] = 0  # nothing recalled in the first intervals: no fake zero
    for i, r in enumerate(history):
        r["failures_total"] = 0 if i < 4 else 5
        r["hot_count"] = r["warm_count"] = r["cold_count"] = 0
    out = render(history, marks=[(history[2]["t"], "failures on")])
    ET.fromstring(out)
    chart = out[out.index("total latency") : out.index("hot latency")]
    first_x = min(float(p.split(",")[0]) for line in chart.split('points="')[1:] for p in line.split('"')[0].split())
    assert first_x > 44 + 0.5 * (340 - 52), "the total line starts where samples start"
    assert out.count('class="fault"') == 5, "the one interval with failures, shaded on every chart"
    assert out.count("<title>failures on</title>") == 5, "the mark on every chart"
    assert out.count('class="mark"') == 5, "and named there"
    assert out.count("no recall reached this tier") == 3, "hot, warm and cold saw no recall"


def test_render_shows_when_a_probe_last_failed():
    probes = {"spreading": {"status": "degraded", "critical": True, "consecutive_failures": 2, "latency_ms": 3.0,
                            "reason": "slow", "last_failure": 8_000}}
    out = render([row(0, "closed", 0), row(10, "closed", 5, probes=probes)])
    assert "2.0 s ago" in out
    assert "never" in render([row(0, "closed", 0)])


def test_render_draws_the_transitions_the_engine_reported_even_between_samples():
    history = [row(0, "closed", 0), row(1, "closed", 100), row(2, "closed", 200)]
    # Open for 0.4 s and half-open for 0.1 s, all between two samples: sampling alone sees nothing.
    assert "breaker: 0 transition(s)" in render(history)
    reported = [(0.5, "closed", "open"), (0.9, "open", "half_open"), (1.0, "half_open", "closed"), (7.0, "closed", "open")]
    out = render(history, transitions=reported)
    ET.fromstring(out)
    assert "breaker: 3 transition(s)" in out, "the one after the last sample is not drawn yet"
    assert out.count('class="state-half_open"') == 1 and out.count('class="state-open"') == 1
    assert out.count("<title>breaker open → half_open</title>") == 5, "on every chart"


def test_render_never_counts_backwards_when_counters_restart():
    history = [row(0, "closed", 100, breaker_open=50), row(1, "closed", 0, breaker_open=0), row(2, "closed", 10, breaker_open=5)]
    out = render(history)
    assert ">-" not in out, "no negative count"
    assert "50.00 %" in out, "5 fallbacks over the 10 recalls since the restart"


def test_render_escapes_what_it_shows():
    probes = {"<script>x</script>": {"status": "degraded", "critical": False, "consecutive_failures": 1,
                                      "latency_ms": 1.0, "reason": "a < b & c"}}
    out = render([row(0, "closed", 0, probes=probes)])
    assert "<script>" not in out and "&lt;script&gt;" in out and "a &lt; b &amp; c" in out


def test_render_without_samples():
    assert "No samples yet" in render([])


def test_monitor_polls_a_live_engine_and_stops():
    g = axonal.Graph.from_edges([0, 1, 2, 3, 4], [1, 2, 3, 4, 0], [1.0] * 5)
    config = {"breaker": {"window_size": 10, "min_calls": 5, "cooldown_ms": 600000, "max_cooldown_ms": 600000}}
    with axonal.Engine(g, config) as e:
        monitor = Monitor(e, interval=0.02, history=5)
        monitor.poll()
        e.set_chaos(failure_rate=1.0, seed=2)
        for _ in range(10):
            e.recall([0])
        monitor.poll()
        rows = monitor.history
        rows = rows.to_dict("records") if hasattr(rows, "to_dict") else rows
        assert [r["breaker"] for r in rows] == ["closed", "open"]
        assert rows[-1]["fallback_error"] >= 5
        deadline = time.monotonic() + 5  # the engine reports transitions from its callback thread
        while 'class="transition"' not in monitor._repr_html_() and time.monotonic() < deadline:
            time.sleep(0.01)
        assert "<title>breaker closed → open</title>" in monitor._repr_html_(), "as the engine reported it"
        monitor.mark("after the faults")
        assert "after the faults" not in monitor._repr_html_(), "a mark after the last sample waits for one"
        time.sleep(0.005)  # the next sample's time (in ms) is after the mark's
        monitor.poll()
        assert "<title>after the faults</title>" in monitor._repr_html_()
        monitor.start()
        deadline = time.monotonic() + 10
        while len(monitor.history) < 5 and time.monotonic() < deadline:
            time.sleep(0.01)
        time.sleep(0.1)  # a few more polls: still 5
        monitor.stop()
        assert len(monitor.history) == 5, "bounded by history"
        assert not any(t.name == "axonal-monitor" for t in threading.enumerate())


def test_row_of_reads_a_real_snapshot():
    g = axonal.Graph.from_edges([0], [1], [1.0])
    with axonal.Engine(g) as e:
        e.recall([0])
        r = row_of(e.snapshot())
        deadline = time.monotonic() + 5
        while r["total_count"] == 0 and time.monotonic() < deadline:  # the window closes each second
            time.sleep(0.05)
            r = row_of(e.snapshot())
    assert r["total_count"] == 1 and r["total_p50_ms"] > 0, "the last second's latency"
    assert r["failures_total"] == 0
    assert r["breaker"] == "closed" and r["health"] in ("healthy", "degraded", "unhealthy")
    assert set(r["probes"]) == {"spreading", "spreading_live", "graph"}
    assert (r["graph_version"], r["graph_edges"], r["graph_delta_edges"], r["graph_compactions_total"]) == (0, 1, 0, 0)


def test_controls_act_on_the_engine_when_ipywidgets_is_installed():
    pytest.importorskip("ipywidgets")
    g = axonal.Graph.from_edges([0, 1], [1, 2], [1.0, 1.0])
    with axonal.Engine(g) as e:
        monitor = Monitor(e)
        override, chaos, tuner = monitor.controls().children
        override.value = "forced_open"
        assert e.breaker_override == "forced_open" and e.recall([0]).reason == "breaker_open"
        override.value = "auto"
        chaos.value = True
        assert e.recall([0]).reason == "error", "injected failures on"
        chaos.value = False
        assert e.recall([0]).source == "spreading"
        tuner.value = not tuner.value
        assert e.config["autotune"]["enabled"] == tuner.value
        assert [label for _, label in monitor._marks] == [
            "breaker forced_open", "breaker auto", "failures on", "failures off", f"tuner {'on' if tuner.value else 'off'}"]


def test_monitor_rejects_bad_arguments():
    with pytest.raises(ValueError, match="interval"):
        Monitor(object(), interval=0)
    with pytest.raises(ValueError, match="history"):
        Monitor(object(), history=0)


def test_history_is_a_dataframe_and_plot_draws_with_matplotlib():
    pandas = pytest.importorskip("pandas")
    pytest.importorskip("matplotlib")
    import matplotlib

    matplotlib.use("Agg")
    g = axonal.Graph.from_edges([0, 1], [1, 2], [1.0, 1.0])
    with axonal.Engine(g) as e:
        monitor = Monitor(e, interval=0.05)
        for _ in range(3):
            e.recall([0])
            monitor.poll()
        frame = monitor.history
        assert isinstance(frame, pandas.DataFrame) and len(frame) == 3
        assert list(frame["recalls_total"]) == [1, 2, 3]
        fig = monitor.plot()
        assert len(fig.axes) == 5, "one panel per tier and the breaker"
        import math

        cold = fig.axes[3].lines[0].get_ydata()
        counts = list(frame["cold_count"])
        assert all(math.isnan(y) == (c == 0) for y, c in zip(cold, counts)), "gaps exactly where nothing ran"

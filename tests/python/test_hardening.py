"""Revision 2 hardening at the Python surface: no input, stuck callback or hostile setting can hurt
the host (docs/spec.md §2, §4, §6, §7, §11, §12)."""

import resource
import subprocess
import sys
import textwrap
import threading
import time
import warnings

import numpy as np
import pytest

import axonal


def cycle(n=5):
    return axonal.Graph.from_edges(list(range(n)), [(i + 1) % n for i in range(n)], [1.0] * n)


def run_capped(code, cap_bytes=2 << 30, timeout=120):
    """Run `code` in a fresh interpreter whose address space is capped (as `ulimit -v` does), so an
    eager allocation would abort that child, not this test run."""

    def cap():
        resource.setrlimit(resource.RLIMIT_AS, (cap_bytes, cap_bytes))

    return subprocess.run(
        [sys.executable, "-c", textwrap.dedent(code)],
        capture_output=True,
        text=True,
        timeout=timeout,
        preexec_fn=cap,
    )


# --- huge counts are errors, never an abort ---


def test_huge_node_counts_are_graph_errors_naming_the_bytes(tmp_path):
    tsv = tmp_path / "huge.tsv"
    tsv.write_text("3000000000\t1\t0.5\n")
    child = run_capped(
        f"""
        import axonal
        for make in (lambda: axonal.Graph.from_edges([0], [1], [0.5], num_nodes=2**31),
                     lambda: axonal.Graph.from_tsv({str(tsv)!r}),
                     lambda: axonal.Graph.from_edges([0], [1], [0.5], num_nodes=600_000_000)):
            try:
                make()
                print("BUILT")
            except axonal.GraphError as e:
                print("ERROR", e)
        """
    )
    assert child.returncode == 0, child.stderr
    lines = child.stdout.splitlines()
    assert len(lines) == 3, child.stdout
    assert "2147483648 nodes" in lines[0] and "bytes needed" in lines[0], lines[0]
    assert "3000000001 nodes" in lines[1] and "bytes needed" in lines[1], lines[1]
    # 600 M nodes (≈ 15 GB) may fit the machine but not the capped address space: refused either way.
    assert lines[2].startswith("ERROR") and "600000000 nodes" in lines[2], lines[2]


# --- a stuck callback never hangs close() or interpreter exit ---


def test_a_transition_callback_that_never_returns_does_not_hang_close():
    release = threading.Event()
    entered = threading.Event()
    seen = []
    e = axonal.Engine(cycle(), {"callbacks": {"timeout_ms": 200}})

    def stuck(event):
        entered.set()
        release.wait()

    e.on_breaker_transition(stuck)
    e.on_breaker_transition(lambda event: seen.append(event["to"]))
    e.breaker_override = "forced_open"
    assert entered.wait(5)
    deadline = time.monotonic() + 5
    while not seen and time.monotonic() < deadline:
        time.sleep(0.01)
    assert seen == ["open"], "the next callback still hears of the transition"
    assert e.snapshot()["totals"]["counters"]["spreading_callback_timeouts_total"] == 1
    start = time.monotonic()
    e.close()
    took = time.monotonic() - start
    release.set()
    assert took < 1.5, f"close() took {took:.2f} s with a callback stuck"


def test_interpreter_exit_is_bounded_by_the_callback_timeout():
    child = subprocess.run(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                """
                import threading, axonal
                g = axonal.Graph.from_edges([0, 1], [1, 0], [1.0, 1.0])
                e = axonal.Engine(g, {"callbacks": {"timeout_ms": 300}})
                e.on_breaker_transition(lambda event: threading.Event().wait())
                e.breaker_override = "forced_open"
                print("exiting")
                """
            ),
        ],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert child.returncode == 0, child.stderr
    assert "exiting" in child.stdout


# --- hostile settings ---


def test_serving_beyond_loopback_with_a_token_warns_and_reports_a_connectable_url():
    with axonal.Engine(cycle()) as e:
        with pytest.warns(RuntimeWarning, match="travels in clear"):
            server = e.serve_http("0.0.0.0:0", admin_token="t0ken")
        assert server.url.startswith("http://127.0.0.1:"), server.url
        server.stop()
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            e.serve_http("127.0.0.1:0", admin_token="t0ken").stop()
            e.serve_http("0.0.0.0:0").stop()


def test_serve_http_takes_the_limits():
    with axonal.Engine(cycle()) as e:
        server = e.serve_http("127.0.0.1:0", max_connections=4, header_timeout=1.5, request_timeout=2.0, max_body_bytes=1024)
        server.stop()
        with pytest.raises(axonal.ConfigError, match="max_connections"):
            e.serve_http("127.0.0.1:0", max_connections=0)
        with pytest.raises(axonal.ConfigError, match="header_timeout"):
            e.serve_http("127.0.0.1:0", header_timeout=-1)


# --- input the binding used to accept silently ---


def test_per_node_inputs_must_cover_every_node():
    with pytest.raises(axonal.GraphError, match="tiers: 2 entries for a graph of 3 nodes"):
        axonal.Graph.from_edges([0, 1], [1, 2], [1.0, 1.0], tiers=["hot", "warm"])
    with pytest.raises(axonal.GraphError, match="tiers: 2 entries"):
        axonal.Graph.from_edges([0, 1], [1, 2], [1.0, 1.0], tiers=np.array([0, 1], dtype=np.uint8))
    with pytest.raises(axonal.GraphError, match="labels: 1 entries for a graph of 3 nodes"):
        axonal.Graph.from_edges([0, 1], [1, 2], [1.0, 1.0], labels=["a"])
    with pytest.raises(axonal.GraphError, match="embeddings: 2 entries for a graph of 3 nodes"):
        axonal.Graph.from_edges([0, 1], [1, 2], [1.0, 1.0], embeddings=np.ones((2, 4), dtype=np.float32))
    with pytest.raises(axonal.GraphError, match="tiers: 4 entries"):
        axonal.Graph.from_edges([0, 1], [1, 2], [1.0, 1.0], tiers=["hot"] * 4)
    g = axonal.Graph.from_edges([0, 1], [1, 2], [1.0, 1.0], tiers=np.array([0, 1, 2], dtype=np.uint8))
    assert g.num_nodes == 3


def test_complex_weights_are_type_errors():
    with pytest.raises(TypeError, match=r"weight\[1\]: \(0.5\+1j\) \(complex\) is not a real number"):
        axonal.Graph.from_edges([0, 1], [1, 0], [0.5, 0.5 + 1j])
    with pytest.raises(TypeError, match="complex array"):
        axonal.Graph.from_edges([0], [1], np.array([0.5 + 0j]))


def test_non_callables_are_refused_at_registration():
    with axonal.Engine(cycle()) as e:
        with pytest.raises(TypeError, match=r"register_probe: fn must be callable, got 5 \(int\)"):
            e.register_probe("p", 5)
        with pytest.raises(TypeError, match=r"on_breaker_transition: fn must be callable, got None"):
            e.on_breaker_transition(None)
        assert set(e.health()["probes"]) == {"spreading", "spreading_live", "graph"}, "nothing registered"


def test_bytes_and_strings_are_not_seeds():
    with axonal.Engine(cycle()) as e:
        with pytest.raises(TypeError, match="seeds: expected"):
            e.recall(b"\x00")
        with pytest.raises(TypeError, match="seeds: expected"):
            e.recall("0")
        with pytest.raises(axonal.RecallError, match=r"seeds\[0\]: '0' \(str\) is not a node id"):
            e.recall(["0"])
        with pytest.raises(axonal.RecallError, match=r"seeds\[1\]: True \(bool\)"):
            e.recall([0, True])
        assert e.recall([0]).source == "spreading"


def test_messages_name_the_index_and_the_value_passed():
    with pytest.raises(TypeError, match=r"src\[1\]: 4294967296 \(int\) is not a node id"):
        axonal.Graph.from_edges([0, 2**32], [1, 0], [0.5, 0.5])
    with pytest.raises(TypeError, match=r"dst\[0\]: -1 \(int\)"):
        axonal.Graph.from_edges([0], [-1], [0.5])
    with pytest.raises(axonal.GraphError, match="edge 0: weight 1e-50"):
        axonal.Graph.from_edges([0], [1], [1e-50])
    with pytest.raises(axonal.GraphError, match="edge 1: weight 1.5"):
        axonal.Graph.from_edges([0, 1], [1, 0], np.array([0.5, 1.5]))


def test_a_raising_transition_callback_is_reported_once_per_failure_without_panic_text():
    child = subprocess.run(
        [
            sys.executable,
            "-c",
            textwrap.dedent(
                """
                import sys, axonal
                seen = []
                sys.unraisablehook = lambda info: seen.append(type(info.exc_value).__name__)
                g = axonal.Graph.from_edges([0, 1], [1, 0], [1.0, 1.0])
                with axonal.Engine(g) as e:
                    def broken(event):
                        raise ValueError("callback bug")
                    e.on_breaker_transition(broken)
                    for mode in ("forced_open", "auto", "forced_open", "auto"):
                        e.breaker_override = mode
                    e.snapshot()
                    import time; time.sleep(0.5)
                    failures = e.snapshot()["totals"]["counters"]["spreading_callback_failures_total"]
                print(seen, failures)
                """
            ),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert child.returncode == 0, child.stderr
    assert child.stdout.strip() == "['ValueError', 'ValueError', 'ValueError', 'ValueError'] 4", child.stdout
    assert "panicked" not in child.stderr and "lib.rs" not in child.stderr, child.stderr


# --- semantics of revision 2 ---


def test_k_none_is_the_configured_k():
    with axonal.Engine(cycle(10), {"recall": {"k": 2}, "spreading": {"max_depth": 6}}) as e:
        assert len(e.recall([0])) == 2
        assert len(e.recall([0], k=None)) == 2
        assert len(e.recall([0], k=5)) == 5


def test_seeding_every_node_is_not_low_mass():
    with axonal.Engine(cycle(30)) as e:
        for _ in range(30):
            r = e.recall(list(range(30)), k=30)
            assert (r.source, r.reason) == ("spreading", None)
            assert r.stats["mass"] == 0.0 and r.stats["delivered"] > 0
        assert e.breaker_state == "closed"


def test_the_live_probe_reports_an_edgeless_graph():
    with axonal.Engine(cycle(), {"health": {"interval_ms": 3600000}}) as e:
        # The start-up check (due at registration, run in the background) first.
        deadline = time.monotonic() + 10
        while e.health()["probes"]["spreading_live"]["checks_total"] < 1 and time.monotonic() < deadline:
            time.sleep(0.01)
        assert e.check("spreading_live")["reason"].startswith("idle")
        e.replace_graph(axonal.Graph.from_edges([], [], [], num_nodes=5))
        statuses = []
        for _ in range(2):
            for _ in range(30):
                e.recall([0])
            statuses.append(e.check("spreading_live")["status"])
        assert statuses == ["degraded", "unhealthy"]
        assert e.health()["status"] == "unhealthy"
        assert e.check("spreading")["status"] == "healthy", "the synthetic probe cannot see it"


def test_operator_writes_outside_the_guardrails_apply_as_given():
    with axonal.Engine(cycle(), {"spreading": {"max_depth": 1}}) as e:
        assert e.config["spreading"]["max_depth"] == 1
        assert e.recall([0]).stats["depth_reached"] == 1
        applied = e.update_config({"spreading": {"batch_size": 1000}})
        assert applied["spreading"]["batch_size"] == 1000

"""The operations assets against the real exposition (docs/spec.md §13): every metric the Grafana dashboard and
the Prometheus rules query is one a live engine exports, every recording rule the dashboard reads is
defined, and every PromQL expression parses (promtool)."""

import json
import pathlib
import re
import shutil
import subprocess

import pytest
import yaml

import axonal

ROOT = pathlib.Path(__file__).resolve().parents[2]
DASHBOARD = ROOT / "docs/operations/spreading_dashboard.json"
RULES = ROOT / "deploy/observability/prometheus/spreading.rules.yaml"

# Grafana's variables, replaced by values PromQL accepts.
GRAFANA_VARIABLES = {"$__rate_interval": "1m", "$__interval": "15s", "$__range": "1h", "$job": ".*", "$instance": ".*"}
# Tokens of a PromQL expression that name a series: identifiers not followed by "(" (a function) and
# not inside a label matcher or a string.
IDENTIFIER = re.compile(r"[a-zA-Z_:][a-zA-Z0-9_:]*")
KEYWORDS = {"by", "without", "on", "ignoring", "group_left", "group_right", "bool", "and", "or", "unless", "offset"}


def live_exposition_names():
    """Metric names of a busy engine's exposition (breaker tripped, probes run, tuner consulted)."""
    g = axonal.Graph.from_edges(list(range(50)), [(i * 7 + 1) % 50 for i in range(50)], [0.9] * 50)
    with axonal.Engine(g, {"breaker": {"min_calls": 5, "window_size": 10}}) as e:
        for i in range(20):
            e.recall([i % 50])
        e.set_chaos(failure_rate=1.0, seed=1)
        for i in range(20):
            e.recall([i % 50])
        e.clear_chaos()
        e.check("spreading")
        e.autotune_now()
        text = e.prometheus()
    return {line.split("{")[0].split(" ")[0] for line in text.splitlines() if line and not line.startswith("#")}


def sharded_exposition_names():
    """Metric names of the Ray layer's sharded-recall coordinator (docs/spec.md §20): its families,
    with a histogram's series; tests/python/test_ray.py checks a live one with promtool."""
    import warnings

    with warnings.catch_warnings():  # Ray's modules warn about their own Pydantic use on import
        warnings.simplefilter("ignore", DeprecationWarning)
        from axonal.ray._sharded import METRICS

    names = set()
    for name, kind, _ in METRICS:
        names |= {name + s for s in ("_bucket", "_sum", "_count")} if kind == "histogram" else {name}
    return names


def series_names(expr):
    """Series names an expression reads (metric names and recording-rule names)."""
    expr = re.sub(r'"(?:[^"\\]|\\.)*"', '""', expr)  # drop string literals
    expr = re.sub(r"\{[^}]*\}", "{}", expr)  # drop label matchers
    expr = re.sub(r"\b(by|without|on|ignoring|group_left|group_right)\s*\([^)]*\)", " ", expr)  # label lists
    expr = re.sub(r"\[[^\]]*\]", "[]", expr)  # range durations
    names = set()
    for match in IDENTIFIER.finditer(expr):
        name = match.group(0)
        rest = expr[match.end() :].lstrip()
        if name in KEYWORDS or rest.startswith("("):
            continue
        if re.fullmatch(r"[0-9a-z_]*[0-9]+[smhdwy]", name):  # a duration like 5m
            continue
        names.add(name)
    return names


def substitute(expr):
    for variable, value in GRAFANA_VARIABLES.items():
        expr = expr.replace("${" + variable[1:] + "}", value).replace(variable, value)
    return expr


def dashboard_exprs():
    dashboard = json.loads(DASHBOARD.read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    exprs += [a["expr"] for a in dashboard["annotations"]["list"]]
    return dashboard, [substitute(e) for e in exprs]


def rules():
    return [r for group in yaml.safe_load(RULES.read_text())["groups"] for r in group["rules"]]


def test_every_metric_the_dashboard_and_rules_read_is_exported():
    exported = live_exposition_names() | sharded_exposition_names()
    recorded = {r["record"] for r in rules() if "record" in r}
    _, exprs = dashboard_exprs()
    exprs += [r["expr"] for r in rules()]
    read = set().union(*(series_names(e) for e in exprs))
    assert read, "no series found: the extraction is broken"
    unknown = sorted(n for n in read if n not in exported and n not in recorded)
    assert not unknown, f"queried but neither exported nor recorded: {unknown}"
    # The dashboard reads the recording rules it relies on, and those read exported metrics.
    assert {"job:axonal_spreading_latency_slo_burn:rate5m", "job:axonal_spreading_breaker_open:ratio"} <= read


def test_the_extraction_catches_a_misspelt_metric():
    assert series_names('sum by (tier) (rate(axonal_spreading_latencyy_seconds_bucket{tier="hot"}[5m]))') == {
        "axonal_spreading_latencyy_seconds_bucket"
    }
    assert "axonal_spreading_latencyy_seconds_bucket" not in live_exposition_names()


def test_the_dashboard_shows_what_operators_need():
    dashboard, exprs = dashboard_exprs()
    text = "\n".join(exprs)
    for needle in [
        "histogram_quantile(0.50, sum by (tier, le) (rate(axonal_spreading_latency_seconds_bucket",
        "histogram_quantile(0.95, sum by (tier, le) (rate(axonal_spreading_latency_seconds_bucket",
        "histogram_quantile(0.99, sum by (tier, le) (rate(axonal_spreading_latency_seconds_bucket",
        "axonal_spreading_breaker_state",
        "sum by (reason) (rate(axonal_spreading_fallback_total",
        "axonal_spreading_gpu_launches_total",
        "axonal_spreading_gpu_fallback_total",
        "axonal_spreading_pool_utilization",
        "axonal_spreading_autotune_changes_total",
        "axonal_spreading_health_status",
        "instance:axonal_spreading_graph_compaction_lag:ratio",
        "axonal_spreading_graph_batches_rejected_total",
        "axonal_spreading_graph_compaction_seconds_bucket",
        "axonal_spreading_graph_snapshot_load_seconds_bucket",
        "axonal_spreading_similarity_query_seconds_bucket",
        "axonal_spreading_similarity_index_size",
        "axonal_spreading_similarity_index_lag_nodes",
        "axonal_spreading_similarity_index_build_seconds_bucket",
    ]:
        assert needle in text, f"the dashboard has no query with {needle!r}"
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids are unique"


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool (Debian's prometheus) is not installed")
def test_every_dashboard_expression_parses(tmp_path):
    _, exprs = dashboard_exprs()
    check = {"groups": [{"name": "dashboard", "rules": [{"record": f"dashboard:expr_{i}", "expr": e} for i, e in enumerate(exprs)]}]}
    path = tmp_path / "dashboard.rules.yaml"
    path.write_text(yaml.safe_dump(check))
    result = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stdout + result.stderr
    assert f"SUCCESS: {len(exprs)} rules found" in result.stdout

    path.write_text(yaml.safe_dump({"groups": [{"name": "bad", "rules": [{"record": "x:y", "expr": "sum by (job (rate(a[5m]))"}]}]}))
    assert subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True).returncode != 0, "promtool rejects bad PromQL"

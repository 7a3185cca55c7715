"""Engine.serve_http (docs/spec.md §11, §12) from Python over real sockets: the endpoints, the admin token,
errors as typed exceptions, and the server's lifetime tied to the engine's."""

import json
import urllib.error
import urllib.request

import pytest

import axonal


def cycle(n=5):
    return axonal.Graph.from_edges(list(range(n)), [(i + 1) % n for i in range(n)], [1.0] * n)


def call(url, method="GET", body=None, token=None):
    request = urllib.request.Request(url, method=method, data=None if body is None else json.dumps(body).encode())
    if body is not None:
        request.add_header("Content-Type", "application/json")
    if token is not None:
        request.add_header("Authorization", f"Bearer {token}")
    try:
        with urllib.request.urlopen(request, timeout=10) as reply:
            return reply.status, reply.read().decode()
    except urllib.error.HTTPError as e:
        return e.code, e.read().decode()


def test_endpoints_serve_the_live_engine():
    with axonal.Engine(cycle()) as e:
        with e.serve_http("127.0.0.1:0") as server:
            host, port = server.address
            assert host == "127.0.0.1" and port > 0
            assert server.url == f"http://127.0.0.1:{port}"
            e.recall([0])
            status, body = call(server.url + "/health/spreading")
            assert status == 200
            assert json.loads(body)["latency_budget_ms"] == 50.0
            status, body = call(server.url + "/metrics")
            assert status == 200 and "\naxonal_spreading_recalls_total 1\n" in body
            status, body = call(server.url + "/api/v1/system/metrics/spreading")
            assert json.loads(body)["recalls_total"] == 1
            status, body = call(server.url + "/nope")
            assert status == 404 and json.loads(body)["error"] == "not_found"


def test_admin_writes_need_the_token():
    with axonal.Engine(cycle()) as e:
        read_only = e.serve_http("127.0.0.1:0")
        assert call(read_only.url + "/api/v1/system/spreading/config", "PUT", {"autotune_enabled": False})[0] == 403
        server = e.serve_http("127.0.0.1:0", admin_token="hunter2")
        url = server.url + "/api/v1/system/spreading/config"
        assert call(url, "PUT", {"autotune_enabled": False}, token="wrong")[0] == 403
        status, body = call(url, "PUT", {"breaker_override": "forced_open", "chaos": {"failure_rate": 0.5}}, token="hunter2")
        assert status == 200, body
        assert e.breaker_override == "forced_open"
        assert e.recall([0]).reason == "breaker_open"
        status, body = call(url, "PUT", {"config": {"spreading": {"decay": 3}}}, token="hunter2")
        assert status == 400 and "spreading.decay" in json.loads(body)["message"]
        read_only.stop()
        server.stop()


def test_bad_addresses_are_config_errors():
    with axonal.Engine(cycle()) as e:
        with e.serve_http("127.0.0.1:0") as server:
            with pytest.raises(axonal.ConfigError, match="http.addr"):
                e.serve_http(f"127.0.0.1:{server.address[1]}")
        with pytest.raises(axonal.ConfigError, match="admin_token"):
            e.serve_http("127.0.0.1:0", admin_token="")


def test_closing_the_engine_stops_its_servers():
    e = axonal.Engine(cycle())
    server = e.serve_http("127.0.0.1:0")
    url = server.url
    assert call(url + "/health/spreading")[0] == 200
    e.close()
    with pytest.raises(urllib.error.URLError):
        urllib.request.urlopen(url + "/health/spreading", timeout=5)
    server.stop()  # still safe
    with pytest.raises(axonal.ClosedError):
        e.serve_http("127.0.0.1:0")

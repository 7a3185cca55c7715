//! The HTTP surface over real sockets (docs/spec.md §12): every endpoint, every error class, admin writes and
//! their token, size and time limits, hostile clients, and the server's independence from the engine.
#![cfg(feature = "http")]

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axonal_core::ToJson;
use axonal_core::http::HttpOptions;
use axonal_core::{BreakerOverride, Cue, Engine, EngineConfig, ErrorKind, GraphBuilder};
use serde_json::{Value, json};

mod common;
use common::eventually;

const TOKEN: &str = "s3cret-token";

fn engine() -> Arc<Engine> {
    let mut b = GraphBuilder::new(6);
    for (s, d) in [(0, 1), (1, 2), (2, 3), (3, 4), (4, 0), (0, 5)] {
        b.add_edge(s, d, 0.9).unwrap();
    }
    // Probes run only when asked (interval far away) so the tests decide when health changes.
    let config = EngineConfig::default()
        .patched(&json!({"health": {"interval_ms": 3_600_000}, "autotune": {"interval_ms": 3_600_000}}))
        .unwrap();
    Arc::new(Engine::new(b.build().unwrap(), config).unwrap())
}

fn options() -> HttpOptions {
    HttpOptions::default().with_admin_token(Some(TOKEN.into()))
}

struct Reply {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Reply {
    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }

    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }
}

/// Send `raw` bytes and read the reply to EOF (requests say `Connection: close`).
fn send_raw(addr: SocketAddr, raw: &[u8]) -> Reply {
    try_send_raw(addr, raw).unwrap()
}

fn try_send_raw(addr: SocketAddr, raw: &[u8]) -> std::io::Result<Reply> {
    let mut stream = TcpStream::connect(addr)?;
    stream.set_read_timeout(Some(Duration::from_secs(10)))?;
    stream.write_all(raw)?;
    let mut text = Vec::new();
    stream.read_to_end(&mut text)?;
    let text = String::from_utf8_lossy(&text);
    if !text.contains("\r\n\r\n") {
        return Err(std::io::Error::new(std::io::ErrorKind::UnexpectedEof, "closed without a reply"));
    }
    Ok(parse_reply(&text))
}

/// The spreading probe's `checks_total` once the registry's start-up check has run.
fn checks_after_startup(engine: &Engine) -> u64 {
    let checks = || engine.health_report().to_json()["probes"]["spreading"]["checks_total"].as_u64().unwrap();
    assert!(eventually(Duration::from_secs(10), || checks() >= 1), "the start-up check never ran");
    checks()
}

fn parse_reply(text: &str) -> Reply {
    let (head, body) = text.split_once("\r\n\r\n").unwrap_or_else(|| panic!("no HTTP reply: {text:?}"));
    let mut lines = head.lines();
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers = lines
        .filter_map(|l| l.split_once(':'))
        .map(|(n, v)| (n.trim().to_string(), v.trim().to_string()))
        .collect();
    Reply { status, headers, body: body.to_string() }
}

fn request(addr: SocketAddr, method: &str, path: &str, extra_headers: &[&str], body: &str) -> Reply {
    let mut raw = format!("{method} {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n");
    for h in extra_headers {
        raw.push_str(h);
        raw.push_str("\r\n");
    }
    raw.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    send_raw(addr, raw.as_bytes())
}

fn get(addr: SocketAddr, path: &str) -> Reply {
    request(addr, "GET", path, &[], "")
}

fn put_config(addr: SocketAddr, token: Option<&str>, body: &str) -> Reply {
    put_authorized(addr, token.map(|t| format!("Bearer {t}")).as_deref(), body)
}

/// `PUT` the config with `authorization` as the header's value (`None`: no header).
fn put_authorized(addr: SocketAddr, authorization: Option<&str>, body: &str) -> Reply {
    let auth = authorization.map(|a| format!("Authorization: {a}"));
    let mut headers = vec!["Content-Type: application/json"];
    headers.extend(auth.as_deref());
    request(addr, "PUT", "/api/v1/system/spreading/config", &headers, body)
}

#[test]
fn every_read_endpoint_answers_from_the_live_engine() {
    let engine = engine();
    let server = axonal_core::http::serve(&engine, "127.0.0.1:0", options()).unwrap();
    let addr = server.local_addr();
    assert_ne!(addr.port(), 0, "port 0 resolves to the real port");
    assert_eq!(server.url(), format!("http://{addr}"));
    for _ in 0..7 {
        engine.recall(&Cue::nodes([0])).unwrap();
    }
    let checks = checks_after_startup(&engine);

    let health = get(addr, "/health/spreading");
    assert_eq!(health.status, 200);
    assert_eq!(health.header("content-type"), Some("application/json"));
    let body = health.json();
    assert_eq!(body["status"], "healthy");
    assert_eq!(body["latency_budget_ms"], 50.0);
    assert_eq!(body["probe"]["checks_total"], checks);
    assert!(body["checked_at"].is_u64());

    let report = get(addr, "/api/v1/system/health").json();
    assert_eq!(report["schema"], "axonal.health.v1");
    assert_eq!(report["probes"]["spreading"]["status"], "healthy");

    let spreading = get(addr, "/api/v1/system/metrics/spreading").json();
    assert_eq!(spreading["recalls_total"], 7);
    assert_eq!(spreading["breaker"]["state"], "closed");

    let view = get(addr, "/api/v1/system/spreading/config").json();
    assert_eq!(view["schema"], "axonal.config_view.v1");
    assert_eq!(view["config"]["spreading"]["max_depth"], 3);
    assert_eq!(view["guardrails"]["max_depth"], json!([2, 6]));
    assert_eq!(view["autotune"]["enabled"], true);
    assert_eq!(view["autotune"]["audit"]["schema"], "axonal.audit.v1");
    assert!(view["autotune"]["state"].is_object());
    assert_eq!(view["breaker"], json!({"state": "closed", "override": "auto"}));
    assert_eq!(view["chaos"], Value::Null);

    let metrics = get(addr, "/metrics");
    assert_eq!(metrics.status, 200);
    assert!(metrics.header("content-type").unwrap().starts_with("text/plain; version=0.0.4"));
    assert!(metrics.body.contains("\naxonal_spreading_recalls_total 7\n"), "{}", metrics.body);
}

#[test]
fn health_endpoint_serves_the_cached_report_and_turns_503_when_unhealthy() {
    let engine = engine();
    let server = axonal_core::http::serve(&engine, "127.0.0.1:0", options()).unwrap();
    let addr = server.local_addr();
    let checks = checks_after_startup(&engine);
    for _ in 0..20 {
        assert_eq!(get(addr, "/health/spreading").status, 200);
    }
    // The handler ran no probe.
    assert_eq!(engine.health_report().to_json()["probes"]["spreading"]["checks_total"], checks);

    engine.set_chaos_json(r#"{"failure_rate": 1.0, "seed": 3}"#).unwrap();
    engine.check_probe("spreading").unwrap().to_json();
    let degraded = get(addr, "/health/spreading");
    assert_eq!((degraded.status, degraded.json()["status"].as_str()), (200, Some("degraded")));
    engine.check_probe("spreading").unwrap().to_json();
    let unhealthy = get(addr, "/health/spreading");
    assert_eq!(unhealthy.status, 503);
    assert_eq!(unhealthy.json()["status"], "unhealthy");
    assert_eq!(unhealthy.json()["probe"]["consecutive_failures"], 2);

    engine.clear_chaos();
    engine.check_probe("spreading").unwrap().to_json();
    engine.check_probe("spreading").unwrap().to_json();
    assert_eq!(get(addr, "/health/spreading").status, 200);
}

#[test]
fn health_endpoint_turns_503_when_live_recalls_deliver_nothing() {
    let engine = engine();
    let server = axonal_core::http::serve(&engine, "127.0.0.1:0", options()).unwrap();
    let addr = server.local_addr();
    let live_checks =
        || engine.health_report().to_json()["probes"]["spreading_live"]["checks_total"].as_u64().unwrap();
    assert!(eventually(Duration::from_secs(10), || live_checks() >= 1), "the start-up check never ran");
    engine.health().settle();
    // An edgeless graph swapped in while cues keep coming: the synthetic probe cannot see it.
    engine.replace_graph(GraphBuilder::new(6).build().unwrap());
    for _ in 0..2 {
        for _ in 0..25 {
            engine.recall(&Cue::nodes([0])).unwrap();
        }
        engine.check_probe("spreading_live").unwrap().to_json();
    }
    let reply = get(addr, "/health/spreading");
    assert_eq!(reply.status, 503, "{}", reply.body);
    let body = reply.json();
    assert_eq!(body["status"], "unhealthy");
    assert_eq!(body["probe"]["status"], "healthy", "the synthetic probe");
    assert_eq!(body["probes"]["spreading_live"]["status"], "unhealthy");
    let reason = body["probes"]["spreading_live"]["reason"].as_str().unwrap();
    assert!(reason.contains("25 of 25 live recalls") && reason.contains("no activation"), "{reason}");
}

#[test]
fn unknown_paths_and_methods_get_json_errors() {
    let engine = engine();
    let server = axonal_core::http::serve(&engine, "127.0.0.1:0", options()).unwrap();
    let addr = server.local_addr();

    let missing = get(addr, "/nope");
    assert_eq!(missing.status, 404);
    assert_eq!(missing.json()["error"], "not_found");

    let wrong = request(addr, "POST", "/metrics", &[], "");
    assert_eq!(wrong.status, 405);
    assert_eq!(wrong.header("allow"), Some("GET, HEAD"));
    assert_eq!(wrong.json()["error"], "method_not_allowed");
    let delete = request(addr, "DELETE", "/api/v1/system/spreading/config", &[], "");
    assert_eq!((delete.status, delete.header("allow")), (405, Some("GET, HEAD, PUT")));

    // HEAD is answered like GET, without a body (load balancers and `curl -I` use it).
    let head = request(addr, "HEAD", "/health/spreading", &[], "");
    assert_eq!(head.status, 200);
    assert_eq!(head.header("content-type"), Some("application/json"));
    assert!(head.body.is_empty(), "{:?}", head.body);

    // Not HTTP at all: hyper answers 400 and closes.
    let garbage = send_raw(addr, b"\x16\x03\x01 hello there\r\n\r\n");
    assert_eq!(garbage.status, 400);
    // The server still serves.
    assert_eq!(get(addr, "/metrics").status, 200);
}

#[test]
fn admin_writes_need_the_configured_token() {
    let engine = engine();
    let read_only = axonal_core::http::serve(&engine, "127.0.0.1:0", HttpOptions::default()).unwrap();
    let refused = put_config(read_only.local_addr(), Some(TOKEN), r#"{"breaker_override": "forced_open"}"#);
    assert_eq!(refused.status, 403);
    assert!(refused.json()["message"].as_str().unwrap().contains("without an admin token"));

    let server = axonal_core::http::serve(&engine, "127.0.0.1:0", options()).unwrap();
    let addr = server.local_addr();
    for token in [None, Some("wrong"), Some("s3cret-tokeN"), Some("s3cret-token-and-more"), Some("")] {
        let reply = put_config(addr, token, r#"{"breaker_override": "forced_open"}"#);
        assert_eq!(reply.status, 403, "token {token:?}");
        assert_eq!(reply.json()["error"], "forbidden");
    }
    assert_eq!(engine.breaker_override(), BreakerOverride::Auto, "nothing applied without the token");
    let write = r#"{"breaker_override": "forced_open"}"#;
    let basic = put_authorized(addr, Some(&format!("Basic {TOKEN}")), write);
    assert_eq!(basic.status, 403, "only the bearer scheme carries the token");

    // The scheme is case-insensitive (RFC 9110).
    let lower = put_authorized(addr, Some(&format!("bearer {TOKEN}")), write);
    assert_eq!(lower.status, 200, "{}", lower.body);
    assert_eq!(engine.breaker_override(), BreakerOverride::ForcedOpen);
}

#[test]
fn admin_writes_apply_config_override_tuner_and_chaos() {
    let engine = engine();
    let server = axonal_core::http::serve(&engine, "127.0.0.1:0", options()).unwrap();
    let addr = server.local_addr();

    let body = json!({
        "config": {"spreading": {"max_depth": 4, "batch_size": 4096}},
        "breaker_override": "forced_open",
        "autotune_enabled": false,
        "chaos": {"latency_ms": {"cold": 5}, "failure_rate": 0.5, "seed": 9},
    });
    let reply = put_config(addr, Some(TOKEN), &body.to_string());
    assert_eq!(reply.status, 200, "{}", reply.body);
    let answer = reply.json();
    // Guardrails bound the tuner, not the operator: batch_size 4096 applies, pinned.
    assert_eq!(answer["applied"]["config"]["spreading"]["batch_size"], 4096);
    assert_eq!(answer["current"]["pinned"], json!(["spreading.batch_size"]));
    assert_eq!(answer["applied"]["breaker_override"], "forced_open");
    assert_eq!(answer["current"]["config"]["spreading"]["max_depth"], 4);
    assert_eq!(answer["current"]["breaker"]["override"], "forced_open");
    assert_eq!(answer["current"]["autotune"]["enabled"], false);
    assert_eq!(answer["current"]["chaos"]["failure_rate"], 0.5);

    assert_eq!(engine.config().spreading.max_depth, 4);
    assert_eq!(engine.config().spreading.batch_size, 4096);
    assert_eq!(engine.breaker_override(), BreakerOverride::ForcedOpen);
    assert!(!engine.autotune_enabled());
    assert_eq!(engine.chaos().unwrap().failure_rate, 0.5);

    let clear = put_config(addr, Some(TOKEN), r#"{"chaos": null, "breaker_override": "auto"}"#);
    assert_eq!(clear.status, 200, "{}", clear.body);
    assert!(engine.chaos().is_none());
    assert_eq!(engine.breaker_override(), BreakerOverride::Auto);
    let view = get(addr, "/api/v1/system/spreading/config").json();
    assert_eq!(view["chaos"], Value::Null);
}

#[test]
fn malformed_or_invalid_writes_get_400_naming_the_problem_and_apply_nothing() {
    let engine = engine();
    let server = axonal_core::http::serve(&engine, "127.0.0.1:0", options()).unwrap();
    let addr = server.local_addr();
    let before = engine.config();
    let cases = [
        ("{not json", "malformed JSON"),
        ("[1, 2]", "expected a JSON object"),
        ("{}", "empty write"),
        (r#"{"breaker_override": "forced_open", "colour": 1}"#, "colour"),
        (r#"{"breaker_override": "forced_open", "config": {"spreading": {"decay": 7}}}"#, "spreading.decay"),
        (r#"{"breaker_override": "forced_open", "config": {"spreading": {"depth": 3}}}"#, "depth"),
        (r#"{"breaker_override": "sideways"}"#, "sideways"),
        (r#"{"breaker_override": "forced_open", "autotune_enabled": "yes"}"#, "autotune_enabled"),
        (r#"{"breaker_override": "forced_open", "chaos": {"failure_rate": 2}}"#, "chaos.failure_rate"),
        // Object-shaped inputs are objects: an array would fill fields by position.
        (r#"{"chaos": [{"hot": 5}, 0, 1.0]}"#, "chaos: must be a JSON object, got an array"),
        (r#"{"chaos": {"latency_ms": [5, 0, 0]}}"#, "chaos.latency_ms: must be a JSON object"),
        (r#"{"config": [1]}"#, "config: must be a JSON object"),
        (r#"{"config": {"spreading": [3]}}"#, "spreading: must be an object"),
    ];
    for (body, needle) in cases {
        let reply = put_config(addr, Some(TOKEN), body);
        assert_eq!(reply.status, 400, "{body}: {}", reply.body);
        let message = reply.json()["message"].as_str().unwrap().to_string();
        assert!(message.contains(needle), "{body}: message {message:?} should name {needle:?}");
    }
    assert_eq!(engine.config(), before, "a rejected write changes nothing");
    assert_eq!(engine.breaker_override(), BreakerOverride::Auto);
    assert!(engine.chaos().is_none());

    let text = request(
        addr,
        "PUT",
        "/api/v1/system/spreading/config",
        &["Content-Type: text/plain", &format!("Authorization: Bearer {TOKEN}")],
        r#"{"breaker_override": "forced_open"}"#,
    );
    assert_eq!(text.status, 415);
    assert_eq!(text.json()["error"], "unsupported_media_type");
}

#[test]
fn oversized_bodies_get_413() {
    let engine = engine();
    let options = HttpOptions { max_body_bytes: 1024, ..options() };
    let server = axonal_core::http::serve(&engine, "127.0.0.1:0", options).unwrap();
    let big = format!(r#"{{"config": {{}}, "pad": "{}"}}"#, "x".repeat(4096));
    let reply = put_config(server.local_addr(), Some(TOKEN), &big);
    assert_eq!(reply.status, 413);
    assert!(reply.json()["message"].as_str().unwrap().contains("1024 bytes"));
}

#[test]
fn slow_clients_are_cut_off_and_never_block_others_or_recalls() {
    let engine = engine();
    let options = HttpOptions { header_timeout_ms: 2_000, request_timeout_ms: 2_000, ..options() };
    let server = axonal_core::http::serve(&engine, "127.0.0.1:0", options).unwrap();
    let addr = server.local_addr();

    // Slowloris: half a request line, then silence.
    let mut slow_headers = TcpStream::connect(addr).unwrap();
    slow_headers.write_all(b"GET /metrics HTTP/1.1\r\nHost: x\r\n").unwrap();
    // Slow body: headers promise 100 bytes, 10 arrive.
    let mut slow_body = TcpStream::connect(addr).unwrap();
    let head = format!(
        "PUT /api/v1/system/spreading/config HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Length: 100\r\n\r\n{{\"chaos\":"
    );
    slow_body.write_all(head.as_bytes()).unwrap();

    // Meanwhile other clients and recalls go on at full speed.
    let started = Instant::now();
    for _ in 0..20 {
        assert_eq!(get(addr, "/health/spreading").status, 200);
        engine.recall(&Cue::nodes([1])).unwrap();
    }
    // Had they waited for the slow clients, this would take the 2 s timeout.
    assert!(
        started.elapsed() < Duration::from_millis(1_500),
        "other clients waited: {:?}",
        started.elapsed()
    );

    slow_headers.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut rest = Vec::new();
    let _ = slow_headers.read_to_end(&mut rest); // EOF (or reset) once the header timeout fires
    assert!(started.elapsed() < Duration::from_secs(6), "slowloris connection was not closed");

    slow_body.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
    let mut text = String::new();
    let _ = slow_body.read_to_string(&mut text);
    let reply = parse_reply(&text);
    assert_eq!(reply.status, 408, "{text}");
    assert!(engine.chaos().is_none());
}

#[test]
fn at_the_connection_cap_idle_connections_give_way_and_busy_ones_do_not() {
    let engine = engine();
    let options = HttpOptions { max_connections: 2, ..options() };
    let server = axonal_core::http::serve(&engine, "127.0.0.1:0", options).unwrap();
    let addr = server.local_addr();
    let request = b"GET /metrics HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    // Two idle connections hold both slots: a third takes the place of the longest idle.
    let held: Vec<TcpStream> = (0..2).map(|_| TcpStream::connect(addr).unwrap()).collect();
    assert!(eventually(Duration::from_secs(5), || try_send_raw(addr, request).is_ok_and(|r| r.status == 200)));
    assert!(server.connections_evicted() >= 1);
    drop(held);
    // Two connections in the middle of a request (a PUT whose body never comes) are busy: a third
    // is refused at accept. `100 Continue` says the handler is reading the body.
    let head = format!(
        "PUT /api/v1/system/spreading/config HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {TOKEN}\r\n\
         Content-Type: application/json\r\nExpect: 100-continue\r\nContent-Length: 100\r\n\r\n"
    );
    let busy: Vec<TcpStream> = (0..2)
        .map(|_| {
            let mut s = TcpStream::connect(addr).unwrap();
            s.write_all(head.as_bytes()).unwrap();
            let mut line = [0u8; 25];
            s.read_exact(&mut line).unwrap();
            assert!(line.starts_with(b"HTTP/1.1 100 Continue"), "{}", String::from_utf8_lossy(&line));
            s
        })
        .collect();
    assert!(eventually(Duration::from_secs(5), || {
        let mut third = TcpStream::connect(addr).unwrap();
        third.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
        let _ = third.write_all(request);
        let mut buf = Vec::new();
        let _ = third.read_to_end(&mut buf);
        buf.is_empty() && server.connections_refused() > 0
    }));
    drop(busy);
    assert!(eventually(Duration::from_secs(5), || try_send_raw(addr, request).is_ok_and(|r| r.status == 200)));
}

#[test]
fn the_server_never_keeps_the_engine_alive_and_stops_cleanly() {
    let engine = engine();
    let server = axonal_core::http::serve(&engine, "127.0.0.1:0", options()).unwrap();
    let addr = server.local_addr();
    drop(engine); // the server holds the engine weakly: this drops it
    let reply = get(addr, "/health/spreading");
    assert_eq!(reply.status, 503);
    assert_eq!(reply.json()["error"], "engine_closed");
    server.stop();
    server.stop(); // idempotent
    assert!(TcpStream::connect(addr).is_err(), "listener closed after stop");

    let host = axonal_core::Host::from_arc(self::engine());
    let server = host.serve_http("127.0.0.1:0", options()).unwrap();
    let addr = server.local_addr();
    host.stop_servers();
    assert!(TcpStream::connect(addr).is_err(), "stop_servers stops every server of the host");
    drop(server);
}

#[test]
fn bad_addresses_and_options_are_config_errors() {
    let engine = engine();
    let server = axonal_core::http::serve(&engine, "127.0.0.1:0", options()).unwrap();
    let taken = server.local_addr().to_string();
    let err = axonal_core::http::serve(&engine, &taken, options()).err().unwrap();
    assert_eq!(err.kind(), ErrorKind::Config);
    assert!(err.to_string().contains("http.addr"), "{err}");
    let err = axonal_core::http::serve(&engine, "not an address", options()).err().unwrap();
    assert!(err.to_string().contains("not an address"), "{err}");

    let err = HttpOptions::from_json(Some(r#"{"admin_tokn": "x"}"#)).unwrap_err();
    assert!(err.to_string().contains("admin_tokn"), "{err}");
    let err = HttpOptions::from_json(Some(r#"{"max_body_bytes": 0}"#)).unwrap_err();
    assert!(err.to_string().contains("http.max_body_bytes"), "{err}");
    let err = HttpOptions::from_json(Some(r#"{"admin_token": ""}"#)).unwrap_err();
    assert!(err.to_string().contains("http.admin_token"), "{err}");
    let err = HttpOptions::from_json(Some("{")).unwrap_err();
    assert!(err.to_string().contains("malformed JSON"), "{err}");
    assert_eq!(HttpOptions::from_json(None).unwrap(), HttpOptions::default());
    assert_eq!(HttpOptions::from_json(Some("{}")).unwrap(), HttpOptions::default());
}

#[test]
fn a_client_that_never_reads_its_answers_loses_its_connection_and_slot() {
    let engine = engine();
    let options = HttpOptions { max_connections: 1, request_timeout_ms: 300, ..options() };
    let server = axonal_core::http::serve(&engine, "127.0.0.1:0", options).unwrap();
    let addr = server.local_addr();
    // Pipeline far more `/metrics` answers than the socket buffers hold, and never read them.
    let hog = TcpStream::connect(addr).unwrap();
    let writer = {
        let mut hog = hog.try_clone().unwrap();
        std::thread::spawn(move || {
            let request = b"GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
            for _ in 0..20_000 {
                if hog.write_all(request).is_err() {
                    break; // the server closed the connection
                }
            }
        })
    };
    // The only slot frees once the server gives up on writing to the hog.
    let request = b"GET /health/spreading HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
    assert!(
        eventually(Duration::from_secs(10), || try_send_raw(addr, request).is_ok_and(|r| r.status == 200)),
        "the stalled connection kept the only slot"
    );
    drop(hog);
    writer.join().unwrap();
}

#[test]
fn admin_tokens_are_visible_ascii_and_never_printed() {
    for bad in ["two words", "tab\there", "ünïcode", ""] {
        let options = HttpOptions::default().with_admin_token(Some(bad.into()));
        let err = options.validate().unwrap_err();
        assert!(err.to_string().contains("http.admin_token"), "{bad:?}: {err}");
    }
    let debug = format!("{:?}", options());
    assert!(!debug.contains(TOKEN) && debug.contains("<redacted>"), "{debug}");
}

//! Hostile HTTP clients over real sockets (docs/spec.md §12): one peer holding hundreds of idle
//! sockets cannot starve another's health checks, a client that half-closes after its request still
//! gets the answer, and a server bound beyond loopback reports a connectable URL.
#![cfg(feature = "http")]

use std::io::{Read, Write};
use std::net::{Shutdown, SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use axonal_core::http::HttpOptions;
use axonal_core::{Engine, EngineConfig, GraphBuilder};
use serde_json::json;

fn engine() -> Arc<Engine> {
    let mut b = GraphBuilder::new(6);
    for (s, d) in [(0, 1), (1, 2), (2, 3), (3, 4), (4, 0), (0, 5)] {
        b.add_edge(s, d, 0.9).unwrap();
    }
    let config = EngineConfig::default()
        .patched(&json!({"health": {"interval_ms": 3_600_000}, "autotune": {"interval_ms": 3_600_000}}))
        .unwrap();
    Arc::new(Engine::new(b.build().unwrap(), config).unwrap())
}

/// One `GET` on a fresh connection; the status, or `None` when no answer came.
fn check(addr: SocketAddr, path: &str) -> Option<u16> {
    let mut stream = TcpStream::connect_timeout(&addr, Duration::from_secs(2)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(3))).ok()?;
    let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\nConnection: close\r\n\r\n");
    stream.write_all(request.as_bytes()).ok()?;
    let mut reply = Vec::new();
    stream.read_to_end(&mut reply).ok()?;
    let text = String::from_utf8_lossy(&reply);
    text.strip_prefix("HTTP/1.1 ")?.get(..3)?.parse().ok()
}

#[test]
fn one_peer_holding_idle_sockets_cannot_starve_health_checks() {
    let engine = engine();
    // The defaults' connection cap (256), with a short header timeout so the flood cycles quickly.
    let options = HttpOptions { header_timeout_ms: 1_500, ..HttpOptions::default() };
    let server = axonal_core::http::serve(&engine, "127.0.0.1:0", options).unwrap();
    let addr = server.local_addr();
    let stop = Arc::new(AtomicBool::new(false));
    // The attacker: 260 sockets that never send a byte, each reopened just before the server's
    // header timeout would close it.
    let attacker = {
        let stop = Arc::clone(&stop);
        std::thread::spawn(move || {
            let mut held: Vec<TcpStream> = Vec::new();
            while !stop.load(Ordering::Relaxed) {
                held.clear();
                let round = Instant::now();
                for _ in 0..260 {
                    if let Ok(s) = TcpStream::connect_timeout(&addr, Duration::from_millis(500)) {
                        held.push(s);
                    }
                }
                while round.elapsed() < Duration::from_millis(1_350) && !stop.load(Ordering::Relaxed) {
                    std::thread::sleep(Duration::from_millis(10));
                }
            }
        })
    };
    std::thread::sleep(Duration::from_millis(300)); // the first round is in
    let mut answered = 0;
    let mut asked = 0;
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(6) {
        asked += 1;
        if check(addr, "/health/spreading") == Some(200) {
            answered += 1;
        }
        std::thread::sleep(Duration::from_millis(30));
    }
    stop.store(true, Ordering::Relaxed);
    attacker.join().unwrap();
    assert!(asked >= 100, "only {asked} checks in 6 s");
    assert!(
        answered * 100 >= asked * 99,
        "{answered} of {asked} health checks answered while one peer held 260 idle sockets \
         (evicted {}, refused {})",
        server.connections_evicted(),
        server.connections_refused()
    );
    assert!(server.connections_evicted() > 0, "the flood never reached the cap");
}

#[test]
fn a_client_that_half_closes_after_its_request_gets_the_answer() {
    let engine = engine();
    let server = axonal_core::http::serve(&engine, "127.0.0.1:0", HttpOptions::default()).unwrap();
    let addr = server.local_addr();
    for path in [
        "/health/spreading",
        "/api/v1/system/health",
        "/api/v1/system/metrics/spreading",
        "/api/v1/system/spreading/config",
        "/metrics",
    ] {
        let mut answered = 0;
        for _ in 0..20 {
            // As `nc -N` does: the whole request, then shutdown(SHUT_WR), then read.
            let mut stream = TcpStream::connect(addr).unwrap();
            stream.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
            let request = format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n");
            stream.write_all(request.as_bytes()).unwrap();
            stream.shutdown(Shutdown::Write).unwrap();
            let mut reply = Vec::new();
            let _ = stream.read_to_end(&mut reply);
            if String::from_utf8_lossy(&reply).starts_with("HTTP/1.1 200") {
                answered += 1;
            }
        }
        assert_eq!(answered, 20, "{path}: {answered}/20 half-closed requests answered");
    }
}

#[test]
fn a_server_bound_to_every_interface_reports_a_connectable_url() {
    let engine = engine();
    let token = HttpOptions::default().with_admin_token(Some("t0ken".into()));
    let server = axonal_core::http::serve(&engine, "0.0.0.0:0", token).unwrap();
    let url = server.url();
    assert!(url.starts_with("http://127.0.0.1:"), "{url}");
    assert!(server.token_in_clear(), "a token beyond loopback travels in clear");
    let addr: SocketAddr = url.trim_start_matches("http://").parse().unwrap();
    assert_eq!(check(addr, "/health/spreading"), Some(200));
    let loopback = axonal_core::http::serve(
        &engine,
        "127.0.0.1:0",
        HttpOptions::default().with_admin_token(Some("t".into())),
    )
    .unwrap();
    assert!(!loopback.token_in_clear());
    let open = axonal_core::http::serve(&engine, "0.0.0.0:0", HttpOptions::default()).unwrap();
    assert!(!open.token_in_clear(), "no token, nothing to leak");
}

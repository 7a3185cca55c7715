//! HTTP surface benchmark. Run: `cargo bench -p axonal-core --features http --bench http`. Under
//! `cargo test --all-targets` (no `--bench` flag) it runs once at small scale as a smoke test.
//!
//! - `/health/spreading` throughput while a thread recalls: keep-alive clients as fast as they go,
//!   and `wrk` (Debian's `wrk`) when it is installed, as an independent client;
//! - the recall p50/p99 with and without 5 000 health requests/s (paced clients), in alternating
//!   blocks so drift hits both sides alike; reported as the loaded/quiet ratio.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axonal_core::generate::{self, SplitMix64};
use axonal_core::http::HttpOptions;
use axonal_core::{Cue, Engine, EngineConfig};

const PACED_RATE: f64 = 5_000.0;

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let block = if full { Duration::from_secs(3) } else { Duration::from_millis(100) };
    let rounds = if full { 5 } else { 1 };

    let graph = generate::barabasi_albert(10_000, 4, 0.9, 11).build().expect("valid graph");
    let engine = Arc::new(Engine::new(graph, EngineConfig::default()).expect("default config"));
    let server = axonal_core::http::serve(&engine, "127.0.0.1:0", HttpOptions::default()).expect("loopback");
    let addr = server.local_addr();
    engine.check_probe("spreading").expect("probe");
    println!(
        "machine: {} cores; engine: {} spreading threads; graph: BA 10k nodes, 40k edges; single-node cues\n",
        std::thread::available_parallelism().map_or(0, |n| n.get()),
        engine.threads()
    );

    // Throughput with recalls running.
    let stop = AtomicBool::new(false);
    let recalls = AtomicU64::new(0);
    let (served, seconds, wrk) = std::thread::scope(|scope| {
        scope.spawn(|| recall_loop(&engine, &stop, |_| recalls.fetch_add(1, Ordering::Relaxed)));
        let (served, seconds) = saturate(addr, 4, block * 2);
        let wrk = full.then(|| run_wrk(addr, block * 2)).flatten();
        stop.store(true, Ordering::Relaxed);
        (served, seconds, wrk)
    });
    println!("## /health/spreading throughput while one thread recalls");
    println!("| client | requests/s |");
    println!("|---|---|");
    println!("| 4 keep-alive connections, as fast as they go | {:.0} |", served as f64 / seconds);
    match wrk {
        Some(rate) => println!("| wrk -t1 -c16 | {rate:.0} |"),
        None if full => println!("| wrk | not installed (apt install wrk) |"),
        None => {}
    }
    println!("recalls meanwhile: {}\n", recalls.load(Ordering::Relaxed));

    // Recall latency with and without paced health traffic.
    let mut quiet = Vec::new();
    let mut loaded = Vec::new();
    let mut rates = Vec::new();
    for _ in 0..rounds {
        quiet.push(measure_recalls(&engine, block));
        let (stats, rate) = measure_recalls_loaded(&engine, addr, block);
        loaded.push(stats);
        rates.push(rate);
    }
    let median = |v: &mut Vec<f64>| {
        v.sort_by(f64::total_cmp);
        v[v.len() / 2]
    };
    let (mut q50, mut q99): (Vec<f64>, Vec<f64>) = quiet.iter().copied().unzip();
    let (mut l50, mut l99): (Vec<f64>, Vec<f64>) = loaded.iter().copied().unzip();
    let (q50, q99, l50, l99) = (median(&mut q50), median(&mut q99), median(&mut l50), median(&mut l99));
    println!("## Recall latency with and without {PACED_RATE:.0} /health/spreading requests/s");
    println!("({rounds} alternating blocks of {:.1} s each; medians of the blocks)", block.as_secs_f64());
    println!("| | recall p50 (µs) | recall p99 (µs) | health requests/s |");
    println!("|---|---|---|---|");
    println!("| quiet | {q50:.1} | {q99:.1} | 0 |");
    println!("| loaded | {l50:.1} | {l99:.1} | {:.0} |", median(&mut rates));
    println!("| loaded / quiet | {:.3}× | {:.3}× | |", l50 / q50, l99 / q99);
    server.stop();
}

/// Recall random single-node cues until `stop`, handing each latency to `record`.
fn recall_loop(engine: &Engine, stop: &AtomicBool, mut record: impl FnMut(Duration) -> u64) {
    let mut rng = SplitMix64(5);
    let mut out = axonal_core::Recall::default();
    let mut cue = Cue::nodes([0]);
    let n = engine.graph().node_count() as u64;
    while !stop.load(Ordering::Relaxed) {
        cue.seeds[0].0 = rng.below(n) as u32;
        let start = Instant::now();
        engine.recall_into(&cue, &mut out).expect("valid cue");
        record(start.elapsed());
    }
}

/// p50 and p99 (µs) of recalls over `span`.
fn measure_recalls(engine: &Engine, span: Duration) -> (f64, f64) {
    let stop = AtomicBool::new(false);
    let mut latencies = Vec::with_capacity(1 << 20);
    std::thread::scope(|scope| {
        scope.spawn(|| {
            std::thread::sleep(span);
            stop.store(true, Ordering::Relaxed);
        });
        recall_loop(engine, &stop, |d| {
            latencies.push(d);
            0
        });
    });
    percentiles(&mut latencies)
}

/// As [`measure_recalls`], while two client threads send paced health requests; also the rate served.
fn measure_recalls_loaded(engine: &Engine, addr: SocketAddr, span: Duration) -> ((f64, f64), f64) {
    let stop = AtomicBool::new(false);
    let served = AtomicU64::new(0);
    let started = Instant::now();
    let mut latencies = Vec::with_capacity(1 << 20);
    std::thread::scope(|scope| {
        for _ in 0..2 {
            scope.spawn(|| paced_client(addr, PACED_RATE / 2.0, &stop, &served));
        }
        scope.spawn(|| {
            std::thread::sleep(span);
            stop.store(true, Ordering::Relaxed);
        });
        recall_loop(engine, &stop, |d| {
            latencies.push(d);
            0
        });
    });
    let rate = served.load(Ordering::Relaxed) as f64 / started.elapsed().as_secs_f64();
    (percentiles(&mut latencies), rate)
}

fn percentiles(latencies: &mut [Duration]) -> (f64, f64) {
    latencies.sort_unstable();
    let at = |q: f64| latencies[((latencies.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e6;
    (at(0.5), at(0.99))
}

/// One keep-alive connection sending `GET /health/spreading` at `rate` per second until `stop`.
fn paced_client(addr: SocketAddr, rate: f64, stop: &AtomicBool, served: &AtomicU64) {
    let mut client = Client::connect(addr);
    let period = Duration::from_secs_f64(1.0 / rate);
    let mut next = Instant::now();
    while !stop.load(Ordering::Relaxed) {
        let now = Instant::now();
        if now < next {
            std::thread::sleep(next - now);
        }
        next += period;
        client.health();
        served.fetch_add(1, Ordering::Relaxed);
    }
}

/// `connections` keep-alive clients as fast as they go for `span`: requests served and seconds.
fn saturate(addr: SocketAddr, connections: usize, span: Duration) -> (u64, f64) {
    let served = AtomicU64::new(0);
    let start = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..connections {
            scope.spawn(|| {
                let mut client = Client::connect(addr);
                while start.elapsed() < span {
                    client.health();
                    served.fetch_add(1, Ordering::Relaxed);
                }
            });
        }
    });
    (served.load(Ordering::Relaxed), start.elapsed().as_secs_f64())
}

/// `wrk`'s requests/s, when wrk is installed.
fn run_wrk(addr: SocketAddr, span: Duration) -> Option<f64> {
    let output = std::process::Command::new("wrk")
        .args([
            "-t1",
            "-c16",
            &format!("-d{}s", span.as_secs().max(1)),
            &format!("http://{addr}/health/spreading"),
        ])
        .output()
        .ok()?;
    let text = String::from_utf8_lossy(&output.stdout);
    text.lines().find_map(|l| l.strip_prefix("Requests/sec:")).and_then(|v| v.trim().parse().ok())
}

/// A minimal HTTP/1.1 keep-alive client for one endpoint.
struct Client {
    reader: BufReader<TcpStream>,
}

impl Client {
    fn connect(addr: SocketAddr) -> Client {
        let stream = TcpStream::connect(addr).expect("connect");
        stream.set_nodelay(true).expect("nodelay");
        Client { reader: BufReader::new(stream) }
    }

    /// One `GET /health/spreading`; panics unless it is a 200.
    fn health(&mut self) {
        self.reader
            .get_mut()
            .write_all(b"GET /health/spreading HTTP/1.1\r\nHost: bench\r\n\r\n")
            .expect("write");
        let mut line = String::new();
        self.reader.read_line(&mut line).expect("status line");
        assert!(line.starts_with("HTTP/1.1 200"), "unexpected reply {line:?}");
        let mut length = 0;
        loop {
            line.clear();
            self.reader.read_line(&mut line).expect("header");
            if line == "\r\n" {
                break;
            }
            if let Some(value) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                length = value.trim().parse().expect("length");
            }
        }
        let mut body = vec![0; length];
        self.reader.read_exact(&mut body).expect("body");
    }
}

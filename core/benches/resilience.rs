//! Resilience benchmarks. Run: `cargo bench -p axonal-core --bench resilience`. Under `cargo test
//! --all-targets` (no `--bench` flag) it runs once at small scale as a smoke test.
//!
//! - breaker `admit` + `on_result` while closed, one thread and two threads at once;
//! - the spreading health probe: its own latency, and a synchronous `check_probe` round trip;
//! - CPU used by an idle engine's background threads (health runner, probe worker, telemetry).

use std::time::{Duration, Instant};

use axonal_core::ToJson;
use axonal_core::breaker::callbacks::Dispatcher;
use axonal_core::breaker::{BreakerMetrics, BreakerSettings, CallOutcome, CircuitBreaker};
use axonal_core::clock::SystemClock;
use axonal_core::telemetry::Telemetry;
use axonal_core::{Engine, EngineConfig, Graph};

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let scale = if full { 1 } else { 100 };
    breaker(scale);
    probe(scale);
    idle_cpu(if full { Duration::from_secs(20) } else { Duration::from_millis(200) });
}

fn breaker(scale: usize) {
    let telemetry = Telemetry::new(SystemClock::shared());
    let m = axonal_core::engine::EngineMetrics::register(telemetry.registry()).unwrap();
    let dispatcher =
        Dispatcher::start(telemetry.registry().counter("bench_callback_failures_total", "b").unwrap())
            .unwrap();
    let breaker = CircuitBreaker::new(
        BreakerSettings::new(&EngineConfig::default().breaker, EngineConfig::default().latency_budget()),
        SystemClock::shared(),
        dispatcher.sender(),
        BreakerMetrics { transitions: m.breaker_transitions_total.clone(), state: m.breaker_state.clone() },
    );
    let ops = 10_000_000 / scale;
    let outcome = CallOutcome { failed: false, latency: Duration::from_micros(500) };
    let run = |threads: usize| -> f64 {
        let start = Instant::now();
        std::thread::scope(|scope| {
            for _ in 0..threads {
                scope.spawn(|| {
                    for _ in 0..ops {
                        let admission = breaker.admit();
                        breaker.on_result(admission, outcome);
                    }
                });
            }
        });
        start.elapsed().as_secs_f64() * 1e9 / ops as f64
    };
    run(1);
    let one = run(1);
    let two = run(2);
    println!("## Breaker admit + on_result while closed ({ops} calls per thread)");
    println!("| threads | ns per call (per thread) | slowdown |");
    println!("|---|---|---|");
    println!("| 1 | {one:.1} | 1.00× |");
    println!("| 2 concurrently | {two:.1} | {:.2}× |", two / one);
    println!("state after: {:?}\n", breaker.state());
}

fn percentile(sorted: &[Duration], q: f64) -> f64 {
    sorted[((sorted.len() - 1) as f64 * q) as usize].as_secs_f64() * 1e6
}

fn probe(scale: usize) {
    let graph = Graph::from_edges(5, &[0, 1, 2, 3, 4], &[1, 2, 3, 4, 0], &[1.0; 5]).unwrap();
    let engine = Engine::new(graph, EngineConfig::default()).unwrap();
    let checks = 20_000 / scale;
    let mut round_trips: Vec<Duration> = (0..checks)
        .map(|_| {
            let start = Instant::now();
            engine.check_probe("spreading").unwrap().to_json();
            start.elapsed()
        })
        .collect();
    round_trips.sort_unstable();
    let totals = engine.telemetry().totals_json();
    let own = &totals["histograms"]["spreading_health_probe_latency_seconds"];
    println!("## Spreading health probe ({checks} checks)");
    println!("| measure | p50 | p99 | max |");
    println!("|---|---|---|---|");
    println!(
        "| the probe's spread (its recorded latency) | {:.2} µs | {:.2} µs | {:.1} µs |",
        own["p50"].as_f64().unwrap() * 1e6,
        own["p99"].as_f64().unwrap() * 1e6,
        own["max"].as_f64().unwrap() * 1e6
    );
    println!(
        "| check_probe round trip (worker thread hand-off included) | {:.1} µs | {:.1} µs | {:.1} µs |\n",
        percentile(&round_trips, 0.5),
        percentile(&round_trips, 0.99),
        round_trips[checks - 1].as_secs_f64() * 1e6
    );
}

/// CPU time of every thread of this process, by thread name (nanoseconds, from schedstat).
fn thread_cpu() -> Vec<(String, u64)> {
    let Ok(tasks) = std::fs::read_dir("/proc/self/task") else { return Vec::new() };
    tasks
        .flatten()
        .filter_map(|task| {
            let name = std::fs::read_to_string(task.path().join("comm")).ok()?.trim().to_owned();
            let stat = std::fs::read_to_string(task.path().join("schedstat")).ok()?;
            Some((name, stat.split_whitespace().next()?.parse().ok()?))
        })
        .collect()
}

fn idle_cpu(duration: Duration) {
    let graph = Graph::from_edges(5, &[0, 1, 2, 3, 4], &[1, 2, 3, 4, 0], &[1.0; 5]).unwrap();
    let engine = Engine::new(graph, EngineConfig::default()).unwrap();
    std::thread::sleep(Duration::from_millis(100));
    let before = thread_cpu();
    std::thread::sleep(duration);
    let after = thread_cpu();
    let checks =
        engine.health_report().to_json()["probes"]["spreading"]["checks_total"].as_u64().unwrap_or(0);
    println!(
        "## Idle engine, default config, {:.0} s (CPU per background thread, % of one core)",
        duration.as_secs_f64()
    );
    println!("| thread | CPU | share |");
    println!("|---|---|---|");
    let mut total = 0;
    for (name, ns) in &after {
        if !name.starts_with("axonal-") {
            continue;
        }
        let used = ns - before.iter().find(|(n, _)| n == name).map_or(0, |(_, b)| *b);
        total += used;
        println!(
            "| {name} | {:.2} ms | {:.4} % |",
            used as f64 / 1e6,
            used as f64 / duration.as_nanos() as f64 * 100.0
        );
    }
    println!(
        "| all engine threads | {:.2} ms | {:.4} % |\n\nspreading probe checks in the window: {checks} (every 10 s)",
        total as f64 / 1e6,
        total as f64 / duration.as_nanos() as f64 * 100.0
    );
}

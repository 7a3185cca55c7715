//! Telemetry benchmarks. Run: `cargo bench -p axonal-core --bench telemetry`. Under `cargo test
//! --all-targets` (no `--bench` flag) it runs once at small scale as a smoke test.
//!
//! - recall overhead: the same engine with telemetry on and off, interleaved, on the 5-node cycle and
//!   the 10 k-node Barabási–Albert recall;
//! - one observation (histogram, counter) single-threaded, and two threads recording concurrently;
//! - snapshot JSON and Prometheus text of a busy engine.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axonal_core::ToJson;
use axonal_core::generate;
use axonal_core::telemetry::{LATENCY_BOUNDS, Telemetry};
use axonal_core::{Cue, Engine, EngineConfig, Graph, Recall};

mod common;

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let scale = if full { 1 } else { 100 };
    common::machine();
    println!();
    recall_overhead(scale);
    observation_cost(scale);
    export_cost(scale);
}

/// Median per-call time of `calls` recalls, over `rounds` rounds alternating telemetry on and off.
fn on_off(engine: &Engine, cue: &Cue, calls: usize, rounds: usize) -> (Duration, Duration) {
    let mut out = Recall::default();
    let mut on = Vec::new();
    let mut off = Vec::new();
    for round in 0..rounds * 2 {
        let enabled = round % 2 == 0;
        engine.set_telemetry_enabled(enabled);
        let start = Instant::now();
        for _ in 0..calls {
            engine.recall_into(cue, &mut out).unwrap();
        }
        let per_call = start.elapsed() / calls as u32;
        if enabled { on.push(per_call) } else { off.push(per_call) }
    }
    engine.set_telemetry_enabled(true);
    on.sort_unstable();
    off.sort_unstable();
    (on[on.len() / 2], off[off.len() / 2])
}

fn recall_overhead(scale: usize) {
    println!("## Recall with telemetry on vs off (same engine, interleaved rounds, medians)");
    println!("| workload | on | off | added | ratio |");
    println!("|---|---|---|---|---|");
    let src: Vec<u32> = (0..5).collect();
    let dst: Vec<u32> = (0..5).map(|i| (i + 1) % 5).collect();
    let cycle =
        Engine::new(Graph::from_edges(5, &src, &dst, &[1.0; 5]).unwrap(), EngineConfig::default()).unwrap();
    let (on, off) = on_off(&cycle, &Cue::nodes([0]), 200_000 / scale, 21);
    report("5-node cycle, depth 3", on, off);

    let edges = generate::barabasi_albert(10_000, 4, 0.9, 42);
    let hub = edges.hub();
    let ba = Engine::new(edges.build().unwrap(), EngineConfig::default()).unwrap();
    let (on, off) = on_off(&ba, &Cue::nodes([hub]), 2_000 / scale, 21);
    report("10 k-node BA, hub seed, defaults", on, off);
    println!();
}

fn report(name: &str, on: Duration, off: Duration) {
    let ns = |d: Duration| d.as_secs_f64() * 1e9;
    println!(
        "| {name} | {:.0} ns | {:.0} ns | {:+.0} ns | {:.3} |",
        ns(on),
        ns(off),
        ns(on) - ns(off),
        on.as_secs_f64() / off.as_secs_f64()
    );
}

fn observation_cost(scale: usize) {
    let telemetry = Arc::new(Telemetry::new(axonal_core::clock::SystemClock::shared()));
    let histogram = telemetry.registry().histogram("bench_seconds", "bench", LATENCY_BOUNDS).unwrap();
    let counter = telemetry.registry().counter("bench_total", "bench").unwrap();
    let ops = 10_000_000 / scale;
    let time = |f: &(dyn Fn(usize) + Sync), threads: usize| -> f64 {
        let start = Instant::now();
        std::thread::scope(|scope| {
            for t in 0..threads {
                scope.spawn(move || {
                    for i in 0..ops {
                        f(i + t);
                    }
                });
            }
        });
        start.elapsed().as_secs_f64() * 1e9 / ops as f64
    };
    let observe = |i: usize| histogram.observe(1e-6 * (1 + (i & 1023)) as f64);
    let increment = |_: usize| counter.increment();
    println!("## One observation (ns per op, per thread)");
    println!("| op | 1 thread | 2 threads concurrently | slowdown |");
    println!("|---|---|---|---|");
    for (name, f) in
        [("histogram observe", &observe as &(dyn Fn(usize) + Sync)), ("counter increment", &increment)]
    {
        let one = time(f, 1);
        let two = time(f, 2);
        println!("| {name} | {one:.1} | {two:.1} | {:.2}× |", two / one);
    }
    println!();
}

fn export_cost(scale: usize) {
    let edges = generate::barabasi_albert(10_000, 4, 0.9, 42);
    let engine = Engine::new(edges.build().unwrap(), EngineConfig::default()).unwrap();
    for i in 0..20_000 / scale {
        engine.recall(&Cue::nodes([(i * 7 % 10_000) as u32])).unwrap();
    }
    for i in 0..20 {
        engine.metrics().increment_counter(&format!("host_metric_{i}_total"), 1).unwrap();
    }
    let time = |f: &dyn Fn() -> usize| {
        let mut samples: Vec<Duration> = (0..50)
            .map(|_| {
                let start = Instant::now();
                std::hint::black_box(f());
                start.elapsed()
            })
            .collect();
        samples.sort_unstable();
        (samples[25], samples[49])
    };
    let (json_p50, json_max) = time(&|| engine.streaming_snapshot().to_json().to_string().len());
    let (prom_p50, prom_max) = time(&|| engine.prometheus_text().len());
    println!("## Export of a busy engine (after {} recalls, 36 engine + 20 host metrics)", 20_000 / scale);
    println!("| export | median | max of 50 | bytes |");
    println!("|---|---|---|---|");
    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "| snapshot JSON | {:.0} µs | {:.0} µs | {} |",
        us(json_p50),
        us(json_max),
        engine.streaming_snapshot().to_json().to_string().len()
    );
    println!(
        "| Prometheus text | {:.0} µs | {:.0} µs | {} |",
        us(prom_p50),
        us(prom_max),
        engine.prometheus_text().len()
    );
}

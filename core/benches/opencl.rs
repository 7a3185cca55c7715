//! CPU against the OpenCL backend's device-resident recalls. Run: `cargo bench -p axonal-core
//! --features opencl --bench opencl` (scripts/gpu-bench runs the same binary on a machine with an
//! NVIDIA GPU). Under `cargo test` it runs once at small scale as a smoke test; `-- small` runs the
//! benchmark at 100 k nodes (for a CPU device such as PoCL, where 1 M-node batches take many minutes).
//!
//! - one full-frontier step (every node fires, depth 1) over uniform graphs: the device's time for
//!   the depth (its gathers and finish, from the device's own timestamps) in edges per second,
//!   against the CPU pool's step;
//! - Barabási–Albert full activation (threshold 0, depth 8, every result returned): `always` vs `off`;
//! - batches of small cues (5 seeds, depth 3) on Barabási–Albert: recalls per second, device batch
//!   vs CPU batch.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axonal_core::opencl::OpenClBackend;
use axonal_core::spread::{NoHook, time_full_frontier_step};
use axonal_core::telemetry::Counter;
use axonal_core::{
    Activation, Cue, DeviceCue, DeviceSpread, Engine, EngineConfig, Graph, Recall, SpreadParams, SpreadStats,
    generate,
};
use serde_json::json;

mod common;

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
    let small = std::env::args().any(|a| a == "small");
    let backend = match OpenClBackend::new(Some(0), Counter::detached()) {
        Ok(backend) => backend,
        Err(why) => {
            println!("no OpenCL device: {why}");
            return;
        }
    };
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    println!("device: {}; CPU: {}, {threads} threads\n", backend.device_name(), common::cpu());
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
    step(&backend, &pool, full, small);
    full_activation(full, small);
    batches(full, small);
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort_unstable();
    v[v.len() / 2]
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1e3
}

fn step(backend: &OpenClBackend, pool: &rayon::ThreadPool, full: bool, small: bool) {
    println!(
        "## Full-frontier step (depth 1, every node fires): CPU ({} threads) vs device",
        pool.current_num_threads()
    );
    println!("| nodes | edges | CPU ms | device ms | device G edges/s | device / CPU |");
    println!("|---|---|---|---|---|---|");
    let sizes: &[u32] = match (full, small) {
        (true, false) => &[100_000, 1_000_000, 3_000_000],
        (true, true) => &[100_000, 1_000_000],
        _ => &[2_000],
    };
    let mut params = SpreadParams::from(&EngineConfig::default().spreading);
    params.max_depth = 1;
    params.threshold = 0.0;
    params.tier_timeouts = [None; 3];
    let reps = if full { 9 } else { 2 };
    for &n in sizes {
        let m = n as usize * 10;
        let graph = generate::uniform(n, m, 0.1, 7).build().unwrap();
        let seeds: Vec<(u32, f32)> = (0..n).map(|v| (v, 1.0)).collect();
        let mut results = Vec::new();
        let mut device = Vec::new();
        let mut edges = 0;
        // The first run uploads the graph: not timed.
        for rep in 0..=reps {
            let stats = device_spread(backend, &graph, &params, &[&seeds], 1, &mut results)[0];
            edges = stats.edges_traversed[0];
            if rep > 0 {
                device.push(stats.depth_time[0]);
            }
        }
        let cpu = median(time_full_frontier_step(&graph, &params, Some(pool), reps));
        let device = median(device);
        println!(
            "| {n} | {m} | {:.3} | {:.3} | {:.2} | {:.2} |",
            ms(cpu),
            ms(device),
            edges as f64 / device.as_secs_f64() / 1e9,
            device.as_secs_f64() / cpu.as_secs_f64()
        );
    }
    println!();
}

/// Spread `cues` on the device as one batch; returns each cue's stats.
fn device_spread(
    backend: &OpenClBackend,
    graph: &Graph,
    params: &SpreadParams,
    cues: &[&[(u32, f32)]],
    k: usize,
    results: &mut Vec<Activation>,
) -> Vec<SpreadStats> {
    let mut outs: Vec<Vec<Activation>> = vec![std::mem::take(results); cues.len()];
    let mut batch: Vec<DeviceCue<'_>> = cues
        .iter()
        .zip(&mut outs)
        .map(|(seeds, out)| DeviceCue { seeds, k, results: out, stats: SpreadStats::default() })
        .collect();
    backend.spread(graph, params, &mut batch, &NoHook).expect("a device spread");
    batch.iter().map(|c| c.stats).collect()
}

fn engine(graph: &Arc<Graph>, mode: &str, depth: u32, threshold: f32) -> Engine {
    let config = EngineConfig::default()
        .patched(&json!({"opencl": mode, "spreading": {"max_depth": depth, "threshold": threshold,
            "tier_timeouts_ms": {"hot": 0, "warm": 0, "cold": 0}, "latency_budget_ms": 60000},
            "autotune": {"guardrails": {"max_depth": [2, 8]}}}))
        .unwrap();
    Engine::new(Arc::clone(graph), config).unwrap()
}

fn full_activation(full: bool, small: bool) {
    println!("## Barabási–Albert full activation (m = 4, weight 0.9, threshold 0, depth 8, every result)");
    println!("| nodes | backend | median ms | p95 ms | results |");
    println!("|---|---|---|---|---|");
    let sizes: &[u32] = match (full, small) {
        (true, false) => &[100_000, 1_000_000],
        (true, true) => &[100_000],
        _ => &[2_000],
    };
    for &n in sizes {
        let edges = generate::barabasi_albert(n, 4, 0.9, 42);
        let hub = edges.hub();
        let graph: Arc<Graph> = Arc::new(edges.build().unwrap());
        for mode in ["off", "always"] {
            let engine = engine(&graph, mode, 8, 0.0);
            let cue = Cue::nodes([hub]).with_k(n as usize);
            let mut out = Recall::default();
            engine.recall_into(&cue, &mut out).unwrap();
            let runs = if !full {
                2
            } else if n >= 1_000_000 {
                10
            } else {
                30
            };
            let mut samples: Vec<Duration> = (0..runs)
                .map(|_| {
                    let start = Instant::now();
                    engine.recall_into(&cue, &mut out).unwrap();
                    start.elapsed()
                })
                .collect();
            samples.sort_unstable();
            println!(
                "| {n} | {} | {:.3} | {:.3} | {} |",
                out.stats.backend.as_str(),
                ms(samples[samples.len() / 2]),
                ms(samples[samples.len() * 95 / 100]),
                out.results.len()
            );
        }
    }
    println!();
}

fn batches(full: bool, small: bool) {
    println!("## Batches of small cues (5 seeds, depth 3, k 10) on Barabási–Albert (m = 4, weight 0.9)");
    println!("| nodes | cues | backend | median ms | recalls/s |");
    println!("|---|---|---|---|---|");
    let (n, count) = match (full, small) {
        (true, false) => (1_000_000u32, 1024usize),
        (true, true) => (100_000, 256),
        _ => (2_000, 64),
    };
    let graph: Arc<Graph> = Arc::new(generate::barabasi_albert(n, 4, 0.9, 42).build().unwrap());
    let cues: Vec<Cue> = (0..count as u32)
        .map(|i| Cue::nodes((0..5).map(|j| (i.wrapping_mul(7919) + j * 104_729) % n)).with_k(10))
        .collect();
    for mode in ["off", "always"] {
        let engine = engine(&graph, mode, 3, 0.01);
        let mut backend = "cpu";
        let samples: Vec<Duration> = (0..if full { 5 } else { 2 })
            .map(|_| {
                let start = Instant::now();
                let results = engine.recall_batch(&cues).unwrap();
                backend = results[0].stats.backend.as_str();
                start.elapsed()
            })
            .collect();
        let median = median(samples);
        println!(
            "| {n} | {count} | {backend} | {:.1} | {:.0} |",
            ms(median),
            count as f64 / median.as_secs_f64()
        );
    }
    println!();
}

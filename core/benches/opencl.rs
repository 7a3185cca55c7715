//! CPU against the OpenCL backend. Run: `cargo bench -p axonal-core --features opencl --bench opencl`
//! (scripts/gpu-bench runs the same binary on a machine with an NVIDIA GPU). Under `cargo test` it
//! runs once at small scale as a smoke test.
//!
//! - the full-frontier step over uniform graphs of growing size: CPU pool vs device, and the
//!   crossover (the frontier size `opencl_min_edges` should be set to);
//! - Barabási–Albert recalls with every depth on the device (`always`) vs the CPU (`off`).

use std::sync::Arc;
use std::time::{Duration, Instant};

use axonal_core::opencl::OpenClBackend;
use axonal_core::spread::time_full_frontier_step_with_accelerator;
use axonal_core::telemetry::Counter;
use axonal_core::{Cue, Engine, EngineConfig, Graph, PullAccelerator, Recall, SpreadParams, generate};
use serde_json::json;

mod common;

fn main() {
    let full = std::env::args().any(|a| a == "--bench");
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
    step_crossover(&backend, &pool, full);
    recalls(full);
}

fn median(mut v: Vec<Duration>) -> Duration {
    v.sort_unstable();
    v[v.len() / 2]
}

fn step_crossover(backend: &OpenClBackend, pool: &rayon::ThreadPool, full: bool) {
    println!("## Full-frontier step: CPU ({} threads) vs OpenCL device", pool.current_num_threads());
    println!("| nodes | edges | CPU ms | device ms | device / CPU |");
    println!("|---|---|---|---|---|");
    let sizes: &[u32] = if full { &[10_000, 30_000, 100_000, 300_000, 1_000_000] } else { &[2_000, 10_000] };
    let params = SpreadParams::from(&EngineConfig::default().spreading);
    let reps = if full { 9 } else { 2 };
    let mut crossover = None;
    for &n in sizes {
        let m = n as usize * 10;
        let graph = generate::uniform(n, m, 0.1, 7).build().unwrap();
        // First run uploads the graph; not timed.
        time_full_frontier_step_with_accelerator(
            &graph,
            &params,
            Some(pool),
            Some(backend as &dyn PullAccelerator),
            1,
        );
        let mut cpu = Vec::new();
        let mut device = Vec::new();
        for _ in 0..reps {
            cpu.extend(time_full_frontier_step_with_accelerator(&graph, &params, Some(pool), None, 1));
            device.extend(time_full_frontier_step_with_accelerator(
                &graph,
                &params,
                Some(pool),
                Some(backend),
                1,
            ));
        }
        let (cpu, device) = (median(cpu), median(device));
        let ratio = device.as_secs_f64() / cpu.as_secs_f64();
        if ratio < 1.0 && crossover.is_none() {
            crossover = Some(m);
        }
        println!(
            "| {n} | {m} | {:.3} | {:.3} | {ratio:.2} |",
            cpu.as_secs_f64() * 1e3,
            device.as_secs_f64() * 1e3
        );
    }
    match crossover {
        Some(m) => {
            println!("\ncrossover: the device wins from about {m} frontier edges (opencl_min_edges)\n")
        }
        None => println!(
            "\ncrossover: the device did not win at any size measured (keep opencl_min_edges high)\n"
        ),
    }
}

fn recalls(full: bool) {
    println!("## Barabási–Albert recall (m = 4, weight 0.9, every node activated: threshold 0, depth 8)");
    println!("| nodes | backend | median ms | p95 ms | activated |");
    println!("|---|---|---|---|---|");
    let sizes: &[u32] = if full { &[10_000, 100_000, 1_000_000] } else { &[2_000] };
    for &n in sizes {
        let edges = generate::barabasi_albert(n, 4, 0.9, 42);
        let hub = edges.hub();
        let graph: Arc<Graph> = Arc::new(edges.build().unwrap());
        for mode in ["off", "always"] {
            let config = EngineConfig::default()
                .patched(&json!({"opencl": mode, "spreading": {"max_depth": 8, "threshold": 0.0,
                    "tier_timeouts_ms": {"hot": 0, "warm": 0, "cold": 0}, "latency_budget_ms": 60000},
                    "autotune": {"guardrails": {"max_depth": [2, 8]}}}))
                .unwrap();
            let engine = Engine::new(Arc::clone(&graph), config).unwrap();
            let activated = engine.recall(&Cue::nodes([hub]).with_k(n as usize)).unwrap().results.len();
            let cue = Cue::nodes([hub]).with_k(10);
            let mut out = Recall::default();
            engine.recall_into(&cue, &mut out).unwrap();
            let runs = if n >= 1_000_000 {
                10
            } else if full {
                40
            } else {
                2
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
                "| {n} | {} | {:.3} | {:.3} | {activated} |",
                out.stats.backend.as_str(),
                samples[samples.len() / 2].as_secs_f64() * 1e3,
                samples[samples.len() * 95 / 100].as_secs_f64() * 1e3
            );
        }
    }
}

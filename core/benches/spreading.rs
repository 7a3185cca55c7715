//! Spreading benchmarks. Run: `cargo bench -p axonal-core --bench spreading [-- NAME…]` with NAME in
//! `cycle`, `step`, `rmat`, `ba`, `push-pull`, `small`, `shared-pass`, `lanes`, `shard`, `memory` (default: all). Prints a report; the numbers and the machine go into
//! docs/performance.md. Under `cargo test --all-targets` (no `--bench` flag) it runs every scenario
//! once at 1/100 scale as a smoke test.

use std::sync::Arc;
use std::time::{Duration, Instant};

use axonal_core::generate::{self, EdgeList};
use axonal_core::spread::{time_cues, time_full_frontier_step, time_spread};
use axonal_core::{CsrView, Cue, Engine, EngineConfig, Execution, Graph, Recall, SpreadParams, Tier};
use rayon::prelude::*;
use serde_json::json;

mod common;
use common::{ms, percentile, scaled, smoke, status_kib, us};

fn main() {
    let args = common::init();
    if args.first().map(String::as_str) == Some("memory-child") {
        return memory_child();
    }
    let want = |name: &str| args.is_empty() || args.iter().any(|a| a == name);
    machine();
    if want("memory") {
        memory();
    }
    if want("cycle") {
        cycle();
    }
    if want("ba") {
        barabasi_albert();
    }
    if want("step") {
        let (n, m) = (scaled(1_000_000) as u32, scaled(10_000_000));
        full_frontier_step("uniform random graph", || generate::uniform(n, m, 0.1, 7));
    }
    if want("push-pull") {
        let (n, m) = (scaled(1_000_000) as u32, scaled(10_000_000));
        push_pull("uniform random graph", generate::uniform(n, m, 0.1, 7).build().unwrap());
        push_pull(
            "Barabási–Albert graph (m = 4)",
            generate::barabasi_albert(scaled(100_000) as u32, 4, 0.9, 7).build().unwrap(),
        );
    }
    if want("small") {
        small_cues(generate::barabasi_albert(scaled(100_000) as u32, 4, 0.9, 7).build().unwrap());
    }
    if want("shared-pass") {
        shared_pass(
            "Barabási–Albert graph (m = 4)",
            generate::barabasi_albert(scaled(100_000) as u32, 4, 0.9, 7).build().unwrap(),
        );
        let (n, m) = (scaled(1_000_000) as u32, scaled(10_000_000));
        shared_pass("uniform random graph", generate::uniform(n, m, 0.1, 7).build().unwrap());
    }
    if want("lanes") {
        large_cue_batches(generate::barabasi_albert(scaled(100_000) as u32, 4, 0.9, 7).build().unwrap());
    }
    if want("shard") {
        shard_push_pull(generate::barabasi_albert(scaled(1_000_000) as u32, 4, 0.5, 7).build().unwrap());
    }
    if want("rmat") {
        // Graph500's quadrant probabilities: a skewed, power-law degree distribution.
        let scale = if scaled(100) < 100 { 14 } else { 20 };
        full_frontier_step("R-MAT graph (a, b, c = 0.57, 0.19, 0.19)", || {
            generate::rmat(scale, 10, (0.57, 0.19, 0.19), 0.1, 11)
        });
    }
}

/// The machine line, and what a clock read costs here.
fn machine() {
    common::machine();
    let start = Instant::now();
    let mut sink = start;
    let calls = scaled(1_000_000);
    for _ in 0..calls {
        sink = std::hint::black_box(Instant::now());
    }
    println!("Instant::now(): {:.0} ns per call\n", (sink - start).as_nanos() as f64 / calls as f64);
}

fn cycle() {
    let src: Vec<u32> = (0..5).collect();
    let dst: Vec<u32> = (0..5).map(|i| (i + 1) % 5).collect();
    let graph = Graph::from_edges(5, &src, &dst, &[1.0; 5]).unwrap();
    let engine = Engine::new(graph, EngineConfig::default()).unwrap();
    let cue = Cue::nodes([0]);
    let mut out = Recall::default();
    for _ in 0..scaled(20_000) {
        engine.recall_into(&cue, &mut out).unwrap();
    }
    assert_eq!(out.results.len(), 4);
    let calls = scaled(200_000);
    let mut samples = Vec::with_capacity(calls);
    let whole = Instant::now();
    for _ in 0..calls {
        let start = Instant::now();
        engine.recall_into(&cue, &mut out).unwrap();
        samples.push(start.elapsed());
    }
    let whole = whole.elapsed();
    samples.sort_unstable();
    println!(
        "## 5-node cycle recall, depth 3, plain host thread ({} pool threads, {calls} calls)",
        engine.threads()
    );
    println!(
        "p50 {:.2} µs  p90 {:.2} µs  p99 {:.2} µs  max {:.1} µs  mean (untimed loop) {:.2} µs\n",
        us(percentile(&samples, 0.5)),
        us(percentile(&samples, 0.9)),
        us(percentile(&samples, 0.99)),
        us(samples[calls - 1]),
        us(whole) / calls as f64
    );
}

fn barabasi_albert() {
    println!("## Barabási–Albert recall (m = 4, both ways, weight 0.9, depth 4, seeded at the hub)");
    println!("| nodes | config | activated | median ms | p95 ms | source |");
    println!("|---|---|---|---|---|---|");
    for n in [1_000u32, 10_000, 100_000] {
        let n = scaled(n as usize).max(100) as u32;
        let edges = generate::barabasi_albert(n, 4, 0.9, 42);
        let hub = edges.hub();
        let graph = Arc::new(edges.build().unwrap());
        let configs = [
            (
                "depth 1 (hub neighbourhood)",
                json!({"spreading": {"max_depth": 1}, "autotune": {"guardrails": {"max_depth": [1, 6]}}}),
            ),
            ("spec defaults, depth 4", json!({"spreading": {"max_depth": 4}})),
            (
                "every node (threshold 0, depth 8, no timeouts)",
                json!({"spreading": {"max_depth": 8, "threshold": 0.0,
                        "tier_timeouts_ms": {"hot": 0, "warm": 0, "cold": 0}, "latency_budget_ms": 60000},
                       "autotune": {"guardrails": {"max_depth": [2, 8]}}}),
            ),
        ];
        for (name, patch) in configs {
            let engine =
                Engine::new(Arc::clone(&graph), EngineConfig::default().patched(&patch).unwrap()).unwrap();
            let cue = Cue::nodes([hub]).with_k(n as usize);
            let mut out = Recall::default();
            for _ in 0..5 {
                engine.recall_into(&cue, &mut out).unwrap();
            }
            let runs = if !smoke() { if n >= 100_000 { 60 } else { 300 } } else { 3 };
            let mut samples: Vec<Duration> = (0..runs)
                .map(|_| {
                    let start = Instant::now();
                    engine.recall_into(&cue, &mut out).unwrap();
                    start.elapsed()
                })
                .collect();
            samples.sort_unstable();
            if std::env::var_os("AXONAL_BENCH_DEPTHS").is_some() {
                let s = &out.stats;
                eprintln!(
                    "{n} {name}: edges per depth {:?}, pulled {}",
                    &s.edges_traversed[..s.depth_reached as usize],
                    s.pulled
                );
            }
            println!(
                "| {n} | {name} | {} | {:.3} | {:.3} | {:?} |",
                out.results.len(),
                ms(percentile(&samples, 0.5)),
                ms(percentile(&samples, 0.95)),
                out.source
            );
        }
    }
    println!();
}

fn full_frontier_step(name: &str, generate: impl FnOnce() -> EdgeList) {
    let start = Instant::now();
    let edges = generate();
    let generated = start.elapsed();
    let start = Instant::now();
    let graph = edges.build().unwrap();
    let built = start.elapsed();
    drop(edges);
    let (n, m) = (graph.node_count() as u32, graph.edge_count());
    println!("## Full-frontier step, {name}, {n} nodes / {m} edges");
    println!(
        "generate {:.2} s, build (validate + CSR + reverse CSR) {:.2} s",
        generated.as_secs_f64(),
        built.as_secs_f64()
    );
    let params = SpreadParams::from(&EngineConfig::default().spreading);
    let reps = 15.min(scaled(1500));
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
    let csr = graph.in_csr_from(Tier::Hot);
    let send = vec![0.8f32; n as usize];
    let mut next = vec![0f32; n as usize];
    let chunk = params.batch_size as usize * params.execution.nodes_per_batch_unit;
    println!("| threads | engine step ms | bare pull loop ms | ratio | engine edges/s |");
    println!("|---|---|---|---|---|");
    for (label, pool) in [("1", None), (threads.to_string().as_str(), Some(&pool))] {
        // Interleaved, so drift on a noisy machine hits both sides alike.
        let mut engine_times = Vec::with_capacity(reps);
        let mut bare_times = Vec::with_capacity(reps);
        for _ in 0..reps {
            engine_times.extend(time_full_frontier_step(&graph, &params, pool, 1));
            let start = Instant::now();
            match pool {
                None => bare_pull(csr, &send, 0, &mut next),
                Some(pool) => pool.install(|| {
                    next.par_chunks_mut(chunk)
                        .enumerate()
                        .for_each(|(k, out)| bare_pull(csr, &send, k * chunk, out))
                }),
            }
            bare_times.push(start.elapsed());
        }
        std::hint::black_box(&next);
        engine_times.sort_unstable();
        bare_times.sort_unstable();
        let (engine, bare) = (percentile(&engine_times, 0.5), percentile(&bare_times, 0.5));
        println!(
            "| {label} | {:.2} | {:.2} | {:.3} | {:.2e} |",
            ms(engine),
            ms(bare),
            engine.as_secs_f64() / bare.as_secs_f64(),
            m as f64 / engine.as_secs_f64()
        );
    }
    println!();
}

/// The memory-bound limit: a gather with nothing else in it.
fn bare_pull(csr: axonal_core::CsrView<'_>, x: &[f32], base: usize, next: &mut [f32]) {
    let offsets = &csr.offsets[base..base + next.len() + 1];
    for (i, slot) in next.iter_mut().enumerate() {
        let (lo, hi) = (offsets[i] as usize, offsets[i + 1] as usize);
        let mut acc = 0.0f32;
        for (&u, &w) in csr.neighbours[lo..hi].iter().zip(&csr.weights[lo..hi]) {
            acc += x[u as usize] * w;
        }
        *slot = acc;
    }
}

fn memory() {
    let exe = std::env::current_exe().unwrap();
    let mut child = std::process::Command::new(exe);
    child.arg("memory-child");
    if !smoke() {
        child.arg("--bench");
    }
    let output = child.output().unwrap();
    print!("{}", String::from_utf8_lossy(&output.stdout));
}

fn memory_child() {
    let (n, m) = (scaled(1_000_000) as u32, scaled(10_000_000));
    let before = status_kib("VmRSS:");
    let edges: EdgeList = generate::uniform(n, m, 0.1, 7);
    let graph = edges.build().unwrap();
    drop(edges);
    let engine = Engine::new(graph, EngineConfig::default()).unwrap();
    let recall = engine.recall(&Cue::nodes(0..1000)).unwrap();
    std::hint::black_box(recall);
    let graph_bytes = engine.graph().base().memory_bytes();
    let rss = (status_kib("VmRSS:") - before) * 1024;
    let peak = status_kib("VmHWM:") * 1024;
    println!("## Memory, {n} nodes / {m} edges + engine (after one recall)");
    println!(
        "graph arrays {:.1} MiB = {:.1} B/edge; process RSS growth {:.1} MiB = {:.1} B/edge (graph + engine + scratch); \
         peak RSS while generating and building {:.1} MiB\n",
        graph_bytes as f64 / 1048576.0,
        graph_bytes as f64 / m as f64,
        rss as f64 / 1048576.0,
        rss as f64 / m as f64,
        peak as f64 / 1048576.0
    );
}

/// Calibrates the push/pull switch: one depth (depth 1) from random seeds whose out-edges are a given
/// share of all edges, run as a push and as a pull, on 1 and all threads. The share where the pull
/// starts to win is the `pull_share` the engine uses (docs/decisions/0017-batched-recall.md).
fn push_pull(name: &str, graph: Graph) {
    let (n, m) = (graph.node_count(), graph.edge_count());
    println!("## Push or pull, {name}, {n} nodes / {m} edges (one depth; ms, median of interleaved runs)");
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let pool = rayon::ThreadPoolBuilder::new().num_threads(threads).build().unwrap();
    let base = SpreadParams {
        max_depth: 1,
        tier_timeouts: [None; 3],
        ..SpreadParams::from(&EngineConfig::default().spreading)
    };
    let mut order: Vec<u32> = (0..n as u32).collect();
    let mut rng = generate::SplitMix64(5);
    for i in (1..order.len()).rev() {
        order.swap(i, rng.below(i as u64 + 1) as usize);
    }
    let reps = 9.min(scaled(900)).max(1);
    println!(
        "| frontier edges / all edges | push 1 thread | pull 1 thread | push/pull | pull {threads} threads | push/pull | engine's choice, {threads} threads |"
    );
    println!("|---|---|---|---|---|---|---|");
    for share in [256u64, 128, 64, 32, 16, 8, 4] {
        // Seeds in random order until their out-edges reach m / share.
        let mut seeds = Vec::new();
        let mut work = 0u64;
        for &v in &order {
            if work * share >= m as u64 {
                break;
            }
            work += graph.out_degree(v) as u64;
            seeds.push((v, 1.0f32));
        }
        let time = |execution: Execution, pool: Option<&rayon::ThreadPool>| {
            let params = SpreadParams { execution, ..base };
            let mut samples = time_spread(&graph, &params, &seeds, pool, reps + 1).unwrap();
            samples.remove(0); // the first touches the fresh scratch
            samples.sort_unstable();
            percentile(&samples, 0.5)
        };
        let (push, pull) = (Execution::push_only(), Execution::pull_every_depth());
        let (push1, pull1, pull_n) = (time(push, None), time(pull, None), time(pull, Some(&pool)));
        let auto = time(Execution::default(), Some(&pool));
        let chosen = |threads| {
            if work * Execution::default().pull_share_for(n, threads, true) >= m as u64 {
                "pull"
            } else {
                "push"
            }
        };
        println!(
            "| 1/{share} ({work} edges) | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {} {:.2} |",
            ms(push1),
            ms(pull1),
            push1.as_secs_f64() / pull1.as_secs_f64(),
            ms(pull_n),
            push1.as_secs_f64() / pull_n.as_secs_f64(),
            chosen(threads),
            ms(auto),
        );
    }
    println!();
}

/// 256 small cues (5 random seeds, spec defaults: depth 3, k 10) on a Barabási–Albert graph, one
/// after another on one thread and one warm scratch (what a batch task does): the spreading kernel's
/// cost per small cue, without the binding or the pipeline.
fn small_cues(graph: Graph) {
    let n = graph.node_count() as u64;
    let params =
        SpreadParams { tier_timeouts: [None; 3], ..SpreadParams::from(&EngineConfig::default().spreading) };
    let mut rng = generate::SplitMix64(1);
    let cues: Vec<Vec<(u32, f32)>> =
        (0..256).map(|_| (0..5).map(|_| (rng.below(n) as u32, 1.0f32)).collect()).collect();
    let reps = 15.min(scaled(1500)).max(1);
    let mut samples = time_cues(&graph, &params, &cues, 10, None, reps + 1).unwrap();
    samples.remove(0);
    samples.sort_unstable();
    println!(
        "## Small cues: 256 × 5 random seeds, depth 3, k 10, BA {n} nodes / {} edges, 1 thread",
        graph.edge_count()
    );
    println!(
        "per 256 cues: median {:.2} ms, best {:.2} ms ({:.1} µs per cue)\n",
        ms(percentile(&samples, 0.5)),
        ms(samples[0]),
        us(percentile(&samples, 0.5)) / 256.0
    );
}

/// Batches of large cues through the engine (2 threads): `recall` one by one, two threads calling
/// `recall` (how a batch ran its cues before groups shared passes), and `recall_batch` (its first
/// cue alone, then groups of eight sharing passes). Answers are checked equal first.
fn large_cue_batches(graph: Graph) {
    let n = graph.node_count();
    let graph = Arc::new(graph);
    let mut degree: Vec<(usize, u32)> = (0..n as u32).map(|v| (graph.out_degree(v), v)).collect();
    degree.sort_unstable_by(|a, b| b.cmp(a));
    let mut rng = generate::SplitMix64(5);
    let sets: [(&str, Vec<Cue>); 3] = [
        ("8 hubs, one seed each", degree[..8].iter().map(|&(_, v)| Cue::nodes([v])).collect()),
        ("33 hubs, one seed each", degree[..33].iter().map(|&(_, v)| Cue::nodes([v])).collect()),
        (
            "33 cues of 200 random seeds",
            (0..33).map(|_| Cue::nodes((0..200).map(|_| rng.below(n as u64) as u32))).collect(),
        ),
    ];
    let config = EngineConfig::default()
        .patched(&json!({"threads": 2, "opencl": "off", "autotune": {"enabled": false},
            "spreading": {"max_depth": 4, "tier_timeouts_ms": {"hot": 0, "warm": 0, "cold": 0},
                          "latency_budget_ms": 60000},
            "recall": {"k": 100}}))
        .unwrap();
    let engine = Engine::new(Arc::clone(&graph), config).unwrap();
    println!(
        "## Batches of large cues, BA {n} nodes / {} edges, depth 4, k 100, 2 threads (ms per batch, median)",
        graph.edge_count()
    );
    println!(
        "| cues | nodes fired per cue | one by one | two threads | recall_batch | batch / two threads |"
    );
    println!("|---|---|---|---|---|---|");
    let reps = 9.min(scaled(900)).max(1);
    for (name, cues) in &sets {
        let one: Vec<Recall> = cues.iter().map(|c| engine.recall(c).unwrap()).collect();
        let batch = engine.recall_batch(cues).unwrap();
        for (a, b) in one.iter().zip(&batch) {
            assert_eq!(a.results, b.results, "a batch answers each cue as its own recall");
        }
        let shared = batch.iter().filter(|r| r.stats.shared_lanes > 0).count();
        let fired = one.iter().map(|r| r.stats.total_nodes_fired()).sum::<u64>() / cues.len() as u64;
        let (mut alone, mut threads, mut batched) = (Vec::new(), Vec::new(), Vec::new());
        for _ in 0..reps {
            let start = Instant::now();
            cues.iter().for_each(|c| drop(engine.recall(c).unwrap()));
            alone.push(start.elapsed());
            let start = Instant::now();
            std::thread::scope(|scope| {
                let (a, b) = cues.split_at(cues.len() / 2);
                scope.spawn(|| a.iter().for_each(|c| drop(engine.recall(c).unwrap())));
                b.iter().for_each(|c| drop(engine.recall(c).unwrap()));
            });
            threads.push(start.elapsed());
            let start = Instant::now();
            drop(engine.recall_batch(cues).unwrap());
            batched.push(start.elapsed());
        }
        let median = |v: &mut Vec<Duration>| {
            v.sort_unstable();
            percentile(v, 0.5)
        };
        let (alone, threads, batched) = (median(&mut alone), median(&mut threads), median(&mut batched));
        println!(
            "| {name} ({shared} in shared groups) | {fired} | {:.2} | {:.2} | {:.2} | {:.2} |",
            ms(alone),
            ms(threads),
            ms(batched),
            batched.as_secs_f64() / threads.as_secs_f64()
        );
    }
    println!();
}

/// Would batches of large cues gain from sharing graph passes on the CPU? One pull over every in-edge
/// for `lanes` cues at once, their state interleaved node by node (as the OpenCL lanes keep it), against
/// one pass per cue: the same loop, one thread, every node sending (a full-frontier depth). The
/// answers are checked equal first.
fn shared_pass(name: &str, graph: Graph) {
    let n = graph.node_count();
    println!(
        "## Shared graph passes, {name}, {n} nodes / {} edges: a full pull for L cues in one pass vs L passes (1 thread, ms per cue, median)",
        graph.edge_count()
    );
    println!("| cues (lanes) | L passes, per cue | one shared pass, per cue | shared / separate |");
    println!("|---|---|---|---|");
    let csrs: Vec<CsrView<'_>> = Tier::ALL.iter().map(|&t| graph.in_csr_from(t)).collect();
    let reps = 7.min(scaled(700)).max(1);
    for lanes in [1usize, 4, 8, 16, 32] {
        let mut rng = generate::SplitMix64(3);
        let send: Vec<f32> = (0..n * lanes).map(|_| (rng.below(1000) as f32 + 1.0) / 1000.0).collect();
        let separate_send: Vec<Vec<f32>> =
            (0..lanes).map(|l| (0..n).map(|v| send[v * lanes + l]).collect()).collect();
        let mut next = vec![0f32; n * lanes];
        let mut next_one: Vec<Vec<f32>> = vec![vec![0f32; n]; lanes];
        let (mut shared, mut separate) = (Vec::new(), Vec::new());
        for _ in 0..reps {
            let start = Instant::now();
            gather_lanes(&csrs, &send, &mut next, lanes);
            shared.push(start.elapsed());
            let start = Instant::now();
            for (send, next) in separate_send.iter().zip(&mut next_one) {
                gather_lanes(&csrs, send, next, 1);
            }
            separate.push(start.elapsed());
        }
        for (l, one) in next_one.iter().enumerate() {
            assert!(
                one.iter().enumerate().all(|(v, x)| x.to_bits() == next[v * lanes + l].to_bits()),
                "lane {l}"
            );
        }
        shared.sort_unstable();
        separate.sort_unstable();
        let (shared, separate) =
            (percentile(&shared, 0.5) / lanes as u32, percentile(&separate, 0.5) / lanes as u32);
        println!(
            "| {lanes} | {:.2} | {:.2} | {:.2} |",
            ms(separate),
            ms(shared),
            shared.as_secs_f64() / separate.as_secs_f64()
        );
    }
    println!();
}

/// `next[v·lanes + l] = Σ send[u·lanes + l] · w` over v's in-edges, tier by tier in CSR order (the
/// engine's summation order).
fn gather_lanes(csrs: &[CsrView<'_>], send: &[f32], next: &mut [f32], lanes: usize) {
    next.fill(0.0);
    for csr in csrs {
        if csr.offsets.is_empty() {
            continue;
        }
        for (v, out) in next.chunks_exact_mut(lanes).enumerate() {
            let (lo, hi) = (csr.offsets[v] as usize, csr.offsets[v + 1] as usize);
            for (&u, &w) in csr.neighbours[lo..hi].iter().zip(&csr.weights[lo..hi]) {
                let from = &send[u as usize * lanes..(u as usize + 1) * lanes];
                for (o, &x) in out.iter_mut().zip(from) {
                    *o += x * w;
                }
            }
        }
    }
}

/// The shard kernel's push/pull switch (`axonal_core::shard::PULL_SHARE`): a full activation of the
/// graph from node 0 (depth 4, threshold 0) across two shards, each depth's gather timed as a push
/// and as a pull on the first shard, against the frontier's share of the edges.
fn shard_push_pull(graph: Graph) {
    use axonal_core::shard::{Marked, Shard};
    let n = graph.node_count() as u32;
    println!(
        "## Shard kernel, push or pull: BA {n} nodes / {} edges in 2 shards, full activation from node 0 (1 thread, ms, median)",
        graph.edge_count()
    );
    let params = SpreadParams {
        max_depth: 4,
        threshold: 0.0,
        tier_timeouts: [None; 3],
        ..SpreadParams::from(&EngineConfig::default().spreading)
    };
    // Split as `axonal.ray` splits it (ranges of about equal work).
    let split = axonal_core::shard::balanced_ranges(&graph, 2).unwrap();
    let mut shards = [
        Shard::from_graph(&graph, split[0].0, split[0].1).unwrap(),
        Shard::from_graph(&graph, split[1].0, split[1].1).unwrap(),
    ];
    // times[share][depth]: the first shard's gathers under always-push (0) and always-pull.
    let reps = 5.min(scaled(500)).max(1);
    let mut times = [vec![Vec::new(); 4], vec![Vec::new(); 4]];
    let mut shares = [0.0; 4];
    for _ in 0..reps {
        for (which, share) in [(0, 0), (1, u64::MAX)] {
            for shard in &mut shards {
                shard.set_pull_share(share);
                shard.begin(&params, &[(0, 1.0)]).unwrap();
            }
            let mut parts: Vec<Marked> = shards.iter_mut().map(|s| s.mark().unwrap()).collect();
            for d in 0..4 {
                let merged = Marked::merge(&parts);
                let work = merged.edges;
                if merged.ids.is_empty() {
                    break;
                }
                shares[d] = work as f64 / graph.edge_count() as f64;
                let view = merged.view();
                let start = Instant::now();
                shards[0].gather(view, work).unwrap();
                times[which][d].push(start.elapsed());
                shards[1].gather(view, work).unwrap();
                parts = shards.iter_mut().map(|s| s.mark().unwrap()).collect();
            }
            for shard in &mut shards {
                shard.collect(10).unwrap();
            }
        }
    }
    // The kernel's whole recall against the engine's, on one thread: both shards one after the
    // other (the same work as one engine), with the default switch.
    let (mut whole, mut sharded, mut phases) = (Vec::new(), Vec::new(), [Duration::ZERO; 4]);
    for shard in &mut shards {
        shard.set_pull_share(axonal_core::shard::PULL_SHARE);
    }
    for _ in 0..reps {
        let start = Instant::now();
        let (single, _) = axonal_core::spread_standalone(&graph, &params, &[(0, 1.0)], None, None).unwrap();
        whole.push(start.elapsed());
        let start = Instant::now();
        let mut lap = Instant::now();
        let mut parts: Vec<Marked> = shards
            .iter_mut()
            .map(|s| {
                s.begin(&params, &[(0, 1.0)]).unwrap();
                s.mark().unwrap()
            })
            .collect();
        phases[0] += lap.elapsed();
        loop {
            let merged = Marked::merge(&parts);
            if merged.ids.is_empty() {
                break;
            }
            let work = merged.edges;
            let view = merged.view();
            lap = Instant::now();
            for shard in &mut shards {
                shard.gather(view, work).unwrap();
            }
            phases[1] += lap.elapsed();
            lap = Instant::now();
            parts = shards.iter_mut().map(|s| s.mark().unwrap()).collect();
            phases[2] += lap.elapsed();
        }
        lap = Instant::now();
        let count: usize = shards.iter_mut().map(|s| s.collect(usize::MAX).unwrap().results.len()).sum();
        phases[3] += lap.elapsed();
        sharded.push(start.elapsed());
        assert_eq!(count, single.len());
    }
    whole.sort_unstable();
    sharded.sort_unstable();
    let per = |d: Duration| ms(d / reps as u32);
    println!(
        "Whole recall, 1 thread: one engine {:.1} ms, the two shards one after the other {:.1} ms ({:.2}×; begin {:.1}, gathers {:.1}, marks {:.1}, collects {:.1} ms)",
        ms(percentile(&whole, 0.5)),
        ms(percentile(&sharded, 0.5)),
        percentile(&sharded, 0.5).as_secs_f64() / percentile(&whole, 0.5).as_secs_f64(),
        per(phases[0]),
        per(phases[1]),
        per(phases[2]),
        per(phases[3]),
    );
    println!();
    println!("| depth | frontier out-edges / all edges | push | pull | pull / push |");
    println!("|---|---|---|---|---|");
    for d in 0..4 {
        if times[0][d].is_empty() {
            break;
        }
        let median = |v: &mut Vec<Duration>| {
            v.sort_unstable();
            percentile(v, 0.5)
        };
        let (push, pull) = (median(&mut times[0][d]), median(&mut times[1][d]));
        println!(
            "| {d} | 1/{:.0} | {:.2} | {:.2} | {:.2} |",
            1.0 / shares[d].max(1e-12),
            ms(push),
            ms(pull),
            pull.as_secs_f64() / push.as_secs_f64()
        );
    }
    println!();
}

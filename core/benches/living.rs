//! Living-graph benchmarks (docs/spec.md §16–17). Run: `cargo bench -p axonal-core --bench living
//! [-- NAME…]` with NAME in `inserts`, `recall`, `compaction`, `snapshot` (default: all). Prints a
//! report; the numbers and the machine go into docs/performance.md. Under `cargo test --all-targets`
//! (no `--bench` flag) every scenario runs once at 1/100 scale as a smoke test.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axonal_core::generate::{self, SplitMix64 as Rng};
use axonal_core::{Cue, Engine, EngineConfig, Graph, Recall};
use serde_json::json;

mod common;
use common::{machine, ms, percentile, scaled, smoke, status_kib};

fn main() {
    let args = common::init();
    if args.first().map(String::as_str) == Some("compaction-child") {
        return compaction_child();
    }
    let want = |name: &str| args.is_empty() || args.iter().any(|a| a == name);
    machine();
    println!();
    if want("inserts") {
        inserts();
    }
    if want("recall") {
        recall_under_writes();
    }
    if want("compaction") {
        compaction();
    }
    if want("snapshot") {
        snapshot();
    }
}

fn quiet_config() -> EngineConfig {
    // Timeouts off: a recall is measured whole, never cut short.
    EngineConfig::default()
        .patched(&json!({"autotune": {"enabled": false},
                         "spreading": {"tier_timeouts_ms": {"hot": 0, "warm": 0, "cold": 0},
                                       "latency_budget_ms": 60000}}))
        .unwrap()
}

/// A batch of `count` random edges on `n` nodes.
fn random_edges(rng: &mut Rng, n: u32, count: usize) -> (Vec<u32>, Vec<u32>, Vec<f32>) {
    let src = (0..count).map(|_| rng.below(n as u64) as u32).collect();
    let dst = (0..count).map(|_| rng.below(n as u64) as u32).collect();
    let weight = (0..count).map(|_| 0.1 + 0.9 * rng.unit() as f32).collect();
    (src, dst, weight)
}

/// One writer, batches of 10 000 edges, on a 1 M-node graph, with background compaction on.
fn inserts() {
    let (n, m) = (scaled(1_000_000) as u32, scaled(8_000_000));
    let batch = scaled(10_000);
    let graph = generate::uniform(n, m, 0.1, 7).build().unwrap();
    let mut config = quiet_config();
    if let Some(threshold) = std::env::var("AXONAL_BENCH_THRESHOLD").ok().and_then(|t| t.parse::<u64>().ok())
    {
        config = config.patched(&json!({"compaction": {"max_delta_edges": threshold}})).unwrap();
    }
    let engine = Engine::new(graph, config).unwrap();
    let mut rng = Rng(99);
    let batches: Vec<_> =
        (0..if smoke() { 20 } else { 400 }).map(|_| random_edges(&mut rng, n, batch)).collect();
    let mut times = Vec::with_capacity(batches.len());
    let start = Instant::now();
    for (src, dst, weight) in &batches {
        let t = Instant::now();
        engine.add_edges(src, dst, weight).unwrap();
        times.push(t.elapsed());
    }
    let whole = start.elapsed();
    let inserted = batches.len() * batch;
    times.sort_unstable();
    let g = engine.spreading_section().graph;
    let compaction_seconds = metric(&engine, "axonal_spreading_graph_compaction_seconds_sum");
    println!(
        "## Edge inserts: one writer, batches of {batch}, {n} nodes / {m} edges, background compaction on"
    );
    println!(
        "{inserted} edges in {:.2} s = **{:.2} M inserts/s**; per batch p50 {:.2} ms, p99 {:.2} ms, max {:.2} ms; \
         {} compactions (threshold {} edges, mean {:.0} ms), {} changes pending at the end\n",
        whole.as_secs_f64(),
        inserted as f64 / whole.as_secs_f64() / 1e6,
        ms(percentile(&times, 0.5)),
        ms(percentile(&times, 0.99)),
        ms(times[times.len() - 1]),
        g.compactions_total,
        g.compaction_threshold_edges,
        compaction_seconds * 1e3 / g.compactions_total.max(1) as f64,
        g.delta_edges,
    );
}

/// A metric's value from the engine's Prometheus exposition.
fn metric(engine: &Engine, name: &str) -> f64 {
    let text = engine.prometheus_text();
    text.lines()
        .find_map(|l| l.strip_prefix(name).and_then(|rest| rest.trim().parse().ok()))
        .unwrap_or(f64::NAN)
}

/// Recall p99 on a BA graph while a writer streams 100 000 inserts/s, against quiet blocks in the
/// same run.
fn recall_under_writes() {
    let n = scaled(1_000_000) as u32;
    let edges = generate::barabasi_albert(n, 4, 0.9, 42);
    let graph = edges.build().unwrap();
    let engine = Arc::new(Engine::new(graph, quiet_config()).unwrap());
    let mut rng = Rng(5);
    let cues: Vec<Cue> = (0..64).map(|_| Cue::nodes([rng.below(n as u64) as u32]).with_k(100)).collect();
    let mut out = Recall::default();
    for cue in &cues {
        engine.recall_into(cue, &mut out).unwrap();
    }
    let rate = scaled(100_000) as f64;
    let batch = scaled(1_000);
    let writing = Arc::new(AtomicBool::new(false));
    let stop = Arc::new(AtomicBool::new(false));
    let written = Arc::new(AtomicU64::new(0));
    let writer = {
        let (engine, writing, stop, written) =
            (Arc::clone(&engine), Arc::clone(&writing), Arc::clone(&stop), Arc::clone(&written));
        std::thread::spawn(move || {
            let mut rng = Rng(77);
            let period = Duration::from_secs_f64(batch as f64 / rate);
            let mut next = Instant::now();
            while !stop.load(Ordering::Acquire) {
                if !writing.load(Ordering::Acquire) {
                    std::thread::sleep(Duration::from_millis(1));
                    next = Instant::now();
                    continue;
                }
                let (src, dst, weight) = random_edges(&mut rng, n, batch);
                engine.add_edges(&src, &dst, &weight).unwrap();
                written.fetch_add(batch as u64, Ordering::Relaxed);
                next += period;
                if let Some(wait) = next.checked_duration_since(Instant::now()) {
                    std::thread::sleep(wait);
                }
            }
        })
    };
    let blocks = if smoke() { 2 } else { 10 };
    let per_block = if smoke() { 20 } else { 400 };
    let (mut quiet, mut busy) = (Vec::new(), Vec::new());
    let mut busy_time = Duration::ZERO;
    let written_before = written.load(Ordering::Relaxed);
    for block in 0..blocks * 2 {
        let under_writes = block % 2 == 1;
        writing.store(under_writes, Ordering::Release);
        std::thread::sleep(Duration::from_millis(20));
        let started = Instant::now();
        let samples = if under_writes { &mut busy } else { &mut quiet };
        for i in 0..per_block {
            let t = Instant::now();
            engine.recall_into(&cues[i % cues.len()], &mut out).unwrap();
            samples.push(t.elapsed());
        }
        if under_writes {
            busy_time += started.elapsed();
        }
    }
    writing.store(false, Ordering::Release);
    stop.store(true, Ordering::Release);
    writer.join().unwrap();
    let inserted = written.load(Ordering::Relaxed) - written_before;
    quiet.sort_unstable();
    busy.sort_unstable();
    let g = engine.spreading_section().graph;
    println!(
        "## Recall on a Barabási–Albert graph ({n} nodes, {} edges, depth 3, one seed) while a writer streams {rate:.0} \
         inserts/s in batches of {batch}",
        edges.src.len()
    );
    println!("| blocks | recalls | p50 ms | p99 ms | max ms |");
    println!("|---|---|---|---|---|");
    for (name, s) in [("quiet", &quiet), ("writer streaming", &busy)] {
        println!(
            "| {name} | {} | {:.3} | {:.3} | {:.3} |",
            s.len(),
            ms(percentile(s, 0.5)),
            ms(percentile(s, 0.99)),
            ms(s[s.len() - 1])
        );
    }
    println!(
        "p99 ratio (streaming / quiet) **{:.2}×**; {inserted} edges written, {:.0} inserts/s during the streaming \
         blocks' recalls (the writer also ran during 20 ms settles); {} compactions, version {}\n",
        ms(percentile(&busy, 0.99)) / ms(percentile(&quiet, 0.99)),
        inserted as f64 / busy_time.as_secs_f64().max(1e-9),
        g.compactions_total,
        g.version,
    );
}

/// The longest recall while a 10 M-edge compaction runs, against the quiet maximum; the
/// compaction's peak memory in a child process.
fn compaction() {
    let (n, m) = (scaled(1_000_000) as u32, scaled(10_000_000));
    let graph = generate::uniform(n, m, 0.1, 7).build().unwrap();
    let config = quiet_config().patched(&json!({"compaction": {"max_delta_edges": u32::MAX}})).unwrap();
    let engine = Arc::new(Engine::new(graph, config).unwrap());
    let mut rng = Rng(3);
    let cues: Vec<Cue> = (0..64).map(|_| Cue::nodes([rng.below(n as u64) as u32]).with_k(100)).collect();
    let pending = scaled(100_000);
    let mut out = Recall::default();
    let (mut quiet, mut during, mut took) = (Vec::new(), Vec::new(), Vec::new());
    let mut block = 500;
    // Alternate: a quiet block of recalls, then as many recalls as fit in a compaction.
    for _ in 0..if smoke() { 1 } else { 5 } {
        let (src, dst, weight) = random_edges(&mut rng, n, pending);
        engine.add_edges(&src, &dst, &weight).unwrap();
        for i in 0..block {
            let t = Instant::now();
            engine.recall_into(&cues[i % cues.len()], &mut out).unwrap();
            quiet.push(t.elapsed());
        }
        let compacting = Arc::new(AtomicBool::new(true));
        let compactor = {
            let (engine, compacting) = (Arc::clone(&engine), Arc::clone(&compacting));
            std::thread::spawn(move || {
                let t = Instant::now();
                engine.compact().unwrap();
                compacting.store(false, Ordering::Release);
                t.elapsed()
            })
        };
        let mut calls = 0;
        while compacting.load(Ordering::Acquire) {
            let t = Instant::now();
            engine.recall_into(&cues[calls % cues.len()], &mut out).unwrap();
            during.push(t.elapsed());
            calls += 1;
        }
        took.push(compactor.join().unwrap());
        block = calls.max(50);
    }
    quiet.sort_unstable();
    during.sort_unstable();
    took.sort_unstable();
    let quiet_max = quiet[quiet.len() - 1];
    let during_max = during.last().copied().unwrap_or_default();
    println!(
        "## Compaction of {} edges ({pending} pending) while one thread recalls ({n} nodes, uniform)",
        m + pending
    );
    println!(
        "{} compactions, median {:.0} ms; recalls in quiet blocks: {} calls, p50 {:.3} ms, max {:.3} ms; during \
         compactions: {} calls, p50 {:.3} ms, max {:.3} ms: max ratio **{:.2}×**",
        took.len(),
        ms(percentile(&took, 0.5)),
        quiet.len(),
        ms(percentile(&quiet, 0.5)),
        ms(quiet_max),
        during.len(),
        ms(percentile(&during, 0.5)),
        ms(during_max),
        ms(during_max) / ms(quiet_max)
    );
    let exe = std::env::current_exe().unwrap();
    let mut child = std::process::Command::new(exe);
    child.arg("compaction-child");
    if !smoke() {
        child.arg("--bench");
    }
    let output = child.output().unwrap();
    print!("{}", String::from_utf8_lossy(&output.stdout));
    println!();
}

/// In a child: the graph's RSS, then the peak while a compaction of it runs.
fn compaction_child() {
    let (n, m) = (scaled(1_000_000) as u32, scaled(10_000_000));
    let config =
        quiet_config().patched(&json!({"compaction": {"max_delta_edges": u32::MAX}, "threads": 1})).unwrap();
    let before = status_kib("VmRSS:");
    let graph = generate::uniform(n, m, 0.1, 7).build().unwrap();
    let engine = Engine::new(graph, config).unwrap();
    let mut rng = Rng(3);
    let (src, dst, weight) = random_edges(&mut rng, n, scaled(100_000));
    engine.add_edges(&src, &dst, &weight).unwrap();
    drop((src, dst, weight));
    let graph_bytes = engine.graph().base().memory_bytes() as f64;
    let resting = (status_kib("VmRSS:") - before) as f64 * 1024.0;
    // Reset the peak to the current RSS, then compact.
    let _ = std::fs::write("/proc/self/clear_refs", "5");
    engine.compact().unwrap();
    let peak = (status_kib("VmHWM:") - before) as f64 * 1024.0;
    let extra = peak - resting;
    println!(
        "peak memory: graph arrays {:.1} MiB; the process at rest (graph, {} pending changes, engine scratch) {:.1} \
         MiB, at the compaction's peak {:.1} MiB: the compaction adds {:.1} MiB, so the graph's memory peaks at \
         **{:.2}× the graph**",
        graph_bytes / 1048576.0,
        scaled(100_000),
        resting / 1048576.0,
        peak / 1048576.0,
        extra / 1048576.0,
        (graph_bytes + extra) / graph_bytes
    );
}

/// Save throughput, load time against a build from arrays, first recall after load against a warm one.
fn snapshot() {
    let (n, m) = (scaled(1_000_000) as u32, scaled(10_000_000));
    let edges = generate::uniform(n, m, 0.1, 7);
    let t = Instant::now();
    let graph = edges.build().unwrap();
    let build = t.elapsed();
    let dir = std::env::temp_dir().join(format!("axonal-bench-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("graph.axs");
    let mut saves = Vec::new();
    let mut bytes = 0;
    for _ in 0..3 {
        let stats = graph.save(&path).unwrap();
        bytes = stats.bytes;
        saves.push((stats.elapsed, stats.synced));
    }
    saves.sort_unstable();
    let (save, synced) = saves[1];
    drop(graph);
    let mut loads = Vec::new();
    for _ in 0..5 {
        let t = Instant::now();
        let g = Graph::load(&path).unwrap();
        loads.push(t.elapsed());
        std::hint::black_box(g);
    }
    loads.sort_unstable();
    // First recall on a freshly loaded engine, against the same recall warm.
    let mut rng = Rng(1);
    let cue = Cue::nodes((0..100).map(|_| rng.below(n as u64) as u32)).with_k(100);
    let mut firsts = Vec::new();
    let mut warms = Vec::new();
    for _ in 0..5 {
        let engine = Engine::new(Graph::load(&path).unwrap(), quiet_config()).unwrap();
        let t = Instant::now();
        engine.recall(&cue).unwrap();
        firsts.push(t.elapsed());
        for _ in 0..5 {
            engine.recall(&cue).unwrap();
        }
        let t = Instant::now();
        engine.recall(&cue).unwrap();
        warms.push(t.elapsed());
    }
    firsts.sort_unstable();
    warms.sort_unstable();
    let _ = std::fs::remove_dir_all(&dir);
    println!(
        "## Snapshots of {n} nodes / {m} edges ({:.1} MiB file, page cache warm)",
        bytes as f64 / 1048576.0
    );
    println!(
        "save median {:.0} ms = **{:.0} MB/s** (temp file, fsync, rename), of which {:.0} ms syncing: {:.0} MB/s \
         before the sync; load median **{:.1} ms** (map + verify every checksum and structure) vs build from arrays \
         {:.0} ms ({:.0}× faster); first recall after load median {:.3} ms vs warm {:.3} ms = **{:.2}×**\n",
        ms(save),
        bytes as f64 / save.as_secs_f64() / 1e6,
        ms(synced),
        bytes as f64 / (save - synced).as_secs_f64() / 1e6,
        ms(percentile(&loads, 0.5)),
        ms(build),
        build.as_secs_f64() / percentile(&loads, 0.5).as_secs_f64(),
        ms(percentile(&firsts, 0.5)),
        ms(percentile(&warms, 0.5)),
        ms(percentile(&firsts, 0.5)) / ms(percentile(&warms, 0.5)),
    );
}

//! Embedding index benchmark (docs/spec.md §18). Run: `cargo bench -p axonal-core --bench similarity
//! [-- NxDIM…]` (default: `100000x128 100000x384 1000000x128`). For each size, on a Gaussian mixture
//! of 1 000 clusters: the engine's index build (throughput, bytes per vector), top-5 agreement with
//! the exact scan and query latency over `ef_search`, the exact scan's time beside it, the similarity
//! fallback under an open breaker with the index and with the scan, and a snapshot's save and load
//! against reading the raw vectors. Under `cargo test --all-targets` one size runs at 1/100 scale.

use std::io::Write;
use std::time::{Duration, Instant};

use axonal_core::config::IndexMode;
use axonal_core::generate::{mixture, mixture_queries};
use axonal_core::similarity::{query_norm, top_similar};
use axonal_core::{BreakerOverride, Cue, Engine, EngineConfig, GraphBuilder};

mod common;
use common::{machine, ms, percentile, scaled, smoke, status_kib, us};

const CLUSTERS: usize = 1000;
const K: usize = 5;
const EF: [usize; 5] = [16, 32, 64, 128, 256];

fn main() {
    let args = common::init();
    machine();
    let sizes: Vec<(usize, usize)> = if smoke() {
        vec![(scaled(100_000), 32)]
    } else if args.is_empty() {
        vec![(100_000, 128), (100_000, 384), (1_000_000, 128)]
    } else {
        args.iter()
            .map(|a| {
                let (n, d) = a.split_once('x').expect("NxDIM");
                (n.parse().expect("N"), d.parse().expect("DIM"))
            })
            .collect()
    };
    for (n, dim) in sizes {
        run(n, dim);
    }
}

fn config(mode: IndexMode) -> EngineConfig {
    let mut c = EngineConfig::default();
    c.similarity.index = mode;
    c.threads = 1;
    c.health.interval_ms = 3_600_000;
    c
}

fn run(n: usize, dim: usize) {
    println!("\n== {n} vectors x {dim} dims, {CLUSTERS} clusters, top-{K} ==");
    let data = mixture(n, dim, CLUSTERS, 42);
    let mut b = GraphBuilder::new(n as u32);
    for v in 0..n {
        b.set_embedding(v as u32, &data[v * dim..(v + 1) * dim]).expect("embedding");
    }
    let graph = std::sync::Arc::new(b.build().expect("graph"));
    let dir = tempfile::tempdir().expect("temp dir");
    let raw = dir.path().join("vectors.f32");
    std::fs::File::create(&raw).and_then(|mut f| f.write_all(bytes_of(&data))).expect("writing raw vectors");
    drop(data);

    let rss_before = status_kib("VmRSS:");
    let started = Instant::now();
    let engine = Engine::new(std::sync::Arc::clone(&graph), config(IndexMode::Ann)).expect("engine");
    assert!(engine.wait_for_similarity_index(Duration::from_secs(7200)), "index build");
    let build = started.elapsed();
    let status = engine.similarity_status();
    let rss_after = status_kib("VmRSS:");
    println!(
        "build: {:.1} s on {} threads = {:.0} vectors/s; index {} bytes = {:.0} bytes/vector (process RSS +{:.0} bytes/vector)",
        build.as_secs_f64(),
        std::thread::available_parallelism().map_or(1, |c| c.get()),
        n as f64 / build.as_secs_f64(),
        status.bytes,
        status.bytes as f64 / n as f64,
        (rss_after.saturating_sub(rss_before) * 1024) as f64 / n as f64,
    );

    let queries = mixture_queries(if smoke() { 20 } else { 300 }, dim, CLUSTERS, 42);
    let version = engine.graph();
    let view = version.view();
    let mut reference = Vec::new();
    let mut scan = Vec::new();
    for q in queries.chunks_exact(dim) {
        let mut out = Vec::new();
        let t = Instant::now();
        top_similar(view, q, query_norm(view, q).expect("query"), K, f32::MIN, &mut out);
        scan.push(t.elapsed());
        reference.push(out.into_iter().map(|(v, _)| v).collect::<Vec<u32>>());
    }
    scan.sort();
    println!(
        "exact scan (today's similarity search): p50 {:.2} ms p99 {:.2} ms per query",
        ms(percentile(&scan, 0.5)),
        ms(percentile(&scan, 0.99))
    );

    // The similarity fallback, as a host sees it: recalls with an embedding under a forced-open
    // breaker, answered from the index at each ef_search.
    engine.set_breaker_override(BreakerOverride::ForcedOpen);
    println!("ef_search  agreement  fallback p50 (µs)  p99 (µs)");
    for ef in EF {
        engine.update_config_json(&format!(r#"{{"similarity": {{"ef_search": {ef}}}}}"#)).expect("ef");
        let (agreement, latency) = measure(&engine, &queries, dim, &reference);
        println!(
            "{ef:>9}  {:>9.4}  {:>17.0}  {:>8.0}",
            agreement,
            us(percentile(&latency, 0.5)),
            us(percentile(&latency, 0.99))
        );
    }
    engine.update_config_json(r#"{"similarity": {"ef_search": 64}}"#).expect("ef");
    let (_, ann) = measure(&engine, &queries, dim, &reference);
    // Today's scan: an engine in the exact mode over the same graph (switching this one to exact
    // would drop its index, and switching back rebuild it).
    let scanning = Engine::new(graph, config(IndexMode::Exact)).expect("engine");
    scanning.set_breaker_override(BreakerOverride::ForcedOpen);
    let few = &queries[..dim * (queries.len() / dim).min(if smoke() { 5 } else { 50 })];
    let (exact_agreement, exact) = measure(&scanning, few, dim, &reference);
    drop(scanning);
    assert_eq!(exact_agreement, 1.0, "the exact mode is exact");
    println!(
        "fallback under an open breaker (default ef_search 64): index p50 {:.0} µs, exact scan p50 {:.0} µs: {:.0}x faster",
        us(percentile(&ann, 0.5)),
        us(percentile(&exact, 0.5)),
        percentile(&exact, 0.5).as_secs_f64() / percentile(&ann, 0.5).as_secs_f64()
    );

    // Snapshots: save with the index, load it (no rebuild), against reading the raw vectors.
    let path = dir.path().join("g.axs");
    let t = Instant::now();
    engine.save(&path).expect("save");
    let save = t.elapsed();
    drop(engine);
    let size = std::fs::metadata(&path).map_or(0, |m| m.len());
    let mut read_raw = Vec::new();
    let mut load_with = Vec::new();
    for _ in 0..3 {
        let t = Instant::now();
        let vectors = std::fs::read(&raw).expect("raw read");
        read_raw.push(t.elapsed());
        drop(vectors);
        let t = Instant::now();
        let loaded = Engine::load(&path, config(IndexMode::Ann)).expect("load");
        load_with.push(t.elapsed());
        let status = loaded.similarity_status();
        assert_eq!((status.method, status.size as usize), ("ann", n), "loaded, not rebuilt");
    }
    let exact_load = {
        let t = Instant::now();
        let _loaded = Engine::load(&path, config(IndexMode::Exact)).expect("load");
        t.elapsed()
    };
    read_raw.sort();
    load_with.sort();
    let index_load = load_with[1].saturating_sub(exact_load);
    println!(
        "snapshot {:.0} MB: save {:.2} s; load with the index {:.0} ms (graph only {:.0} ms, so the index {:.0} ms); raw vectors read {:.0} ms: index load = {:.2}x the raw read",
        size as f64 / 1e6,
        save.as_secs_f64(),
        ms(load_with[1]),
        ms(exact_load),
        ms(index_load),
        ms(read_raw[1]),
        index_load.as_secs_f64() / read_raw[1].as_secs_f64()
    );
}

/// Top-`K` agreement with `reference` and the latency of each fallback recall.
fn measure(engine: &Engine, queries: &[f32], dim: usize, reference: &[Vec<u32>]) -> (f64, Vec<Duration>) {
    let (mut agree, mut total) = (0, 0);
    let mut latency = Vec::new();
    for (q, want) in queries.chunks_exact(dim).zip(reference) {
        let cue = Cue::embedding(q.to_vec()).with_k(K);
        let t = Instant::now();
        let r = engine.recall(&cue).expect("recall");
        latency.push(t.elapsed());
        agree += r.results.iter().filter(|a| want.contains(&a.node)).count();
        total += want.len();
    }
    latency.sort();
    (agree as f64 / total.max(1) as f64, latency)
}

fn bytes_of(values: &[f32]) -> &[u8] {
    // SAFETY: f32 has no padding and any byte is a valid u8.
    unsafe { std::slice::from_raw_parts(values.as_ptr().cast(), std::mem::size_of_val(values)) }
}

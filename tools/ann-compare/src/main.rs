//! Measures the candidate ANN libraries for the embedding index (issue 16, decision 0016) on the
//! data it serves: a Gaussian mixture of 1 000 clusters, cosine similarity, top-5 (the default
//! `seed_k`) against an exact scan. Prints a Markdown report.
//!
//! Run: `CARGO_TARGET_DIR=target/ann-compare cargo run --release --manifest-path
//! tools/ann-compare/Cargo.toml -- [N] [DIM] [QUERIES]` (defaults 100000 128 500).

use std::time::{Duration, Instant};

use hnsw_rs::anndists::dist::DistCosine;
use rayon::prelude::*;

const CLUSTERS: usize = 1000;
const K: usize = 5;
const CONNECTIVITY: usize = 16;
const EF_CONSTRUCTION: usize = 128;
const EF_SEARCH: [usize; 5] = [16, 32, 64, 128, 256];

/// SplitMix64 and a Box–Muller normal: the data is reproducible and needs no crate.
struct Rng(u64);

impl Rng {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }
    fn uniform(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }
    fn normal(&mut self) -> f32 {
        let (u, v) = (self.uniform().max(1e-12), self.uniform());
        ((-2.0 * u.ln()).sqrt() * (2.0 * std::f64::consts::PI * v).cos()) as f32
    }
}

/// `n` unit vectors of `dim` from a mixture of [`CLUSTERS`] Gaussians (centres N(0, 1), spread 0.5).
fn mixture(rng: &mut Rng, centres: &[Vec<f32>], n: usize, dim: usize) -> Vec<f32> {
    let mut out = Vec::with_capacity(n * dim);
    for _ in 0..n {
        let c = &centres[(rng.next() % centres.len() as u64) as usize];
        let start = out.len();
        out.extend(c.iter().map(|&x| x + 0.5 * rng.normal()));
        normalise(&mut out[start..]);
    }
    out
}

fn normalise(v: &mut [f32]) {
    let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
    v.iter_mut().for_each(|x| *x /= norm);
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}

/// Exact top-`K` ids by cosine (the vectors are unit length).
fn exact(data: &[f32], dim: usize, q: &[f32]) -> Vec<u64> {
    let mut best: Vec<(f32, u64)> = Vec::with_capacity(K + 1);
    for (i, row) in data.chunks_exact(dim).enumerate() {
        let s = dot(row, q);
        if best.len() < K || s > best[best.len() - 1].0 {
            best.push((s, i as u64));
            best.sort_by(|a, b| b.0.total_cmp(&a.0));
            best.truncate(K);
        }
    }
    best.into_iter().map(|(_, i)| i).collect()
}

fn rss_kib() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with("VmRSS:"))
        .and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        .unwrap_or(0)
}

struct Row {
    ef: usize,
    recall: f64,
    p50: Duration,
    p99: Duration,
}

fn measure(
    queries: &[f32],
    dim: usize,
    truth: &[Vec<u64>],
    mut search: impl FnMut(&[f32]) -> Vec<u64>,
) -> Row {
    let mut times = Vec::new();
    let mut hits = 0;
    for (q, want) in queries.chunks_exact(dim).zip(truth) {
        let t = Instant::now();
        let got = search(q);
        times.push(t.elapsed());
        hits += got.iter().take(K).filter(|id| want.contains(id)).count();
    }
    times.sort_unstable();
    Row {
        ef: 0,
        recall: hits as f64 / (truth.len() * K) as f64,
        p50: times[times.len() / 2],
        p99: times[times.len() * 99 / 100],
    }
}

fn report(name: &str, build: Duration, bytes: u64, n: usize, rows: &[Row]) {
    println!(
        "### {name}\nbuild {:.1} s ({:.0} vectors/s), memory {:.1} MiB ({:.0} bytes per vector, vectors included)\n",
        build.as_secs_f64(),
        n as f64 / build.as_secs_f64(),
        bytes as f64 / 1048576.0,
        bytes as f64 / n as f64
    );
    println!("| ef_search | top-{K} agreement | p50 µs | p99 µs |\n|---|---|---|---|");
    for r in rows {
        println!(
            "| {} | {:.3} | {:.0} | {:.0} |",
            r.ef,
            r.recall,
            r.p50.as_secs_f64() * 1e6,
            r.p99.as_secs_f64() * 1e6
        );
    }
    println!();
}

#[derive(Clone)]
struct Unit(Vec<f32>);

impl instant_distance::Point for Unit {
    fn distance(&self, other: &Self) -> f32 {
        1.0 - dot(&self.0, &other.0)
    }
}

fn main() {
    let args: Vec<usize> = std::env::args().skip(1).filter_map(|a| a.parse().ok()).collect();
    let n = args.first().copied().unwrap_or(100_000);
    let dim = args.get(1).copied().unwrap_or(128);
    let nq = args.get(2).copied().unwrap_or(500);
    let only: Vec<String> = std::env::args().skip(1).filter(|a| a.parse::<usize>().is_err()).collect();
    let want = |name: &str| only.is_empty() || only.iter().any(|o| o == name);
    let threads = rayon::current_num_threads();
    println!(
        "## {n} vectors × {dim}, {CLUSTERS} clusters, {nq} queries, top-{K}, M = {CONNECTIVITY}, ef_construction = {EF_CONSTRUCTION}, {threads} threads\n"
    );

    let mut rng = Rng(42);
    let centres: Vec<Vec<f32>> = (0..CLUSTERS).map(|_| (0..dim).map(|_| rng.normal()).collect()).collect();
    let data = mixture(&mut rng, &centres, n, dim);
    let queries = mixture(&mut rng, &centres, nq, dim);
    let t = Instant::now();
    let truth: Vec<Vec<u64>> = queries.par_chunks_exact(dim).map(|q| exact(&data, dim, q)).collect();
    let scan = t.elapsed() * threads as u32 / nq as u32;
    println!("exact scan: {:.2} ms per query (one thread)\n", scan.as_secs_f64() * 1e3);

    if want("usearch") {
        let before = rss_kib();
        let t = Instant::now();
        let options = usearch::IndexOptions {
            dimensions: dim,
            metric: usearch::MetricKind::Cos,
            quantization: usearch::ScalarKind::F32,
            connectivity: CONNECTIVITY,
            expansion_add: EF_CONSTRUCTION,
            expansion_search: 64,
            multi: false,
        };
        let index = usearch::Index::new(&options).unwrap();
        index.reserve_capacity_and_threads(n, threads).unwrap();
        data.par_chunks_exact(dim).enumerate().for_each(|(i, v)| index.add(i as u64, v).unwrap());
        let build = t.elapsed();
        let bytes = (rss_kib() - before) * 1024;
        let rows: Vec<Row> = EF_SEARCH
            .iter()
            .map(|&ef| {
                index.change_expansion_search(ef);
                let mut row = measure(&queries, dim, &truth, |q| index.search(q, K).unwrap().keys);
                row.ef = ef;
                row
            })
            .collect();
        report("usearch", build, bytes, n, &rows);
        // Persistence: into a buffer (what a snapshot section would hold), then viewed in place.
        let mut buffer = vec![0u8; index.serialized_length()];
        let t = Instant::now();
        index.save_to_buffer(&mut buffer).unwrap();
        let save = t.elapsed();
        let t = Instant::now();
        let view = usearch::Index::new(&options).unwrap();
        // SAFETY: `buffer` is neither changed nor dropped while `view` lives (both end with this block).
        unsafe { view.view_from_buffer(&buffer) }.unwrap();
        let viewed = t.elapsed();
        let t = Instant::now();
        let loaded = usearch::Index::new(&options).unwrap();
        loaded.load_from_buffer(&buffer).unwrap();
        let load = t.elapsed();
        let t = Instant::now();
        let copy = data.clone();
        let raw = t.elapsed();
        std::hint::black_box(copy);
        view.change_expansion_search(64);
        let row = measure(&queries, dim, &truth, |q| view.search(q, K).unwrap().keys);
        println!(
            "serialized {:.1} MiB; save to buffer {:.1} ms; view in place {:.2} ms; load (copy) {:.1} ms; \
             raw vector copy {:.1} ms; viewed index agreement at ef 64: {:.3}",
            buffer.len() as f64 / 1048576.0,
            save.as_secs_f64() * 1e3,
            viewed.as_secs_f64() * 1e3,
            load.as_secs_f64() * 1e3,
            raw.as_secs_f64() * 1e3,
            row.recall
        );
        // Maintenance: add and remove one at a time on the built index.
        let t = Instant::now();
        let extra = mixture(&mut rng, &centres, 1000, dim);
        index.reserve(n + 1000).unwrap();
        for (i, v) in extra.chunks_exact(dim).enumerate() {
            index.add((n + i) as u64, v).unwrap();
        }
        let add = t.elapsed() / 1000;
        let t = Instant::now();
        for i in 0..1000u64 {
            index.remove(n as u64 + i).unwrap();
        }
        let remove = t.elapsed() / 1000;
        println!(
            "one add {:.0} µs, one remove {:.1} µs, size after {}\n",
            add.as_secs_f64() * 1e6,
            remove.as_secs_f64() * 1e6,
            index.size()
        );
        drop((index, view, loaded));
    }

    if want("hnsw_rs") {
        let before = rss_kib();
        let t = Instant::now();
        let hnsw =
            hnsw_rs::hnsw::Hnsw::<f32, DistCosine>::new(CONNECTIVITY, n, 16, EF_CONSTRUCTION, DistCosine {});
        let items: Vec<(&[f32], usize)> = data.chunks_exact(dim).enumerate().map(|(i, v)| (v, i)).collect();
        hnsw.parallel_insert_slice(&items);
        let build = t.elapsed();
        let bytes = (rss_kib() - before) * 1024;
        let rows: Vec<Row> = EF_SEARCH
            .iter()
            .map(|&ef| {
                let mut row = measure(&queries, dim, &truth, |q| {
                    hnsw.search(q, K, ef).into_iter().map(|nb| nb.d_id as u64).collect()
                });
                row.ef = ef;
                row
            })
            .collect();
        report("hnsw_rs", build, bytes, n, &rows);
        let t = Instant::now();
        let extra = mixture(&mut rng, &centres, 1000, dim);
        for (i, v) in extra.chunks_exact(dim).enumerate() {
            hnsw.insert_slice((v, n + i));
        }
        println!("one add {:.0} µs; no removal\n", (t.elapsed() / 1000).as_secs_f64() * 1e6);
    }

    if want("instant-distance") {
        let before = rss_kib();
        let t = Instant::now();
        let points: Vec<Unit> = data.chunks_exact(dim).map(|v| Unit(v.to_vec())).collect();
        let values: Vec<u64> = (0..n as u64).collect();
        let map = instant_distance::Builder::default()
            .ef_construction(EF_CONSTRUCTION)
            .seed(7)
            .build(points, values);
        let build = t.elapsed();
        let bytes = (rss_kib() - before) * 1024;
        let mut search = instant_distance::Search::default();
        // Its ef_search is fixed at build time: measure the default (100).
        let mut row = measure(&queries, dim, &truth, |q| {
            map.search(&Unit(q.to_vec()), &mut search).take(K).map(|item| *item.value).collect()
        });
        row.ef = 100;
        report("instant-distance (ef_search fixed at build: 100)", build, bytes, n, &[row]);
        println!("no incremental add or removal (a change rebuilds the index)\n");
    }
}

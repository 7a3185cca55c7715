//! `scripts/demo`: load WordNet (Debian's `wordnet-base`) or a generated power-law graph, show
//! labelled recalls, start the HTTP surface, and run a multi-threaded recall workload under a live
//! terminal view until Ctrl-C — while a writer keeps teaching the memory (links between synsets whose
//! glosses share a rare word, streamed in batches) and compaction folds what it learns. `--chaos`
//! runs a short game day: failures are injected, the breaker opens and health turns unhealthy, then
//! both recover. `--snapshot PATH` saves the loaded graph to PATH once; later runs start from it.
//!
//! Usage: `cargo run --release -p axonal-core --features http --example demo -- [--seconds N]
//! [--threads N] [--wordnet DIR] [--port P] [--snapshot PATH] [--chaos]`

mod corpus;
mod view;

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::time::{Duration, Instant};

use axonal_core::ToJson;
use axonal_core::generate::SplitMix64;
use axonal_core::http::{HttpOptions, HttpServer};
use axonal_core::{BreakerState, ChaosConfig, Cue, Engine, EngineConfig, Graph, HealthStatus, Host};
use serde_json::json;

use corpus::Corpus;
use view::View;

struct Options {
    seconds: Option<f64>,
    threads: usize,
    wordnet: PathBuf,
    port: u16,
    chaos: bool,
    snapshot: Option<PathBuf>,
}

fn options() -> Options {
    let mut options = Options {
        seconds: None,
        threads: 4,
        wordnet: PathBuf::from("/usr/share/wordnet"),
        port: 9464,
        chaos: false,
        snapshot: None,
    };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let value = args.get(i + 1).cloned().unwrap_or_default();
        let bad = format!("{} {value:?}", args[i]);
        match args[i].as_str() {
            "--seconds" => options.seconds = Some(value.parse().unwrap_or_else(|_| usage(&bad))),
            "--threads" => {
                options.threads = value.parse().ok().filter(|&t| t > 0).unwrap_or_else(|| usage(&bad))
            }
            "--wordnet" => options.wordnet = PathBuf::from(value),
            "--port" => options.port = value.parse().unwrap_or_else(|_| usage(&bad)),
            "--snapshot" if !value.is_empty() => options.snapshot = Some(PathBuf::from(value)),
            "--chaos" => {
                options.chaos = true;
                i += 1;
                continue;
            }
            other => usage(other),
        }
        i += 2;
    }
    options
}

fn usage(bad: &str) -> ! {
    eprintln!(
        "demo: bad argument {bad}\nusage: demo [--seconds N] [--threads N] [--wordnet DIR] [--port P] [--snapshot PATH] \
         [--chaos]"
    );
    std::process::exit(2)
}

fn main() {
    let options = options();
    let stop = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&stop);
    if let Err(e) = ctrlc::set_handler(move || flag.store(true, Ordering::SeqCst)) {
        eprintln!("demo: Ctrl-C handler not installed ({e}); use --seconds to stop");
    }

    let start = Instant::now();
    let corpus = match options.snapshot.as_deref().filter(|p| p.exists()) {
        Some(path) => from_snapshot(path),
        None => {
            let corpus = match corpus::load_wordnet(&options.wordnet) {
                Ok(corpus) => corpus,
                Err(why) => {
                    println!("WordNet not loaded ({why}); using a generated power-law graph instead.");
                    corpus::generated()
                }
            };
            if let Some(path) = &options.snapshot {
                save_snapshot(&corpus.graph, path);
            }
            corpus
        }
    };
    let loaded = start.elapsed();
    let Corpus { graph, name, lemmas } = corpus;
    let graph = Arc::new(graph);
    // What the memory learns while it recalls: links between synsets whose definitions share a
    // rare word (random links on the generated graph).
    let links = corpus::gloss_links(&options.wordnet, 200_000)
        .ok()
        .filter(|links| links.iter().all(|&(a, b)| a.max(b) < graph.node_count() as u32))
        .unwrap_or_else(|| corpus::random_links(graph.node_count() as u32, 100_000));
    let [hot, warm, cold] = graph.tier_counts();
    println!(
        "{name}: {} nodes ({hot} hot, {warm} warm, {cold} cold), {} edges, loaded in {:.2} s, {:.1} MiB",
        graph.node_count(),
        graph.edge_count(),
        loaded.as_secs_f64(),
        graph.memory_bytes() as f64 / 1048576.0
    );
    // The host owns the engine and the servers started on it, and shuts them down in that order.
    let host =
        Host::new(Engine::new(Arc::clone(&graph), config(options.chaos)).expect("the demo config is valid"));
    let engine: &Engine = host.engine();
    let s = engine.config().spreading;
    println!(
        "engine: {} spreading threads; depth {}, decay {}, threshold {}, latency budget {} ms\n",
        engine.threads(),
        s.max_depth,
        s.decay,
        s.threshold,
        s.latency_budget_ms
    );

    for word in ["doctor", "coffee", "music", "ocean", "computer"] {
        let Some(seeds) = lemmas.get(word) else { continue };
        let recall = engine.recall(&Cue::nodes(seeds.iter().copied().take(1)).with_k(8)).expect("valid cue");
        println!(
            "cue {word:?} → {} results, depth {}, {} edges, mass {:.2}, {:.0} µs ({:?})",
            recall.results.len(),
            recall.stats.depth_reached,
            recall.stats.total_edges_traversed(),
            recall.stats.mass,
            recall.latency.as_secs_f64() * 1e6,
            recall.source
        );
        for a in &recall.results {
            let label: String = graph.label(a.node).unwrap_or("").chars().take(60).collect();
            println!("   {:.3}  hops {}  {:<4}  {label}", a.activation, a.hops, a.tier.as_str());
        }
    }

    let token = admin_token();
    let server = serve(&host, options.port, &token);
    print_urls(&server, &token);

    let recalls = Arc::new(AtomicU64::new(0));
    let learned = AtomicU64::new(0);
    let mut view = View::new(format!("axonal demo · {name}"), options.threads);
    view.follow(engine);
    let workload_start = Instant::now();
    let deadline = options.seconds.map(|s| workload_start + Duration::from_secs_f64(s));
    let succeeded = std::thread::scope(|scope| {
        for t in 0..options.threads {
            let (engine, stop, recalls) = (&engine, &stop, &recalls);
            let n = graph.node_count() as u64;
            scope.spawn(move || workload(engine, n, t as u64, stop, recalls));
        }
        let (links, learned, stop) = (&links, &learned, &stop);
        scope.spawn(move || learn(engine, links, stop, learned));
        let mut game_day = options.chaos.then(GameDay::new);
        loop {
            let phase = game_day.as_mut().map(|day| day.step(engine));
            view.refresh(engine, phase.as_deref());
            let finished = game_day.as_ref().is_some_and(|day| day.finished());
            if stop.load(Ordering::SeqCst) || finished || deadline.is_some_and(|d| Instant::now() >= d) {
                stop.store(true, Ordering::SeqCst);
                break;
            }
            std::thread::sleep(Duration::from_millis(250));
        }
        game_day.map(|day| day.report()).unwrap_or(true)
    });

    let elapsed = workload_start.elapsed().as_secs_f64();
    let section = engine.spreading_section().to_json();
    let done = recalls.load(Ordering::Relaxed);
    println!(
        "\n{done} recalls, {:.0} recalls/s over the workload; latency p50 {} p99 {} (60 s window); {} answered by the \
         fallback; scratch pool {} buffers",
        done as f64 / elapsed.max(1e-9),
        seconds(&section["latency"]["total"]["p50"]),
        seconds(&section["latency"]["total"]["p99"]),
        section["fallback"]["total"],
        engine.pool_capacity()
    );
    let g = engine.spreading_section().graph;
    println!(
        "learned {} links in {} batches: graph version {}, {} edges, {} changes pending, {} compactions",
        learned.load(Ordering::Relaxed),
        g.batches_total,
        g.version,
        g.edges,
        g.delta_edges,
        g.compactions_total
    );
    drop(server);
    drop(host.close());
    println!("stopped cleanly");
    if !succeeded {
        std::process::exit(1);
    }
}

/// Defaults, or game-day settings (shorter probe interval and cooldowns) with `--chaos`.
fn config(chaos: bool) -> EngineConfig {
    if !chaos {
        return EngineConfig::default();
    }
    EngineConfig::default()
        .patched(&json!({
            "breaker": {"window_size": 20, "min_calls": 10, "cooldown_ms": 2000, "max_cooldown_ms": 8000},
            "health": {"interval_ms": 1000, "timeout_ms": 1000}
        }))
        .expect("valid game-day config")
}

/// A per-run admin token (or `AXONAL_ADMIN_TOKEN` when set), so admin writes need what we print.
fn admin_token() -> String {
    if let Ok(token) = std::env::var("AXONAL_ADMIN_TOKEN")
        && !token.is_empty()
    {
        return token;
    }
    let mut rng = SplitMix64(
        std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(7, |d| d.as_nanos() as u64),
    );
    format!("{:016x}{:016x}", rng.next_u64(), rng.next_u64())
}

/// Serve on loopback at `port`, or on a free port when that one is taken.
fn serve(host: &Host, port: u16, token: &str) -> HttpServer {
    let options = HttpOptions::default().with_admin_token(Some(token.into()));
    host.serve_http(&format!("127.0.0.1:{port}"), options.clone()).unwrap_or_else(|e| {
        println!("port {port} unavailable ({e}); using a free port");
        host.serve_http("127.0.0.1:0", options).expect("loopback is available")
    })
}

fn print_urls(server: &HttpServer, token: &str) {
    let url = server.url();
    println!("\nHTTP surface on {url} (loopback only):");
    println!("  curl {url}/health/spreading");
    println!("  curl {url}/metrics");
    println!("  curl {url}/api/v1/system/metrics/spreading");
    println!("  curl {url}/api/v1/system/spreading/config");
    println!(
        "  curl -X PUT -H 'Authorization: Bearer {token}' -H 'Content-Type: application/json' \\\n       \
         -d '{{\"chaos\": {{\"failure_rate\": 1.0}}}}' {url}/api/v1/system/spreading/config\n"
    );
}

/// Start from a snapshot: mapped and verified, cue words from its labels.
fn from_snapshot(path: &std::path::Path) -> Corpus {
    let started = Instant::now();
    let graph = Graph::load(path).unwrap_or_else(|e| {
        eprintln!("demo: {e}\n(delete the file to rebuild it from WordNet)");
        std::process::exit(1)
    });
    println!(
        "started from snapshot {} (version {}) in {:.1} ms — no parse, no build",
        path.display(),
        graph.origin_version(),
        started.elapsed().as_secs_f64() * 1e3
    );
    let lemmas = corpus::lemmas_from_labels(&graph);
    Corpus { graph, name: format!("snapshot {}", path.display()), lemmas }
}

/// Save the freshly built graph, so later runs start from it.
fn save_snapshot(graph: &Graph, path: &std::path::Path) {
    match graph.save(path) {
        Ok(stats) => println!(
            "saved snapshot {} ({:.1} MiB in {:.0} ms); later runs with --snapshot start from it",
            path.display(),
            stats.bytes as f64 / 1048576.0,
            stats.elapsed.as_secs_f64() * 1e3
        ),
        Err(e) => println!("snapshot not saved: {e}"),
    }
}

/// The learning writer: `links` in batches of 2 000 every 200 ms (one version each) until done or
/// `stop`; recalls never wait for it.
fn learn(engine: &Engine, links: &[(u32, u32)], stop: &AtomicBool, learned: &AtomicU64) {
    for batch in links.chunks(2_000) {
        if stop.load(Ordering::Relaxed) {
            return;
        }
        let src: Vec<u32> = batch.iter().map(|l| l.0).collect();
        let dst: Vec<u32> = batch.iter().map(|l| l.1).collect();
        match engine.add_edges(&src, &dst, &vec![0.3; batch.len()]) {
            Ok(_) => learned.fetch_add(batch.len() as u64, Ordering::Relaxed),
            Err(e) => {
                eprintln!("demo: a learning batch was refused: {e}");
                return;
            }
        };
        let pause = Instant::now() + Duration::from_millis(200);
        while Instant::now() < pause && !stop.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// One recall thread: random single-node cues until `stop`.
fn workload(engine: &Engine, n: u64, seed: u64, stop: &AtomicBool, recalls: &AtomicU64) {
    let mut rng = SplitMix64(0xA5 + seed);
    let mut out = axonal_core::Recall::default();
    let mut cue = Cue::nodes([0]);
    let mut done = 0u64;
    while !stop.load(Ordering::Relaxed) {
        cue.seeds[0].0 = rng.below(n) as u32;
        engine.recall_into(&cue, &mut out).expect("valid cue");
        done += 1;
    }
    recalls.fetch_add(done, Ordering::Relaxed);
}

/// `--chaos`: steady → failures injected (until breaker open and health unhealthy) → chaos cleared
/// (until breaker closed and health healthy). Each step has a deadline; missing one fails the run.
struct GameDay {
    started: Instant,
    step: usize,
    step_started: Instant,
    reached: Vec<(String, Option<f64>)>,
}

const STEPS: [(&str, f64); 3] = [("steady load", 5.0), ("failures injected", 30.0), ("chaos cleared", 40.0)];

impl GameDay {
    fn new() -> GameDay {
        let now = Instant::now();
        GameDay { started: now, step: 0, step_started: now, reached: Vec::new() }
    }

    fn step(&mut self, engine: &Engine) -> String {
        let in_step = self.step_started.elapsed().as_secs_f64();
        let limit = STEPS.get(self.step).map_or(0.0, |s| s.1);
        let done = match self.step {
            0 => in_step >= limit,
            1 => {
                engine.breaker_state() == BreakerState::Open
                    && engine.health_status() == HealthStatus::Unhealthy
            }
            2 => {
                engine.breaker_state() == BreakerState::Closed
                    && engine.health_status() == HealthStatus::Healthy
            }
            _ => return format!("done after {:.1} s", self.started.elapsed().as_secs_f64()),
        };
        if done || in_step > limit {
            if self.step > 0 {
                let what = if self.step == 1 {
                    "breaker open + health unhealthy"
                } else {
                    "breaker closed + healthy"
                };
                self.reached.push((what.into(), done.then_some(in_step)));
            }
            self.step += 1;
            self.step_started = Instant::now();
            match self.step {
                1 => engine
                    .set_chaos(ChaosConfig { failure_rate: 1.0, seed: Some(7), ..ChaosConfig::default() })
                    .expect("valid chaos"),
                2 => engine.clear_chaos(),
                _ => {}
            }
        }
        match STEPS.get(self.step) {
            Some((name, _)) => {
                format!(
                    "step {}/3: {name} ({:.1} s)",
                    self.step + 1,
                    self.step_started.elapsed().as_secs_f64()
                )
            }
            None => format!("done after {:.1} s", self.started.elapsed().as_secs_f64()),
        }
    }

    fn finished(&self) -> bool {
        self.step >= STEPS.len()
    }

    /// Print what happened; whether every reaction came in time.
    fn report(&self) -> bool {
        println!("\ngame day:");
        for (what, at) in &self.reached {
            match at {
                Some(s) => println!("  {what} after {s:.1} s"),
                None => println!("  {what}: MISSED"),
            }
        }
        self.finished() && self.reached.iter().all(|(_, at)| at.is_some())
    }
}

fn seconds(value: &serde_json::Value) -> String {
    match value.as_f64() {
        Some(s) if s < 1e-3 => format!("{:.1} µs", s * 1e6),
        Some(s) => format!("{:.2} ms", s * 1e3),
        None => "—".into(),
    }
}

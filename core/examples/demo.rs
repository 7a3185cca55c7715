//! `scripts/demo`: load WordNet (Debian's `wordnet-base`) or a generated power-law graph, show
//! labelled recalls, then run a multi-threaded recall workload and report throughput and latency.
//!
//! Usage: `cargo run --release -p axonal-core --example demo -- [--seconds N] [--threads N] [--wordnet DIR]`

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use axonal_core::generate::{self, SplitMix64};
use axonal_core::{Cue, Engine, EngineConfig, Graph, GraphBuilder, Source, Tier};

struct Options {
    seconds: f64,
    threads: usize,
    wordnet: PathBuf,
}

fn options() -> Options {
    let mut options = Options { seconds: 5.0, threads: 4, wordnet: PathBuf::from("/usr/share/wordnet") };
    let args: Vec<String> = std::env::args().skip(1).collect();
    let mut i = 0;
    while i < args.len() {
        let value = args.get(i + 1).cloned().unwrap_or_default();
        match args[i].as_str() {
            "--seconds" => {
                options.seconds = value.parse().unwrap_or_else(|_| usage(&format!("--seconds {value:?}")))
            }
            "--threads" => {
                options.threads = value.parse().unwrap_or_else(|_| usage(&format!("--threads {value:?}")))
            }
            "--wordnet" => options.wordnet = PathBuf::from(value),
            other => usage(other),
        }
        i += 2;
    }
    options
}

fn usage(bad: &str) -> ! {
    eprintln!("demo: bad argument {bad}\nusage: demo [--seconds N] [--threads N] [--wordnet DIR]");
    std::process::exit(2)
}

/// A graph plus a way to turn words into cues.
struct Corpus {
    graph: Graph,
    name: String,
    lemmas: HashMap<String, Vec<u32>>,
}

fn main() {
    let options = options();
    let start = Instant::now();
    let corpus = match load_wordnet(&options.wordnet) {
        Ok(corpus) => corpus,
        Err(why) => {
            println!("WordNet not loaded ({why}); using a generated power-law graph instead.");
            generated()
        }
    };
    let graph = Arc::new(corpus.graph);
    let [hot, warm, cold] = graph.tier_counts();
    println!(
        "{}: {} nodes ({hot} hot, {warm} warm, {cold} cold), {} edges, loaded in {:.2} s, {:.1} MiB",
        corpus.name,
        graph.node_count(),
        graph.edge_count(),
        start.elapsed().as_secs_f64(),
        graph.memory_bytes() as f64 / 1048576.0
    );
    let engine = Engine::new(Arc::clone(&graph), EngineConfig::default()).expect("default config is valid");
    println!("engine: {} spreading threads, config {}\n", engine.threads(), compact_config(&engine));

    for word in ["doctor", "coffee", "music", "ocean", "computer"] {
        let Some(seeds) = corpus.lemmas.get(word) else { continue };
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
            let label = graph.label(a.node).unwrap_or("");
            let label: String = label.chars().take(60).collect();
            println!("   {:.3}  hops {}  {:<4}  {label}", a.activation, a.hops, a.tier.as_str());
        }
    }
    workload(&engine, &graph, &options);
}

fn compact_config(engine: &Engine) -> String {
    let s = engine.config().spreading;
    format!(
        "depth {}, decay {}, threshold {}, budget {} ms",
        s.max_depth, s.decay, s.threshold, s.latency_budget_ms
    )
}

fn workload(engine: &Engine, graph: &Graph, options: &Options) {
    println!(
        "\nworkload: {} threads recalling random single-node cues for {:.1} s …",
        options.threads, options.seconds
    );
    let deadline = Instant::now() + Duration::from_secs_f64(options.seconds);
    let n = graph.node_count() as u64;
    let results: Vec<(Vec<Duration>, usize)> = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..options.threads)
            .map(|t| {
                scope.spawn(move || {
                    let mut rng = SplitMix64(0xA5 + t as u64);
                    let mut latencies = Vec::with_capacity(1 << 20);
                    let mut fallbacks = 0;
                    let mut out = axonal_core::Recall::default();
                    let mut cue = Cue::nodes([0]);
                    while Instant::now() < deadline {
                        cue.seeds[0].0 = rng.below(n) as u32;
                        engine.recall_into(&cue, &mut out).expect("valid cue");
                        latencies.push(out.latency);
                        if out.source == Source::Fallback {
                            fallbacks += 1;
                        }
                    }
                    (latencies, fallbacks)
                })
            })
            .collect();
        workers.into_iter().map(|w| w.join().expect("worker")).collect()
    });
    let fallbacks: usize = results.iter().map(|r| r.1).sum();
    let mut all: Vec<Duration> = results.into_iter().flat_map(|r| r.0).collect();
    all.sort_unstable();
    let count = all.len();
    let p = |q: f64| all[((count - 1) as f64 * q) as usize].as_secs_f64() * 1e6;
    println!(
        "{count} recalls, {:.0} recalls/s, latency p50 {:.1} µs, p90 {:.1} µs, p99 {:.1} µs, max {:.1} µs; \
         {fallbacks} answered by the fallback; scratch pool {} buffers",
        count as f64 / options.seconds,
        p(0.5),
        p(0.9),
        p(0.99),
        all[count - 1].as_secs_f64() * 1e6,
        engine.pool_capacity()
    );
}

fn generated() -> Corpus {
    let n = 50_000;
    let edges = generate::barabasi_albert(n, 4, 0.9, 7);
    let mut builder = edges.builder().expect("generated edges are valid");
    let mut lemmas = HashMap::new();
    for v in 0..n {
        // Tiers by id: the oldest (best connected) nodes are hot.
        let tier = if v < n / 10 {
            Tier::Hot
        } else if v < n / 2 {
            Tier::Warm
        } else {
            Tier::Cold
        };
        builder.set_tier(v, tier).expect("node in range");
        builder.set_label(v, format!("node-{v}")).expect("node in range");
    }
    for (word, node) in [("doctor", 0), ("coffee", 10), ("music", 100), ("ocean", 1000), ("computer", 10_000)]
    {
        lemmas.insert(word.to_owned(), vec![node]);
    }
    Corpus { graph: builder.build().expect("valid graph"), name: "Barabási–Albert graph".into(), lemmas }
}

/// WordNet 3.0: synsets as nodes, pointers as weighted edges, tiers from SemCor sense counts.
fn load_wordnet(dir: &Path) -> Result<Corpus, String> {
    let files = [('n', "noun"), ('v', "verb"), ('a', "adj"), ('r', "adv")];
    let mut ids: HashMap<(char, u32), u32> = HashMap::new();
    let mut synsets = Vec::new();
    for (pos, name) in files {
        let path = dir.join(format!("data.{name}"));
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        for line in text.lines().filter(|l| !l.starts_with("  ")) {
            let synset =
                parse_synset(line).ok_or_else(|| format!("{}: malformed line {line:.40}", path.display()))?;
            ids.insert((pos, synset.offset), synsets.len() as u32);
            synsets.push((pos, synset));
        }
    }
    let mut builder = GraphBuilder::new(synsets.len() as u32);
    let mut sense_keys: HashMap<(String, u8, u8, u8), u32> = HashMap::new();
    for (node, (_, synset)) in synsets.iter().enumerate() {
        let node = node as u32;
        let label: Vec<String> = synset.words.iter().map(|(w, _)| clean_word(w).replace('_', " ")).collect();
        builder.set_label(node, label.join(", ")).map_err(|e| e.to_string())?;
        for &(ref word, lex_id) in &synset.words {
            sense_keys
                .insert((clean_word(word).to_lowercase(), synset.ss_type, synset.lex_file, lex_id), node);
        }
        // The fan effect: a synset with many relations spreads less along each of them.
        let fan = (synset.pointers.len().max(1) as f32).sqrt();
        for &(ref symbol, target_pos, target_offset) in &synset.pointers {
            let file_pos = if target_pos == 's' { 'a' } else { target_pos };
            if let Some(&target) = ids.get(&(file_pos, target_offset)) {
                builder.add_edge(node, target, pointer_weight(symbol) / fan).map_err(|e| e.to_string())?;
            }
        }
    }
    // Tiers: senses tagged often in SemCor are hot, rarely warm, never cold.
    let mut tags = vec![0u32; synsets.len()];
    if let Ok(text) = std::fs::read_to_string(dir.join("cntlist.rev")) {
        for line in text.lines() {
            let mut fields = line.split(' ');
            let (Some(key), Some(_), Some(count)) = (fields.next(), fields.next(), fields.next()) else {
                continue;
            };
            if let (Some(key), Ok(count)) = (parse_sense_key(key), count.parse::<u32>())
                && let Some(&node) = sense_keys.get(&key)
            {
                tags[node as usize] += count;
            }
        }
    }
    for (node, &count) in tags.iter().enumerate() {
        let tier = match count {
            5.. => Tier::Hot,
            1..=4 => Tier::Warm,
            0 => Tier::Cold,
        };
        builder.set_tier(node as u32, tier).map_err(|e| e.to_string())?;
    }
    let mut lemmas: HashMap<String, Vec<u32>> = HashMap::new();
    for (pos, name) in files {
        let Ok(text) = std::fs::read_to_string(dir.join(format!("index.{name}"))) else { continue };
        for line in text.lines().filter(|l| !l.starts_with("  ")) {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let Some(synset_count) = fields.get(2).and_then(|c| c.parse::<usize>().ok()) else { continue };
            // Offsets are the last `synset_count` fields, most frequent sense first.
            let offsets = &fields[fields.len().saturating_sub(synset_count)..];
            let nodes = lemmas.entry(fields[0].to_owned()).or_default();
            nodes.extend(
                offsets.iter().filter_map(|o| o.parse().ok()).filter_map(|o| ids.get(&(pos, o)).copied()),
            );
        }
    }
    let graph = builder.build().map_err(|e| e.to_string())?;
    Ok(Corpus { graph, name: "WordNet 3.0".into(), lemmas })
}

struct Synset {
    offset: u32,
    lex_file: u8,
    ss_type: u8,
    words: Vec<(String, u8)>,
    pointers: Vec<(String, char, u32)>,
}

/// `offset lex_filenum ss_type w_cnt(hex) [word lex_id(hex)]… p_cnt [symbol offset pos src/dst]… | gloss`
fn parse_synset(line: &str) -> Option<Synset> {
    let head = line.split(" | ").next()?;
    let mut f = head.split(' ');
    let offset = f.next()?.parse().ok()?;
    let lex_file = f.next()?.parse().ok()?;
    let ss_type = match f.next()? {
        "n" => 1,
        "v" => 2,
        "a" => 3,
        "r" => 4,
        "s" => 5,
        _ => return None,
    };
    let word_count = usize::from_str_radix(f.next()?, 16).ok()?;
    let mut words = Vec::with_capacity(word_count);
    for _ in 0..word_count {
        let word = f.next()?.to_owned();
        let lex_id = u8::from_str_radix(f.next()?, 16).ok()?;
        words.push((word, lex_id));
    }
    let pointer_count: usize = f.next()?.parse().ok()?;
    let mut pointers = Vec::with_capacity(pointer_count);
    for _ in 0..pointer_count {
        let symbol = f.next()?.to_owned();
        let target = f.next()?.parse().ok()?;
        let pos = f.next()?.chars().next()?;
        f.next()?;
        pointers.push((symbol, pos, target));
    }
    Some(Synset { offset, lex_file, ss_type, words, pointers })
}

/// `lemma%ss_type:lex_filenum:lex_id:head_word:head_id` → (lemma, ss_type, lex_filenum, lex_id).
fn parse_sense_key(key: &str) -> Option<(String, u8, u8, u8)> {
    let (lemma, rest) = key.split_once('%')?;
    let mut parts = rest.split(':');
    let ss_type = parts.next()?.parse().ok()?;
    let lex_file = parts.next()?.parse().ok()?;
    let lex_id = parts.next()?.parse().ok()?;
    Some((lemma.to_owned(), ss_type, lex_file, lex_id))
}

/// Adjectives carry syntactic markers such as `(a)`; they are not part of the word.
fn clean_word(word: &str) -> &str {
    word.split('(').next().unwrap_or(word)
}

/// How strongly each WordNet relation carries activation.
fn pointer_weight(symbol: &str) -> f32 {
    match symbol {
        "@" | "@i" | "&" => 0.8,
        "+" | "$" | "*" | ">" => 0.7,
        "~" | "~i" | "#m" | "#s" | "#p" | "%m" | "%s" | "%p" | "=" | "^" | "<" | "\\" => 0.6,
        "!" => 0.5,
        ";c" | ";r" | ";u" | "-c" | "-r" | "-u" => 0.4,
        _ => 0.5,
    }
}

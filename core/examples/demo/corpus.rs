//! The demo's graphs: WordNet 3.0 from Debian's `wordnet-base` (synsets as nodes, pointers as
//! weighted edges, tiers from SemCor sense counts), or a generated power-law graph — and what the
//! demo learns while it recalls: links between synsets whose glosses share a rare word.

use std::collections::HashMap;
use std::path::Path;

use axonal_core::generate;
use axonal_core::{Graph, GraphBuilder, Tier};

/// A graph plus a way to turn words into cues.
pub struct Corpus {
    pub graph: Graph,
    pub name: String,
    pub lemmas: HashMap<String, Vec<u32>>,
}

/// Cue words from the graph's own labels (`"doctor, doc, physician"`): for a graph loaded from a
/// snapshot, which keeps labels but not WordNet's index files. Hot senses first.
pub fn lemmas_from_labels(graph: &Graph) -> HashMap<String, Vec<u32>> {
    let mut lemmas: HashMap<String, Vec<u32>> = HashMap::new();
    for node in 0..graph.node_count() as u32 {
        for word in graph.label(node).unwrap_or("").split(", ") {
            lemmas.entry(word.to_lowercase().replace(' ', "_")).or_default().push(node);
        }
    }
    for nodes in lemmas.values_mut() {
        nodes.sort_by_key(|&n| (graph.tier(n).map_or(3, |t| t.index()), n));
    }
    lemmas
}

/// Common words that say nothing about what a synset means.
const STOPWORDS: &[&str] = &[
    "about",
    "after",
    "again",
    "against",
    "along",
    "among",
    "another",
    "being",
    "between",
    "called",
    "cause",
    "certain",
    "especially",
    "every",
    "having",
    "other",
    "something",
    "someone",
    "their",
    "there",
    "these",
    "thing",
    "things",
    "those",
    "through",
    "under",
    "usually",
    "which",
    "while",
    "without",
    "within",
    "would",
    "often",
    "person",
    "people",
    "place",
    "state",
    "small",
    "large",
    "quality",
    "given",
    "using",
    "become",
];

/// Links the demo learns while it recalls: between WordNet synsets whose definitions share a rare
/// word (used by two to five synsets), both ways, weight 0.3, in a shuffled order, at most `limit`.
/// Node ids follow the data files' order, as in [`load_wordnet`].
pub fn gloss_links(dir: &Path, limit: usize) -> Result<Vec<(u32, u32)>, String> {
    let mut by_word: HashMap<String, Vec<u32>> = HashMap::new();
    let mut node = 0u32;
    for name in ["noun", "verb", "adj", "adv"] {
        let path = dir.join(format!("data.{name}"));
        let text = std::fs::read_to_string(&path).map_err(|e| format!("{}: {e}", path.display()))?;
        for line in text.lines().filter(|l| !l.starts_with("  ")) {
            // The definition: the gloss up to its first example (`; "…"`).
            let gloss = line.split_once(" | ").map_or("", |(_, g)| g);
            let definition = gloss.split("; \"").next().unwrap_or(gloss);
            let mut words: Vec<String> = definition
                .split(|c: char| !c.is_ascii_alphabetic())
                .filter(|w| w.len() >= 5)
                .map(str::to_ascii_lowercase)
                .filter(|w| !STOPWORDS.contains(&w.as_str()))
                .collect();
            words.sort_unstable();
            words.dedup();
            for word in words {
                by_word.entry(word).or_default().push(node);
            }
            node += 1;
        }
    }
    let mut links = Vec::new();
    let mut words: Vec<_> = by_word.into_iter().filter(|(_, nodes)| (2..=5).contains(&nodes.len())).collect();
    words.sort_unstable();
    for (_, nodes) in words {
        for &a in &nodes {
            for &b in &nodes {
                if a != b {
                    links.push((a, b));
                }
            }
        }
    }
    shuffle(&mut links, 11);
    links.truncate(limit);
    Ok(links)
}

/// Links for the generated graph: random pairs.
pub fn random_links(nodes: u32, count: usize) -> Vec<(u32, u32)> {
    let mut rng = generate::SplitMix64(23);
    (0..count).map(|_| (rng.below(nodes as u64) as u32, rng.below(nodes as u64) as u32)).collect()
}

fn shuffle<T>(items: &mut [T], seed: u64) {
    let mut rng = generate::SplitMix64(seed);
    for i in (1..items.len()).rev() {
        items.swap(i, rng.below(i as u64 + 1) as usize);
    }
}

/// A Barabási–Albert graph with tiers by age, when WordNet is not available.
pub fn generated() -> Corpus {
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
pub fn load_wordnet(dir: &Path) -> Result<Corpus, String> {
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

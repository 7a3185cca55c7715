//! The demo's graphs: WordNet 3.0 from Debian's `wordnet-base` (synsets as nodes, pointers as
//! weighted edges, tiers from SemCor sense counts), or a generated power-law graph.

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

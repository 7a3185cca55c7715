//! Snapshots (docs/spec.md §17): a saved graph loads back identical (arrays, tiers, labels,
//! embeddings, version, recalls); an engine starts from its own snapshot where it left off; every
//! damaged, foreign or future file is an error naming what is wrong, never a crash or a different
//! graph; and a process killed while saving leaves the old file or the new one.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::Duration;

use axonal_core::{Cue, Engine, EngineConfig, ErrorKind, Graph, GraphBuilder, SNAPSHOT_FORMAT_VERSION, Tier};
use proptest::prelude::*;
use serde_json::json;
use xxhash_rust::xxh3::xxh3_64;

/// A graph with every kind of content: tiers, labels (some missing, one not ASCII), embeddings
/// (some missing), multi-edges and self-loops.
fn rich_graph(n: u32) -> Graph {
    let mut b = GraphBuilder::new(n);
    for v in 0..n {
        for k in 1..4 {
            b.add_edge(v, (v * 7 + k * 13) % n, ((v + k) % 10 + 1) as f32 / 10.0).unwrap();
        }
    }
    b.add_edge(0, 0, 0.25).unwrap();
    b.add_edge(0, 1, 0.75).unwrap();
    for v in 0..n {
        b.set_tier(v, Tier::ALL[(v % 3) as usize]).unwrap();
        if v % 4 != 1 {
            b.set_label(v, if v == 2 { "naïve café".to_owned() } else { format!("n{v}") }).unwrap();
        }
        if v % 5 != 3 {
            b.set_embedding(v, &[v as f32, 1.0, 0.5 - v as f32 / n as f32]).unwrap();
        }
    }
    b.build().unwrap()
}

fn config() -> EngineConfig {
    EngineConfig::default()
        .patched(&json!({"threads": 1, "opencl": "off", "autotune": {"enabled": false},
                         "spreading": {"tier_timeouts_ms": {"hot": 0, "warm": 0, "cold": 0}},
                         "recall": {"k": 1000}}))
        .unwrap()
}

fn assert_same(a: &Graph, b: &Graph) {
    assert_eq!(a.node_count(), b.node_count());
    assert_eq!(a.edge_count(), b.edge_count());
    assert_eq!(a.tier_counts(), b.tier_counts());
    assert_eq!(a.out_csr(), b.out_csr());
    for tier in Tier::ALL {
        assert_eq!(a.in_csr_from(tier), b.in_csr_from(tier));
    }
    assert_eq!(a.embedding_dim(), b.embedding_dim());
    for v in 0..a.node_count() as u32 {
        assert_eq!(a.tier(v), b.tier(v));
        assert_eq!(a.label(v), b.label(v));
        assert_eq!(a.embedding(v), b.embedding(v));
    }
}

fn recall_bits(engine: &Engine, cue: &Cue) -> Vec<(u32, u32, u32)> {
    engine.recall(cue).unwrap().results.iter().map(|a| (a.node, a.activation.to_bits(), a.hops)).collect()
}

#[test]
fn a_saved_graph_loads_back_identical() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.axs");
    let graph = rich_graph(200);
    let stats = graph.save(&path).unwrap();
    assert_eq!(stats.bytes, std::fs::metadata(&path).unwrap().len());
    let loaded = Graph::load(&path).unwrap();
    assert_same(&graph, &loaded);
    assert_eq!(loaded.find("naïve café"), Some(2));
    assert_eq!(loaded.label(1), None);
    assert_eq!(loaded.origin_version(), 0);
    let cue = Cue::nodes([0, 17]);
    let a = Engine::new(graph, config()).unwrap();
    let b = Engine::new(loaded, config()).unwrap();
    assert_eq!(recall_bits(&a, &cue), recall_bits(&b, &cue));
    // No temporary file is left beside it.
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, vec![std::ffi::OsString::from("g.axs")]);
    // Graphs without labels or embeddings, and without edges, round-trip too.
    for graph in
        [Graph::from_edges(3, &[0, 1], &[1, 2], &[0.5, 1.0]).unwrap(), GraphBuilder::new(1).build().unwrap()]
    {
        graph.save(&path).unwrap();
        assert_same(&graph, &Graph::load(&path).unwrap());
    }
}

#[test]
fn an_engine_starts_from_its_snapshot_where_it_left_off() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("engine.axs");
    let engine = Engine::new(rich_graph(100), config()).unwrap();
    let first = engine
        .add_nodes(
            2,
            Some(vec![Tier::Warm, Tier::Hot]),
            Some(vec![Some("new".into()), None]),
            Some((3, vec![1.0, 2.0, 3.0, 0.0, 0.0, 1.0])),
        )
        .unwrap();
    engine.add_edges(&[first, 5, first + 1], &[5, first, 0], &[0.5, 0.9, 1.0]).unwrap();
    engine.remove_edges(&[0], &[0]).unwrap();
    engine.set_weights(&[7], &[62], &[0.125]).unwrap();
    engine.set_tiers(&[3, first], &[Tier::Cold, Tier::Cold]).unwrap();
    assert_eq!(engine.save(&path).unwrap(), 5);
    let restored = Engine::load(&path, config()).unwrap();
    assert_eq!(restored.graph_version(), 5);
    assert_eq!(restored.graph().find("new"), Some(first));
    for cue in [Cue::nodes([first, 3]), Cue::nodes([0, 7, 99]), Cue::embedding(vec![1.0, 2.0, 2.5])] {
        assert_eq!(recall_bits(&engine, &cue), recall_bits(&restored, &cue));
    }
    assert_eq!(restored.spreading_section().graph.version, 5);
    assert!(restored.prometheus_text().contains("axonal_spreading_graph_snapshot_load_seconds_count 1"));
    // The restored engine keeps changing, numbering from the saved version.
    assert_eq!(restored.add_edges(&[1], &[2], &[0.5]).unwrap(), 6);
    // A compacted engine saves its base as is, under its own version.
    engine.compact().unwrap();
    assert_eq!(engine.save(&path).unwrap(), 5);
    assert_eq!(Graph::load(&path).unwrap().origin_version(), 5);
}

/// A valid snapshot's bytes, built once.
fn valid_bytes() -> &'static [u8] {
    static BYTES: std::sync::OnceLock<Vec<u8>> = std::sync::OnceLock::new();
    BYTES.get_or_init(|| {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("valid.axs");
        rich_graph(40).save(&path).unwrap();
        std::fs::read(&path).unwrap()
    })
}

/// The header's fields this test rewrites (the layout is decision 0015's).
const SECTION_COUNT: usize = 16;
const TABLE: usize = 64;
const ENTRY: usize = 32;

fn u64_at(bytes: &[u8], at: usize) -> u64 {
    u64::from_le_bytes(bytes[at..at + 8].try_into().unwrap())
}

/// Every section's (kind, offset, length), from the table.
fn sections(bytes: &[u8]) -> Vec<(u32, usize, usize)> {
    let count = u32::from_le_bytes(bytes[SECTION_COUNT..SECTION_COUNT + 4].try_into().unwrap()) as usize;
    (0..count)
        .map(|i| {
            let at = TABLE + i * ENTRY;
            let kind = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap());
            (kind, u64_at(bytes, at + 8) as usize, u64_at(bytes, at + 16) as usize)
        })
        .collect()
}

/// Recompute every checksum, as a careful forger would: what is left to catch is the structure.
fn reseal(bytes: &mut [u8]) {
    let count = u32::from_le_bytes(bytes[SECTION_COUNT..SECTION_COUNT + 4].try_into().unwrap()) as usize;
    for (i, (_, offset, length)) in sections(bytes).into_iter().enumerate() {
        let sum = xxh3_64(&bytes[offset..offset + length]);
        bytes[TABLE + i * ENTRY + 24..TABLE + i * ENTRY + 32].copy_from_slice(&sum.to_le_bytes());
    }
    let table = xxh3_64(&bytes[TABLE..TABLE + count * ENTRY]);
    bytes[32..40].copy_from_slice(&table.to_le_bytes());
    let header = xxh3_64(&bytes[..56]);
    bytes[56..64].copy_from_slice(&header.to_le_bytes());
}

fn load_bytes(bytes: &[u8]) -> Result<Graph, axonal_core::Error> {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.axs");
    std::fs::write(&path, bytes).unwrap();
    Graph::load(&path)
}

fn load_error(bytes: &[u8]) -> String {
    let e = load_bytes(bytes).expect_err("a bad snapshot loaded");
    assert_eq!(e.kind(), ErrorKind::Graph);
    let text = e.to_string();
    assert!(text.starts_with("snapshot ") && text.contains("bad.axs"), "{text}");
    text
}

#[test]
fn truncation_at_every_section_boundary_is_an_error() {
    let bytes = valid_bytes();
    let mut cuts = vec![0, 7, 8, 63, 64];
    for (_, offset, length) in sections(bytes) {
        cuts.extend([offset, offset + 1, offset + length / 2, offset + length]);
    }
    cuts.retain(|&c| c < bytes.len());
    for cut in cuts {
        let text = load_error(&bytes[..cut]);
        assert!(text.contains("truncated") || text.contains("bytes"), "cut at {cut}: {text}");
    }
    // Appended bytes are as wrong as missing ones.
    let mut longer = bytes.to_vec();
    longer.extend_from_slice(&[0; 64]);
    assert!(load_error(&longer).contains("the header says"));
}

#[test]
fn foreign_and_future_files_are_named_as_such() {
    let bytes = valid_bytes();
    let mut foreign = bytes.to_vec();
    foreign[..8].copy_from_slice(b"GRAPHML\0");
    assert!(load_error(&foreign).contains("not an Axonal snapshot"));
    let mut future = bytes.to_vec();
    future[8..12].copy_from_slice(&(SNAPSHOT_FORMAT_VERSION + 1).to_le_bytes());
    reseal(&mut future);
    let text = load_error(&future);
    assert!(text.contains(&format!("format version {} is newer", SNAPSHOT_FORMAT_VERSION + 1)), "{text}");
    let mut swapped = bytes.to_vec();
    swapped[12..16].reverse();
    reseal(&mut swapped);
    assert!(load_error(&swapped).contains("byte-order mark"));
    // An unknown section a newer writer marked optional is skipped; one it did not is refused.
    let graph = load_bytes(&with_extra_section(bytes, 99, 1)).unwrap();
    assert_same(&graph, &rich_graph(40));
    assert!(load_error(&with_extra_section(bytes, 99, 0)).contains("unknown kind 99, not marked optional"));
    let missing = tempfile::tempdir().unwrap().path().join("nothing-here.axs");
    let e = Graph::load(&missing).unwrap_err();
    assert!(e.to_string().contains("nothing-here.axs") && e.to_string().contains("opening"), "{e}");
    let text = load_error(b"");
    assert!(text.contains("truncated: 0 bytes"), "{text}");
}

#[test]
fn oversized_counts_are_refused_before_anything_is_sized_by_them() {
    let bytes = valid_bytes();
    let meta = sections(bytes).into_iter().find(|s| s.0 == 1).unwrap();
    for (field, value, expected) in [
        (0, u64::MAX, "node count"),
        (0, u32::MAX as u64, "node count"),
        (1, u64::MAX / 2, "edge count"),
        (0, 41, "TIERS"),
        (1, 999, "FORWARD_TARGETS"),
        (3, u64::MAX / 8, "overflows"),
        (3, 4, "EMBEDDING_VALUES"),
        (2, 7, ""),
        (2, u64::MAX, "version 18446744073709551615 exceeds"),
    ] {
        let mut forged = bytes.to_vec();
        forged[meta.1 + field * 8..meta.1 + field * 8 + 8].copy_from_slice(&value.to_le_bytes());
        reseal(&mut forged);
        if field == 2 && value == 7 {
            // The version is metadata, not structure: a forged one loads, as that version.
            assert_eq!(load_bytes(&forged).unwrap().origin_version(), 7);
            continue;
        }
        let text = load_error(&forged);
        assert!(text.contains(expected), "meta field {field} = {value}: {text}");
    }
    // Label text that is not UTF-8 (with valid checksums): an error, not a node without a label.
    let text = sections(bytes).into_iter().find(|s| s.0 == 17).unwrap();
    let mut forged = bytes.to_vec();
    let at = forged[text.1..text.1 + text.2].windows(2).position(|w| w == [0xC3, 0xAF]).unwrap();
    forged[text.1 + at] = 0xFF;
    reseal(&mut forged);
    let message = load_error(&forged);
    assert!(message.contains("LABEL_TEXT") && message.contains("node 2's label is not UTF-8"), "{message}");
    // A section count past the limit, and a section claiming more bytes than the file has.
    let mut forged = bytes.to_vec();
    forged[SECTION_COUNT..SECTION_COUNT + 4].copy_from_slice(&1_000_000u32.to_le_bytes());
    let header = xxh3_64(&forged[..56]);
    forged[56..64].copy_from_slice(&header.to_le_bytes());
    assert!(load_error(&forged).contains("1000000 sections"));
    let mut forged = bytes.to_vec();
    forged[TABLE + 16..TABLE + 24].copy_from_slice(&u64::MAX.to_le_bytes());
    reseal_table_only(&mut forged);
    assert!(load_error(&forged).contains("runs past the file"));
}

/// `bytes` with one more section of `kind` and `flags` at the end (what a newer writer might add).
fn with_extra_section(bytes: &[u8], kind: u32, flags: u32) -> Vec<u8> {
    let old = sections(bytes);
    let first = old.iter().map(|s| s.1).min().unwrap();
    let mut out = bytes[..64].to_vec();
    let count = old.len() + 1;
    out[SECTION_COUNT..SECTION_COUNT + 4].copy_from_slice(&(count as u32).to_le_bytes());
    // The table grows by one entry: every section moves 64 bytes on, keeping its alignment.
    let mut table = bytes[TABLE..TABLE + old.len() * ENTRY].to_vec();
    for i in 0..old.len() {
        let at = i * ENTRY + 8;
        let offset = u64_at(&table, at) + 64;
        table[at..at + 8].copy_from_slice(&offset.to_le_bytes());
    }
    let body_end = (bytes.len() + 64).div_ceil(64) * 64;
    let extra = b"a section from the future".to_vec();
    table.extend_from_slice(&kind.to_le_bytes());
    table.extend_from_slice(&flags.to_le_bytes());
    table.extend_from_slice(&(body_end as u64).to_le_bytes());
    table.extend_from_slice(&(extra.len() as u64).to_le_bytes());
    table.extend_from_slice(&xxh3_64(&extra).to_le_bytes());
    out.extend_from_slice(&table);
    out.resize(first + 64, 0);
    out.extend_from_slice(&bytes[first..]);
    out.resize(body_end, 0);
    out.extend_from_slice(&extra);
    let length = out.len() as u64;
    out[24..32].copy_from_slice(&length.to_le_bytes());
    reseal_table_only(&mut out);
    out
}

fn reseal_table_only(bytes: &mut [u8]) {
    let count = u32::from_le_bytes(bytes[SECTION_COUNT..SECTION_COUNT + 4].try_into().unwrap()) as usize;
    let table = xxh3_64(&bytes[TABLE..TABLE + count * ENTRY]);
    bytes[32..40].copy_from_slice(&table.to_le_bytes());
    let header = xxh3_64(&bytes[..56]);
    bytes[56..64].copy_from_slice(&header.to_le_bytes());
}

#[test]
fn forged_structure_behind_valid_checksums_is_refused() {
    let bytes = valid_bytes();
    let find = |kind: u32| sections(bytes).into_iter().find(|s| s.0 == kind).unwrap();
    let cases: [(u32, usize, &[u8], &str); 5] = [
        (2, 3, &[7], "node 3 has tier 7"),
        (3, 4 * 5, &[0xff, 0xff, 0, 0], "offsets decrease"),
        (4, 0, &[200, 0, 0, 0], "node id 200 out of range"),
        (5, 4, &0.0f32.to_le_bytes(), "weight 0 is not in (0, 1]"),
        (5, 8, &f32::NAN.to_le_bytes(), "weight NaN"),
    ];
    for (kind, at, value, expected) in cases {
        let (_, offset, _) = find(kind);
        let mut forged = bytes.to_vec();
        forged[offset + at..offset + at + value.len()].copy_from_slice(value);
        reseal(&mut forged);
        let text = load_error(&forged);
        assert!(text.contains(expected), "{text} should contain {expected:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(512))]

    /// Every byte of the file is covered by a checksum or must be zero padding: any flip is caught.
    #[test]
    fn any_byte_flip_is_an_error(position in any::<prop::sample::Index>(), mask in 1u8..=255) {
        let mut bytes = valid_bytes().to_vec();
        let at = position.index(bytes.len());
        bytes[at] ^= mask;
        let e = load_bytes(&bytes);
        prop_assert!(e.is_err(), "a flip at byte {} loaded", at);
        prop_assert_eq!(e.unwrap_err().kind(), ErrorKind::Graph);
    }

    /// Random bytes behind a valid header's magic are an error, never a crash.
    #[test]
    fn random_files_are_errors(mut tail in prop::collection::vec(any::<u8>(), 0..512), magic in any::<bool>()) {
        if magic {
            let mut file = b"AXONALSN".to_vec();
            file.extend_from_slice(&tail);
            tail = file;
        }
        prop_assert!(load_bytes(&tail).is_err());
    }
}

// --- kill test: a process killed while saving leaves the old file or the new one ---

const CHILD_ENV: &str = "AXONAL_SNAPSHOT_KILL_CHILD";

/// Two graphs the child alternates between; their edge counts tell them apart.
fn alternating(i: u64) -> Graph {
    let n = 20_000;
    let k = if i.is_multiple_of(2) { 4 } else { 5 };
    let (mut src, mut dst, mut w) = (Vec::new(), Vec::new(), Vec::new());
    for v in 0..n {
        for j in 0..k {
            src.push(v);
            dst.push((v * 31 + j * 17 + 1) % n);
            w.push(0.5);
        }
    }
    Graph::from_edges(n, &src, &dst, &w).unwrap()
}

/// In the child: save the two graphs in turn, forever (the parent kills it).
#[test]
fn kill_test_child() {
    let Some(path) = std::env::var_os(CHILD_ENV) else { return };
    let graphs = [alternating(0), alternating(1)];
    for i in 0u64.. {
        graphs[(i % 2) as usize].save(Path::new(&path)).unwrap();
        if i == 0 {
            // The parent waits for the first complete file.
            std::fs::write(PathBuf::from(&path).with_extension("ready"), b"").unwrap();
        }
    }
}

#[test]
fn a_process_killed_while_saving_leaves_the_old_file_or_the_new_one() {
    if std::env::var_os(CHILD_ENV).is_some() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("live.axs");
    let edges = [alternating(0).edge_count(), alternating(1).edge_count()];
    let me = std::env::current_exe().unwrap();
    let mut seed = 0x853c_49e6_748f_ea9bu64;
    let mut outcomes = [0usize; 2];
    for round in 0..24 {
        let _ = std::fs::remove_file(path.with_extension("ready"));
        let mut child = Command::new(&me)
            .args(["--exact", "kill_test_child", "--test-threads", "1"])
            .env(CHILD_ENV, &path)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let deadline = std::time::Instant::now() + Duration::from_secs(60);
        while !path.with_extension("ready").exists() {
            assert!(std::time::Instant::now() < deadline, "the child never saved");
            std::thread::sleep(Duration::from_millis(2));
        }
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        std::thread::sleep(Duration::from_micros(seed % 150_000));
        child.kill().unwrap();
        child.wait().unwrap();
        let graph = Graph::load(&path).unwrap_or_else(|e| panic!("round {round}: a torn snapshot: {e}"));
        let which = edges.iter().position(|&m| m == graph.edge_count()).expect("neither graph");
        assert_same(&graph, &alternating(which as u64));
        outcomes[which] += 1;
        // Temporary files of killed saves may remain; they never replace the target.
        for entry in std::fs::read_dir(dir.path()).unwrap() {
            let name = entry.unwrap().file_name().into_string().unwrap();
            assert!(
                name == "live.axs" || name == "live.ready" || name.starts_with(".live.axs.tmp-"),
                "{name}"
            );
        }
    }
    assert!(
        outcomes[0] > 0 && outcomes[1] > 0,
        "the kills never landed between saves of each kind: {outcomes:?}"
    );
}

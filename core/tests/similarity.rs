//! The embedding index (docs/spec.md §18) against the exact scan: agreement on clustered data,
//! added nodes visible at once, versions never answered with nodes they lack, snapshots that keep
//! the index, run-time config, and bad queries.

use std::time::Duration;

use axonal_core::config::IndexMode;
use axonal_core::generate::{mixture, mixture_queries};
use axonal_core::graph::{Graph, GraphBuilder};
use axonal_core::similarity::{AnnIndex, query_norm, top_similar};
use axonal_core::{BreakerOverride, Cue, Engine, EngineConfig, ErrorKind};

const DIM: usize = 24;
const WAIT: Duration = Duration::from_secs(60);

/// `n` nodes in a ring, embedded with a mixture of `clusters` clusters.
fn graph(n: u32, clusters: usize, seed: u64) -> Graph {
    let data = mixture(n as usize, DIM, clusters, seed);
    let mut b = GraphBuilder::new(n);
    for v in 0..n {
        b.add_edge(v, (v + 1) % n, 0.5).unwrap();
        b.set_embedding(v, &data[v as usize * DIM..(v as usize + 1) * DIM]).unwrap();
    }
    b.build().unwrap()
}

fn config(mode: IndexMode) -> EngineConfig {
    let mut c = EngineConfig::default();
    c.similarity.index = mode;
    c.threads = 1;
    c
}

/// The fallback's answer (breaker forced open): the top `k` by similarity, from the index or scan.
fn similar(engine: &Engine, query: &[f32], k: usize) -> Vec<(u32, f32)> {
    let r = engine.recall(&Cue::embedding(query.to_vec()).with_k(k)).unwrap();
    r.results.iter().map(|a| (a.node, a.activation)).collect()
}

fn exact(engine: &Engine, query: &[f32], k: usize) -> Vec<(u32, f32)> {
    let version = engine.graph();
    let view = version.view();
    let norm = query_norm(view, query).unwrap();
    let mut out = Vec::new();
    top_similar(view, query, norm, k, f32::MIN, &mut out);
    out
}

#[test]
fn the_index_agrees_with_the_exact_scan_on_clustered_data() {
    let engine = Engine::new(graph(4000, 40, 1), config(IndexMode::Ann)).unwrap();
    assert!(engine.wait_for_similarity_index(WAIT), "index not ready: {:?}", engine.similarity_status());
    let status = engine.similarity_status();
    assert_eq!((status.method, status.size), ("ann", 4000), "{status:?}");
    engine.set_breaker_override(BreakerOverride::ForcedOpen);
    let queries = mixture_queries(200, DIM, 40, 1);
    let (mut agree, mut total) = (0, 0);
    for q in queries.chunks_exact(DIM) {
        let ann = similar(&engine, q, 5);
        let reference = exact(&engine, q, 5);
        assert_eq!(ann.len(), 5);
        // Similarities are computed exactly either way: a shared id has the same activation.
        for (node, s) in &ann {
            if let Some((_, e)) = reference.iter().find(|(n, _)| n == node) {
                assert_eq!(s, e);
            }
        }
        agree += ann.iter().filter(|(n, _)| reference.iter().any(|(m, _)| m == n)).count();
        total += 5;
    }
    let agreement = agree as f64 / total as f64;
    assert!(agreement >= 0.95, "top-5 agreement {agreement}");
    // The exact mode answers exactly, with the same similarities.
    engine.update_config_json(r#"{"similarity": {"index": "exact"}}"#).unwrap();
    assert_eq!(engine.similarity_status().method, "exact");
    for q in queries.chunks_exact(DIM).take(20) {
        assert_eq!(similar(&engine, q, 5), exact(&engine, q, 5));
    }
}

#[test]
fn added_nodes_are_found_at_once_and_the_index_catches_up() {
    let engine = Engine::new(graph(2000, 20, 2), config(IndexMode::Ann)).unwrap();
    assert!(engine.wait_for_similarity_index(WAIT));
    engine.set_breaker_override(BreakerOverride::ForcedOpen);
    let fresh = mixture_queries(50, DIM, 20, 99);
    let first = engine.add_nodes(50, None, None, Some((DIM, fresh.clone()))).unwrap();
    // Right after the batch, before or after the indexer caught up: each added node is its own
    // best match.
    for (i, q) in fresh.chunks_exact(DIM).enumerate() {
        let best = similar(&engine, q, 3);
        assert_eq!(best[0].0, first + i as u32, "node {} not first: {best:?}", first + i as u32);
    }
    assert!(engine.wait_for_similarity_index(WAIT));
    let status = engine.similarity_status();
    assert_eq!((status.size, status.lag_nodes), (2050, 0), "{status:?}");
    for (i, q) in fresh.chunks_exact(DIM).enumerate() {
        assert_eq!(similar(&engine, q, 1)[0].0, first + i as u32);
    }
}

#[test]
fn a_search_never_answers_nodes_its_version_lacks() {
    let g = graph(1000, 10, 3);
    let index = AnnIndex::build(g.view(), 16, 64, 2, &|| false).unwrap().unwrap();
    let engine = Engine::new(g, config(IndexMode::Exact)).unwrap();
    let old = engine.graph();
    let extra = mixture_queries(200, DIM, 10, 3);
    engine.add_nodes(200, None, None, Some((DIM, extra.clone()))).unwrap();
    let new = engine.graph();
    index.catch_up(new.view(), &|| false).unwrap();
    assert_eq!(index.len(), 1200);
    let mut out = Vec::new();
    for q in extra.chunks_exact(DIM) {
        let limit = index.search(q, 10, old.node_count(), &mut out).unwrap();
        assert_eq!(limit, 1000);
        assert!(out.iter().all(|&v| v < 1000), "{out:?}");
        index.search(q, 10, new.node_count(), &mut out).unwrap();
        assert!(out.iter().any(|&v| v >= 1000));
    }
}

#[test]
fn a_snapshot_keeps_the_index_and_loading_does_not_rebuild_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.axs");
    let engine = Engine::new(graph(3000, 30, 4), config(IndexMode::Ann)).unwrap();
    assert!(engine.wait_for_similarity_index(WAIT));
    engine.add_nodes(100, None, None, Some((DIM, mixture_queries(100, DIM, 30, 5)))).unwrap();
    engine.save(&path).unwrap();
    engine.set_breaker_override(BreakerOverride::ForcedOpen);
    let queries = mixture_queries(50, DIM, 30, 6);
    let before: Vec<_> = queries.chunks_exact(DIM).map(|q| similar(&engine, q, 5)).collect();

    let loaded = Engine::load(&path, config(IndexMode::Ann)).unwrap();
    // Installed before `load` returned: no build, no wait.
    let status = loaded.similarity_status();
    assert_eq!((status.method, status.size, status.lag_nodes), ("ann", 3100, 0), "{status:?}");
    loaded.set_breaker_override(BreakerOverride::ForcedOpen);
    let after: Vec<_> = queries.chunks_exact(DIM).map(|q| similar(&loaded, q, 5)).collect();
    assert_eq!(before, after, "the loaded index answers as the saved one did");

    // A config asking for another shape rebuilds; the exact mode ignores the saved index.
    let exact = Engine::load(&path, config(IndexMode::Exact)).unwrap();
    assert_eq!(exact.similarity_status().method, "exact");
    let mut other = config(IndexMode::Ann);
    other.similarity.connectivity = 8;
    let rebuilt = Engine::load(&path, other).unwrap();
    assert!(rebuilt.wait_for_similarity_index(WAIT));
    assert_eq!(rebuilt.similarity_status().connectivity, 8);

    // An older reader's view: a graph-only snapshot still loads, and the engine builds the index.
    Graph::load(&path).unwrap().save(dir.path().join("plain.axs")).unwrap();
    let plain = Engine::load(dir.path().join("plain.axs"), config(IndexMode::Ann)).unwrap();
    assert!(plain.wait_for_similarity_index(WAIT));
    assert_eq!(plain.similarity_status().size, 3100);
}

#[test]
fn config_applies_at_run_time() {
    let mut c = config(IndexMode::Auto);
    c.similarity.exact_below = 1500;
    let engine = Engine::new(graph(1000, 10, 7), c).unwrap();
    assert!(engine.wait_for_similarity_index(WAIT));
    assert_eq!(engine.similarity_status().method, "exact", "below exact_below");
    engine.add_nodes(600, None, None, Some((DIM, mixture_queries(600, DIM, 10, 8)))).unwrap();
    assert!(engine.wait_for_similarity_index(WAIT));
    let status = engine.similarity_status();
    assert_eq!((status.method, status.size), ("ann", 1600), "crossing exact_below builds: {status:?}");
    engine.update_config_json(r#"{"similarity": {"ef_search": 200}}"#).unwrap();
    assert_eq!(engine.similarity_status().ef_search, 200);
    engine.update_config_json(r#"{"similarity": {"connectivity": 32}}"#).unwrap();
    assert!(engine.wait_for_similarity_index(WAIT));
    assert_eq!(engine.similarity_status().connectivity, 32);
    for bad in [
        r#"{"similarity": {"ef_search": 0}}"#,
        r#"{"similarity": {"connectivity": 2}}"#,
        r#"{"similarity": {"index": "hnsw"}}"#,
    ] {
        let e = engine.update_config_json(bad).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(e.to_string().contains("similarity."), "{e}");
    }
}

#[test]
fn bad_queries_and_embeddings_are_errors_that_change_nothing() {
    let engine = Engine::new(graph(500, 5, 9), config(IndexMode::Ann)).unwrap();
    assert!(engine.wait_for_similarity_index(WAIT));
    let mut nan = vec![0.1; DIM];
    nan[3] = f32::NAN;
    let mut inf = vec![0.1; DIM];
    inf[0] = f32::INFINITY;
    for (query, says) in [
        (vec![0.1; DIM + 1], "dimension 25"),
        (nan, "NaN at index 3"),
        (inf, "inf at index 0"),
        (vec![0.0; DIM], "zero vector"),
    ] {
        let e = engine.recall(&Cue::embedding(query)).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Recall);
        assert!(e.to_string().contains("embedding") && e.to_string().contains(says), "{e}");
    }
    let version = engine.graph_version();
    let e = engine.add_nodes(2, None, None, Some((DIM + 1, vec![0.5; 2 * (DIM + 1)]))).unwrap_err();
    assert!(e.to_string().contains(&format!("{}", DIM + 1)), "{e}");
    let e = engine.add_nodes(2, None, None, Some((DIM, vec![0.5; 2 * DIM - 1]))).unwrap_err();
    assert!(e.to_string().contains("embedding"), "{e}");
    assert_eq!(engine.graph_version(), version, "nothing applied");
    assert!(engine.wait_for_similarity_index(WAIT));
    assert_eq!(engine.similarity_status().size, 500);
    engine.recall(&Cue::embedding(vec![0.1; DIM])).unwrap();
    // A `k` far past the node count asks the index for no more than it holds.
    engine.set_breaker_override(BreakerOverride::ForcedOpen);
    let all = engine.recall(&Cue::embedding(vec![0.1; DIM]).with_k(usize::MAX / 2)).unwrap();
    let mut nodes: Vec<u32> = all.results.iter().map(|a| a.node).collect();
    let positive = exact(&engine, &[0.1; DIM], 500).len();
    assert!(!nodes.is_empty() && nodes.len() <= positive, "{} of {positive}", nodes.len());
    nodes.sort_unstable();
    nodes.dedup();
    assert_eq!(nodes.len(), all.results.len(), "no node twice");
    assert!(engine.wait_for_similarity_index(Duration::MAX), "no deadline overflow");
}

#[test]
fn an_index_that_starts_empty_fills_while_it_is_searched() {
    // Embeddings of the graph's dimension, all zero: no node has one, the built index is empty.
    let mut b = GraphBuilder::new(50);
    for v in 0..50 {
        b.set_embedding(v, &[0.0; DIM]).unwrap();
    }
    let engine = Engine::new(b.build().unwrap(), config(IndexMode::Ann)).unwrap();
    assert!(engine.wait_for_similarity_index(WAIT));
    assert_eq!(engine.similarity_status().size, 0);
    engine.set_breaker_override(BreakerOverride::ForcedOpen);
    let searching = std::sync::atomic::AtomicBool::new(true);
    let fresh = mixture_queries(300, DIM, 10, 11);
    std::thread::scope(|s| {
        s.spawn(|| {
            while searching.load(std::sync::atomic::Ordering::Relaxed) {
                engine.recall(&Cue::embedding(fresh[..DIM].to_vec()).with_k(3)).unwrap();
            }
        });
        for batch in fresh.chunks_exact(30 * DIM) {
            let first = engine.add_nodes(30, None, None, Some((DIM, batch.to_vec()))).unwrap();
            assert_eq!(similar(&engine, &batch[..DIM], 1)[0].0, first);
        }
        assert!(engine.wait_for_similarity_index(WAIT));
        searching.store(false, std::sync::atomic::Ordering::Relaxed);
    });
    assert_eq!(engine.similarity_status().size, 300);
    assert!(engine.similarity_status().bytes > 0);
}

#[test]
fn a_damaged_index_section_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("g.axs");
    let engine = Engine::new(graph(500, 5, 10), config(IndexMode::Ann)).unwrap();
    assert!(engine.wait_for_similarity_index(WAIT));
    engine.save(&path).unwrap();
    let mut bytes = std::fs::read(&path).unwrap();
    // The index is the last section: a byte near the end is one of its.
    let at = bytes.len() - 100;
    bytes[at] ^= 0x40;
    std::fs::write(&path, &bytes).unwrap();
    let Err(e) = Engine::load(&path, config(IndexMode::Ann)) else { panic!("a damaged file loaded") };
    assert_eq!(e.kind(), ErrorKind::Graph);
    assert!(e.to_string().contains("SIMILARITY_INDEX") && e.to_string().contains("checksum"), "{e}");
}

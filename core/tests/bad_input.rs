//! Every validation error path of graph building, TSV loading, config and cue names what is wrong.

use std::io::Write;

use axonal_core::{Cue, Engine, EngineConfig, Error, ErrorKind, Graph, GraphBuilder, Tier};

fn message(result: Result<impl std::fmt::Debug, Error>) -> String {
    result.expect_err("must be rejected").to_string()
}

#[test]
fn builder_rejects_bad_edges_and_loses_nothing() {
    let mut b = GraphBuilder::new(3);
    b.add_edges(&[0, 1], &[1, 2], &[0.5, 1.0]).unwrap();
    let e = b.add_edges(&[0, 7], &[1, 1], &[0.5, 0.5]).unwrap_err();
    assert_eq!(e, Error::EdgeNodeOutOfRange { index: 3, end: "source", node: 7, node_count: 3 });
    assert!(e.to_string().contains("edge 3") && e.to_string().contains("node 7"), "{e}");
    assert_eq!(b.edge_count(), 2, "a rejected batch adds nothing");
    assert!(message(b.add_edge(0, 3, 0.5)).contains("target node 3 out of range"));
    for bad in [f32::NAN, f32::INFINITY, -0.5, 0.0, 1.5] {
        let m = message(b.add_edge(0, 1, bad));
        assert!(m.contains("edge 2") && m.contains(&format!("weight {bad}")), "{m}");
    }
    assert!(message(b.add_edges(&[0], &[1, 2], &[0.5])).contains("src 1, dst 2, weight 1"));
    assert_eq!(b.edge_count(), 2);
    assert_eq!(b.build().unwrap().edge_count(), 2);
}

#[test]
fn builder_rejects_bad_nodes_and_embeddings() {
    let mut b = GraphBuilder::new(2);
    assert!(message(b.set_tier(2, Tier::Cold)).contains("set_tier: node 2 out of range"));
    assert!(message(b.set_label(5, "x")).contains("set_label: node 5"));
    assert!(message(b.set_embedding(9, &[1.0])).contains("set_embedding: node 9"));
    assert!(message(b.set_embedding(0, &[])).contains("node 0: embedding is empty"));
    assert!(message(b.set_embedding(0, &[1.0, f32::NAN])).contains("value NaN at index 1"));
    b.set_embedding(0, &[1.0, 0.0]).unwrap();
    let e = b.set_embedding(1, &[1.0, 0.0, 0.0]).unwrap_err();
    assert_eq!(e, Error::EmbeddingDimension { node: 1, expected: 2, found: 3 });
    assert_eq!(e.kind(), ErrorKind::Graph);
}

fn write(dir: &tempdir::Dir, name: &str, bytes: &[u8]) -> std::path::PathBuf {
    let path = dir.path.join(name);
    std::fs::File::create(&path).unwrap().write_all(bytes).unwrap();
    path
}

mod tempdir {
    pub struct Dir {
        pub path: std::path::PathBuf,
    }
    impl Dir {
        pub fn new(tag: &str) -> Dir {
            let path = std::env::temp_dir().join(format!("axonal-{tag}-{}", std::process::id()));
            std::fs::create_dir_all(&path).unwrap();
            Dir { path }
        }
    }
    impl Drop for Dir {
        fn drop(&mut self) {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

#[test]
fn tsv_loads_edges_and_nodes() {
    let dir = tempdir::Dir::new("tsv-ok");
    let edges = write(&dir, "e.tsv", b"# comment\n0\t1\t0.5\r\n\n1\t2\t1\n2\t0\t0.25\n");
    let nodes = write(&dir, "n.tsv", b"0\thot\tdoctor\n1\twarm\tnurse\n2\t2\n3\tcold\thospital ward\n");
    let g = Graph::from_tsv(&edges, Some(&nodes)).unwrap();
    assert_eq!((g.node_count(), g.edge_count()), (4, 3));
    assert_eq!(g.tier(1), Some(Tier::Warm));
    assert_eq!(g.tier(9), None);
    assert_eq!(g.tier(2), Some(Tier::Cold));
    assert_eq!(g.label(3), Some("hospital ward"));
    assert_eq!(g.label(2), None);
    assert_eq!(g.find("nurse"), Some(1));
    let g = Graph::from_tsv(&edges, None).unwrap();
    assert_eq!(g.node_count(), 3);
}

#[test]
fn tsv_errors_name_file_and_line() {
    let dir = tempdir::Dir::new("tsv-bad");
    let cases: [(&[u8], &str); 7] = [
        (b"0\t1\n", ":1: expected 3 tab-separated fields"),
        (b"0\t1\t0.5\n0\tx\t0.5\n", ":2: dst \"x\" is not a node id"),
        (b"-1\t1\t0.5\n", ":1: src \"-1\" is not a node id"),
        (b"0\t1\tabc\n", ":1: weight \"abc\" is not a number"),
        (b"#c\n0\t1\tNaN\n", ":2: weight NaN must be finite"),
        (b"0\t1\t1.5\n", ":1: weight 1.5 must be"),
        (b"0\t1\t0.5\n\xff\xfe\t1\t0.5\n", ":2: not valid UTF-8"),
    ];
    for (i, (text, expected)) in cases.iter().enumerate() {
        let path = write(&dir, &format!("e{i}.tsv"), text);
        let m = message(Graph::from_tsv(&path, None));
        assert!(m.contains(expected), "case {i}: {m}");
    }
    let edges = write(&dir, "e.tsv", b"0\t1\t0.5\n1\t5\t0.5\n");
    let nodes = write(&dir, "n.tsv", b"0\thot\ta\n1\thot\tb\n");
    assert!(message(Graph::from_tsv(&edges, Some(&nodes))).contains(":2: node 5 out of range"));
    let nodes = write(&dir, "n2.tsv", b"0\tlukewarm\ta\n");
    assert!(message(Graph::from_tsv(&edges, Some(&nodes))).contains(":1: tier \"lukewarm\""));
    let nodes = write(&dir, "n3.tsv", b"0\thot\ta\n0\tcold\tb\n");
    assert!(
        message(Graph::from_tsv(&edges, Some(&nodes)))
            .contains(":2: node 0 is listed twice (first on line 1)")
    );
    let missing = dir.path.join("missing.tsv");
    let e = Graph::from_tsv(&missing, None).unwrap_err();
    assert_eq!(e.kind(), ErrorKind::Io);
    assert!(e.to_string().contains("missing.tsv"));
}

#[test]
fn config_defaults_are_the_spec() {
    let c = EngineConfig::default();
    let json: serde_json::Value = serde_json::from_str(&c.to_json()).unwrap();
    let expected = serde_json::json!({
      "spreading": {"max_depth": 3, "decay": 0.8, "threshold": 0.01, "max_fan_out": 0,
                    "cycle_policy": "fire_once", "batch_size": 64,
                    "tier_timeouts_ms": {"hot": 10.0, "warm": 20.0, "cold": 40.0}, "latency_budget_ms": 50.0},
      "recall":    {"k": 10, "seed_k": 5, "min_similarity": 0.0, "slow_call_factor": 1.5, "min_activation_mass": 0.0},
      "breaker":   {"window_size": 50, "min_calls": 20, "failure_rate_threshold": 0.05,
                    "cooldown_ms": 30000, "max_cooldown_ms": 300000, "half_open_max_probes": 5},
      "health":    {"interval_ms": 10000, "timeout_ms": 1000, "failure_threshold": 2, "success_threshold": 2,
                    "live_min_calls": 20, "live_failure_share": 0.5},
      "callbacks": {"timeout_ms": 5000},
      "compaction": {"max_delta_edges": null},
      "autotune":  {"enabled": true, "interval_ms": 300000, "min_improvement": 0.1, "audit_capacity": 64,
                    "guardrails": {"batch_size": [8, 128], "max_depth": [2, 6], "timeout_multiplier": [0.5, 2.0]}},
      "similarity": {"index": "auto", "exact_below": 20000, "ef_search": 64, "connectivity": 16},
      "threads": 0,
      "opencl": "auto",
      "opencl_min_edges": null
    });
    assert_eq!(json, expected);
    assert_eq!(EngineConfig::from_json("{}").unwrap(), c);
}

#[test]
fn config_errors_name_the_field() {
    let cases = [
        (r#"{"spreading": {"max_depht": 3}}"#, "config spreading.max_depht: unknown key"),
        (r#"{"bogus": 1}"#, "config bogus: unknown key"),
        (r#"{"spreading": {"max_depth": 0}}"#, "config spreading.max_depth: must be in 1..=16, got 0"),
        (r#"{"spreading": {"max_depth": 17}}"#, "spreading.max_depth"),
        (r#"{"spreading": {"max_depth": "3"}}"#, "config spreading.max_depth: invalid type"),
        (r#"{"spreading": {"decay": 0}}"#, "spreading.decay: must be in (0, 1]"),
        (r#"{"spreading": {"decay": 1.5}}"#, "spreading.decay"),
        (r#"{"spreading": {"threshold": 1}}"#, "spreading.threshold: must be in [0, 1)"),
        (r#"{"spreading": {"batch_size": 0}}"#, "spreading.batch_size"),
        (r#"{"spreading": {"cycle_policy": "sometimes"}}"#, "config spreading.cycle_policy: unknown variant"),
        (r#"{"spreading": {"tier_timeouts_ms": {"warm": -1}}}"#, "spreading.tier_timeouts_ms.warm"),
        (
            r#"{"spreading": {"tier_timeouts_ms": {"tepid": 1}}}"#,
            "spreading.tier_timeouts_ms.tepid: unknown key",
        ),
        (r#"{"spreading": {"latency_budget_ms": 0}}"#, "spreading.latency_budget_ms"),
        (
            r#"{"spreading": {"latency_budget_ms": 1e300}}"#,
            "spreading.latency_budget_ms: must be in (0, 86400000]",
        ),
        (r#"{"spreading": {"tier_timeouts_ms": {"hot": 1e300}}}"#, "spreading.tier_timeouts_ms.hot"),
        (r#"{"recall": {"slow_call_factor": 1e8}}"#, "recall.slow_call_factor: must be in (0, 1000]"),
        (r#"{"spreading": 5}"#, "config spreading: must be an object"),
        (r#"{"recall": {"k": 0}}"#, "recall.k"),
        (r#"{"recall": {"seed_k": 0}}"#, "recall.seed_k"),
        (r#"{"recall": {"min_similarity": 2}}"#, "recall.min_similarity"),
        (r#"{"recall": {"slow_call_factor": 0}}"#, "recall.slow_call_factor"),
        (r#"{"recall": {"min_activation_mass": -1}}"#, "recall.min_activation_mass"),
        (r#"{"breaker": {"window_size": 0}}"#, "breaker.window_size"),
        (r#"{"breaker": {"min_calls": 60}}"#, "breaker.min_calls"),
        (r#"{"breaker": {"failure_rate_threshold": 1.5}}"#, "breaker.failure_rate_threshold"),
        (r#"{"breaker": {"cooldown_ms": 0}}"#, "breaker.cooldown_ms"),
        (r#"{"breaker": {"max_cooldown_ms": 10}}"#, "breaker.max_cooldown_ms"),
        (r#"{"breaker": {"half_open_max_probes": 0}}"#, "breaker.half_open_max_probes"),
        (r#"{"health": {"interval_ms": 0}}"#, "health.interval_ms"),
        (r#"{"health": {"timeout_ms": 0}}"#, "health.timeout_ms"),
        (r#"{"health": {"failure_threshold": 0}}"#, "health.failure_threshold"),
        (r#"{"health": {"success_threshold": 0}}"#, "health.success_threshold"),
        (r#"{"autotune": {"interval_ms": 0}}"#, "autotune.interval_ms"),
        (r#"{"autotune": {"audit_capacity": 1000000}}"#, "autotune.audit_capacity"),
        (r#"{"autotune": {"guardrails": {"timeout_multiplier": [0.5, 100]}}}"#, "high <= 10"),
        (r#"{"autotune": {"min_improvement": -0.1}}"#, "autotune.min_improvement"),
        (r#"{"autotune": {"audit_capacity": 0}}"#, "autotune.audit_capacity"),
        (r#"{"autotune": {"guardrails": {"batch_size": [64, 8]}}}"#, "autotune.guardrails.batch_size"),
        (r#"{"autotune": {"guardrails": {"max_depth": [2, 20]}}}"#, "autotune.guardrails.max_depth"),
        (
            r#"{"autotune": {"guardrails": {"timeout_multiplier": [0, 2]}}}"#,
            "autotune.guardrails.timeout_multiplier",
        ),
        (r#"{"threads": 5000}"#, "config threads"),
        (r#"{"opencl": "maybe"}"#, "config opencl: unknown variant"),
        (r#"[1, 2]"#, "a config must be a JSON object"),
        (r#"{"spreading": "#, "malformed JSON"),
    ];
    for (json, expected) in cases {
        let e = EngineConfig::from_json(json).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Config);
        assert!(e.to_string().contains(expected), "{json}: {e}");
    }
}

#[test]
fn cue_errors_name_the_problem() {
    let graph = Graph::from_edges(3, &[0, 1], &[1, 2], &[1.0, 1.0]).unwrap();
    let engine = Engine::new(graph, EngineConfig::default()).unwrap();
    let json_cases = [
        (r#"{"seeds": [0], "extra": 1}"#, "cue extra: unknown key"),
        (r#"{"seeds": ["a"]}"#, "cue seeds[0]: expected a node id"),
        (r#"{"seeds": [[0, "x"]]}"#, "cue seeds[0]: activation \"x\" is not a number"),
        (r#"{"seeds": [-1]}"#, "cue seeds[0]: -1 is not a node id"),
        (r#"{"seeds": {"zero": 1.0}}"#, "cue seeds.zero: key is not a node id"),
        (r#"{"seeds": 5}"#, "cue seeds: expected an array or object"),
        (r#"{"seeds": [0], "k": 0}"#, "cue k: must be an integer >= 1"),
        (r#"{"embedding": ["x"]}"#, "cue embedding[0]: \"x\" is not a number"),
        (r#"{"seeds": [0]"#, "malformed JSON"),
        (r#"[0]"#, "a cue must be a JSON object"),
        (r#"{}"#, "a cue needs seeds or an embedding"),
        (r#"{"seeds": [3]}"#, "node 3 out of range (graph has 3 nodes)"),
        (r#"{"seeds": [4294967296]}"#, "cue seeds[0]: node 4294967296 is beyond the 32-bit id space"),
        (r#"{"seeds": {"4294967296": 1.0}}"#, "cue seeds.4294967296: node 4294967296 is beyond"),
        (r#"{"seeds": [[0, 0.0]]}"#, "cue seeds[0]: activation 0.0 must be in (0, 1]"),
        (r#"{"seeds": [[0, 1e-50]]}"#, "e-51 must be in (0, 1] (and representable as f32)"),
        (r#"{"seeds": [[0, 1.5]]}"#, "activation 1.5"),
        (r#"{"seeds": {"3": "x", "10": 0.5}}"#, "cue seeds.3: activation \"x\" is not a number"),
        (r#"{"embedding": [1e300]}"#, "cue embedding[0]: 1e+300 does not fit in f32"),
        (r#"{"embedding": [1.0]}"#, "cue embedding: the graph has no embeddings"),
    ];
    for (json, expected) in json_cases {
        let e = engine.recall_json(json).unwrap_err();
        assert_eq!(e.kind(), ErrorKind::Recall, "{json}");
        assert!(e.to_string().contains(expected), "{json}: {e}");
    }
    let nan = engine.recall(&Cue::weighted([(0, f32::NAN)])).unwrap_err();
    assert!(nan.to_string().contains("node 0 activation NaN must be finite and in (0, 1]"), "{nan}");
    let zero_k = engine.recall(&Cue::nodes([0]).with_k(0)).unwrap_err();
    assert!(zero_k.to_string().contains("cue k: must be >= 1"), "{zero_k}");

    let mut b = GraphBuilder::new(2);
    b.set_embedding(0, &[1.0, 0.0]).unwrap();
    let engine = Engine::new(b.build().unwrap(), EngineConfig::default()).unwrap();
    for (query, expected) in [
        (vec![1.0], "dimension 1 does not match the graph's 2"),
        (vec![0.0, 0.0], "is the zero vector"),
        (vec![f32::INFINITY, 0.0], "value inf at index 0 is not finite"),
    ] {
        let e = engine.recall(&Cue::embedding(query)).unwrap_err();
        assert!(e.to_string().contains(expected), "{e}");
    }
}

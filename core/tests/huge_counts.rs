//! A node count the machine cannot hold is an error naming it and the bytes it needs, never an abort
//! (docs/spec.md §2). Each case runs in a child process whose address space is capped (`ulimit -v`),
//! so an eager or infallible allocation would abort the child, not the test run, and the machine
//! never actually hands out the memory.

use std::io::Write;
use std::process::Command;

use axonal_core::{Cue, Engine, EngineConfig, Graph, GraphBuilder};

/// Address-space cap of the child, KiB (768 MiB): room for the test harness, not for the graphs below.
const CAP_KIB: u64 = 768 * 1024;

/// Run `case` in a child process of this test binary under the cap; return its stdout.
fn capped(case: &str) -> String {
    let exe = std::env::current_exe().unwrap();
    let output = Command::new("sh")
        .arg("-c")
        .arg(format!("ulimit -v {CAP_KIB} && exec \"$0\" --exact child --nocapture --test-threads 1"))
        .arg(&exe)
        .env("AXONAL_HUGE_CASE", case)
        // One malloc arena: each thread's own arena reserves 64 MiB of address space, which would make
        // the room left under the cap depend on how many threads happened to allocate.
        .env("MALLOC_ARENA_MAX", "1")
        .output()
        .expect("sh runs");
    let stdout = String::from_utf8_lossy(&output.stdout).into_owned();
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(output.status.success(), "{case}: the child failed ({}): {stdout}\n{stderr}", output.status);
    stdout
}

/// The child: runs one case and prints its error message between markers.
#[test]
fn child() {
    let Ok(case) = std::env::var("AXONAL_HUGE_CASE") else { return };
    let message = match case.as_str() {
        // 2³¹ nodes: more than this machine (or the cap) can hold; refused before allocating.
        "builder_2^31" => {
            let mut b = GraphBuilder::new(1 << 31);
            b.add_edge(0, 1, 0.5).unwrap();
            error(b.build())
        }
        "builder_u32_max" => error(GraphBuilder::new(u32::MAX).build()),
        // 600 M nodes (≈ 15 GB to build) fit in this machine but not under the cap: the first
        // fallible reservation refuses them.
        "reservation_600m" => {
            let mut b = GraphBuilder::new(600_000_000);
            b.add_edge(0, 1, 0.5).unwrap();
            error(b.build())
        }
        "tsv_3e9" => {
            let path = std::env::temp_dir().join(format!("axonal-huge-{}.tsv", std::process::id()));
            std::fs::File::create(&path).unwrap().write_all(b"3000000000\t1\t0.5\n").unwrap();
            let e = error(Graph::from_tsv(&path, None));
            let _ = std::fs::remove_file(&path);
            e
        }
        // A graph that fits (≈ 0.3 GB) whose recall buffers (19 bytes a node) do not.
        "recall_buffers" => {
            let graph = Graph::from_edges(30_000_000, &[0], &[1], &[0.5]).unwrap();
            let config = EngineConfig::default().patched(&serde_json::json!({"threads": 1})).unwrap();
            let engine = Engine::new(graph, config).unwrap();
            error(engine.recall(&Cue::nodes([0])))
        }
        // 100 M new nodes on a running engine (their tiers fit under the cap, their label slots do not): refused, nothing applied, the engine serves on.
        "add_nodes_100m" => {
            let config = EngineConfig::default().patched(&serde_json::json!({"threads": 1})).unwrap();
            let engine = Engine::new(Graph::from_edges(3, &[0], &[1], &[0.5]).unwrap(), config).unwrap();
            let message = error(engine.add_nodes(100_000_000, None, None, None));
            assert_eq!((engine.graph_version(), engine.graph().node_count()), (0, 3));
            assert_eq!(engine.recall(&Cue::nodes([0])).unwrap().results.len(), 2);
            message
        }
        other => panic!("unknown case {other}"),
    };
    println!("<<{message}>>");
}

/// The error's message, or a note that there was none (without formatting a huge value).
fn error<T>(result: axonal_core::Result<T>) -> String {
    match result {
        Ok(_) => "no error".into(),
        Err(e) => e.to_string(),
    }
}

fn message(case: &str) -> String {
    let out = capped(case);
    let start = out.find("<<").unwrap_or_else(|| panic!("{case}: no message in {out}"));
    let end = out.rfind(">>").unwrap();
    out[start + 2..end].to_owned()
}

#[test]
fn huge_node_counts_are_errors_naming_the_count_and_the_bytes() {
    for (case, count) in [
        ("builder_2^31", "2147483648 nodes"),
        ("builder_u32_max", "4294967295 nodes"),
        ("reservation_600m", "600000000 nodes"),
        ("tsv_3e9", "3000000001 nodes"),
    ] {
        let m = message(case);
        assert!(
            m.contains("cannot allocate") && m.contains(count) && m.contains("bytes needed"),
            "{case}: {m}"
        );
    }
}

#[test]
fn recall_buffers_that_do_not_fit_are_an_error_for_the_call() {
    let m = message("recall_buffers");
    assert!(m.contains("cannot allocate the spreading buffers of 30000000 nodes"), "{m}");
}

#[test]
fn adding_more_nodes_than_fit_is_an_error_and_changes_nothing() {
    let m = message("add_nodes_100m");
    assert!(
        m.contains("cannot allocate the labels of 100000000 new nodes") && m.contains("bytes needed"),
        "{m}"
    );
}

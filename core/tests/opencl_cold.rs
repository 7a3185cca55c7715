//! An engine that will use the device compiles and runs its kernels at creation (docs/spec.md §19):
//! with an empty PoCL kernel cache, the first recall of an `opencl: "always"` engine is answered by
//! spreading on the device, about as fast as the recalls after it — not by the fallback as `slow`.
#![cfg(feature = "opencl")]

use std::time::Duration;

use axonal_core::{Backend, Cue, Engine, EngineConfig, Graph, Source};
use serde_json::json;

#[test]
fn the_first_recall_on_a_cold_device_is_not_slow() {
    // A kernel cache nobody has filled: PoCL compiles every kernel afresh (set before any OpenCL
    // call in this process; this file holds this one test).
    let cache = std::env::temp_dir().join(format!("axonal-pocl-cold-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&cache);
    std::fs::create_dir_all(&cache).unwrap();
    unsafe { std::env::set_var("POCL_CACHE_DIR", &cache) };

    let n = 2_000u32;
    let src: Vec<u32> = (0..n).flat_map(|u| [u, u]).collect();
    let dst: Vec<u32> = (0..n).flat_map(|u| [(u + 1) % n, (u * 7 + 3) % n]).collect();
    let graph = Graph::from_edges(n, &src, &dst, &vec![0.5; src.len()]).unwrap();
    let config = EngineConfig::default()
        .patched(&json!({"opencl": "always", "threads": 1, "health": {"interval_ms": 3_600_000}}))
        .unwrap();
    let engine = match Engine::new(graph, config) {
        Ok(engine) => engine,
        Err(e) => panic!("an OpenCL device (PoCL in CI): {e}"),
    };
    let cue = Cue::nodes([0, 17, 400]);
    let first = engine.recall(&cue).unwrap();
    let warm: Vec<Duration> = (0..5).map(|_| engine.recall(&cue).unwrap().latency).collect();
    let warm_median = {
        let mut w = warm.clone();
        w.sort();
        w[2]
    };
    let _ = std::fs::remove_dir_all(&cache);
    assert_eq!(first.source, Source::Spreading, "answered by {:?} ({:?})", first.source, first.reason);
    assert_eq!(first.stats.backend, Backend::OpenCl);
    assert!(
        first.latency <= warm_median * 3 + Duration::from_millis(5),
        "first recall {:?}, warm median {warm_median:?}",
        first.latency
    );
}

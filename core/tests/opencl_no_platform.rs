//! Without an OpenCL platform (`OCL_ICD_VENDORS` pointing at an empty directory): `auto` runs on the
//! CPU with no delay, `required` and `always` fail with a clear error, nothing panics. One test in its
//! own binary: discovery happens once per process.
#![cfg(feature = "opencl")]

use std::time::{Duration, Instant};

use axonal_core::ToJson;
use axonal_core::{Cue, Engine, EngineConfig, ErrorKind, Graph};
use serde_json::json;

#[test]
fn no_platform_means_cpu_for_auto_and_a_clear_error_for_required() {
    let empty = std::env::temp_dir().join(format!("axonal-no-icd-{}", std::process::id()));
    std::fs::create_dir_all(&empty).unwrap();
    // SAFETY: set before any other thread of this test binary touches the environment or OpenCL.
    unsafe { std::env::set_var("OCL_ICD_VENDORS", &empty) };
    let graph = std::sync::Arc::new(Graph::from_edges(3, &[0, 1], &[1, 2], &[1.0, 1.0]).unwrap());
    let config = |mode: &str| EngineConfig::default().patched(&json!({"opencl": mode})).unwrap();

    let start = Instant::now();
    let engine = Engine::new(std::sync::Arc::clone(&graph), config("auto")).unwrap();
    assert!(start.elapsed() < Duration::from_secs(2), "auto without a platform took {:?}", start.elapsed());
    let recall = engine.recall(&Cue::nodes([0])).unwrap();
    assert_eq!(recall.results.len(), 3);
    assert!(engine.spreading_section().to_json()["gpu"]["device"].is_null());

    for mode in ["required", "always"] {
        let start = Instant::now();
        let error = Engine::new(std::sync::Arc::clone(&graph), config(mode)).err().expect("no device");
        assert!(start.elapsed() < Duration::from_secs(2));
        assert_eq!(error.kind(), ErrorKind::Unavailable);
        let message = error.to_string();
        assert!(
            message.contains(&format!("opencl \"{mode}\" needs a device")) && message.contains("no OpenCL"),
            "{message}"
        );
    }
    let _ = std::fs::remove_dir(&empty);
}

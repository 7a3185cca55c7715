//! Print the Prometheus exposition (or, with `--json`, the streaming snapshot) of an engine that has
//! served recalls, fallbacks (breaker open, slow) and budget violations. `scripts/test` pipes the
//! text through `promtool check metrics`; docs/telemetry.md shows the JSON.

use axonal_core::ToJson;
use axonal_core::generate;
use axonal_core::{BreakerOverride, Cue, Engine, EngineConfig, Tier};
use serde_json::json;

fn main() {
    let edges = generate::barabasi_albert(2_000, 4, 0.9, 11);
    let mut builder = edges.builder().expect("generated edges are valid");
    for v in 0..2_000u32 {
        let tier = [Tier::Hot, Tier::Warm, Tier::Cold][(v % 3) as usize];
        builder.set_tier(v, tier).expect("node exists");
    }
    let engine = Engine::new(builder.build().expect("valid graph"), EngineConfig::default()).expect("engine");
    engine.metrics().increment_counter("host_requests_total", 3).expect("valid name");
    engine.metrics().record_gauge("host_queue_depth", 2.0).expect("valid name");
    for seed in 0..200 {
        engine.recall(&Cue::nodes([seed])).expect("valid cue");
    }
    engine.set_breaker_override(BreakerOverride::ForcedOpen);
    for seed in 0..20 {
        engine.recall(&Cue::nodes([seed])).expect("valid cue");
    }
    engine.set_breaker_override(BreakerOverride::Auto);
    engine.update_config(&json!({"spreading": {"latency_budget_ms": 0.000001}})).expect("valid patch");
    for seed in 0..20 {
        engine.recall(&Cue::nodes([seed])).expect("valid cue");
    }
    if std::env::args().any(|a| a == "--json") {
        // Windows hold completed seconds: let the current one end so they show the work above.
        std::thread::sleep(std::time::Duration::from_millis(1100));
        println!("{}", serde_json::to_string_pretty(&engine.streaming_snapshot().to_json()).expect("json"));
    } else {
        print!("{}", engine.prometheus_text());
    }
}

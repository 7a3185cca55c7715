//! Revision 2 of the spec's hardening rules at the Rust surface: delivered mass (§4), the live
//! spreading probe (§6), the callback bound (§7) and `k = None` (§11).

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, mpsc};
use std::time::{Duration, Instant};

use axonal_core::ToJson;
use axonal_core::{BreakerOverride, Cue, Engine, EngineConfig, FallbackReason, Graph, HealthStatus, Source};
use serde_json::json;

mod common;

fn cycle(n: u32) -> Graph {
    let src: Vec<u32> = (0..n).collect();
    let dst: Vec<u32> = (0..n).map(|u| (u + 1) % n).collect();
    Graph::from_edges(n, &src, &dst, &vec![1.0; n as usize]).unwrap()
}

fn engine_with(graph: Graph, patch: serde_json::Value) -> Engine {
    Engine::new(graph, EngineConfig::default().patched(&patch).unwrap()).unwrap()
}

/// Wait for the probes' start-up checks (due at registration, run by the background runner), so
/// that every later check is one the test asked for.
fn after_startup_checks(engine: &Engine) {
    let done = || {
        let report = engine.health_report().to_json();
        ["spreading", "spreading_live"]
            .iter()
            .all(|p| report["probes"][p]["checks_total"].as_u64() >= Some(1))
    };
    assert!(common::eventually(Duration::from_secs(10), done), "the start-up checks never ran");
    engine.health().settle();
}

#[test]
fn seeding_every_node_is_not_a_low_mass_failure() {
    let engine = engine_with(cycle(50), json!({"health": {"interval_ms": 3_600_000}}));
    for _ in 0..40 {
        let recall = engine.recall(&Cue::nodes(0..50).with_k(50)).unwrap();
        assert_eq!((recall.source, recall.reason), (Source::Spreading, None));
        assert_eq!(recall.stats.mass, 0.0, "the reported mass stays the non-seed sum");
        assert!(recall.stats.delivered > 0.0, "activation was delivered along edges");
    }
    assert_eq!(engine.breaker_state().as_str(), "closed", "repeated calls did not trip the breaker");
}

#[test]
fn delivered_mass_is_the_low_mass_rule() {
    // Seeds 0 and 1 of a 2-cycle deliver 0.8 each along their edges.
    let engine = engine_with(cycle(2), json!({"recall": {"min_activation_mass": 1.5}}));
    let recall = engine.recall(&Cue::nodes([0, 1])).unwrap();
    assert_eq!(recall.reason, None, "1.6 delivered > 1.5");
    assert!((recall.stats.delivered - 1.6).abs() < 1e-6, "{}", recall.stats.delivered);
    engine.update_config(&json!({"recall": {"min_activation_mass": 1.7}})).unwrap();
    assert_eq!(engine.recall(&Cue::nodes([0, 1])).unwrap().reason, Some(FallbackReason::LowMass));
}

#[test]
fn the_live_probe_sees_an_edgeless_graph_swapped_in() {
    let engine = engine_with(cycle(5), json!({"health": {"interval_ms": 3_600_000}}));
    after_startup_checks(&engine);
    let live = || engine.check_probe("spreading_live").unwrap().to_json();
    let first = live();
    assert_eq!(first["status"], "healthy");
    assert!(first["reason"].as_str().unwrap().starts_with("idle"), "{first}");
    for _ in 0..30 {
        engine.recall(&Cue::nodes([0])).unwrap();
    }
    assert_eq!(live()["status"], "healthy", "a working graph: {}", live());
    // The host swaps in an edgeless graph and keeps recalling: every recall answers with its seed
    // alone, and the synthetic probe (its own 5-node graph) stays healthy.
    engine.replace_graph(Graph::from_edges(5, &[], &[], &[]).unwrap());
    let mut verdicts = Vec::new();
    for _ in 0..2 {
        for _ in 0..40 {
            let recall = engine.recall(&Cue::nodes([0])).unwrap();
            assert_eq!(recall.source, Source::Spreading);
        }
        verdicts.push(live());
    }
    assert_eq!(verdicts[0]["status"], "degraded", "first failure: {}", verdicts[0]);
    assert_eq!(verdicts[1]["status"], "unhealthy", "second in a row: {}", verdicts[1]);
    let reason = verdicts[1]["reason"].as_str().unwrap();
    assert!(
        reason.contains("40 of 40 live recalls") && reason.contains("delivered no activation"),
        "{reason}"
    );
    assert_eq!(engine.check_probe("spreading").unwrap().to_json()["status"], "healthy");
    assert_eq!(engine.health_status(), HealthStatus::Unhealthy, "a critical probe");
    let report = engine.health_report().to_json();
    assert_eq!(report["probes"]["spreading_live"]["details"]["no_activation"], 40);
}

#[test]
fn the_live_probe_sees_failing_recalls() {
    let engine = engine_with(
        cycle(5),
        json!({"health": {"interval_ms": 3_600_000}, "breaker": {"min_calls": 1000, "window_size": 1000}}),
    );
    after_startup_checks(&engine);
    engine
        .set_chaos(axonal_core::ChaosConfig { failure_rate: 1.0, seed: Some(1), ..Default::default() })
        .unwrap();
    for _ in 0..25 {
        assert_eq!(engine.recall(&Cue::nodes([0])).unwrap().reason, Some(FallbackReason::Error));
    }
    let verdict = engine.check_probe("spreading_live").unwrap().to_json();
    assert_eq!(verdict["status"], "degraded", "{verdict}");
    assert!(verdict["reason"].as_str().unwrap().contains("25 failed"), "{verdict}");
}

#[test]
fn a_callback_that_never_returns_is_abandoned_and_shutdown_stays_bounded() {
    let engine = engine_with(cycle(5), json!({"callbacks": {"timeout_ms": 200}}));
    let release = Arc::new(AtomicBool::new(false));
    let (entered, entered_rx) = mpsc::channel();
    let stuck = Arc::clone(&release);
    engine.on_breaker_transition(move |_| {
        let _ = entered.send(());
        while !stuck.load(Ordering::Relaxed) {
            std::thread::sleep(Duration::from_millis(5));
        }
    });
    let (seen, seen_rx) = mpsc::channel();
    engine.on_breaker_transition(move |e| {
        let _ = seen.send(e.to.as_str());
    });
    engine.set_breaker_override(BreakerOverride::ForcedOpen);
    entered_rx.recv_timeout(Duration::from_secs(5)).expect("the first callback runs");
    // The second callback still hears of the transition, after the timeout, on a fresh thread.
    assert_eq!(seen_rx.recv_timeout(Duration::from_secs(5)), Ok("open"));
    engine.set_breaker_override(BreakerOverride::Auto);
    assert_eq!(seen_rx.recv_timeout(Duration::from_secs(5)), Ok("closed"), "later events keep flowing");
    assert_eq!(engine.transition_callback_timeouts(), 1);
    let snapshot = engine.streaming_snapshot().to_json();
    assert_eq!(snapshot["totals"]["counters"]["spreading_callback_timeouts_total"], 1);
    // A transition while the first callback is still stuck: shutdown waits at most the timeout.
    engine.set_breaker_override(BreakerOverride::ForcedOpen);
    let start = Instant::now();
    drop(engine);
    let took = start.elapsed();
    release.store(true, Ordering::Relaxed);
    assert!(took < Duration::from_millis(1_500), "drop took {took:?} with a callback stuck");
}

#[test]
fn k_none_means_the_configured_recall_k() {
    let engine = engine_with(cycle(10), json!({"recall": {"k": 2}, "spreading": {"max_depth": 6}}));
    assert_eq!(engine.recall(&Cue::nodes([0])).unwrap().results.len(), 2);
    assert_eq!(engine.recall(&Cue::nodes([0]).with_k(4)).unwrap().results.len(), 4);
    let json: serde_json::Value =
        serde_json::from_str(&engine.recall_json(r#"{"seeds": [0], "k": null}"#).unwrap()).unwrap();
    assert_eq!(json["results"].as_array().unwrap().len(), 2);
}

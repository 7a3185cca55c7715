//! Streaming telemetry: windows roll over on an injected clock, quantiles are within 2 %, counters
//! are exact under concurrency, and an engine's snapshot reflects its live recalls.

use std::sync::Arc;
use std::time::Duration;

use axonal_core::ToJson;
use axonal_core::clock::ManualClock;
use axonal_core::telemetry::{Summary, Telemetry, WINDOWS};
use axonal_core::{BreakerOverride, Cue, Engine, EngineConfig, GraphBuilder, Tier};
use serde_json::{Value, json};

mod common;

fn counter_window(snapshot: &Value, window: &str, name: &str) -> u64 {
    snapshot["windows"][window]["counters"][name]
        .as_u64()
        .unwrap_or_else(|| panic!("{window} {name}: {snapshot}"))
}

#[test]
fn windows_roll_over_on_the_injected_clock() {
    let clock = ManualClock::new(1_700_000_000_000);
    let telemetry = Telemetry::new(clock.clone());
    let counter = telemetry.registry().counter("jobs_total", "test").unwrap();
    let name = "jobs_total";
    let window =
        |t: &Telemetry, w: &str| counter_window(&json!({"windows": t.snapshot().windows.to_json()}), w, name);

    clock.advance(Duration::from_millis(500));
    counter.add(5);
    clock.advance(Duration::from_millis(500)); // t = 1 s: second 0 is complete
    assert_eq!((window(&telemetry, "1s"), window(&telemetry, "10s")), (5, 5));

    counter.add(3);
    clock.advance(Duration::from_secs(1)); // t = 2 s
    assert_eq!((window(&telemetry, "1s"), window(&telemetry, "10s"), window(&telemetry, "60s")), (3, 8, 8));

    clock.advance(Duration::from_secs(10)); // t = 12 s: both seconds older than 10 s
    assert_eq!((window(&telemetry, "1s"), window(&telemetry, "10s"), window(&telemetry, "60s")), (0, 0, 8));
    assert_eq!(
        telemetry.snapshot().export.to_json()["skipped_seconds"],
        9,
        "nine seconds passed without a fold"
    );

    clock.advance(Duration::from_secs(50)); // t = 62 s
    assert_eq!((window(&telemetry, "60s"), window(&telemetry, "300s")), (0, 8));
    clock.advance(Duration::from_secs(240)); // t = 302 s
    assert_eq!(window(&telemetry, "300s"), 0);
    assert_eq!(telemetry.totals_json()["counters"][name], 8, "totals keep everything");
}

#[test]
fn histogram_windows_roll_over_too() {
    let clock = ManualClock::new(0);
    let telemetry = Telemetry::new(clock.clone());
    let h =
        telemetry.registry().histogram("op_seconds", "test", axonal_core::telemetry::LATENCY_BOUNDS).unwrap();
    for _ in 0..10 {
        h.observe(0.010);
    }
    clock.advance(Duration::from_secs(1));
    telemetry.tick(); // what the engine's telemetry thread does every 250 ms
    for _ in 0..30 {
        h.observe(0.002);
    }
    clock.advance(Duration::from_secs(1));
    let one = telemetry.window_summary(0, "op_seconds").unwrap();
    let ten = telemetry.window_summary(1, "op_seconds").unwrap();
    assert_eq!(one.count, 30);
    assert!((one.p99 - 0.002).abs() / 0.002 < 0.02, "{one:?}");
    assert_eq!(ten.count, 40);
    assert!((ten.p90 - 0.010).abs() / 0.010 < 0.02, "{ten:?}");
    assert!((ten.sum - 0.16).abs() < 1e-9);
    clock.advance(Duration::from_secs(10));
    assert_eq!(telemetry.window_summary(1, "op_seconds").unwrap(), Summary::default());
}

/// Nearest-rank quantile of sorted values.
fn exact(sorted: &[f64], q: f64) -> f64 {
    let rank = ((q * sorted.len() as f64).ceil() as usize).max(1);
    sorted[rank - 1]
}

#[test]
fn quantiles_are_within_two_percent_of_exact() {
    let clock = ManualClock::new(0);
    let telemetry = Telemetry::new(clock.clone());
    let h = telemetry
        .registry()
        .histogram("spread_seconds", "test", axonal_core::telemetry::LATENCY_BOUNDS)
        .unwrap();
    let mut rng = axonal_core::generate::SplitMix64(3);
    // Log-uniform over six decades plus a heavy tail: 1 µs .. 10 s.
    let mut values: Vec<f64> = (0..200_000).map(|_| 1e-6 * 10f64.powf(7.0 * rng.unit())).collect();
    for &v in &values {
        h.observe(v);
    }
    clock.advance(Duration::from_secs(1));
    values.sort_by(f64::total_cmp);
    let totals = telemetry.totals_json();
    let total = &totals["histograms"]["spread_seconds"];
    let window =
        telemetry.window_summary(WINDOWS.iter().position(|&w| w == 60).unwrap(), "spread_seconds").unwrap();
    for (q, key, windowed) in [
        (0.5, "p50", window.p50),
        (0.9, "p90", window.p90),
        (0.95, "p95", window.p95),
        (0.99, "p99", window.p99),
    ] {
        let truth = exact(&values, q);
        let estimate = total[key].as_f64().unwrap();
        assert!((estimate - truth).abs() / truth <= 0.02, "{key}: {estimate} vs exact {truth}");
        assert!((windowed - truth).abs() / truth <= 0.02, "window {key}: {windowed} vs exact {truth}");
    }
    assert_eq!(total["count"], 200_000);
    assert_eq!(total["min"].as_f64().unwrap(), values[0], "totals keep the exact min");
    assert_eq!(total["max"].as_f64().unwrap(), values[values.len() - 1], "and the exact max");
    let mean = values.iter().sum::<f64>() / values.len() as f64;
    assert!((total["mean"].as_f64().unwrap() - mean).abs() / mean < 1e-9);
}

#[test]
fn counters_are_exact_under_four_threads() {
    let clock = ManualClock::new(0);
    let telemetry = Telemetry::new(clock.clone());
    let registry = telemetry.registry();
    let handle = registry.counter("events_total", "test").unwrap();
    std::thread::scope(|scope| {
        for t in 0..4 {
            let handle = handle.clone();
            scope.spawn(move || {
                for i in 0..250_000 {
                    // Half through the handle, half by name.
                    if (i + t) % 2 == 0 {
                        handle.increment();
                    } else {
                        registry.increment_counter("events_total", 1).unwrap();
                    }
                }
            });
        }
    });
    assert_eq!(handle.total(), 1_000_000);
    clock.advance(Duration::from_secs(1));
    let snapshot = telemetry.snapshot();
    let (windows, totals, export) =
        (snapshot.windows.to_json(), snapshot.totals.to_json(), snapshot.export.to_json());
    assert_eq!(windows["1s"]["counters"]["events_total"], 1_000_000);
    assert_eq!(totals["counters"]["events_total"], 1_000_000);
    assert_eq!((export["sampled"].as_u64(), export["dropped"].as_u64()), (Some(0), Some(0)));
}

#[test]
fn registry_rejects_bad_names_and_kind_clashes() {
    let telemetry = Telemetry::new(ManualClock::new(0));
    let registry = telemetry.registry();
    // The engine's catalogue, as an engine registers it.
    axonal_core::engine::EngineMetrics::register(registry).unwrap();
    let e = registry.increment_counter("bad name", 1).unwrap_err();
    assert!(e.to_string().contains("\"bad name\""), "{e}");
    registry.record_gauge("queue_depth", 3.0).unwrap();
    let e = registry.increment_counter("queue_depth", 1).unwrap_err();
    assert!(e.to_string().contains("already registered as another kind"), "{e}");
    let e = registry.observe_histogram("spreading_recalls_total", 1.0).unwrap_err();
    assert!(e.to_string().contains("spreading_recalls_total"), "{e}");
}

/// 0 (hot) → 1 (warm) → 2 (cold) → 3 (hot); depth 2 reaches the cold node but it never fires.
/// Returned once the probes' start-up checks (due at creation, on the background runner) are done,
/// so the test's counts cannot race them (the next checks are 10 s away on the manual clock).
fn three_tier_engine(clock: Arc<ManualClock>) -> Engine {
    let mut b = GraphBuilder::new(4);
    b.add_edges(&[0, 1, 2], &[1, 2, 3], &[1.0, 1.0, 1.0]).unwrap();
    b.set_tier(1, Tier::Warm).unwrap();
    b.set_tier(2, Tier::Cold).unwrap();
    let config = EngineConfig::default().patched(&json!({"spreading": {"max_depth": 2}})).unwrap();
    let engine = Engine::with_clock(b.build().unwrap(), config, clock).unwrap();
    let started = || {
        let report = engine.health_report();
        report.probes.values().all(|p| p.checks_total >= 1) && report.probes.len() == 3
    };
    assert!(common::eventually(Duration::from_secs(10), started), "the start-up checks never ran");
    engine.health().settle();
    engine
}

#[test]
fn snapshot_counts_live_recalls_and_only_tiers_with_work() {
    let clock = ManualClock::new(1_700_000_000_000);
    let engine = three_tier_engine(clock.clone());
    let n = 37;
    for _ in 0..n {
        engine.recall(&Cue::nodes([0])).unwrap();
    }
    clock.advance(Duration::from_secs(1));
    let snapshot = engine.streaming_snapshot().to_json();
    assert_eq!(snapshot["schema"], "axonal.snapshot.v1");
    let totals = &snapshot["totals"];
    assert_eq!(totals["counters"]["spreading_recalls_total"], n);
    // Spreads are the recalls plus the spreading health probe's runs (the live probe spreads nothing).
    let probe_runs = snapshot["health"]["probes"]["spreading"]["checks_total"].as_u64().unwrap();
    assert_eq!(totals["counters"]["spreading_spreads_total"], n + probe_runs);
    assert_eq!(totals["counters"]["spreading_edges_traversed_total"], 2 * n);
    assert_eq!(totals["histograms"]["spreading_recall_latency_seconds"]["count"], n);
    assert_eq!(totals["histograms"]["spreading_latency_hot_seconds"]["count"], n);
    assert_eq!(totals["histograms"]["spreading_latency_warm_seconds"]["count"], n);
    assert_eq!(
        totals["histograms"]["spreading_latency_cold_seconds"]["count"], 0,
        "the cold tier never had work"
    );
    assert_eq!(totals["histograms"]["spreading_depth_reached"]["p50"], 2.0);
    assert!((totals["histograms"]["spreading_activation_mass"]["max"].as_f64().unwrap() - 1.44).abs() < 1e-6);
    for window in ["1s", "10s", "60s", "300s"] {
        assert_eq!(counter_window(&snapshot, window, "spreading_recalls_total"), n);
    }
    let spreading = &snapshot["spreading"];
    assert_eq!(spreading["recalls_total"], n);
    assert_eq!(spreading["latency"]["total"]["count"], n);
    assert_eq!(spreading["latency"]["warm"]["count"], n);
    assert_eq!(spreading["latency"]["cold"]["count"], 0);
    assert_eq!(spreading["fallback"]["total"], 0);
    assert_eq!(spreading["pool"]["capacity"], 1);
    assert_eq!(spreading["breaker"]["override"], "auto");
    for key in ["windows", "totals", "spreading", "health", "export"] {
        assert!(snapshot.get(key).is_some(), "snapshot lacks {key}");
    }
}

#[test]
fn fallbacks_failures_and_budget_violations_are_counted_by_reason() {
    let clock = ManualClock::new(0);
    let engine = three_tier_engine(clock.clone());
    engine.set_breaker_override(BreakerOverride::ForcedOpen);
    for _ in 0..3 {
        engine.recall(&Cue::nodes([0])).unwrap();
    }
    engine.set_breaker_override(BreakerOverride::Auto);
    engine.update_config(&json!({"spreading": {"latency_budget_ms": 1e-9}})).unwrap();
    for _ in 0..2 {
        engine.recall(&Cue::nodes([0])).unwrap();
    }
    let section = engine.spreading_section().to_json();
    assert_eq!(section["recalls_total"], 5);
    assert_eq!(section["fallback"]["total"], 5);
    assert_eq!(section["fallback"]["by_reason"]["breaker_open"], 3);
    assert_eq!(section["fallback"]["by_reason"]["slow"], 2);
    assert_eq!(section["failures_total"], 2, "refusals are not failures");
    assert!(section["budget_violations_total"].as_u64().unwrap() >= 2);
    let totals = engine.telemetry().totals_json();
    assert_eq!(totals["counters"]["spreading_breaker_open_total"], 3);
    let probe_runs =
        engine.health_report().to_json()["probes"]["spreading"]["checks_total"].as_u64().unwrap();
    assert_eq!(totals["counters"]["spreading_spreads_total"], 2 + probe_runs);
    let text = engine.prometheus_text();
    assert!(text.contains("axonal_spreading_fallback_total{reason=\"breaker_open\"} 3"), "{text}");
    assert!(text.contains("axonal_spreading_fallback_total{reason=\"slow\"} 2"));
    assert!(text.contains("# TYPE axonal_spreading_latency_seconds histogram"));
    assert!(text.contains("axonal_spreading_latency_seconds_bucket{tier=\"hot\",le=\"+Inf\"} 2"));
    assert!(text.contains("axonal_spreading_recall_latency_seconds_count 5"));
    assert!(text.contains("axonal_spreading_config_max_depth 2"));
}

#[test]
fn absurd_host_values_neither_panic_nor_corrupt_the_export() {
    let clock = ManualClock::new(0);
    let telemetry = Telemetry::new(clock.clone());
    let registry = telemetry.registry();
    registry.increment_counter("huge_total", u64::MAX).unwrap();
    registry.increment_counter("huge_total", u64::MAX).unwrap();
    for v in [f64::INFINITY, f64::MAX, -1.0, f64::NAN, 1e300] {
        registry.observe_histogram("wild_seconds", v).unwrap();
    }
    clock.advance(Duration::from_secs(1));
    let totals = telemetry.snapshot().totals.to_json();
    let wild = &totals["histograms"]["wild_seconds"];
    assert_eq!(wild["count"], 5);
    assert!(wild["max"].as_f64().unwrap() <= 4_294_967_296.0, "clamped: {wild}");
    assert!(telemetry.prometheus_text().contains("axonal_wild_seconds_count 5"));
}

#[test]
fn the_registry_is_bounded_and_exposition_names_stay_unique() {
    let telemetry = Telemetry::new(ManualClock::new(0));
    let registry = telemetry.registry();
    // The engine's catalogue, as an engine registers it.
    axonal_core::engine::EngineMetrics::register(registry).unwrap();
    registry.increment_counter("jobs", 1).unwrap();
    let clash = registry.increment_counter("jobs_total", 1).unwrap_err().to_string();
    assert!(clash.contains("axonal_jobs_total is already taken"), "{clash}");
    let clash = registry.record_gauge("spreading_latency_seconds", 1.0).unwrap_err().to_string();
    assert!(clash.contains("already taken"), "{clash}");
    let mut registered = 0;
    let error = loop {
        match registry.increment_counter(&format!("host_{registered}_total"), 1) {
            Ok(()) => registered += 1,
            Err(e) => break e.to_string(),
        }
    };
    assert!(error.contains("maximum of 1024 metrics"), "{error}");
    assert!(registered < 1024);
    promtool_like_check(&telemetry.prometheus_text());
}

/// Every family has exactly one TYPE line and no series appears twice.
fn promtool_like_check(text: &str) {
    let mut types = std::collections::HashSet::new();
    let mut series = std::collections::HashSet::new();
    for line in text.lines() {
        if let Some(rest) = line.strip_prefix("# TYPE ") {
            assert!(types.insert(rest.split(' ').next().unwrap().to_owned()), "duplicate TYPE: {line}");
        } else if !line.starts_with('#') {
            assert!(series.insert(line.rsplit_once(' ').unwrap().0.to_owned()), "duplicate series: {line}");
        }
    }
}

#[test]
fn with_telemetry_off_only_the_every_call_counters_count() {
    let clock = ManualClock::new(1_700_000_000_000);
    let engine = three_tier_engine(clock.clone());
    engine.set_telemetry_enabled(false);
    for _ in 0..5 {
        engine.recall(&Cue::nodes([0])).unwrap();
    }
    engine.set_breaker_override(BreakerOverride::ForcedOpen);
    for _ in 0..3 {
        engine.recall(&Cue::nodes([0])).unwrap();
    }
    let totals = engine.telemetry().totals_json();
    assert_eq!(totals["counters"]["spreading_recalls_total"], 8, "docs/spec.md §5: every recall");
    assert_eq!(totals["counters"]["spreading_breaker_open_total"], 3, "every refused call");
    assert_eq!(totals["histograms"]["spreading_recall_latency_seconds"]["count"], 0, "the rest is off");
    assert_eq!(totals["counters"]["spreading_edges_traversed_total"], 0);
}

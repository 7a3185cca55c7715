//! Health probes: hysteresis, timeouts that do not delay other probes, critical and non-critical
//! probes, the report, and the spreading probe reacting to injected faults on an injected clock.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::{Arc, Mutex, mpsc};
use std::time::{Duration, Instant};

use axonal_core::ToJson;
use axonal_core::clock::ManualClock;
use axonal_core::health::{FnProbe, HealthMetrics, HealthRegistry, ProbeOptions};
use axonal_core::telemetry::Telemetry;
use axonal_core::{ChaosConfig, Engine, EngineConfig, Graph, HealthCheckResult, HealthStatus};

fn registry(clock: Arc<ManualClock>) -> (HealthRegistry, Telemetry) {
    let telemetry = Telemetry::new(clock.clone());
    let m = axonal_core::engine::EngineMetrics::register(telemetry.registry()).unwrap();
    let metrics = HealthMetrics {
        checks: m.health_checks_total.clone(),
        failures: m.health_failures_total.clone(),
        status: m.health_status.clone(),
    };
    (HealthRegistry::new(&EngineConfig::default().health, clock, metrics), telemetry)
}

fn options(interval_s: u64, timeout_ms: u64, critical: bool) -> ProbeOptions {
    ProbeOptions {
        interval: Duration::from_secs(interval_s),
        timeout: Duration::from_millis(timeout_ms),
        critical,
    }
}

/// A probe whose verdict the test sets: 0 healthy, 1 degraded, 2 unhealthy, 3 panic.
fn switch_probe(name: &str) -> (Arc<FnProbe<impl Fn() -> HealthCheckResult + Send + Sync>>, Arc<AtomicU8>) {
    let verdict = Arc::new(AtomicU8::new(0));
    let v = Arc::clone(&verdict);
    let probe = FnProbe::new(name, move || match v.load(Ordering::SeqCst) {
        0 => HealthCheckResult::healthy(),
        3 => panic!("probe exploded"),
        n => HealthCheckResult::failed(HealthStatus::from_index(n as u32).unwrap(), "switched off"),
    });
    (Arc::new(probe), verdict)
}

fn status(report: &serde_json::Value) -> &str {
    report["status"].as_str().unwrap()
}

#[test]
fn hysteresis_both_ways() {
    let (registry, telemetry) = registry(ManualClock::new(0));
    let (probe, verdict) = switch_probe("db");
    registry.register(probe, Some(options(10, 1000, true))).unwrap();
    let check = || registry.check_named("db").unwrap().to_json();
    assert_eq!(status(&check()), "healthy");
    verdict.store(2, Ordering::SeqCst);
    let r = check();
    assert_eq!(
        (status(&r), r["consecutive_failures"].as_u64()),
        ("degraded", Some(1)),
        "first failure → degraded"
    );
    assert_eq!(r["reason"], "switched off");
    assert_eq!(status(&check()), "unhealthy", "second consecutive failure → unhealthy");
    verdict.store(0, Ordering::SeqCst);
    let r = check();
    assert_eq!(
        (status(&r), r["consecutive_successes"].as_u64()),
        ("unhealthy", Some(1)),
        "one success is not enough"
    );
    assert_eq!(status(&check()), "healthy", "two consecutive successes → healthy");
    verdict.store(1, Ordering::SeqCst);
    assert_eq!(status(&check()), "degraded", "a degraded verdict is a failure");
    verdict.store(0, Ordering::SeqCst);
    assert_eq!(status(&check()), "degraded");
    verdict.store(2, Ordering::SeqCst);
    assert_eq!(status(&check()), "degraded", "the failure streak restarts");
    verdict.store(0, Ordering::SeqCst);
    check();
    let r = check();
    assert_eq!(status(&r), "healthy");
    assert_eq!(r["checks_total"], 10);
    assert!(r["last_success"].as_u64().is_some() && r["last_failure"].as_u64().is_some());
    let totals = telemetry.totals_json();
    assert_eq!(totals["counters"]["spreading_health_checks_total"], 10);
    assert_eq!(totals["counters"]["spreading_health_failures_total"], 4);
}

#[test]
fn a_panicking_probe_is_unhealthy_not_fatal() {
    let (registry, _t) = registry(ManualClock::new(0));
    let (probe, verdict) = switch_probe("panicky");
    registry.register(probe, Some(options(10, 1000, true))).unwrap();
    verdict.store(3, Ordering::SeqCst);
    let r = registry.check_named("panicky").unwrap().to_json();
    assert_eq!((status(&r), r["reason"].as_str()), ("degraded", Some("probe panicked")));
    verdict.store(0, Ordering::SeqCst);
    registry.check_named("panicky").unwrap().to_json();
    assert_eq!(
        status(&registry.check_named("panicky").unwrap().to_json()),
        "healthy",
        "the worker survived the panic"
    );
}

#[test]
fn a_hung_probe_times_out_and_does_not_delay_the_others() {
    let clock = ManualClock::new(0);
    let (registry, _t) = registry(clock.clone());
    let (release, hold) = mpsc::channel::<()>();
    let hold = Mutex::new(hold);
    let hung = FnProbe::new("hung", move || {
        let _ = hold.lock().unwrap().recv();
        HealthCheckResult::healthy()
    });
    registry.register(Arc::new(hung), Some(options(10, 100, true))).unwrap();
    let (steady, _) = switch_probe("steady");
    registry.register(steady, Some(options(10, 1000, true))).unwrap();

    registry.run_pending(); // t = 0: both due
    let start = Instant::now();
    let r = registry.check_named("steady").unwrap().to_json();
    assert!(start.elapsed() < Duration::from_millis(90), "steady answered while hung hangs");
    assert_eq!(status(&r), "healthy");
    registry.settle();
    let report = registry.latest_report().to_json();
    assert_eq!(report["probes"]["hung"]["reason"], "timeout");
    assert_eq!(report["probes"]["hung"]["status"], "unhealthy", "a hang skips the degraded step");
    assert_eq!(report["probes"]["hung"]["consecutive_failures"], 1);
    assert_eq!(report["status"], "unhealthy");
    // One check, or two: `check_named` joins the scheduled check while it is in flight and runs its
    // own once it has finished (a race on a loaded machine).
    let steady_checks = report["probes"]["steady"]["checks_total"].as_u64().unwrap();

    clock.advance(Duration::from_secs(10)); // t = 10 s: both due again; hung is still stuck
    registry.run_pending();
    registry.settle();
    let report = registry.latest_report().to_json();
    assert_eq!(report["probes"]["hung"]["status"], "unhealthy");
    assert!(report["probes"]["hung"]["reason"].as_str().unwrap().starts_with("timeout"));
    assert_eq!(report["probes"]["steady"]["checks_total"], steady_checks + 1, "steady kept its schedule");
    assert_eq!(report["probes"]["steady"]["status"], "healthy");
    assert_eq!(report["status"], "unhealthy");
    release.send(()).unwrap();
}

#[test]
fn non_critical_probes_do_not_change_the_overall_status() {
    let (registry, telemetry) = registry(ManualClock::new(0));
    let (probe, verdict) = switch_probe("cache");
    registry.register(probe, Some(options(10, 1000, false))).unwrap();
    verdict.store(2, Ordering::SeqCst);
    registry.check_named("cache").unwrap().to_json();
    registry.check_named("cache").unwrap().to_json();
    let report = registry.latest_report().to_json();
    assert_eq!(report["probes"]["cache"]["status"], "unhealthy");
    assert_eq!(report["probes"]["cache"]["critical"], false);
    assert_eq!(report["status"], "healthy");
    assert_eq!(telemetry.totals_json()["gauges"]["spreading_health_status"], 0.0);
}

#[test]
fn report_shape_registration_errors_and_unregister() {
    let (registry, _t) = registry(ManualClock::new(1_700_000_000_000));
    let (probe, _) = switch_probe("db");
    let id = registry.register(probe, Some(options(10, 1000, true))).unwrap();
    let (again, _) = switch_probe("db");
    assert!(
        registry
            .register(again, Some(options(10, 1000, true)))
            .unwrap_err()
            .to_string()
            .contains("\"db\" is already registered")
    );
    registry.check_named("db").unwrap().to_json();
    let report = registry.latest_report().to_json();
    assert_eq!(report["schema"], "axonal.health.v1");
    assert_eq!(report["checked_at"], 1_700_000_000_000u64);
    let db = &report["probes"]["db"];
    for key in [
        "status",
        "critical",
        "consecutive_failures",
        "consecutive_successes",
        "last_success",
        "last_failure",
        "latency_ms",
        "budget_ms",
        "reason",
        "checks_total",
    ] {
        assert!(db.get(key).is_some(), "probe entry lacks {key}: {db}");
    }
    assert_eq!(db["budget_ms"], 1000.0);
    let e = registry.check_named("nope").unwrap_err().to_string();
    assert!(e.contains("no probe named \"nope\"") && e.contains("db"), "{e}");
    assert!(registry.unregister(id));
    assert!(!registry.unregister(id));
    assert!(registry.latest_report().to_json()["probes"].as_object().unwrap().is_empty());
}

#[test]
fn probe_options_json_is_validated() {
    let defaults = options(10, 1000, true);
    let o = ProbeOptions::from_json(defaults, r#"{"interval_ms": 500, "critical": false}"#).unwrap();
    assert_eq!(
        (o.interval, o.timeout, o.critical),
        (Duration::from_millis(500), Duration::from_secs(1), false)
    );
    for (json, field) in [
        (r#"{"interval_ms": 0}"#, "interval_ms"),
        (r#"{"timeout_ms": "1"}"#, "timeout_ms"),
        (r#"{"critical": 1}"#, "critical"),
        (r#"{"period": 1}"#, "period"),
        (r#"[]"#, "probe options"),
    ] {
        let e = ProbeOptions::from_json(defaults, json).unwrap_err().to_string();
        assert!(e.contains(field), "{json}: {e}");
    }
}

fn engine(clock: Arc<ManualClock>) -> Engine {
    let graph = Graph::from_edges(3, &[0, 1], &[1, 2], &[1.0, 1.0]).unwrap();
    Engine::with_clock(graph, EngineConfig::default(), clock).unwrap()
}

/// Advance the clock 10 s at a time (the default interval), running due probes, until `done` or 30 s.
fn seconds_until(clock: &ManualClock, engine: &Engine, done: impl Fn(&Engine) -> bool) -> Option<u64> {
    for step in 1..=3 {
        clock.advance(Duration::from_secs(10));
        engine.health().run_pending();
        engine.health().settle();
        if done(engine) {
            return Some(step * 10);
        }
    }
    None
}

fn spreading_status(engine: &Engine) -> HealthStatus {
    engine.health().probe_status("spreading").unwrap()
}

#[test]
fn spreading_probe_turns_unhealthy_within_30_s_of_injected_latency_and_recovers() {
    use axonal_core::chaos::TierLatency;
    // The probe's cycle crosses every tier, so latency on any one of them reaches it.
    for latency in [
        TierLatency { hot: 60.0, ..Default::default() },
        TierLatency { warm: 60.0, ..Default::default() },
        TierLatency { cold: 60.0, ..Default::default() },
    ] {
        probe_catches_latency(latency);
    }
}

fn probe_catches_latency(latency: axonal_core::chaos::TierLatency) {
    let clock = ManualClock::new(0);
    let engine = engine(clock.clone());
    engine.health().settle();
    assert_eq!(spreading_status(&engine), HealthStatus::Healthy);
    assert_eq!(engine.health_report().to_json()["probes"]["spreading"]["budget_ms"], 50.0);
    engine.set_chaos(ChaosConfig { latency_ms: latency, ..Default::default() }).unwrap();
    let took = seconds_until(&clock, &engine, |e| spreading_status(e) == HealthStatus::Unhealthy);
    assert!(took.is_some_and(|s| s <= 30), "{latency:?}: unhealthy after {took:?} s");
    let report = engine.health_report().to_json();
    assert_eq!(report["status"], "unhealthy");
    assert_eq!(report["probes"]["spreading"]["reason"], "latency over budget");
    assert!(report["probes"]["spreading"]["latency_ms"].as_f64().unwrap() >= 60.0);
    engine.clear_chaos();
    let took = seconds_until(&clock, &engine, |e| spreading_status(e) == HealthStatus::Healthy);
    assert_eq!(took, Some(20), "two successes at the 10 s interval");
    let totals = engine.telemetry().totals_json();
    assert!(totals["histograms"]["spreading_health_probe_latency_seconds"]["max"].as_f64().unwrap() >= 0.060);
}

#[test]
fn spreading_probe_turns_unhealthy_within_30_s_of_zero_mass() {
    let clock = ManualClock::new(0);
    let engine = engine(clock.clone());
    engine.health().settle();
    engine.set_chaos(ChaosConfig { zero_mass_rate: 1.0, ..Default::default() }).unwrap();
    let took = seconds_until(&clock, &engine, |e| spreading_status(e) == HealthStatus::Unhealthy);
    assert!(took.is_some_and(|s| s <= 30), "unhealthy after {took:?} s");
    assert_eq!(engine.health_report().to_json()["probes"]["spreading"]["reason"], "zero activation mass");
    assert_eq!(engine.telemetry().totals_json()["gauges"]["spreading_health_status"], 2.0);
}

#[test]
fn config_interval_and_timeout_apply_to_probes_without_own_options() {
    let clock = ManualClock::new(0);
    let (registry, _t) = registry(clock.clone());
    let (follows, _) = switch_probe("follows");
    let (own, _) = switch_probe("own");
    registry.register(follows, None).unwrap();
    registry.register(own, Some(options(10, 1000, true))).unwrap();
    let mut config = EngineConfig::default().health;
    config.interval_ms = 2_000;
    config.timeout_ms = 500;
    registry.apply_config(&config);
    let report = registry.latest_report().to_json();
    assert_eq!(
        (
            report["probes"]["follows"]["interval_ms"].as_u64(),
            report["probes"]["follows"]["timeout_ms"].as_u64()
        ),
        (Some(2000), Some(500))
    );
    assert_eq!(report["probes"]["own"]["interval_ms"], 10_000);
    for _ in 0..3 {
        registry.run_pending();
        registry.settle();
        clock.advance(Duration::from_secs(2));
    }
    let report = registry.latest_report().to_json();
    assert_eq!(report["probes"]["follows"]["checks_total"], 3, "every 2 s");
    assert_eq!(report["probes"]["own"]["checks_total"], 1, "every 10 s");
}

#[test]
fn dropping_the_engine_cuts_an_injected_delay_short() {
    let clock = ManualClock::new(0);
    let engine = engine(clock.clone());
    engine.health().settle();
    let hot = axonal_core::chaos::TierLatency { hot: 30_000.0, ..Default::default() };
    engine.set_chaos(ChaosConfig { latency_ms: hot, ..Default::default() }).unwrap();
    clock.advance(Duration::from_secs(10));
    engine.health().run_pending(); // the probe's worker is now asleep in a 30 s injected delay
    let start = Instant::now();
    drop(engine);
    assert!(start.elapsed() < Duration::from_secs(5), "drop took {:?}", start.elapsed());
}

#[test]
fn dropping_the_engine_lets_a_running_check_finish_first() {
    use std::sync::atomic::AtomicBool;
    let clock = ManualClock::new(0);
    let engine = engine(clock.clone());
    let finished = Arc::new(AtomicBool::new(false));
    let flag = Arc::clone(&finished);
    let (started_tx, started) = mpsc::channel::<()>();
    let started_tx = Mutex::new(started_tx);
    let slow = move || {
        let _ = started_tx.lock().unwrap().send(());
        std::thread::sleep(Duration::from_millis(150)); // a slow check, not a wait for state
        flag.store(true, Ordering::SeqCst);
        HealthCheckResult::healthy()
    };
    engine.register_probe_fn("slow", slow, Some(options(10, 1000, true))).unwrap();
    engine.health().run_pending();
    started.recv().unwrap(); // the check is running on its worker
    drop(engine);
    assert!(finished.load(Ordering::SeqCst), "drop waited for the check in flight");
}

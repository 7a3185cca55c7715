//! The engine (SPEC §4): owns the current graph, live config, rayon pool, scratch pool, breaker,
//! health registry, telemetry and chaos injector, and every background thread; runs recalls.

mod autotune;
mod core;
mod live_probe;
mod probe;

pub use live_probe::LiveSpreadingProbe;
pub use probe::SpreadingHealthProbe;

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};

use arc_swap::ArcSwap;
use serde_json::{Value, json};

use self::core::{Core, LiveConfig, LiveFeed, TunerFeed, build_pool};
use crate::breaker::callbacks::{Dispatcher, TransitionCallback};
use crate::breaker::{
    BreakerMetrics, BreakerOverride, BreakerSettings, BreakerState, CircuitBreaker, TransitionEvent,
};
use crate::chaos::{ChaosConfig, ChaosInjector};
use crate::clock::{SharedClock, SystemClock};
use crate::config::{EngineConfig, OpenClMode};
use crate::error::{Error, Result};
use crate::graph::Graph;
use crate::health::{
    HealthCheckResult, HealthMetrics, HealthProbe, HealthRegistry, HealthStatus, ProbeOptions,
};
use crate::recall::{Cue, Recall};
use crate::spread::ScratchPool;
use crate::telemetry::{self, MetricsRegistry, Telemetry};
use crate::tuner::{AUDIT_SCHEMA, AuditEntry, Decision, SpreadingAutoTuner};
use crate::worker::Worker;

/// A spreading-activation engine.
///
/// Thread-safe: every method takes `&self` and may run concurrently from any thread. Dropping the
/// engine stops and joins every thread it started (a host probe hung inside its check is detached and
/// finishes on its own).
pub struct Engine {
    // Fields drop in this order: background threads first, the shared core (and its pool) last.
    _autotune: Worker,
    _ticker: Worker,
    health: HealthRegistry,
    dispatcher: Dispatcher,
    spreading_probe: Arc<SpreadingHealthProbe>,
    core: Arc<Core>,
    /// HTTP servers started on this engine (they hold it weakly; see `crate::http`).
    #[cfg(feature = "http")]
    http_servers: crate::http::ServerList,
}

impl Engine {
    /// Create an engine over `graph` with `config` (validated here), on the system clock.
    pub fn new(graph: impl Into<Arc<Graph>>, config: EngineConfig) -> Result<Engine> {
        Engine::with_clock(graph, config, SystemClock::shared())
    }

    /// Create an engine whose time-dependent parts (telemetry windows, breaker cooldowns, probe
    /// schedules) read `clock`.
    pub fn with_clock(
        graph: impl Into<Arc<Graph>>,
        config: EngineConfig,
        clock: SharedClock,
    ) -> Result<Engine> {
        config.validate()?;
        let threads = match config.threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let thread_error = |what: &str, e: std::io::Error| Error::Unavailable {
            feature: "threads",
            message: format!("cannot start the {what} thread: {e}"),
        };
        let telemetry = Telemetry::new(Arc::clone(&clock));
        let metrics = telemetry.spreading().clone();
        #[cfg(feature = "opencl")]
        let opencl = opencl_backend(&config, metrics.gpu_launches_total.clone())?;
        #[cfg(not(feature = "opencl"))]
        if matches!(config.opencl, OpenClMode::Required | OpenClMode::Always) {
            return Err(Error::Unavailable {
                feature: "opencl",
                message: format!(
                    "{:?} needs an OpenCL device, and this build has no OpenCL backend",
                    config.opencl
                ),
            });
        }
        let dispatcher = Dispatcher::with_timeout(
            telemetry.registry().counter(
                "spreading_callback_failures_total",
                "Host callbacks (breaker transitions) that panicked or raised.",
            )?,
            telemetry.registry().counter(
                "spreading_callback_timeouts_total",
                "Host callbacks (breaker transitions) abandoned after callbacks.timeout_ms.",
            )?,
            std::time::Duration::from_millis(config.callbacks.timeout_ms),
        )
        .map_err(|e| thread_error("breaker event", e))?;
        let breaker = CircuitBreaker::new(
            BreakerSettings::from(&config),
            Arc::clone(&clock),
            dispatcher.sender(),
            BreakerMetrics {
                transitions: metrics.breaker_transitions_total.clone(),
                state: metrics.breaker_state.clone(),
            },
        );
        let health = HealthRegistry::new(
            &config.health,
            Arc::clone(&clock),
            HealthMetrics {
                checks: metrics.health_checks_total.clone(),
                failures: metrics.health_failures_total.clone(),
                status: metrics.health_status.clone(),
            },
        );
        // The pool last: from here on the core owns (and on any error joins) its threads.
        let pool_threads = Arc::new(Mutex::new(Vec::new()));
        let pool = if threads > 1 { Some(build_pool(threads, Arc::clone(&pool_threads))?) } else { None };
        let core = Arc::new(Core {
            graph: ArcSwap::new(graph.into()),
            live: ArcSwap::from_pointee(LiveConfig::new(config.clone())),
            config_writer: Mutex::new(SpreadingAutoTuner::new(&config)),
            tuner_feed: TunerFeed::new(),
            live_feed: LiveFeed { empty: crate::telemetry::Counter::detached() },
            autotune_enabled: AtomicBool::new(config.autotune.enabled),
            task_overhead: std::sync::OnceLock::new(),
            last_autotune_step: std::sync::atomic::AtomicU64::new(0),
            pool,
            pool_threads: Mutex::new(std::mem::take(
                &mut *pool_threads.lock().unwrap_or_else(|p| p.into_inner()),
            )),
            threads,
            // Enough idle buffers for every pool thread plus a few host threads; more concurrent
            // recalls still work, their extra buffers are freed on return.
            scratch: ScratchPool::new(2 * threads + 2),
            breaker,
            telemetry,
            telemetry_enabled: AtomicBool::new(true),
            chaos: ChaosInjector::new(),
            #[cfg(feature = "opencl")]
            opencl,
        });
        let sampler = Arc::clone(&core);
        let ticker = telemetry::start_ticker(Arc::clone(&clock), move || {
            sampler.sample_gauges();
            sampler.telemetry.tick();
        })
        .map_err(|e| thread_error("telemetry", e))?;
        let spreading_probe = Arc::new(SpreadingHealthProbe::new(Arc::clone(&core)));
        #[cfg(feature = "opencl")]
        core.warm_up_device(spreading_probe.graph());
        health.register(Arc::clone(&spreading_probe) as Arc<dyn HealthProbe>, None)?;
        health.register(Arc::new(LiveSpreadingProbe::new(Arc::clone(&core))), None)?;
        health.start().map_err(|e| thread_error("health", e))?;
        let autotune = autotune::start(Arc::clone(&core), clock).map_err(|e| thread_error("autotune", e))?;
        Ok(Engine {
            _autotune: autotune,
            _ticker: ticker,
            health,
            dispatcher,
            spreading_probe,
            core,
            #[cfg(feature = "http")]
            http_servers: Default::default(),
        })
    }

    /// Create an engine from a JSON config (`None` = defaults).
    pub fn from_json_config(graph: impl Into<Arc<Graph>>, config: Option<&str>) -> Result<Engine> {
        let config = match config {
            Some(text) => EngineConfig::from_json(text)?,
            None => EngineConfig::default(),
        };
        Engine::new(graph, config)
    }

    // --- graph and config ---

    /// The graph recalls currently start on.
    pub fn graph(&self) -> Arc<Graph> {
        self.core.graph.load_full()
    }

    /// Swap in a new graph atomically; recalls in flight finish on the graph they started with.
    pub fn replace_graph(&self, graph: impl Into<Arc<Graph>>) {
        self.core.graph.store(graph.into());
    }

    /// The live config.
    pub fn config(&self) -> EngineConfig {
        self.core.live.load().config.clone()
    }

    /// Merge `patch` (the §14 shape, any subset of keys) into the live config, validate and apply it
    /// (spreading, recall, breaker settings and health thresholds at once). Returns the config now in
    /// force. `threads` and `opencl` are fixed at creation.
    pub fn update_config(&self, patch: &Value) -> Result<EngineConfig> {
        let core = &self.core;
        let mut tuner = core.config_writer.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let current = core.live.load();
        // The patch applies to the operator's config, not to the tuner's adjustments of it: an
        // operator write replaces them (docs/autotuning.md).
        let next = tuner.base().patched(patch)?;
        if next.threads != current.config.threads {
            return Err(Error::config("threads", "is fixed when the engine is created"));
        }
        if next.opencl != current.config.opencl {
            return Err(Error::config("opencl", "is fixed when the engine is created"));
        }
        // `always` pins the threshold at 0 for the engine's life.
        if next.opencl_min_edges != current.config.opencl_min_edges && next.opencl != OpenClMode::Always {
            #[cfg(feature = "opencl")]
            if let Some(backend) = &core.opencl {
                backend.set_min_edges(next.opencl_min_edges);
            }
        }
        self.health.apply_config(&next.health);
        self.dispatcher.callbacks().set_timeout(std::time::Duration::from_millis(next.callbacks.timeout_ms));
        core.install_config(next.clone());
        tuner.operator_changed(&next);
        tracing::info!(config = %serde_json::to_string(&next).unwrap_or_default(), "config updated");
        Ok(next)
    }

    /// [`Engine::update_config`] from JSON text.
    pub fn update_config_json(&self, patch: &str) -> Result<EngineConfig> {
        let patch: Value = serde_json::from_str(patch)
            .map_err(|e| Error::config("(document)", format!("malformed JSON: {e}")))?;
        self.update_config(&patch)
    }

    /// Threads in the spreading pool (1 = everything inline).
    pub fn threads(&self) -> usize {
        self.core.threads
    }

    /// Scratch buffers lent out right now.
    pub fn pool_in_use(&self) -> usize {
        self.core.scratch.in_use()
    }

    /// Scratch buffers in existence.
    pub fn pool_capacity(&self) -> usize {
        self.core.scratch.capacity()
    }

    /// Approximate heap bytes held by the scratch buffers.
    pub fn pool_bytes(&self) -> usize {
        self.core.scratch.approximate_bytes()
    }

    // --- recall ---

    /// Recall what `cue` activates.
    pub fn recall(&self, cue: &Cue) -> Result<Recall> {
        let mut out = Recall::default();
        self.recall_into(cue, &mut out)?;
        Ok(out)
    }

    /// Recall into `out`, reusing its result buffer (no allocation once warm).
    pub fn recall_into(&self, cue: &Cue, out: &mut Recall) -> Result<()> {
        let graph = self.core.graph.load();
        self.core.recall_on(&graph, cue, out)
    }

    /// Recall from §15 cue JSON to §15 result JSON (labels from the graph the recall ran on).
    pub fn recall_json(&self, cue_json: &str) -> Result<String> {
        self.recall_cue_json(&Cue::from_json(cue_json)?)
    }

    /// Recall `cue` and answer with the §15 result JSON.
    pub fn recall_cue_json(&self, cue: &Cue) -> Result<String> {
        let graph = self.core.graph.load_full();
        let mut recall = Recall::default();
        self.core.recall_on(&graph, cue, &mut recall)?;
        Ok(recall.to_json_string(&graph))
    }

    // --- breaker ---

    /// The breaker's state.
    pub fn breaker_state(&self) -> BreakerState {
        self.core.breaker.state()
    }

    /// Set the breaker's manual override.
    pub fn set_breaker_override(&self, mode: BreakerOverride) {
        self.core.breaker.set_override(mode);
    }

    /// The breaker's manual override.
    pub fn breaker_override(&self) -> BreakerOverride {
        self.core.breaker.override_mode()
    }

    /// Call `callback` for every breaker transition, in order, from the dispatcher thread. Returns an
    /// id for [`Engine::remove_transition_callback`].
    pub fn on_breaker_transition(&self, callback: impl Fn(&TransitionEvent) + Send + 'static) -> u64 {
        self.dispatcher.callbacks().register(Box::new(callback) as TransitionCallback)
    }

    /// [`Engine::on_breaker_transition`] for a callback that reports failure (a binding's callback
    /// that raised) by returning `Err`: counted like a panic, without one.
    pub fn on_breaker_transition_fallible(
        &self,
        callback: impl Fn(&TransitionEvent) -> std::result::Result<(), String> + Send + 'static,
    ) -> u64 {
        self.dispatcher.callbacks().register_fallible(Box::new(callback))
    }

    /// Stop calling a transition callback; no call starts after this returns (a call in progress
    /// is waited for up to `callbacks.timeout_ms`). Returns whether `id` was registered.
    pub fn remove_transition_callback(&self, id: u64) -> bool {
        self.dispatcher.callbacks().unregister(id)
    }

    /// Block until every transition event so far has reached the callbacks.
    pub fn flush_transition_events(&self) {
        self.dispatcher.flush();
    }

    /// Transition callbacks that panicked (or raised, through a binding).
    pub fn transition_callback_failures(&self) -> u64 {
        self.dispatcher.callbacks().failures()
    }

    /// Transition callback calls abandoned after `callbacks.timeout_ms`.
    pub fn transition_callback_timeouts(&self) -> u64 {
        self.dispatcher.callbacks().timeouts()
    }

    // --- health ---

    /// Register a probe with `options` (`None`: the configured interval and timeout, critical, and
    /// following later `health` config changes).
    pub fn register_probe(&self, probe: Arc<dyn HealthProbe>, options: Option<ProbeOptions>) -> Result<u64> {
        self.health.register(probe, options)
    }

    /// Register a probe from a closure.
    pub fn register_probe_fn(
        &self,
        name: &str,
        check: impl Fn() -> HealthCheckResult + Send + Sync + 'static,
        options: Option<ProbeOptions>,
    ) -> Result<u64> {
        self.register_probe(Arc::new(crate::health::FnProbe::new(name, check)), options)
    }

    /// Unregister a probe; returns whether `id` was registered.
    pub fn unregister_probe(&self, id: u64) -> bool {
        self.health.unregister(id)
    }

    /// Run the probe `name` now and return its report entry.
    pub fn check_probe(&self, name: &str) -> Result<Value> {
        self.health.check_named(name)
    }

    /// The cached health report (SPEC §6); runs nothing.
    pub fn health_report(&self) -> Value {
        self.health.latest_report()
    }

    /// The overall health status.
    pub fn health_status(&self) -> HealthStatus {
        self.health.status()
    }

    /// The built-in `spreading` probe (to run it directly, e.g. in a benchmark).
    pub fn spreading_probe(&self) -> Arc<SpreadingHealthProbe> {
        Arc::clone(&self.spreading_probe)
    }

    /// The health registry (tests drive its schedule with an injected clock).
    pub fn health(&self) -> &HealthRegistry {
        &self.health
    }

    // --- chaos ---

    /// Start injecting faults (SPEC §9); an inactive config clears.
    pub fn set_chaos(&self, config: ChaosConfig) -> Result<()> {
        self.core.chaos.set(config)
    }

    /// [`Engine::set_chaos`] from the §15 chaos JSON (`{}` clears).
    pub fn set_chaos_json(&self, text: &str) -> Result<()> {
        self.core.chaos.set(ChaosConfig::from_json(text)?)
    }

    /// Stop injecting faults.
    pub fn clear_chaos(&self) {
        self.core.chaos.clear();
    }

    /// The chaos being injected, if any.
    pub fn chaos(&self) -> Option<ChaosConfig> {
        self.core.chaos.current()
    }

    /// The engine's chaos injector.
    pub fn chaos_injector(&self) -> &ChaosInjector {
        &self.core.chaos
    }

    // --- auto-tuner ---

    /// Whether the auto-tuner may change the config.
    pub fn autotune_enabled(&self) -> bool {
        self.core.autotune_enabled.load(Ordering::Relaxed)
    }

    /// Enable or disable the auto-tuner at run time (its adjustments so far stay in force).
    pub fn set_autotune_enabled(&self, enabled: bool) {
        let mut tuner = self.core.config_writer.lock().unwrap_or_else(|p| p.into_inner());
        tuner.set_enabled(enabled);
        let mut config = self.core.live.load().config.clone();
        config.autotune.enabled = enabled;
        self.core.install_config(config);
        tracing::info!(enabled, "auto-tuner enabled changed");
    }

    /// Run one tuning step now and return the decision (including "no change" and why).
    pub fn autotune_now(&self) -> Decision {
        self.core.autotune_step()
    }

    /// The audit log, oldest first.
    pub fn autotune_audit(&self) -> Vec<AuditEntry> {
        self.core.config_writer.lock().unwrap_or_else(|p| p.into_inner()).audit()
    }

    /// The audit log as JSON: `{"schema", "capacity", "pinned", "entries": [{at, action, old, new,
    /// reason, predicted, observed}]}`; `pinned` lists the knobs the operator set outside their
    /// guardrails, which the tuner leaves alone.
    pub fn autotune_audit_json(&self) -> Value {
        let capacity = self.core.live.load().config.autotune.audit_capacity;
        let tuner = self.core.config_writer.lock().unwrap_or_else(|p| p.into_inner());
        json!({"schema": AUDIT_SCHEMA, "capacity": capacity, "pinned": tuner.pinned(), "entries": tuner.audit()})
    }

    /// The tuner's state: knobs, base, EWMAs, current interval and backoff, pending judgement.
    pub fn autotune_state(&self) -> Value {
        let live = self.core.live.load();
        let interval = std::time::Duration::from_millis(live.config.autotune.interval_ms);
        self.core
            .config_writer
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .state_json(interval, self.autotune_enabled())
    }

    // --- telemetry ---

    /// The streaming snapshot (SPEC §5; schema in docs/telemetry.md).
    pub fn streaming_snapshot(&self) -> Value {
        self.core.sample_gauges();
        let (windows, totals, export) = self.core.telemetry.snapshot_parts();
        json!({
            "schema": telemetry::SNAPSHOT_SCHEMA,
            "at_unix_ms": self.core.telemetry.clock().unix_ms(),
            "windows": windows,
            "totals": totals,
            "spreading": self.core.spreading_section(),
            "health": self.health.latest_report(),
            "export": export,
        })
    }

    /// The snapshot's `spreading` section (also served on its own over HTTP).
    pub fn spreading_section(&self) -> Value {
        self.core.spreading_section()
    }

    /// The Prometheus text exposition of every metric.
    pub fn prometheus_text(&self) -> String {
        self.core.sample_gauges();
        self.core.telemetry.prometheus_text()
    }

    /// Turn per-recall telemetry on or off (on by default). Off, recalls record nothing but the two
    /// counters SPEC §5 says count every call (`spreading_recalls_total`,
    /// `spreading_breaker_open_total`); the other metrics keep what they had. It exists to measure
    /// telemetry's own cost (docs/performance.md); a production engine leaves it on.
    pub fn set_telemetry_enabled(&self, enabled: bool) {
        self.core.telemetry_enabled.store(enabled, Ordering::Relaxed);
    }

    /// The metrics registry (hosts may register their own metrics here).
    pub fn metrics(&self) -> &MetricsRegistry {
        self.core.telemetry.registry()
    }

    /// The servers started by [`Engine::serve_http`].
    #[cfg(feature = "http")]
    pub(crate) fn http_servers(&self) -> &crate::http::ServerList {
        &self.http_servers
    }

    /// The telemetry (registry, engine handles, windows).
    pub fn telemetry(&self) -> &Telemetry {
        &self.core.telemetry
    }
}

impl Drop for Engine {
    /// Shut down while everything a host callback may call back into is still alive: cut injected
    /// delays short, deliver queued transition events and drop the transition callbacks, stop the
    /// probes (a check in flight gets its timeout to finish). The remaining fields then drop in order
    /// (tuner and telemetry threads, the core and its pool).
    fn drop(&mut self) {
        self.core.chaos.clear();
        self.dispatcher.shutdown();
        self.health.shutdown();
    }
}

/// The OpenCL backend `config.opencl` asks for: none for `off`, or for `auto` without a device; an
/// error for `required` and `always` without one. Discovery runs once per process.
#[cfg(feature = "opencl")]
fn opencl_backend(
    config: &EngineConfig,
    launches: crate::telemetry::Counter,
) -> Result<Option<crate::opencl::OpenClBackend>> {
    let min_edges = if config.opencl == OpenClMode::Always { Some(0) } else { config.opencl_min_edges };
    match config.opencl {
        OpenClMode::Off => Ok(None),
        mode => match crate::opencl::OpenClBackend::new(min_edges, launches) {
            Ok(backend) => {
                tracing::info!(
                    device = backend.device_name(),
                    min_edges = backend.min_edges(),
                    "OpenCL backend ready"
                );
                Ok(Some(backend))
            }
            Err(why) if mode == OpenClMode::Auto => {
                tracing::info!(reason = %why, "no OpenCL device: spreading runs on the CPU");
                Ok(None)
            }
            Err(why) => Err(Error::Unavailable {
                feature: "opencl",
                message: format!(
                    "opencl \"{}\" needs a device: {why}",
                    if mode == OpenClMode::Required { "required" } else { "always" }
                ),
            }),
        },
    }
}

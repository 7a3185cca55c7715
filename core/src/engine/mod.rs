//! The engine (docs/spec.md §4): owns the current graph, live config, rayon pool, buffer pool,
//! breaker, health registry, tuner, telemetry (with its metric catalogue) and chaos injector, and
//! every background thread; runs recalls through the pipeline of `crate::recall`. Servers on top of
//! it are not its business: `crate::host` puts an engine and its servers together.

mod autotune;
mod live_probe;
mod living;
mod metrics;
mod probe;
mod similarity;
mod snapshot;
mod state;

pub use live_probe::LiveSpreadingProbe;
pub use living::{GraphProbe, GraphSection};
pub use metrics::EngineMetrics;
pub use probe::SpreadingHealthProbe;
pub use similarity::SimilaritySection;
pub use snapshot::{
    AutotuneSection, AutotuneView, BreakerView, CONFIG_VIEW_SCHEMA, ConfigView, FallbackSection, GpuSection,
    LatencySection, Percentiles, PoolSection, SNAPSHOT_SCHEMA, Snapshot, SpreadingSection,
};

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

use arc_swap::ArcSwap;
use serde_json::Value;

use self::state::{EngineState, LiveConfig, LiveFeed, TunerFeed, Tuning, build_pool};
use crate::breaker::callbacks::Dispatcher;
use crate::breaker::{
    BreakerMetrics, BreakerOverride, BreakerSettings, BreakerState, CircuitBreaker, TransitionEvent,
};
use crate::chaos::{ChaosConfig, ChaosInjector};
use crate::clock::{SharedClock, SystemClock};
use crate::config::{EngineConfig, OpenClMode};
use crate::error::{Error, Result};
use crate::graph::{Batch, Graph, GraphVersion, Tier};
use crate::health::{
    HealthCheckResult, HealthMetrics, HealthProbe, HealthRegistry, HealthReport, HealthStatus, ProbeOptions,
    ProbeReport,
};
use crate::pool::BufferPool;
use crate::recall::{Cue, Recall};
use crate::telemetry::{self, Counter, MetricsRegistry, Telemetry};
use crate::tuner::{AuditEntry, AuditLog, Decision, SpreadingAutoTuner, TunerState};
use crate::worker::Worker;

/// What a batch made: its version, and (for `AddNodes`) the id of the first node it added — the
/// node count of the version it applied to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Applied {
    /// The new version.
    pub version: u64,
    /// The node count before the batch: the first added id.
    pub first_node: u32,
}

/// A spreading-activation engine.
///
/// Thread-safe: every method takes `&self` and may run concurrently from any thread. Dropping the
/// engine stops and joins every thread it started (a host probe or callback hung past its bound is
/// detached and finishes on its own).
pub struct Engine {
    // Fields drop in this order: background threads first, the shared state (and its pool) last.
    _autotune: Worker,
    _ticker: Worker,
    health: HealthRegistry,
    dispatcher: Dispatcher,
    _compactor: Worker,
    _indexer: Worker,
    spreading_probe: Arc<SpreadingHealthProbe>,
    state: Arc<EngineState>,
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
        let metrics = EngineMetrics::register(telemetry.registry())?;
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
            metrics.callback_failures_total.clone(),
            metrics.callback_timeouts_total.clone(),
            Duration::from_millis(config.callbacks.timeout_ms),
        )
        .map_err(|e| thread_error("breaker event", e))?;
        let breaker = CircuitBreaker::new(
            BreakerSettings::new(&config.breaker, config.latency_budget()),
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
        // The pool last: from here on the state owns (and on any error joins) its threads.
        let pool_threads = Arc::new(Mutex::new(Vec::new()));
        let pool = if threads > 1 { Some(build_pool(threads, Arc::clone(&pool_threads))?) } else { None };
        let graph: Arc<Graph> = graph.into();
        let first_version = graph.origin_version();
        let state = Arc::new(EngineState {
            graph: ArcSwap::from_pointee(GraphVersion::fresh(graph, first_version)),
            living: Default::default(),
            similarity: Default::default(),
            live: ArcSwap::from_pointee(LiveConfig::new(config.clone())),
            tuning: Mutex::new(Tuning {
                tuner: SpreadingAutoTuner::new(&config.spreading, &config.autotune),
                operator: config.clone(),
            }),
            tuner_feed: TunerFeed::new(),
            live_feed: LiveFeed { empty: Counter::detached() },
            autotune_enabled: AtomicBool::new(config.autotune.enabled),
            task_overhead: OnceLock::new(),
            last_autotune_step: AtomicU64::new(0),
            pool,
            pool_threads: Mutex::new(std::mem::take(
                &mut *pool_threads.lock().unwrap_or_else(|p| p.into_inner()),
            )),
            threads,
            // Enough idle buffers for every pool thread plus a few host threads; more concurrent
            // recalls still work, their extra buffers are freed on return.
            buffers: BufferPool::new(2 * threads + 2),
            lane_buffers: BufferPool::new(1),
            breaker,
            telemetry,
            metrics,
            telemetry_enabled: AtomicBool::new(true),
            chaos: ChaosInjector::new(),
            #[cfg(feature = "opencl")]
            opencl,
        });
        let sampler = Arc::clone(&state);
        let ticker = telemetry::start_ticker(Arc::clone(&clock), move || {
            sampler.sample_gauges();
            sampler.telemetry.tick();
        })
        .map_err(|e| thread_error("telemetry", e))?;
        let spreading_probe = Arc::new(SpreadingHealthProbe::new(Arc::clone(&state)));
        #[cfg(feature = "opencl")]
        state.warm_up_device(spreading_probe.graph());
        health.register(Arc::clone(&spreading_probe) as Arc<dyn HealthProbe>, None)?;
        health.register(Arc::new(LiveSpreadingProbe::new(Arc::clone(&state))), None)?;
        let graph_probe = Arc::new(living::GraphProbe::new(Arc::clone(&state)));
        let options = ProbeOptions { critical: false, ..ProbeOptions::from_config(&config.health) };
        health.register(graph_probe, Some(options))?;
        health.start().map_err(|e| thread_error("health", e))?;
        let autotune = autotune::start(Arc::clone(&state), clock).map_err(|e| thread_error("autotune", e))?;
        let compactor =
            living::start_compactor(Arc::clone(&state)).map_err(|e| thread_error("compactor", e))?;
        state.load_saved_index();
        let indexer =
            similarity::start_indexer(Arc::clone(&state)).map_err(|e| thread_error("indexer", e))?;
        state.sample_graph_gauges();
        Ok(Engine {
            _autotune: autotune,
            _ticker: ticker,
            health,
            dispatcher,
            _compactor: compactor,
            _indexer: indexer,
            spreading_probe,
            state,
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

    /// Create an engine from a snapshot file (docs/spec.md §17): it maps the graph and continues
    /// the version numbering of the engine that saved it.
    pub fn load(path: impl AsRef<std::path::Path>, config: EngineConfig) -> Result<Engine> {
        let started = quanta::Instant::now();
        let graph = Graph::load(path)?;
        let took = started.elapsed();
        let engine = Engine::new(graph, config)?;
        engine.state.metrics.graph_snapshot_load_seconds.observe_duration(took);
        Ok(engine)
    }

    /// The version of the graph recalls currently start on (the base and its pending changes).
    pub fn graph(&self) -> Arc<GraphVersion> {
        self.state.graph.load_full()
    }

    /// Swap in a new graph atomically as the next version; recalls in flight finish on the version
    /// they started with. Returns the new version.
    pub fn replace_graph(&self, graph: impl Into<Arc<Graph>>) -> u64 {
        self.state.replace_graph(graph.into())
    }

    // --- the living graph (docs/spec.md §16) ---

    /// The current graph version.
    pub fn graph_version(&self) -> u64 {
        self.state.graph.load().version()
    }

    /// Apply one batch of changes as the next version; returns its number. Validated whole first: on
    /// an error (naming the entry) nothing applies.
    pub fn apply(&self, batch: Batch) -> Result<u64> {
        self.apply_batch(batch).map(|applied| applied.version)
    }

    /// [`Engine::apply`], also telling the first id of the nodes an `AddNodes` batch added.
    pub fn apply_batch(&self, batch: Batch) -> Result<Applied> {
        let (version, first_node) = self.state.apply_batch(batch)?;
        Ok(Applied { version, first_node })
    }

    /// Add `count` nodes (tiers, labels, embeddings: one per node, or none); returns the first
    /// new id.
    pub fn add_nodes(
        &self,
        count: u32,
        tiers: Option<Vec<Tier>>,
        labels: Option<Vec<Option<String>>>,
        embeddings: Option<(usize, Vec<f32>)>,
    ) -> Result<u32> {
        // The first new id is the node count of the version the batch applied to.
        Ok(self.apply_batch(Batch::AddNodes { count, tiers, labels, embeddings })?.first_node)
    }

    /// Append edges to their sources' lists; returns the new version.
    pub fn add_edges(&self, src: &[u32], dst: &[u32], weight: &[f32]) -> Result<u64> {
        self.apply(Batch::AddEdges { src: src.to_vec(), dst: dst.to_vec(), weight: weight.to_vec() })
    }

    /// Give every `src → dst` edge of each pair a new weight; returns the new version.
    pub fn set_weights(&self, src: &[u32], dst: &[u32], weight: &[f32]) -> Result<u64> {
        self.apply(Batch::SetWeights { src: src.to_vec(), dst: dst.to_vec(), weight: weight.to_vec() })
    }

    /// Remove every `src → dst` edge of each pair; returns the new version.
    pub fn remove_edges(&self, src: &[u32], dst: &[u32]) -> Result<u64> {
        self.apply(Batch::RemoveEdges { src: src.to_vec(), dst: dst.to_vec() })
    }

    /// Move nodes to tiers; returns the new version.
    pub fn set_tiers(&self, nodes: &[u32], tiers: &[Tier]) -> Result<u64> {
        self.apply(Batch::SetTiers { nodes: nodes.to_vec(), tiers: tiers.to_vec() })
    }

    /// Fold the pending changes into a fresh base now (recalls never wait); returns the version,
    /// which compaction does not change.
    pub fn compact(&self) -> Result<u64> {
        self.state.compact()
    }

    /// Save the current version as a snapshot (docs/spec.md §17), with the embedding index when
    /// there is one (docs/spec.md §18); returns its version.
    pub fn save(&self, path: impl AsRef<std::path::Path>) -> Result<u64> {
        let started = quanta::Instant::now();
        let (version, index) = {
            // The index must cover exactly the saved version's nodes: no addition meanwhile.
            let _holding = self.state.hold_index();
            let version = self.graph();
            let index = self.state.saved_index(&version);
            (version, index)
        };
        let materialized;
        let graph = if version.has_changes() {
            materialized = version.materialize()?;
            &materialized
        } else {
            &**version.base()
        };
        graph.save_as(version.version(), index.as_ref(), path.as_ref())?;
        self.state.metrics.graph_snapshot_save_seconds.observe_duration(started.elapsed());
        Ok(version.version())
    }

    /// The embedding index: what answers embedding queries now, its size and lag
    /// (docs/spec.md §18).
    pub fn similarity_status(&self) -> SimilaritySection {
        self.state.similarity_section()
    }

    /// Wait, at most `timeout`, until embedding queries are answered as the config asks: the index
    /// built (or loaded) and covering every node, or no index wanted. Returns whether they are.
    /// Recalls never need this — until then they scan exactly — but a host that measures or
    /// benchmarks may.
    pub fn wait_for_similarity_index(&self, timeout: Duration) -> bool {
        self.state.wait_for_index(timeout)
    }

    /// The live config.
    pub fn config(&self) -> EngineConfig {
        self.state.live.load().config.clone()
    }

    /// Merge `patch` (the §14 shape, any subset of keys) into the operator's config, validate it and
    /// apply it (spreading, recall, breaker, health and callback settings at once). Returns the config
    /// now in force. `threads` and `opencl` are fixed at creation.
    pub fn update_config(&self, patch: &Value) -> Result<EngineConfig> {
        let state = &self.state;
        let mut tuning = state.tuning();
        let current = state.live.load();
        // The patch applies to the operator's config, not to the tuner's adjustments of it: an
        // operator write replaces them (docs/autotuning.md).
        let next = tuning.operator.patched(patch)?;
        if next.threads != current.config.threads {
            return Err(Error::config("threads", "is fixed when the engine is created"));
        }
        if next.opencl != current.config.opencl {
            return Err(Error::config("opencl", "is fixed when the engine is created"));
        }
        // `always` pins the threshold at 0 for the engine's life.
        if next.opencl_min_edges != current.config.opencl_min_edges && next.opencl != OpenClMode::Always {
            #[cfg(feature = "opencl")]
            if let Some(backend) = &state.opencl {
                backend.set_min_edges(next.opencl_min_edges);
            }
        }
        self.health.apply_config(&next.health);
        self.dispatcher.callbacks().set_timeout(Duration::from_millis(next.callbacks.timeout_ms));
        state.install_config(next.clone());
        tuning.tuner.operator_changed(&next.spreading, &next.autotune);
        tuning.operator = next.clone();
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
        self.state.threads
    }

    /// Recall buffers lent out right now.
    pub fn pool_in_use(&self) -> usize {
        self.state.buffers.in_use()
    }

    /// Recall buffers in existence.
    pub fn pool_capacity(&self) -> usize {
        self.state.buffers.capacity()
    }

    /// Approximate heap bytes held by the recall buffers (a batch's shared-pass lanes included).
    pub fn pool_bytes(&self) -> usize {
        self.state.buffers.approximate_bytes() + self.state.lane_buffers.approximate_bytes()
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
        let graph = self.state.graph.load();
        self.state.recall(&graph, cue, out)
    }

    /// Recall what `cue` activates, and the graph version the recall ran on (its labels and tiers
    /// describe the results, also after later changes).
    pub fn recall_with_graph(&self, cue: &Cue) -> Result<(Recall, Arc<GraphVersion>)> {
        let graph = self.state.graph.load_full();
        let mut out = Recall::default();
        self.state.recall(&graph, cue, &mut out)?;
        Ok((out, graph))
    }

    /// Recall every cue of `cues` on one graph version (docs/spec.md §19): one result per cue, in
    /// order, each the answer its own [`Engine::recall`] gives on that version (what depends on timing
    /// aside: tier timeouts, slow calls, the breaker's state), with its own source,
    /// reason, breaker admission and telemetry. Every cue is checked first: an invalid cue fails the
    /// whole call with an error naming it (`cues[3].seeds: …`) and nothing is recalled. Cues run in
    /// parallel on the engine's pool when the batch is large enough to pay for it. An empty batch
    /// answers an empty list.
    pub fn recall_batch(&self, cues: &[Cue]) -> Result<Vec<Recall>> {
        let mut out = Vec::with_capacity(cues.len());
        self.recall_batch_into(cues, &mut out)?;
        Ok(out)
    }

    /// [`Engine::recall_batch`] into `out` (resized to one entry per cue; result buffers reused).
    pub fn recall_batch_into(&self, cues: &[Cue], out: &mut Vec<Recall>) -> Result<()> {
        let graph = self.state.graph.load();
        self.state.recall_batch(&graph, cues, out)
    }

    /// [`Engine::recall_batch`], and the graph version every cue ran on.
    pub fn recall_batch_with_graph(&self, cues: &[Cue]) -> Result<(Vec<Recall>, Arc<GraphVersion>)> {
        let graph = self.state.graph.load_full();
        let mut out = Vec::with_capacity(cues.len());
        self.state.recall_batch(&graph, cues, &mut out)?;
        Ok((out, graph))
    }

    /// Recall from cue JSON to result JSON (docs/spec.md §15; labels from the graph the recall ran on).
    pub fn recall_json(&self, cue_json: &str) -> Result<String> {
        self.recall_cue_json(&Cue::from_json(cue_json)?)
    }

    /// Recall `cue` and answer with the result JSON.
    pub fn recall_cue_json(&self, cue: &Cue) -> Result<String> {
        let (recall, graph) = self.recall_with_graph(cue)?;
        Ok(recall.to_json_string(graph.view()))
    }

    // --- breaker ---

    /// The breaker's state.
    pub fn breaker_state(&self) -> BreakerState {
        self.state.breaker.state()
    }

    /// Set the breaker's manual override.
    pub fn set_breaker_override(&self, mode: BreakerOverride) {
        self.state.breaker.set_override(mode);
    }

    /// The breaker's manual override.
    pub fn breaker_override(&self) -> BreakerOverride {
        self.state.breaker.override_mode()
    }

    /// Call `callback` for every breaker transition, in order, one at a time. Returns an id for
    /// [`Engine::remove_transition_callback`].
    pub fn on_breaker_transition(&self, callback: impl Fn(&TransitionEvent) + Send + 'static) -> u64 {
        self.dispatcher.callbacks().register(Box::new(callback))
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
    pub fn check_probe(&self, name: &str) -> Result<ProbeReport> {
        self.health.check_named(name)
    }

    /// The cached health report (docs/spec.md §6); runs nothing.
    pub fn health_report(&self) -> HealthReport {
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

    /// Start injecting faults (docs/spec.md §9); an inactive config clears.
    pub fn set_chaos(&self, config: ChaosConfig) -> Result<()> {
        self.state.chaos.set(config)
    }

    /// [`Engine::set_chaos`] from the chaos JSON (`{}` clears).
    pub fn set_chaos_json(&self, text: &str) -> Result<()> {
        self.state.chaos.set(ChaosConfig::from_json(text)?)
    }

    /// Stop injecting faults.
    pub fn clear_chaos(&self) {
        self.state.chaos.clear();
    }

    /// The chaos being injected, if any.
    pub fn chaos(&self) -> Option<ChaosConfig> {
        self.state.chaos.current()
    }

    /// The engine's chaos injector.
    pub fn chaos_injector(&self) -> &ChaosInjector {
        &self.state.chaos
    }

    // --- auto-tuner ---

    /// Whether the auto-tuner may change the config.
    pub fn autotune_enabled(&self) -> bool {
        self.state.autotune_enabled.load(Ordering::Relaxed)
    }

    /// Enable or disable the auto-tuner at run time (its adjustments so far stay in force).
    pub fn set_autotune_enabled(&self, enabled: bool) {
        let mut tuning = self.state.tuning();
        tuning.tuner.set_enabled(enabled);
        tuning.operator.autotune.enabled = enabled;
        let mut config = self.state.live.load().config.clone();
        config.autotune.enabled = enabled;
        self.state.install_config(config);
        tracing::info!(enabled, "auto-tuner enabled changed");
    }

    /// Run one tuning step now and return the decision (including "no change" and why).
    pub fn autotune_now(&self) -> Decision {
        self.state.autotune_step()
    }

    /// The audit log entries, oldest first.
    pub fn autotune_audit(&self) -> Vec<AuditEntry> {
        self.state.tuning().tuner.audit()
    }

    /// The audit log with its schema, capacity and the knobs pinned outside their guardrails.
    pub fn autotune_audit_log(&self) -> AuditLog {
        let capacity = self.state.live.load().config.autotune.audit_capacity;
        self.state.tuning().tuner.audit_log(capacity)
    }

    /// The tuner's state: knobs, base, pinned knobs, EWMAs, current interval and backoff, pending
    /// judgement.
    pub fn autotune_state(&self) -> TunerState {
        let interval = Duration::from_millis(self.state.live.load().config.autotune.interval_ms);
        self.state.tuning().tuner.state(interval, self.autotune_enabled())
    }

    // --- reports and telemetry ---

    /// The streaming snapshot (docs/spec.md §5; schema in docs/telemetry.md).
    pub fn streaming_snapshot(&self) -> Snapshot {
        self.state.sample_gauges();
        let telemetry = self.state.telemetry.snapshot();
        Snapshot {
            schema: SNAPSHOT_SCHEMA,
            at_unix_ms: self.state.telemetry.clock().unix_ms(),
            windows: telemetry.windows,
            totals: telemetry.totals,
            spreading: self.state.spreading_section(),
            health: self.health.latest_report(),
            export: telemetry.export,
        }
    }

    /// The snapshot's `spreading` section (also reported on its own).
    pub fn spreading_section(&self) -> SpreadingSection {
        self.state.spreading_section()
    }

    /// The config view: config, guardrails and pinned knobs, tuner state and audit log, breaker,
    /// chaos.
    pub fn config_view(&self) -> ConfigView {
        let config = self.config();
        ConfigView {
            schema: CONFIG_VIEW_SCHEMA,
            guardrails: config.autotune.guardrails.clone(),
            pinned: config.pinned_knobs(),
            autotune: AutotuneView {
                enabled: self.autotune_enabled(),
                state: self.autotune_state(),
                audit: self.autotune_audit_log(),
            },
            breaker: BreakerView { state: self.breaker_state(), r#override: self.breaker_override() },
            chaos: self.chaos(),
            config,
        }
    }

    /// The Prometheus text exposition of every metric.
    pub fn prometheus_text(&self) -> String {
        self.state.sample_gauges();
        self.state.telemetry.prometheus_text()
    }

    /// Turn per-recall telemetry on or off (on by default). Off, recalls record nothing but the two
    /// counters docs/spec.md §5 says count every call (`spreading_recalls_total`,
    /// `spreading_breaker_open_total`); the other metrics keep what they had. It exists to measure
    /// telemetry's own cost (docs/performance.md); a production engine leaves it on.
    pub fn set_telemetry_enabled(&self, enabled: bool) {
        self.state.telemetry_enabled.store(enabled, Ordering::Relaxed);
    }

    /// The metrics registry (hosts may register their own metrics here).
    pub fn metrics(&self) -> &MetricsRegistry {
        self.state.telemetry.registry()
    }

    /// The engine's own metric handles.
    pub fn engine_metrics(&self) -> &EngineMetrics {
        &self.state.metrics
    }

    /// The telemetry (registry and windows).
    pub fn telemetry(&self) -> &Telemetry {
        &self.state.telemetry
    }
}

impl Drop for Engine {
    /// Shut down while everything a host callback may call back into is still alive: cut injected
    /// delays short, deliver queued transition events (within the callback bound) and drop the
    /// transition callbacks, stop the probes (a check in flight gets its timeout to finish). The
    /// remaining fields then drop in order (tuner and telemetry threads, the state and its pool).
    fn drop(&mut self) {
        self.state.stop_indexer();
        self.state.chaos.clear();
        self.dispatcher.shutdown();
        self.health.shutdown();
    }
}

/// The OpenCL backend `config.opencl` asks for: none for `off`, or for `auto` without a device; an
/// error for `required` and `always` without one. Discovery runs once per process.
#[cfg(feature = "opencl")]
fn opencl_backend(config: &EngineConfig, launches: Counter) -> Result<Option<crate::opencl::OpenClBackend>> {
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

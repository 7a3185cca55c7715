//! The engine (SPEC §4): current graph, live config, rayon pool, scratch pool, breaker hook, and the
//! recall pipeline.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use serde_json::{Map, Value, json};

use crate::breaker::{Breaker, BreakerOverride, CallOutcome};
use crate::clock::{SharedClock, SystemClock};
use crate::config::{EngineConfig, OpenClMode};
use crate::error::{Error, Result};
use crate::graph::Graph;
use crate::recall::{self, Cue, FallbackReason, Recall, Source};
use crate::spread::{self, NoHook, ScratchLease, ScratchPool, SpreadParams, SpreadStats};
use crate::telemetry::{self, MetricsRegistry, Telemetry, Ticker, WINDOWS};

/// A spreading-activation engine.
///
/// Thread-safe: every method takes `&self` and may run concurrently from any thread. Dropping the
/// engine stops and joins every thread it started.
pub struct Engine {
    /// Dropped first: stops and joins the telemetry thread.
    ticker: Option<Ticker>,
    graph: ArcSwap<Graph>,
    live: Arc<ArcSwap<LiveConfig>>,
    /// Serialises config writers; readers never take it.
    config_writer: Mutex<()>,
    pool: Option<rayon::ThreadPool>,
    pool_threads: Arc<Mutex<Vec<JoinHandle<()>>>>,
    threads: usize,
    scratch: Arc<ScratchPool>,
    breaker: Arc<Breaker>,
    telemetry: Arc<Telemetry>,
    /// Whether recalls feed telemetry (a switch for embedders and for measuring its overhead).
    telemetry_enabled: AtomicBool,
}

/// The config together with what the hot path derives from it, swapped as one.
#[derive(Debug)]
struct LiveConfig {
    config: EngineConfig,
    params: SpreadParams,
    budget: Duration,
    slow_limit: Duration,
}

impl LiveConfig {
    fn new(config: EngineConfig) -> Self {
        let params = SpreadParams::from(&config.spreading);
        let slow_limit = config.slow_call_limit();
        let budget = config.latency_budget();
        LiveConfig { config, params, budget, slow_limit }
    }
}

impl Engine {
    /// Create an engine over `graph` with `config` (validated here), on the system clock.
    pub fn new(graph: impl Into<Arc<Graph>>, config: EngineConfig) -> Result<Engine> {
        Engine::with_clock(graph, config, SystemClock::shared())
    }

    /// Create an engine whose time-dependent parts (telemetry windows, …) read `clock`.
    pub fn with_clock(
        graph: impl Into<Arc<Graph>>,
        config: EngineConfig,
        clock: SharedClock,
    ) -> Result<Engine> {
        config.validate()?;
        if matches!(config.opencl, OpenClMode::Required | OpenClMode::Always) {
            return Err(Error::Unavailable {
                feature: "opencl",
                message: format!(
                    "{:?} needs an OpenCL device, and this build has no OpenCL backend",
                    config.opencl
                )
                .to_lowercase(),
            });
        }
        let threads = match config.threads {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let pool_threads = Arc::new(Mutex::new(Vec::new()));
        let pool = if threads > 1 { Some(build_pool(threads, &pool_threads)?) } else { None };
        let live = Arc::new(ArcSwap::from_pointee(LiveConfig::new(config)));
        // Enough idle buffers for every pool thread plus a few host threads; more concurrent recalls
        // still work, their extra buffers are freed on return.
        let scratch = Arc::new(ScratchPool::new(2 * threads + 2));
        let breaker = Arc::new(Breaker::new(Arc::clone(&clock)));
        let telemetry = Arc::new(Telemetry::new(clock));
        let ticker = {
            let (telemetry, scratch, breaker, live) =
                (Arc::clone(&telemetry), Arc::clone(&scratch), Arc::clone(&breaker), Arc::clone(&live));
            Ticker::start(Arc::clone(&telemetry), move || {
                sample_gauges(&telemetry, &scratch, &breaker, &live)
            })
            .map_err(|e| Error::Unavailable {
                feature: "threads",
                message: format!("cannot start the telemetry thread: {e}"),
            })?
        };
        Ok(Engine {
            ticker: Some(ticker),
            graph: ArcSwap::new(graph.into()),
            live,
            config_writer: Mutex::new(()),
            pool,
            pool_threads,
            threads,
            scratch,
            breaker,
            telemetry,
            telemetry_enabled: AtomicBool::new(true),
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

    /// The graph recalls currently start on.
    pub fn graph(&self) -> Arc<Graph> {
        self.graph.load_full()
    }

    /// Swap in a new graph atomically; recalls in flight finish on the graph they started with.
    pub fn replace_graph(&self, graph: impl Into<Arc<Graph>>) {
        self.graph.store(graph.into());
    }

    /// The live config.
    pub fn config(&self) -> EngineConfig {
        self.live.load().config.clone()
    }

    /// Merge `patch` (the §14 shape, any subset of keys) into the live config, validate and apply it.
    /// Returns the config now in force. `threads` and `opencl` are fixed at creation.
    pub fn update_config(&self, patch: &Value) -> Result<EngineConfig> {
        let _writer = self.config_writer.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        let current = self.live.load();
        let next = current.config.patched(patch)?;
        if next.threads != current.config.threads {
            return Err(Error::config("threads", "is fixed when the engine is created"));
        }
        if next.opencl != current.config.opencl {
            return Err(Error::config("opencl", "is fixed when the engine is created"));
        }
        self.live.store(Arc::new(LiveConfig::new(next.clone())));
        self.sample_gauges();
        tracing::debug!(config = %serde_json::to_string(&next).unwrap_or_default(), "config updated");
        Ok(next)
    }

    /// [`Engine::update_config`] from JSON text.
    pub fn update_config_json(&self, patch: &str) -> Result<EngineConfig> {
        let patch: Value = serde_json::from_str(patch)
            .map_err(|e| Error::config("(document)", format!("malformed JSON: {e}")))?;
        self.update_config(&patch)
    }

    /// Set the breaker's manual override.
    pub fn set_breaker_override(&self, mode: BreakerOverride) {
        self.breaker.set_override(mode);
    }

    /// The breaker's manual override.
    pub fn breaker_override(&self) -> BreakerOverride {
        self.breaker.override_mode()
    }

    /// Threads in the spreading pool (1 = everything inline).
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Scratch buffers lent out right now.
    pub fn pool_in_use(&self) -> usize {
        self.scratch.in_use()
    }

    /// Scratch buffers in existence.
    pub fn pool_capacity(&self) -> usize {
        self.scratch.capacity()
    }

    /// Approximate heap bytes held by idle scratch buffers.
    pub fn pool_idle_bytes(&self) -> usize {
        self.scratch.idle_bytes()
    }

    /// Recall what `cue` activates.
    pub fn recall(&self, cue: &Cue) -> Result<Recall> {
        let mut out = Recall::default();
        self.recall_into(cue, &mut out)?;
        Ok(out)
    }

    /// Recall into `out`, reusing its result buffer (no allocation once warm).
    pub fn recall_into(&self, cue: &Cue, out: &mut Recall) -> Result<()> {
        let graph = self.graph.load();
        self.recall_on(&graph, cue, out)
    }

    /// Recall from §15 cue JSON to §15 result JSON (labels from the graph the recall ran on).
    pub fn recall_json(&self, cue_json: &str) -> Result<String> {
        let cue = Cue::from_json(cue_json)?;
        let graph = self.graph.load_full();
        let mut recall = Recall::default();
        self.recall_on(&graph, &cue, &mut recall)?;
        Ok(recall.to_json_value(&graph).to_string())
    }

    fn recall_on(&self, graph: &Graph, cue: &Cue, out: &mut Recall) -> Result<()> {
        let start = Instant::now();
        let live = self.live.load();
        let config = &live.config;
        let k = cue.k.unwrap_or(config.recall.k);
        if k == 0 {
            return Err(Error::cue("k", "must be >= 1"));
        }
        let _span = tracing::debug_span!("recall", k).entered();
        let mut scratch = self.scratch.checkout(graph.node_count());
        recall::resolve_seeds(graph, cue, config.recall.seed_k, config.recall.min_similarity, &mut scratch)?;

        out.stats = SpreadStats::default();
        let attempted = self.breaker.should_attempt();
        let reason = if attempted {
            let reason = self.spread_and_classify(graph, &live, k, &mut scratch, out, start);
            self.breaker.on_result(CallOutcome { failed: reason.is_some(), latency: start.elapsed() });
            reason
        } else {
            Some(FallbackReason::BreakerOpen)
        };
        out.source = if reason.is_some() { Source::Fallback } else { Source::Spreading };
        out.reason = reason;
        if reason.is_some() {
            recall::fallback(graph, cue, k, &mut scratch, &mut out.results);
        }
        out.latency = start.elapsed();
        self.record(&live, out, attempted);
        tracing::debug!(
            latency_us = out.latency.as_micros() as u64,
            results = out.results.len(),
            reason = reason.map(FallbackReason::as_str),
            "recall"
        );
        Ok(())
    }

    /// Spread from the resolved seeds in `scratch`, collect the top `k` into `out`, classify.
    fn spread_and_classify<'pool>(
        &'pool self,
        graph: &Graph,
        live: &LiveConfig,
        k: usize,
        scratch: &mut ScratchLease<'pool>,
        out: &mut Recall,
        start: Instant,
    ) -> Option<FallbackReason> {
        let seeds = std::mem::take(&mut scratch.seeds);
        let attempt = catch_unwind(AssertUnwindSafe(|| {
            let pool = self.pool.as_ref();
            let mut stats = spread::spread(graph, &live.params, &seeds, scratch, pool, &NoHook);
            stats.mass = spread::collect_results(graph, live.params.threshold, k, scratch, &mut out.results);
            stats
        }));
        let stats = match attempt {
            Ok(stats) => Some(stats),
            Err(_) => {
                // The buffer's state is unknown after a panic: drop it and answer from a fresh one.
                tracing::error!("spreading panicked; answering with the fallback");
                let fresh = self.scratch.checkout(graph.node_count());
                std::mem::replace(scratch, fresh).discard();
                None
            }
        };
        scratch.seeds = seeds;
        out.stats = stats.unwrap_or_default();
        let min_mass = live.config.recall.min_activation_mass;
        recall::classify(stats.as_ref(), start.elapsed(), live.slow_limit, min_mass)
    }

    /// Feed the call's metrics (handles only: no lookups, no locks).
    fn record(&self, live: &LiveConfig, out: &Recall, attempted: bool) {
        if !self.telemetry_enabled.load(Ordering::Relaxed) {
            return;
        }
        let m = self.telemetry.spreading();
        m.recalls_total.increment();
        m.recall_latency.observe_duration(out.latency);
        if out.latency > live.budget {
            m.budget_violations_total.increment();
        }
        if attempted {
            let stats = &out.stats;
            m.spreads_total.increment();
            m.edges_traversed_total.add(stats.total_edges_traversed());
            m.activation_mass.observe(stats.mass);
            m.depth_reached.observe(stats.depth_reached as f64);
            for t in 0..3 {
                if stats.tier_had_work[t] {
                    m.tier_latency[t].observe_duration(stats.tier_time[t]);
                }
                if stats.tier_timed_out[t] {
                    m.tier_timeouts_total[t].increment();
                }
            }
        } else {
            m.breaker_open_total.increment();
        }
        if let Some(reason) = out.reason {
            if reason != FallbackReason::BreakerOpen {
                m.failures_total.increment();
            }
            m.fallback_total.increment();
            m.fallback_by_reason[reason as usize].increment();
        }
    }

    /// The streaming snapshot (SPEC §5; schema in docs/telemetry.md).
    pub fn streaming_snapshot(&self) -> Value {
        let (windows, totals, export) = self.telemetry.snapshot_parts();
        json!({
            "schema": telemetry::SNAPSHOT_SCHEMA,
            "at_unix_ms": self.telemetry.clock().unix_ms(),
            "windows": windows,
            "totals": totals,
            "spreading": self.spreading_section(),
            "health": Value::Null,
            "export": export,
        })
    }

    /// The snapshot's `spreading` section (also served on its own over HTTP).
    pub fn spreading_section(&self) -> Value {
        let t = &self.telemetry;
        let m = t.spreading();
        let minute = WINDOWS.iter().position(|&w| w == 60).unwrap_or(2);
        let latency = |name: &str| {
            let s = t.window_summary(minute, name).unwrap_or_default();
            json!({"count": s.count, "p50": s.p50, "p90": s.p90, "p95": s.p95, "p99": s.p99})
        };
        let by_reason: Map<String, Value> = FallbackReason::ALL
            .iter()
            .map(|r| (r.as_str().to_owned(), json!(m.fallback_by_reason[*r as usize].total())))
            .collect();
        let (in_use, capacity) = (self.scratch.in_use(), self.scratch.capacity());
        let config = &self.live.load().config;
        json!({
            "latency": {
                "total": latency("spreading_recall_latency_seconds"),
                "hot": latency("spreading_latency_hot_seconds"),
                "warm": latency("spreading_latency_warm_seconds"),
                "cold": latency("spreading_latency_cold_seconds"),
            },
            "fallback": {"total": m.fallback_total.total(), "by_reason": by_reason},
            "breaker": self.breaker.status_json(),
            "gpu": {"device": Value::Null, "launches": m.gpu_launches_total.total(), "fallbacks": m.gpu_fallback_total.total()},
            "pool": {"in_use": in_use, "capacity": capacity, "utilization": utilization(in_use, capacity)},
            "autotune": {"enabled": config.autotune.enabled, "changes_total": m.autotune_changes_total.total(), "last": Value::Null},
            "budget_violations_total": m.budget_violations_total.total(),
            "recalls_total": m.recalls_total.total(),
            "failures_total": m.failures_total.total(),
        })
    }

    /// The Prometheus text exposition of every metric.
    pub fn prometheus_text(&self) -> String {
        self.sample_gauges();
        self.telemetry.prometheus_text()
    }

    /// Turn per-recall telemetry on or off (on by default). Off, recalls record nothing; the metrics
    /// keep what they had.
    pub fn set_telemetry_enabled(&self, enabled: bool) {
        self.telemetry_enabled.store(enabled, Ordering::Relaxed);
    }

    /// The metrics registry (hosts may register their own metrics here).
    pub fn metrics(&self) -> &MetricsRegistry {
        self.telemetry.registry()
    }

    /// The telemetry (registry, engine handles, windows).
    pub fn telemetry(&self) -> &Arc<Telemetry> {
        &self.telemetry
    }

    fn sample_gauges(&self) {
        sample_gauges(&self.telemetry, &self.scratch, &self.breaker, &self.live);
    }
}

fn utilization(in_use: usize, capacity: usize) -> f64 {
    if capacity == 0 { 0.0 } else { in_use as f64 / capacity as f64 }
}

/// Gauges read from live state rather than recorded per call.
fn sample_gauges(
    telemetry: &Telemetry,
    scratch: &ScratchPool,
    breaker: &Breaker,
    live: &ArcSwap<LiveConfig>,
) {
    let m = telemetry.spreading();
    let (in_use, capacity) = (scratch.in_use(), scratch.capacity());
    m.pool_in_use.set(in_use as f64);
    m.pool_capacity.set(capacity as f64);
    m.pool_utilization.set(utilization(in_use, capacity));
    m.breaker_state.set(breaker.state_gauge());
    let config = &live.load().config;
    m.config_max_depth.set(config.spreading.max_depth as f64);
    m.config_batch_size.set(config.spreading.batch_size as f64);
}

impl Drop for Engine {
    fn drop(&mut self) {
        drop(self.ticker.take());
        drop(self.pool.take());
        let handles = std::mem::take(&mut *self.pool_threads.lock().unwrap_or_else(|p| p.into_inner()));
        let me = std::thread::current().id();
        for handle in handles {
            if handle.thread().id() != me {
                let _ = handle.join();
            }
        }
    }
}

fn build_pool(threads: usize, handles: &Arc<Mutex<Vec<JoinHandle<()>>>>) -> Result<rayon::ThreadPool> {
    let handles = Arc::clone(handles);
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("axonal-spread-{i}"))
        .spawn_handler(move |thread| {
            let mut builder = std::thread::Builder::new();
            if let Some(name) = thread.name() {
                builder = builder.name(name.to_owned());
            }
            if let Some(size) = thread.stack_size() {
                builder = builder.stack_size(size);
            }
            let handle = builder.spawn(|| thread.run())?;
            handles.lock().unwrap_or_else(|p| p.into_inner()).push(handle);
            Ok(())
        })
        .build()
        .map_err(|e| Error::Unavailable {
            feature: "threads",
            message: format!("cannot start the spreading pool: {e}"),
        })
}

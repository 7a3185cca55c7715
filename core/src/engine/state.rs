//! The engine's shared state and the recall pipeline. Background threads (telemetry, health probes)
//! hold it by `Arc`; the public [`super::Engine`] owns those threads and this.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use quanta::Instant;

use arc_swap::ArcSwap;
use serde_json::{Map, Value, json};

use crate::breaker::{CallOutcome, CircuitBreaker};
use crate::chaos::ChaosInjector;
use crate::config::EngineConfig;
use crate::error::{Error, Result};
use crate::graph::Graph;
use crate::recall::{self, Activation, Cue, FallbackReason, Recall, Source};
use crate::spread::{self, Scratch, ScratchLease, ScratchPool, SpreadParams, SpreadStats};
use crate::telemetry::{Counter, Telemetry, WINDOWS};
use crate::tuner::model::Sample;
use crate::tuner::{Decision, SpreadingAutoTuner, StepEnv};

/// Per-depth work and time and pull phases for the tuner (not exported). Recorded for one spreading
/// recall in [`TunerFeed::SAMPLE_EVERY`] per thread: the tuner uses shares and rates, which sampling
/// leaves unbiased, and the 5-node recall keeps its telemetry budget.
pub(super) struct TunerFeed {
    /// Whole-call latency of recalls the breaker admitted (slow and failed spreads included): the
    /// tuner's latency. Refused calls, answered at once by the fallback, would hide the very
    /// pressure the tuner reacts to.
    pub(super) spread_latency: crate::telemetry::Histogram,
    pub(super) depth_edges: [Counter; spread::MAX_DEPTH],
    pub(super) depth_nanos: [Counter; spread::MAX_DEPTH],
    pub(super) pull_phases: Counter,
    /// Sampled spreading recalls (the denominator of `pull_phases`).
    pub(super) sampled: Counter,
}

thread_local! {
    static FEED_TICK: std::cell::Cell<u32> = const { std::cell::Cell::new(0) };
}

impl TunerFeed {
    pub(super) const SAMPLE_EVERY: u32 = 8;

    pub(super) fn new() -> Self {
        TunerFeed {
            spread_latency: crate::telemetry::Histogram::detached(crate::telemetry::LATENCY_BOUNDS),
            depth_edges: std::array::from_fn(|_| Counter::detached()),
            depth_nanos: std::array::from_fn(|_| Counter::detached()),
            pull_phases: Counter::detached(),
            sampled: Counter::detached(),
        }
    }

    #[inline]
    fn record(&self, stats: &SpreadStats) {
        let tick = FEED_TICK.with(|t| {
            let v = t.get().wrapping_add(1);
            t.set(v);
            v
        });
        if !tick.is_multiple_of(Self::SAMPLE_EVERY) {
            return;
        }
        self.sampled.increment();
        for d in 0..stats.depth_reached as usize {
            self.depth_edges[d].add(stats.edges_traversed[d]);
            self.depth_nanos[d].add(stats.depth_time[d].as_nanos() as u64);
        }
        if stats.pull_phases > 0 {
            self.pull_phases.add(stats.pull_phases as u64);
        }
    }
}

/// Live spreading recalls that succeeded yet delivered no activation along an edge (the rest of what
/// the `spreading_live` probe judges comes from the exported metrics and the tuner's feed).
pub(super) struct LiveFeed {
    pub(super) empty: Counter,
}

/// The config together with what the hot path derives from it, swapped as one.
#[derive(Debug)]
pub(super) struct LiveConfig {
    pub(super) config: EngineConfig,
    pub(super) params: SpreadParams,
    pub(super) budget: Duration,
    pub(super) slow_limit: Duration,
}

impl LiveConfig {
    pub(super) fn new(config: EngineConfig) -> Self {
        let mut params = SpreadParams::from(&config.spreading);
        if config.opencl == crate::config::OpenClMode::Always {
            params.execution = crate::spread::Execution::pull_every_depth();
        }
        let slow_limit = config.slow_call_limit();
        let budget = config.latency_budget();
        LiveConfig { config, params, budget, slow_limit }
    }
}

/// Everything recalls and background work share.
pub(super) struct Core {
    pub(super) graph: ArcSwap<Graph>,
    pub(super) live: ArcSwap<LiveConfig>,
    /// Serialises config writers — the operator's and the tuner's — and holds the tuner's state;
    /// readers never take it.
    pub(super) config_writer: Mutex<SpreadingAutoTuner>,
    /// What the tuner reads beyond the exported metrics.
    pub(super) tuner_feed: TunerFeed,
    /// What the `spreading_live` probe reads beyond the exported metrics.
    pub(super) live_feed: LiveFeed,
    pub(super) autotune_enabled: AtomicBool,
    /// Measured cost of one task on the pool (seconds), for the batch-size model; measured once.
    pub(super) task_overhead: std::sync::OnceLock<f64>,
    /// When the last tuning step ran (engine clock, nanoseconds): the schedule counts a full interval
    /// from any step, `autotune_now` included.
    pub(super) last_autotune_step: std::sync::atomic::AtomicU64,
    pub(super) pool: Option<rayon::ThreadPool>,
    pub(super) pool_threads: Mutex<Vec<JoinHandle<()>>>,
    pub(super) threads: usize,
    pub(super) scratch: ScratchPool,
    pub(super) breaker: CircuitBreaker,
    pub(super) telemetry: Telemetry,
    /// Whether recalls feed telemetry (a switch for embedders and for measuring its overhead).
    pub(super) telemetry_enabled: AtomicBool,
    pub(super) chaos: ChaosInjector,
    #[cfg(feature = "opencl")]
    pub(super) opencl: Option<crate::opencl::OpenClBackend>,
}

impl Core {
    /// The device backend, if this engine has one.
    fn accelerator(&self) -> Option<&dyn spread::PullAccelerator> {
        #[cfg(feature = "opencl")]
        if let Some(backend) = &self.opencl {
            return Some(backend);
        }
        None
    }

    /// The device's name (the snapshot's `gpu.device`).
    pub(super) fn device_name(&self) -> Option<String> {
        #[cfg(feature = "opencl")]
        if let Some(backend) = &self.opencl {
            return Some(backend.device_name().to_owned());
        }
        None
    }

    /// Compile and run the device's kernels once over the engine's graph and the health probe's,
    /// so no recall pays for it; a failure is logged and left to the per-call CPU fallback.
    #[cfg(feature = "opencl")]
    pub(super) fn warm_up_device(&self, probe_graph: &Graph) {
        let Some(backend) = self.opencl.as_ref().filter(|b| b.in_use()) else { return };
        let start = Instant::now();
        let warmed = backend.warm_up(probe_graph).and_then(|()| backend.warm_up(&self.graph.load()));
        match warmed {
            Ok(()) => tracing::info!(elapsed_ms = start.elapsed().as_secs_f64() * 1e3, "OpenCL kernels warm"),
            Err(e) => {
                tracing::warn!(error = %e, "OpenCL warm-up failed; recalls fall back to the CPU per call")
            }
        }
    }

    /// Count a spread that used the device, and one whose device depth failed (redone on the CPU).
    fn count_device_use(&self, stats: &SpreadStats) {
        let m = self.telemetry.spreading();
        if stats.accelerated_depths > 0 || stats.accelerator_failed {
            m.gpu_spreads_total.increment();
        }
        if stats.accelerator_failed {
            m.gpu_fallback_total.increment();
        }
    }

    /// Arm chaos's GPU failure for this thread's next device depth.
    #[allow(unused_variables)]
    fn arm_gpu_chaos(&self, fail: bool) {
        #[cfg(feature = "opencl")]
        crate::opencl::force_failure_on_this_thread(fail);
    }

    pub(super) fn recall_on(&self, graph: &Graph, cue: &Cue, out: &mut Recall) -> Result<()> {
        let start = Instant::now();
        let live = self.live.load();
        let config = &live.config;
        let k = cue.k.unwrap_or(config.recall.k);
        if k == 0 {
            return Err(Error::cue("k", "must be >= 1"));
        }
        let _span = tracing::debug_span!("recall", k).entered();
        let mut scratch = self.scratch.checkout(graph.node_count())?;
        let query_norm = recall::validate_cue(graph, cue, &mut scratch)?;

        out.stats = SpreadStats::default();
        let admission = self.breaker.admit();
        let attempted = admission.allowed();
        let mut ran = false;
        let reason = if attempted {
            if let Some(norm) = query_norm {
                let (seed_k, min_similarity) = (config.recall.seed_k, config.recall.min_similarity);
                recall::add_embedding_seeds(graph, cue, norm, seed_k, min_similarity, &mut scratch);
            }
            // Slow means slow spreading: the clock for the breaker and the slow check starts here.
            let spread_start = Instant::now();
            let (reason, latency, completed) =
                self.spread_and_classify(graph, &live, k, &mut scratch, out, spread_start);
            ran = completed;
            self.breaker.on_result(admission, CallOutcome { failed: reason.is_some(), latency });
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
        self.record(&live, out, attempted, ran);
        tracing::debug!(
            latency_us = out.latency.as_micros() as u64,
            results = out.results.len(),
            reason = reason.map(FallbackReason::as_str),
            "recall"
        );
        Ok(())
    }

    /// Spread from the resolved seeds in `scratch` (chaos applied), collect the top `k`, classify.
    /// Returns the failure reason, the spread's latency (from `start`) and whether it ran to the end
    /// (false after a panic; `out.stats` then stays empty).
    fn spread_and_classify<'pool>(
        &'pool self,
        graph: &Graph,
        live: &LiveConfig,
        k: usize,
        scratch: &mut ScratchLease<'pool>,
        out: &mut Recall,
        start: Instant,
    ) -> (Option<FallbackReason>, Duration, bool) {
        let seeds = std::mem::take(&mut scratch.seeds);
        let verdict = self.chaos.verdict();
        self.arm_gpu_chaos(verdict.gpu_fail);
        let attempt = catch_unwind(AssertUnwindSafe(|| {
            let pool = self.pool.as_ref();
            let mut stats =
                spread::spread(graph, &live.params, &seeds, scratch, pool, &self.chaos, self.accelerator());
            stats.mass = spread::collect_results(graph, live.params.threshold, k, scratch, &mut out.results);
            stats
        }));
        self.arm_gpu_chaos(false);
        let ran = match attempt {
            Ok(mut stats) => {
                self.count_device_use(&stats);
                if verdict.zero_mass {
                    // Injected: the spread produced no activation beyond its seeds.
                    out.results.retain(|a| a.hops == 0);
                    stats.mass = 0.0;
                    stats.delivered = 0.0;
                    stats.delivered_any = false;
                }
                // An injected failure still ran the spread: its stats describe the attempt.
                out.stats = stats;
                true
            }
            Err(_) => {
                // The buffer's state is unknown after a panic: restore every entry, then answer
                // with the fallback.
                tracing::error!("spreading panicked; answering with the fallback");
                scratch.reset_all();
                false
            }
        };
        scratch.seeds = seeds;
        let latency = start.elapsed();
        let min_mass = live.config.recall.min_activation_mass;
        let outcome = (ran && !verdict.fail).then_some(&out.stats);
        (recall::classify(outcome, latency, live.slow_limit, min_mass), latency, ran)
    }

    /// One health-probe spread on `graph` with the live config, pool and chaos, bypassing the breaker.
    /// Returns the mass (`None` on an injected or real failure) and the latency.
    pub(super) fn probe_spread(
        &self,
        graph: &Graph,
        seeds: &[(u32, f32)],
        scratch: &mut Scratch,
        out: &mut Vec<Activation>,
    ) -> (Option<f64>, Duration) {
        let start = Instant::now();
        let live = self.live.load();
        let verdict = self.chaos.verdict();
        self.arm_gpu_chaos(verdict.gpu_fail);
        let attempt = catch_unwind(AssertUnwindSafe(|| {
            let stats = spread::spread(
                graph,
                &live.params,
                seeds,
                scratch,
                self.pool.as_ref(),
                &self.chaos,
                self.accelerator(),
            );
            self.count_device_use(&stats);
            spread::collect_results(graph, live.params.threshold, usize::MAX, scratch, out)
        }));
        self.arm_gpu_chaos(false);
        let latency = start.elapsed();
        let m = self.telemetry.spreading();
        m.spreads_total.increment();
        m.health_probe_latency.observe_duration(latency);
        let mass = match attempt {
            Ok(mass) if !verdict.fail => Some(if verdict.zero_mass { 0.0 } else { mass }),
            Ok(_) => None,
            Err(_) => {
                *scratch = Scratch::default();
                None
            }
        };
        (mass, latency)
    }

    /// Feed the call's metrics (handles only: no lookups, no locks).
    /// `attempted`: the breaker let the call spread; `ran`: the spread ran to the end (not a panic),
    /// so `out.stats` describes it, also when an injected fault failed the call.
    fn record(&self, live: &LiveConfig, out: &Recall, attempted: bool, ran: bool) {
        let m = self.telemetry.spreading();
        // SPEC §5 counts every recall and every refused call: these two count even with telemetry off.
        m.recalls_total.increment();
        if !attempted {
            m.breaker_open_total.increment();
        }
        if !self.telemetry_enabled.load(Ordering::Relaxed) {
            return;
        }
        m.recall_latency.observe_duration(out.latency);
        if out.latency > live.budget {
            m.budget_violations_total.increment();
        }
        if attempted {
            self.tuner_feed.spread_latency.observe_duration(out.latency);
            m.spreads_total.increment();
        }
        if ran {
            let stats = &out.stats;
            if out.reason.is_none() && !stats.delivered_any {
                // A success that delivered nothing (say, an edgeless graph): the live probe's cue.
                self.live_feed.empty.increment();
            }
            m.edges_traversed_total.add(stats.total_edges_traversed());
            self.tuner_feed.record(stats);
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
        }
        if let Some(reason) = out.reason {
            if reason != FallbackReason::BreakerOpen {
                m.failures_total.increment();
            }
            m.fallback_total.increment();
            m.fallback_by_reason[reason as usize].increment();
        }
    }

    /// Validate `config`, store it as the live config and update what depends on it (the caller
    /// holds the config writer lock).
    pub(super) fn install_config(&self, config: EngineConfig) {
        self.breaker.update_settings(crate::breaker::BreakerSettings::from(&config));
        self.autotune_enabled.store(config.autotune.enabled, Ordering::Relaxed);
        self.live.store(Arc::new(LiveConfig::new(config)));
        self.sample_gauges();
    }

    /// The tuner's current interval (configured, doubled per backoff, capped at an hour).
    pub(super) fn autotune_interval(&self) -> Duration {
        let configured = Duration::from_millis(self.live.load().config.autotune.interval_ms);
        self.config_writer.lock().unwrap_or_else(|p| p.into_inner()).interval(configured)
    }

    /// One tuner step now (the autotune thread calls this once per interval).
    pub(super) fn autotune_step(&self) -> Decision {
        let mut tuner = self.config_writer.lock().unwrap_or_else(|p| p.into_inner());
        if !self.autotune_enabled.load(Ordering::Relaxed) {
            return Decision::NoChange("the auto-tuner is disabled".into());
        }
        let live = self.live.load();
        let graph = self.graph.load();
        let env = StepEnv {
            live: &live.config,
            now_unix_ms: self.telemetry.clock().unix_ms(),
            threads: self.threads,
            nodes: graph.node_count(),
            task_overhead: *self.task_overhead.get_or_init(|| measure_task_overhead(self.pool.as_ref())),
            nodes_per_batch_unit: live.params.execution.nodes_per_batch_unit,
        };
        self.last_autotune_step.store(self.telemetry.clock().now().as_nanos() as u64, Ordering::Relaxed);
        let before = tuner.clone();
        let (decision, tuned) = tuner.step(self.tuner_sample(), &env);
        let Some(tuned) = tuned else { return decision };
        // Only the knobs come from the tuner; everything else stays as live.
        let mut config = live.config.clone();
        config.spreading.max_depth = tuned.spreading.max_depth;
        config.spreading.batch_size = tuned.spreading.batch_size;
        config.spreading.tier_timeouts_ms = tuned.spreading.tier_timeouts_ms;
        if let Err(e) = config.validate() {
            // The tuner stays inside the guardrails, so this should not happen; if it does, the
            // tuner's state goes back to what it was and nothing is applied.
            *tuner = before;
            return Decision::NoChange(format!("the tuned config was invalid and was not applied: {e}"));
        }
        tracing::info!(
            old = %serde_json::to_string(&live.config.spreading).unwrap_or_default(),
            new = %serde_json::to_string(&config.spreading).unwrap_or_default(),
            decision = %decision.to_json(),
            "auto-tuner changed the config"
        );
        self.telemetry.spreading().autotune_changes_total.increment();
        self.install_config(config);
        decision
    }

    fn tuner_sample(&self) -> Sample {
        let m = self.telemetry.spreading();
        let spread_latency = self.tuner_feed.spread_latency.totals();
        Sample {
            recalls: spread_latency.count,
            recall_latency: spread_latency,
            tier_latency: std::array::from_fn(|t| m.tier_latency[t].totals()),
            depth_reached: m.depth_reached.totals(),
            spreads: m.spreads_total.total(),
            violations: m.budget_violations_total.total(),
            tier_timeouts: std::array::from_fn(|t| m.tier_timeouts_total[t].total()),
            depth_edges: std::array::from_fn(|d| self.tuner_feed.depth_edges[d].total()),
            depth_nanos: std::array::from_fn(|d| self.tuner_feed.depth_nanos[d].total()),
            pull_phases: self.tuner_feed.pull_phases.total(),
            sampled: self.tuner_feed.sampled.total(),
        }
    }

    /// The snapshot's `spreading` section.
    pub(super) fn spreading_section(&self) -> Value {
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
        json!({
            "latency": {
                "total": latency("spreading_recall_latency_seconds"),
                "hot": latency("spreading_latency_hot_seconds"),
                "warm": latency("spreading_latency_warm_seconds"),
                "cold": latency("spreading_latency_cold_seconds"),
            },
            "fallback": {"total": m.fallback_total.total(), "by_reason": by_reason},
            "breaker": self.breaker.status_json(),
            "gpu": {"device": self.device_name(), "launches": m.gpu_launches_total.total(), "fallbacks": m.gpu_fallback_total.total()},
            "pool": {"in_use": in_use, "capacity": capacity, "utilization": utilization(in_use, capacity)},
            "autotune": {
                "enabled": self.autotune_enabled.load(Ordering::Relaxed),
                "changes_total": m.autotune_changes_total.total(),
                "last": self.config_writer.lock().unwrap_or_else(|p| p.into_inner()).last_change(),
            },
            "budget_violations_total": m.budget_violations_total.total(),
            "recalls_total": m.recalls_total.total(),
            "failures_total": m.failures_total.total(),
        })
    }

    /// Gauges read from live state rather than recorded per call.
    pub(super) fn sample_gauges(&self) {
        let m = self.telemetry.spreading();
        let (in_use, capacity) = (self.scratch.in_use(), self.scratch.capacity());
        m.pool_in_use.set(in_use as f64);
        m.pool_capacity.set(capacity as f64);
        m.pool_utilization.set(utilization(in_use, capacity));
        // `spreading_breaker_state` is set by each transition itself (under the breaker's lock), so
        // a sample here could only overwrite it with a stale value.
        let config = &self.live.load().config;
        m.config_max_depth.set(config.spreading.max_depth as f64);
        m.config_batch_size.set(config.spreading.batch_size as f64);
    }
}

/// The cost of one task on `pool`: the time of many empty tasks over their number.
fn measure_task_overhead(pool: Option<&rayon::ThreadPool>) -> f64 {
    use rayon::prelude::*;
    let Some(pool) = pool else { return 0.0 };
    const TASKS: usize = 4096;
    let run = || {
        let start = Instant::now();
        pool.install(|| {
            (0..TASKS).into_par_iter().with_min_len(1).for_each(|i| {
                std::hint::black_box(i);
            })
        });
        start.elapsed().as_secs_f64() / TASKS as f64
    };
    run();
    (0..5).map(|_| run()).fold(f64::INFINITY, f64::min)
}

fn utilization(in_use: usize, capacity: usize) -> f64 {
    if capacity == 0 { 0.0 } else { in_use as f64 / capacity as f64 }
}

impl Drop for Core {
    fn drop(&mut self) {
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

/// The engine's rayon pool, with threads the engine can join.
pub(super) fn build_pool(
    threads: usize,
    handles: Arc<Mutex<Vec<JoinHandle<()>>>>,
) -> Result<rayon::ThreadPool> {
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

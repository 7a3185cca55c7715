//! [`EngineState`]: what recalls and background work share. Background threads (telemetry, health
//! probes, the tuner) hold it by `Arc`; the public [`super::Engine`] owns those threads and this.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::thread::JoinHandle;
use std::time::Duration;

use arc_swap::ArcSwap;
use quanta::Instant;

use super::metrics::EngineMetrics;
use crate::breaker::{BreakerSettings, CircuitBreaker};
use crate::chaos::ChaosInjector;
use crate::config::EngineConfig;
use crate::error::{Error, Result};
use crate::graph::{Graph, GraphVersion};
use crate::pool::BufferPool;
use crate::recall::{self, Activation, Buffers, Cue, FallbackReason, Recall};
use crate::spread::{self, Scratch, SpreadStats};
use crate::telemetry::{Counter, Histogram, LATENCY_BOUNDS, Telemetry};
use crate::tuner::model::Sample;
use crate::tuner::{Decision, SpreadingAutoTuner, StepEnv};

/// Per-depth work and time and pull phases for the tuner (not exported). Recorded for one spreading
/// recall in [`TunerFeed::SAMPLE_EVERY`] per thread: the tuner uses shares and rates, which sampling
/// leaves unbiased, and the 5-node recall keeps its telemetry budget.
pub(super) struct TunerFeed {
    /// Whole-call latency of recalls the breaker admitted (slow and failed spreads included): the
    /// tuner's latency, and the live probe's calls. Refused calls, answered at once by the fallback,
    /// would hide the very pressure the tuner reacts to.
    pub(super) spread_latency: Histogram,
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
            spread_latency: Histogram::detached(LATENCY_BOUNDS),
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
    pub(super) recall: recall::Settings,
    pub(super) budget: Duration,
}

impl LiveConfig {
    pub(super) fn new(config: EngineConfig) -> Self {
        let recall = recall::Settings::from_config(&config);
        let budget = config.latency_budget();
        LiveConfig { config, recall, budget }
    }
}

/// The operator's config (what their last write said, before the tuner's adjustments) and the tuner
/// that adjusts it, behind the one lock that serialises config writers.
pub(super) struct Tuning {
    pub(super) operator: EngineConfig,
    pub(super) tuner: SpreadingAutoTuner,
}

/// Everything recalls and background work share.
pub(super) struct EngineState {
    /// The current version of the living graph; recalls load it and never wait.
    pub(super) graph: ArcSwap<GraphVersion>,
    /// The writers' side of the living graph: locks, the compactor's cue, retired bases.
    pub(super) living: super::living::Living,
    /// The embedding index and its indexer.
    pub(super) similarity: super::similarity::Similarity,
    pub(super) live: ArcSwap<LiveConfig>,
    /// Serialises config writers — the operator's and the tuner's; readers never take it.
    pub(super) tuning: Mutex<Tuning>,
    /// What the tuner reads beyond the exported metrics.
    pub(super) tuner_feed: TunerFeed,
    /// What the `spreading_live` probe reads beyond the exported metrics.
    pub(super) live_feed: LiveFeed,
    pub(super) autotune_enabled: AtomicBool,
    /// Measured cost of one task on the pool (seconds), for the batch-size model; measured once.
    pub(super) task_overhead: OnceLock<f64>,
    /// When the last tuning step ran (engine clock, nanoseconds): the schedule counts a full interval
    /// from any step, `autotune_now` included.
    pub(super) last_autotune_step: AtomicU64,
    pub(super) pool: Option<rayon::ThreadPool>,
    pub(super) pool_threads: Mutex<Vec<JoinHandle<()>>>,
    pub(super) threads: usize,
    pub(super) buffers: BufferPool<Buffers>,
    /// The interleaved state of a batch's groups of large cues (`spread::spread_lanes`).
    pub(super) lane_buffers: BufferPool<spread::LaneScratch>,
    pub(super) breaker: CircuitBreaker,
    pub(super) telemetry: Telemetry,
    pub(super) metrics: EngineMetrics,
    /// Whether recalls feed telemetry (a switch for embedders and for measuring its overhead).
    pub(super) telemetry_enabled: AtomicBool,
    pub(super) chaos: ChaosInjector,
    #[cfg(feature = "opencl")]
    pub(super) opencl: Option<crate::opencl::OpenClBackend>,
}

impl EngineState {
    /// The device backend, if this engine has one.
    pub(super) fn device(&self) -> Option<&dyn spread::DeviceSpread> {
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
        let warmed = backend.warm_up(probe_graph).and_then(|()| backend.warm_up(self.graph.load().base()));
        match warmed {
            Ok(()) => tracing::info!(elapsed_ms = start.elapsed().as_secs_f64() * 1e3, "OpenCL kernels warm"),
            Err(e) => {
                tracing::warn!(error = %e, "OpenCL warm-up failed; recalls fall back to the CPU per call")
            }
        }
    }

    /// The pipeline of one recall (or one batch) on `graph` with the live config `live`.
    fn pipeline<'a>(
        &'a self,
        graph: &'a GraphVersion,
        live: &'a LiveConfig,
        installed: Option<&'a super::similarity::Installed>,
    ) -> recall::Pipeline<'a> {
        recall::Pipeline {
            graph: graph.view(),
            graph_version: graph.version(),
            settings: &live.recall,
            buffers: &self.buffers,
            breaker: &self.breaker,
            chaos: &self.chaos,
            pool: self.pool.as_ref(),
            device: self.device(),
            similarity: self.similarity_search(graph, installed, &live.config.similarity),
        }
    }

    /// Recall `cue` on `graph` into `out` through the pipeline, and record the call's telemetry.
    pub(super) fn recall(&self, graph: &GraphVersion, cue: &Cue, out: &mut Recall) -> Result<()> {
        let live = self.live.load();
        // Only a cue with an embedding searches: others do not touch the index.
        let installed = cue.embedding.as_ref().map(|_| self.installed_index());
        let pipeline = self.pipeline(graph, &live, installed.as_ref().and_then(|g| g.as_deref()));
        let outcome = pipeline.run(cue, out)?;
        self.record(&live, out, outcome);
        Ok(())
    }

    /// Recall every cue of `cues` on `graph`, one result per cue in `out` (resized to match), each
    /// through the same pipeline as [`EngineState::recall`] — so each answer is the one its own recall
    /// gives, with its own breaker admission and telemetry. Every cue is checked before any runs: an
    /// invalid cue fails the call, naming it, and nothing is recalled. Cues run in parallel on the
    /// pool when the batch is worth entering it ([`batch_parallel`]).
    pub(super) fn recall_batch(
        &self,
        graph: &GraphVersion,
        cues: &[Cue],
        out: &mut Vec<Recall>,
    ) -> Result<()> {
        let live = self.live.load();
        let installed = cues.iter().any(|c| c.embedding.is_some()).then(|| self.installed_index());
        let pipeline = self.pipeline(graph, &live, installed.as_ref().and_then(|g| g.as_deref()));
        for (i, cue) in cues.iter().enumerate() {
            pipeline.check(cue).map_err(|e| e.in_cue(i))?;
        }
        out.truncate(cues.len());
        out.resize_with(cues.len(), Recall::default);
        if let Some((device, plain)) = pipeline.batch_device() {
            let mut record = |slot: &Recall, outcome| self.record(&live, slot, outcome);
            return pipeline.run_batch_on_device(device, plain, cues, out, &mut record);
        }
        let shared = match pipeline.lanes_graph() {
            // A group of fewer than 4 never pays for its passes (`Pipeline::shares_well`).
            Some(plain) if cues.len() > 4 => {
                self.recall_batch_in_lanes(&pipeline, &live, plain, cues, out)?
            }
            _ => 0,
        };
        let (cues, out) = (&cues[shared..], &mut out[shared..]);
        // Each task keeps one set of buffers for all the cues it runs (hot in its core's cache).
        let run = |held: &mut Option<_>, i: usize, cue: &Cue, slot: &mut Recall| {
            let i = shared + i;
            let buffers = match held {
                Some(lease) => lease,
                None => held.insert(pipeline.checkout().map_err(|e| e.in_cue(i))?),
            };
            let outcome = pipeline.run_in(cue, slot, buffers).map_err(|e| e.in_cue(i))?;
            self.record(&live, slot, outcome);
            Ok(())
        };
        let pool = self.pool.as_ref().filter(|p| p.current_num_threads() > 1);
        match pool {
            Some(pool) if batch_parallel(graph, cues) => pool.install(|| {
                use rayon::prelude::*;
                cues.par_iter()
                    .zip(out.par_iter_mut())
                    .enumerate()
                    .try_for_each_init(|| None, |held, (i, (cue, slot))| run(held, i, cue, slot))
            }),
            _ => {
                let mut held = None;
                cues.iter()
                    .zip(out.iter_mut())
                    .enumerate()
                    .try_for_each(|(i, (cue, slot))| run(&mut held, i, cue, slot))
            }
        }
    }

    /// The first cues of a batch whose cues are large, in groups sharing CPU passes (docs/spec.md
    /// §19); returns how many it answered, the rest run side by side. The first cue runs alone: if
    /// its spread says a group would be cheaper ([`recall::Pipeline::shares_well`]), the next cues
    /// run in groups of [`spread::LANES`] for as long as most of each group's cues say so too. A
    /// batch of small cues thus pays nothing but its first cue's running alone.
    fn recall_batch_in_lanes(
        &self,
        pipeline: &recall::Pipeline<'_>,
        live: &LiveConfig,
        graph: &Graph,
        cues: &[Cue],
        out: &mut [Recall],
    ) -> Result<usize> {
        let mut buffers = pipeline.checkout().map_err(|e| e.in_cue(0))?;
        let outcome = pipeline.run_in(&cues[0], &mut out[0], &mut buffers).map_err(|e| e.in_cue(0))?;
        self.record(live, &out[0], outcome);
        let mut done = 1;
        let group = |done: usize| (cues.len() - done).min(spread::LANES);
        if !pipeline.shares_well(&out[0].stats, group(done)) {
            return Ok(done);
        }
        // No memory for the lanes: the rest run side by side.
        let Ok(mut lanes) = self.lane_buffers.checkout(graph.node_count()) else { return Ok(done) };
        let mut record = |slot: &Recall, outcome| self.record(live, slot, outcome);
        while group(done) >= 2 {
            let end = done + group(done);
            let (chunk, outs) = (&cues[done..end], &mut out[done..end]);
            pipeline.run_lanes(graph, done, chunk, outs, &mut buffers, &mut lanes, &mut record)?;
            let large = outs.iter().filter(|r| pipeline.shares_well(&r.stats, group(end).max(2))).count();
            done = end;
            if large * 2 < outs.len() {
                break;
            }
        }
        Ok(done)
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
        let params = &live.recall.params;
        let verdict = self.chaos.verdict();
        let armed_before = arm_device_chaos(verdict.gpu_fail);
        let graph = graph.view();
        let attempt = catch_unwind(AssertUnwindSafe(|| {
            let (pool, device) = (self.pool.as_ref(), self.device());
            let k = usize::MAX;
            let stats =
                spread::spread_collect(graph, params, seeds, k, scratch, pool, &self.chaos, device, out);
            self.count_device_use(&stats);
            stats.mass
        }));
        arm_device_chaos(armed_before);
        let latency = start.elapsed();
        let m = &self.metrics;
        m.spreads_total.increment();
        m.health_probe_latency.observe_duration(latency);
        match attempt {
            Ok(mass) if !verdict.fail => (Some(if verdict.zero_mass { 0.0 } else { mass }), latency),
            Ok(_) => (None, latency),
            Err(_) => {
                scratch.reset_all();
                (None, latency)
            }
        }
    }

    /// Count a spread that used the device, and one whose device depth failed (redone on the CPU).
    fn count_device_use(&self, stats: &SpreadStats) {
        let m = &self.metrics;
        if stats.backend == spread::Backend::OpenCl || stats.device_failed {
            m.gpu_spreads_total.increment();
        }
        if stats.device_failed {
            m.gpu_fallback_total.increment();
        }
    }

    /// Feed the call's metrics (handles only: no lookups, no locks).
    fn record(&self, live: &LiveConfig, out: &Recall, outcome: recall::Outcome) {
        let m = &self.metrics;
        // docs/spec.md §5 counts every recall and every refused call: these two count even with
        // telemetry off.
        m.recalls_total.increment();
        if !outcome.attempted {
            m.breaker_open_total.increment();
        }
        if outcome.ran {
            self.count_device_use(&out.stats);
        }
        if !self.telemetry_enabled.load(Ordering::Relaxed) {
            return;
        }
        m.recall_latency.observe_duration(out.latency);
        if out.latency > live.budget {
            m.budget_violations_total.increment();
        }
        if outcome.attempted {
            self.tuner_feed.spread_latency.observe_duration(out.latency);
            m.spreads_total.increment();
        }
        if outcome.ran {
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

    /// Store `config` as the live config and update what depends on it (the caller holds the
    /// tuning lock).
    pub(super) fn install_config(&self, config: EngineConfig) {
        self.breaker.update_settings(BreakerSettings::new(&config.breaker, config.latency_budget()));
        self.autotune_enabled.store(config.autotune.enabled, Ordering::Relaxed);
        let similarity = config.similarity.clone();
        self.live.store(Arc::new(LiveConfig::new(config)));
        self.apply_similarity_config(&similarity);
        self.sample_gauges();
    }

    /// The tuning lock (a writer that panicked left consistent state: every write is one swap).
    pub(super) fn tuning(&self) -> std::sync::MutexGuard<'_, Tuning> {
        self.tuning.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// The tuner's current interval (configured, doubled per backoff, capped at an hour).
    pub(super) fn autotune_interval(&self) -> Duration {
        let configured = Duration::from_millis(self.live.load().config.autotune.interval_ms);
        self.tuning().tuner.interval(configured)
    }

    /// One tuner step now (the autotune thread calls this once per interval).
    pub(super) fn autotune_step(&self) -> Decision {
        let mut tuning = self.tuning();
        if !self.autotune_enabled.load(Ordering::Relaxed) {
            return Decision::NoChange("the auto-tuner is disabled".into());
        }
        let live = self.live.load();
        let graph = self.graph.load();
        let env = StepEnv {
            spreading: &live.config.spreading,
            autotune: &live.config.autotune,
            now_unix_ms: self.telemetry.clock().unix_ms(),
            threads: self.threads,
            nodes: graph.node_count(),
            task_overhead: *self.task_overhead.get_or_init(|| measure_task_overhead(self.pool.as_ref())),
            nodes_per_batch_unit: live.recall.params.execution.nodes_per_batch_unit,
        };
        self.last_autotune_step.store(self.telemetry.clock().now().as_nanos() as u64, Ordering::Relaxed);
        let before = tuning.tuner.clone();
        let (decision, tuned) = tuning.tuner.step(self.tuner_sample(), &env);
        let Some(tuned) = tuned else { return decision };
        // Only the knobs come from the tuner; everything else stays as live.
        let mut config = live.config.clone();
        config.spreading.max_depth = tuned.max_depth;
        config.spreading.batch_size = tuned.batch_size;
        config.spreading.tier_timeouts_ms = tuned.tier_timeouts_ms;
        if let Err(e) = config.validate() {
            // The tuner stays inside the guardrails, so this should not happen; if it does, the
            // tuner's state goes back to what it was and nothing is applied.
            tuning.tuner = before;
            return Decision::NoChange(format!("the tuned config was invalid and was not applied: {e}"));
        }
        tracing::info!(
            old = %serde_json::to_string(&live.config.spreading).unwrap_or_default(),
            new = %serde_json::to_string(&config.spreading).unwrap_or_default(),
            decision = %decision.to_json(),
            "auto-tuner changed the config"
        );
        self.metrics.autotune_changes_total.increment();
        self.install_config(config);
        decision
    }

    fn tuner_sample(&self) -> Sample {
        let m = &self.metrics;
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

    /// Gauges read from live state rather than recorded per call.
    pub(super) fn sample_gauges(&self) {
        let m = &self.metrics;
        let (in_use, capacity) = (self.buffers.in_use(), self.buffers.capacity());
        m.pool_in_use.set(in_use as f64);
        m.pool_capacity.set(capacity as f64);
        m.pool_utilization.set(utilization(in_use, capacity));
        // `spreading_breaker_state` is set by each transition itself (under the breaker's lock), so
        // a sample here could only overwrite it with a stale value.
        let config = &self.live.load().config;
        m.config_max_depth.set(config.spreading.max_depth as f64);
        m.config_batch_size.set(config.spreading.batch_size as f64);
        self.sample_graph_gauges();
        self.sample_similarity_gauges();
    }
}

/// Arm chaos's device failure for this thread's next device depth; returns the previous setting,
/// which the caller restores afterwards.
#[allow(unused_variables)]
fn arm_device_chaos(fail: bool) -> bool {
    #[cfg(feature = "opencl")]
    return crate::opencl::force_failure_on_this_thread(fail);
    #[cfg(not(feature = "opencl"))]
    false
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

/// `in_use / capacity`, 0 for an empty pool.
pub(super) fn utilization(in_use: usize, capacity: usize) -> f64 {
    if capacity == 0 { 0.0 } else { in_use as f64 / capacity as f64 }
}

impl Drop for EngineState {
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

/// Out-edges of a batch's seeds (first-hop work, an estimate of the whole) at and above which its
/// cues spread in parallel on the pool: below it, entering the pool (15–90 µs here) costs more than
/// running the cues one after another. Cues with an embedding count as this much each.
const BATCH_PARALLEL_MIN_EDGES: u64 = 2048;

/// Whether the cues of a batch are worth running in parallel on the pool.
fn batch_parallel(graph: &GraphVersion, cues: &[Cue]) -> bool {
    if cues.len() < 2 {
        return false;
    }
    let view = graph.view();
    let mut edges = 0u64;
    for cue in cues {
        if cue.embedding.is_some() {
            return true;
        }
        edges += cue.seeds.iter().map(|&(node, _)| view.out_degree(node as usize) as u64 + 1).sum::<u64>();
        if edges >= BATCH_PARALLEL_MIN_EDGES {
            return true;
        }
    }
    false
}

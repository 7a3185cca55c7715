//! The recall pipeline (docs/spec.md §4): seeds → breaker → spread → classify → result or fallback.
//! The engine hands it everything it needs for one call; it returns how far the call got, and the
//! engine records the telemetry.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::time::Duration;

use quanta::Instant;

use super::{Buffers, Cue, FallbackReason, Recall, Source, fallback, seeds};
use crate::breaker::{CallOutcome, CircuitBreaker};
use crate::chaos::{ChaosInjector, ChaosVerdict};
use crate::config::EngineConfig;
use crate::error::{Error, Result};
use crate::graph::{Graph, View};
use crate::pool::{BufferPool, Lease, Reusable};
use crate::similarity::Search;
use crate::spread::{self, DeviceSpread, SpreadParams, SpreadStats};

/// What a recall reads from the live config, resolved once per config change.
#[derive(Debug, Clone, PartialEq)]
pub struct Settings {
    /// Spreading parameters.
    pub params: SpreadParams,
    /// Results when the cue gives no `k`.
    pub k: usize,
    /// Seeds taken from embedding similarity.
    pub seed_k: usize,
    /// Minimum similarity of an embedding seed.
    pub min_similarity: f32,
    /// A spread slower than this is a failure (`slow_call_factor × latency_budget`).
    pub slow_limit: Duration,
    /// A spread that delivers no more than this (having fired along an edge) is a failure.
    pub min_activation_mass: f64,
}

impl Settings {
    /// The settings of `config`.
    pub fn from_config(config: &EngineConfig) -> Settings {
        let params = SpreadParams::from(&config.spreading);
        Settings {
            params,
            k: config.recall.k,
            seed_k: config.recall.seed_k,
            min_similarity: config.recall.min_similarity,
            slow_limit: config.slow_call_limit(),
            min_activation_mass: config.recall.min_activation_mass,
        }
    }
}

/// Everything one recall needs, borrowed from the engine for the call.
pub(crate) struct Pipeline<'a> {
    pub(crate) graph: View<'a>,
    /// The number of the version `graph` is (reported in the result).
    pub(crate) graph_version: u64,
    pub(crate) settings: &'a Settings,
    pub(crate) buffers: &'a BufferPool<Buffers>,
    pub(crate) breaker: &'a CircuitBreaker,
    pub(crate) chaos: &'a ChaosInjector,
    pub(crate) pool: Option<&'a rayon::ThreadPool>,
    /// The device backend, when the engine has one.
    pub(crate) device: Option<&'a dyn DeviceSpread>,
    /// How embedding cues are searched (the index, or the exact scan).
    pub(crate) similarity: Search<'a>,
}

/// How far a call got, for its telemetry.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Outcome {
    /// The breaker let the call spread.
    pub(crate) attempted: bool,
    /// The spread ran to its end (no panic), so `Recall::stats` describes it — also when an
    /// injected fault failed the call.
    pub(crate) ran: bool,
}

impl<'a> Pipeline<'a> {
    /// Every check [`Pipeline::run`] makes before it asks the breaker, with no buffer taken: a batch
    /// checks all its cues this way before any of them runs.
    pub(crate) fn check(&self, cue: &Cue) -> Result<()> {
        self.k(cue)?;
        seeds::check(self.graph, cue)
    }

    fn k(&self, cue: &Cue) -> Result<usize> {
        match cue.k.unwrap_or(self.settings.k) {
            0 => Err(Error::cue("k", "must be >= 1")),
            k => Ok(k),
        }
    }

    /// Recall `cue` into `out` (its result buffer is reused: no allocation once warm).
    pub(crate) fn run(&self, cue: &Cue, out: &mut Recall) -> Result<Outcome> {
        // A bad `k` is the caller's error, whatever taking buffers would have said.
        self.k(cue)?;
        let mut buffers = self.checkout()?;
        self.run_in(cue, out, &mut buffers)
    }

    /// Buffers for [`Pipeline::run_in`], from the engine's pool.
    pub(crate) fn checkout(&self) -> Result<Lease<'a, Buffers>> {
        self.buffers.checkout(self.graph.node_count())
    }

    /// [`Pipeline::run`] with buffers the caller holds (a batch keeps one set per task); they are
    /// clean again afterwards.
    pub(crate) fn run_in(&self, cue: &Cue, out: &mut Recall, buffers: &mut Buffers) -> Result<Outcome> {
        let start = Instant::now();
        let k = self.k(cue)?;
        let _span = tracing::debug_span!("recall", k).entered();
        let result = self.run_checked(cue, k, start, out, buffers);
        buffers.recycle();
        result
    }

    fn run_checked(
        &self,
        cue: &Cue,
        k: usize,
        start: Instant,
        out: &mut Recall,
        buffers: &mut Buffers,
    ) -> Result<Outcome> {
        let graph = self.graph;
        let query_norm = seeds::validate(graph, cue, buffers)?;

        out.stats = SpreadStats::default();
        out.graph_version = self.graph_version;
        let admission = self.breaker.admit();
        let attempted = admission.allowed();
        let mut ran = false;
        let reason = if attempted {
            if let Some(norm) = query_norm {
                let s = self.settings;
                seeds::add_similar(graph, self.similarity, cue, norm, s.seed_k, s.min_similarity, buffers);
            }
            // Slow means slow spreading: the clock for the breaker and the slow check starts here.
            let spread_start = Instant::now();
            let (reason, completed) = self.spread_and_classify(cue, k, buffers, out);
            let latency = spread_start.elapsed();
            ran = completed;
            self.breaker.on_result(admission, CallOutcome { failed: reason.is_some(), latency });
            reason
        } else {
            Some(FallbackReason::BreakerOpen)
        };
        out.source = if reason.is_some() { Source::Fallback } else { Source::Spreading };
        out.reason = reason;
        if reason.is_some() {
            fallback::answer(graph, self.similarity, cue, k, buffers, &mut out.results);
        }
        out.latency = start.elapsed();
        tracing::debug!(
            latency_us = out.latency.as_micros() as u64,
            results = out.results.len(),
            reason = reason.map(FallbackReason::as_str),
            "recall"
        );
        Ok(Outcome { attempted, ran })
    }

    /// Spread from the resolved seeds (chaos applied), collect the top `k`, classify. Returns the
    /// failure reason and whether the spread ran to its end (false after a panic; `out.stats` then
    /// stays empty).
    fn spread_and_classify(
        &self,
        cue: &Cue,
        k: usize,
        buffers: &mut Buffers,
        out: &mut Recall,
    ) -> (Option<FallbackReason>, bool) {
        let start = Instant::now();
        let verdict = self.chaos.verdict();
        let armed_before = arm_device_chaos(verdict.gpu_fail);
        let Buffers { spread: scratch, seeds, seeds_in_cue, .. } = buffers;
        let seeds = seeds::resolved(cue, seeds, *seeds_in_cue);
        let attempt = self.attempt(seeds, k, scratch, &mut out.results, self.device);
        arm_device_chaos(armed_before);
        self.judge(verdict, attempt, start.elapsed(), out)
    }

    /// One spread and its collection, a panic caught (`None`; the scratch is restored).
    fn attempt(
        &self,
        seeds: &[(u32, f32)],
        k: usize,
        scratch: &mut spread::Scratch,
        results: &mut Vec<spread::Activation>,
        device: Option<&dyn DeviceSpread>,
    ) -> Option<SpreadStats> {
        let (graph, params, pool, chaos) = (self.graph, &self.settings.params, self.pool, self.chaos);
        let attempt = catch_unwind(AssertUnwindSafe(|| {
            spread::spread_collect(graph, params, seeds, k, scratch, pool, chaos, device, results)
        }));
        attempt
            .map_err(|_| {
                // The buffer's state is unknown after a panic: restore every entry, then answer with
                // the fallback.
                tracing::error!("spreading panicked; answering with the fallback");
                scratch.reset_all();
            })
            .ok()
    }

    /// Apply the chaos verdict to a spread's outcome, put its stats in `out` and classify it.
    /// Returns the failure reason and whether the spread ran to its end.
    fn judge(
        &self,
        verdict: ChaosVerdict,
        attempt: Option<SpreadStats>,
        latency: Duration,
        out: &mut Recall,
    ) -> (Option<FallbackReason>, bool) {
        let ran = match attempt {
            Some(mut stats) => {
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
            None => false,
        };
        let outcome = (ran && !verdict.fail).then_some(&out.stats);
        let s = self.settings;
        (classify(outcome, latency, s.slow_limit, s.min_activation_mass), ran)
    }

    /// The device a batch runs on, when the engine has one that wants this graph version (a plain
    /// graph: pending changes keep recalls on the CPU until compaction folds them in).
    pub(crate) fn batch_device(&self) -> Option<(&'a dyn DeviceSpread, &'a Graph)> {
        let device = self.device?;
        let graph = self.graph.plain()?;
        (device.wants(graph) && device.lanes(graph) > 0).then_some((device, graph))
    }

    /// Recall `cues` (each already [`Pipeline::check`]ed) on `device`: each launch sequence runs as
    /// many cues as the device holds as its lanes, one pass over the graph per depth for all of
    /// them (docs/spec.md §19). Each cue keeps its own breaker admission, chaos verdict, result and
    /// fallback; a cue whose device attempt fails — by injection, or the whole launch by a device
    /// error — is spread on the CPU, counted. A cue's latency is its own preparation and finish
    /// plus its share of the launch. `record` gets each cue's result and outcome.
    pub(crate) fn run_batch_on_device(
        &self,
        device: &dyn DeviceSpread,
        graph: &Graph,
        cues: &[Cue],
        out: &mut [Recall],
        record: &mut dyn FnMut(&Recall, Outcome),
    ) -> Result<()> {
        let mut buffers = self.checkout()?;
        let lanes = device.lanes(graph).max(1);
        for (c, (chunk, outs)) in cues.chunks(lanes).zip(out.chunks_mut(lanes)).enumerate() {
            self.launch(Shared::Device(device), graph, c * lanes, chunk, outs, &mut buffers, record)?;
        }
        Ok(())
    }

    /// The graph a batch's large cues can share CPU passes over: a plain one (pending changes have no
    /// reverse CSRs yet) that no device wants, whose lanes' state fits in this machine's last-level
    /// cache (beyond it every gathered value misses the cache and sharing loses:
    /// docs/decisions/0017-batched-recall.md).
    pub(crate) fn lanes_graph(&self) -> Option<&'a Graph> {
        let graph = self.graph.plain()?;
        if self.device.is_some_and(|d| d.wants(graph)) {
            // Each cue tries the device, as its own recall would (and counts a device failure).
            return None;
        }
        let cache_nodes = self.settings.params.execution.cache_nodes;
        (graph.node_count().saturating_mul(spread::LANES) <= cache_nodes.saturating_mul(4)).then_some(graph)
    }

    /// Whether a cue whose own spread did what `stats` describe would be cheaper as one of a group of
    /// `group` cues sharing passes ([`Pipeline::lanes_graph`]). Costs are estimated per depth in
    /// pulls of one cue alone, from the edges the cue traversed: alone, a depth costs
    /// `edges · share / E` when pushed (`share` is where the calibrated switch says a push costs a
    /// pull) and 1 when pulled; in a group, its share of the group's push or pull (a pull for the
    /// group costs [`spread::SHARED_PULL_COST`]) plus its share of the group's marking, collection
    /// and clearing ([`spread::SHARED_DEPTH_OVERHEAD`] a depth).
    pub(crate) fn shares_well(&self, stats: &SpreadStats, group: usize) -> bool {
        let depths = stats.depth_reached as usize;
        if depths == 0 || group < 2 {
            return false;
        }
        let graph = self.graph;
        let (n, edges) = (graph.node_count(), graph.edge_count().max(1) as f64);
        let p = &self.settings.params;
        let threads = match self.pool {
            Some(pool) if n + graph.edge_count() >= p.execution.parallel_min_work => {
                pool.current_num_threads()
            }
            _ => 1,
        };
        let group = group.min(spread::LANES) as f64;
        let max_depth = (p.max_depth as usize).min(spread::MAX_DEPTH);
        let (mut alone, mut shared) = (0.0, 0.0);
        for d in 0..depths {
            let last = d + 1 == max_depth;
            let traversed = stats.edges_traversed[d] as f64 / edges;
            alone += (traversed * p.execution.pull_share_for(n, threads, last) as f64).min(1.0);
            let pushed = traversed * p.execution.pull_share_for(n, 1, last) as f64;
            shared += pushed.min(spread::SHARED_PULL_COST / group) + spread::SHARED_DEPTH_OVERHEAD / group;
        }
        alone > shared
    }

    /// Recall `cues` (each already [`Pipeline::check`]ed, at most [`spread::LANES`]) as one group
    /// sharing CPU passes over `graph` ([`Pipeline::lanes_graph`]), with `lanes` prepared for it.
    /// Each cue keeps its own breaker admission, chaos verdict, result, fallback and telemetry, as
    /// on the device; should the shared spread fail, each cue is spread on its own.
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn run_lanes(
        &self,
        graph: &Graph,
        first: usize,
        cues: &[Cue],
        out: &mut [Recall],
        buffers: &mut Buffers,
        lanes: &mut spread::LaneScratch,
        record: &mut dyn FnMut(&Recall, Outcome),
    ) -> Result<()> {
        self.launch(Shared::Cpu(lanes), graph, first, cues, out, buffers, record)
    }

    /// One shared launch of `cues`: on the device, or as the CPU's lanes.
    #[allow(clippy::too_many_arguments)]
    fn launch(
        &self,
        shared: Shared<'_>,
        graph: &Graph,
        first: usize,
        cues: &[Cue],
        out: &mut [Recall],
        buffers: &mut Buffers,
        record: &mut dyn FnMut(&Recall, Outcome),
    ) -> Result<()> {
        struct Pending {
            k: usize,
            admission: crate::breaker::Admission,
            verdict: ChaosVerdict,
            seeds: Vec<(u32, f32)>,
            /// Time spent on this cue outside the shared launch.
            own: Duration,
        }
        let view = self.graph;
        let s = self.settings;
        // Every fallible step first, so that no admission is left without its result.
        let mut checked = Vec::with_capacity(cues.len());
        for (i, cue) in cues.iter().enumerate() {
            let start = Instant::now();
            let k = self.k(cue).map_err(|e| e.in_cue(first + i))?;
            let norm = seeds::validate(view, cue, buffers).map_err(|e| e.in_cue(first + i))?;
            let seeds = seeds::resolved(cue, &buffers.seeds, buffers.seeds_in_cue).to_vec();
            checked.push((k, norm, seeds, start.elapsed()));
        }
        let mut pending = Vec::with_capacity(cues.len());
        for ((cue, slot), (k, norm, mut seeds, checking)) in cues.iter().zip(out.iter_mut()).zip(checked) {
            let start = Instant::now();
            slot.stats = SpreadStats::default();
            slot.graph_version = self.graph_version;
            slot.results.clear();
            let admission = self.breaker.admit();
            let verdict = if admission.allowed() {
                if let Some(norm) = norm {
                    buffers.seeds.clear();
                    buffers.seeds.extend_from_slice(&seeds);
                    seeds::add_similar(view, self.similarity, cue, norm, s.seed_k, s.min_similarity, buffers);
                    seeds.clone_from(&buffers.seeds);
                }
                self.chaos.verdict()
            } else {
                ChaosVerdict::default()
            };
            pending.push(Pending { k, admission, verdict, seeds, own: checking + start.elapsed() });
        }
        // The shared launch: every admitted cue (on the device, one whose device attempt chaos does
        // not fail).
        let on_device = matches!(shared, Shared::Device(_));
        let on_device = |p: &Pending| p.admission.allowed() && !(on_device && p.verdict.gpu_fail);
        let launch_start = Instant::now();
        let mut launched: Vec<spread::DeviceCue<'_>> = pending
            .iter()
            .zip(out.iter_mut())
            .filter(|(p, _)| on_device(p))
            .map(|(p, slot)| spread::DeviceCue {
                seeds: &p.seeds,
                k: p.k,
                results: &mut slot.results,
                stats: SpreadStats::default(),
            })
            .collect();
        let count = launched.len();
        let device = match shared {
            Shared::Device(device) => Some(device),
            Shared::Cpu(_) => None,
        };
        // A CPU group of one would pay a pass for eight: that cue runs alone (below).
        let launch = match shared {
            Shared::Device(_) => count > 0,
            Shared::Cpu(_) => count > 1,
        };
        let succeeded = launch
            && matches!(
                catch_unwind(AssertUnwindSafe(|| match shared {
                    Shared::Device(device) => device.spread(graph, &s.params, &mut launched, self.chaos),
                    Shared::Cpu(lanes) => {
                        spread::spread_lanes(graph, &s.params, &mut launched, lanes, self.pool, self.chaos);
                        Ok(())
                    }
                })),
                Ok(Ok(()))
            );
        let mut stats: std::collections::VecDeque<SpreadStats> =
            launched.into_iter().map(|c| c.stats).collect();
        let share = launch_start.elapsed() / count.max(1) as u32;
        for ((p, cue), slot) in pending.iter().zip(cues).zip(out.iter_mut()) {
            let start = Instant::now();
            let attempted = p.admission.allowed();
            let mut ran = false;
            let mut reason = Some(FallbackReason::BreakerOpen);
            // A launched cue's share of the launch counts, whether the launch succeeded or not.
            let in_launch = if on_device(p) { share } else { Duration::ZERO };
            if attempted {
                let device_stats = if on_device(p) { stats.pop_front() } else { None };
                let (attempt, spread_time) = match device_stats.filter(|_| succeeded) {
                    Some(stats) => (Some(stats), in_launch),
                    None => {
                        // On the CPU, alone: chaos failed this cue's device attempt, the launch
                        // failed, or it was a CPU group of one.
                        let cpu_start = Instant::now();
                        let mut attempt =
                            self.attempt(&p.seeds, p.k, &mut buffers.spread, &mut slot.results, None);
                        if let Some(stats) = attempt.as_mut() {
                            stats.device_failed = device.is_some();
                        }
                        (attempt, in_launch + cpu_start.elapsed())
                    }
                };
                (reason, ran) = self.judge(p.verdict, attempt, spread_time, slot);
                self.breaker
                    .on_result(p.admission, CallOutcome { failed: reason.is_some(), latency: spread_time });
            }
            slot.source = if reason.is_some() { Source::Fallback } else { Source::Spreading };
            slot.reason = reason;
            if reason.is_some() {
                // The fallback answers from the cue's resolved seeds, as a single recall's does.
                buffers.seeds.clear();
                buffers.seeds.extend_from_slice(&p.seeds);
                buffers.seeds_in_cue = false;
                fallback::answer(view, self.similarity, cue, p.k, buffers, &mut slot.results);
            }
            slot.latency = p.own + in_launch + start.elapsed();
            record(slot, Outcome { attempted, ran });
        }
        buffers.recycle();
        Ok(())
    }
}

/// Where a launch's cues share graph passes.
enum Shared<'s> {
    /// As lanes of the OpenCL device's launch sequences.
    Device(&'s dyn DeviceSpread),
    /// As lanes of the CPU ([`spread::spread_lanes`]), in these buffers.
    Cpu(&'s mut spread::LaneScratch),
}

/// Classify an attempted spread (docs/spec.md §4 step 3): `None` = success. `spread` is `None` when
/// it errored. Low mass judges the activation *delivered* along edges (seeds included), so a cue
/// that seeds every node is not a failure for want of non-seed nodes.
pub fn classify(
    spread: Option<&SpreadStats>,
    latency: Duration,
    slow_limit: Duration,
    min_activation_mass: f64,
) -> Option<FallbackReason> {
    let Some(stats) = spread else { return Some(FallbackReason::Error) };
    if latency > slow_limit {
        Some(FallbackReason::Slow)
    } else if stats.seeds_fired_along_edge() && stats.delivered <= min_activation_mass {
        Some(FallbackReason::LowMass)
    } else {
        None
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

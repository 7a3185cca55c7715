//! The normative spreading algorithm of docs/spec.md §3 on the CPU: seeds in, activations and stats
//! out. It knows nothing of cues, breakers or fallbacks: the pipeline built on it does.
//!
//! Each depth builds the frontier `F`, then propagates tier by tier (hot, warm, cold), timing each
//! tier's phase against its timeout. Small frontiers are *pushed* inline on the calling thread; once
//! the frontier's out-edges reach a share of the graph, the call switches to *pull* (a gather over
//! per-source-tier reverse CSRs), run on the engine's rayon pool when the graph is large. Both
//! directions add contributions to a node in the same order — tier, then source id, then insertion
//! order — so results are bit-identical whatever the direction, thread count or `batch_size`.

mod lanes;
mod scratch;
mod step;

pub(crate) use lanes::{LANES, LaneScratch, SHARED_DEPTH_OVERHEAD, SHARED_PULL_COST, spread_lanes};
pub(crate) use scratch::{MASS_SCALE, Scratch, TopK, UNREACHED, order_key, result_entry};
pub(crate) use step::{DELIVERED_SCALE, delivered_units, fires};

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::config::{CyclePolicy, SpreadingConfig};
use crate::error::{Error, Result};
use crate::graph::{Graph, Tier, View};

/// One activated node: what a spread (or its one-hop variant) reports per node.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Activation {
    /// Node id.
    pub node: u32,
    /// Accumulated activation in (0, 1].
    pub activation: f32,
    /// Depth at which the node was first reached (0 for seeds).
    pub hops: u32,
    /// The node's tier.
    pub tier: Tier,
}

/// Upper bound of `max_depth`; per-depth stats are fixed arrays of this size.
pub const MAX_DEPTH: usize = 16;

/// Which backend ran a spread.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "lowercase")]
#[non_exhaustive]
pub enum Backend {
    /// The CPU backend (inline push and pooled pull).
    #[default]
    Cpu,
    /// The OpenCL backend.
    OpenCl,
}

impl Backend {
    /// `cpu` or `opencl`.
    pub fn as_str(self) -> &'static str {
        match self {
            Backend::Cpu => "cpu",
            Backend::OpenCl => "opencl",
        }
    }
}

/// What one spread did (docs/spec.md §3, "Stats").
#[derive(Debug, Clone, Copy, PartialEq, Default)]
pub struct SpreadStats {
    /// Number of depths at which the frontier was non-empty.
    pub depth_reached: u32,
    /// Nodes fired at each depth (`0..depth_reached` are meaningful).
    pub nodes_fired: [u32; MAX_DEPTH],
    /// Out-edges of fired nodes at each depth.
    pub edges_traversed: [u64; MAX_DEPTH],
    /// Wall time spent on each tier's propagation (hot, warm, cold).
    pub tier_time: [Duration; 3],
    /// Wall time of the tier phases at each depth.
    pub depth_time: [Duration; MAX_DEPTH],
    /// Whether each tier had frontier nodes at some depth.
    pub tier_had_work: [bool; 3],
    /// Tiers whose timeout was exceeded in this call.
    pub tier_timed_out: [bool; 3],
    /// Whether a tier timeout cut the call short.
    pub truncated: bool,
    /// Σ activation over non-seed nodes.
    pub mass: f64,
    /// Activation delivered along edges: Σ over depths and all nodes (seeds included) of x_{d+1},
    /// summed order-independently (docs/spec.md §4: the low-mass rule reads it).
    pub delivered: f64,
    /// Whether any activation arrived along an edge at all.
    pub delivered_any: bool,
    /// Whether any depth ran as a pull (gather) step.
    pub pulled: bool,
    /// Depths that ran on the device (the whole spread did: docs/spec.md §19).
    pub device_depths: u32,
    /// Whether the device failed in this call (the spread was redone on the CPU).
    pub device_failed: bool,
    /// Tier phases that ran as pulls (each a pass over every destination, split into parallel tasks).
    pub pull_phases: u32,
    /// Backend that ran the spread.
    pub backend: Backend,
    /// Cues that shared this spread's graph passes on the CPU, this one included (a batch's lanes,
    /// docs/spec.md §19); 0 when it ran alone. A shared pass's tier phases count once in
    /// `pull_phases`, on the first cue of its group.
    pub shared_lanes: u32,
}

impl SpreadStats {
    /// Nodes fired over all depths.
    pub fn total_nodes_fired(&self) -> u64 {
        self.nodes_fired.iter().map(|&n| n as u64).sum()
    }

    /// Edges traversed over all depths.
    pub fn total_edges_traversed(&self) -> u64 {
        self.edges_traversed.iter().sum()
    }

    /// Whether a seed fired along at least one edge (the precondition of a low-mass failure).
    pub fn seeds_fired_along_edge(&self) -> bool {
        self.edges_traversed[0] > 0
    }
}

/// Spreading parameters resolved from [`SpreadingConfig`] for the hot path.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SpreadParams {
    /// Maximum depth (1–16).
    pub max_depth: u32,
    /// Decay per hop.
    pub decay: f32,
    /// Firing and result threshold.
    pub threshold: f32,
    /// Fan-out limit; 0 = unlimited.
    pub max_fan_out: u32,
    /// Cycle policy.
    pub cycle_policy: CyclePolicy,
    /// Parallel task granularity: a pull task covers `batch_size × nodes_per_batch_unit` destinations.
    pub batch_size: u32,
    /// Per-tier timeouts; `None` = no timeout.
    pub tier_timeouts: [Option<Duration>; 3],
    /// When to pull and when to use the pool (never changes results).
    pub execution: Execution,
}

/// Execution thresholds. They decide speed only: results are bit-identical whatever their values.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Execution {
    /// Pull once the frontier's out-edges reach `1 / pull_share` of all edges, on a graph whose
    /// spreading state fits in cache (at most `cache_nodes` nodes)…
    pub pull_share: u64,
    /// …or `1 / (pull_share_out_of_cache × pull threads)` on a larger one, where every pushed edge
    /// misses the cache (docs/decisions/0017-batched-recall.md has the measurements)…
    pub pull_share_out_of_cache: u64,
    /// The same two shares for a spread's last depth, where a push is cheaper: its finish collects
    /// the nodes it reaches first and leaves nothing to clear, while a pull still passes over every
    /// node to finish, collect and reset.
    pub last_pull_share: u64,
    /// See `last_pull_share`; multiplied by the pull threads.
    pub last_pull_share_out_of_cache: u64,
    /// Graphs up to this many nodes count as in cache (see `pull_share`).
    pub cache_nodes: usize,
    /// …and at least this many (below it a push is always cheaper than touching every node).
    pub pull_min_edges: u64,
    /// Pull steps and dense passes use the pool only when nodes + edges reach this; below it, entering
    /// the pool (15–90 µs) costs more than the work.
    pub parallel_min_work: usize,
    /// Destination nodes per unit of `batch_size` in a parallel task.
    pub nodes_per_batch_unit: usize,
    /// Seeds go straight into the dense arrays (no lists) when there are at least
    /// 1/`dense_seeds_share` as many as nodes…
    pub dense_seeds_share: usize,
    /// …and the graph has at least this many nodes (below it, lists cost next to nothing).
    pub dense_seeds_min_nodes: usize,
}

impl Default for Execution {
    fn default() -> Self {
        Execution {
            pull_share: 20,
            pull_share_out_of_cache: 48,
            last_pull_share: 6,
            last_pull_share_out_of_cache: 16,
            cache_nodes: cache_nodes(),
            pull_min_edges: 4096,
            parallel_min_work: 200_000,
            nodes_per_batch_unit: 256,
            dense_seeds_share: 16,
            dense_seeds_min_nodes: 1 << 16,
        }
    }
}

impl Execution {
    /// Always push (never pull).
    pub fn push_only() -> Self {
        Execution { pull_min_edges: u64::MAX, ..Execution::default() }
    }

    /// Every depth a pull (benchmarks comparing the two directions).
    pub fn pull_every_depth() -> Self {
        Execution {
            pull_share: u64::MAX,
            pull_share_out_of_cache: u64::MAX,
            last_pull_share: u64::MAX,
            last_pull_share_out_of_cache: u64::MAX,
            pull_min_edges: 0,
            ..Execution::default()
        }
    }

    /// The share of all edges (as `1 / share`) a frontier's out-edges must reach for a pull, on a
    /// graph of `nodes` nodes pulled by `threads` threads, at the spread's `last` depth or another.
    pub fn pull_share_for(&self, nodes: usize, threads: usize, last: bool) -> u64 {
        let (in_cache, out_of_cache) = if last {
            (self.last_pull_share, self.last_pull_share_out_of_cache)
        } else {
            (self.pull_share, self.pull_share_out_of_cache)
        };
        if nodes <= self.cache_nodes { in_cache } else { out_of_cache.saturating_mul(threads.max(1) as u64) }
    }

    /// Always pull, on the pool whenever one is given, in tasks of `batch_size` destinations.
    pub fn pull_always() -> Self {
        Execution {
            pull_share: u64::MAX,
            pull_share_out_of_cache: u64::MAX,
            last_pull_share: u64::MAX,
            last_pull_share_out_of_cache: u64::MAX,
            pull_min_edges: 0,
            parallel_min_work: 0,
            nodes_per_batch_unit: 1,
            ..Execution::default()
        }
    }

    /// Seeds always go into the dense arrays, so the first depth marks its frontier with a pass
    /// over all nodes (and pushes or pulls by the usual rule).
    pub fn dense_seeds() -> Self {
        Execution { dense_seeds_share: usize::MAX, dense_seeds_min_nodes: 0, ..Execution::default() }
    }
}

/// Nodes whose spreading state (about 19 bytes each) fits in a quarter of this machine's last-level
/// cache (read once from sysfs; 32 MiB assumed when it cannot be read): a push into a larger
/// state misses the cache on nearly every edge.
fn cache_nodes() -> usize {
    static NODES: std::sync::OnceLock<usize> = std::sync::OnceLock::new();
    *NODES.get_or_init(|| {
        let bytes = (0..8)
            .filter_map(|i| {
                let dir = format!("/sys/devices/system/cpu/cpu0/cache/index{i}");
                let level = std::fs::read_to_string(format!("{dir}/level")).ok()?;
                let size = std::fs::read_to_string(format!("{dir}/size")).ok()?;
                let size = size.trim();
                let (number, unit) =
                    size.split_at(size.find(|c: char| !c.is_ascii_digit()).unwrap_or(size.len()));
                let scale = match unit {
                    "K" => 1 << 10,
                    "M" => 1 << 20,
                    "" => 1,
                    _ => return None,
                };
                Some((level.trim().parse::<u32>().ok()?, number.parse::<usize>().ok()? * scale))
            })
            .max()
            .map_or(32 << 20, |(_, bytes)| bytes);
        bytes / 4 / 19
    })
}

impl From<&SpreadingConfig> for SpreadParams {
    fn from(c: &SpreadingConfig) -> Self {
        // Saturating: a huge timeout is no timeout in practice, never a panic.
        let timeout =
            |ms: f64| (ms > 0.0).then(|| Duration::try_from_secs_f64(ms / 1000.0).unwrap_or(Duration::MAX));
        SpreadParams {
            max_depth: c.max_depth.clamp(1, MAX_DEPTH as u32),
            decay: c.decay,
            threshold: c.threshold,
            max_fan_out: c.max_fan_out,
            cycle_policy: c.cycle_policy,
            batch_size: c.batch_size.max(1),
            tier_timeouts: Tier::ALL.map(|t| timeout(c.tier_timeouts_ms.get(t))),
            execution: Execution::default(),
        }
    }
}

/// Hooks the spreading loop calls at each tier phase (chaos injection lives behind this).
pub trait PhaseHook {
    /// Called before a tier's propagation at a depth; its time counts toward that tier.
    fn before_tier(&self, tier: Tier);
}

/// One cue of a shared launch (a device's, or the CPU's lanes): its normalised seeds (unique,
/// sorted by id) and `k` in; its top-`k` results (best first) and its stats, mass included, out.
#[derive(Debug)]
pub struct DeviceCue<'a> {
    /// Seeds, as [`spread_cpu`] takes them.
    pub seeds: &'a [(u32, f32)],
    /// Results to keep.
    pub k: usize,
    /// Where the results go (cleared first).
    pub results: &'a mut Vec<Activation>,
    /// The spread's stats (start from the default).
    pub stats: SpreadStats,
}

/// Runs whole spreads somewhere other than the CPU: the OpenCL backend (docs/spec.md §19). The
/// semantics are docs/spec.md §3's, with tier timeouts judged per depth.
pub trait DeviceSpread: Sync {
    /// Whether spreads over `graph` should run here.
    fn wants(&self, graph: &Graph) -> bool;

    /// Cues one launch sequence over `graph` holds (0: none fits the device).
    fn lanes(&self, graph: &Graph) -> usize;

    /// Spread every cue of `cues` over `graph`: a batch runs as lanes of shared launch sequences.
    /// `hook.before_tier` is called before each tier's phase at each depth; its time counts toward
    /// that tier. On an error nothing in `cues` is meaningful: the caller redoes them on the CPU.
    fn spread(
        &self,
        graph: &Graph,
        params: &SpreadParams,
        cues: &mut [DeviceCue<'_>],
        hook: &dyn PhaseHook,
    ) -> Result<(), String>;
}

/// No hook.
#[derive(Debug, Clone, Copy, Default)]
pub struct NoHook;

impl PhaseHook for NoHook {
    fn before_tier(&self, _tier: Tier) {}
}

/// Spread from `seeds` (unique ids, activation in (0, 1], sorted by id) over `graph` on the CPU, and
/// write the top `k` results to `out`, the mass in the stats. `scratch` is clean before and after.
#[allow(clippy::too_many_arguments)]
fn spread_cpu(
    graph: View<'_>,
    params: &SpreadParams,
    seeds: &[(u32, f32)],
    k: usize,
    scratch: &mut Scratch,
    pool: Option<&rayon::ThreadPool>,
    hook: &dyn PhaseHook,
    out: &mut Vec<Activation>,
) -> SpreadStats {
    let mut run = step::Run::new(graph, params, scratch, pool, k);
    run.seed(seeds);
    // Per-depth stats and hop counts are sized for MAX_DEPTH; the public params are not validated.
    for depth in 0..(params.max_depth as usize).min(MAX_DEPTH) {
        if !run.depth(depth, hook) {
            break;
        }
    }
    let mut stats = run.finish();
    // The last depth's finish may have collected part of the answer already (with this `k`).
    stats.mass = scratch.collect(graph, params.threshold, k, out, pool);
    scratch.reset(pool);
    stats
}

/// Spread `seeds` (as [`spread_cpu`] takes them) and write the top `k` to `out`, the mass in the stats:
/// on `device` when it wants the graph (a plain one: a version with pending changes stays on the
/// CPU until compaction folds them in), redone on the CPU when the device fails (`device_failed`),
/// else on the CPU. `scratch` is clean before and after.
#[allow(clippy::too_many_arguments)]
pub(crate) fn spread_collect(
    graph: View<'_>,
    params: &SpreadParams,
    seeds: &[(u32, f32)],
    k: usize,
    scratch: &mut Scratch,
    pool: Option<&rayon::ThreadPool>,
    hook: &dyn PhaseHook,
    device: Option<&dyn DeviceSpread>,
    out: &mut Vec<Activation>,
) -> SpreadStats {
    let mut failed = false;
    if let Some((device, plain)) = device.zip(graph.plain()).filter(|(d, g)| d.wants(g)) {
        let mut cue = [DeviceCue { seeds, k, results: &mut *out, stats: SpreadStats::default() }];
        match device.spread(plain, params, &mut cue, hook) {
            Ok(()) => return cue[0].stats,
            Err(_) => failed = true,
        }
    }
    let mut stats = spread_cpu(graph, params, seeds, k, scratch, pool, hook, out);
    stats.device_failed = failed;
    stats
}

/// Check seeds against `graph` (ids in range, activations in (0, 1]) and write them to `out`
/// merged — duplicates summed and capped at 1 — and sorted by id, as [`spread_cpu`] takes them.
pub fn normalise_seeds(graph: View<'_>, seeds: &[(u32, f32)], out: &mut Vec<(u32, f32)>) -> Result<()> {
    out.clear();
    let ascending = check_seeds(graph, seeds)?;
    out.extend_from_slice(seeds);
    if !ascending {
        merge_duplicate_seeds(out);
    }
    Ok(())
}

/// Check seeds against `graph`: ids in range, activations in (0, 1]. Returns whether the ids are
/// strictly ascending (already unique and sorted: nothing to merge).
pub(crate) fn check_seeds(graph: View<'_>, seeds: &[(u32, f32)]) -> Result<bool> {
    check_seed_list(graph.node_count() as u32, seeds)
}

/// [`check_seeds`] against a node count.
pub(crate) fn check_seed_list(node_count: u32, seeds: &[(u32, f32)]) -> Result<bool> {
    let mut ascending = true;
    let mut previous = None;
    for &(node, activation) in seeds {
        if node >= node_count {
            return Err(Error::SeedOutOfRange { node: node as u64, node_count });
        }
        if !(activation.is_finite() && activation > 0.0 && activation <= 1.0) {
            return Err(Error::InvalidSeedActivation { node, activation });
        }
        ascending &= previous < Some(node);
        previous = Some(node);
    }
    Ok(ascending)
}

/// Sort seeds by id and merge duplicates: activations summed, capped at 1.
pub(crate) fn merge_duplicate_seeds(seeds: &mut Vec<(u32, f32)>) {
    seeds.sort_unstable_by_key(|&(node, _)| node);
    seeds.dedup_by(|later, kept| {
        if later.0 == kept.0 {
            kept.1 = (kept.1 + later.1).min(1.0);
            true
        } else {
            false
        }
    });
}

/// Spread outside an engine (tests, benchmarks): validates and merges `seeds`, returns every result
/// (seeds and nodes with A ≥ threshold) best first, and the stats with the mass filled in.
pub fn spread_standalone<'g>(
    graph: impl Into<View<'g>>,
    params: &SpreadParams,
    seeds: &[(u32, f32)],
    pool: Option<&rayon::ThreadPool>,
    hook: Option<&dyn PhaseHook>,
) -> Result<(Vec<Activation>, SpreadStats)> {
    spread_standalone_on(graph, params, seeds, pool, hook, None)
}

/// [`spread_standalone`] on `device` when it wants the graph (see [`DeviceSpread::wants`]).
pub fn spread_standalone_on<'g>(
    graph: impl Into<View<'g>>,
    params: &SpreadParams,
    seeds: &[(u32, f32)],
    pool: Option<&rayon::ThreadPool>,
    hook: Option<&dyn PhaseHook>,
    device: Option<&dyn DeviceSpread>,
) -> Result<(Vec<Activation>, SpreadStats)> {
    let graph = graph.into();
    let mut scratch = Scratch::default();
    scratch.try_resize(graph.node_count())?;
    let mut merged = Vec::new();
    normalise_seeds(graph, seeds, &mut merged)?;
    let mut out = Vec::new();
    let hook = hook.unwrap_or(&NoHook);
    let stats =
        spread_collect(graph, params, &merged, usize::MAX, &mut scratch, pool, hook, device, &mut out);
    Ok((out, stats))
}

/// One hop, no further: the seeds (hops 0, their own activation) and their direct out-neighbours
/// (hops 1, Σ seed activation × weight, capped at 1), best first, the top `k` of them. `seeds` are
/// normalised (unique, sorted by id); `scratch` is clean before and after.
pub(crate) fn one_hop(
    graph: View<'_>,
    seeds: &[(u32, f32)],
    k: usize,
    scratch: &mut Scratch,
    out: &mut Vec<Activation>,
) {
    out.clear();
    for &(seed, _) in seeds {
        scratch.hops[seed as usize] = 0;
    }
    for &(seed, a) in seeds {
        for (targets, weights) in graph.out(seed as usize).parts() {
            for (&v, &w) in targets.iter().zip(weights) {
                let j = v as usize;
                if scratch.hops[j] == 0 {
                    continue;
                }
                if !scratch.in_next[j] {
                    scratch.in_next[j] = true;
                    scratch.next_active.push(v);
                }
                scratch.next[j] = (scratch.next[j] + a * w).min(1.0);
            }
        }
    }
    let tier = |node: u32| graph.tiers()[node as usize];
    out.extend(seeds.iter().map(|&(node, a)| Activation { node, activation: a, hops: 0, tier: tier(node) }));
    for &v in &scratch.next_active {
        let j = v as usize;
        out.push(Activation { node: v, activation: scratch.next[j], hops: 1, tier: tier(v) });
        scratch.next[j] = 0.0;
        scratch.in_next[j] = false;
    }
    for &(seed, _) in seeds {
        scratch.hops[seed as usize] = UNREACHED;
    }
    scratch.next_active.clear();
    keep_top_k(out, k, |a, b| b.activation.total_cmp(&a.activation).then(a.node.cmp(&b.node)));
}

/// Benchmark support: time `repetitions` full-frontier depth steps (every node active with
/// activation 1, as after a pull) through the real spreading loop: frontier marking, the per-tier
/// pulls and the depth's finish. Resetting between steps is not timed.
#[doc(hidden)]
pub fn time_full_frontier_step(
    graph: &Graph,
    params: &SpreadParams,
    pool: Option<&rayon::ThreadPool>,
    repetitions: usize,
) -> Vec<Duration> {
    let graph = graph.view();
    let mut scratch = Scratch::default();
    scratch.resize(graph.node_count());
    (0..repetitions)
        .map(|_| {
            scratch.current.fill(1.0);
            scratch.activation.fill(1.0);
            scratch.hops.fill(0);
            scratch.dense = true;
            let mut run = step::Run::new(graph, params, &mut scratch, pool, usize::MAX);
            run.assume_dense_frontier();
            let start = Instant::now();
            run.depth(0, &NoHook);
            let elapsed = start.elapsed();
            // Whatever the depth did (a last-depth push leaves its partial answer): clean again.
            scratch.reset_all();
            elapsed
        })
        .collect()
}

/// Benchmark support: time `repetitions` whole spreads from `seeds` (checked and merged once, not
/// timed) on one warm scratch, each with the collection of its top 10 results and the reset.
#[doc(hidden)]
pub fn time_spread(
    graph: &Graph,
    params: &SpreadParams,
    seeds: &[(u32, f32)],
    pool: Option<&rayon::ThreadPool>,
    repetitions: usize,
) -> Result<Vec<Duration>> {
    time_cues(graph, params, &[seeds.to_vec()], 10, pool, repetitions)
}

/// Benchmark support: time `repetitions` passes over `cues` (each checked and merged once, not
/// timed), every cue spread and its top `k` collected on one warm scratch, as a batch task runs them.
#[doc(hidden)]
pub fn time_cues(
    graph: &Graph,
    params: &SpreadParams,
    cues: &[Vec<(u32, f32)>],
    k: usize,
    pool: Option<&rayon::ThreadPool>,
    repetitions: usize,
) -> Result<Vec<Duration>> {
    let graph = graph.view();
    let mut scratch = Scratch::default();
    scratch.try_resize(graph.node_count())?;
    let mut merged = Vec::with_capacity(cues.len());
    for seeds in cues {
        let mut m = Vec::new();
        normalise_seeds(graph, seeds, &mut m)?;
        merged.push(m);
    }
    let mut out = Vec::new();
    Ok((0..repetitions)
        .map(|_| {
            let start = Instant::now();
            for seeds in &merged {
                spread_cpu(graph, params, seeds, k, &mut scratch, pool, &NoHook, &mut out);
            }
            start.elapsed()
        })
        .collect())
}

/// Keep the `k` smallest items under `order`, sorted (`k == 0` keeps none): the one top-k of
/// spreading results and one-hop answers.
pub(crate) fn keep_top_k<T>(items: &mut Vec<T>, k: usize, order: impl Fn(&T, &T) -> std::cmp::Ordering) {
    if k == 0 {
        items.clear();
    } else if items.len() > k {
        items.select_nth_unstable_by(k - 1, &order);
        items.truncate(k);
    }
    items.sort_unstable_by(order);
}

/// A timer for tier phases: one clock read per phase boundary, from the TSC where it is invariant
/// (`quanta`: ~7 ns a read, against ~25–60 ns for `Instant::now()` on these VMs).
pub(crate) struct PhaseTimer {
    last: quanta::Instant,
}

impl PhaseTimer {
    pub(crate) fn start() -> Self {
        PhaseTimer { last: quanta::Instant::now() }
    }

    /// Time since the start or the previous boundary, without setting a boundary.
    #[cfg_attr(not(feature = "opencl"), allow(dead_code))] // the device's depth timing
    pub(crate) fn elapsed(&self) -> Duration {
        quanta::Instant::now().saturating_duration_since(self.last)
    }

    /// Time since the previous boundary.
    pub(crate) fn lap(&mut self) -> Duration {
        let now = quanta::Instant::now();
        let elapsed = now.saturating_duration_since(self.last);
        self.last = now;
        elapsed
    }
}

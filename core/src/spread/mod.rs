//! The normative spreading algorithm of SPEC §3 on the CPU.
//!
//! Each depth builds the frontier `F`, then propagates tier by tier (hot, warm, cold), timing each
//! tier's phase against its timeout. Small frontiers are *pushed* inline on the calling thread; once
//! the frontier's out-edges reach a share of the graph, the call switches to *pull* (a gather over
//! per-source-tier reverse CSRs), run on the engine's rayon pool when the graph is large. Both
//! directions add contributions to a node in the same order — tier, then source id, then insertion
//! order — so results are bit-identical whatever the direction, thread count or `batch_size`.

mod scratch;
mod step;

pub use scratch::ScratchPool;
pub(crate) use scratch::{Scratch, UNREACHED};

use std::time::{Duration, Instant};

use serde::Serialize;

use crate::config::{CyclePolicy, SpreadingConfig};
use crate::graph::{Graph, Tier};
use crate::recall::Activation;

/// Upper bound of `max_depth`; per-depth stats are fixed arrays of this size.
pub const MAX_DEPTH: usize = 16;

/// Which backend ran a spread.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Default)]
#[serde(rename_all = "lowercase")]
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

/// What one spread did (SPEC §3 "Stats").
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
    /// Whether each tier had frontier nodes at some depth.
    pub tier_had_work: [bool; 3],
    /// Tiers whose timeout was exceeded in this call.
    pub tier_timed_out: [bool; 3],
    /// Whether a tier timeout cut the call short.
    pub truncated: bool,
    /// Σ activation over non-seed nodes.
    pub mass: f64,
    /// Whether any depth ran as a pull (gather) step.
    pub pulled: bool,
    /// Backend that ran the spread.
    pub backend: Backend,
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
    /// Destination nodes per parallel task, divided by [`NODES_PER_BATCH_UNIT`].
    pub batch_size: u32,
    /// Per-tier timeouts; `None` = no timeout.
    pub tier_timeouts: [Option<Duration>; 3],
}

/// A parallel pull task covers `batch_size × NODES_PER_BATCH_UNIT` destination nodes.
pub const NODES_PER_BATCH_UNIT: usize = 256;

impl From<&SpreadingConfig> for SpreadParams {
    fn from(c: &SpreadingConfig) -> Self {
        let timeout = |ms: f64| (ms > 0.0).then(|| Duration::from_secs_f64(ms / 1000.0));
        SpreadParams {
            max_depth: c.max_depth.clamp(1, MAX_DEPTH as u32),
            decay: c.decay,
            threshold: c.threshold,
            max_fan_out: c.max_fan_out,
            cycle_policy: c.cycle_policy,
            batch_size: c.batch_size.max(1),
            tier_timeouts: Tier::ALL.map(|t| timeout(c.tier_timeouts_ms.get(t))),
        }
    }
}

/// Hooks the spreading loop calls at each tier phase (chaos injection lives behind this).
pub trait PhaseHook {
    /// Called before a tier's propagation at a depth; its time counts toward that tier.
    fn before_tier(&self, tier: Tier);
}

/// No hook.
pub(crate) struct NoHook;

impl PhaseHook for NoHook {
    fn before_tier(&self, _tier: Tier) {}
}

/// Spread from `seeds` (unique ids, activation in (0, 1], sorted by id) over `graph`.
///
/// Leaves the activations in `scratch` for [`collect_results`]; the scratch must be clean on entry.
pub(crate) fn spread(
    graph: &Graph,
    params: &SpreadParams,
    seeds: &[(u32, f32)],
    scratch: &mut Scratch,
    pool: Option<&rayon::ThreadPool>,
    hook: &dyn PhaseHook,
) -> SpreadStats {
    let mut run = step::Run::new(graph, params, scratch, pool);
    run.seed(seeds);
    for depth in 0..params.max_depth as usize {
        if !run.depth(depth, hook) {
            break;
        }
    }
    run.finish()
}

/// Write the top-`k` results (seeds always qualify) into `out`, return the activation mass, and leave
/// `scratch` clean for its next use.
pub(crate) fn collect_results(
    graph: &Graph,
    threshold: f32,
    k: usize,
    scratch: &mut Scratch,
    out: &mut Vec<Activation>,
) -> f64 {
    let mass = scratch.collect(graph, threshold, k, out);
    scratch.reset();
    mass
}

/// A timer for tier phases: one clock read per phase boundary.
pub(crate) struct PhaseTimer {
    last: Instant,
}

impl PhaseTimer {
    pub(crate) fn start() -> Self {
        PhaseTimer { last: Instant::now() }
    }

    /// Time since the previous boundary.
    pub(crate) fn lap(&mut self) -> Duration {
        let now = Instant::now();
        let elapsed = now - self.last;
        self.last = now;
        elapsed
    }
}

//! The tuner's model: interval statistics from cumulative telemetry, their EWMAs, and the
//! recommendations with their predicted improvement (docs/autotuning.md).

use serde::Serialize;

use crate::config::Guardrails;
use crate::spread::MAX_DEPTH;
use crate::telemetry::{HistogramTotals, Summary};

/// The knobs the tuner turns.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Knobs {
    /// `spreading.max_depth`.
    pub max_depth: u32,
    /// `spreading.batch_size`.
    pub batch_size: u32,
    /// Tier timeout multipliers (hot, warm, cold) over the operator's base timeouts.
    pub timeout_multiplier: [f64; 3],
}

/// Cumulative totals the tuner reads at each step.
#[derive(Debug, Clone)]
pub(crate) struct Sample {
    pub(crate) recall_latency: HistogramTotals,
    pub(crate) tier_latency: [HistogramTotals; 3],
    pub(crate) depth_reached: HistogramTotals,
    pub(crate) recalls: u64,
    pub(crate) spreads: u64,
    pub(crate) violations: u64,
    pub(crate) tier_timeouts: [u64; 3],
    pub(crate) depth_edges: [u64; MAX_DEPTH],
    pub(crate) depth_nanos: [u64; MAX_DEPTH],
    pub(crate) pull_phases: u64,
    /// Recalls the per-depth feed sampled.
    pub(crate) sampled: u64,
}

/// What one interval measured (the difference of two samples).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct IntervalStats {
    /// Recall calls in the interval.
    pub recalls: u64,
    /// Spreads in the interval (recalls that spread, probe spreads).
    pub spreads: u64,
    /// p95 of whole-call recall latency, seconds.
    pub p95: f64,
    /// Mean recall latency, seconds.
    pub mean: f64,
    /// p95 of the time calls spent on each tier (calls where it had work), seconds.
    pub tier_p95: [f64; 3],
    /// Share of recall time spent propagating (Σ tier time / Σ recall latency), in [0, 1].
    pub spread_share: f64,
    /// Calls in which each tier's timeout fired, per spread.
    pub truncation_rate: [f64; 3],
    /// Recalls over the latency budget, per recall.
    pub violation_rate: f64,
    /// Edges traversed at each depth (sampled recalls).
    pub depth_edges: [u64; MAX_DEPTH],
    /// Propagation time at each depth, nanoseconds (sampled recalls).
    pub depth_nanos: [u64; MAX_DEPTH],
    /// Mean propagation time per sampled recall, seconds.
    pub sampled_spread_time: f64,
    /// Pull phases per recall.
    pub pull_phases_per_recall: f64,
    /// Mean depth reached per spread.
    pub mean_depth_reached: f64,
    /// Fine-bucket counts of each tier's time (for timeout predictions).
    #[doc(hidden)]
    pub tier_buckets: [Vec<u64>; 3],
}

impl IntervalStats {
    pub(crate) fn between(before: &Sample, after: &Sample) -> IntervalStats {
        let delta = |a: &HistogramTotals, b: &HistogramTotals| -> (Vec<u64>, u64, f64) {
            let buckets: Vec<u64> = a.fine.iter().zip(&b.fine).map(|(x, y)| x.wrapping_sub(*y)).collect();
            (buckets, a.count.wrapping_sub(b.count), (a.sum - b.sum).max(0.0))
        };
        let (recall_buckets, recall_count, recall_sum) = delta(&after.recall_latency, &before.recall_latency);
        let recall = Summary::from_buckets(&recall_buckets, recall_count, recall_sum, None);
        let mut tier_p95 = [0.0; 3];
        let mut tier_sum = 0.0;
        let mut tier_buckets: [Vec<u64>; 3] = Default::default();
        for t in 0..3 {
            let (buckets, count, sum) = delta(&after.tier_latency[t], &before.tier_latency[t]);
            tier_p95[t] = Summary::from_buckets(&buckets, count, sum, None).p95;
            tier_sum += sum;
            tier_buckets[t] = buckets;
        }
        let recalls = after.recalls.wrapping_sub(before.recalls);
        let spreads = after.spreads.wrapping_sub(before.spreads);
        let per = |n: u64, of: u64| if of == 0 { 0.0 } else { n as f64 / of as f64 };
        IntervalStats {
            recalls,
            spreads,
            p95: recall.p95,
            mean: recall.mean,
            tier_p95,
            spread_share: if recall_sum > 0.0 { (tier_sum / recall_sum).min(1.0) } else { 0.0 },
            truncation_rate: std::array::from_fn(|t| {
                per(after.tier_timeouts[t].wrapping_sub(before.tier_timeouts[t]), spreads)
            }),
            violation_rate: per(after.violations.wrapping_sub(before.violations), recalls),
            depth_edges: std::array::from_fn(|d| after.depth_edges[d].wrapping_sub(before.depth_edges[d])),
            depth_nanos: std::array::from_fn(|d| after.depth_nanos[d].wrapping_sub(before.depth_nanos[d])),
            sampled_spread_time: {
                let nanos: u64 =
                    (0..MAX_DEPTH).map(|d| after.depth_nanos[d].wrapping_sub(before.depth_nanos[d])).sum();
                per(nanos, after.sampled.wrapping_sub(before.sampled)) * 1e-9
            },
            pull_phases_per_recall: per(
                after.pull_phases.wrapping_sub(before.pull_phases),
                after.sampled.wrapping_sub(before.sampled),
            ),
            mean_depth_reached: {
                let (_, count, sum) = delta(&after.depth_reached, &before.depth_reached);
                if count == 0 { 0.0 } else { sum / count as f64 }
            },
            tier_buckets,
        }
    }

    /// Share of the interval's edges traversed at depth index `d` (0-based).
    pub fn depth_edge_share(&self, d: usize) -> f64 {
        let total: u64 = self.depth_edges.iter().sum();
        if total == 0 || d >= MAX_DEPTH { 0.0 } else { self.depth_edges[d] as f64 / total as f64 }
    }

    /// Share of the interval's propagation time spent at depth index `d` (0-based).
    pub fn depth_time_share(&self, d: usize) -> f64 {
        let total: u64 = self.depth_nanos.iter().sum();
        if total == 0 || d >= MAX_DEPTH { 0.0 } else { self.depth_nanos[d] as f64 / total as f64 }
    }

    /// Share of tier `t`'s observations above `old` that are at or below `new` (seconds).
    pub fn tier_share_between(&self, t: usize, old: f64, new: f64) -> f64 {
        let (mut above, mut between) = (0u64, 0u64);
        for (i, &count) in self.tier_buckets[t].iter().enumerate() {
            let v = crate::telemetry::bucket_midpoint(i);
            if v > old {
                above += count;
                if v <= new {
                    between += count;
                }
            }
        }
        if above == 0 { 0.0 } else { between as f64 / above as f64 }
    }
}

/// Exponentially weighted moving averages of the statistics the model predicts from.
#[derive(Debug, Clone, Copy, PartialEq, Default, Serialize)]
pub struct Ewma {
    /// Recall p95, seconds.
    pub p95: f64,
    /// Tier p95s, seconds.
    pub tier_p95: [f64; 3],
    /// Share of recall time spent propagating.
    pub spread_share: f64,
    /// Share of propagation time at the current last depth.
    pub last_depth_share: f64,
    /// Share of edges traversed at the current last depth.
    pub last_depth_edge_share: f64,
    /// Tier truncation rates.
    pub truncation_rate: [f64; 3],
    /// Budget violation rate.
    pub violation_rate: f64,
    /// Mean depth reached per spread.
    pub depth_reached: f64,
    /// Intervals folded in.
    pub intervals: u64,
}

/// Weight of the newest interval.
const ALPHA: f64 = 0.5;

impl Ewma {
    /// Fold one interval in (the last depth is `max_depth`).
    pub fn update(&mut self, s: &IntervalStats, max_depth: u32) {
        let last_index = max_depth.saturating_sub(1) as usize;
        let last = s.depth_time_share(last_index);
        let last_edges = s.depth_edge_share(last_index);
        let blend = |old: f64, new: f64, first: bool| if first { new } else { old + ALPHA * (new - old) };
        let first = self.intervals == 0;
        self.p95 = blend(self.p95, s.p95, first);
        self.spread_share = blend(self.spread_share, s.spread_share, first);
        self.last_depth_share = blend(self.last_depth_share, last, first);
        self.last_depth_edge_share = blend(self.last_depth_edge_share, last_edges, first);
        self.violation_rate = blend(self.violation_rate, s.violation_rate, first);
        self.depth_reached = blend(self.depth_reached, s.mean_depth_reached, first);
        for t in 0..3 {
            self.tier_p95[t] = blend(self.tier_p95[t], s.tier_p95[t], first);
            self.truncation_rate[t] = blend(self.truncation_rate[t], s.truncation_rate[t], first);
        }
        self.intervals += 1;
    }
}

/// What a change aims to improve, and so how its effect is judged.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Objective {
    /// Lower recall p95 latency.
    Latency,
    /// Fewer truncations on a tier.
    Truncation(usize),
    /// A walk back toward base: pressure must not return.
    NoPressure,
}

/// One recommended change.
#[derive(Debug, Clone, PartialEq)]
pub struct Candidate {
    /// The knobs after the change.
    pub knobs: Knobs,
    /// Predicted relative improvement of the objective (0.2 = 20 %).
    pub predicted: f64,
    /// Why, in words, with the measured numbers.
    pub reason: String,
    /// What it aims to improve.
    pub objective: Objective,
}

/// Inputs of a recommendation besides the statistics.
#[derive(Debug, Clone)]
pub struct Context<'a> {
    /// The knobs in force.
    pub knobs: Knobs,
    /// The operator's base tier timeouts, seconds (0 = no timeout).
    pub base_timeouts: [f64; 3],
    /// Guardrails.
    pub guardrails: &'a Guardrails,
    /// Knobs the operator pinned outside the guardrails.
    pub pins: Pins,
    /// The latency budget, seconds.
    pub budget: f64,
    /// Spreading pool threads.
    pub threads: usize,
    /// Nodes in the graph.
    pub nodes: usize,
    /// Measured cost of one parallel task, seconds.
    pub task_overhead: f64,
    /// Destination nodes per unit of batch size.
    pub nodes_per_batch_unit: usize,
}

const TIER_NAMES: [&str; 3] = ["hot", "warm", "cold"];
/// A rate above this is pressure.
pub const PRESSURE_RATE: f64 = 0.01;

/// Whether the statistics show latency or truncation pressure.
pub fn pressure(e: &Ewma, budget: f64) -> bool {
    e.p95 > budget || e.violation_rate > PRESSURE_RATE || e.truncation_rate.iter().any(|&r| r > PRESSURE_RATE)
}

/// `knobs` moved inside the guardrails.
pub fn clamp(knobs: Knobs, g: &Guardrails) -> Knobs {
    Knobs {
        max_depth: knobs.max_depth.clamp(g.max_depth[0], g.max_depth[1]),
        batch_size: knobs.batch_size.clamp(g.batch_size[0], g.batch_size[1]),
        timeout_multiplier: knobs
            .timeout_multiplier
            .map(|m| m.clamp(g.timeout_multiplier[0], g.timeout_multiplier[1])),
    }
}

/// Knobs the operator set outside their guardrails, at the operator's values: the tuner never
/// changes them (docs/spec.md §8).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Pins {
    /// The operator's `max_depth`, when outside its guardrail.
    pub max_depth: Option<u32>,
    /// The operator's `batch_size`, when outside its guardrail.
    pub batch_size: Option<u32>,
}

impl Pins {
    /// The pins of an operator's `spreading` section under `guardrails`.
    pub fn of(spreading: &crate::config::SpreadingConfig, guardrails: &Guardrails) -> Pins {
        let pinned = guardrails.pinned(spreading);
        let has = |knob| pinned.contains(&knob);
        Pins {
            max_depth: has(crate::config::TunedKnob::MaxDepth).then_some(spreading.max_depth),
            batch_size: has(crate::config::TunedKnob::BatchSize).then_some(spreading.batch_size),
        }
    }
}

/// `knobs` as the tuner may write them: unpinned knobs inside the guardrails, pinned ones at the
/// operator's values.
pub fn guard(knobs: Knobs, g: &Guardrails, pins: Pins) -> Knobs {
    let mut knobs = clamp(knobs, g);
    if let Some(depth) = pins.max_depth {
        knobs.max_depth = depth;
    }
    if let Some(batch) = pins.batch_size {
        knobs.batch_size = batch;
    }
    knobs
}

/// Every change the model can justify now, each inside the guardrails (pinned knobs untouched) and
/// different from the knobs in force, with its prediction.
pub fn recommend(e: &Ewma, s: &IntervalStats, c: &Context<'_>) -> Vec<Candidate> {
    let mut out = candidates(e, s, c);
    for candidate in &mut out {
        candidate.knobs = guard(candidate.knobs, c.guardrails, c.pins);
    }
    out.retain(|candidate| candidate.knobs != c.knobs);
    out
}

fn candidates(e: &Ewma, s: &IntervalStats, c: &Context<'_>) -> Vec<Candidate> {
    let mut out = Vec::new();
    let g = c.guardrails;
    let k = c.knobs;
    let latency_pressure = e.p95 > c.budget || e.violation_rate > PRESSURE_RATE;
    if latency_pressure && k.max_depth > g.max_depth[0] {
        let predicted = e.last_depth_share * e.spread_share;
        out.push(Candidate {
            knobs: Knobs { max_depth: k.max_depth - 1, ..k },
            predicted,
            reason: format!(
                "p95 {:.1} ms over the {:.1} ms budget; spreads reach depth {:.1} on average, depth {} took {:.0} % of \
                 propagation time ({:.0} % of the edges) and propagation is {:.0} % of recall time: lowering max_depth \
                 to {} should save about {:.0} %",
                e.p95 * 1e3,
                c.budget * 1e3,
                e.depth_reached,
                k.max_depth,
                e.last_depth_share * 100.0,
                e.last_depth_edge_share * 100.0,
                e.spread_share * 100.0,
                k.max_depth - 1,
                predicted * 100.0
            ),
            objective: Objective::Latency,
        });
    }
    for (t, tier) in TIER_NAMES.iter().enumerate() {
        let base = c.base_timeouts[t];
        if base <= 0.0 {
            continue;
        }
        let m = k.timeout_multiplier[t];
        let current = base * m;
        if latency_pressure && m > g.timeout_multiplier[0] && e.tier_p95[t] > 0.0 && e.p95 > 0.0 {
            let new_m = (m * 0.5).max(g.timeout_multiplier[0]);
            let cut = (e.tier_p95[t] - base * new_m).max(0.0);
            let predicted = (cut / e.p95).min(1.0);
            if predicted > 0.0 {
                let mut knobs = k;
                knobs.timeout_multiplier[t] = new_m;
                out.push(Candidate {
                    knobs,
                    predicted,
                    reason: format!(
                        "p95 {:.1} ms over the {:.1} ms budget and the {} tier's p95 is {:.1} ms: a {:.1} ms timeout \
                         (×{new_m}) cuts about {:.0} % off p95",
                        e.p95 * 1e3,
                        c.budget * 1e3,
                        tier,
                        e.tier_p95[t] * 1e3,
                        base * new_m * 1e3,
                        predicted * 100.0
                    ),
                    objective: Objective::Latency,
                });
            }
        }
        if !latency_pressure && e.truncation_rate[t] > PRESSURE_RATE && m < g.timeout_multiplier[1] {
            let new_m = (m * 1.5).min(g.timeout_multiplier[1]);
            let predicted = s.tier_share_between(t, current, base * new_m);
            let mut knobs = k;
            knobs.timeout_multiplier[t] = new_m;
            out.push(Candidate {
                knobs,
                predicted,
                reason: format!(
                    "the {} tier timed out in {:.1} % of spreads with latency inside the budget: {:.0} % of its slow \
                     calls took ≤ {:.1} ms, so a ×{new_m} timeout should avoid that share of truncations",
                    tier,
                    e.truncation_rate[t] * 100.0,
                    predicted * 100.0,
                    base * new_m * 1e3
                ),
                objective: Objective::Truncation(t),
            });
        }
    }
    if latency_pressure
        && c.threads > 1
        && s.pull_phases_per_recall > 0.0
        && k.batch_size < g.batch_size[1]
        && s.mean > 0.0
    {
        let new_batch = (k.batch_size * 2).min(g.batch_size[1]);
        let tasks = |b: u32| (c.nodes as f64 / (b as f64 * c.nodes_per_batch_unit as f64)).ceil();
        let saved = c.task_overhead * s.pull_phases_per_recall * (tasks(k.batch_size) - tasks(new_batch));
        let predicted = (saved / s.mean).clamp(0.0, 1.0);
        out.push(Candidate {
            knobs: Knobs { batch_size: new_batch, ..k },
            predicted,
            reason: format!(
                "{:.1} pull phases per recall at {:.1} µs per parallel task: batch {} → {new_batch} saves about {:.0} % \
                 of the {:.2} ms mean",
                s.pull_phases_per_recall,
                c.task_overhead * 1e6,
                k.batch_size,
                predicted * 100.0,
                s.mean * 1e3
            ),
            objective: Objective::Latency,
        });
    }
    out
}

/// One guarded step from `knobs` toward `base` (depth first, then timeouts, then batch), if any.
pub fn step_toward(knobs: Knobs, base: Knobs) -> Option<(Knobs, String)> {
    if knobs.max_depth != base.max_depth {
        let depth = if knobs.max_depth < base.max_depth { knobs.max_depth + 1 } else { knobs.max_depth - 1 };
        return Some((
            Knobs { max_depth: depth, ..knobs },
            format!("max_depth {} → {depth}", knobs.max_depth),
        ));
    }
    for (t, tier) in TIER_NAMES.iter().enumerate() {
        let (m, target) = (knobs.timeout_multiplier[t], base.timeout_multiplier[t]);
        if (m - target).abs() > 1e-9 {
            let new_m = if m < target { (m * 2.0).min(target) } else { (m / 1.5).max(target) };
            let mut next = knobs;
            next.timeout_multiplier[t] = new_m;
            return Some((next, format!("{} timeout ×{m} → ×{new_m}", tier)));
        }
    }
    if knobs.batch_size != base.batch_size {
        let batch = if knobs.batch_size < base.batch_size {
            (knobs.batch_size * 2).min(base.batch_size)
        } else {
            (knobs.batch_size / 2).max(base.batch_size)
        };
        return Some((
            Knobs { batch_size: batch, ..knobs },
            format!("batch_size {} → {batch}", knobs.batch_size),
        ));
    }
    None
}

//! One spread, depth by depth: frontier selection, push and pull propagation, and the depth's finish.

use rayon::prelude::*;

use super::scratch::{Scratch, UNREACHED};
use super::{PhaseHook, PhaseTimer, SpreadParams, SpreadStats};
use crate::config::CyclePolicy;
use crate::graph::{Tier, View};

pub(super) struct Run<'a> {
    graph: View<'a>,
    params: &'a SpreadParams,
    s: &'a mut Scratch,
    pool: Option<&'a rayon::ThreadPool>,
    stats: SpreadStats,
    exhausted: [bool; 3],
    /// `s.active` lists every node with x_d > 0 (false after a pull step or a dense seeding: scan
    /// instead).
    active_is_list: bool,
    /// The first depth's frontier counts and work, when dense seeding marked it already.
    premarked: Option<([u32; 3], [u64; 3])>,
    /// In a pull depth: the last tier with frontier nodes (its gather also finishes the depth) and the
    /// hop number nodes first reached now get.
    finishing_tier: usize,
    hop: u8,
    /// Σ x_{d+1} over depths and nodes so far, in units of 2⁻³⁰ (see [`delivered_units`]); it
    /// saturates only past 2³⁴ ≈ 1.7 · 10¹⁰ of activation, far beyond any low-mass threshold.
    delivered: u64,
    /// Results to keep: the last depth's finish collects the nodes it reaches first (when it is a
    /// push; `Scratch::collect_final`).
    k: usize,
}

impl<'a> Run<'a> {
    pub(super) fn new(
        graph: View<'a>,
        params: &'a SpreadParams,
        s: &'a mut Scratch,
        pool: Option<&'a rayon::ThreadPool>,
        k: usize,
    ) -> Self {
        let pool = pool.filter(|p| p.current_num_threads() > 1);
        Run {
            graph,
            params,
            s,
            pool,
            stats: SpreadStats::default(),
            exhausted: [false; 3],
            active_is_list: true,
            premarked: None,
            finishing_tier: 0,
            hop: 0,
            delivered: 0,
            k,
        }
    }

    pub(super) fn seed(&mut self, seeds: &[(u32, f32)]) {
        let n = self.graph.node_count();
        let e = &self.params.execution;
        if n >= e.dense_seeds_min_nodes && seeds.len().saturating_mul(e.dense_seeds_share) >= n {
            self.seed_dense(seeds);
            return;
        }
        for &(v, a) in seeds {
            let i = v as usize;
            self.s.current[i] = a;
            self.s.activation[i] = a;
            self.s.hops[i] = 0;
            self.s.reached.push(v);
            self.s.active.push(v);
        }
    }

    /// Seeds covering a large share of the graph go straight into the dense arrays (no lists to
    /// build, sort or walk), and the first depth's frontier is marked in the same pass over the
    /// seeds — in parallel when the graph is large. `seeds` are unique and sorted by id.
    fn seed_dense(&mut self, seeds: &[(u32, f32)]) {
        self.s.dense = true;
        self.active_is_list = false;
        let p = *self.params;
        let graph = self.graph;
        let tiers = graph.tiers();
        // As `mark_dense` would at depth 0: a firing seed publishes x0 · decay in `send` and is marked
        // fired; `current` stays 0 (it is read nowhere after the marking).
        let write =
            |base: usize, activation: &mut [f32], hops: &mut [u8], send: &mut [f32], fired: &mut [bool]| {
                let mut counts = [0u32; 3];
                let mut work = [0u64; 3];
                let lo = seeds.partition_point(|&(v, _)| (v as usize) < base);
                let hi = seeds.partition_point(|&(v, _)| (v as usize) < base + activation.len());
                for &(v, a) in &seeds[lo..hi] {
                    let (u, i) = (v as usize, v as usize - base);
                    activation[i] = a;
                    hops[i] = 0;
                    let (degree, tier) = (graph.out_degree(u), tiers[u]);
                    if fires(&p, &[false; 3], a, degree, tier, false) {
                        let t = tier.index();
                        send[i] = a * p.decay;
                        fired[i] = true;
                        counts[t] += 1;
                        work[t] += degree as u64;
                    }
                }
                (counts, work)
            };
        let chunk = self.chunk_len();
        let worthwhile = self.parallel_worthwhile();
        let s = &mut *self.s;
        let marked = match self.pool {
            Some(pool) if worthwhile => pool.install(|| {
                (
                    s.activation.par_chunks_mut(chunk),
                    s.hops.par_chunks_mut(chunk),
                    s.send.par_chunks_mut(chunk),
                    s.fired.par_chunks_mut(chunk),
                )
                    .into_par_iter()
                    .enumerate()
                    .map(|(k, (a, h, sd, f))| write(k * chunk, a, h, sd, f))
                    .reduce(|| ([0; 3], [0; 3]), add_marks)
            }),
            _ => write(0, &mut s.activation, &mut s.hops, &mut s.send, &mut s.fired),
        };
        self.premarked = Some(marked);
    }

    /// Start from state already in the dense arrays (benchmarks).
    pub(super) fn assume_dense_frontier(&mut self) {
        self.active_is_list = false;
    }

    pub(super) fn finish(mut self) -> SpreadStats {
        self.stats.delivered = self.delivered as f64 * (1.0 / f64::from(DELIVERED_SCALE));
        self.stats.delivered_any = self.delivered > 0;
        self.stats
    }

    /// Run depth `d`; false when the frontier was empty.
    pub(super) fn depth(&mut self, d: usize, hook: &dyn PhaseHook) -> bool {
        let (counts, work) = if let Some(marked) = self.premarked.take() {
            marked
        } else if self.active_is_list {
            self.frontier_from_list()
        } else {
            self.mark_dense()
        };
        let fired: u32 = counts.iter().sum();
        if fired == 0 {
            return false;
        }
        let total_work: u64 = work.iter().sum();
        self.stats.depth_reached = d as u32 + 1;
        self.stats.nodes_fired[d] = fired;
        self.stats.edges_traversed[d] = total_work;
        let edges = self.graph.edge_count() as u64;
        let pull = total_work >= self.params.execution.pull_min_edges
            && total_work.saturating_mul(self.pull_share(self.is_last(d))) >= edges;
        if !pull && !self.active_is_list {
            // A small frontier after a dense depth: push it rather than pass over every edge, and
            // continue from lists (the depth's finish builds them).
            self.frontier_from_send(counts);
            self.propagate(d, counts, hook, Self::push_tier);
            self.finish_dense_push(d);
        } else if pull {
            if self.active_is_list {
                self.mark_from_lists();
            }
            self.s.dense = true;
            self.stats.pulled = true;
            self.finishing_tier = (0..3).rev().find(|&t| counts[t] > 0).unwrap_or(0);
            self.hop = d as u8 + 1;
            self.stats.pull_phases += counts.iter().filter(|&&c| c > 0).count() as u32;
            self.propagate(d, counts, hook, Self::pull_tier);
            self.s.active.clear();
            self.active_is_list = false;
        } else {
            self.propagate(d, counts, hook, Self::push_tier);
            self.finish_push(d);
        }
        for list in &mut self.s.frontier {
            list.clear();
        }
        true
    }

    /// Sparse frontier: filter the (sorted) active list into per-tier lists.
    fn frontier_from_list(&mut self) -> ([u32; 3], [u64; 3]) {
        let mut counts = [0u32; 3];
        let mut work = [0u64; 3];
        let mut active = std::mem::take(&mut self.s.active);
        active.sort_unstable();
        for &u in &active {
            let i = u as usize;
            let (degree, tier) = (self.graph.out_degree(i), self.graph.tiers()[i]);
            if fires(self.params, &self.exhausted, self.s.current[i], degree, tier, self.s.fired[i]) {
                let t = tier.index();
                self.s.frontier[t].push(u);
                counts[t] += 1;
                work[t] += degree as u64;
            }
        }
        self.s.active = active;
        (counts, work)
    }

    /// Pull after sparse depths: publish the listed frontier in `send` and mark it fired.
    fn mark_from_lists(&mut self) {
        let decay = self.params.decay;
        for t in 0..3 {
            for &u in &self.s.frontier[t] {
                let i = u as usize;
                self.s.send[i] = self.s.current[i] * decay;
                self.s.fired[i] = true;
            }
        }
    }

    /// Dense frontier: one pass over all nodes publishes `send`, marks `fired` and counts per tier.
    fn mark_dense(&mut self) -> ([u32; 3], [u64; 3]) {
        let p = *self.params;
        let graph = self.graph;
        let exhausted = self.exhausted;
        let chunk = self.chunk_len();
        let worthwhile = self.parallel_worthwhile();
        let s = &mut *self.s;
        let tiers = graph.tiers();
        let body = |base: usize, current: &mut [f32], send: &mut [f32], fired: &mut [bool]| {
            let mut counts = [0u32; 3];
            let mut work = [0u64; 3];
            // Changed sources of this chunk, walked in step with the nodes (no lookup per node).
            let mut changed = graph.changed_sources(base, base + current.len()).map(Iterator::peekable);
            for i in 0..current.len() {
                // Every entry is written: a pull depth leaves last depth's values in `send`.
                send[i] = 0.0;
                let u = base + i;
                let x = current[i];
                if x <= 0.0 {
                    continue;
                }
                // x_d is read here only: a pull's finish rewrites `current`, a push reads `send`.
                current[i] = 0.0;
                let mut entry = None;
                if let Some(changed) = changed.as_mut() {
                    while let Some(&(v, loc)) = changed.peek()
                        && v as usize <= u
                    {
                        changed.next();
                        entry = (v as usize == u).then_some(loc);
                    }
                }
                let degree = match entry {
                    Some(loc) => graph.changed_degree(u, &loc),
                    None => graph.base_out_degree(u),
                };
                let tier = tiers[u];
                if !fires(&p, &exhausted, x, degree, tier, fired[i]) {
                    continue;
                }
                let t = tier.index();
                send[i] = x * p.decay;
                fired[i] = true;
                counts[t] += 1;
                work[t] += degree as u64;
            }
            (counts, work)
        };
        match self.pool {
            Some(pool) if worthwhile => pool.install(|| {
                (s.current.par_chunks_mut(chunk), s.send.par_chunks_mut(chunk), s.fired.par_chunks_mut(chunk))
                    .into_par_iter()
                    .enumerate()
                    .map(|(k, (c, sd, f))| body(k * chunk, c, sd, f))
                    .reduce(|| ([0; 3], [0; 3]), add_marks)
            }),
            _ => body(0, &mut s.current, &mut s.send, &mut s.fired),
        }
    }

    /// A push after a dense marking: list the frontier (nodes with `send` > 0) per tier, in id order.
    fn frontier_from_send(&mut self, counts: [u32; 3]) {
        let s = &mut *self.s;
        let tiers = self.graph.tiers();
        for (list, &count) in s.frontier.iter_mut().zip(&counts) {
            list.reserve(count as usize);
        }
        for (u, &y) in s.send.iter().enumerate() {
            if y > 0.0 {
                s.frontier[tiers[u].index()].push(u as u32);
            }
        }
    }

    /// Finish a push that followed a dense marking: clear the frontier's `send` (the next marking
    /// from lists writes only its own entries), then finish as after any push. `current` was cleared
    /// by the marking and the active list is empty, so from here on the lists are complete again.
    fn finish_dense_push(&mut self, d: usize) {
        for t in 0..3 {
            for &u in &self.s.frontier[t] {
                self.s.send[u as usize] = 0.0;
            }
        }
        debug_assert!(self.s.active.is_empty());
        self.finish_push(d);
        self.active_is_list = true;
    }

    /// Finish a push depth: the last depth collects as it finishes, any other is `finish_sparse`.
    fn finish_push(&mut self, d: usize) {
        if self.is_last(d) {
            let delivered = self.s.collect_final(d as u8 + 1, self.params.threshold, self.k);
            self.delivered = self.delivered.saturating_add(delivered);
        } else {
            self.finish_sparse(d);
        }
    }

    /// Run `step` for each tier with frontier nodes, in tier order, timing each phase against its timeout.
    fn propagate(&mut self, d: usize, counts: [u32; 3], hook: &dyn PhaseHook, step: fn(&mut Self, Tier)) {
        let mut timer = PhaseTimer::start();
        for tier in Tier::ALL {
            let t = tier.index();
            if counts[t] == 0 {
                continue;
            }
            hook.before_tier(tier);
            step(self, tier);
            let spent = timer.lap();
            record_phase(&mut self.stats, &mut self.exhausted, self.params, d, tier, spent);
        }
    }

    /// Push: each frontier node of `tier`, in id order, adds to its out-neighbours.
    fn push_tier(&mut self, tier: Tier) {
        let decay = self.params.decay;
        let graph = self.graph;
        let s = &mut *self.s;
        // A push within a dense depth (the state is not in lists) follows a dense marking: the
        // frontier is already marked fired, its x_d · decay is in `send` and `current` was cleared.
        let in_send = !self.active_is_list;
        let fire_once = self.params.cycle_policy == CyclePolicy::FireOnce && !in_send;
        for &u in &s.frontier[tier.index()] {
            let i = u as usize;
            let y = if in_send { s.send[i] } else { s.current[i] * decay };
            if fire_once {
                s.fired[i] = true;
                s.fired_list.push(u);
            }
            for (targets, weights) in graph.out(i).parts() {
                for (&v, &w) in targets.iter().zip(weights) {
                    // A node is listed when its first contribution arrives (a contribution that
                    // underflows to 0 may list it twice; the finish skips the second).
                    let slot = &mut s.next[v as usize];
                    if *slot == 0.0 {
                        s.next_active.push(v);
                    }
                    *slot += y * w;
                }
            }
        }
    }

    /// Pull: every node gathers from its in-edges whose source is in `tier`. The gather of the depth's
    /// last tier also finishes the depth for its chunk while the chunk is in cache: x_{d+1} = min(1,
    /// next), A and hops updated, `next` cleared. (`send` is rewritten by the next depth's marking.)
    fn pull_tier(&mut self, tier: Tier) {
        let graph = self.graph;
        let has_edges = graph.has_in_edges(tier);
        let finishing = tier.index() == self.finishing_tier;
        if !has_edges && !finishing {
            return;
        }
        let chunk = self.chunk_len();
        let worthwhile = self.parallel_worthwhile();
        let hop = self.hop;
        let s = &mut *self.s;
        let send = &s.send;
        let body =
            |base: usize, next: &mut [f32], current: &mut [f32], activation: &mut [f32], hops: &mut [u8]| {
                if has_edges {
                    graph.gather(tier, send, base, next);
                }
                if finishing { finish_chunk(hop, next, current, activation, hops) } else { 0 }
            };
        // Integer units: the delivered sum is the same whatever the chunking.
        let delivered: u64 = match self.pool {
            Some(pool) if worthwhile => pool.install(|| {
                (
                    s.next.par_chunks_mut(chunk),
                    s.current.par_chunks_mut(chunk),
                    s.activation.par_chunks_mut(chunk),
                    s.hops.par_chunks_mut(chunk),
                )
                    .into_par_iter()
                    .enumerate()
                    .map(|(k, (n, c, a, h))| body(k * chunk, n, c, a, h))
                    .reduce(|| 0, u64::saturating_add)
            }),
            _ => body(0, &mut s.next, &mut s.current, &mut s.activation, &mut s.hops),
        };
        self.delivered = self.delivered.saturating_add(delivered);
    }

    /// After a push: x_{d+1} = min(1, next) for the touched nodes; update A, hops and the active list.
    /// (A push follows a sparse depth, or a dense one whose marking cleared `current` and left the
    /// active list empty, so the active list is complete here.)
    fn finish_sparse(&mut self, d: usize) {
        let mut delivered = 0u64;
        let s = &mut *self.s;
        for &u in &s.active {
            s.current[u as usize] = 0.0;
        }
        s.active.clear();
        for &v in &s.next_active {
            let j = v as usize;
            let x = s.next[j].min(1.0);
            s.next[j] = 0.0;
            if x > 0.0 {
                delivered += delivered_units(x);
                s.current[j] = x;
                s.active.push(v);
                s.activation[j] = (s.activation[j] + x).min(1.0);
                if s.hops[j] == UNREACHED {
                    s.hops[j] = d as u8 + 1;
                    s.reached.push(v);
                }
            }
        }
        s.next_active.clear();
        self.delivered = self.delivered.saturating_add(delivered);
    }

    /// Whether `d` is the spread's last depth (no frontier follows it).
    fn is_last(&self, d: usize) -> bool {
        d + 1 == (self.params.max_depth as usize).min(super::MAX_DEPTH)
    }

    /// The calibrated push/pull switch for this graph and pool (`Execution::pull_share_for`).
    fn pull_share(&self, last: bool) -> u64 {
        let threads = match self.pool {
            Some(pool) if self.parallel_worthwhile() => pool.current_num_threads(),
            _ => 1,
        };
        self.params.execution.pull_share_for(self.graph.node_count(), threads, last)
    }

    fn chunk_len(&self) -> usize {
        (self.params.batch_size as usize).saturating_mul(self.params.execution.nodes_per_batch_unit).max(1)
    }

    fn parallel_worthwhile(&self) -> bool {
        self.graph.node_count() + self.graph.edge_count() >= self.params.execution.parallel_min_work
    }
}

/// Count `spent` toward `tier` at depth `d`; past the tier's timeout the tier is exhausted for the
/// rest of the call.
pub(super) fn record_phase(
    stats: &mut SpreadStats,
    exhausted: &mut [bool; 3],
    params: &SpreadParams,
    d: usize,
    tier: Tier,
    spent: std::time::Duration,
) {
    let t = tier.index();
    stats.tier_had_work[t] = true;
    stats.tier_time[t] += spent;
    stats.depth_time[d] += spent;
    if let Some(limit) = params.tier_timeouts[t]
        && stats.tier_time[t] > limit
    {
        exhausted[t] = true;
        stats.tier_timed_out[t] = true;
        stats.truncated = true;
    }
}

/// Frontier counts and work per tier, summed.
fn add_marks(a: ([u32; 3], [u64; 3]), b: ([u32; 3], [u64; 3])) -> ([u32; 3], [u64; 3]) {
    ([a.0[0] + b.0[0], a.0[1] + b.0[1], a.0[2] + b.0[2]], [a.1[0] + b.1[0], a.1[1] + b.1[1], a.1[2] + b.1[2]])
}

/// docs/spec.md §3's frontier condition for a node with activation `x` arriving at this depth.
#[inline]
pub(crate) fn fires(
    p: &SpreadParams,
    exhausted: &[bool; 3],
    x: f32,
    degree: usize,
    tier: Tier,
    fired: bool,
) -> bool {
    x > 0.0
        && x >= p.threshold
        && (p.max_fan_out == 0 || degree <= p.max_fan_out as usize)
        && (p.cycle_policy == CyclePolicy::Reverberate || !fired)
        && !exhausted[tier.index()]
}

/// Finish a pull depth for one chunk of destinations: the same update as a push depth's finish.
/// Returns the activation delivered to the chunk, in [`delivered_units`].
#[inline]
fn finish_chunk(
    hop: u8,
    next: &mut [f32],
    current: &mut [f32],
    activation: &mut [f32],
    hops: &mut [u8],
) -> u64 {
    let mut delivered = 0u64;
    for i in 0..next.len() {
        let x = next[i].min(1.0);
        next[i] = 0.0;
        current[i] = x;
        if x > 0.0 {
            delivered += delivered_units(x);
            activation[i] = (activation[i] + x).min(1.0);
            if hops[i] == UNREACHED {
                hops[i] = hop;
            }
        }
    }
    delivered
}

/// 2³⁰: delivered activation is summed as integers in units of 2⁻³⁰ (about 10⁻⁹), so the sum does
/// not depend on the order (push or pull, threads, chunks) it was added in. A depth's sum fits a
/// `u64` (2³² nodes × 2³⁰); the call's sum saturates (see `Run::delivered`).
pub(crate) const DELIVERED_SCALE: f32 = 1_073_741_824.0;

/// An arriving activation `x` ∈ (0, 1] in units of 2⁻³⁰, truncated; amounts below one unit count as
/// one, so any positive delivery is seen.
#[inline]
pub(crate) fn delivered_units(x: f32) -> u64 {
    debug_assert!(x > 0.0 && x <= 1.0);
    // SAFETY: x ∈ (0, 1], so x · 2³⁰ is finite and in (0, 2³⁰]: it fits a u32. Scaling by a power
    // of two is exact.
    let units = unsafe { (x * DELIVERED_SCALE).to_int_unchecked::<u32>() };
    u64::from(units.max(1))
}

#[cfg(test)]
mod tests {
    use super::{DELIVERED_SCALE, delivered_units};

    #[test]
    fn delivered_units_truncate_and_never_lose_a_delivery() {
        for x in [1.0f32, 0.5, 0.8, 0.64, 0.01, 1e-5] {
            assert_eq!(delivered_units(x), (x as f64 * DELIVERED_SCALE as f64) as u64, "{x}");
        }
        assert_eq!(delivered_units(1.0), 1 << 30);
        assert_eq!(delivered_units(1e-20), 1, "below one unit counts as one");
        assert_eq!(delivered_units(f32::MIN_POSITIVE), 1);
    }
}

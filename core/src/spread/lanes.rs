//! Shared graph passes on the CPU (docs/spec.md §19): up to [`LANES`] cues spread together as
//! *lanes*, their state interleaved node by node (entry `v · LANES + lane`), every dense depth one
//! pull over the in-edges for all of them (a sparse one is pushed lane by lane). A batch of large
//! cues runs here: each depth reads the in-edge lists once for the group instead of once per cue,
//! and a source's eight values share a cache line (docs/decisions/0017-batched-recall.md has the
//! measurements).
//!
//! The answer is the bits a cue's own spread gives: a lane adds its contributions to a node in the
//! same order as any CPU spread (tier, then source id, then insertion order; a lane with nothing to
//! send adds exact zeros), finishes and marks with the same arithmetic, and collects through the
//! same order-independent top-k and fixed-point mass. Tier timeouts are judged per lane after each
//! tier phase, as on the CPU; a phase's time counts toward every lane with work in that tier, and
//! only those.

use std::time::Duration;

use rayon::prelude::*;

use super::scratch::{TopK, UNREACHED, key_activation, visit};
use super::step::record_phase;
use super::{
    Activation, DELIVERED_SCALE, DeviceCue, MASS_SCALE, MAX_DEPTH, PhaseHook, PhaseTimer, SpreadParams,
};
use crate::error::Result;
use crate::graph::{CsrView, Graph, Tier, View};
use crate::pool::Reusable;

/// Cues one shared pass carries. The stride is fixed (a group of fewer cues leaves lanes idle), so a
/// node's lanes are one 32-byte run of each array and the per-edge loop is eight independent adds.
pub(crate) const LANES: usize = 8;

/// What one pull for a group of lanes costs, in pulls of one cue alone on the same pool: measured
/// 1.1–2.1 on BA 100 k with two threads (`--bench spreading -- lanes` and `push-pull`,
/// docs/performance.md); the upper end, so that a group is formed only where it clearly pays.
pub(crate) const SHARED_PULL_COST: f64 = 2.0;

/// What a group's marking pass, and its collection and clearing spread over its depths, cost per
/// depth, in pulls of one cue alone: measured 0.4–0.8 (same runs), rounded up.
pub(crate) const SHARED_DEPTH_OVERHEAD: f64 = 1.0;

/// Bytes of lane state per node: three `f32` and two byte arrays, per lane.
pub(crate) const BYTES_PER_NODE: usize = LANES * (3 * 4 + 2);

/// The interleaved spreading state of one group of lanes, reused across groups and batches. Lean,
/// because it must stay in cache with the graph: `next` accumulates x_{d+1} during a depth and holds
/// it (capped) from the depth's finish until the next marking reads and clears it, so no separate
/// `current` is kept; `send` is rewritten whole by every marking before anything reads it.
///
/// Invariant between uses: every entry but `send`'s holds its neutral value (0, `UNREACHED`,
/// `false`), unless `dirty` says a spread stopped half-way (a caught panic); the next spread clears
/// it first.
#[derive(Debug, Default)]
pub(crate) struct LaneScratch {
    /// x_{d+1} being gathered; after a depth's finish, x_{d+1} itself (the next depth's x_d).
    next: Vec<f32>,
    send: Vec<f32>,
    activation: Vec<f32>,
    hops: Vec<u8>,
    fired: Vec<bool>,
    dirty: bool,
}

impl Reusable for LaneScratch {
    fn prepare(&mut self, nodes: usize) -> Result<()> {
        let entries = nodes.saturating_mul(LANES);
        if entries > self.next.len() {
            let what = || format!("the shared-pass buffers of {nodes} nodes");
            let more = entries - self.next.len();
            crate::memory::check_available(what, (more / LANES).saturating_mul(BYTES_PER_NODE))?;
            crate::memory::reserve(&mut self.next, more, what)?;
            crate::memory::reserve(&mut self.send, more, what)?;
            crate::memory::reserve(&mut self.activation, more, what)?;
            crate::memory::reserve(&mut self.hops, more, what)?;
            crate::memory::reserve(&mut self.fired, more, what)?;
        }
        self.next.resize(entries, 0.0);
        self.send.resize(entries, 0.0);
        self.activation.resize(entries, 0.0);
        self.hops.resize(entries, UNREACHED);
        self.fired.resize(entries, false);
        Ok(())
    }

    fn recycle(&mut self) {}

    fn bytes(&self) -> usize {
        self.next.capacity() * 12 + self.hops.capacity() * 2
    }
}

impl LaneScratch {
    /// Nodes this scratch holds lanes for.
    pub(crate) fn nodes(&self) -> usize {
        self.next.len() / LANES
    }

    /// Every entry but `send`'s back to its neutral value (a marking rewrites `send` whole before
    /// anything reads it, even after a panic): in parallel chunks on `par`'s pool when large.
    fn clear(&mut self, par: Par<'_>) {
        fill(&mut self.next, 0.0, par);
        fill(&mut self.activation, 0.0, par);
        fill(&mut self.hops, UNREACHED, par);
        fill(&mut self.fired, false, par);
        self.dirty = false;
    }
}

/// `v.fill(value)`, in parallel chunks on `par`'s pool when it has one.
fn fill<T: Copy + Send + Sync>(v: &mut [T], value: T, par: Par<'_>) {
    match par.pool {
        Some(pool) => pool.install(|| v.par_chunks_mut(par.chunk * LANES).for_each(|c| c.fill(value))),
        None => v.fill(value),
    }
}

/// How a pass over the lanes splits: nodes per task, and the pool when the work pays for entering it.
#[derive(Clone, Copy)]
struct Par<'a> {
    pool: Option<&'a rayon::ThreadPool>,
    chunk: usize,
}

/// Frontier counts and out-edges per lane and tier, of one marking.
type Marks = ([[u32; 3]; LANES], [[u64; 3]; LANES]);

/// Spread `cues` (at most [`LANES`]; seeds as `spread_cpu` takes them: unique ids in range,
/// activations in (0, 1], sorted by id) over `graph` together, and write each cue's top `k`, its
/// stats and its mass. `s` must hold `graph`'s node count ([`Reusable::prepare`]); it is clean
/// afterwards. `hook.before_tier` is called once per tier phase for the group.
pub(crate) fn spread_lanes(
    graph: &Graph,
    params: &SpreadParams,
    cues: &mut [DeviceCue<'_>],
    s: &mut LaneScratch,
    pool: Option<&rayon::ThreadPool>,
    hook: &dyn PhaseHook,
) {
    assert!(cues.len() <= LANES, "{} cues for {LANES} lanes", cues.len());
    let view = graph.view();
    let n = view.node_count();
    assert_eq!(s.nodes(), n, "lane buffers prepared for another graph");
    let e = &params.execution;
    let work = (n + view.edge_count()).saturating_mul(LANES);
    let par = Par {
        pool: pool.filter(|p| p.current_num_threads() > 1 && work >= e.parallel_min_work),
        // As many nodes a task as a single pull's, so a group's phase has as many tasks as one
        // cue's (the tuner's model of a phase's cost holds for both).
        chunk: (params.batch_size as usize).saturating_mul(e.nodes_per_batch_unit).max(64),
    };
    if s.dirty {
        s.clear(par);
    }
    s.dirty = true;
    let group = cues.len() as u32;
    for (lane, cue) in cues.iter_mut().enumerate() {
        cue.stats = super::SpreadStats { shared_lanes: group, ..Default::default() };
        for &(v, a) in cue.seeds {
            let j = v as usize * LANES + lane;
            s.next[j] = a;
            s.activation[j] = a;
            s.hops[j] = 0;
        }
    }
    let csrs = Tier::ALL.map(|t| graph.in_csr_from(t));
    let mut exhausted = [[false; 3]; LANES];
    let mut delivered = [0u64; LANES];
    for d in 0..(params.max_depth as usize).min(MAX_DEPTH) {
        let (counts, edges) = mark(view, params, &exhausted, s, par);
        let mut any = [false; 3];
        for (lane, cue) in cues.iter_mut().enumerate() {
            let fired: u32 = counts[lane].iter().sum();
            if fired == 0 {
                continue;
            }
            let st = &mut cue.stats;
            st.depth_reached = d as u32 + 1;
            st.nodes_fired[d] = fired;
            st.edges_traversed[d] = edges[lane].iter().sum();
            for t in 0..3 {
                any[t] |= counts[lane][t] > 0;
            }
        }
        let Some(finishing) = (0..3).rev().find(|&t| any[t]) else { break };
        let hop = d as u8 + 1;
        // A sparse depth is pushed, lane by lane: pulling it would pass over every in-edge for the
        // group (`pull_share` is where a push costs a pull, and a shared pull costs about
        // `SHARED_PULL_COST` of them).
        let last = d + 1 == (params.max_depth as usize).min(MAX_DEPTH);
        let share = e.pull_share_for(n, 1, last) as f64;
        let group_edges: u64 = edges.iter().flatten().sum();
        let pull_depth = group_edges >= e.pull_min_edges
            && group_edges as f64 * share >= view.edge_count() as f64 * SHARED_PULL_COST;
        let mut phases = [Duration::ZERO; 3];
        let mut timer = PhaseTimer::start();
        for tier in Tier::ALL {
            let t = tier.index();
            if !any[t] {
                continue;
            }
            hook.before_tier(tier);
            if pull_depth {
                let got = pass(Some(&csrs[t]), s, t == finishing, hop, par);
                add_delivered(&mut delivered, got);
                phases[t] = timer.lap();
            } else {
                push(view, tier, s);
                phases[t] = timer.lap();
                if t == finishing {
                    // Untimed, as a CPU push depth's finish is.
                    add_delivered(&mut delivered, pass(None, s, true, hop, par));
                    timer.lap();
                }
            }
        }
        // The group's tier phases ran once: they count once, on its first cue.
        if let Some(first) = cues.first_mut().filter(|_| pull_depth) {
            first.stats.pull_phases += any.iter().filter(|&&a| a).count() as u32;
        }
        // A lane is charged the phases of the tiers it has frontier nodes in, and only those: a
        // phase's time (its hook's included) is what that tier cost every lane with work in it.
        for (lane, cue) in cues.iter_mut().enumerate() {
            let has = counts[lane].map(|c| c > 0);
            if !has.contains(&true) {
                continue;
            }
            cue.stats.pulled |= pull_depth;
            for tier in Tier::ALL.into_iter().filter(|t| has[t.index()]) {
                record_phase(&mut cue.stats, &mut exhausted[lane], params, d, tier, phases[tier.index()]);
            }
        }
    }
    collect(view, params.threshold, cues, s, par);
    for (cue, units) in cues.iter_mut().zip(delivered) {
        cue.stats.delivered = units as f64 * (1.0 / f64::from(DELIVERED_SCALE));
        cue.stats.delivered_any = units > 0;
    }
    s.clear(par);
}

/// Mark every lane's frontier: one pass over all entries reads x_d from `next` and clears it for
/// the depth's gather, publishes `send` (x · decay for a firing node, 0 elsewhere, every entry
/// written), marks `fired` and counts per lane and tier: the CPU's frontier rule, lane by lane,
/// without branches.
fn mark(
    view: View<'_>,
    params: &SpreadParams,
    exhausted: &[[bool; 3]; LANES],
    s: &mut LaneScratch,
    par: Par<'_>,
) -> Marks {
    let p = *params;
    let tiers = view.tiers();
    let reverberate = p.cycle_policy == crate::config::CyclePolicy::Reverberate;
    // Per tier, the lanes that may fire in it.
    let open: [[bool; LANES]; 3] = std::array::from_fn(|t| std::array::from_fn(|lane| !exhausted[lane][t]));
    let body = |base: usize, next: &mut [f32], send: &mut [f32], fired: &mut [bool]| {
        let mut counts = [[0u32; LANES]; 3];
        let mut edges = [[0u64; LANES]; 3];
        let nodes =
            next.chunks_exact_mut(LANES).zip(send.chunks_exact_mut(LANES)).zip(fired.chunks_exact_mut(LANES));
        for (i, ((next, send), fired)) in nodes.enumerate() {
            if next.iter().all(|&x| x == 0.0) {
                send.fill(0.0);
                continue;
            }
            let u = base + i;
            let (degree, tier) = (view.out_degree(u), tiers[u]);
            let t = tier.index();
            let fans_out = p.max_fan_out == 0 || degree <= p.max_fan_out as usize;
            let (open, counts, edges) = (&open[t], &mut counts[t], &mut edges[t]);
            for lane in 0..LANES {
                let x = next[lane];
                next[lane] = 0.0;
                // `fires` (step.rs), as one expression per lane.
                let fire =
                    fans_out & (x > 0.0) & (x >= p.threshold) & (reverberate | !fired[lane]) & open[lane];
                // Arithmetic rather than branches (which lane fires is data, and mispredicts):
                // x · decay · 1 is x · decay exactly, and x · decay · 0 is 0 (x is finite).
                send[lane] = x * p.decay * f32::from(u8::from(fire));
                fired[lane] |= fire;
                counts[lane] += u32::from(fire);
                edges[lane] += degree as u64 & u64::from(fire).wrapping_neg();
            }
        }
        (counts, edges)
    };
    let e = par.chunk * LANES;
    let (counts, edges) = match par.pool {
        Some(pool) => pool.install(|| {
            (s.next.par_chunks_mut(e), s.send.par_chunks_mut(e), s.fired.par_chunks_mut(e))
                .into_par_iter()
                .enumerate()
                .map(|(k, (nx, sd, f))| body(k * par.chunk, nx, sd, f))
                .reduce(|| ([[0; LANES]; 3], [[0; LANES]; 3]), add_marks)
        }),
        None => body(0, &mut s.next, &mut s.send, &mut s.fired),
    };
    // Per lane, then tier.
    (
        std::array::from_fn(|lane| std::array::from_fn(|t| counts[t][lane])),
        std::array::from_fn(|lane| std::array::from_fn(|t| edges[t][lane])),
    )
}

/// Frontier counts and out-edges per tier and lane, of one marking's chunks.
type TierMarks = ([[u32; LANES]; 3], [[u64; LANES]; 3]);

fn add_marks(mut a: TierMarks, b: TierMarks) -> TierMarks {
    for t in 0..3 {
        for lane in 0..LANES {
            a.0[t][lane] += b.0[t][lane];
            a.1[t][lane] += b.1[t][lane];
        }
    }
    a
}

fn add_delivered(sum: &mut [u64; LANES], got: [u64; LANES]) {
    for (sum, got) in sum.iter_mut().zip(got) {
        *sum = sum.saturating_add(got);
    }
}

/// A push for every lane: each node of `tier` that sends in some lane, in id order, adds
/// `send · w` to its out-neighbours' lanes (a lane that does not send adds exact zeros), so each lane
/// gets its contributions in the order its own spread adds them. Inline: a sparse depth's work.
fn push(view: View<'_>, tier: Tier, s: &mut LaneScratch) {
    let tiers = view.tiers();
    for (u, from) in s.send.chunks_exact(LANES).enumerate() {
        if tiers[u] != tier || from.iter().all(|&y| y == 0.0) {
            continue;
        }
        let from: &[f32; LANES] = from.try_into().expect("a node's lanes");
        for (targets, weights) in view.out(u).parts() {
            for (&v, &w) in targets.iter().zip(weights) {
                let to: &mut [f32; LANES] =
                    (&mut s.next[v as usize * LANES..][..LANES]).try_into().expect("a node's lanes");
                for lane in 0..LANES {
                    to[lane] += from[lane] * w;
                }
            }
        }
    }
}

/// One pass over every node for every lane: with `csr`, that tier's pull (`next[v] += Σ send[u] ·
/// w` over v's in-edges from the tier, in CSR order); with `finishing` (the depth's last phase), the
/// depth's finish while the chunk is in cache, as a CPU spread finishes: x_{d+1} = min(1, next), A
/// and hops updated, `next` cleared. Returns each lane's delivered activation (`delivered_units`).
fn pass(
    csr: Option<&CsrView<'_>>,
    s: &mut LaneScratch,
    finishing: bool,
    hop: u8,
    par: Par<'_>,
) -> [u64; LANES] {
    let csr = csr.filter(|c| !c.offsets.is_empty());
    let send = &s.send;
    let body = |base: usize, next: &mut [f32], activation: &mut [f32], hops: &mut [u8]| {
        if let Some(csr) = csr {
            for (i, out) in next.chunks_exact_mut(LANES).enumerate() {
                let v = base + i;
                let (lo, hi) = (csr.offsets[v] as usize, csr.offsets[v + 1] as usize);
                let mut acc: [f32; LANES] = out.try_into().expect("a node's lanes");
                for (&u, &w) in csr.neighbours[lo..hi].iter().zip(&csr.weights[lo..hi]) {
                    let u = u as usize;
                    let from: &[f32; LANES] = send[u * LANES..][..LANES].try_into().expect("a node's lanes");
                    for lane in 0..LANES {
                        acc[lane] += from[lane] * w;
                    }
                }
                out.copy_from_slice(&acc);
            }
        }
        let mut delivered = [0u64; LANES];
        if finishing {
            finish(next, activation, hops, hop, &mut delivered);
        }
        delivered
    };
    let e = par.chunk * LANES;
    match par.pool {
        Some(pool) => pool.install(|| {
            (s.next.par_chunks_mut(e), s.activation.par_chunks_mut(e), s.hops.par_chunks_mut(e))
                .into_par_iter()
                .enumerate()
                .map(|(k, (nx, a, h))| body(k * par.chunk, nx, a, h))
                .reduce(
                    || [0; LANES],
                    |mut a, b| {
                        add_delivered(&mut a, b);
                        a
                    },
                )
        }),
        None => body(0, &mut s.next, &mut s.activation, &mut s.hops),
    }
}

/// Finish a depth over whole nodes (all lanes): the CPU's finish, lane by lane, without branches,
/// leaving x_{d+1} = min(1, next) in `next` for the next marking. A node nothing arrived at is
/// skipped (its lanes stay 0). Where x = 0, `A + x` is A (A ≥ +0) and nothing is counted, so the
/// unconditional update is the CPU's conditional one.
#[inline]
fn finish(next: &mut [f32], activation: &mut [f32], hops: &mut [u8], hop: u8, delivered: &mut [u64; LANES]) {
    let nodes = next
        .chunks_exact_mut(LANES)
        .zip(activation.chunks_exact_mut(LANES))
        .zip(hops.chunks_exact_mut(LANES));
    for ((next, activation), hops) in nodes {
        if next.iter().all(|&x| x == 0.0) {
            continue;
        }
        for lane in 0..LANES {
            let x = next[lane].min(1.0);
            next[lane] = x;
            activation[lane] = (activation[lane] + x).min(1.0);
            let arrived = x > 0.0;
            let first = arrived & (hops[lane] == UNREACHED);
            hops[lane] = if first { hop } else { hops[lane] };
            // `delivered_units(x)` where x > 0 (at least one unit), 0 where nothing arrived.
            let units = (x * DELIVERED_SCALE) as u32;
            delivered[lane] += u64::from(units.max(u32::from(arrived)));
        }
    }
}

/// Each lane's top `k` (every seed, and every node with A ≥ threshold) into its cue's results, and
/// its mass (Σ A over non-seeds, in fixed point) into its stats.
fn collect(view: View<'_>, threshold: f32, cues: &mut [DeviceCue<'_>], s: &LaneScratch, par: Par<'_>) {
    let ks: Vec<usize> = cues.iter().map(|c| c.k).collect();
    let lanes = cues.len();
    let body = |base: usize, activation: &[f32], hops: &[u8]| {
        let mut tops: Vec<TopK> = ks.iter().map(|&k| TopK::new(k, Vec::new())).collect();
        let mut units = [0u128; LANES];
        for (i, (a, h)) in activation.chunks_exact(LANES).zip(hops.chunks_exact(LANES)).enumerate() {
            let v = (base + i) as u32;
            for lane in 0..lanes {
                if a[lane] > 0.0 {
                    units[lane] += visit(v, a[lane], h[lane], threshold, &mut tops[lane]);
                }
            }
        }
        (units, tops.into_iter().map(TopK::into_keys).collect::<Vec<_>>())
    };
    let e = par.chunk.max(1 << 13) * LANES;
    let parts: Vec<([u128; LANES], Vec<Vec<u64>>)> = match par.pool {
        Some(pool) => pool.install(|| {
            (s.activation.par_chunks(e), s.hops.par_chunks(e))
                .into_par_iter()
                .enumerate()
                .map(|(k, (a, h))| body(k * (e / LANES), a, h))
                .collect()
        }),
        None => vec![body(0, &s.activation, &s.hops)],
    };
    let tiers = view.tiers();
    for (lane, cue) in cues.iter_mut().enumerate() {
        let mut top = TopK::new(cue.k, Vec::new());
        let mut units = 0u128;
        for (u, keys) in &parts {
            units += u[lane];
            keys[lane].iter().for_each(|&key| top.offer(key));
        }
        let mut keys = top.into_keys();
        super::keep_top_k(&mut keys, cue.k, u64::cmp);
        cue.results.clear();
        cue.results.extend(keys.iter().map(|&key| {
            let v = key as u32;
            let hops = s.hops[v as usize * LANES + lane];
            debug_assert_ne!(hops, UNREACHED);
            Activation {
                node: v,
                activation: key_activation(key),
                hops: u32::from(hops),
                tier: tiers[v as usize],
            }
        }));
        cue.stats.mass = units as f64 * (1.0 / MASS_SCALE);
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;
    use crate::config::CyclePolicy;
    use crate::graph::GraphBuilder;
    use crate::spread::{Execution, NoHook, Scratch, SpreadStats, normalise_seeds, spread_cpu};

    /// What must be the bits of a cue's own spread: results, depth stats, mass and delivery.
    fn bits(results: &[Activation], s: &SpreadStats) -> impl PartialEq + std::fmt::Debug + use<> {
        let results: Vec<_> =
            results.iter().map(|a| (a.node, a.activation.to_bits(), a.hops, a.tier)).collect();
        (
            results,
            s.depth_reached,
            s.nodes_fired,
            s.edges_traversed,
            s.mass.to_bits(),
            s.delivered.to_bits(),
            s.delivered_any,
        )
    }

    #[allow(clippy::too_many_arguments)]
    fn check(
        n: u32,
        edges: &[(u32, u32, u32)],
        tiers: &[u8],
        cues: &[Vec<(u32, u32)>],
        k: usize,
        depth: u32,
        threshold: f32,
        fan_out: u32,
        reverberate: bool,
    ) {
        let mut b = GraphBuilder::new(n);
        for &(s, d, w) in edges {
            b.add_edge(s % n, d % n, w as f32 / 10.0).unwrap();
        }
        for (v, &t) in tiers.iter().enumerate().take(n as usize) {
            b.set_tier(v as u32, Tier::ALL[t as usize % 3]).unwrap();
        }
        let graph = b.build().unwrap();
        let view = graph.view();
        let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build().unwrap();
        let params = |execution| SpreadParams {
            max_depth: depth,
            decay: 0.8,
            threshold,
            max_fan_out: fan_out,
            cycle_policy: if reverberate { CyclePolicy::Reverberate } else { CyclePolicy::FireOnce },
            batch_size: 1,
            tier_timeouts: [None; 3],
            execution,
        };
        let seeds: Vec<Vec<(u32, f32)>> = cues
            .iter()
            .map(|c| {
                let raw: Vec<(u32, f32)> = c.iter().map(|&(v, a)| (v % n, a as f32 / 4.0)).collect();
                let mut merged = Vec::new();
                normalise_seeds(view, &raw, &mut merged).unwrap();
                merged
            })
            .collect();
        let mut scratch = Scratch::default();
        scratch.resize(n as usize);
        let alone: Vec<_> = seeds
            .iter()
            .map(|s| {
                let mut out = Vec::new();
                let stats = spread_cpu(
                    view,
                    &params(Execution::default()),
                    s,
                    k,
                    &mut scratch,
                    None,
                    &NoHook,
                    &mut out,
                );
                bits(&out, &stats)
            })
            .collect();
        // One thread, and two in chunks of 64 nodes (every pass split); every depth pushed, every
        // depth pulled, and as the switch decides.
        let split = |e: Execution| Execution { parallel_min_work: 0, nodes_per_batch_unit: 8, ..e };
        let runs = [
            (None, Execution::default()),
            (None, Execution::push_only()),
            (Some(&pool), split(Execution::pull_every_depth())),
            (Some(&pool), split(Execution::default())),
        ];
        let mut lanes = LaneScratch::default();
        for (pool, execution) in runs {
            lanes.prepare(n as usize).unwrap();
            let mut outs = vec![Vec::new(); seeds.len()];
            let mut group: Vec<DeviceCue<'_>> = seeds
                .iter()
                .zip(&mut outs)
                .map(|(s, results)| DeviceCue { seeds: s, k, results, stats: SpreadStats::default() })
                .collect();
            spread_lanes(&graph, &params(execution), &mut group, &mut lanes, pool, &NoHook);
            for (i, cue) in group.iter().enumerate() {
                assert_eq!(bits(cue.results, &cue.stats), alone[i], "cue {i}, pool {}", pool.is_some());
                assert_eq!(cue.stats.shared_lanes, seeds.len() as u32);
            }
            assert!(lanes.next.iter().chain(&lanes.activation).all(|&x| x == 0.0));
            assert!(lanes.hops.iter().all(|&h| h == UNREACHED) && !lanes.fired.contains(&true));
        }
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

        #[test]
        fn lanes_answer_each_cue_as_its_own_spread(
            n in 1u32..400,
            edges in proptest::collection::vec((0u32..400, 0u32..400, 1u32..=10), 0..3000),
            tiers in proptest::collection::vec(0u8..3, 0..400),
            cues in proptest::collection::vec(proptest::collection::vec((0u32..400, 1u32..=4), 1..30), 1..=LANES),
            k in prop_oneof![Just(usize::MAX), 1usize..20],
            depth in 1u32..7,
            threshold in prop_oneof![Just(0.0f32), Just(0.01), Just(0.2)],
            fan_out in prop_oneof![Just(0u32), 1u32..12],
            reverberate in any::<bool>(),
        ) {
            check(n, &edges, &tiers, &cues, k, depth, threshold, fan_out, reverberate);
        }
    }

    /// Sleeps before every cold-tier phase.
    struct SlowCold;

    impl PhaseHook for SlowCold {
        fn before_tier(&self, tier: Tier) {
            if tier == Tier::Cold {
                std::thread::sleep(std::time::Duration::from_millis(30));
            }
        }
    }

    #[test]
    fn a_lane_is_charged_only_the_tiers_it_has_work_in() {
        // Nodes 0..20 hot, a ring; nodes 20..40 cold, a ring. Lane 0 spreads in the hot ring only.
        let mut b = GraphBuilder::new(40);
        for v in 0..20 {
            b.add_edge(v, (v + 1) % 20, 0.9).unwrap();
            b.add_edge(20 + v, 20 + (v + 1) % 20, 0.9).unwrap();
            b.set_tier(20 + v, Tier::Cold).unwrap();
        }
        let graph = b.build().unwrap();
        let mut params = SpreadParams::from(&crate::config::EngineConfig::default().spreading);
        params.tier_timeouts = [Some(std::time::Duration::from_millis(10)), None, None];
        let mut lanes = LaneScratch::default();
        lanes.prepare(40).unwrap();
        let (mut hot, mut cold) = (Vec::new(), Vec::new());
        let mut group = [
            DeviceCue { seeds: &[(0, 1.0)], k: 10, results: &mut hot, stats: SpreadStats::default() },
            DeviceCue { seeds: &[(20, 1.0)], k: 10, results: &mut cold, stats: SpreadStats::default() },
        ];
        spread_lanes(&graph, &params, &mut group, &mut lanes, None, &SlowCold);
        let (hot, cold) = (&group[0].stats, &group[1].stats);
        assert!(
            !hot.truncated && !hot.tier_timed_out[0],
            "the cold phase's delay is not the hot lane's: {hot:?}"
        );
        assert!(hot.tier_time[0] < std::time::Duration::from_millis(10));
        assert_eq!(hot.tier_time[2], std::time::Duration::ZERO);
        assert!(cold.tier_time[2] >= std::time::Duration::from_millis(30 * cold.depth_reached as u64));
        assert_eq!((hot.depth_reached, cold.depth_reached), (3, 3));
    }

    #[test]
    fn a_scratch_left_dirty_by_a_panic_is_cleared_before_the_next_group() {
        let mut b = GraphBuilder::new(50);
        (0..50).for_each(|v| b.add_edge(v, (v * 7 + 1) % 50, 0.9).unwrap());
        let graph = b.build().unwrap();
        let params = SpreadParams::from(&crate::config::EngineConfig::default().spreading);
        let run = |lanes: &mut LaneScratch| {
            let mut out = Vec::new();
            let mut group =
                [DeviceCue { seeds: &[(2, 1.0)], k: 100, results: &mut out, stats: SpreadStats::default() }];
            spread_lanes(&graph, &params, &mut group, lanes, None, &NoHook);
            let stats = group[0].stats;
            bits(&out, &stats)
        };
        let mut clean = LaneScratch::default();
        clean.prepare(50).unwrap();
        let expected = run(&mut clean);
        // What a spread that panicked half-way leaves: stale activation, hops, frontier and sends.
        let mut dirty = LaneScratch::default();
        dirty.prepare(50).unwrap();
        for j in [0, 17, 9 * LANES, 30 * LANES + 3] {
            (dirty.activation[j], dirty.send[j], dirty.next[j]) = (0.5, 0.4, 0.3);
            (dirty.hops[j], dirty.fired[j]) = (1, true);
        }
        dirty.dirty = true;
        assert_eq!(run(&mut dirty), expected);
    }
}

//! One shard of a graph partitioned by destination, for spreading across processes or hosts
//! (docs/spec.md §20): the shard owns the nodes `lo..hi`, holds their in-edges in the canonical order
//! and runs one depth at a time — mark its frontier, then gather what the whole frontier sends into
//! its nodes and finish the depth. A coordinator exchanges the frontiers between the supersteps.
//!
//! Every node's in-edges are the whole graph's, in the same order (source tier, source id, insertion
//! order), and every per-node rule is the single engine's, so a sharded recall's activations, hops,
//! result order, per-depth counts, mass and delivered are bit-identical to [`crate::Engine`]'s on
//! the same graph: sums that cross shards (mass, delivered, counts) are integers.
//!
//! Tier timeouts are not judged per shard: a sharded recall runs every depth (its coordinator
//! bounds the whole call instead).

use crate::config::CyclePolicy;
use crate::error::{Error, Result};
use crate::graph::{Graph, Tier};
use crate::spread::{self, Activation, MAX_DEPTH, SpreadParams, UNREACHED};

/// The rows of a CSR for the shard's own nodes; neighbours are global ids.
#[derive(Debug, Default)]
struct Rows {
    offsets: Vec<u32>,
    neighbours: Vec<u32>,
    weights: Vec<f32>,
}

impl Rows {
    fn range(&self, i: usize) -> std::ops::Range<usize> {
        self.offsets[i] as usize..self.offsets[i + 1] as usize
    }

    fn bytes(&self) -> usize {
        4 * (self.offsets.len() + self.neighbours.len() + self.weights.len())
    }
}

/// A frontier as the coordinator exchanges it: the fired nodes of every shard, hot tier first, each
/// tier in ascending id order, with the activation each one sends (x · decay).
#[derive(Debug, Clone, Copy)]
pub struct FrontierView<'a> {
    /// Global node ids.
    pub ids: &'a [u32],
    /// What each node sends along every out-edge, before the edge's weight.
    pub sends: &'a [f32],
    /// Where the hot, warm and cold parts end in `ids`.
    pub tier_ends: [usize; 3],
}

/// What a shard's marking of one depth found: its fired nodes, in the exchange order.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Marked {
    /// Fired node ids, hot tier first, ascending within a tier.
    pub ids: Vec<u32>,
    /// x · decay of each.
    pub sends: Vec<f32>,
    /// Where each tier's part ends in `ids`.
    pub tier_ends: [usize; 3],
    /// Out-edges of the fired nodes (the whole graph's, not only into this shard).
    pub edges: u64,
}

impl Marked {
    /// The whole frontier from every shard's marking, shards in ascending range order: hot tier
    /// first, each tier in ascending id order (the order every shard gathers in), and the summed
    /// out-edges.
    pub fn merge(parts: &[Marked]) -> Marked {
        let mut merged = Marked::default();
        for t in 0..3 {
            for part in parts {
                let start = if t == 0 { 0 } else { part.tier_ends[t - 1] };
                merged.ids.extend_from_slice(&part.ids[start..part.tier_ends[t]]);
                merged.sends.extend_from_slice(&part.sends[start..part.tier_ends[t]]);
            }
            merged.tier_ends[t] = merged.ids.len();
        }
        merged.edges = parts.iter().map(|p| p.edges).sum();
        merged
    }

    /// Append per-tier lists of (id, send), hot tier first, setting the tier ends.
    fn fill(&mut self, lists: &[Vec<(u32, f32)>; 3]) {
        for (t, list) in lists.iter().enumerate() {
            for &(v, y) in list {
                self.ids.push(v);
                self.sends.push(y);
            }
            self.tier_ends[t] = self.ids.len();
        }
    }

    /// The frontier as [`Shard::gather`] reads it.
    pub fn view(&self) -> FrontierView<'_> {
        FrontierView { ids: &self.ids, sends: &self.sends, tier_ends: self.tier_ends }
    }
}

/// A shard's part of a finished recall.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Collected {
    /// Its best `k` results, best first (activation descending, then id ascending).
    pub results: Vec<Activation>,
    /// Σ activation over its non-seed nodes, in units of 2⁻⁴⁰ (summed over shards as integers).
    pub mass_units: u128,
}

/// One shard: its nodes' in-edges, out-degrees and tiers, and the state of the recall in progress.
#[derive(Debug)]
pub struct Shard {
    lo: u32,
    hi: u32,
    node_count: u32,
    edge_count: u64,
    out_degree: Vec<u32>,
    tiers: Vec<Tier>,
    /// In-edges of each own node whose source is in tier t, by source id then insertion order.
    reverse: [Rows; 3],
    /// The same edges by source (for pushes): `sources` sorted, each one's edges in insertion order,
    /// neighbours as local indices.
    sources: Vec<u32>,
    forward: Rows,
    /// Pull when the frontier's out-edges × this reach the graph's edges (see [`PULL_SHARE`]).
    pull_share: u64,
    state: State,
}

/// A shard pulls a depth when the frontier's out-edges are at least 1/`PULL_SHARE` of the graph's
/// edges, and pushes it otherwise (the answer is the same). A push into a shard costs a lookup per
/// frontier node and a scattered add per edge into this shard; a pull reads every in-edge of the
/// shard. Calibrated by `cargo bench -p axonal-core --bench spreading -- shard` (docs/performance.md,
/// "Beyond one machine"): on BA 1 M split in two, a pull costs about the same at every depth
/// (20–26 ms) while a push grows with its edges (6 ms at 1/105 of them, 42 ms at 1/7), so they
/// cross near 1/32.
pub const PULL_SHARE: u64 = 32;

/// A marking visits every node of the shard in id order, instead of sorting its active list, when
/// at least 1/`DENSE_MARK` of the nodes are active (a pass reads 4 B a node sequentially; a sort
/// costs about log₂ n compares an entry).
const DENSE_MARK: usize = 16;

#[derive(Debug, Default)]
struct State {
    params: Option<SpreadParams>,
    depth: usize,
    current: Vec<f32>,
    activation: Vec<f32>,
    hops: Vec<u8>,
    fired: Vec<bool>,
    next: Vec<f32>,
    /// Local nodes with x_d > 0 (the next marking's candidates).
    active: Vec<u32>,
    next_active: Vec<u32>,
    /// Local nodes with hops set (seeds and reached nodes): what collection and reset visit.
    reached: Vec<u32>,
    /// Set by a pull (it touches every node): from then on `active` and `reached` are not kept, and
    /// marking, collection and reset pass over every node.
    whole: bool,
    fired_list: Vec<u32>,
    /// Dense `send` over all global nodes for pulls (allocated on the first pull).
    send: Vec<f32>,
    /// Delivered activation so far, in the engine's units of 2⁻³⁰.
    delivered: u64,
}

impl Shard {
    /// The shard of `graph` owning nodes `lo..hi`: copies their in-edges, out-degrees and tiers (a
    /// mapped snapshot is read only there). The graph must have no pending changes (a `Graph` never
    /// has: an engine's pending changes are folded by saving a snapshot).
    pub fn from_graph(graph: &Graph, lo: u32, hi: u32) -> Result<Shard> {
        let n = graph.node_count() as u32;
        if lo > hi || hi > n {
            return Err(Error::config(
                "shard",
                format!("range {lo}..{hi} is not within the graph's {n} nodes"),
            ));
        }
        let owned = (hi - lo) as usize;
        let (lo_u, hi_u) = (lo as usize, hi as usize);
        let out_degree = (lo..hi).map(|v| graph.out_degree(v) as u32).collect();
        let tiers = graph.tiers[lo_u..hi_u].to_vec();
        let reverse = Tier::ALL.map(|t| {
            let csr = &graph.reverse[t.index()];
            if csr.offsets.is_empty() {
                return Rows { offsets: vec![0; owned + 1], ..Rows::default() };
            }
            let (first, last) = (csr.offsets[lo_u] as usize, csr.offsets[hi_u] as usize);
            Rows {
                offsets: csr.offsets[lo_u..=hi_u].iter().map(|&o| o - first as u32).collect(),
                neighbours: csr.neighbours[first..last].to_vec(),
                weights: csr.weights[first..last].to_vec(),
            }
        });
        // By source: a stable sort of (source, local destination) keeps each (source, destination)
        // pair's edges in insertion order, the only order a push into one node depends on.
        let mut edges: Vec<(u32, u32, f32)> =
            Vec::with_capacity(reverse.iter().map(|r| r.neighbours.len()).sum());
        for rows in &reverse {
            for i in 0..owned {
                let range = rows.range(i);
                edges.extend(
                    rows.neighbours[range.clone()]
                        .iter()
                        .zip(&rows.weights[range])
                        .map(|(&u, &w)| (u, i as u32, w)),
                );
            }
        }
        edges.sort_by_key(|&(u, _, _)| u);
        let mut sources = Vec::new();
        let mut forward = Rows { offsets: vec![0], ..Rows::default() };
        for &(u, i, w) in &edges {
            if sources.last() != Some(&u) {
                if !sources.is_empty() {
                    forward.offsets.push(forward.neighbours.len() as u32);
                }
                sources.push(u);
            }
            forward.neighbours.push(i);
            forward.weights.push(w);
        }
        if !sources.is_empty() {
            forward.offsets.push(forward.neighbours.len() as u32);
        }
        let state = State {
            current: vec![0.0; owned],
            activation: vec![0.0; owned],
            hops: vec![UNREACHED; owned],
            fired: vec![false; owned],
            next: vec![0.0; owned],
            ..State::default()
        };
        Ok(Shard {
            lo,
            hi,
            node_count: n,
            edge_count: graph.edge_count() as u64,
            out_degree,
            tiers,
            reverse,
            sources,
            forward,
            pull_share: PULL_SHARE,
            state,
        })
    }

    /// Pull a depth when the frontier's out-edges × `share` reach the graph's edges (0: always
    /// push, `u64::MAX`: always pull); answers do not depend on it. Default [`PULL_SHARE`].
    pub fn set_pull_share(&mut self, share: u64) {
        self.pull_share = share;
    }

    /// The nodes this shard owns.
    pub fn range(&self) -> std::ops::Range<u32> {
        self.lo..self.hi
    }

    /// Nodes of the whole graph.
    pub fn node_count(&self) -> u32 {
        self.node_count
    }

    /// Edges of the whole graph.
    pub fn edge_count(&self) -> u64 {
        self.edge_count
    }

    /// Edges this shard holds (the in-edges of its nodes).
    pub fn in_edge_count(&self) -> usize {
        self.forward.neighbours.len()
    }

    /// Bytes held by the shard's edges, per-node arrays and recall state.
    pub fn memory_bytes(&self) -> usize {
        let owned = (self.hi - self.lo) as usize;
        self.reverse.iter().map(Rows::bytes).sum::<usize>()
            + self.forward.bytes()
            + 4 * self.sources.len()
            + owned * (4 + 1 + 4 + 4 + 1 + 1 + 4)
            + 4 * self.state.send.len()
    }

    /// Start a recall: `seeds` are the whole cue's seeds as [`spread::normalise_seeds`] leaves them
    /// (unique, ascending, activation in (0, 1]); the shard keeps its own. Any recall in progress is
    /// abandoned.
    pub fn begin(&mut self, params: &SpreadParams, seeds: &[(u32, f32)]) -> Result<()> {
        check_normalised(self.node_count, seeds)?;
        self.reset();
        let s = &mut self.state;
        s.params = Some(*params);
        let lo = seeds.partition_point(|&(v, _)| v < self.lo);
        let hi = seeds.partition_point(|&(v, _)| v < self.hi);
        for &(v, a) in &seeds[lo..hi] {
            let i = (v - self.lo) as usize;
            s.current[i] = a;
            s.activation[i] = a;
            s.hops[i] = 0;
            s.reached.push(i as u32);
            s.active.push(i as u32);
        }
        Ok(())
    }

    /// Start a recall whose first frontier the coordinator computed ([`seed_frontier`]), so the
    /// first superstep needs no round of its own: [`Shard::begin`], then this shard's marking, which
    /// must be the frontier's part in this shard's range (bit for bit: a shard built from another
    /// graph than the coordinator's is refused). [`Shard::gather`] of `frontier` follows.
    pub fn begin_at(
        &mut self,
        params: &SpreadParams,
        seeds: &[(u32, f32)],
        frontier: FrontierView<'_>,
    ) -> Result<()> {
        self.check_frontier(&frontier)?;
        self.begin(params, seeds)?;
        let own = self.mark()?;
        let mut start = 0;
        for (t, &end) in frontier.tier_ends.iter().enumerate() {
            let ids = &frontier.ids[start..end];
            let (from, to) = (ids.partition_point(|&v| v < self.lo), ids.partition_point(|&v| v < self.hi));
            let own_start = if t == 0 { 0 } else { own.tier_ends[t - 1] };
            let own_ids = &own.ids[own_start..own.tier_ends[t]];
            let own_sends = &own.sends[own_start..own.tier_ends[t]];
            let sends = &frontier.sends[start + from..start + to];
            if own_ids != &ids[from..to]
                || own_sends.iter().zip(sends).any(|(a, b)| a.to_bits() != b.to_bits())
            {
                self.reset();
                return Err(Error::cue(
                    "frontier",
                    format!(
                        "the seeds' frontier in nodes {}..{} is not this shard's marking of them \
                         (a coordinator and a shard built from different graphs?)",
                        self.lo, self.hi
                    ),
                ));
            }
            start = end;
        }
        Ok(())
    }

    /// Mark this depth's frontier among the shard's nodes (docs/spec.md §3's firing rule) and publish
    /// what each fired node sends. Empty when the recall has reached `max_depth`.
    pub fn mark(&mut self) -> Result<Marked> {
        let s = &mut self.state;
        let params =
            s.params.ok_or_else(|| Error::cue("shard", "no recall in progress (call begin first)"))?;
        let mut marked = Marked::default();
        if s.depth >= (params.max_depth as usize).min(MAX_DEPTH) {
            s.active.clear();
            return Ok(marked);
        }
        let mut active = std::mem::take(&mut s.active);
        let owned = s.current.len();
        let mut lists: [Vec<(u32, f32)>; 3] = Default::default();
        let mut visit = |i: usize| {
            let x = s.current[i];
            if x == 0.0 {
                return; // not active (only in a pass over every node)
            }
            s.current[i] = 0.0;
            let (degree, tier) = (self.out_degree[i] as usize, self.tiers[i]);
            if !spread::fires(&params, &[false; 3], x, degree, tier, s.fired[i]) {
                return;
            }
            if !s.fired[i] {
                s.fired[i] = true;
                s.fired_list.push(i as u32);
            }
            lists[tier.index()].push((self.lo + i as u32, x * params.decay));
            marked.edges += degree as u64;
        };
        // The active nodes are exactly those with x > 0, each once. Many of them: one pass over the
        // shard's nodes in id order (sequential reads) instead of sorting the list.
        if s.whole || active.len().saturating_mul(DENSE_MARK) >= owned {
            (0..owned).for_each(&mut visit);
        } else {
            active.sort_unstable();
            active.iter().for_each(|&i| visit(i as usize));
        }
        active.clear();
        s.active = active;
        marked.fill(&lists);
        Ok(marked)
    }

    /// Gather what the whole frontier of this depth sends into the shard's nodes (in the canonical
    /// order) and finish the depth: x_{d+1} = min(1, Σ), A and hops updated. `work` is the frontier's
    /// out-edges over the whole graph (it picks push or pull; the answer is the same). Returns the
    /// activation delivered to this shard at this depth, in units of 2⁻³⁰.
    pub fn gather(&mut self, frontier: FrontierView<'_>, work: u64) -> Result<u64> {
        self.check_frontier(&frontier)?;
        let params = self
            .state
            .params
            .ok_or_else(|| Error::cue("shard", "no recall in progress (call begin first)"))?;
        let depth = self.state.depth;
        if depth >= (params.max_depth as usize).min(MAX_DEPTH) {
            return Err(Error::cue("shard", format!("the recall has run its {} depths", params.max_depth)));
        }
        let hop = depth as u8 + 1;
        let pull = !frontier.ids.is_empty() && work.saturating_mul(self.pull_share) >= self.edge_count;
        let delivered = if pull { self.pull(&frontier, hop) } else { self.push(&frontier, hop) };
        self.state.depth += 1;
        self.state.delivered = self.state.delivered.saturating_add(delivered);
        Ok(delivered)
    }

    /// Gather the last depth's frontier and end the recall ([`Shard::collect`]): a coordinator that
    /// knows no frontier follows (the recall's last depth, or an empty frontier: nothing is gathered)
    /// saves a round. Before the last depth a non-empty frontier is an error, and nothing changes.
    pub fn gather_and_collect(
        &mut self,
        frontier: FrontierView<'_>,
        work: u64,
        k: usize,
    ) -> Result<(u64, Collected)> {
        let delivered = if frontier.ids.is_empty() {
            0
        } else {
            let (depth, last) = match self.state.params {
                Some(p) => (self.state.depth + 1, (p.max_depth as usize).min(MAX_DEPTH)),
                None => return Err(Error::cue("shard", "no recall in progress (call begin first)")),
            };
            if depth < last {
                return Err(Error::cue(
                    "collect",
                    format!("depth {depth} of {last} is not the last: the recall goes on after it"),
                ));
            }
            self.gather(frontier, work)?
        };
        Ok((delivered, self.collect(k)?))
    }

    fn check_frontier(&self, f: &FrontierView<'_>) -> Result<()> {
        let bad = |message: String| Err(Error::cue("frontier", message));
        if f.ids.len() != f.sends.len() {
            return bad(format!("{} ids but {} sends", f.ids.len(), f.sends.len()));
        }
        if f.tier_ends[0] > f.tier_ends[1] || f.tier_ends[1] > f.tier_ends[2] || f.tier_ends[2] != f.ids.len()
        {
            return bad(format!("tier ends {:?} do not split {} ids", f.tier_ends, f.ids.len()));
        }
        let mut start = 0;
        for &end in &f.tier_ends {
            let part = &f.ids[start..end];
            if let Some(&v) = part.iter().find(|&&v| v >= self.node_count) {
                return bad(format!("node {v} out of range (graph has {} nodes)", self.node_count));
            }
            if let Some(w) = part.windows(2).find(|w| w[0] >= w[1]) {
                return bad(format!("ids within a tier must ascend ({} then {})", w[0], w[1]));
            }
            start = end;
        }
        // 0 is a send: with threshold 0 a subnormal activation fires and x · decay can round to 0.
        if let Some(&y) = f.sends.iter().find(|y| !(y.is_finite() && **y >= 0.0)) {
            return bad(format!("send {y} must be finite and not negative"));
        }
        Ok(())
    }

    /// Push: each frontier node, hot tier first and in id order, adds to its out-neighbours here.
    fn push(&mut self, f: &FrontierView<'_>, hop: u8) -> u64 {
        let s = &mut self.state;
        let mut start = 0;
        for &end in &f.tier_ends {
            // A tier's ids ascend: each one is looked up from where the last one was found.
            let mut from = 0;
            for (&u, &y) in f.ids[start..end].iter().zip(&f.sends[start..end]) {
                from = gallop(&self.sources, from, u);
                if self.sources.get(from) != Some(&u) {
                    continue;
                }
                let range = self.forward.range(from);
                for (&i, &w) in
                    self.forward.neighbours[range.clone()].iter().zip(&self.forward.weights[range])
                {
                    let slot = &mut s.next[i as usize];
                    if *slot == 0.0 {
                        s.next_active.push(i);
                    }
                    *slot += y * w;
                }
            }
            start = end;
        }
        let touched = std::mem::take(&mut s.next_active);
        let delivered = touched.iter().map(|&i| s.finish(i as usize, hop)).sum();
        s.next_active = touched;
        s.next_active.clear();
        delivered
    }

    /// Pull: every own node gathers from its in-edges, tier by tier, the frontier's sends.
    fn pull(&mut self, f: &FrontierView<'_>, hop: u8) -> u64 {
        let s = &mut self.state;
        if s.send.len() != self.node_count as usize {
            s.send = vec![0.0; self.node_count as usize];
        }
        for (&u, &y) in f.ids.iter().zip(f.sends) {
            s.send[u as usize] = y;
        }
        let mut start = 0;
        for (t, &end) in f.tier_ends.iter().enumerate() {
            if end > start {
                let rows = &self.reverse[t];
                for (i, slot) in s.next.iter_mut().enumerate() {
                    let range = rows.range(i);
                    let mut acc = *slot;
                    for (&u, &w) in rows.neighbours[range.clone()].iter().zip(&rows.weights[range]) {
                        acc += s.send[u as usize] * w;
                    }
                    *slot = acc;
                }
            }
            start = end;
        }
        for &u in f.ids {
            s.send[u as usize] = 0.0;
        }
        // Every node was gathered: finish them all in one pass, as the engine's pull does, and
        // stop keeping the lists (marking, collection and reset pass over every node from now).
        s.whole = true;
        s.active.clear();
        s.reached.clear();
        let mut delivered = 0u64;
        for i in 0..s.next.len() {
            let x = s.next[i].min(1.0);
            s.next[i] = 0.0;
            if x > 0.0 {
                s.current[i] = x;
                s.activation[i] = (s.activation[i] + x).min(1.0);
                if s.hops[i] == UNREACHED {
                    s.hops[i] = hop;
                }
                delivered += spread::delivered_units(x);
            }
        }
        delivered
    }

    /// The recall's delivered activation so far (units of 2⁻³⁰) and depths run.
    pub fn progress(&self) -> (u64, usize) {
        (self.state.delivered, self.state.depth)
    }

    /// End the recall: the shard's best `k` results and its mass; the state is cleared.
    pub fn collect(&mut self, k: usize) -> Result<Collected> {
        let params = self
            .state
            .params
            .ok_or_else(|| Error::cue("shard", "no recall in progress (call begin first)"))?;
        let s = &self.state;
        // A bounded buffer, as the engine's collection: a large recall for a small k keeps little.
        let mut top = spread::TopK::new(k, Vec::new());
        let mut units = 0u128;
        let mut visit = |i: usize| {
            let (a, h) = (s.activation[i], s.hops[i]);
            if a > 0.0 {
                let (qualifies, mass) = spread::result_entry(a, h, params.threshold);
                if qualifies {
                    top.offer(spread::order_key(self.lo + i as u32, a));
                }
                units += mass;
            }
        };
        // Many reached nodes: one pass in node order reads the arrays sequentially (the list holds
        // them in the order they were reached).
        if s.dense() {
            (0..s.activation.len()).for_each(&mut visit);
        } else {
            s.reached.iter().for_each(|&i| visit(i as usize));
        }
        let mut keys = top.into_keys();
        spread::keep_top_k(&mut keys, k, u64::cmp);
        let results = keys
            .iter()
            .map(|&key| {
                let i = (key as u32 - self.lo) as usize;
                Activation {
                    node: key as u32,
                    activation: s.activation[i],
                    hops: s.hops[i] as u32,
                    tier: self.tiers[i],
                }
            })
            .collect();
        self.reset();
        Ok(Collected { results, mass_units: units })
    }

    /// Clear every array of the recall state, whatever the last recall left: after a panic in the
    /// middle of a depth the lists may not name everything it touched (`next`, `send`).
    pub fn clear(&mut self) {
        self.reset();
        let s = &mut self.state;
        s.activation.fill(0.0);
        s.current.fill(0.0);
        s.hops.fill(UNREACHED);
        s.fired.fill(false);
        s.next.fill(0.0);
        s.send.fill(0.0);
    }

    /// Clear the recall state (only what the last recall touched).
    pub fn reset(&mut self) {
        let s = &mut self.state;
        if s.dense() {
            s.activation.fill(0.0);
            s.current.fill(0.0);
            s.hops.fill(UNREACHED);
        } else {
            for &i in &s.reached {
                let i = i as usize;
                s.activation[i] = 0.0;
                s.current[i] = 0.0;
                s.hops[i] = UNREACHED;
            }
        }
        for &i in &s.fired_list {
            s.fired[i as usize] = false;
        }
        s.reached.clear();
        s.fired_list.clear();
        s.active.clear();
        s.next_active.clear();
        s.whole = false;
        s.depth = 0;
        s.delivered = 0;
        s.params = None;
    }

    /// The configured cycle policy of the recall in progress (tests).
    pub fn cycle_policy(&self) -> Option<CyclePolicy> {
        self.state.params.map(|p| p.cycle_policy)
    }
}

impl State {
    /// Whether the recall reached so many nodes that whole-array passes beat walking the list.
    fn dense(&self) -> bool {
        self.whole || self.reached.len().saturating_mul(8) >= self.activation.len()
    }

    /// x = min(1, next[i]); update A, hops and the lists as the engine's depth finish does. Returns
    /// the delivered units.
    #[inline]
    fn finish(&mut self, i: usize, hop: u8) -> u64 {
        let x = self.next[i].min(1.0);
        self.next[i] = 0.0;
        if x <= 0.0 {
            return 0;
        }
        self.current[i] = x;
        if !self.whole {
            self.active.push(i as u32);
        }
        self.activation[i] = (self.activation[i] + x).min(1.0);
        if self.hops[i] == UNREACHED {
            self.hops[i] = hop;
            if !self.whole {
                self.reached.push(i as u32);
            }
        }
        spread::delivered_units(x)
    }
}

/// The first index at or after `from` whose value in the ascending `sorted` is at least `x`: steps
/// of 1, 2, 4, … from `from`, then a binary search within the last step (a run of ascending lookups
/// costs about log₂ of the gaps between them, not log₂ of the whole list each).
fn gallop(sorted: &[u32], from: usize, x: u32) -> usize {
    let (mut lo, mut step) = (from, 1);
    while lo + step <= sorted.len() && sorted[lo + step - 1] < x {
        lo += step;
        step *= 2;
    }
    let hi = (lo + step).min(sorted.len());
    lo + sorted[lo..hi].partition_point(|&v| v < x)
}

/// What a node costs a recall, in in-edges: its in-edges are read at every pull, and the node itself
/// is finished, marked, collected and reset — passes over several per-node arrays. Fitted on BA 1 M
/// split at three different cuts (`tests/python/bench_ray.py`; docs/performance.md "Beyond one
/// machine"): about 10 in-edges a node over a whole recall.
pub const NODE_WEIGHT: u64 = 10;

/// Ranges `lo..hi` splitting `graph`'s nodes into `count` contiguous shards of about equal work:
/// the cuts split Σ (in-degree + [`NODE_WEIGHT`]) evenly, each at the node boundary nearest its
/// share. A range may be empty when one node outweighs a share.
pub fn balanced_ranges(graph: &Graph, count: u32) -> Result<Vec<(u32, u32)>> {
    let n = graph.node_count() as u32;
    if count == 0 || count > n.max(1) {
        return Err(Error::config("shards", format!("{count} shards for a graph of {n} nodes")));
    }
    let in_edges_before = |v: u32| -> u64 {
        graph.reverse.iter().map(|csr| csr.offsets.get(v as usize).map_or(0, |&o| u64::from(o))).sum()
    };
    let work_before = |v: u32| in_edges_before(v) + NODE_WEIGHT * u64::from(v);
    let total = work_before(n);
    let mut ranges = Vec::with_capacity(count as usize);
    let mut lo = 0u32;
    for s in 1..=count {
        let hi = if s == count {
            n
        } else {
            // The first node v at which the work of nodes 0..v reaches s/count of the total, or
            // the one before it when that boundary is nearer the share.
            let target = (u128::from(total) * u128::from(s) / u128::from(count)) as u64;
            let (mut a, mut b) = (lo, n);
            while a < b {
                let mid = a + (b - a) / 2;
                if work_before(mid) < target { a = mid + 1 } else { b = mid }
            }
            if a > lo && target - work_before(a - 1) < work_before(a) - target { a - 1 } else { a }
        };
        ranges.push((lo, hi));
        lo = hi;
    }
    Ok(ranges)
}

/// Seeds as [`Shard::begin`] takes them: ids in range and strictly ascending, activations in (0, 1].
fn check_normalised(node_count: u32, seeds: &[(u32, f32)]) -> Result<()> {
    let mut previous = None;
    for &(v, a) in seeds {
        if v >= node_count {
            return Err(Error::SeedOutOfRange { node: v as u64, node_count });
        }
        if !(a.is_finite() && a > 0.0 && a <= 1.0) {
            return Err(Error::InvalidSeedActivation { node: v, activation: a });
        }
        if previous >= Some(v) {
            return Err(Error::cue("seeds", format!("seed ids must be unique and ascending (node {v})")));
        }
        previous = Some(v);
    }
    Ok(())
}

/// The first frontier of a recall from normalised `seeds` (as [`Shard::begin`] takes them), computed
/// from the whole `graph` (a coordinator maps the snapshot and reads only the seeds' degrees and
/// tiers): what every shard's `begin` and `mark` would give, merged. A coordinator that sends it
/// with the seeds ([`Shard::begin_at`]) saves the round that would collect it.
pub fn seed_frontier(graph: &Graph, params: &SpreadParams, seeds: &[(u32, f32)]) -> Result<Marked> {
    check_normalised(graph.node_count() as u32, seeds)?;
    let mut marked = Marked::default();
    let mut lists: [Vec<(u32, f32)>; 3] = Default::default();
    if params.max_depth > 0 {
        for &(v, a) in seeds {
            let degree = graph.out_degree(v);
            let tier = graph.tiers[v as usize];
            if spread::fires(params, &[false; 3], a, degree, tier, false) {
                lists[tier.index()].push((v, a * params.decay));
                marked.edges += degree as u64;
            }
        }
    }
    marked.fill(&lists);
    Ok(marked)
}

/// Seeds of a cue over a graph of `node_count` nodes as a recall resolves them and [`Shard::begin`]
/// takes them: ids in range, activations in (0, 1], duplicates summed and capped at 1, sorted by id.
pub fn normalise_seeds(node_count: u32, seeds: &[(u32, f32)]) -> Result<Vec<(u32, f32)>> {
    let ascending = spread::check_seed_list(node_count, seeds)?;
    let mut out = seeds.to_vec();
    if !ascending {
        spread::merge_duplicate_seeds(&mut out);
    }
    Ok(out)
}

/// The mass (Σ A over non-seed nodes) of summed [`Collected::mass_units`], as a recall reports it.
pub fn mass_from_units(units: u128) -> f64 {
    units as f64 * (1.0 / spread::MASS_SCALE)
}

/// The delivered activation of summed [`Shard::gather`] units, as a recall reports it (the sum
/// saturates as the engine's does).
pub fn delivered_from_units(units: u64) -> f64 {
    units as f64 * (1.0 / f64::from(spread::DELIVERED_SCALE))
}

//! [`Scratch`]: the dense per-node state of one spread, reused across calls (the engine pools them),
//! so a warm spread allocates nothing.

use super::Activation;
use crate::graph::View;

pub(crate) const UNREACHED: u8 = u8::MAX;

/// Bytes of dense state per node: four `f32` arrays, hops, fired and in-next flags.
const BYTES_PER_NODE: usize = 4 * 4 + 3;

/// Dense per-node state of one spread plus the sparse lists that make resetting it cheap.
///
/// Invariant between uses: every dense array holds its neutral value (0, `UNREACHED`, `false`) and
/// every list is empty.
#[derive(Debug, Default)]
pub(crate) struct Scratch {
    /// x_d: activation arriving at the current depth.
    pub(crate) current: Vec<f32>,
    /// Accumulator of x_{d+1}.
    pub(crate) next: Vec<f32>,
    /// Pull steps: `x_d[u] · decay` for frontier nodes, 0 elsewhere.
    pub(crate) send: Vec<f32>,
    /// A: accumulated activation.
    pub(crate) activation: Vec<f32>,
    /// Depth at which a node was first reached; `UNREACHED` otherwise.
    pub(crate) hops: Vec<u8>,
    pub(crate) fired: Vec<bool>,
    /// Whether a node is in `next_active` (one-hop answers; a push lists a node when its `next`
    /// leaves 0).
    pub(crate) in_next: Vec<bool>,
    /// Nodes with x_d > 0, when `active_is_list`.
    pub(crate) active: Vec<u32>,
    pub(crate) next_active: Vec<u32>,
    pub(crate) frontier: [Vec<u32>; 3],
    /// Nodes with A > 0, unless `dense` (then scan).
    pub(crate) reached: Vec<u32>,
    pub(crate) fired_list: Vec<u32>,
    /// A pull step ran or the seeds went straight into the dense arrays: the sparse lists are
    /// incomplete, and collection and reset scan the dense arrays.
    pub(crate) dense: bool,
    /// Result candidates as [`order_key`]s.
    candidates: Vec<u64>,
    /// What the last depth's finish collected already (see [`Scratch::collect_final`]).
    early: Option<Early>,
}

/// Nodes first reached at the spread's last depth, collected by that depth's finish instead of being
/// written to the dense state: their results (best `k` so far) and their mass.
#[derive(Debug)]
struct Early {
    top: TopK,
    units: u128,
    /// Their hop number (the last depth's + 1).
    hop: u8,
}

impl Scratch {
    /// Size the dense arrays for `n` nodes: reserved fallibly, so a graph too large for this
    /// machine's memory is an error for the call, never an abort.
    pub(crate) fn try_resize(&mut self, n: usize) -> crate::Result<()> {
        let what = || format!("the spreading buffers of {n} nodes");
        if n > self.current.len() {
            let more = n - self.current.len();
            crate::memory::check_available(what, more.saturating_mul(BYTES_PER_NODE))?;
            crate::memory::reserve(&mut self.current, more, what)?;
            crate::memory::reserve(&mut self.next, more, what)?;
            crate::memory::reserve(&mut self.send, more, what)?;
            crate::memory::reserve(&mut self.activation, more, what)?;
            crate::memory::reserve(&mut self.hops, more, what)?;
            crate::memory::reserve(&mut self.fired, more, what)?;
            crate::memory::reserve(&mut self.in_next, more, what)?;
        }
        self.resize(n);
        Ok(())
    }

    /// Size the dense arrays for `n` nodes (small, known sizes: the probe's graph, tests).
    pub(crate) fn resize(&mut self, n: usize) {
        self.current.resize(n, 0.0);
        self.next.resize(n, 0.0);
        self.send.resize(n, 0.0);
        self.activation.resize(n, 0.0);
        self.hops.resize(n, UNREACHED);
        self.fired.resize(n, false);
        self.in_next.resize(n, false);
    }

    /// Approximate heap bytes held.
    pub(crate) fn bytes(&self) -> usize {
        self.current.capacity() * 16
            + self.hops.capacity() * 3
            + (self.active.capacity() + self.next_active.capacity() + self.reached.capacity()) * 4
    }

    /// Top-`k` qualifying nodes into `out`; returns the activation mass (over all non-seed nodes).
    /// A dense state is scanned in fixed chunks, in parallel on `pool` when it is large; the answer
    /// and the mass do not depend on the order nodes are visited in.
    pub(crate) fn collect(
        &mut self,
        graph: View<'_>,
        threshold: f32,
        k: usize,
        out: &mut Vec<Activation>,
        pool: Option<&rayon::ThreadPool>,
    ) -> f64 {
        out.clear();
        let (mut top, mut units, early_hop) = match self.early.take() {
            Some(Early { top, units, hop }) => {
                debug_assert_eq!(top.k, k, "collected with the k of the spread's last depth");
                (top, units, hop)
            }
            None => (TopK::new(k, std::mem::take(&mut self.candidates)), 0, UNREACHED),
        };
        let (activation, hops) = (&self.activation, &self.hops);
        if self.dense {
            let n = activation.len();
            match pool.filter(|p| p.current_num_threads() > 1 && n >= PARALLEL_COLLECT_MIN_NODES) {
                Some(pool) => {
                    use rayon::prelude::*;
                    let parts: Vec<(u128, Vec<u64>)> = pool.install(|| {
                        (activation.par_chunks(COLLECT_CHUNK), hops.par_chunks(COLLECT_CHUNK))
                            .into_par_iter()
                            .enumerate()
                            .map(|(c, (a, h))| {
                                let mut top = TopK::new(k, Vec::new());
                                let units = scan(c * COLLECT_CHUNK, a, h, threshold, &mut top);
                                (units, top.into_keys())
                            })
                            .collect()
                    });
                    for (u, keys) in parts {
                        units += u;
                        keys.into_iter().for_each(|key| top.offer(key));
                    }
                }
                None => units += scan(0, activation, hops, threshold, &mut top),
            }
        } else {
            for &v in &self.reached {
                let (a, h) = (activation[v as usize], hops[v as usize]);
                units += visit(v, a, h, threshold, &mut top);
            }
        }
        let mut candidates = top.into_keys();
        super::keep_top_k(&mut candidates, k, u64::cmp);
        let tiers = graph.tiers();
        out.extend(candidates.iter().map(|&key| {
            let v = key as u32;
            // A node first reached at the last depth was collected there and never written to the
            // dense state: its hops are that depth's.
            let hops = match hops[v as usize] {
                UNREACHED => early_hop,
                h => h,
            };
            debug_assert_ne!(hops, UNREACHED);
            Activation {
                node: v,
                activation: key_activation(key),
                hops: hops as u32,
                tier: tiers[v as usize],
            }
        }));
        self.candidates = candidates;
        units as f64 * (1.0 / MASS_SCALE)
    }

    /// The finish of a spread's last depth when it was a push (the common case for small cues): the
    /// nodes the depth reached for the first time are offered as results and counted in the mass
    /// here, and never written to `current`, `activation`, `hops` or the lists, so neither
    /// [`Scratch::collect`] nor the reset visits them again. Nodes reached before get their final A
    /// as in any finish. Returns the activation delivered, in `delivered_units`.
    pub(crate) fn collect_final(&mut self, hop: u8, threshold: f32, k: usize) -> u64 {
        let mut delivered = 0u64;
        for &u in &self.active {
            self.current[u as usize] = 0.0;
        }
        self.active.clear();
        let mut top = TopK::new(k, std::mem::take(&mut self.candidates));
        let mut units = 0u128;
        for &v in &self.next_active {
            let j = v as usize;
            let x = self.next[j].min(1.0);
            self.next[j] = 0.0;
            if x > 0.0 {
                delivered += super::delivered_units(x);
                if self.hops[j] == UNREACHED {
                    // A = min(1, 0 + x) = x.
                    units += visit(v, x, hop, threshold, &mut top);
                } else {
                    self.activation[j] = (self.activation[j] + x).min(1.0);
                }
            }
        }
        self.next_active.clear();
        self.early = Some(Early { top, units, hop });
        delivered
    }

    /// Restore the between-uses invariant whatever state the buffer is in (after a caught panic).
    pub(crate) fn reset_all(&mut self) {
        self.early = None;
        self.next.fill(0.0);
        self.in_next.fill(false);
        self.dense = true;
        self.reset(None);
    }

    /// Restore the between-uses invariant after a spread that ran to its end (every depth's finish
    /// leaves `next` and `in_next` clear). A dense state is cleared in parallel on `pool` when large.
    pub(crate) fn reset(&mut self, pool: Option<&rayon::ThreadPool>) {
        if self.dense {
            debug_assert!(self.next.iter().all(|&x| x == 0.0) && !self.in_next.contains(&true));
            let clear = |(current, send, activation, hops, fired): DenseSlices<'_>| {
                current.fill(0.0);
                send.fill(0.0);
                activation.fill(0.0);
                hops.fill(UNREACHED);
                fired.fill(false);
            };
            let n = self.current.len();
            match pool.filter(|p| p.current_num_threads() > 1 && n >= PARALLEL_COLLECT_MIN_NODES) {
                Some(pool) => pool.install(|| {
                    use rayon::prelude::*;
                    let c = COLLECT_CHUNK;
                    (
                        self.current.par_chunks_mut(c),
                        self.send.par_chunks_mut(c),
                        self.activation.par_chunks_mut(c),
                        self.hops.par_chunks_mut(c),
                        self.fired.par_chunks_mut(c),
                    )
                        .into_par_iter()
                        .for_each(clear)
                }),
                None => clear((
                    &mut self.current,
                    &mut self.send,
                    &mut self.activation,
                    &mut self.hops,
                    &mut self.fired,
                )),
            }
        } else {
            for &v in &self.reached {
                self.current[v as usize] = 0.0;
                self.activation[v as usize] = 0.0;
                self.hops[v as usize] = UNREACHED;
            }
            for &u in &self.fired_list {
                self.fired[u as usize] = false;
            }
        }
        debug_assert!(self.early.is_none(), "a spread's last depth collected, and nothing read it");
        self.dense = false;
        self.active.clear();
        self.next_active.clear();
        self.reached.clear();
        self.fired_list.clear();
        for list in &mut self.frontier {
            list.clear();
        }
    }
}

/// The dense arrays a reset clears: current, send, activation, hops, fired.
type DenseSlices<'a> = (&'a mut [f32], &'a mut [f32], &'a mut [f32], &'a mut [u8], &'a mut [bool]);

/// Dense states of at least this many nodes are collected in parallel (when a pool is given).
const PARALLEL_COLLECT_MIN_NODES: usize = 1 << 18;
/// Nodes per task of a parallel collection.
const COLLECT_CHUNK: usize = 1 << 16;

/// 2⁴⁰: the mass is summed as integers in units of 2⁻⁴⁰, so it does not depend on the order nodes
/// are visited in (exact for every activation ≥ 2⁻¹⁷; smaller ones are truncated, by under 10⁻¹²).
pub(crate) const MASS_SCALE: f64 = 1_099_511_627_776.0;

/// A result's sort key: activation descending, then node id ascending, as one integer. Activations
/// are positive, so their bit patterns order as their values.
#[inline]
pub(crate) fn order_key(node: u32, activation: f32) -> u64 {
    (u64::from(u32::MAX - activation.to_bits()) << 32) | u64::from(node)
}

/// The activation a key was made from ([`order_key`]'s inverse).
#[inline]
pub(super) fn key_activation(key: u64) -> f32 {
    f32::from_bits(u32::MAX - (key >> 32) as u32)
}

/// The `k` smallest keys offered so far (and possibly some more): keys are kept in a buffer that is
/// cut back to the best `k` whenever it reaches twice that, and a key beyond the `k`-th best seen
/// at the last cut is refused at once — so a large scan for a small `k` keeps almost nothing.
#[derive(Debug)]
pub(crate) struct TopK {
    k: usize,
    keys: Vec<u64>,
    /// Keys above this cannot be among the best `k` (`u64::MAX` until the first cut).
    bound: u64,
}

impl TopK {
    pub(crate) fn new(k: usize, mut keys: Vec<u64>) -> Self {
        keys.clear();
        TopK { k, keys, bound: u64::MAX }
    }

    #[inline]
    pub(crate) fn offer(&mut self, key: u64) {
        if key > self.bound {
            return;
        }
        self.keys.push(key);
        if self.keys.len() >= self.k.saturating_mul(2).max(TOP_K_MIN_BUFFER) && self.k > 0 {
            let (_, &mut kth, _) = self.keys.select_nth_unstable(self.k - 1);
            self.keys.truncate(self.k);
            self.bound = kth;
        }
    }

    /// The kept keys, unsorted (a superset of the best `k`).
    pub(crate) fn into_keys(self) -> Vec<u64> {
        self.keys
    }
}

/// A top-k buffer holds at least this many keys before it is cut back.
const TOP_K_MIN_BUFFER: usize = 1024;

/// One reached node: its mass units (non-seeds); offered as a candidate when it qualifies.
#[inline]
pub(super) fn visit(v: u32, a: f32, hops: u8, threshold: f32, top: &mut TopK) -> u128 {
    let (qualifies, units) = result_entry(a, hops, threshold);
    if qualifies {
        top.offer(order_key(v, a));
    }
    units
}

/// For a node with A = `a` > 0 first reached at `hops`: whether it is a result (seeds always are)
/// and its mass in units of 2⁻⁴⁰ (seeds add none).
#[inline]
pub(crate) fn result_entry(a: f32, hops: u8, threshold: f32) -> (bool, u128) {
    // a ≤ 1, so its units fit a u64 (a u128 conversion would be a library call).
    (hops == 0 || a >= threshold, if hops != 0 { u128::from((f64::from(a) * MASS_SCALE) as u64) } else { 0 })
}

/// Visit every node of a dense chunk starting at `base` with A > 0; returns the mass units.
fn scan(base: usize, activation: &[f32], hops: &[u8], threshold: f32, top: &mut TopK) -> u128 {
    let mut units = 0u128;
    for (i, (&a, &h)) in activation.iter().zip(hops).enumerate() {
        if a > 0.0 {
            units += visit((base + i) as u32, a, h, threshold, top);
        }
    }
    units
}

#[cfg(test)]
mod tests {
    use super::TopK;

    #[test]
    fn top_k_keeps_the_k_smallest_keys_whatever_the_order() {
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut keys: Vec<u64> = (0..20_000)
            .map(|_| {
                state ^= state << 13;
                state ^= state >> 7;
                state ^= state << 17;
                state
            })
            .collect();
        for k in [1, 5, 10, 1000, 1024, 5000, 30_000, usize::MAX] {
            for pass in 0..2 {
                if pass == 1 {
                    keys.sort_unstable_by(|a, b| b.cmp(a)); // worst order: every key improves the bound
                }
                let mut top = TopK::new(k, Vec::new());
                keys.iter().for_each(|&key| top.offer(key));
                let mut kept = top.into_keys();
                crate::spread::keep_top_k(&mut kept, k, u64::cmp);
                let mut expected = keys.clone();
                expected.sort_unstable();
                expected.truncate(k);
                assert_eq!(kept, expected, "k {k} pass {pass}");
            }
        }
    }
}

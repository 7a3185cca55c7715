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
    pub(crate) in_next: Vec<bool>,
    /// Nodes with x_d > 0, when `active_is_list`.
    pub(crate) active: Vec<u32>,
    pub(crate) next_active: Vec<u32>,
    pub(crate) frontier: [Vec<u32>; 3],
    /// Nodes with A > 0, unless `dense` (then scan).
    pub(crate) reached: Vec<u32>,
    pub(crate) fired_list: Vec<u32>,
    /// A pull step ran: the sparse lists are incomplete and state lives in the dense arrays alone.
    pub(crate) dense: bool,
    candidates: Vec<u32>,
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
    pub(crate) fn collect(
        &mut self,
        graph: View<'_>,
        threshold: f32,
        k: usize,
        out: &mut Vec<Activation>,
    ) -> f64 {
        out.clear();
        self.candidates.clear();
        let mut mass = 0.0f64;
        let mut visit = |v: u32, candidates: &mut Vec<u32>| {
            let (a, hops) = (self.activation[v as usize], self.hops[v as usize]);
            if hops != 0 {
                mass += a as f64;
            }
            if hops == 0 || a >= threshold {
                candidates.push(v);
            }
        };
        let mut candidates = std::mem::take(&mut self.candidates);
        if self.dense {
            for v in 0..self.activation.len() {
                if self.activation[v] > 0.0 {
                    visit(v as u32, &mut candidates);
                }
            }
        } else {
            // Ascending order makes the mass sum independent of the order nodes were reached in.
            self.reached.sort_unstable();
            for &v in &self.reached {
                visit(v, &mut candidates);
            }
        }
        let activation = &self.activation;
        let order =
            |a: &u32, b: &u32| activation[*b as usize].total_cmp(&activation[*a as usize]).then(a.cmp(b));
        super::keep_top_k(&mut candidates, k, order);
        out.extend(candidates.iter().map(|&v| Activation {
            node: v,
            activation: activation[v as usize],
            hops: self.hops[v as usize] as u32,
            tier: graph.tiers()[v as usize],
        }));
        self.candidates = candidates;
        mass
    }

    /// Restore the between-uses invariant whatever state the buffer is in (after a caught panic).
    pub(crate) fn reset_all(&mut self) {
        self.dense = true;
        self.reset();
    }

    /// Restore the between-uses invariant.
    pub(crate) fn reset(&mut self) {
        if self.dense {
            self.current.fill(0.0);
            self.next.fill(0.0);
            self.send.fill(0.0);
            self.activation.fill(0.0);
            self.hops.fill(UNREACHED);
            self.fired.fill(false);
            self.in_next.fill(false);
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

//! Compaction: a version's graph built afresh by copying runs of its base's arrays around the
//! changed lists (no sort, no counting pass over the edges), and the current version moved onto
//! that new base with only the changes made since still pending.

use std::sync::Arc;

use super::{Arena, Delta, GraphVersion, InLoc, List, Loc, View};
use crate::error::Result;
use crate::graph::{Csr, Embeddings, Graph, Labels, Tier};
use crate::memory;

/// The graph `current` is, as one fresh base. Every array is reserved fallibly and written once.
pub(super) fn materialize(current: &GraphVersion) -> Result<Graph> {
    let view = current.view();
    let n = view.node_count();
    let m = view.edge_count();
    memory::check_available(|| format!("a graph of {n} nodes and {m} edges"), (n + 1) * 17 + m * 16)?;
    let forward = forward(view, n, m)?;
    let mut reverse: [Csr; 3] = Default::default();
    for tier in Tier::ALL {
        if view.has_in_edges(tier) {
            reverse[tier.index()] = reverse_from(view, n, tier)?;
        }
    }
    let labels = match view.has_labels() {
        true => Some(Labels::pack(n, (0..n).map(|v| view.label(v as u32)))?),
        false => None,
    };
    let embeddings = match view.embedding_dim() {
        Some(dim) => Some(embeddings(view, n, dim)?),
        None => None,
    };
    Ok(Graph {
        id: Graph::next_id(),
        node_count: n as u32,
        forward,
        reverse,
        tier_counts: current.tier_counts,
        tiers: view.tiers.to_vec(),
        labels,
        embeddings,
        origin_version: current.version,
        label_index: Default::default(),
        index_image: None,
        embedded: Default::default(),
    })
}

/// The out-edge CSR: the base's runs of unchanged nodes copied whole, each changed node's list
/// between them.
fn forward(view: View<'_>, n: usize, m: usize) -> Result<Csr> {
    let Some(delta) = view.delta else {
        return copy_runs(
            &view.base.forward,
            view.base.node_count(),
            n,
            m,
            std::iter::empty(),
            |_, _: Loc, _| {},
        );
    };
    copy_runs(&view.base.forward, view.base.node_count(), n, m, delta.out.iter(), |u, loc, out| {
        for list in view.out_at(delta, u as usize, loc).parts() {
            out.push_list(list);
        }
    })
}

/// The in-edge CSR from `tier`'s sources, built like [`forward`]. Empty (no offsets) when no edge
/// leaves the tier, as a build from scratch makes it.
fn reverse_from(view: View<'_>, n: usize, tier: Tier) -> Result<Csr> {
    let base = &view.base.reverse[tier.index()];
    let csr = match view.delta {
        None => copy_runs(
            base,
            view.base.node_count(),
            n,
            base.neighbours.len(),
            std::iter::empty(),
            |_, _: InLoc, _| {},
        )?,
        Some(delta) => {
            // At most: every base in-edge, and every entry's (an appended entry adds to its base list).
            let bound = base.neighbours.len()
                + delta.ins.iter().map(|(_, l)| l.lens[tier.index()] as usize).sum::<usize>();
            copy_runs(base, view.base.node_count(), n, bound, delta.ins.iter(), |v, loc, out| {
                let edges = view.in_at(delta, v as usize, loc, tier);
                if edges.added.0.is_empty() {
                    out.push_list(edges.base);
                } else {
                    edges.for_each(|u, w| out.push(u, w));
                }
            })?
        }
    };
    Ok(if csr.neighbours.is_empty() { Csr::default() } else { csr })
}

/// A CSR being written: offsets, ids and weights.
struct Builder {
    offsets: Vec<u32>,
    neighbours: Vec<u32>,
    weights: Vec<f32>,
}

impl Builder {
    #[inline]
    fn push(&mut self, node: u32, weight: f32) {
        self.neighbours.push(node);
        self.weights.push(weight);
    }

    #[inline]
    fn push_list(&mut self, (nodes, weights): List<'_>) {
        self.neighbours.extend_from_slice(nodes);
        self.weights.extend_from_slice(weights);
    }

    /// Nodes `from..to` keep their lists in `base` (which has `base_n` nodes; the others have none):
    /// one copy of the run, its offsets shifted.
    fn base_run(&mut self, base: &Csr, base_n: usize, from: usize, to: usize) {
        let end = to.min(base_n);
        if from < end {
            if base.offsets.is_empty() {
                let at = self.neighbours.len() as u32;
                self.offsets.extend(std::iter::repeat_n(at, end - from));
            } else {
                let (lo, hi) = (base.offsets[from] as usize, base.offsets[end] as usize);
                let at = self.neighbours.len() as u32;
                self.neighbours.extend_from_slice(&base.neighbours[lo..hi]);
                self.weights.extend_from_slice(&base.weights[lo..hi]);
                let shift = at.wrapping_sub(lo as u32);
                self.offsets.extend(base.offsets[from + 1..=end].iter().map(|&o| o.wrapping_add(shift)));
            }
        }
        let empty = to.saturating_sub(from.max(base_n));
        let at = self.neighbours.len() as u32;
        self.offsets.extend(std::iter::repeat_n(at, empty));
    }
}

/// A CSR of `n` nodes with room for `bound` edges: the runs of `base` between the changed nodes
/// (`entries`, in id order), and `changed(node, entry, …)` writing each changed node's list.
fn copy_runs<V>(
    base: &Csr,
    base_n: usize,
    n: usize,
    bound: usize,
    entries: impl Iterator<Item = (u32, V)>,
    mut changed: impl FnMut(u32, V, &mut Builder),
) -> Result<Csr> {
    let mut b = Builder { offsets: Vec::new(), neighbours: Vec::new(), weights: Vec::new() };
    memory::reserve(&mut b.offsets, n + 1, || format!("the edge offsets of {n} nodes"))?;
    memory::reserve(&mut b.neighbours, bound, || format!("the ids of {bound} edges"))?;
    memory::reserve(&mut b.weights, bound, || format!("the weights of {bound} edges"))?;
    b.offsets.push(0);
    let mut next = 0;
    for (node, entry) in entries {
        b.base_run(base, base_n, next, node as usize);
        changed(node, entry, &mut b);
        b.offsets.push(b.neighbours.len() as u32);
        next = node as usize + 1;
    }
    b.base_run(base, base_n, next, n);
    Ok(Csr { offsets: b.offsets.into(), neighbours: b.neighbours.into(), weights: b.weights.into() })
}

/// Embeddings: the base's rows as one block, then the added nodes' rows.
fn embeddings(view: View<'_>, n: usize, dim: usize) -> Result<Embeddings> {
    let mut values =
        memory::filled(n.saturating_mul(dim), 0.0f32, || format!("the embeddings of {n} nodes"))?;
    let mut norms = memory::filled(n, 0.0f32, || format!("the embedding norms of {n} nodes"))?;
    let base_n = view.base.node_count();
    if let Some(e) = view.base.embeddings.as_ref() {
        values[..base_n * dim].copy_from_slice(&e.values);
        norms[..base_n].copy_from_slice(&e.norms);
    }
    for v in base_n..n {
        if let Some((row, norm)) = view.embedding(v) {
            values[v * dim..(v + 1) * dim].copy_from_slice(row);
            norms[v] = norm;
        }
    }
    Ok(Embeddings { dim, values: values.into(), norms: norms.into() })
}

/// `current` on `base` (a materialization of `start`, an earlier version on the same base): the
/// entries written since `start` — in the arenas added since — stay pending, less what `start` had
/// already appended (now in `base`); the rest is in `base`.
///
/// With `prior` — `(earlier, rebased)`: `earlier`, a version between `start` and `current`, already
/// rebased as `rebased` — only the entries written since `earlier` are moved and merged into
/// `rebased`'s (the node maps are still walked once, a comparison per changed node): how a
/// compaction does the bulk of the work before it takes the writer lock.
pub(super) fn rebase(
    current: &GraphVersion,
    start: &GraphVersion,
    base: Arc<Graph>,
    prior: Option<(&GraphVersion, &GraphVersion)>,
) -> GraphVersion {
    let mut next = GraphVersion {
        version: current.version,
        lineage: current.lineage,
        base,
        delta: None,
        node_count: current.node_count,
        edge_count: current.edge_count,
        tier_counts: current.tier_counts,
        embedding_dim: current.embedding_dim,
    };
    let Some(changes) = current.delta.as_ref() else { return next };
    let before = start.delta.as_ref();
    let folded = before.map_or(0, |d| d.arenas.len() as u32);
    let empty = Delta::default();
    // The entries to visit are those in arenas from `late` on; they move to index `shift + i - late`.
    let (late, onto) = match prior {
        None => (folded, &empty),
        Some((earlier, rebased)) => (earlier.arena_count(), rebased.delta.as_ref().unwrap_or(&empty)),
    };
    let mut arenas = onto.arenas.clone();
    arenas.extend_from_slice(&changes.arenas[late as usize..]);
    let shift = onto.arenas.len() as u32;
    let moved = |arena: u32| arena.checked_sub(late).map(|i| shift + i);
    // Out-lists appended to since `start`: their entries begin with what `start` had appended.
    let mut out_before = before.map(|d| d.out.cursor());
    let mut out = Vec::new();
    for (u, mut loc) in changes.out.iter() {
        let Some(arena) = moved(loc.arena) else { continue };
        loc.arena = arena;
        if loc.appended
            && let Some(old) = out_before.as_mut().and_then(|c| c.seek(u))
        {
            debug_assert!(old.appended && old.len <= loc.len);
            loc.start += old.len;
            loc.len -= old.len;
        }
        out.push((u, loc));
    }
    // In-lists added to since `start`: drop, per source, the entries `start` already had (the
    // earliest of that source), writing what remains to a new arena.
    let mut extra = Arena::default();
    let extra_index = arenas.len() as u32;
    let mut ins_before = before.map(|d| d.ins.cursor());
    let mut ins = Vec::new();
    let mut tier_has_ins = onto.tier_has_ins;
    for (v, mut loc) in changes.ins.iter() {
        let Some(arena) = moved(loc.arena) else { continue };
        let old = match (loc.appended, ins_before.as_mut().and_then(|c| c.seek(v))) {
            (true, Some(old)) => old,
            _ => {
                loc.arena = arena;
                ins.push((v, loc));
                continue;
            }
        };
        let then = before.expect("a cursor implies a delta");
        let start = extra.len();
        let mut lens = [0u32; 3];
        for tier in Tier::ALL {
            let (nodes, weights) = changes.in_list(loc, tier);
            let (seen, _) = then.in_list(old, tier);
            let mut j = 0;
            for (&u, &w) in nodes.iter().zip(weights) {
                while j < seen.len() && seen[j] < u {
                    j += 1;
                }
                if j < seen.len() && seen[j] == u {
                    j += 1;
                    continue;
                }
                extra.nodes.push(u);
                extra.weights.push(w);
            }
            lens[tier.index()] =
                (extra.len() - start - lens.iter().map(|&l| l as usize).sum::<usize>()) as u32;
        }
        ins.push((v, InLoc { arena: extra_index, lens, start: start as u32, appended: true }));
    }
    if extra.len() > 0 {
        arenas.push(Arc::new(extra));
    }
    for (_, loc) in &ins {
        for (has, &len) in tier_has_ins.iter_mut().zip(&loc.lens) {
            *has |= len > 0;
        }
    }
    let mut delta = Delta {
        arenas,
        out: onto.out.merged(&out),
        ins: onto.ins.merged(&ins),
        tiers: match (&changes.tiers, before.and_then(|d| d.tiers.as_ref())) {
            (Some(now), Some(then)) if Arc::ptr_eq(now, then) => None,
            (now, _) => now.clone(),
        },
        added_labels: Default::default(),
        added_embeddings: Default::default(),
        tier_has_ins,
        pending_edges: changes.pending_edges.saturating_sub(before.map_or(0, |d| d.pending_edges)),
    };
    // Nodes added before `start` are in the new base; those added since stay pending.
    let skip = start.node_count as usize - current.base.node_count();
    delta.added_labels = Arc::new(changes.added_labels.get(skip..).unwrap_or_default().to_vec());
    delta.added_embeddings = Arc::new(changes.added_embeddings.get(skip..).unwrap_or_default().to_vec());
    next.delta = (!delta.is_empty()).then_some(delta);
    next
}

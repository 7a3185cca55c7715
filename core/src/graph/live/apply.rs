//! Applying a batch (docs/spec.md §16): validated whole against the current version, then every
//! changed entry is written once, in node order, into the batch's own arena. Inserts write appended
//! entries (they never read the base lists); the other operations write complete lists.

use std::collections::HashMap;
use std::ops::Range;
use std::sync::Arc;

use super::{
    Arena, Batch, Cursor, Delta, GraphVersion, InEdges, InLoc, List, Loc, NO_EDGES, NodeMap, OutEdges, View,
};
use crate::error::{Error, Result};
use crate::graph::Tier;
use crate::memory;
use crate::prefetch::walk;

/// Validate and apply one batch.
pub(super) fn apply(current: &GraphVersion, batch: &Batch, version: u64) -> Result<GraphVersion> {
    validate(current, batch)?;
    let view = current.view();
    // Everything but the two node maps, which the batch's changes are merged into below (cloning
    // them first would copy them twice).
    let empty = Delta::default();
    let previous = current.delta.as_ref().unwrap_or(&empty);
    let mut delta = Delta {
        arenas: previous.arenas.clone(),
        out: NodeMap::default(),
        ins: NodeMap::default(),
        tiers: previous.tiers.clone(),
        added_labels: Arc::clone(&previous.added_labels),
        added_embeddings: Arc::clone(&previous.added_embeddings),
        tier_has_ins: previous.tier_has_ins,
        pending_edges: previous.pending_edges,
    };
    let mut next = GraphVersion {
        version,
        lineage: current.lineage,
        base: Arc::clone(&current.base),
        delta: None,
        node_count: current.node_count,
        edge_count: current.edge_count,
        tier_counts: current.tier_counts,
        embedding_dim: current.embedding_dim,
    };
    let mut writer = Writer::new(view, delta.arenas.len() as u32);
    match batch {
        Batch::AddNodes { count, tiers, labels, embeddings } => {
            let total = current.node_count as usize + *count as usize;
            let mut all = Vec::new();
            memory::reserve(&mut all, total, || format!("the tiers of {total} nodes"))?;
            all.extend_from_slice(view.tiers);
            let (added, count) = (delta.added_labels.len(), *count as usize);
            let mut added_labels = Vec::new();
            memory::reserve(&mut added_labels, added + count, || format!("the labels of {count} new nodes"))?;
            added_labels.extend_from_slice(&delta.added_labels);
            let mut added_embeddings = Vec::new();
            memory::reserve(&mut added_embeddings, added + count, || {
                format!("the embeddings of {count} new nodes")
            })?;
            added_embeddings.extend_from_slice(&delta.added_embeddings);
            for i in 0..count {
                let tier = tiers.as_ref().map_or(Tier::Hot, |t| t[i]);
                next.tier_counts[tier.index()] += 1;
                all.push(tier);
                added_labels.push(labels.as_ref().and_then(|l| l[i].as_deref()).map(Arc::from));
                added_embeddings.push(embeddings.as_ref().and_then(|(dim, values)| {
                    let row = &values[i * dim..(i + 1) * dim];
                    let norm = row.iter().map(|x| x * x).sum::<f32>().sqrt();
                    (norm > 0.0).then(|| (Arc::from(row), norm))
                }));
            }
            if let Some((dim, _)) = embeddings {
                next.embedding_dim = Some(*dim);
            }
            delta.tiers = Some(Arc::new(all));
            delta.added_labels = Arc::new(added_labels);
            delta.added_embeddings = Arc::new(added_embeddings);
            next.node_count += count as u32;
        }
        Batch::AddEdges { src, dst, weight } => {
            // Out-lists: a source's new edges in batch order after its list. Packed keys sort fast.
            let mut by_source: Vec<u64> = (0..src.len()).map(|i| (src[i] as u64) << 32 | i as u64).collect();
            by_source.sort_unstable();
            let sources = runs(&by_source, |k| (k >> 32) as u32);
            let entries = writer.entries_out(sources.iter().map(|s| s.0));
            // One reservation for everything this batch writes: the tails it extends, its edges
            // twice (out and in), and the added in-lists it extends (bounded by a second pass below).
            writer
                .reserve(entries.iter().flatten().map(|l| l.len as usize).sum::<usize>() + 2 * src.len())?;
            for ((u, run), entry) in sources.into_iter().zip(entries) {
                let new = by_source[run].iter().map(|&k| k as u32 as usize).map(|i| (dst[i], weight[i]));
                writer.append_out(u, entry, new)?;
            }
            // In-lists: each tier's new entries, sorted by source, after those of equal sources.
            let mut by_target: Vec<(u64, u32)> =
                (0..src.len()).map(|i| ((dst[i] as u64) << 32 | src[i] as u64, i as u32)).collect();
            by_target.sort_unstable();
            let tiers = view.tiers;
            let entry_tiers: Vec<Tier> = by_target.iter().map(|&(k, _)| tiers[k as u32 as usize]).collect();
            let targets = runs(&by_target, |&(k, _)| (k >> 32) as u32);
            let entries = writer.entries_in(targets.iter().map(|t| t.0));
            writer.reserve(
                entries.iter().flatten().map(|l| l.lens.iter().sum::<u32>() as usize).sum::<usize>()
                    + src.len(),
            )?;
            for ((v, run), entry) in targets.into_iter().zip(entries) {
                // An appended entry grows its added lists; a complete one takes the new entries in.
                let (relative, lists) = writer.entry_in(entry);
                let start = writer.arena.len();
                let mut lens = [0u32; 3];
                for tier in Tier::ALL {
                    let new = run
                        .clone()
                        .filter(|&e| entry_tiers[e] == tier)
                        .map(|e| (by_target[e].0 as u32, weight[by_target[e].1 as usize]));
                    lens[tier.index()] = writer.insert_in(lists[tier.index()], new)?;
                }
                writer.in_lists(v, start, lens, relative);
            }
            next.edge_count += src.len() as u64;
            delta.pending_edges += src.len() as u64;
        }
        Batch::SetWeights { src, dst, weight } => {
            let mut changed = 0u64;
            // Pairs apply in batch order, so a repeated pair's last weight wins.
            let by_source = sorted_by(src.len(), |i| (src[i], i as u32));
            let sources = runs(&by_source, |&i| src[i]);
            walk(
                &sources,
                |&(u, _), stage| view.prefetch_base_out(u as usize, stage),
                |(u, run)| {
                    let current = writer.current_out(*u);
                    let start = writer.arena.len();
                    writer.complete_out(*u, current, |_| true)?;
                    for &i in &by_source[run.clone()] {
                        changed += writer.reweight(start, current.len(), dst[i], weight[i]);
                    }
                    Ok(())
                },
            )?;
            let by_target = sorted_by(src.len(), |i| (dst[i], i as u32));
            let targets = runs(&by_target, |&i| dst[i]);
            let tiers = view.tiers;
            walk(
                &targets,
                |&(v, _), stage| view.prefetch_base_in(v as usize, stage),
                |(v, run)| {
                    let current = writer.current_in(*v);
                    let start = writer.arena.len();
                    let mut lens = [0u32; 3];
                    for tier in Tier::ALL {
                        lens[tier.index()] = writer.complete_in(current[tier.index()], |_| true, &[])?;
                    }
                    for &i in &by_target[run.clone()] {
                        let u = src[i];
                        let t = tiers[u as usize].index();
                        let offset = start + lens[..t].iter().map(|&l| l as usize).sum::<usize>();
                        writer.reweight(offset, lens[t] as usize, u, weight[i]);
                    }
                    writer.in_lists(*v, start, lens, false);
                    Ok(())
                },
            )?;
            delta.pending_edges += changed;
        }
        Batch::RemoveEdges { src, dst } => {
            let mut removed = 0u64;
            let by_source = sorted_by(src.len(), |i| (src[i], dst[i]));
            let sources = runs(&by_source, |&i| src[i]);
            walk(
                &sources,
                |&(u, _), stage| view.prefetch_base_out(u as usize, stage),
                |(u, run)| {
                    let targets: Vec<u32> = by_source[run.clone()].iter().map(|&i| dst[i]).collect();
                    let current = writer.current_out(*u);
                    let kept = writer.complete_out(*u, current, |v| targets.binary_search(&v).is_err())?;
                    removed += (current.len() - kept) as u64;
                    Ok(())
                },
            )?;
            let by_target = sorted_by(src.len(), |i| (dst[i], src[i]));
            let targets = runs(&by_target, |&i| dst[i]);
            walk(
                &targets,
                |&(v, _), stage| view.prefetch_base_in(v as usize, stage),
                |(v, run)| {
                    let sources: Vec<u32> = by_target[run.clone()].iter().map(|&i| src[i]).collect();
                    let current = writer.current_in(*v);
                    let start = writer.arena.len();
                    let mut lens = [0u32; 3];
                    for tier in Tier::ALL {
                        let keep = |u: u32| sources.binary_search(&u).is_err();
                        lens[tier.index()] = writer.complete_in(current[tier.index()], keep, &[])?;
                    }
                    writer.in_lists(*v, start, lens, false);
                    Ok(())
                },
            )?;
            next.edge_count -= removed;
            delta.pending_edges += removed;
        }
        Batch::SetTiers { nodes, tiers } => {
            // The last entry for a node wins; only real moves change in-lists.
            let mut last: HashMap<u32, Tier> = HashMap::with_capacity(nodes.len());
            for (&u, &tier) in nodes.iter().zip(tiers) {
                last.insert(u, tier);
            }
            let mut all = view.tiers.to_vec();
            let mut moves: Vec<(u32, Tier, Tier)> = Vec::new();
            for (u, tier) in last {
                let old = all[u as usize];
                if old != tier {
                    all[u as usize] = tier;
                    next.tier_counts[old.index()] -= 1;
                    next.tier_counts[tier.index()] += 1;
                    moves.push((u, old, tier));
                }
            }
            moves.sort_unstable_by_key(|m| m.0);
            // Every (destination, moved source) pair, by destination then source.
            let mut touched: Vec<(u32, u32)> = Vec::new();
            for (k, &(u, _, _)) in moves.iter().enumerate() {
                let out = writer.current_out(u);
                let mut targets: Vec<u32> = out.parts().iter().flat_map(|p| p.0.iter().copied()).collect();
                targets.sort_unstable();
                targets.dedup();
                touched.extend(targets.into_iter().map(|v| (v, k as u32)));
            }
            touched.sort_unstable();
            let mut moved = 0u64;
            let mut taken: [Vec<(u32, f32)>; 3] = Default::default();
            for (v, run) in runs(&touched, |t| t.0) {
                let group: Vec<(u32, Tier, Tier)> =
                    touched[run].iter().map(|t| moves[t.1 as usize]).collect();
                let current = writer.current_in(v);
                for list in &mut taken {
                    list.clear();
                }
                // The moved sources' entries, from their old tier's list, in order.
                for &(u, old, new) in &group {
                    current[old.index()].for_each(|s, w| {
                        if s == u {
                            taken[new.index()].push((s, w));
                        }
                    });
                }
                moved += taken.iter().map(|t| t.len() as u64).sum::<u64>();
                let start = writer.arena.len();
                let mut lens = [0u32; 3];
                for tier in Tier::ALL {
                    let staying = |s: u32| !group.iter().any(|&(u, old, _)| u == s && old == tier);
                    lens[tier.index()] =
                        writer.complete_in(current[tier.index()], staying, &taken[tier.index()])?;
                }
                writer.in_lists(v, start, lens, false);
            }
            delta.tiers = Some(Arc::new(all));
            delta.pending_edges += moved;
        }
    }
    let Writer { arena, out, ins, .. } = writer;
    if !out.is_empty() || !ins.is_empty() {
        delta.arenas.push(Arc::new(arena));
        for (_, loc) in &ins {
            for (has, &len) in delta.tier_has_ins.iter_mut().zip(&loc.lens) {
                *has |= len > 0;
            }
        }
    }
    delta.out = previous.out.merged(&out);
    delta.ins = previous.ins.merged(&ins);
    next.delta = (!delta.is_empty()).then_some(delta);
    Ok(next)
}

/// Indices `0..len` sorted by `key`.
fn sorted_by<K: Ord>(len: usize, key: impl Fn(usize) -> K) -> Vec<usize> {
    let mut order: Vec<usize> = (0..len).collect();
    order.sort_unstable_by_key(|&i| key(i));
    order
}

/// Runs of equal `node(key)` in sorted `keys`: each node and the range of its keys.
fn runs<K>(keys: &[K], node: impl Fn(&K) -> u32) -> Vec<(u32, Range<usize>)> {
    let mut out = Vec::new();
    let mut start = 0;
    while start < keys.len() {
        let id = node(&keys[start]);
        let mut end = start + 1;
        while end < keys.len() && node(&keys[end]) == id {
            end += 1;
        }
        out.push((id, start..end));
        start = end;
    }
    out
}

/// Writes one batch's entries into its arena, reading the current ones with cursors (the batch
/// visits nodes in increasing order).
struct Writer<'a> {
    view: View<'a>,
    arena: Arena,
    index: u32,
    out: Vec<(u32, Loc)>,
    ins: Vec<(u32, InLoc)>,
    out_cursor: Option<Cursor<'a, Loc>>,
    in_cursor: Option<Cursor<'a, InLoc>>,
}

impl<'a> Writer<'a> {
    fn new(view: View<'a>, index: u32) -> Self {
        Writer {
            view,
            arena: Arena::default(),
            index,
            out: Vec::new(),
            ins: Vec::new(),
            out_cursor: view.delta.map(|d| d.out.cursor()),
            in_cursor: view.delta.map(|d| d.ins.cursor()),
        }
    }

    /// `u`'s current out-edges (calls in increasing `u`; a repeat is fine).
    fn current_out(&mut self, u: u32) -> OutEdges<'a> {
        if let (Some(delta), Some(cursor)) = (self.view.delta, self.out_cursor.as_mut())
            && let Some(loc) = cursor.seek(u)
        {
            return self.view.out_at(delta, u as usize, loc);
        }
        OutEdges { head: self.view.base_out(u as usize), tail: NO_EDGES }
    }

    /// The current entries of the sources `nodes` (increasing), looked up together.
    fn entries_out(&self, nodes: impl Iterator<Item = u32>) -> Vec<Option<Loc>> {
        let nodes: Vec<u32> = nodes.collect();
        match self.view.delta {
            Some(delta) => delta.out.lookup_sorted(&nodes),
            None => vec![None; nodes.len()],
        }
    }

    /// The current entries of the destinations `nodes` (increasing), looked up together.
    fn entries_in(&self, nodes: impl Iterator<Item = u32>) -> Vec<Option<InLoc>> {
        let nodes: Vec<u32> = nodes.collect();
        match self.view.delta {
            Some(delta) => delta.ins.lookup_sorted(&nodes),
            None => vec![None; nodes.len()],
        }
    }

    /// An in-entry as an insert extends it: whether it is relative to the base in-lists, and its
    /// lists per source tier (none without an entry). The base lists are not read.
    fn entry_in(&self, entry: Option<InLoc>) -> (bool, [List<'a>; 3]) {
        match (self.view.delta, entry) {
            (Some(delta), Some(loc)) => (loc.appended, Tier::ALL.map(|t| delta.in_list(loc, t))),
            _ => (true, [NO_EDGES; 3]),
        }
    }

    /// `v`'s current in-edges, one per source tier (calls in increasing `v`).
    fn current_in(&mut self, v: u32) -> [InEdges<'a>; 3] {
        if let (Some(delta), Some(cursor)) = (self.view.delta, self.in_cursor.as_mut())
            && let Some(loc) = cursor.seek(v)
        {
            return Tier::ALL.map(|t| self.view.in_at(delta, v as usize, loc, t));
        }
        Tier::ALL.map(|t| InEdges { base: self.view.base_in(v as usize, t), added: NO_EDGES })
    }

    /// Room for `additional` more entries, fallibly, growing geometrically (entries are appended
    /// one list at a time: exact growth would copy the arena at every list). Entries are addressed
    /// with 32 bits: a batch whose changed lists pass 2^32 entries is refused (split it).
    fn reserve(&mut self, additional: usize) -> Result<()> {
        let arena = &mut self.arena;
        let total = arena.len().saturating_add(additional);
        if total > u32::MAX as usize {
            return Err(Error::TooLarge {
                what: "a batch's changed lists (entries)",
                count: total,
                limit: u32::MAX as usize,
            });
        }
        if arena.nodes.try_reserve(additional).is_err() || arena.weights.try_reserve(additional).is_err() {
            return Err(Error::OutOfMemory {
                what: format!("a batch's changed lists ({} entries)", arena.len() + additional),
                bytes: (arena.len() + additional).saturating_mul(8),
                available: None,
            });
        }
        Ok(())
    }

    fn push_list(&mut self, (nodes, weights): List<'_>) {
        self.arena.nodes.extend_from_slice(nodes);
        self.arena.weights.extend_from_slice(weights);
    }

    /// Append `new` to `u`'s out-edges: an appended entry when they are the base's plus appended
    /// ones (the base list is not read), else a complete one.
    fn append_out(
        &mut self,
        u: u32,
        entry: Option<Loc>,
        new: impl ExactSizeIterator<Item = (u32, f32)>,
    ) -> Result<()> {
        let (relative, kept) = match (self.view.delta, entry) {
            (Some(delta), Some(loc)) => (loc.appended, delta.out_list(loc)),
            _ => (true, NO_EDGES),
        };
        self.reserve(kept.0.len() + new.len())?;
        let start = self.arena.len();
        self.push_list(kept);
        for (v, w) in new {
            self.arena.nodes.push(v);
            self.arena.weights.push(w);
        }
        let len = (self.arena.len() - start) as u32;
        self.out.push((u, Loc { arena: self.index, len, start: start as u32, appended: relative }));
        Ok(())
    }

    /// Write `u`'s complete out-list: the current edges whose target `keep`s. Returns its length.
    fn complete_out(&mut self, u: u32, current: OutEdges<'_>, keep: impl Fn(u32) -> bool) -> Result<usize> {
        self.reserve(current.len())?;
        let start = self.arena.len();
        for (nodes, weights) in current.parts() {
            for (&v, &w) in nodes.iter().zip(weights) {
                if keep(v) {
                    self.arena.nodes.push(v);
                    self.arena.weights.push(w);
                }
            }
        }
        let len = self.arena.len() - start;
        self.out.push((u, Loc { arena: self.index, len: len as u32, start: start as u32, appended: false }));
        Ok(len)
    }

    /// Write `list` with `new` entries (sorted by source) each after every entry of the same
    /// source, copying the runs between them whole. Returns its length.
    fn insert_in(
        &mut self,
        (nodes, weights): List<'_>,
        new: impl Iterator<Item = (u32, f32)>,
    ) -> Result<u32> {
        self.reserve(nodes.len() + 1)?;
        let start = self.arena.len();
        let mut i = 0;
        for (source, weight) in new {
            let end = i + nodes[i..].partition_point(|&n| n <= source);
            self.push_list((&nodes[i..end], &weights[i..end]));
            self.arena.nodes.push(source);
            self.arena.weights.push(weight);
            i = end;
        }
        self.push_list((&nodes[i..], &weights[i..]));
        Ok((self.arena.len() - start) as u32)
    }

    /// Write a complete in-list: `current`'s entries whose source `keep`s, with `new` entries
    /// (sorted by source) each after every kept entry of the same source. Returns its length.
    fn complete_in(
        &mut self,
        current: InEdges<'_>,
        keep: impl Fn(u32) -> bool,
        new: &[(u32, f32)],
    ) -> Result<u32> {
        self.reserve(current.len() + new.len())?;
        let start = self.arena.len();
        let mut pending = new.iter().peekable();
        let arena = &mut self.arena;
        current.for_each(|u, w| {
            while let Some(&&(source, weight)) = pending.peek()
                && source < u
            {
                arena.nodes.push(source);
                arena.weights.push(weight);
                pending.next();
            }
            if keep(u) {
                arena.nodes.push(u);
                arena.weights.push(w);
            }
        });
        for &(source, weight) in pending {
            arena.nodes.push(source);
            arena.weights.push(weight);
        }
        Ok((self.arena.len() - start) as u32)
    }

    /// Record `v`'s in-lists, written from `start` on.
    fn in_lists(&mut self, v: u32, start: usize, lens: [u32; 3], appended: bool) {
        self.ins.push((v, InLoc { arena: self.index, lens, start: start as u32, appended }));
    }

    /// Give the entries naming `node` among `len` entries from `start` the weight `w`; how many.
    fn reweight(&mut self, start: usize, len: usize, node: u32, w: f32) -> u64 {
        let mut changed = 0;
        for (n, slot) in
            self.arena.nodes[start..start + len].iter().zip(&mut self.arena.weights[start..start + len])
        {
            if *n == node {
                *slot = w;
                changed += 1;
            }
        }
        changed
    }
}

/// Check a whole batch against `current`; the error names the entry (index, ids, value).
fn validate(current: &GraphVersion, batch: &Batch) -> Result<()> {
    let n = current.node_count;
    let view = current.view();
    let op = batch.name();
    let node_in_range = |index: usize, end: &'static str, node: u32| -> Result<()> {
        if node < n { Ok(()) } else { Err(Error::EdgeNodeOutOfRange { index, end, node, node_count: n }) }
    };
    let weight_ok = |index: usize, w: f32| -> Result<()> {
        if w.is_finite() && w > 0.0 && w <= 1.0 {
            Ok(())
        } else {
            Err(Error::InvalidWeight { index, weight: w.to_string() })
        }
    };
    let same_len = |a: usize, b: usize, c: usize| -> Result<()> {
        if a == b && b == c { Ok(()) } else { Err(Error::EdgeArrayLengths { src: a, dst: b, weight: c }) }
    };
    let pair_exists = |index: usize, u: u32, v: u32| -> Result<()> {
        if view.out(u as usize).contains(v) {
            Ok(())
        } else {
            Err(Error::MissingEdge { operation: op, index, src: u, dst: v })
        }
    };
    match batch {
        Batch::AddNodes { count, tiers, labels, embeddings } => {
            let count = *count as usize;
            if count == 0 {
                return Err(Error::batch(op, "count must be at least 1"));
            }
            let total = n as u64 + count as u64;
            if total >= u32::MAX as u64 {
                return Err(Error::TooLarge {
                    what: "node count",
                    count: total as usize,
                    limit: u32::MAX as usize - 1,
                });
            }
            for (what, len) in
                [("tiers", tiers.as_ref().map(Vec::len)), ("labels", labels.as_ref().map(Vec::len))]
            {
                if let Some(len) = len
                    && len != count
                {
                    return Err(Error::batch(op, format!("{what}: {len} entries for {count} new nodes")));
                }
            }
            if let Some((dim, values)) = embeddings {
                if *dim == 0 || count.checked_mul(*dim) != Some(values.len()) {
                    return Err(Error::batch(
                        op,
                        format!("embeddings: {} values for {count} nodes of dimension {dim}", values.len()),
                    ));
                }
                if let Some(expected) = current.embedding_dim
                    && expected != *dim
                {
                    return Err(Error::EmbeddingDimension { node: n, expected, found: *dim });
                }
                if let Some(i) = values.iter().position(|x| !x.is_finite()) {
                    return Err(Error::InvalidEmbedding {
                        node: n + (i / dim) as u32,
                        problem: format!("value {} at index {} is not finite", values[i], i % dim),
                    });
                }
            }
        }
        Batch::AddEdges { src, dst, weight } => {
            same_len(src.len(), dst.len(), weight.len())?;
            let total = current.edge_count + src.len() as u64;
            if total > u32::MAX as u64 {
                return Err(Error::TooLarge {
                    what: "edge count",
                    count: total as usize,
                    limit: u32::MAX as usize,
                });
            }
            for (i, ((&u, &v), &w)) in src.iter().zip(dst).zip(weight).enumerate() {
                node_in_range(i, "source", u)?;
                node_in_range(i, "target", v)?;
                weight_ok(i, w)?;
            }
        }
        Batch::SetWeights { src, dst, weight } => {
            same_len(src.len(), dst.len(), weight.len())?;
            for (i, ((&u, &v), &w)) in src.iter().zip(dst).zip(weight).enumerate() {
                node_in_range(i, "source", u)?;
                node_in_range(i, "target", v)?;
                weight_ok(i, w)?;
                pair_exists(i, u, v)?;
            }
        }
        Batch::RemoveEdges { src, dst } => {
            if src.len() != dst.len() {
                return Err(Error::EdgeArrayLengths { src: src.len(), dst: dst.len(), weight: src.len() });
            }
            let mut seen = HashMap::new();
            for (i, (&u, &v)) in src.iter().zip(dst).enumerate() {
                node_in_range(i, "source", u)?;
                node_in_range(i, "target", v)?;
                pair_exists(i, u, v)?;
                if let Some(first) = seen.insert((u, v), i) {
                    return Err(Error::batch(
                        op,
                        format!("entry {i}: pair ({u}, {v}) is already listed at entry {first}"),
                    ));
                }
            }
        }
        Batch::SetTiers { nodes, tiers } => {
            if nodes.len() != tiers.len() {
                return Err(Error::batch(op, format!("{} nodes but {} tiers", nodes.len(), tiers.len())));
            }
            for (i, &u) in nodes.iter().enumerate() {
                if u >= n {
                    return Err(Error::batch(
                        op,
                        format!("entry {i}: node {u} out of range (graph has {n} nodes)"),
                    ));
                }
            }
        }
    }
    Ok(())
}

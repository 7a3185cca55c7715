//! [`NodeMap`]: the sorted map from node id to entry that a version's changes live in.
//!
//! Two levels, like a small log-structured merge tree: a large `frozen` array shared between
//! versions, and a `recent` array that each batch merges its changes into. A batch therefore copies
//! only `recent`; once `recent` outgrows a quarter of `frozen` the two are merged into a new frozen
//! array. A lookup tries `recent` first; a walk in key order merges the two, `recent` winning.

use std::sync::Arc;

use crate::prefetch::{ENTRIES_AHEAD, prefetch};

/// `recent` is folded into `frozen` once it holds more than this many entries and a quarter of
/// `frozen`'s. Small in debug builds, so the tests' small graphs fold often (results never depend
/// on it).
const FOLD_MIN: usize = if cfg!(debug_assertions) { 16 } else { 32_768 };

/// Keys in increasing order and their values.
#[derive(Debug, Clone)]
struct Sorted<V> {
    keys: Vec<u32>,
    values: Vec<V>,
}

impl<V> Default for Sorted<V> {
    fn default() -> Self {
        Sorted { keys: Vec::new(), values: Vec::new() }
    }
}

impl<V: Copy> Sorted<V> {
    #[inline]
    fn get(&self, key: u32) -> Option<V> {
        self.keys.binary_search(&key).ok().map(|i| self.values[i])
    }

    fn len(&self) -> usize {
        self.keys.len()
    }

    /// The index of the first key `>= key`.
    #[inline]
    fn lower_bound(&self, key: u32) -> usize {
        self.keys.partition_point(|&k| k < key)
    }

    /// A copy with `changes` (sorted by key, unique) replacing or joining the entries.
    fn merged(&self, changes: impl Iterator<Item = (u32, V)>, extra: usize) -> Sorted<V> {
        let mut out = Sorted {
            keys: Vec::with_capacity(self.len() + extra),
            values: Vec::with_capacity(self.len() + extra),
        };
        let mut i = 0;
        for (key, value) in changes {
            // A linear walk: changes are many and spread, the runs between them short.
            let mut end = i;
            while end < self.keys.len() && self.keys[end] < key {
                end += 1;
            }
            out.keys.extend_from_slice(&self.keys[i..end]);
            out.values.extend_from_slice(&self.values[i..end]);
            i = end;
            if i < self.keys.len() && self.keys[i] == key {
                i += 1;
            }
            out.keys.push(key);
            out.values.push(value);
        }
        out.keys.extend_from_slice(&self.keys[i..]);
        out.values.extend_from_slice(&self.values[i..]);
        out
    }
}

/// The index of the first of `keys[at..]` that is `>= key`: steps doubling from `at` until past
/// `key`, then a binary search of the last step — cheap when the answer is near.
#[inline]
fn gallop(keys: &[u32], mut at: usize, key: u32) -> usize {
    let mut step = 1;
    while at + step <= keys.len() && keys[at + step - 1] < key {
        at += step;
        step *= 2;
    }
    let end = (at + step).min(keys.len());
    at + keys[at..end].partition_point(|&k| k < key)
}

/// A sorted map from node id to an entry; see the module documentation.
#[derive(Debug, Clone)]
pub(crate) struct NodeMap<V> {
    frozen: Arc<Sorted<V>>,
    recent: Sorted<V>,
}

impl<V> Default for NodeMap<V> {
    fn default() -> Self {
        NodeMap { frozen: Arc::new(Sorted::default()), recent: Sorted::default() }
    }
}

impl<V: Copy> NodeMap<V> {
    #[inline]
    pub(crate) fn get(&self, key: u32) -> Option<V> {
        self.recent.get(key).or_else(|| self.frozen.get(key))
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.recent.keys.is_empty() && self.frozen.keys.is_empty()
    }

    /// The entries with keys in `lo..hi`, in key order.
    #[inline]
    pub(crate) fn range(&self, lo: u32, hi: u32) -> Entries<'_, V> {
        let (r, f) = (&self.recent, &*self.frozen);
        let (ra, fa) = (r.lower_bound(lo), f.lower_bound(lo));
        let (rb, fb) =
            (ra + r.keys[ra..].partition_point(|&k| k < hi), fa + f.keys[fa..].partition_point(|&k| k < hi));
        Entries { recent: (&r.keys[ra..rb], &r.values[ra..rb]), frozen: (&f.keys[fa..fb], &f.values[fa..fb]) }
    }

    /// Every entry, in key order.
    pub(crate) fn iter(&self) -> Entries<'_, V> {
        Entries {
            recent: (&self.recent.keys, &self.recent.values),
            frozen: (&self.frozen.keys, &self.frozen.values),
        }
    }

    /// A copy with `changes` (sorted by key, unique) replacing or joining the entries: merged into
    /// `recent`, and `recent` folded into `frozen` when it has grown enough.
    pub(crate) fn merged(&self, changes: &[(u32, V)]) -> NodeMap<V> {
        let recent = self.recent.merged(changes.iter().copied(), changes.len());
        if recent.len() > FOLD_MIN.max(self.frozen.len() / 4) {
            let frozen = self
                .frozen
                .merged(recent.keys.iter().copied().zip(recent.values.iter().copied()), recent.len());
            return NodeMap { frozen: Arc::new(frozen), recent: Sorted::default() };
        }
        NodeMap { frozen: Arc::clone(&self.frozen), recent }
    }

    /// The entries of `keys` (increasing): one pass over each level — a sequential scan when the
    /// keys are dense enough, a gallop otherwise — then the values read with prefetches ahead. For
    /// the thousands of lookups of one batch this streams the keys instead of missing the cache at
    /// each of them.
    pub(crate) fn lookup_sorted(&self, keys: &[u32]) -> Vec<Option<V>> {
        let mut out = vec![None; keys.len()];
        let mut hits: Vec<(usize, usize)> = Vec::new();
        // `recent` last: its entries override `frozen`'s.
        for level in [&*self.frozen, &self.recent] {
            if level.keys.is_empty() {
                continue;
            }
            hits.clear();
            let dense = level.keys.len() <= keys.len().saturating_mul(64);
            let mut at = 0;
            for (q, &key) in keys.iter().enumerate() {
                if dense {
                    // Eight keys a step over the run of smaller keys, then one at a time.
                    while at + 8 <= level.keys.len() && level.keys[at + 7] < key {
                        at += 8;
                    }
                    while at < level.keys.len() && level.keys[at] < key {
                        at += 1;
                    }
                } else {
                    at = gallop(&level.keys, at, key);
                }
                if at < level.keys.len() && level.keys[at] == key {
                    hits.push((q, at));
                }
            }
            for (k, &(q, at)) in hits.iter().enumerate() {
                if let Some(&(_, ahead)) = hits.get(k + ENTRIES_AHEAD) {
                    prefetch(&level.values, ahead);
                }
                out[q] = Some(level.values[at]);
            }
        }
        out
    }

    /// A cursor for lookups with non-decreasing keys.
    pub(crate) fn cursor(&self) -> Cursor<'_, V> {
        Cursor { recent: (&self.recent, 0), frozen: (&self.frozen, 0) }
    }
}

/// The entries of a key range in key order: the two levels merged, `recent` winning.
#[derive(Debug, Clone)]
pub(crate) struct Entries<'a, V> {
    recent: (&'a [u32], &'a [V]),
    frozen: (&'a [u32], &'a [V]),
}

impl<V: Copy> Iterator for Entries<'_, V> {
    type Item = (u32, V);

    #[inline]
    fn next(&mut self) -> Option<(u32, V)> {
        let (rk, rv) = self.recent;
        let (fk, fv) = self.frozen;
        match (rk.first(), fk.first()) {
            (Some(&r), Some(&f)) if f < r => {
                self.frozen = (&fk[1..], &fv[1..]);
                Some((f, fv[0]))
            }
            (Some(&r), Some(&f)) => {
                if f == r {
                    self.frozen = (&fk[1..], &fv[1..]);
                }
                self.recent = (&rk[1..], &rv[1..]);
                Some((r, rv[0]))
            }
            (Some(&r), None) => {
                self.recent = (&rk[1..], &rv[1..]);
                Some((r, rv[0]))
            }
            (None, Some(&f)) => {
                self.frozen = (&fk[1..], &fv[1..]);
                Some((f, fv[0]))
            }
            (None, None) => None,
        }
    }
}

/// Lookups in a [`NodeMap`] with non-decreasing keys: a walk of both levels, not a search per key.
pub(crate) struct Cursor<'a, V> {
    recent: (&'a Sorted<V>, usize),
    frozen: (&'a Sorted<V>, usize),
}

impl<V: Copy> Cursor<'_, V> {
    #[inline]
    pub(crate) fn seek(&mut self, key: u32) -> Option<V> {
        let found = |(level, at): &mut (&Sorted<V>, usize)| {
            *at = gallop(&level.keys, *at, key);
            (*at < level.keys.len() && level.keys[*at] == key).then(|| level.values[*at])
        };
        let frozen = found(&mut self.frozen);
        found(&mut self.recent).or(frozen)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn map(entries: &[(u32, u32)]) -> NodeMap<u32> {
        NodeMap::default().merged(entries)
    }

    #[test]
    fn merges_overrides_and_walks_in_order() {
        let m = map(&[(1, 10), (4, 40), (9, 90)]).merged(&[(0, 0), (4, 44), (12, 120)]);
        assert_eq!(m.iter().collect::<Vec<_>>(), vec![(0, 0), (1, 10), (4, 44), (9, 90), (12, 120)]);
        assert_eq!(m.range(1, 10).collect::<Vec<_>>(), vec![(1, 10), (4, 44), (9, 90)]);
        assert_eq!((m.get(4), m.get(5)), (Some(44), None));
        let mut cursor = m.cursor();
        assert_eq!(
            [0, 3, 4, 4, 11, 12, 13].map(|k| cursor.seek(k)),
            [Some(0), None, Some(44), Some(44), None, Some(120), None]
        );
    }

    #[test]
    fn recent_folds_into_frozen_and_lookups_agree_throughout() {
        let mut m = NodeMap::default();
        let mut model = std::collections::BTreeMap::new();
        for round in 0..40u32 {
            let changes: Vec<(u32, u32)> = (0..3000)
                .map(|i| (i * 37 % 100_000 + round * 7, round))
                .collect::<std::collections::BTreeMap<_, _>>()
                .into_iter()
                .collect();
            for &(k, v) in &changes {
                model.insert(k, v);
            }
            m = m.merged(&changes);
            assert!(m.recent.len() <= FOLD_MIN.max(m.frozen.len() / 4));
        }
        assert!(m.frozen.len() > 0, "never folded");
        assert_eq!(m.iter().collect::<Vec<_>>(), model.iter().map(|(&k, &v)| (k, v)).collect::<Vec<_>>());
        for (&k, &v) in model.iter().step_by(97) {
            assert_eq!(m.get(k), Some(v));
        }
        let mut cursor = m.cursor();
        for (&k, &v) in model.iter().step_by(13) {
            assert_eq!(cursor.seek(k), Some(v));
        }
        // Batch lookups, dense and sparse, hits and misses.
        for step in [1, 7, 5000] {
            let keys: Vec<u32> = (0..110_000).step_by(step).collect();
            let expected: Vec<Option<u32>> = keys.iter().map(|k| model.get(k).copied()).collect();
            assert_eq!(m.lookup_sorted(&keys), expected, "every {step}th key");
        }
    }
}

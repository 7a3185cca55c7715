//! Software prefetch: a hint that memory will be read soon, so the misses of reads scattered over a
//! large graph (a batch touching 10 000 random lists) overlap instead of stalling one after another.

/// Ask for `data[index]` to be brought into the cache (nothing when out of bounds, or off x86-64).
#[inline(always)]
pub(crate) fn prefetch<T>(data: &[T], index: usize) {
    #[cfg(target_arch = "x86_64")]
    if let Some(item) = data.get(index) {
        // SAFETY: SSE is part of the x86-64 baseline, and a prefetch is a hint: it reads nothing
        // architecturally and never faults, even for an address that is not mapped.
        unsafe {
            core::arch::x86_64::_mm_prefetch::<{ core::arch::x86_64::_MM_HINT_T0 }>(
                (item as *const T).cast(),
            );
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (data, index);
}

/// Which part of a list to prefetch: its offsets come first, its entries once those are in.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Stage {
    /// The offsets that locate the list.
    Offsets,
    /// The list's first entries (ids and weights).
    Entries,
}

/// How far ahead (in lists) the offsets and the entries are asked for.
pub(crate) const OFFSETS_AHEAD: usize = 12;
/// See [`OFFSETS_AHEAD`].
pub(crate) const ENTRIES_AHEAD: usize = 6;

/// Run `body` over `items` in order, prefetching item `k + OFFSETS_AHEAD` at [`Stage::Offsets`] and
/// item `k + ENTRIES_AHEAD` at [`Stage::Entries`] before item `k`.
pub(crate) fn walk<T, E>(
    items: &[T],
    prefetch: impl Fn(&T, Stage),
    mut body: impl FnMut(&T) -> Result<(), E>,
) -> Result<(), E> {
    for (k, item) in items.iter().enumerate() {
        if let Some(ahead) = items.get(k + OFFSETS_AHEAD) {
            prefetch(ahead, Stage::Offsets);
        }
        if let Some(ahead) = items.get(k + ENTRIES_AHEAD) {
            prefetch(ahead, Stage::Entries);
        }
        body(item)?;
    }
    Ok(())
}

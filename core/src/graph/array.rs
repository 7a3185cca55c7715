//! [`Array`]: a read-only array of plain values, owned (a `Vec`) or borrowed from a memory-mapped
//! snapshot file. Either way it derefs to the same slice, so the graph's readers never branch on
//! where the data lives and a snapshot loads without copying its arrays.

use std::ops::Deref;
use std::sync::Arc;

/// Values that may be read straight from file bytes: every bit pattern is a valid value.
///
/// # Safety
/// Implementors must be plain data without padding or invalid bit patterns.
pub(crate) unsafe trait Plain: Copy + Send + Sync + 'static {}

unsafe impl Plain for u8 {}
unsafe impl Plain for u32 {}
unsafe impl Plain for u64 {}
unsafe impl Plain for f32 {}

/// A read-only array, owned or mapped.
pub(crate) struct Array<T: Plain> {
    ptr: *const T,
    len: usize,
    _owner: Owner<T>,
}

/// What keeps an [`Array`]'s memory alive.
enum Owner<T> {
    Vec(Vec<T>),
    Map(Arc<memmap2::Mmap>),
}

// SAFETY: the array is read-only; its memory is owned by a `Vec` or a shared read-only mapping,
// both of which may be read from any thread.
unsafe impl<T: Plain> Send for Array<T> {}
unsafe impl<T: Plain> Sync for Array<T> {}

impl<T: Plain> Array<T> {
    /// `len` values at byte `offset` of `map`, which must be in bounds and aligned for `T` (the
    /// snapshot loader checks both and reports a file that breaks them).
    pub(crate) fn mapped(map: &Arc<memmap2::Mmap>, offset: usize, len: usize) -> Option<Array<T>> {
        let bytes = len.checked_mul(std::mem::size_of::<T>())?;
        let end = offset.checked_add(bytes)?;
        if end > map.len() {
            return None;
        }
        let ptr = map[offset..].as_ptr();
        if !(ptr as usize).is_multiple_of(std::mem::align_of::<T>()) {
            return None;
        }
        Some(Array { ptr: ptr.cast(), len, _owner: Owner::Map(Arc::clone(map)) })
    }

    /// Whether the values live in a mapped file.
    pub(crate) fn is_mapped(&self) -> bool {
        matches!(self._owner, Owner::Map(_))
    }

    /// Bytes the values occupy.
    pub(crate) fn bytes(&self) -> usize {
        self.len * std::mem::size_of::<T>()
    }
}

impl<T: Plain> From<Vec<T>> for Array<T> {
    fn from(values: Vec<T>) -> Self {
        // The heap buffer does not move when the `Vec` moves into the owner.
        Array { ptr: values.as_ptr(), len: values.len(), _owner: Owner::Vec(values) }
    }
}

impl<T: Plain> Default for Array<T> {
    fn default() -> Self {
        Array::from(Vec::new())
    }
}

impl<T: Plain> Deref for Array<T> {
    type Target = [T];
    #[inline]
    fn deref(&self) -> &[T] {
        // SAFETY: `ptr` points at `len` initialised values kept alive by `_owner` for as long as
        // this array exists (a `Vec` never mutated after construction, or a read-only mapping).
        unsafe { std::slice::from_raw_parts(self.ptr, self.len) }
    }
}

impl<T: Plain> Clone for Array<T> {
    fn clone(&self) -> Self {
        match &self._owner {
            Owner::Vec(values) => Array::from(values.clone()),
            Owner::Map(map) => Array { ptr: self.ptr, len: self.len, _owner: Owner::Map(Arc::clone(map)) },
        }
    }
}

impl<T: Plain + std::fmt::Debug> std::fmt::Debug for Array<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Array").field("len", &self.len).field("mapped", &self.is_mapped()).finish()
    }
}

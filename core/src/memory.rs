//! Fallible allocation for structures whose size comes from an input count (a node count, an edge
//! list's length): a count the machine cannot back is an error naming it and the bytes it needs,
//! never an abort of the host process (docs/spec.md §2).

use crate::error::{Error, Result};

/// Below this a build is not checked against the machine's memory (reading it costs more than the
/// allocation could hurt).
const CHECK_ABOVE_BYTES: usize = 1 << 30;

/// Refuse a structure of `bytes` when the machine cannot hold it: more than the memory and swap
/// available now (Linux; elsewhere only the allocations themselves can refuse). `what` names the
/// input count for the message.
pub(crate) fn check_available(what: impl FnOnce() -> String, bytes: usize) -> Result<()> {
    if bytes < CHECK_ABOVE_BYTES {
        return Ok(());
    }
    match available_bytes() {
        Some(available) if bytes > available => {
            Err(Error::OutOfMemory { what: what(), bytes, available: Some(available) })
        }
        _ => Ok(()),
    }
}

/// A vector of `len` copies of `value`, reserved fallibly; `what` names the structure.
pub(crate) fn filled<T: Clone>(len: usize, value: T, what: impl FnOnce() -> String) -> Result<Vec<T>> {
    let mut v = Vec::new();
    reserve(&mut v, len, what)?;
    v.resize(len, value);
    Ok(v)
}

/// Reserve room for `additional` more items of `v`, fallibly.
pub(crate) fn reserve<T>(v: &mut Vec<T>, additional: usize, what: impl FnOnce() -> String) -> Result<()> {
    v.try_reserve_exact(additional).map_err(|_| Error::OutOfMemory {
        what: what(),
        bytes: additional.saturating_mul(std::mem::size_of::<T>()),
        available: None,
    })
}

/// Memory available for new allocations: `MemAvailable + SwapFree` from `/proc/meminfo`.
fn available_bytes() -> Option<usize> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let field = |name: &str| -> Option<usize> {
        let line = text.lines().find(|l| l.starts_with(name))?;
        let kib: usize = line[name.len()..].trim().trim_end_matches("kB").trim().parse().ok()?;
        Some(kib.saturating_mul(1024))
    };
    Some(field("MemAvailable:")?.saturating_add(field("SwapFree:").unwrap_or(0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_impossible_reservation_is_an_error_naming_the_bytes() {
        let e = filled(usize::MAX / 2, 0u32, || "test entries".into()).unwrap_err();
        let message = e.to_string();
        assert!(
            message.contains("cannot allocate test entries") && message.contains("bytes needed"),
            "{message}"
        );
    }

    #[test]
    fn more_than_the_machine_has_is_refused_before_allocating() {
        if available_bytes().is_none() {
            return; // not Linux: nothing to read
        }
        let e = check_available(|| "a graph of many nodes".into(), usize::MAX / 2).unwrap_err();
        assert!(e.to_string().contains("this machine has"), "{e}");
        assert!(check_available(|| unreachable!(), 1024).is_ok());
    }
}

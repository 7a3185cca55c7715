//! The living graph (docs/spec.md §16) and snapshots (§17): batches on a running engine, its
//! version, compaction, and saving and loading graphs.
//!
//! Every batch function takes parallel arrays and their length, copies them, and applies them as one
//! atomic batch: the whole batch is validated first and, on an error naming the offending entry,
//! nothing is applied. `*out_version` (NULL: not wanted) receives the new version.

use std::ffi::{CStr, c_char};
use std::path::Path;
use std::sync::Arc;

use axonal_core::{Batch, Graph, Tier};

use crate::engine::{axonal_engine, engine_ref};
use crate::error::*;
use crate::graph::{axonal_graph, graph_ref};

/// `len` values from `ptr`, copied; NULL is an error unless `len` is 0.
unsafe fn array<T: Copy>(ptr: *const T, len: usize, name: &str) -> FfiResult<Vec<T>> {
    if len == 0 {
        return Ok(Vec::new());
    }
    if ptr.is_null() {
        return Err(FfiError::null(name));
    }
    check_len::<T>(len, name)?;
    Ok(unsafe { std::slice::from_raw_parts(ptr, len) }.to_vec())
}

/// Tier numbers (0 hot, 1 warm, 2 cold) as tiers; the error names the entry.
fn parse_tiers(values: &[u32]) -> FfiResult<Vec<Tier>> {
    values
        .iter()
        .enumerate()
        .map(|(i, &t)| {
            Tier::from_index(t).ok_or_else(|| {
                FfiError::invalid(format!("tiers[{i}] = {t} is not 0 (hot), 1 (warm) or 2 (cold)"))
            })
        })
        .collect()
}

/// Store `value` through an optional out-pointer.
fn optional_out<T>(out: *mut T, value: T) {
    if let Some(out) = unsafe { out.as_mut() } {
        *out = value;
    }
}

/// Apply `batch` and report its version.
fn apply(e: *const axonal_engine, batch: Batch, out_version: *mut u64) -> FfiResult {
    let version = engine_ref(e)?.apply(batch)?;
    optional_out(out_version, version);
    Ok(())
}

/// Add `count` nodes as one batch; `*out_first_id` receives the first new id (the others follow).
/// `tiers`: `count` tier numbers (0 hot, 1 warm, 2 cold), or NULL for all hot. `labels`: `count`
/// NUL-terminated UTF-8 strings (a NULL entry: no label), or NULL for none. `embeddings`:
/// `count × dim` floats, row-major, or NULL for none (`dim` must then be 0); the dimension must be
/// the graph's when it has embeddings.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn axonal_engine_add_nodes(
    e: *const axonal_engine,
    count: u32,
    tiers: *const u32,
    labels: *const *const c_char,
    embeddings: *const f32,
    dim: usize,
    out_first_id: *mut u32,
    out_version: *mut u64,
) -> axonal_status {
    run(|| {
        let engine = engine_ref(e)?;
        let n = count as usize;
        let tiers =
            if tiers.is_null() { None } else { Some(parse_tiers(&unsafe { array(tiers, n, "tiers") }?)?) };
        let labels = if labels.is_null() {
            None
        } else {
            let pointers = unsafe { std::slice::from_raw_parts(labels, n) };
            let mut out = Vec::with_capacity(n);
            for (i, &p) in pointers.iter().enumerate() {
                if p.is_null() {
                    out.push(None);
                    continue;
                }
                let text = unsafe { CStr::from_ptr(p) }
                    .to_str()
                    .map_err(|e| FfiError::invalid(format!("labels[{i}] is not UTF-8: {e}")))?;
                out.push(Some(text.to_owned()));
            }
            Some(out)
        };
        let embeddings = match (embeddings.is_null(), dim) {
            (true, 0) => None,
            (true, _) => return Err(FfiError::invalid(format!("embeddings is NULL but dim is {dim}"))),
            (false, 0) => return Err(FfiError::invalid("dim must be at least 1 when embeddings are given")),
            (false, _) => {
                let len = n.checked_mul(dim).ok_or_else(|| FfiError::invalid("count × dim overflows"))?;
                Some((dim, unsafe { array(embeddings, len, "embeddings") }?))
            }
        };
        let applied = engine.apply_batch(Batch::AddNodes { count, tiers, labels, embeddings })?;
        optional_out(out_first_id, applied.first_node);
        optional_out(out_version, applied.version);
        Ok(())
    })
}

/// Append `len` edges to their sources' lists as one batch (weights in (0, 1]).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn axonal_engine_add_edges(
    e: *const axonal_engine,
    src: *const u32,
    dst: *const u32,
    weight: *const f32,
    len: usize,
    out_version: *mut u64,
) -> axonal_status {
    run(|| {
        let (src, dst, weight) =
            unsafe { (array(src, len, "src")?, array(dst, len, "dst")?, array(weight, len, "weight")?) };
        apply(e, Batch::AddEdges { src, dst, weight }, out_version)
    })
}

/// Give every `src[i] → dst[i]` edge the weight `weight[i]`, as one batch; a pair with no edge is an
/// error. A repeated pair takes its last weight.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn axonal_engine_set_weights(
    e: *const axonal_engine,
    src: *const u32,
    dst: *const u32,
    weight: *const f32,
    len: usize,
    out_version: *mut u64,
) -> axonal_status {
    run(|| {
        let (src, dst, weight) =
            unsafe { (array(src, len, "src")?, array(dst, len, "dst")?, array(weight, len, "weight")?) };
        apply(e, Batch::SetWeights { src, dst, weight }, out_version)
    })
}

/// Remove every `src[i] → dst[i]` edge, as one batch; a pair with no edge, or listed twice, is an
/// error.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn axonal_engine_remove_edges(
    e: *const axonal_engine,
    src: *const u32,
    dst: *const u32,
    len: usize,
    out_version: *mut u64,
) -> axonal_status {
    run(|| {
        let (src, dst) = unsafe { (array(src, len, "src")?, array(dst, len, "dst")?) };
        apply(e, Batch::RemoveEdges { src, dst }, out_version)
    })
}

/// Move `nodes[i]` to tier `tiers[i]` (0 hot, 1 warm, 2 cold), as one batch; a repeated node takes
/// its last tier.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn axonal_engine_set_tiers(
    e: *const axonal_engine,
    nodes: *const u32,
    tiers: *const u32,
    len: usize,
    out_version: *mut u64,
) -> axonal_status {
    run(|| {
        let nodes = unsafe { array(nodes, len, "nodes") }?;
        let tiers = parse_tiers(&unsafe { array(tiers, len, "tiers") }?)?;
        apply(e, Batch::SetTiers { nodes, tiers }, out_version)
    })
}

/// The engine's current graph version.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn axonal_engine_graph_version(
    e: *const axonal_engine,
    out_version: *mut u64,
) -> axonal_status {
    run(|| {
        let engine = engine_ref(e)?;
        *out_arg(out_version, "out_version")? = engine.graph_version();
        Ok(())
    })
}

/// Fold the pending changes into a fresh graph now (recalls do not wait); `*out_version` (NULL: not
/// wanted) receives the version, which compaction never changes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn axonal_engine_compact(
    e: *const axonal_engine,
    out_version: *mut u64,
) -> axonal_status {
    run(|| {
        let version = engine_ref(e)?.compact()?;
        optional_out(out_version, version);
        Ok(())
    })
}

/// Save the engine's current graph version to `path` as a snapshot (docs/spec.md §17): written to a
/// temporary file beside it, synced, and renamed over it. `*out_version` (NULL: not wanted) receives
/// the version saved.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn axonal_engine_save(
    e: *const axonal_engine,
    path: *const c_char,
    out_version: *mut u64,
) -> axonal_status {
    run(|| {
        let engine = engine_ref(e)?;
        let path = unsafe { str_arg(path, "path") }?;
        optional_out(out_version, engine.save(path)?);
        Ok(())
    })
}

/// Save `g` to `path` as a snapshot (temporary file, sync, rename); `*out_bytes` (NULL: not wanted)
/// receives the file's size.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn axonal_graph_save(
    g: *const axonal_graph,
    path: *const c_char,
    out_bytes: *mut u64,
) -> axonal_status {
    run(|| {
        let g = graph_ref(g)?;
        let path = unsafe { str_arg(path, "path") }?;
        optional_out(out_bytes, g.graph.save(path)?.bytes);
        Ok(())
    })
}

/// Load a snapshot: the file is mapped and every section's checksum and structure verified; a bad
/// file is `AXONAL_STATUS_GRAPH` with a message naming the section, offset and what was wrong. An
/// engine created over the graph continues the version numbering of the engine that saved it.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn axonal_graph_load(
    path: *const c_char,
    out: *mut *mut axonal_graph,
) -> axonal_status {
    run(|| {
        let out = handle_out(out)?;
        let path = unsafe { str_arg(path, "path") }?;
        let graph = Graph::load(Path::new(path))?;
        *out = Box::into_raw(Box::new(axonal_graph { graph: Arc::new(graph) }));
        Ok(())
    })
}

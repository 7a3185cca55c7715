//! Graph builder and graph handles.

use std::ffi::c_char;
use std::path::Path;
use std::sync::Arc;

use axonal_core::{Graph, GraphBuilder, Tier};

use crate::error::*;

/// A graph under construction. Not thread-safe: use from one thread at a time. Created by
/// `axonal_graph_builder_new`; consumed by `axonal_graph_builder_build` (even on error) or freed by
/// `axonal_graph_builder_free`.
pub struct axonal_graph_builder {
    builder: GraphBuilder,
}

/// An immutable graph. Thread-safe: may be shared and read from any thread. Engines keep their own
/// reference, so a graph may be freed with `axonal_graph_free` as soon as no call of yours uses it.
pub struct axonal_graph {
    pub(crate) graph: Arc<Graph>,
}

/// Create a builder for a graph of `node_count` nodes (ids `0..node_count`, all hot).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn axonal_graph_builder_new(
    node_count: u32,
    out: *mut *mut axonal_graph_builder,
) -> axonal_status {
    run(|| {
        let out = handle_out(out)?;
        *out = Box::into_raw(Box::new(axonal_graph_builder { builder: GraphBuilder::new(node_count) }));
        Ok(())
    })
}

fn builder<'a>(b: *mut axonal_graph_builder) -> FfiResult<&'a mut GraphBuilder> {
    unsafe { b.as_mut() }.map(|b| &mut b.builder).ok_or_else(|| FfiError::null("builder"))
}

/// Set the tier of `node`: 0 hot, 1 warm, 2 cold (other values are rejected).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn axonal_graph_builder_set_tier(
    b: *mut axonal_graph_builder,
    node: u32,
    tier: u32,
) -> axonal_status {
    run(|| {
        let b = builder(b)?;
        let tier = Tier::from_index(tier)
            .ok_or_else(|| FfiError::invalid(format!("tier {tier} is not 0 (hot), 1 (warm) or 2 (cold)")))?;
        Ok(b.set_tier(node, tier)?)
    })
}

/// Set the label of `node` (a NUL-terminated UTF-8 string, copied).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn axonal_graph_builder_set_label(
    b: *mut axonal_graph_builder,
    node: u32,
    label: *const c_char,
) -> axonal_status {
    run(|| {
        let b = builder(b)?;
        let label = unsafe { str_arg(label, "label") }?;
        Ok(b.set_label(node, label)?)
    })
}

/// Set the embedding of `node` (`dim` floats, copied); every embedding of a graph has one dimension.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn axonal_graph_builder_set_embedding(
    b: *mut axonal_graph_builder,
    node: u32,
    v: *const f32,
    dim: usize,
) -> axonal_status {
    run(|| {
        let b = builder(b)?;
        if v.is_null() {
            return Err(FfiError::null("v"));
        }
        if dim == 0 {
            return Err(FfiError::invalid("dim must be at least 1"));
        }
        check_len::<f32>(dim, "dim")?;
        let v = unsafe { std::slice::from_raw_parts(v, dim) };
        Ok(b.set_embedding(node, v)?)
    })
}

/// Add `len` edges from three parallel arrays (copied). Nothing is added unless every edge is valid;
/// the error names the first bad edge by its index among all edges added to this builder.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn axonal_graph_builder_add_edges(
    b: *mut axonal_graph_builder,
    src: *const u32,
    dst: *const u32,
    weight: *const f32,
    len: usize,
) -> axonal_status {
    run(|| {
        let b = builder(b)?;
        if len == 0 {
            return Err(FfiError::invalid("len must be at least 1"));
        }
        for (ptr, name) in [(src.cast::<u8>(), "src"), (dst.cast(), "dst"), (weight.cast(), "weight")] {
            if ptr.is_null() {
                return Err(FfiError::null(name));
            }
        }
        check_len::<u32>(len, "len")?;
        let (src, dst, weight) = unsafe {
            (
                std::slice::from_raw_parts(src, len),
                std::slice::from_raw_parts(dst, len),
                std::slice::from_raw_parts(weight, len),
            )
        };
        Ok(b.add_edges(src, dst, weight)?)
    })
}

/// Build the graph. Consumes `b` whatever the outcome: do not use or free it afterwards.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn axonal_graph_builder_build(
    b: *mut axonal_graph_builder,
    out: *mut *mut axonal_graph,
) -> axonal_status {
    run(|| {
        if b.is_null() {
            return Err(FfiError::null("builder"));
        }
        // Consumed even when `out` is NULL, as documented.
        let builder = unsafe { Box::from_raw(b) }.builder;
        let out = handle_out(out)?;
        let graph = builder.build()?;
        *out = Box::into_raw(Box::new(axonal_graph { graph: Arc::new(graph) }));
        Ok(())
    })
}

/// Free a builder that was not built (NULL is ignored).
#[unsafe(no_mangle)]
pub unsafe extern "C" fn axonal_graph_builder_free(b: *mut axonal_graph_builder) {
    run_void(|| {
        if !b.is_null() {
            drop(unsafe { Box::from_raw(b) });
        }
    });
}

/// Load a graph from a TSV edge list and an optional node file (NULL: none). Errors name the file
/// and line.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn axonal_graph_from_tsv(
    edges_path: *const c_char,
    nodes_path: *const c_char,
    out: *mut *mut axonal_graph,
) -> axonal_status {
    run(|| {
        let out = handle_out(out)?;
        let edges = unsafe { str_arg(edges_path, "edges_path") }?;
        let nodes =
            if nodes_path.is_null() { None } else { Some(unsafe { str_arg(nodes_path, "nodes_path") }?) };
        let graph = Graph::from_tsv(edges, nodes.map(Path::new))?;
        *out = Box::into_raw(Box::new(axonal_graph { graph: Arc::new(graph) }));
        Ok(())
    })
}

pub(crate) fn graph_ref<'a>(g: *const axonal_graph) -> FfiResult<&'a axonal_graph> {
    unsafe { g.as_ref() }.ok_or_else(|| FfiError::null("graph"))
}

/// The number of nodes.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn axonal_graph_node_count(g: *const axonal_graph, out: *mut usize) -> axonal_status {
    run(|| {
        let g = graph_ref(g)?;
        *out_arg(out, "out")? = g.graph.node_count();
        Ok(())
    })
}

/// The number of edges.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn axonal_graph_edge_count(g: *const axonal_graph, out: *mut usize) -> axonal_status {
    run(|| {
        let g = graph_ref(g)?;
        *out_arg(out, "out")? = g.graph.edge_count();
        Ok(())
    })
}

/// Free a graph (NULL is ignored). Engines that use it keep their own reference.
#[unsafe(no_mangle)]
pub unsafe extern "C" fn axonal_graph_free(g: *mut axonal_graph) {
    run_void(|| {
        if !g.is_null() {
            drop(unsafe { Box::from_raw(g) });
        }
    });
}

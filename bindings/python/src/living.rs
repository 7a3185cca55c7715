//! Batches for the living graph (docs/spec.md §16) from Python inputs: NumPy arrays are read in place
//! (one copy into the batch, no walk over Python objects); other sequences are converted, and an
//! error names the entry and its value. Validation against the graph (unknown nodes, missing pairs,
//! weights) is core's, so the messages are the same in every language.

use axonal_core::{Batch, Tier};
use numpy::{PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;
use pyo3::types::PyString;

use crate::convert::{Column, NODE_ID, describe, is_text, weights};
use crate::errors::GraphError;
use crate::graph::parse_tiers;

/// Which edge batch to make.
pub(crate) enum Kind {
    Add,
    Reweight,
    Remove,
}

/// An edge batch from `src`, `dst` and (except for removals) `weight`.
pub(crate) fn edges(
    src: &Bound<'_, PyAny>,
    dst: &Bound<'_, PyAny>,
    weight: Option<&Bound<'_, PyAny>>,
    kind: Kind,
) -> PyResult<Batch> {
    let src = Column::<u32>::extract(src, "src", NODE_ID)?.as_slice().to_vec();
    let dst = Column::<u32>::extract(dst, "dst", NODE_ID)?.as_slice().to_vec();
    let weight = match weight {
        Some(weight) => weights(weight)?.as_slice().to_vec(),
        None => Vec::new(),
    };
    Ok(match kind {
        Kind::Add => Batch::AddEdges { src, dst, weight },
        Kind::Reweight => Batch::SetWeights { src, dst, weight },
        Kind::Remove => Batch::RemoveEdges { src, dst },
    })
}

/// A tier batch from `nodes` and `tiers` (names, numbers or a NumPy integer array).
pub(crate) fn set_tiers(nodes: &Bound<'_, PyAny>, tiers: &Bound<'_, PyAny>) -> PyResult<Batch> {
    let nodes = Column::<u32>::extract(nodes, "nodes", NODE_ID)?.as_slice().to_vec();
    Ok(Batch::SetTiers { nodes, tiers: parse_tiers(tiers)? })
}

/// A node batch: `count` nodes with optional tiers, labels and embeddings (one per node).
pub(crate) fn add_nodes(
    count: u32,
    tiers: Option<&Bound<'_, PyAny>>,
    labels: Option<&Bound<'_, PyAny>>,
    embeddings: Option<&Bound<'_, PyAny>>,
) -> PyResult<Batch> {
    let tiers: Option<Vec<Tier>> = tiers.map(parse_tiers).transpose()?;
    let labels = labels.map(parse_labels).transpose()?;
    let embeddings = embeddings.map(parse_embeddings).transpose()?;
    Ok(Batch::AddNodes { count, tiers, labels, embeddings })
}

/// Labels: a sequence of `str` or `None`. A string that is not valid Unicode (a lone surrogate)
/// cannot be a label.
fn parse_labels(labels: &Bound<'_, PyAny>) -> PyResult<Vec<Option<String>>> {
    if is_text(labels) {
        return Err(PyTypeError::new_err(format!("labels: expected a sequence, got {}", describe(labels))));
    }
    let mut out = Vec::new();
    for (i, item) in labels.try_iter()?.enumerate() {
        let item = item?;
        if item.is_none() {
            out.push(None);
            continue;
        }
        let Ok(text) = item.cast::<PyString>() else {
            return Err(PyTypeError::new_err(format!(
                "labels[{i}]: {} is not a str or None",
                describe(&item)
            )));
        };
        let text = text.to_cow().map_err(|_| {
            GraphError::new_err(format!("labels[{i}]: {} is not valid UTF-8 text", describe(&item)))
        })?;
        out.push(Some(text.into_owned()));
    }
    Ok(out)
}

/// Embeddings as `(dim, row-major values)`: a 2-D float array (float32 read in place), or a
/// sequence of equally long sequences of numbers.
fn parse_embeddings(embeddings: &Bound<'_, PyAny>) -> PyResult<(usize, Vec<f32>)> {
    if let Ok(matrix) = embeddings.extract::<PyReadonlyArray2<'_, f32>>() {
        let dim = matrix.shape()[1];
        return Ok((dim, matrix.as_array().iter().copied().collect()));
    }
    if let Ok(matrix) = embeddings.extract::<PyReadonlyArray2<'_, f64>>() {
        let dim = matrix.shape()[1];
        return Ok((dim, matrix.as_array().iter().map(|&x| x as f32).collect()));
    }
    let rows: Vec<Vec<f32>> = embeddings
        .extract()
        .map_err(|e| PyTypeError::new_err(format!("embeddings: expected a 2-D array of floats ({e})")))?;
    let dim = rows.first().map_or(0, Vec::len);
    if let Some(i) = rows.iter().position(|row| row.len() != dim) {
        return Err(GraphError::new_err(format!(
            "embeddings[{i}]: {} values, the first row has {dim}",
            rows[i].len()
        )));
    }
    Ok((dim, rows.into_iter().flatten().collect()))
}

//! `axonal.Graph`: an immutable graph (docs/spec.md §2), built from edge arrays or a TSV file.

use std::sync::Arc;

use axonal_core::{GraphBuilder, Tier};
use numpy::{PyReadonlyArray1, PyReadonlyArray2};
use pyo3::exceptions::PyTypeError;
use pyo3::prelude::*;

use crate::convert::{Column, NODE_ID, check_per_node, describe, is_text, weights};
use crate::errors::{GraphError, py_err};

/// An immutable graph (docs/spec.md §2).
#[pyclass(frozen, module = "axonal._native")]
pub(crate) struct Graph {
    pub(crate) inner: Arc<axonal_core::Graph>,
}

pub(crate) fn parse_tier(value: &Bound<'_, PyAny>, index: usize) -> PyResult<Tier> {
    if let Ok(name) = value.extract::<String>() {
        return Tier::parse(&name).ok_or_else(|| {
            GraphError::new_err(format!("tiers[{index}]: unknown tier {name:?} (hot, warm or cold)"))
        });
    }
    let number: u32 = value.extract().map_err(|_| {
        PyTypeError::new_err(format!("tiers[{index}]: expected \"hot\"/\"warm\"/\"cold\" or 0/1/2"))
    })?;
    Tier::from_index(number)
        .ok_or_else(|| GraphError::new_err(format!("tiers[{index}]: tier {number} out of range 0..=2")))
}

/// Tiers from a NumPy integer array (read in place) or a sequence of names or numbers; the error
/// names the entry.
pub(crate) fn parse_tiers(tiers: &Bound<'_, PyAny>) -> PyResult<Vec<Tier>> {
    if let Ok(codes) = tiers.extract::<PyReadonlyArray1<'_, u8>>() {
        return codes
            .as_array()
            .iter()
            .enumerate()
            .map(|(i, &code)| {
                Tier::from_index(code as u32)
                    .ok_or_else(|| GraphError::new_err(format!("tiers[{i}]: tier {code} out of range 0..=2")))
            })
            .collect();
    }
    if is_text(tiers) {
        return Err(PyTypeError::new_err(format!("tiers: expected a sequence, got {}", describe(tiers))));
    }
    tiers.try_iter()?.enumerate().map(|(i, tier)| parse_tier(&tier?, i)).collect()
}

#[pymethods]
impl Graph {
    /// Build from parallel edge arrays; `num_nodes` defaults to the largest id + 1.
    #[staticmethod]
    #[pyo3(signature = (src, dst, weight, num_nodes=None, tiers=None, labels=None, embeddings=None))]
    #[allow(clippy::too_many_arguments)]
    fn from_edges(
        py: Python<'_>,
        src: Bound<'_, PyAny>,
        dst: Bound<'_, PyAny>,
        weight: Bound<'_, PyAny>,
        num_nodes: Option<u32>,
        tiers: Option<Bound<'_, PyAny>>,
        labels: Option<Vec<Option<String>>>,
        embeddings: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Graph> {
        let (src, dst, weight) = (
            Column::<u32>::extract(&src, "src", NODE_ID)?,
            Column::<u32>::extract(&dst, "dst", NODE_ID)?,
            weights(&weight)?,
        );
        let (src, dst, weight) = (src.as_slice(), dst.as_slice(), weight.as_slice());
        if src.len() != dst.len() || src.len() != weight.len() {
            return Err(GraphError::new_err(format!(
                "src, dst and weight must have the same length (got {}, {}, {})",
                src.len(),
                dst.len(),
                weight.len()
            )));
        }
        let n = match num_nodes {
            Some(n) => n,
            None => src.iter().chain(dst).max().map_or(0, |&m| m.saturating_add(1)),
        };
        let mut builder = GraphBuilder::new(n);
        builder.add_edges(src, dst, weight).map_err(py_err)?;
        if let Some(tiers) = tiers {
            let tiers = parse_tiers(&tiers)?;
            check_per_node("tiers", tiers.len(), n)?;
            for (i, tier) in tiers.into_iter().enumerate() {
                builder.set_tier(i as u32, tier).map_err(py_err)?;
            }
        }
        if let Some(labels) = labels {
            check_per_node("labels", labels.len(), n)?;
            for (i, label) in labels.into_iter().enumerate() {
                if let Some(label) = label {
                    builder.set_label(i as u32, label).map_err(py_err)?;
                }
            }
        }
        if let Some(embeddings) = embeddings {
            if let Ok(matrix) = embeddings.extract::<PyReadonlyArray2<'_, f32>>() {
                let matrix = matrix.as_array();
                check_per_node("embeddings", matrix.nrows(), n)?;
                for (i, row) in matrix.rows().into_iter().enumerate() {
                    let row: Vec<f32> = row.iter().copied().collect();
                    builder.set_embedding(i as u32, &row).map_err(py_err)?;
                }
            } else {
                let rows: Vec<Vec<f32>> = embeddings.extract().map_err(|e| {
                    PyTypeError::new_err(format!("embeddings: expected a 2-D array of floats ({e})"))
                })?;
                check_per_node("embeddings", rows.len(), n)?;
                for (i, row) in rows.iter().enumerate() {
                    builder.set_embedding(i as u32, row).map_err(py_err)?;
                }
            }
        }
        let graph = py.detach(|| builder.build()).map_err(py_err)?;
        Ok(Graph { inner: Arc::new(graph) })
    }

    /// Load a TSV edge list (`src<TAB>dst<TAB>weight`) and an optional node file.
    #[staticmethod]
    #[pyo3(signature = (edges_path, nodes_path=None))]
    fn from_tsv(
        py: Python<'_>,
        edges_path: std::path::PathBuf,
        nodes_path: Option<std::path::PathBuf>,
    ) -> PyResult<Graph> {
        let graph =
            py.detach(|| axonal_core::Graph::from_tsv(&edges_path, nodes_path.as_deref())).map_err(py_err)?;
        Ok(Graph { inner: Arc::new(graph) })
    }

    #[getter]
    fn num_nodes(&self) -> usize {
        self.inner.node_count()
    }

    /// The graph version it was saved at (0 for a graph built from input): an engine started
    /// from it continues the numbering.
    #[getter]
    fn version(&self) -> u64 {
        self.inner.origin_version()
    }

    #[getter]
    fn num_edges(&self) -> usize {
        self.inner.edge_count()
    }

    /// The label of node `i` (None when it has none).
    fn label(&self, i: u32) -> PyResult<Option<String>> {
        if i as usize >= self.inner.node_count() {
            return Err(GraphError::new_err(format!(
                "node {i} out of range (the graph has {} nodes)",
                self.inner.node_count()
            )));
        }
        Ok(self.inner.label(i).map(str::to_owned))
    }

    /// The node labelled `label`, or None.
    fn find(&self, label: &str) -> Option<u32> {
        self.inner.find(label)
    }

    /// Save as a snapshot (docs/spec.md §17): a temporary file beside `path`, synced and renamed
    /// over it, so a crash leaves the old file or the new one. Returns the file's size in bytes.
    fn save(&self, py: Python<'_>, path: std::path::PathBuf) -> PyResult<u64> {
        let graph = Arc::clone(&self.inner);
        py.detach(|| graph.save(&path)).map(|stats| stats.bytes).map_err(py_err)
    }

    /// Load a snapshot: the file is mapped and every section's checksum and structure verified; a
    /// damaged, truncated, foreign or future-version file raises `GraphError` naming what is wrong.
    /// An engine built over it continues the version numbering of the engine that saved it.
    #[staticmethod]
    fn load(py: Python<'_>, path: std::path::PathBuf) -> PyResult<Graph> {
        let graph = py.detach(|| axonal_core::Graph::load(&path)).map_err(py_err)?;
        Ok(Graph { inner: Arc::new(graph) })
    }

    fn __repr__(&self) -> String {
        format!("Graph(num_nodes={}, num_edges={})", self.inner.node_count(), self.inner.edge_count())
    }
}

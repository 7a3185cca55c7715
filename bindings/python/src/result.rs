//! `axonal.RecallResult`: what a recall returned, with the graph it ran on. Python values are built
//! on access, so a caller reading only `nodes` pays for no more.

use std::sync::Arc;

use numpy::{IntoPyArray, PyArray1};
use pyo3::prelude::*;
use pyo3::types::PyList;

use crate::convert::to_py;

/// What a recall returned: NumPy arrays of the results, who answered and why, and the stats. The
/// Python values are built on access, so a recall whose caller reads only `nodes` pays for no more.
#[pyclass(frozen, module = "axonal._native")]
pub(crate) struct RecallResult {
    pub(crate) recall: axonal_core::Recall,
    /// The graph the recall ran on: its labels and tiers describe these results.
    pub(crate) graph: Arc<axonal_core::GraphVersion>,
}

#[pymethods]
impl RecallResult {
    /// Node ids, best first (uint32).
    #[getter]
    fn nodes<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<u32>> {
        self.recall.results.iter().map(|a| a.node).collect::<Vec<_>>().into_pyarray(py)
    }

    /// Activations, best first (float32).
    #[getter]
    fn activations<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f32>> {
        self.recall.results.iter().map(|a| a.activation).collect::<Vec<_>>().into_pyarray(py)
    }

    /// Hops from the nearest seed (uint32).
    #[getter]
    fn hops<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<u32>> {
        self.recall.results.iter().map(|a| a.hops).collect::<Vec<_>>().into_pyarray(py)
    }

    /// Tier names, best first.
    #[getter]
    fn tiers(&self) -> Vec<&'static str> {
        self.recall.results.iter().map(|a| a.tier.as_str()).collect()
    }

    /// `"spreading"` or `"fallback"`.
    #[getter]
    fn source(&self) -> &'static str {
        match self.recall.source {
            axonal_core::Source::Spreading => "spreading",
            axonal_core::Source::Fallback => "fallback",
        }
    }

    /// Why the fallback answered (`breaker_open`, `error`, `slow`, `low_mass`), or None.
    #[getter]
    fn reason(&self) -> Option<&'static str> {
        self.recall.reason.map(|r| r.as_str())
    }

    /// The spread's stats (docs/spec.md §15).
    #[getter]
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.recall.stats_view())
    }

    /// Labels of the results, best first (`None` for a node without one), from the graph the
    /// recall ran on.
    #[getter]
    fn labels(&self) -> Vec<Option<&str>> {
        self.recall.results.iter().map(|a| self.graph.label(a.node)).collect()
    }

    fn __len__(&self) -> usize {
        self.recall.results.len()
    }

    /// Rows `(node, activation, hops, tier)` of plain Python values, best first.
    fn __iter__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let rows = self.recall.results.iter().map(|a| (a.node, a.activation, a.hops, a.tier.as_str()));
        PyList::new(py, rows)?.try_iter().map(Bound::into_any)
    }

    fn __repr__(&self) -> String {
        format!(
            "Recall(results={}, source={:?}, reason={:?})",
            self.recall.results.len(),
            self.source(),
            self.reason()
        )
    }
}

/// The answers of a batch in columnar form (`recall_batch(..., columnar=True)`): cue `i`'s results
/// are `nodes[offsets[i]:offsets[i + 1]]` (and the same slice of `activations` and `hops`). Arrays
/// are built on access.
#[pyclass(frozen, module = "axonal._native")]
pub(crate) struct RecallBatch {
    pub(crate) recalls: Vec<axonal_core::Recall>,
    /// The graph every cue ran on.
    pub(crate) graph: Arc<axonal_core::GraphVersion>,
}

impl RecallBatch {
    fn flat<'py, T: numpy::Element>(
        &self,
        py: Python<'py>,
        value: impl Fn(&axonal_core::Activation) -> T,
    ) -> Bound<'py, PyArray1<T>> {
        self.recalls.iter().flat_map(|r| r.results.iter().map(&value)).collect::<Vec<_>>().into_pyarray(py)
    }
}

#[pymethods]
impl RecallBatch {
    /// Where each cue's results start, and where the last ends (`len(self) + 1` entries, uint64).
    #[getter]
    fn offsets<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<u64>> {
        let mut at = 0u64;
        std::iter::once(0)
            .chain(self.recalls.iter().map(|r| {
                at += r.results.len() as u64;
                at
            }))
            .collect::<Vec<_>>()
            .into_pyarray(py)
    }

    /// Node ids, each cue's best first (uint32).
    #[getter]
    fn nodes<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<u32>> {
        self.flat(py, |a| a.node)
    }

    /// Activations (float32).
    #[getter]
    fn activations<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<f32>> {
        self.flat(py, |a| a.activation)
    }

    /// Hops from the nearest seed (uint32).
    #[getter]
    fn hops<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<u32>> {
        self.flat(py, |a| a.hops)
    }

    /// Per cue: whether the fallback answered (bool).
    #[getter]
    fn fallback<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<bool>> {
        self.recalls
            .iter()
            .map(|r| r.source == axonal_core::Source::Fallback)
            .collect::<Vec<_>>()
            .into_pyarray(py)
    }

    /// Per cue: why the fallback answered, or None.
    #[getter]
    fn reasons(&self) -> Vec<Option<&'static str>> {
        self.recalls.iter().map(|r| r.reason.map(|r| r.as_str())).collect()
    }

    /// The version of the graph every cue ran on.
    #[getter]
    fn graph_version(&self) -> u64 {
        self.graph.version()
    }

    /// Cue `i`'s answer as a `RecallResult`.
    fn __getitem__(&self, index: isize) -> PyResult<RecallResult> {
        let n = self.recalls.len() as isize;
        let i = if index < 0 { index + n } else { index };
        if !(0..n).contains(&i) {
            return Err(pyo3::exceptions::PyIndexError::new_err(format!(
                "cue {index} is out of range for a batch of {n}"
            )));
        }
        Ok(RecallResult { recall: self.recalls[i as usize].clone(), graph: Arc::clone(&self.graph) })
    }

    /// The number of cues.
    fn __len__(&self) -> usize {
        self.recalls.len()
    }

    /// Each cue's answer as a `RecallResult`, in order.
    fn __iter__<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let results = self
            .recalls
            .iter()
            .map(|recall| {
                Bound::new(py, RecallResult { recall: recall.clone(), graph: Arc::clone(&self.graph) })
            })
            .collect::<PyResult<Vec<_>>>()?;
        PyList::new(py, results)?.try_iter().map(Bound::into_any)
    }

    fn __repr__(&self) -> String {
        let fallbacks = self.recalls.iter().filter(|r| r.source == axonal_core::Source::Fallback).count();
        format!("RecallBatch(cues={}, fallbacks={fallbacks})", self.recalls.len())
    }
}

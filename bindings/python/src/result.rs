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

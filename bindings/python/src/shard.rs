//! `axonal._native.Shard`: one shard of a graph partitioned by destination, the native kernel of a
//! sharded recall (docs/spec.md §20). A coordinator (`axonal.ray`) drives the supersteps.

use std::sync::Mutex;

use axonal_core::shard::{self, FrontierView};
use axonal_core::{EngineConfig, SpreadParams};
use numpy::{IntoPyArray, PyArray1};
use pyo3::prelude::*;
use pyo3::types::PyTuple;

use crate::convert::{Column, to_value};
use crate::errors::{RecallError, py_err};
use crate::graph::Graph;

/// Seed ids and activations as NumPy arrays.
type SeedArrays<'py> = (Bound<'py, PyArray1<u32>>, Bound<'py, PyArray1<f32>>);

/// One shard: the nodes `lo..hi` of a graph with their in-edges, and one recall's state.
#[pyclass(frozen, module = "axonal._native")]
pub(crate) struct Shard {
    inner: Mutex<shard::Shard>,
    params: SpreadParams,
    k: usize,
}

fn params_of(config: Option<Bound<'_, PyAny>>) -> PyResult<(SpreadParams, usize)> {
    let patch = config.map(|c| to_value(&c, "config")).transpose()?;
    let config = match &patch {
        Some(patch) => EngineConfig::default().patched(patch).map_err(py_err)?,
        None => EngineConfig::default(),
    };
    Ok((SpreadParams::from(&config.spreading), config.recall.k))
}

impl Shard {
    fn lock(&self) -> std::sync::MutexGuard<'_, shard::Shard> {
        // A panic inside the kernel is not expected; after one the shard's arrays are cleared
        // whole (the recall's lists may not name what it touched) and the shard is usable again.
        self.inner.lock().unwrap_or_else(|poisoned| {
            let mut shard = poisoned.into_inner();
            shard.clear();
            self.inner.clear_poison();
            shard
        })
    }
}

#[pymethods]
impl Shard {
    /// The shard of `graph` owning nodes `lo..hi`; `config` as `Engine`'s (its `spreading` section
    /// and `recall.k` apply).
    #[new]
    #[pyo3(signature = (graph, lo, hi, config=None))]
    fn new(
        py: Python<'_>,
        graph: &Graph,
        lo: u32,
        hi: u32,
        config: Option<Bound<'_, PyAny>>,
    ) -> PyResult<Shard> {
        let (params, k) = params_of(config)?;
        let graph = std::sync::Arc::clone(&graph.inner);
        let inner = py.detach(|| shard::Shard::from_graph(&graph, lo, hi)).map_err(py_err)?;
        Ok(Shard { inner: Mutex::new(inner), params, k })
    }

    /// The shard `lo..hi` of the snapshot at `path`: the file is mapped and only this shard's rows
    /// are read; returns the shard and the snapshot's graph version.
    #[staticmethod]
    #[pyo3(signature = (path, lo, hi, config=None))]
    fn load(
        py: Python<'_>,
        path: std::path::PathBuf,
        lo: u32,
        hi: u32,
        config: Option<Bound<'_, PyAny>>,
    ) -> PyResult<(Shard, u64)> {
        let (params, k) = params_of(config)?;
        let (inner, version) = py
            .detach(|| {
                let graph = axonal_core::Graph::load(&path)?;
                Ok::<_, axonal_core::Error>((
                    shard::Shard::from_graph(&graph, lo, hi)?,
                    graph.origin_version(),
                ))
            })
            .map_err(py_err)?;
        Ok((Shard { inner: Mutex::new(inner), params, k }, version))
    }

    /// Seeds of a cue (as `Engine.recall`'s `seeds`) resolved against `node_count` nodes: ids and
    /// activations as NumPy arrays, unique and ascending, duplicates summed and capped at 1.
    #[staticmethod]
    fn normalise_seeds<'py>(
        py: Python<'py>,
        seeds: Bound<'py, PyAny>,
        node_count: u32,
    ) -> PyResult<SeedArrays<'py>> {
        let seeds = crate::convert::seeds(&seeds)?;
        let merged = shard::normalise_seeds(node_count, &seeds).map_err(py_err)?;
        let (ids, activations): (Vec<u32>, Vec<f32>) = merged.into_iter().unzip();
        Ok((ids.into_pyarray(py), activations.into_pyarray(py)))
    }

    /// The first frontier of a recall from normalised seeds (`normalise_seeds`) over the whole
    /// `graph` (a coordinator's mapped snapshot; only the seeds' degrees and tiers are read), as every
    /// shard's `begin` would mark it, merged: `(ids, sends, tier_ends, edges)`. Sent with the seeds to
    /// `step`, it saves the round of `begin`.
    #[staticmethod]
    #[pyo3(signature = (graph, ids, activations, config=None))]
    fn seed_frontier<'py>(
        py: Python<'py>,
        graph: &Graph,
        ids: Bound<'py, PyAny>,
        activations: Bound<'py, PyAny>,
        config: Option<Bound<'py, PyAny>>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let (params, _) = params_of(config)?;
        let seeds = seed_list(&ids, &activations)?;
        let marked = shard::seed_frontier(&graph.inner, &params, &seeds).map_err(py_err)?;
        marked_tuple(py, marked)
    }

    /// Ranges `(lo, hi)` splitting `graph`'s nodes into `count` contiguous shards of about equal
    /// work (Σ in-degree + `NODE_WEIGHT` (10) per shard; a range may be empty when one node
    /// outweighs a share).
    #[staticmethod]
    fn balanced_ranges(py: Python<'_>, graph: &Graph, count: u32) -> PyResult<Vec<(u32, u32)>> {
        py.detach(|| shard::balanced_ranges(&graph.inner, count)).map_err(py_err)
    }

    /// `(mass, delivered)` of a recall from its summed integer units.
    #[staticmethod]
    fn totals(mass_units: u128, delivered_units: u64) -> (f64, f64) {
        (shard::mass_from_units(mass_units), shard::delivered_from_units(delivered_units))
    }

    #[getter]
    fn lo(&self) -> u32 {
        self.lock().range().start
    }

    #[getter]
    fn hi(&self) -> u32 {
        self.lock().range().end
    }

    #[getter]
    fn node_count(&self) -> u32 {
        self.lock().node_count()
    }

    #[getter]
    fn edge_count(&self) -> u64 {
        self.lock().edge_count()
    }

    #[getter]
    fn in_edge_count(&self) -> usize {
        self.lock().in_edge_count()
    }

    #[getter]
    fn memory_bytes(&self) -> usize {
        self.lock().memory_bytes()
    }

    /// The configured `recall.k`.
    #[getter]
    fn k(&self) -> usize {
        self.k
    }

    /// The configured `spreading.max_depth`.
    #[getter]
    fn max_depth(&self) -> u32 {
        self.params.max_depth
    }

    /// Start a recall from normalised seeds (`normalise_seeds`) and mark its first frontier; returns
    /// it as `mark` does.
    fn begin<'py>(
        &self,
        py: Python<'py>,
        ids: Bound<'py, PyAny>,
        activations: Bound<'py, PyAny>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let seeds = seed_list(&ids, &activations)?;
        let marked = py
            .detach(|| {
                let mut shard = self.lock();
                shard.begin(&self.params, &seeds)?;
                shard.mark()
            })
            .map_err(py_err)?;
        marked_tuple(py, marked)
    }

    /// One superstep: gather the whole frontier of the last depth (`ids`, `sends`, `tier_ends` as
    /// the coordinator merged them; `work` its out-edges), finish that depth, and mark the next.
    /// Returns `(ids, sends, tier_ends, edges, delivered_units, collected)` of this shard's next
    /// frontier.
    ///
    /// Fused rounds: with `seeds` (`(ids, activations)`, normalised) the recall begins here and the
    /// frontier is the seeds' (`seed_frontier`); with `collect=k` the recall ends after the gather
    /// (the coordinator knows the next frontier is empty: the last depth, or an empty frontier) and
    /// `collected` is `collect(k)`'s tuple (else `None`, and no frontier is marked after it).
    #[pyo3(signature = (ids, sends, tier_ends, work, seeds=None, collect=None))]
    #[allow(clippy::too_many_arguments)]
    fn step<'py>(
        &self,
        py: Python<'py>,
        ids: Bound<'py, PyAny>,
        sends: Bound<'py, PyAny>,
        tier_ends: [usize; 3],
        work: u64,
        seeds: Option<(Bound<'py, PyAny>, Bound<'py, PyAny>)>,
        collect: Option<usize>,
    ) -> PyResult<Bound<'py, PyTuple>> {
        let ids = Column::<u32>::extract(&ids, "ids", "a node id")?;
        let sends = Column::<f32>::extract(&sends, "sends", "an activation")?;
        let seeds = seeds.map(|(i, a)| seed_list(&i, &a)).transpose()?;
        let (ids, sends) = (ids.as_slice(), sends.as_slice());
        let (marked, delivered, collected) = py
            .detach(|| {
                let mut shard = self.lock();
                let frontier = FrontierView { ids, sends, tier_ends };
                if let Some(seeds) = &seeds {
                    shard.begin_at(&self.params, seeds, frontier)?;
                }
                let out = match collect {
                    Some(k) => shard
                        .gather_and_collect(frontier, work, k)
                        .map(|(delivered, collected)| (shard::Marked::default(), delivered, Some(collected))),
                    None => shard
                        .gather(frontier, work)
                        .and_then(|delivered| Ok((shard.mark()?, delivered, None))),
                };
                if out.is_err() && seeds.is_some() {
                    shard.reset(); // a recall this call began and could not run is not left behind
                }
                out
            })
            .map_err(py_err)?;
        let tuple = marked_tuple(py, marked)?;
        let mut items: Vec<Bound<'py, PyAny>> = tuple.iter().collect();
        items.push(delivered.into_pyobject(py)?.into_any());
        items.push(match collected {
            Some(c) => collected_tuple(py, c)?.into_any(),
            None => py.None().into_bound(py),
        });
        PyTuple::new(py, items)
    }

    /// End the recall: `(nodes, activations, hops, tiers, mass_units)`, this shard's best `k`
    /// (default: the configured `recall.k`), best first. The shard is ready for the next recall.
    #[pyo3(signature = (k=None))]
    fn collect<'py>(&self, py: Python<'py>, k: Option<usize>) -> PyResult<Bound<'py, PyTuple>> {
        let k = k.unwrap_or(self.k);
        let collected = py.detach(|| self.lock().collect(k)).map_err(py_err)?;
        collected_tuple(py, collected)
    }

    /// Abandon the recall in progress.
    fn reset(&self) {
        self.lock().reset();
    }

    fn __repr__(&self) -> String {
        let shard = self.lock();
        let range = shard.range();
        format!(
            "Shard(nodes {}..{} of {}, {} in-edges)",
            range.start,
            range.end,
            shard.node_count(),
            shard.in_edge_count()
        )
    }
}

/// Normalised seeds from two columns of equal length.
fn seed_list(ids: &Bound<'_, PyAny>, activations: &Bound<'_, PyAny>) -> PyResult<Vec<(u32, f32)>> {
    let ids = Column::<u32>::extract(ids, "ids", "a node id")?;
    let activations = Column::<f32>::extract(activations, "activations", "an activation")?;
    let (ids, activations) = (ids.as_slice(), activations.as_slice());
    if ids.len() != activations.len() {
        return Err(RecallError::new_err(format!(
            "seeds: {} ids but {} activations",
            ids.len(),
            activations.len()
        )));
    }
    Ok(ids.iter().copied().zip(activations.iter().copied()).collect())
}

fn collected_tuple(py: Python<'_>, collected: shard::Collected) -> PyResult<Bound<'_, PyTuple>> {
    let r = &collected.results;
    PyTuple::new(
        py,
        [
            r.iter().map(|a| a.node).collect::<Vec<_>>().into_pyarray(py).into_any(),
            r.iter().map(|a| a.activation).collect::<Vec<_>>().into_pyarray(py).into_any(),
            r.iter().map(|a| a.hops).collect::<Vec<_>>().into_pyarray(py).into_any(),
            r.iter().map(|a| a.tier as u8).collect::<Vec<_>>().into_pyarray(py).into_any(),
            collected.mass_units.into_pyobject(py)?.into_any(),
        ],
    )
}

fn marked_tuple(py: Python<'_>, marked: shard::Marked) -> PyResult<Bound<'_, PyTuple>> {
    PyTuple::new(
        py,
        [
            marked.ids.into_pyarray(py).into_any(),
            marked.sends.into_pyarray(py).into_any(),
            PyTuple::new(py, marked.tier_ends)?.into_any(),
            marked.edges.into_pyobject(py)?.into_any(),
        ],
    )
}

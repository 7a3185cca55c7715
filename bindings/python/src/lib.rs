//! The PyO3 extension `axonal._native`: a thin binding of `axonal-core` (SPEC §11).
//!
//! Blocking calls release the GIL (`py.detach`); callbacks from engine threads take it
//! (`Python::attach`); a raising callback goes to `sys.unraisablehook`, is counted, and never
//! propagates into the engine. JSON documents cross as Python objects through the `json` module.

mod http;

use std::sync::{Arc, Mutex, RwLock, Weak};
use std::time::Duration;

use axonal_core::{
    BreakerOverride, Cue, ErrorKind, GraphBuilder, HealthCheckResult, HealthStatus, ProbeOptions, Tier,
};
use numpy::{Element, IntoPyArray, PyArray1, PyReadonlyArray1, PyReadonlyArray2, PyUntypedArrayMethods};
use pyo3::create_exception;
use pyo3::exceptions::{PyException, PyTypeError, PyValueError};
use pyo3::prelude::*;
use pyo3::types::{PyBool, PyByteArray, PyBytes, PyComplex, PyDict, PyList, PyString, PyTuple};

create_exception!(_native, AxonalError, PyException, "Base class of every Axonal error.");
create_exception!(_native, ConfigError, AxonalError, "A configuration value or patch was rejected.");
create_exception!(_native, GraphError, AxonalError, "Building or loading a graph failed.");
create_exception!(_native, RecallError, AxonalError, "A cue was malformed or a recall could not run.");
create_exception!(_native, ClosedError, AxonalError, "The engine was closed.");

fn py_err(e: axonal_core::Error) -> PyErr {
    let message = e.to_string();
    match e.kind() {
        ErrorKind::Config => ConfigError::new_err(message),
        ErrorKind::Recall => RecallError::new_err(message),
        ErrorKind::Graph | ErrorKind::Io => GraphError::new_err(message),
    }
}

/// A serde value as a Python object (through `json.loads`).
fn to_py<'py>(py: Python<'py>, value: &serde_json::Value) -> PyResult<Bound<'py, PyAny>> {
    py.import("json")?.call_method1("loads", (value.to_string(),))
}

/// A Python object as JSON text (through `json.dumps`, NaN and infinities refused).
fn to_json(py: Python<'_>, object: &Bound<'_, PyAny>, what: &str) -> PyResult<String> {
    let kwargs = PyDict::new(py);
    kwargs.set_item("allow_nan", false)?;
    py.import("json")?
        .call_method("dumps", (object,), Some(&kwargs))
        .and_then(|text| text.extract())
        .map_err(|e| ConfigError::new_err(format!("{what}: not JSON-serialisable ({e})")))
}

/// A 1-D input: a NumPy array of exactly `T` read in place (C-contiguous), or any other sequence
/// converted element by element.
enum Column<'py, T: Element> {
    Array(PyReadonlyArray1<'py, T>),
    Copied(Vec<T>),
}

impl<'py, T: Element + for<'a> FromPyObject<'a, 'py>> Column<'py, T> {
    /// `expected` says what each element must be, for the error naming the first one that is not.
    fn extract(object: &Bound<'py, PyAny>, what: &str, expected: &str) -> PyResult<Self> {
        if let Ok(array) = object.extract::<PyReadonlyArray1<'py, T>>()
            && array.is_c_contiguous()
        {
            return Ok(Column::Array(array));
        }
        match object.extract::<Vec<T>>() {
            Ok(values) if !is_text(object) => Ok(Column::Copied(values)),
            _ => Err(element_error::<T>(object, what, expected)),
        }
    }

    fn as_slice(&self) -> &[T] {
        match self {
            // Checked C-contiguous at extraction, so the slice exists.
            Column::Array(array) => array.as_slice().expect("a C-contiguous array"),
            Column::Copied(values) => values,
        }
    }
}

/// Strings and bytes are sequences, but never of numbers or ids.
fn is_text(object: &Bound<'_, PyAny>) -> bool {
    object.is_instance_of::<PyString>()
        || object.is_instance_of::<PyBytes>()
        || object.is_instance_of::<PyByteArray>()
}

/// `repr(value) (type)` for messages: `'0' (str)`, `4294967296 (int)`.
fn describe(value: &Bound<'_, PyAny>) -> String {
    let repr = value.repr().map(|r| r.to_string()).unwrap_or_else(|_| "<unprintable>".into());
    let kind = value.get_type().name().map(|n| n.to_string()).unwrap_or_else(|_| "?".into());
    format!("{repr} ({kind})")
}

/// The TypeError for a sequence that does not convert: which element, what it is, what it must be.
fn element_error<'py, T: for<'a> FromPyObject<'a, 'py>>(
    object: &Bound<'py, PyAny>,
    what: &str,
    expected: &str,
) -> PyErr {
    if is_text(object) {
        return PyTypeError::new_err(format!("{what}: expected a sequence, got {}", describe(object)));
    }
    let Ok(items) = object.try_iter() else {
        return PyTypeError::new_err(format!("{what}: expected a sequence, got {}", describe(object)));
    };
    for (i, item) in items.enumerate() {
        match item {
            Ok(item) if item.extract::<T>().is_err() => {
                return PyTypeError::new_err(format!("{what}[{i}]: {} is not {expected}", describe(&item)));
            }
            Ok(_) => {}
            Err(e) => return e,
        }
    }
    PyTypeError::new_err(format!("{what}: expected a sequence of {expected}"))
}

const NODE_ID: &str = "a node id (an integer in 0..4294967295)";

/// Edge weights as `f32`: float32 arrays in place; float64 arrays and Python numbers checked in
/// double precision first, so an error reports the value as passed (core's `weights_from_f64`).
/// Complex numbers are refused (NumPy would silently drop their imaginary part).
fn weights<'py>(object: &Bound<'py, PyAny>) -> PyResult<Column<'py, f32>> {
    if let Ok(array) = object.extract::<PyReadonlyArray1<'py, f32>>()
        && array.is_c_contiguous()
    {
        return Ok(Column::Array(array));
    }
    if let Ok(array) = object.extract::<PyReadonlyArray1<'py, f64>>()
        && let Ok(values) = array.as_slice()
    {
        return axonal_core::graph::weights_from_f64(values, 0).map(Column::Copied).map_err(py_err);
    }
    if let Ok(kind) =
        object.getattr("dtype").and_then(|d| d.getattr("kind")).and_then(|k| k.extract::<String>())
        && kind == "c"
    {
        return Err(PyTypeError::new_err("weight: a complex array is not a weight array (weights are real)"));
    }
    if is_text(object) {
        return Err(PyTypeError::new_err(format!("weight: expected a sequence, got {}", describe(object))));
    }
    let items = object.try_iter().map_err(|_| {
        PyTypeError::new_err(format!("weight: expected a sequence, got {}", describe(object)))
    })?;
    let mut values = Vec::new();
    for (i, item) in items.enumerate() {
        let item = item?;
        let value = if item.is_instance_of::<PyComplex>() { None } else { item.extract::<f64>().ok() };
        let Some(value) = value else {
            return Err(PyTypeError::new_err(format!(
                "weight[{i}]: {} is not a real number",
                describe(&item)
            )));
        };
        values.push(value);
    }
    axonal_core::graph::weights_from_f64(&values, 0).map(Column::Copied).map_err(py_err)
}

/// A per-node input (`tiers`, `labels`, `embeddings`) must have one entry per node.
fn check_per_node(what: &str, len: usize, nodes: u32) -> PyResult<()> {
    if len == nodes as usize {
        return Ok(());
    }
    Err(GraphError::new_err(format!(
        "{what}: {len} entries for a graph of {nodes} nodes (give one per node, or None)"
    )))
}

/// An immutable graph (SPEC §2).
#[pyclass(frozen, module = "axonal._native")]
struct Graph {
    inner: Arc<axonal_core::Graph>,
}

fn parse_tier(value: &Bound<'_, PyAny>, index: usize) -> PyResult<Tier> {
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
            if let Ok(codes) = tiers.extract::<PyReadonlyArray1<'_, u8>>() {
                check_per_node("tiers", codes.len(), n)?;
                for (i, &code) in codes.as_array().iter().enumerate() {
                    let tier = Tier::from_index(code as u32).ok_or_else(|| {
                        GraphError::new_err(format!("tiers[{i}]: tier {code} out of range 0..=2"))
                    })?;
                    builder.set_tier(i as u32, tier).map_err(py_err)?;
                }
            } else {
                if is_text(&tiers) {
                    return Err(PyTypeError::new_err(format!(
                        "tiers: expected a sequence, got {}",
                        describe(&tiers)
                    )));
                }
                check_per_node("tiers", tiers.len()?, n)?;
                for (i, tier) in tiers.try_iter()?.enumerate() {
                    builder.set_tier(i as u32, parse_tier(&tier?, i)?).map_err(py_err)?;
                }
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

    fn __repr__(&self) -> String {
        format!("Graph(num_nodes={}, num_edges={})", self.inner.node_count(), self.inner.edge_count())
    }
}

/// What a recall returned: NumPy arrays of the results, who answered and why, and the stats. The
/// Python values are built on access, so a recall whose caller reads only `nodes` pays for no more.
#[pyclass(frozen, module = "axonal._native")]
struct RecallResult {
    recall: axonal_core::Recall,
    graph: Arc<axonal_core::Graph>,
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

    /// The spread's stats (SPEC §15).
    #[getter]
    fn stats<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.recall.to_json_value(&self.graph)["stats"])
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

/// Parse `seeds`: a list of ids, a dict {id: activation} or a list of (id, activation) pairs.
fn parse_seeds(seeds: &Bound<'_, PyAny>) -> PyResult<Vec<(u32, f32)>> {
    let id = |value: &Bound<'_, PyAny>, at: &str| -> PyResult<u32> {
        if value.is_instance_of::<PyBool>() {
            return Err(RecallError::new_err(format!(
                "{at}: {} is not a node id (an int >= 0)",
                describe(value)
            )));
        }
        value.extract::<u32>().map_err(|_| {
            RecallError::new_err(format!("{at}: {} is not a node id (an int >= 0)", describe(value)))
        })
    };
    let activation = |value: &Bound<'_, PyAny>, at: &str| -> PyResult<f32> {
        value.extract::<f32>().map_err(|_| {
            RecallError::new_err(format!("{at}: activation {} is not a number", describe(value)))
        })
    };
    if let Ok(dict) = seeds.cast::<PyDict>() {
        return dict
            .iter()
            .map(|(k, v)| {
                let at = format!("seeds[{}]", k.repr().map(|r| r.to_string()).unwrap_or_default());
                Ok((id(&k, &at)?, activation(&v, &at)?))
            })
            .collect();
    }
    let expected = "seeds: expected a list of ids, a dict {id: activation} or (id, activation) pairs";
    if is_text(seeds) {
        return Err(PyTypeError::new_err(format!("{expected}, got {}", describe(seeds))));
    }
    let mut out = Vec::new();
    for (i, item) in seeds
        .try_iter()
        .map_err(|_| PyTypeError::new_err(format!("{expected}, got {}", describe(seeds))))?
        .enumerate()
    {
        let item = item?;
        let at = format!("seeds[{i}]");
        if let Ok(pair) = item.cast::<PyTuple>() {
            if pair.len() != 2 {
                return Err(RecallError::new_err(format!("{at}: {pair} is not an (id, activation) pair")));
            }
            out.push((id(&pair.get_item(0)?, &at)?, activation(&pair.get_item(1)?, &at)?));
        } else {
            out.push((id(&item, &at)?, 1.0));
        }
    }
    Ok(out)
}

type Slot = RwLock<Option<Arc<axonal_core::Engine>>>;

/// Every engine's slot, so that interpreter exit can close the ones still open (a Python callback
/// that refers to its engine keeps it alive past the last Python reference).
static OPEN: Mutex<Vec<Weak<Slot>>> = Mutex::new(Vec::new());

/// Drop a reference to the engine; when it is the last one, the engine shuts down and joins its
/// threads — with the GIL released, because those threads may be waiting for it (a Python probe,
/// a breaker callback).
fn release(engine: Arc<axonal_core::Engine>) {
    if let Some(engine) = Arc::into_inner(engine) {
        Python::attach(|py| py.detach(move || drop(engine)));
    }
}

/// A borrowed reference for one call; dropping it goes through [`release`] (a concurrent `close()`
/// may have left this call holding the last reference).
struct EngineRef(Option<Arc<axonal_core::Engine>>);

impl std::ops::Deref for EngineRef {
    type Target = axonal_core::Engine;
    fn deref(&self) -> &axonal_core::Engine {
        self.0.as_deref().expect("present until dropped")
    }
}

impl EngineRef {
    fn arc(&self) -> &Arc<axonal_core::Engine> {
        self.0.as_ref().expect("present until dropped")
    }
}

impl Drop for EngineRef {
    fn drop(&mut self) {
        if let Some(engine) = self.0.take() {
            release(engine);
        }
    }
}

/// A spreading-activation engine (SPEC §4). Thread-safe; `close()` (or the context manager, or
/// garbage collection) stops and joins its threads.
#[pyclass(frozen, module = "axonal._native")]
struct Engine {
    inner: Arc<Slot>,
}

impl Engine {
    fn engine(&self) -> PyResult<EngineRef> {
        self.inner
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .map(|engine| EngineRef(Some(engine)))
            .ok_or_else(|| ClosedError::new_err("the engine is closed"))
    }
}

/// Take the engine out of its slot and release it.
fn close_slot(slot: &Slot) {
    let engine = slot.write().unwrap_or_else(|p| p.into_inner()).take();
    if let Some(engine) = engine {
        // Its HTTP servers first, so no request is in flight while the engine shuts down.
        Python::attach(|py| py.detach(|| engine.stop_http_servers()));
        release(engine);
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        close_slot(&self.inner);
    }
}

/// Close every engine still open (registered with `atexit` by the `axonal` package).
#[pyfunction]
fn _close_all() {
    let slots: Vec<_> = OPEN.lock().unwrap_or_else(|p| p.into_inner()).drain(..).collect();
    for slot in slots.iter().filter_map(Weak::upgrade) {
        close_slot(&slot);
    }
}

/// Call `f` with the GIL held, sending a raised exception to `sys.unraisablehook`.
fn call_reporting<T>(what: &str, f: impl FnOnce(Python<'_>) -> PyResult<T>) -> Option<T> {
    Python::attach(|py| match f(py) {
        Ok(value) => Some(value),
        Err(e) => {
            let context = pyo3::types::PyString::new(py, what);
            e.write_unraisable(py, Some(&context.into_any()));
            None
        }
    })
}

#[pymethods]
impl Engine {
    #[new]
    #[pyo3(signature = (graph, config=None))]
    fn new(py: Python<'_>, graph: &Graph, config: Option<Bound<'_, PyAny>>) -> PyResult<Engine> {
        let config = config.map(|c| to_json(py, &c, "config")).transpose()?;
        let graph = Arc::clone(&graph.inner);
        let engine =
            py.detach(|| axonal_core::Engine::from_json_config(graph, config.as_deref())).map_err(py_err)?;
        let inner = Arc::new(RwLock::new(Some(Arc::new(engine))));
        let mut open = OPEN.lock().unwrap_or_else(|p| p.into_inner());
        open.retain(|slot| slot.strong_count() > 0);
        open.push(Arc::downgrade(&inner));
        Ok(Engine { inner })
    }

    /// Recall what `seeds` (and/or a query `embedding`) activate; the top `k` results (`None`: the
    /// configured `recall.k`).
    #[pyo3(signature = (seeds=None, k=None, embedding=None))]
    fn recall(
        &self,
        py: Python<'_>,
        seeds: Option<Bound<'_, PyAny>>,
        k: Option<usize>,
        embedding: Option<Vec<f32>>,
    ) -> PyResult<RecallResult> {
        let engine = self.engine()?;
        let seeds = seeds.map(|s| parse_seeds(&s)).transpose()?.unwrap_or_default();
        let cue = Cue { seeds, embedding, k };
        let recall = py.detach(|| engine.recall(&cue)).map_err(py_err)?;
        Ok(RecallResult { recall, graph: engine.graph() })
    }

    /// The streaming snapshot (SPEC §15).
    fn snapshot<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let engine = self.engine()?;
        let snapshot = py.detach(|| engine.streaming_snapshot());
        to_py(py, &snapshot)
    }

    /// The cached health report (SPEC §6).
    fn health<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.engine()?.health_report())
    }

    /// Run the probe `name` now; its report entry.
    fn check<'py>(&self, py: Python<'py>, name: &str) -> PyResult<Bound<'py, PyAny>> {
        let engine = self.engine()?;
        let entry = py.detach(|| engine.check_probe(name)).map_err(py_err)?;
        to_py(py, &entry)
    }

    /// The Prometheus text exposition.
    fn prometheus(&self, py: Python<'_>) -> PyResult<String> {
        let engine = self.engine()?;
        Ok(py.detach(|| engine.prometheus_text()))
    }

    /// The live config (SPEC §14 shape).
    #[getter]
    fn config<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        py.import("json")?.call_method1("loads", (self.engine()?.config().to_json(),))
    }

    /// Validate, clamp and apply a partial config; returns what was applied.
    fn update_config<'py>(&self, py: Python<'py>, patch: Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let text = to_json(py, &patch, "patch")?;
        let engine = self.engine()?;
        let applied = py.detach(|| engine.update_config_json(&text)).map_err(py_err)?;
        py.import("json")?.call_method1("loads", (applied.to_json(),))
    }

    /// `"auto"`, `"forced_open"` or `"forced_closed"`.
    #[getter]
    fn get_breaker_override(&self) -> PyResult<&'static str> {
        Ok(self.engine()?.breaker_override().as_str())
    }

    #[setter]
    fn set_breaker_override(&self, mode: &str) -> PyResult<()> {
        let mode = BreakerOverride::parse(mode).map_err(py_err)?;
        self.engine()?.set_breaker_override(mode);
        Ok(())
    }

    /// The breaker's state: `"closed"`, `"half_open"` or `"open"`.
    #[getter]
    fn breaker_state(&self) -> PyResult<&'static str> {
        Ok(self.engine()?.breaker_state().as_str())
    }

    #[getter]
    fn get_autotune_enabled(&self) -> PyResult<bool> {
        Ok(self.engine()?.autotune_enabled())
    }

    #[setter]
    fn set_autotune_enabled(&self, enabled: bool) -> PyResult<()> {
        self.engine()?.set_autotune_enabled(enabled);
        Ok(())
    }

    /// The tuner's audit log entries, oldest first.
    fn autotune_audit<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.engine()?.autotune_audit_json()["entries"])
    }

    /// Run one tuning step now; the decision (`{"action", "reason", "entry"}`).
    fn autotune_now<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let engine = self.engine()?;
        let decision = py.detach(|| engine.autotune_now());
        to_py(py, &decision.to_json())
    }

    /// Inject faults (SPEC §9); `latency_ms` maps tier names to milliseconds.
    #[pyo3(signature = (latency_ms=None, jitter_ms=0.0, failure_rate=0.0, zero_mass_rate=0.0, seed=None, gpu_failure_rate=0.0))]
    #[allow(clippy::too_many_arguments)]
    fn set_chaos(
        &self,
        py: Python<'_>,
        latency_ms: Option<Bound<'_, PyAny>>,
        jitter_ms: f64,
        failure_rate: f64,
        zero_mass_rate: f64,
        seed: Option<u64>,
        gpu_failure_rate: f64,
    ) -> PyResult<()> {
        let chaos = PyDict::new(py);
        if let Some(latency) = latency_ms {
            chaos.set_item("latency_ms", latency)?;
        }
        chaos.set_item("jitter_ms", jitter_ms)?;
        chaos.set_item("failure_rate", failure_rate)?;
        chaos.set_item("zero_mass_rate", zero_mass_rate)?;
        chaos.set_item("gpu_failure_rate", gpu_failure_rate)?;
        if let Some(seed) = seed {
            chaos.set_item("seed", seed)?;
        }
        let text = to_json(py, &chaos.into_any(), "chaos")?;
        self.engine()?.set_chaos_json(&text).map_err(py_err)
    }

    /// Stop injecting faults.
    fn clear_chaos(&self) -> PyResult<()> {
        self.engine()?.clear_chaos();
        Ok(())
    }

    /// Register a health probe: `fn()` returns a bool, `"healthy"`/`"degraded"`/`"unhealthy"`, or
    /// `(status, reason)`. It runs on the probe's own thread with the GIL taken; one that raises is
    /// reported to `sys.unraisablehook` and counts as failed.
    #[pyo3(signature = (name, r#fn, interval=10.0, timeout=1.0, critical=true))]
    fn register_probe(
        &self,
        py: Python<'_>,
        name: &str,
        r#fn: Py<PyAny>,
        interval: f64,
        timeout: f64,
        critical: bool,
    ) -> PyResult<u64> {
        let seconds = |value: f64, field: &str| {
            Duration::try_from_secs_f64(value).ok().filter(|d| !d.is_zero()).ok_or_else(|| {
                ConfigError::new_err(format!("{field}: must be a positive number of seconds (got {value})"))
            })
        };
        let options = ProbeOptions {
            interval: seconds(interval, "interval")?,
            timeout: seconds(timeout, "timeout")?,
            critical,
        };
        require_callable(r#fn.bind(py), "register_probe: fn")?;
        let probe_name = name.to_owned();
        let check = move || {
            call_reporting(&format!("axonal probe {probe_name:?}"), |py| probe_result(r#fn.bind(py).call0()?))
                .unwrap_or_else(|| HealthCheckResult::failed(HealthStatus::Unhealthy, "the probe raised"))
        };
        self.engine()?.register_probe_fn(name, check, Some(options)).map_err(py_err)
    }

    /// Unregister a probe; whether it was registered.
    fn unregister_probe(&self, py: Python<'_>, id: u64) -> PyResult<bool> {
        let engine = self.engine()?;
        Ok(py.detach(|| engine.unregister_probe(id)))
    }

    /// Call `fn(event: dict)` for every breaker transition, in order, from the engine's dispatcher
    /// thread (with the GIL taken); an exception goes to `sys.unraisablehook` and is counted.
    fn on_breaker_transition(&self, py: Python<'_>, r#fn: Py<PyAny>) -> PyResult<u64> {
        require_callable(r#fn.bind(py), "on_breaker_transition: fn")?;
        let callback = move |event: &axonal_core::TransitionEvent| -> Result<(), String> {
            let text = event.to_json();
            // A raise goes to sys.unraisablehook (once) and is counted by the engine as a failure.
            call_reporting("axonal breaker transition callback", |py| {
                let event = py.import("json")?.call_method1("loads", (text,))?;
                r#fn.bind(py).call1((event,)).map(drop)
            })
            .ok_or_else(|| "the callback raised".to_owned())
        };
        Ok(self.engine()?.on_breaker_transition_fallible(callback))
    }

    /// Stop calling a transition callback; whether it was registered.
    fn remove_transition_callback(&self, py: Python<'_>, id: u64) -> PyResult<bool> {
        let engine = self.engine()?;
        Ok(py.detach(|| engine.remove_transition_callback(id)))
    }

    /// Serve the HTTP surface (SPEC §12) on `addr` (port 0 picks a free one; loopback by default).
    /// Admin writes (`PUT`) need `admin_token` as a bearer token; without one they are disabled. The
    /// limits default as in the C and Rust APIs; an admin token beyond loopback warns (it travels in
    /// clear).
    #[pyo3(signature = (addr="127.0.0.1:9464", admin_token=None, *, max_connections=None, header_timeout=None, request_timeout=None, max_body_bytes=None))]
    #[allow(clippy::too_many_arguments)]
    fn serve_http(
        &self,
        py: Python<'_>,
        addr: &str,
        admin_token: Option<String>,
        max_connections: Option<usize>,
        header_timeout: Option<f64>,
        request_timeout: Option<f64>,
        max_body_bytes: Option<usize>,
    ) -> PyResult<http::HttpServer> {
        let engine = self.engine()?;
        let mut options = axonal_core::http::HttpOptions::default().with_admin_token(admin_token);
        let millis = |seconds: f64, field: &str| -> PyResult<u64> {
            let ms = seconds * 1000.0;
            if ms.is_finite() && ms >= 1.0 && ms <= u64::MAX as f64 {
                Ok(ms as u64)
            } else {
                Err(ConfigError::new_err(format!(
                    "{field}: must be a number of seconds >= 0.001 (got {seconds})"
                )))
            }
        };
        if let Some(n) = max_connections {
            options.max_connections = n;
        }
        if let Some(seconds) = header_timeout {
            options.header_timeout_ms = millis(seconds, "header_timeout")?;
        }
        if let Some(seconds) = request_timeout {
            options.request_timeout_ms = millis(seconds, "request_timeout")?;
        }
        if let Some(bytes) = max_body_bytes {
            options.max_body_bytes = bytes;
        }
        let server = py.detach(|| engine.arc().serve_http(addr, options)).map_err(py_err)?;
        if server.token_in_clear() {
            let message = format!(
                "serve_http({addr:?}): admin writes are enabled beyond loopback, and the bearer token \
                 travels in clear; put a TLS-terminating proxy in front, or bind 127.0.0.1"
            );
            PyErr::warn(
                py,
                &py.get_type::<pyo3::exceptions::PyRuntimeWarning>(),
                &std::ffi::CString::new(message)?,
                1,
            )?;
        }
        Ok(http::HttpServer { inner: server })
    }

    /// Swap in another graph atomically.
    fn replace_graph(&self, graph: &Graph) -> PyResult<()> {
        self.engine()?.replace_graph(Arc::clone(&graph.inner));
        Ok(())
    }

    /// Stop and join the engine's threads; later calls raise `ClosedError`. Idempotent. (A call
    /// still running in another thread finishes first; the engine shuts down when it returns.)
    fn close(&self) {
        close_slot(&self.inner);
    }

    #[getter]
    fn closed(&self) -> bool {
        self.inner.read().unwrap_or_else(|p| p.into_inner()).is_none()
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, _args: &Bound<'_, PyTuple>) -> bool {
        self.close();
        false
    }
}

/// A TypeError unless `value` is callable (at registration, not at every later call).
fn require_callable(value: &Bound<'_, PyAny>, what: &str) -> PyResult<()> {
    if value.is_callable() {
        Ok(())
    } else {
        Err(PyTypeError::new_err(format!("{what} must be callable, got {}", describe(value))))
    }
}

/// A Python probe's answer as a check result.
fn probe_result(answer: Bound<'_, PyAny>) -> PyResult<HealthCheckResult> {
    let status = |text: &str| match text {
        "healthy" => Ok(HealthStatus::Healthy),
        "degraded" => Ok(HealthStatus::Degraded),
        "unhealthy" => Ok(HealthStatus::Unhealthy),
        other => Err(PyValueError::new_err(format!(
            "probe status {other:?}: expected healthy, degraded or unhealthy"
        ))),
    };
    let (status, reason) = if let Ok(ok) = answer.extract::<bool>() {
        (if ok { HealthStatus::Healthy } else { HealthStatus::Unhealthy }, None)
    } else if let Ok(text) = answer.extract::<String>() {
        (status(&text)?, None)
    } else if let Ok((text, reason)) = answer.extract::<(String, String)>() {
        (status(&text)?, Some(reason))
    } else {
        return Err(PyTypeError::new_err("a probe returns a bool, a status string or (status, reason)"));
    };
    Ok(match (status, reason) {
        (HealthStatus::Healthy, _) => HealthCheckResult::healthy(),
        (status, Some(reason)) => HealthCheckResult::failed(status, reason),
        (status, None) => HealthCheckResult::failed(status, status.as_str()),
    })
}

/// The `axonal._native` module.
#[pymodule]
fn _native(module: &Bound<'_, PyModule>) -> PyResult<()> {
    let py = module.py();
    module.add("__version__", axonal_core::VERSION)?;
    module.add_class::<Graph>()?;
    module.add_class::<Engine>()?;
    module.add_class::<RecallResult>()?;
    module.add_class::<http::HttpServer>()?;
    module.add_function(wrap_pyfunction!(_close_all, module)?)?;
    module.add("AxonalError", py.get_type::<AxonalError>())?;
    module.add("ConfigError", py.get_type::<ConfigError>())?;
    module.add("GraphError", py.get_type::<GraphError>())?;
    module.add("RecallError", py.get_type::<RecallError>())?;
    module.add("ClosedError", py.get_type::<ClosedError>())?;
    Ok(())
}

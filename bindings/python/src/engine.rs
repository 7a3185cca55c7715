//! `axonal.Engine`: the engine (docs/spec.md §4) behind a Python handle. It holds a core `Host`
//! (the engine and its HTTP servers); `close()`, garbage collection and interpreter exit release it
//! with the GIL released, because the engine's threads may be waiting for it.

use std::sync::{Arc, Mutex, RwLock, Weak};

use axonal_core::{BreakerOverride, Cue, Host};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;
use pyo3::types::{PyDict, PyTuple};

use crate::callbacks::{probe_check, probe_options, require_callable, transition_callback};
use crate::convert::{seeds, to_py, to_value};
use crate::errors::{ClosedError, ConfigError, py_err};
use crate::graph::Graph;
use crate::http::HttpServer;
use crate::living;
use crate::result::RecallResult;

type Slot = RwLock<Option<Arc<Host>>>;

/// Every engine's slot, so that interpreter exit can close the ones still open (a Python callback
/// that refers to its engine keeps it alive past the last Python reference).
static OPEN: Mutex<Vec<Weak<Slot>>> = Mutex::new(Vec::new());

/// Drop a reference to the host; when it is the last one, the host stops its servers and the
/// engine shuts down and joins its threads — with the GIL released, because those threads may be
/// waiting for it (a Python probe, a breaker callback).
fn release(host: Arc<Host>) {
    if let Some(host) = Arc::into_inner(host) {
        Python::attach(|py| py.detach(move || drop(host.close())));
    }
}

/// A borrowed reference for one call; dropping it goes through [`release`] (a concurrent `close()`
/// may have left this call holding the last reference).
struct EngineRef(Option<Arc<Host>>);

impl std::ops::Deref for EngineRef {
    type Target = axonal_core::Engine;
    fn deref(&self) -> &axonal_core::Engine {
        self.host().engine()
    }
}

impl EngineRef {
    fn host(&self) -> &Host {
        self.0.as_deref().expect("present until dropped")
    }
}

impl Drop for EngineRef {
    fn drop(&mut self) {
        if let Some(host) = self.0.take() {
            release(host);
        }
    }
}

/// A spreading-activation engine. Thread-safe; `close()` (or the context manager, or garbage
/// collection) stops its servers and joins its threads.
#[pyclass(frozen, module = "axonal._native")]
pub(crate) struct Engine {
    inner: Arc<Slot>,
}

impl Engine {
    fn engine(&self) -> PyResult<EngineRef> {
        self.inner
            .read()
            .unwrap_or_else(|p| p.into_inner())
            .clone()
            .map(|host| EngineRef(Some(host)))
            .ok_or_else(|| ClosedError::new_err("the engine is closed"))
    }
}

/// Take the host out of its slot: stop its servers (no request in flight during shutdown), then
/// release it.
fn close_slot(slot: &Slot) {
    let host = slot.write().unwrap_or_else(|p| p.into_inner()).take();
    if let Some(host) = host {
        Python::attach(|py| py.detach(|| host.stop_servers()));
        release(host);
    }
}

impl Drop for Engine {
    fn drop(&mut self) {
        close_slot(&self.inner);
    }
}

/// Close every engine still open (registered with `atexit` by the `axonal` package).
#[pyfunction]
pub(crate) fn _close_all() {
    let slots: Vec<_> = OPEN.lock().unwrap_or_else(|p| p.into_inner()).drain(..).collect();
    for slot in slots.iter().filter_map(Weak::upgrade) {
        close_slot(&slot);
    }
}

#[pymethods]
impl Engine {
    #[new]
    #[pyo3(signature = (graph, config=None))]
    fn new(py: Python<'_>, graph: &Graph, config: Option<Bound<'_, PyAny>>) -> PyResult<Engine> {
        let patch = config.map(|c| to_value(&c, "config")).transpose()?;
        let graph = Arc::clone(&graph.inner);
        let engine = py
            .detach(|| {
                let config = match &patch {
                    Some(patch) => axonal_core::EngineConfig::default().patched(patch)?,
                    None => axonal_core::EngineConfig::default(),
                };
                axonal_core::Engine::new(graph, config)
            })
            .map_err(py_err)?;
        let inner = Arc::new(RwLock::new(Some(Arc::new(Host::new(engine)))));
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
        k: Option<Bound<'_, PyAny>>,
        embedding: Option<Bound<'_, PyAny>>,
    ) -> PyResult<RecallResult> {
        let engine = self.engine()?;
        let k = crate::convert::recall_k(k.as_ref())?;
        let seeds = seeds.map(|s| self::seeds(&s)).transpose()?.unwrap_or_default();
        let embedding = embedding.map(|e| crate::convert::query_embedding(&e)).transpose()?;
        let cue = Cue { seeds, embedding, k };
        let (recall, graph) = py.detach(|| engine.recall_with_graph(&cue)).map_err(py_err)?;
        Ok(RecallResult { recall, graph })
    }

    /// Recall every cue of `cues` on one graph version (docs/spec.md §19): a list of seed specs (each
    /// as `recall`'s `seeds`) or a tuple `(seed_ids, offsets)` of NumPy integer arrays in CSR form.
    /// Each cue's answer is the one its own `recall` gives. Returns a list of `RecallResult`, or with
    /// `columnar=True` one `RecallBatch` of flat arrays (for large batches).
    #[pyo3(signature = (cues, k=None, *, columnar=false))]
    fn recall_batch<'py>(
        &self,
        py: Python<'py>,
        cues: Bound<'py, PyAny>,
        k: Option<Bound<'py, PyAny>>,
        columnar: bool,
    ) -> PyResult<Bound<'py, PyAny>> {
        let engine = self.engine()?;
        let k = crate::convert::recall_k(k.as_ref())?;
        if k == Some(0) {
            return Err(crate::errors::RecallError::new_err("cue k: must be >= 1 (it applies to every cue)"));
        }
        let cues = crate::convert::batch_cues(&cues, k)?;
        let (recalls, graph) = py.detach(|| engine.recall_batch_with_graph(&cues)).map_err(py_err)?;
        if columnar {
            return Ok(Bound::new(py, crate::result::RecallBatch { recalls, graph })?.into_any());
        }
        let results = recalls
            .into_iter()
            .map(|recall| Bound::new(py, RecallResult { recall, graph: Arc::clone(&graph) }))
            .collect::<PyResult<Vec<_>>>()?;
        Ok(pyo3::types::PyList::new(py, results)?.into_any())
    }

    /// The streaming snapshot (docs/spec.md §5).
    fn snapshot<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let engine = self.engine()?;
        let snapshot = py.detach(|| engine.streaming_snapshot());
        to_py(py, &snapshot)
    }

    /// The cached health report (docs/spec.md §6).
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

    /// The live config (docs/spec.md §14 shape).
    #[getter]
    fn config<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        to_py(py, &self.engine()?.config())
    }

    /// Validate and apply a partial config; returns the config now in force.
    fn update_config<'py>(&self, py: Python<'py>, patch: Bound<'py, PyAny>) -> PyResult<Bound<'py, PyAny>> {
        let patch = to_value(&patch, "patch")?;
        let engine = self.engine()?;
        let applied = py.detach(|| engine.update_config(&patch)).map_err(py_err)?;
        to_py(py, &applied)
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
        to_py(py, &self.engine()?.autotune_audit())
    }

    /// Run one tuning step now; the decision (`{"action", "reason", "entry"}`).
    fn autotune_now<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let engine = self.engine()?;
        let decision = py.detach(|| engine.autotune_now());
        to_py(py, &decision)
    }

    /// Inject faults (docs/spec.md §9); `latency_ms` maps tier names to milliseconds.
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
        let chaos =
            axonal_core::ChaosConfig::from_value(to_value(&chaos.into_any(), "chaos")?).map_err(py_err)?;
        self.engine()?.set_chaos(chaos).map_err(py_err)
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
        let options = probe_options(interval, timeout, critical)?;
        require_callable(r#fn.bind(py), "register_probe: fn")?;
        self.engine()?.register_probe_fn(name, probe_check(name, r#fn), Some(options)).map_err(py_err)
    }

    /// Unregister a probe; whether it was registered.
    fn unregister_probe(&self, py: Python<'_>, id: u64) -> PyResult<bool> {
        let engine = self.engine()?;
        Ok(py.detach(|| engine.unregister_probe(id)))
    }

    /// Call `fn(event: dict)` for every breaker transition, in order, one at a time (with the GIL
    /// taken); an exception goes to `sys.unraisablehook` and is counted.
    fn on_breaker_transition(&self, py: Python<'_>, r#fn: Py<PyAny>) -> PyResult<u64> {
        require_callable(r#fn.bind(py), "on_breaker_transition: fn")?;
        Ok(self.engine()?.on_breaker_transition_fallible(transition_callback(r#fn)))
    }

    /// Stop calling a transition callback; whether it was registered.
    fn remove_transition_callback(&self, py: Python<'_>, id: u64) -> PyResult<bool> {
        let engine = self.engine()?;
        Ok(py.detach(|| engine.remove_transition_callback(id)))
    }

    /// Serve the HTTP surface (docs/spec.md §12) on `addr` (port 0 picks a free one; loopback by
    /// default). Admin writes (`PUT`) need `admin_token` as a bearer token; without one they are
    /// disabled. The limits default as in the C and Rust APIs; an admin token beyond loopback warns
    /// (it travels in clear).
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
    ) -> PyResult<HttpServer> {
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
        let server = py.detach(|| engine.host().serve_http(addr, options)).map_err(py_err)?;
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
        Ok(HttpServer { inner: server })
    }

    /// Swap in another graph atomically as the next graph version; returns it.
    fn replace_graph(&self, graph: &Graph) -> PyResult<u64> {
        Ok(self.engine()?.replace_graph(Arc::clone(&graph.inner)))
    }

    // --- the living graph (docs/spec.md §16): each call is one atomic batch ---

    /// Add `count` nodes (tiers, labels, embeddings: one per node, or None) as one batch; returns
    /// the first new id (the others follow).
    #[pyo3(signature = (count, tiers=None, labels=None, embeddings=None))]
    fn add_nodes(
        &self,
        py: Python<'_>,
        count: u32,
        tiers: Option<Bound<'_, PyAny>>,
        labels: Option<Bound<'_, PyAny>>,
        embeddings: Option<Bound<'_, PyAny>>,
    ) -> PyResult<u32> {
        let engine = self.engine()?;
        let batch = living::add_nodes(count, tiers.as_ref(), labels.as_ref(), embeddings.as_ref())?;
        py.detach(|| engine.apply_batch(batch)).map(|applied| applied.first_node).map_err(py_err)
    }

    /// Append edges to their sources' lists as one batch; returns the new graph version.
    fn add_edges(
        &self,
        py: Python<'_>,
        src: Bound<'_, PyAny>,
        dst: Bound<'_, PyAny>,
        weight: Bound<'_, PyAny>,
    ) -> PyResult<u64> {
        let engine = self.engine()?;
        let batch = living::edges(&src, &dst, Some(&weight), living::Kind::Add)?;
        py.detach(|| engine.apply(batch)).map_err(py_err)
    }

    /// Give every `src → dst` edge of each pair the weight (a missing pair raises `GraphError`) as
    /// one batch; returns the new graph version.
    fn set_weights(
        &self,
        py: Python<'_>,
        src: Bound<'_, PyAny>,
        dst: Bound<'_, PyAny>,
        weight: Bound<'_, PyAny>,
    ) -> PyResult<u64> {
        let engine = self.engine()?;
        let batch = living::edges(&src, &dst, Some(&weight), living::Kind::Reweight)?;
        py.detach(|| engine.apply(batch)).map_err(py_err)
    }

    /// Remove every `src → dst` edge of each pair (a missing or repeated pair raises `GraphError`)
    /// as one batch; returns the new graph version.
    fn remove_edges(&self, py: Python<'_>, src: Bound<'_, PyAny>, dst: Bound<'_, PyAny>) -> PyResult<u64> {
        let engine = self.engine()?;
        let batch = living::edges(&src, &dst, None, living::Kind::Remove)?;
        py.detach(|| engine.apply(batch)).map_err(py_err)
    }

    /// Move nodes to tiers as one batch; returns the new graph version.
    fn set_tiers(&self, py: Python<'_>, nodes: Bound<'_, PyAny>, tiers: Bound<'_, PyAny>) -> PyResult<u64> {
        let engine = self.engine()?;
        let batch = living::set_tiers(&nodes, &tiers)?;
        py.detach(|| engine.apply(batch)).map_err(py_err)
    }

    /// The embedding index (docs/spec.md §18): what answers embedding queries now (`exact`,
    /// `building`, `ann`), its size, bytes, lag, `ef_search` and connectivity.
    fn similarity<'py>(&self, py: Python<'py>) -> PyResult<Bound<'py, PyAny>> {
        let engine = self.engine()?;
        let status = py.detach(|| engine.similarity_status());
        to_py(py, &status)
    }

    /// Wait at most `timeout_s` seconds until the embedding index is built and covers every node
    /// (or none is wanted); returns whether it is. Recalls never need to: they scan exactly meanwhile.
    #[pyo3(signature = (timeout_s=60.0))]
    fn wait_for_similarity_index(&self, py: Python<'_>, timeout_s: f64) -> PyResult<bool> {
        let engine = self.engine()?;
        let timeout = std::time::Duration::try_from_secs_f64(timeout_s).map_err(|_| {
            PyValueError::new_err(format!("timeout_s: must be >= 0 and finite, got {timeout_s}"))
        })?;
        Ok(py.detach(|| engine.wait_for_similarity_index(timeout)))
    }

    /// The current graph version.
    #[getter]
    fn graph_version(&self) -> PyResult<u64> {
        Ok(self.engine()?.graph_version())
    }

    /// Fold the pending changes into a fresh graph now (recalls do not wait); returns the version,
    /// which compaction never changes.
    fn compact(&self, py: Python<'_>) -> PyResult<u64> {
        let engine = self.engine()?;
        py.detach(|| engine.compact()).map_err(py_err)
    }

    /// Save the current graph version as a snapshot (docs/spec.md §17); returns the version saved.
    fn save(&self, py: Python<'_>, path: std::path::PathBuf) -> PyResult<u64> {
        let engine = self.engine()?;
        py.detach(|| engine.save(&path)).map_err(py_err)
    }

    /// Stop the servers and join the engine's threads; later calls raise `ClosedError`. Idempotent.
    /// (A call still running in another thread finishes first; the engine shuts down when it
    /// returns.)
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

//! `axonal.HttpServer`: a running HTTP surface (docs/spec.md §12), from `Engine.serve_http`.

use pyo3::prelude::*;

/// A running HTTP server. `stop()` (or the context manager, or closing its engine) closes the
/// listener and every connection. Thread-safe.
#[pyclass(frozen, module = "axonal._native")]
pub(crate) struct HttpServer {
    pub(crate) inner: axonal_core::http::HttpServer,
}

impl Drop for HttpServer {
    /// Garbage collection stops the server too; the join happens with the GIL released.
    fn drop(&mut self) {
        let inner = &self.inner;
        Python::attach(|py| py.detach(|| inner.stop()));
    }
}

#[pymethods]
impl HttpServer {
    /// `http://host:port`, with the real port.
    #[getter]
    fn url(&self) -> String {
        self.inner.url()
    }

    /// `(host, port)` the server listens on.
    #[getter]
    fn address(&self) -> (String, u16) {
        let addr = self.inner.local_addr();
        (addr.ip().to_string(), addr.port())
    }

    /// Stop serving (idempotent).
    fn stop(&self, py: Python<'_>) {
        py.detach(|| self.inner.stop());
    }

    fn __enter__(slf: Py<Self>) -> Py<Self> {
        slf
    }

    #[pyo3(signature = (*_args))]
    fn __exit__(&self, py: Python<'_>, _args: &Bound<'_, pyo3::types::PyTuple>) -> bool {
        self.stop(py);
        false
    }

    fn __repr__(&self) -> String {
        format!("<axonal.HttpServer {}>", self.inner.url())
    }
}

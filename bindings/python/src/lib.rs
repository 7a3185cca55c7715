//! The PyO3 extension `axonal._native`: a thin binding of `axonal-core` (docs/spec.md §11). This
//! file only registers the module; each concept has its own file: [`errors`], [`convert`],
//! [`graph`], [`result`], [`engine`], [`living`], [`callbacks`], [`http`], [`shard`].

mod callbacks;
mod convert;
mod engine;
mod errors;
mod graph;
mod http;
mod living;
mod result;
mod shard;

use pyo3::prelude::*;

/// The `axonal._native` module.
#[pymodule]
fn _native(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add("__version__", axonal_core::VERSION)?;
    module.add_class::<graph::Graph>()?;
    module.add_class::<engine::Engine>()?;
    module.add_class::<result::RecallResult>()?;
    module.add_class::<result::RecallBatch>()?;
    module.add_class::<http::HttpServer>()?;
    module.add_class::<shard::Shard>()?;
    module.add_function(wrap_pyfunction!(engine::_close_all, module)?)?;
    errors::register(module)
}

//! The PyO3 extension `axonal._native`: a thin binding of `axonal-core` (SPEC §11).
//!
//! This crate grows with the Python issue; today the module carries the version.

use pyo3::prelude::*;

/// The `axonal._native` module.
#[pymodule]
fn _native(module: &Bound<'_, PyModule>) -> PyResult<()> {
    module.add("__version__", axonal_core::VERSION)?;
    Ok(())
}

//! The C ABI of Axonal (docs/spec.md §10): a thin translation of `axonal-core`, nothing else.
//!
//! Conventions (docs/c-api.md): opaque handles; `axonal_<object>_<verb>`; object first, inputs next,
//! out-params last; every buffer followed by its length; every call returns an `axonal_status` and
//! leaves a message for `axonal_last_error_message` when it fails; every body runs inside a panic
//! boundary, so no input can unwind into C.

#![allow(non_camel_case_types)]
#![allow(clippy::missing_safety_doc)] // each function's safety contract is in docs/c-api.md

mod callbacks;
mod engine;
mod error;
mod graph;
#[cfg(feature = "http")]
mod http;
mod living;

pub use callbacks::*;
pub use engine::*;
pub use error::*;
pub use graph::*;
#[cfg(feature = "http")]
pub use http::*;
pub use living::*;

use std::ffi::c_char;

/// ABI version: bumped on any incompatible change to the C surface.
pub const AXONAL_ABI_VERSION: u32 = 1;
/// Library major version (Cargo.toml).
pub const AXONAL_VERSION_MAJOR: u32 = 0;
/// Library minor version (Cargo.toml).
pub const AXONAL_VERSION_MINOR: u32 = 1;
/// Library patch version (Cargo.toml).
pub const AXONAL_VERSION_PATCH: u32 = 0;

/// Bit of `axonal_features()`: the library has the OpenCL backend (used when `"opencl"` finds a
/// device).
pub const AXONAL_FEATURE_BIT_OPENCL: u32 = 1;
/// Bit of `axonal_features()`: the library has the HTTP surface (`axonal_engine_serve_http`).
pub const AXONAL_FEATURE_BIT_HTTP: u32 = 2;

/// The cargo features this library was built with, as `AXONAL_FEATURE_BIT_*` bits. Thread-safe;
/// never fails.
#[unsafe(no_mangle)]
pub extern "C" fn axonal_features() -> u32 {
    let mut bits = 0;
    if cfg!(feature = "opencl") {
        bits |= AXONAL_FEATURE_BIT_OPENCL;
    }
    if cfg!(feature = "http") {
        bits |= AXONAL_FEATURE_BIT_HTTP;
    }
    bits
}

/// NUL-terminated crate version, static storage.
const VERSION_CSTR: &std::ffi::CStr =
    match std::ffi::CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
        Ok(version) => version,
        Err(_) => panic!("version contains a NUL byte"),
    };

/// The ABI version of this library (equals `AXONAL_ABI_VERSION` of the header it was built with).
/// Thread-safe; never fails.
#[unsafe(no_mangle)]
pub extern "C" fn axonal_abi_version() -> u32 {
    AXONAL_ABI_VERSION
}

/// The library version, `MAJOR.MINOR.PATCH`: a static NUL-terminated string; do not free it.
/// Thread-safe; never fails.
#[unsafe(no_mangle)]
pub extern "C" fn axonal_version() -> *const c_char {
    VERSION_CSTR.as_ptr()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_matches_core_and_cargo() {
        let version = unsafe { std::ffi::CStr::from_ptr(axonal_version()) }.to_str().unwrap();
        assert_eq!(version, axonal_core::VERSION);
        let parts: Vec<u32> = version.split('.').map(|p| p.parse().unwrap()).collect();
        assert_eq!(parts, vec![AXONAL_VERSION_MAJOR, AXONAL_VERSION_MINOR, AXONAL_VERSION_PATCH]);
        assert_eq!(axonal_abi_version(), AXONAL_ABI_VERSION);
    }
}

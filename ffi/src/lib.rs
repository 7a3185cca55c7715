//! The C ABI of Axonal (SPEC §10): a thin translation of `axonal-core`, nothing else.
//!
//! This crate grows with the C ABI issue; today it carries the version entry points that every later
//! function is checked against.

use std::ffi::c_char;

/// ABI version: bumped on any incompatible change to the C surface.
pub const AXONAL_ABI_VERSION: u32 = 1;

/// NUL-terminated crate version, static storage.
const VERSION_CSTR: &std::ffi::CStr =
    match std::ffi::CStr::from_bytes_with_nul(concat!(env!("CARGO_PKG_VERSION"), "\0").as_bytes()) {
        Ok(version) => version,
        Err(_) => panic!("version contains a NUL byte"),
    };

/// The ABI version of this library. Thread-safe; never fails.
#[unsafe(no_mangle)]
pub extern "C" fn axonal_abi_version() -> u32 {
    AXONAL_ABI_VERSION
}

/// The library version (`MAJOR.MINOR.PATCH`), a static NUL-terminated string; do not free it.
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
        assert_eq!(axonal_abi_version(), 1);
    }
}

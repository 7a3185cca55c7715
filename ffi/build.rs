//! Give the shared library a versioned SONAME (libaxonal.so.<ABI>) so installed programs bind to an
//! ABI, not to a file name.

fn main() {
    // Keep in sync with AXONAL_ABI_VERSION in src/lib.rs (a test checks the installed SONAME).
    const ABI_VERSION: u32 = 1;
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libaxonal.so.{ABI_VERSION}");
    }
    println!("cargo:rerun-if-changed=build.rs");
}

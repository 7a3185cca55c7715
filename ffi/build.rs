//! Give the shared library a versioned SONAME (libaxonal.so.<ABI>) so installed programs bind to an
//! ABI, not to a file name. The ABI version has one source: `AXONAL_ABI_VERSION` in src/lib.rs (a
//! literal there, so cbindgen writes it into the header); this script reads it from that line.

fn main() {
    println!("cargo:rerun-if-changed=build.rs");
    println!("cargo:rerun-if-changed=src/lib.rs");
    let lib = std::fs::read_to_string("src/lib.rs").expect("reading src/lib.rs");
    let abi: u32 = lib
        .lines()
        .find_map(|line| line.trim().strip_prefix("pub const AXONAL_ABI_VERSION: u32 = "))
        .and_then(|rest| rest.strip_suffix(';'))
        .and_then(|value| value.parse().ok())
        .expect("src/lib.rs declares `pub const AXONAL_ABI_VERSION: u32 = <n>;`");
    if std::env::var("CARGO_CFG_TARGET_OS").as_deref() == Ok("linux") {
        println!("cargo:rustc-cdylib-link-arg=-Wl,-soname,libaxonal.so.{abi}");
    }
}

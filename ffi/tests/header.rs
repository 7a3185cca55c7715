//! include/axonal.h must equal cbindgen's output for ffi/src with ffi/cbindgen.toml. With
//! `AXONAL_WRITE_HEADER=1` (scripts/gen-header) the test writes the header instead of comparing.

use std::path::PathBuf;

#[test]
fn committed_header_matches_cbindgen_output() {
    let crate_dir = PathBuf::from(env!("CARGO_MANIFEST_DIR"));
    let config = cbindgen::Config::from_file(crate_dir.join("cbindgen.toml")).expect("ffi/cbindgen.toml");
    let bindings = cbindgen::Builder::new()
        .with_crate(&crate_dir)
        .with_config(config)
        .generate()
        .expect("cbindgen generates the header");
    let mut generated = Vec::new();
    bindings.write(&mut generated);
    let generated = String::from_utf8(generated).expect("UTF-8 header");
    let path = crate_dir.join("../include/axonal.h");
    if std::env::var_os("AXONAL_WRITE_HEADER").is_some() {
        std::fs::write(&path, &generated).expect("write include/axonal.h");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "include/axonal.h differs from cbindgen's output for ffi/src: run scripts/gen-header and commit the result"
    );
    for macro_name in
        ["AXONAL_ABI_VERSION", "AXONAL_VERSION_MAJOR", "AXONAL_VERSION_MINOR", "AXONAL_STATUS_OK"]
    {
        assert!(
            generated.contains(&format!("#define {macro_name} ")),
            "{macro_name} missing from the header"
        );
    }
}

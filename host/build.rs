//! Embeds the Python probe (`python/`) into the crate, so an installed
//! `pyrometer` binary carries the exact probe it was built and tested with.
//! Writes `$OUT_DIR/python_assets.rs`: a table of (relative path, contents).

use std::path::PathBuf;

/// Files under `python/` that are shipped; the probe package is added whole.
const SHIPPED_FILES: &[&str] = &[
    "sitecustomize.py",
    "pyrometer-exec-wrapper",
    "pyrometer_runtime.py",
];
const PROBE_PACKAGE: &str = "pyrometer_probe";

fn main() {
    let root =
        PathBuf::from(std::env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
            .join("python");
    let mut files: Vec<String> = SHIPPED_FILES.iter().map(|f| (*f).to_owned()).collect();
    let package = root.join(PROBE_PACKAGE);
    let mut modules: Vec<String> = std::fs::read_dir(&package)
        .unwrap_or_else(|e| panic!("{}: {e}", package.display()))
        .filter_map(|e| e.ok())
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .filter(|name| name.ends_with(".py"))
        .map(|name| format!("{PROBE_PACKAGE}/{name}"))
        .collect();
    modules.sort();
    files.extend(modules);
    let mut table = String::from("&[\n");
    for f in &files {
        let path = root.join(f);
        assert!(path.exists(), "{} is missing", path.display());
        table.push_str(&format!(
            "    ({f:?}, include_str!({:?})),\n",
            path.display().to_string()
        ));
        // Per file, not the directory: Python writes __pycache__ beside the sources.
        println!("cargo:rerun-if-changed={}", path.display());
    }
    table.push_str("]\n");
    // A module added to the package changes the directory's listing.
    println!("cargo:rerun-if-changed={}", package.display());
    let out = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"))
        .join("python_assets.rs");
    std::fs::write(&out, table).expect("write python_assets.rs");
    println!("cargo:rerun-if-changed=build.rs");
}

//! Embeds the Python probe (`python/`) into the crate, so an installed
//! `pyrometer` binary carries the exact probe it was built and tested with.
//! Writes `$OUT_DIR/python_assets.rs`: a table of (relative path, contents),
//! and `$OUT_DIR/speedups.rs`: the probe's compiled request measurement
//! (`python/speedups/`), built by `python/speedups/build.sh` for each
//! interpreter in `PYROMETER_SPEEDUPS_PYTHONS` (space-separated; default
//! `python3`). An interpreter it cannot build for (no C compiler, no
//! headers) is reported as a warning and left out: the probe then measures
//! requests in Python on that version.

use std::path::{Path, PathBuf};
use std::process::Command;

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
    let out_dir = PathBuf::from(std::env::var("OUT_DIR").expect("cargo sets OUT_DIR"));
    std::fs::write(out_dir.join("python_assets.rs"), table).expect("write python_assets.rs");
    let speedups = build_speedups(&root.join("speedups"), &out_dir.join("speedups"));
    std::fs::write(out_dir.join("speedups.rs"), speedups).expect("write speedups.rs");
    println!("cargo:rerun-if-changed=build.rs");
}

/// Builds the speedups module for each interpreter of
/// `PYROMETER_SPEEDUPS_PYTHONS` into `out`; returns the table of
/// (path relative to the probe directory, contents) of those that built.
fn build_speedups(source: &Path, out: &Path) -> String {
    for file in ["_speedups.c", "build.sh"] {
        println!("cargo:rerun-if-changed={}", source.join(file).display());
    }
    for var in ["PYROMETER_SPEEDUPS_PYTHONS", "CC", "PATH"] {
        println!("cargo:rerun-if-env-changed={var}");
    }
    let pythons =
        std::env::var("PYROMETER_SPEEDUPS_PYTHONS").unwrap_or_else(|_| "python3".to_owned());
    std::fs::create_dir_all(out).expect("create the speedups directory");
    let mut table = String::from("&[\n");
    for python in pythons.split_whitespace() {
        let built = Command::new("sh")
            .arg(source.join("build.sh"))
            .arg(out)
            .env("PYTHON", python)
            .output();
        match built {
            Ok(o) if o.status.success() => {
                let path = PathBuf::from(String::from_utf8_lossy(&o.stdout).trim());
                let name = path
                    .file_name()
                    .expect("build.sh prints a file")
                    .to_string_lossy();
                table.push_str(&format!(
                    "    ({:?}, include_bytes!({:?})),\n",
                    format!("{PROBE_PACKAGE}/{name}"),
                    path.display().to_string()
                ));
            }
            Ok(o) => println!(
                "cargo:warning=no compiled request measurement for {python} (it will measure in Python): {}",
                String::from_utf8_lossy(&o.stderr).trim()
            ),
            Err(e) => {
                println!("cargo:warning=no compiled request measurement for {python}: sh: {e}")
            }
        }
    }
    table.push_str("]\n");
    table
}

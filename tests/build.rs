//! Builds the WebAssembly guests the tests run — the first-party plugins in
//! `plugins/` and the hostile guests in `tests/guests/` — for `wasm32-wasip2`,
//! each workspace with its own target directory so the host build is never
//! invalidated, and writes their paths to `$OUT_DIR/guests.rs`.

use std::path::{Path, PathBuf};
use std::process::Command;

const WASM_TARGET: &str = "wasm32-wasip2";
const WORKSPACES: &[&str] = &["plugins", "tests/guests"];

fn main() {
    let manifest_dir = PathBuf::from(env("CARGO_MANIFEST_DIR"));
    let root = manifest_dir
        .parent()
        .expect("tests/ sits inside the workspace root")
        .to_path_buf();
    let mut table = String::from(
        "/// (guest name, path of its .wasm), for every guest built.\npub const GUESTS: &[(&str, &str)] = &[\n",
    );
    for ws in WORKSPACES {
        let dir = root.join(ws);
        let target_dir = root
            .join("target")
            .join("guests")
            .join(ws.replace('/', "-"));
        build_workspace(&dir, &target_dir);
        watch(&dir);
        let out = target_dir.join(WASM_TARGET).join("release");
        let mut wasm: Vec<PathBuf> = std::fs::read_dir(&out)
            .unwrap_or_else(|e| panic!("cannot list {}: {e}", out.display()))
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.extension().is_some_and(|x| x == "wasm"))
            .collect();
        wasm.sort();
        for path in wasm {
            let stem = path
                .file_stem()
                .and_then(|s| s.to_str())
                .unwrap_or_default();
            table.push_str(&format!(
                "    ({:?}, {:?}),\n",
                stem.replace('_', "-"),
                path.display().to_string()
            ));
        }
    }
    table.push_str("];\n");
    println!("cargo:rerun-if-changed={}", root.join("wit").display());
    let out_dir = PathBuf::from(env("OUT_DIR"));
    std::fs::write(out_dir.join("guests.rs"), table).expect("write guests.rs");
}

fn build_workspace(dir: &Path, target_dir: &Path) {
    let cargo = std::env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let output = Command::new(cargo)
        .current_dir(dir)
        .args(["build", "--release", "--target", WASM_TARGET])
        .env("CARGO_TARGET_DIR", target_dir)
        // The outer build's flags are for the host, not for wasm guests.
        .env_remove("RUSTFLAGS")
        .env_remove("CARGO_ENCODED_RUSTFLAGS")
        .env_remove("CARGO_BUILD_TARGET")
        .output()
        .unwrap_or_else(|e| panic!("cannot run cargo to build {}: {e}", dir.display()));
    if !output.status.success() {
        let stderr = String::from_utf8_lossy(&output.stderr);
        let hint = if stderr.contains("target may not be installed")
            || stderr.contains("can't find crate for `core`")
        {
            format!("\nthe {WASM_TARGET} target is missing: run `rustup target add {WASM_TARGET}`")
        } else {
            String::new()
        };
        panic!(
            "building the guests in {} failed:\n{stderr}{hint}",
            dir.display()
        );
    }
}

/// Re-run when any guest source or manifest changes.
fn watch(dir: &Path) {
    println!(
        "cargo:rerun-if-changed={}",
        dir.join("Cargo.toml").display()
    );
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for entry in entries.flatten() {
        let p = entry.path();
        if p.join("Cargo.toml").exists() {
            println!("cargo:rerun-if-changed={}", p.join("Cargo.toml").display());
            println!("cargo:rerun-if-changed={}", p.join("src").display());
            if p.join("wit").exists() {
                println!("cargo:rerun-if-changed={}", p.join("wit").display());
            }
        }
    }
}

fn env(key: &str) -> String {
    std::env::var(key).unwrap_or_else(|_| panic!("{key} is set by cargo"))
}

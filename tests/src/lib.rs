//! Shared helpers of the end-to-end tests and benchmarks: where the built
//! guests are, how to read the fixture cases under `tests/data/`, and the
//! benchmarks' nearest-rank percentile.

use std::path::PathBuf;

pub mod gateway;

include!(concat!(env!("OUT_DIR"), "/guests.rs"));

/// The `.wasm` of guest `name` (a first-party plugin or a hostile test guest).
///
/// # Panics
/// If no guest of that name was built: the message lists those that were.
pub fn guest(name: &str) -> PathBuf {
    GUESTS
        .iter()
        .find(|(n, _)| *n == name)
        .map(|(_, p)| PathBuf::from(p))
        .unwrap_or_else(|| {
            let known: Vec<_> = GUESTS.iter().map(|(n, _)| *n).collect();
            panic!("no guest named {name}; built: {known:?}")
        })
}

/// The `tests/data` folder.
pub fn data_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("data")
}

/// The `pyrometer` binary built beside this test (`target/<profile>/pyrometer`).
///
/// # Panics
/// If it has not been built; the message gives the command.
pub fn pyrometer_bin() -> PathBuf {
    built_bin("pyrometer")
}

/// The `pyrometer-extension` binary built beside this test.
///
/// # Panics
/// If it has not been built; the message gives the command.
pub fn extension_bin() -> PathBuf {
    built_bin("pyrometer-extension")
}

fn built_bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    // target/<profile>/deps/<test> → target/<profile>/<name>
    let bin = exe
        .parent()
        .and_then(|deps| deps.parent())
        .map(|profile| profile.join(name))
        .expect("test executable lives in target/<profile>/deps");
    assert!(
        bin.exists(),
        // Both together: the extension alone would build without the plugin
        // compiler, and so rebuild wasmtime (see lambda-extension/README.md).
        "{} is missing: build it first with `cargo build --release -p pyrometer -p pyrometer-extension`",
        bin.display()
    );
    bin
}

/// Renders what `f` recorded through the `metrics` facade, in Prometheus text.
pub fn recorded_metrics<T>(f: impl FnOnce() -> T) -> (T, String) {
    let recorder = metrics_exporter_prometheus::PrometheusBuilder::new().build_recorder();
    let handle = recorder.handle();
    let value = metrics::with_local_recorder(&recorder, f);
    (value, handle.render())
}

/// The value of the first sample in `text` whose line starts with `series`
/// (a metric name with its labels in exposition order), if any.
pub fn sample(text: &str, series: &str) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|l| l.strip_prefix(series)?.trim().parse().ok())
}

/// Asserts that a CLI run failed with exactly one `pyrometer:` error line
/// containing `needle`.
pub fn assert_one_line_failure(out: &std::process::Output, needle: &str) {
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "must fail: {stderr}");
    let lines: Vec<_> = stderr
        .lines()
        .filter(|l| l.starts_with("pyrometer:"))
        .collect();
    assert_eq!(lines.len(), 1, "one error line: {stderr}");
    assert!(lines[0].contains(needle), "{stderr}");
}

/// `python3` as this process's `PATH` finds it, in full: an emulated Lambda
/// environment has Lambda's own `PATH`, which may not find it.
///
/// # Panics
/// If there is no `python3` on `PATH`.
pub fn python3() -> PathBuf {
    std::env::var_os("PATH")
        .iter()
        .flat_map(std::env::split_paths)
        .map(|dir| dir.join("python3"))
        .find(|p| p.is_file())
        .expect("python3 on PATH")
}

/// Asserts that a command succeeded, showing its stderr when it did not.
pub fn assert_success(out: &std::process::Output) {
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

/// The `p` quantile (0 to 1) of `values` by nearest rank: the value at
/// index `round((n - 1) * p)` once sorted (`p = 0.5` is the upper median
/// of an even count). The benchmarks' summaries.
///
/// # Panics
/// If `values` is empty.
pub fn percentile(mut values: Vec<f64>, p: f64) -> f64 {
    values.sort_by(f64::total_cmp);
    values[((values.len() - 1) as f64 * p).round() as usize]
}

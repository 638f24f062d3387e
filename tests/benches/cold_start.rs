//! Cold start of the bundled `orders` example as `pyrometer lambda` measures
//! it (Lambda's init duration, and the import phase the probe saw), against
//! the same app timed from outside with plain `python3 -c 'import app'`, both
//! measured in this run.
//!
//! Run with `cargo bench -p pyrometer-tests --bench cold_start` (after
//! `cargo build --release -p pyrometer`).

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use pyrometer::report::LambdaReport;
use pyrometer_tests::{assert_success, percentile, pyrometer_bin};

const RUNS: usize = 10;

fn main() {
    let app = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/orders");
    let plain: Vec<f64> = (0..RUNS)
        .map(|_| {
            let t = Instant::now();
            let status = Command::new("python3")
                .args(["-c", "import app"])
                .current_dir(&app)
                .status()
                .expect("python3");
            assert!(status.success());
            t.elapsed().as_secs_f64() * 1000.0
        })
        .collect();
    // The same imports timed inside the interpreter: no start-up, no teardown.
    let in_process: Vec<f64> = (0..RUNS)
        .map(|_| {
            let out = Command::new("python3")
                .args(["-c", "import time; t = time.perf_counter(); import app; print((time.perf_counter() - t) * 1000)"])
                .current_dir(&app)
                .output()
                .expect("python3");
            String::from_utf8_lossy(&out.stdout).trim().parse::<f64>().expect("milliseconds")
        })
        .collect();
    let json = std::env::temp_dir().join(format!("pyrometer-cold-{}.json", std::process::id()));
    let out = Command::new(pyrometer_bin())
        .current_dir(&app)
        .args([
            "lambda",
            "app.py:handler",
            "--invocations",
            "1",
            "--cold",
            &RUNS.to_string(),
            "--json",
        ])
        .arg(&json)
        .output()
        .expect("pyrometer lambda");
    assert_success(&out);
    let report: LambdaReport =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("report")).expect("schema");
    let _ = std::fs::remove_file(&json);
    let init: Vec<f64> = report
        .environments
        .iter()
        .filter_map(|e| e.init.init_duration_ms)
        .collect();
    let imports: Vec<f64> = report
        .environments
        .iter()
        .filter_map(|e| {
            e.init
                .python
                .as_ref()
                .map(|p| p.import_phase_us as f64 / 1000.0)
        })
        .collect();
    let start_to_ready: Vec<f64> = report
        .environments
        .iter()
        .filter_map(|e| {
            e.init
                .python
                .as_ref()
                .and_then(|p| p.start_to_ready_us())
                .map(|us| us as f64 / 1000.0)
        })
        .collect();
    let base = percentile(plain, 0.5);
    println!("cold start of examples/orders, median of {RUNS} runs each\n");
    println!(
        "plain `python3 -c 'import app'` (process wall time)  {base:>8.1} ms  1.00x (baseline)"
    );
    let imports_alone = percentile(in_process, 0.5);
    println!(
        "plain python3, `import app` timed in-process         {imports_alone:>8.1} ms  {:.2}x",
        imports_alone / base
    );
    for (name, values) in [
        ("pyrometer lambda: Lambda init duration", init),
        (
            "pyrometer lambda: interpreter start → handler ready",
            start_to_ready,
        ),
        ("pyrometer lambda: import phase seen by the probe", imports),
    ] {
        if values.is_empty() {
            println!("{name:<52}        –");
            continue;
        }
        let m = percentile(values, 0.5);
        println!("{name:<52} {m:>8.1} ms  {:.2}x", m / base);
    }
}

//! `pyrometer lambda` end to end: the real binary runs the bundled examples
//! under the emulator with real CPython, the embedded probe and the
//! first-party plugins, and its outputs are checked.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use pyrometer::report::{LambdaReport, SCHEMA};
use pyrometer_tests::{assert_one_line_failure, assert_success, data_dir, guest, pyrometer_bin};

fn examples() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples")
}

fn python_available() {
    let ok = Command::new("python3")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    assert!(ok, "python3 is required: apt-get install -y python3");
}

fn lambda(dir: &Path, args: &[&str]) -> Output {
    python_available();
    Command::new(pyrometer_bin())
        .current_dir(dir)
        .arg("lambda")
        .args(args)
        .env("NO_COLOR", "1")
        .output()
        .expect("run pyrometer lambda")
}

fn read_report(path: &Path) -> LambdaReport {
    let text = std::fs::read_to_string(path).expect("report written");
    serde_json::from_str(&text).expect("the JSON report matches the schema")
}

#[test]
fn leaky_example_names_the_slow_module_and_the_leak() {
    let out_dir = tempfile::tempdir().expect("tempdir");
    let json = out_dir.path().join("report.json");
    let plugins = [
        "slow-imports",
        "cold-start-budget",
        "memory-trend",
        "latency-slo",
    ]
    .map(guest);
    let mut args: Vec<String> = vec!["app.py:handler".into(), "--invocations".into(), "25".into()];
    for p in &plugins {
        args.push("--plugin".into());
        args.push(p.display().to_string());
    }
    let html = out_dir.path().join("report.html");
    args.extend([
        "--json".into(),
        json.display().to_string(),
        "--html".into(),
        html.display().to_string(),
    ]);
    let args: Vec<&str> = args.iter().map(String::as_str).collect();
    let out = lambda(&examples().join("leaky"), &args);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_success(&out);
    assert!(
        stdout.contains("slow_config"),
        "the terminal report names the slow module:\n{stdout}"
    );
    assert!(stdout.contains("memory-leak"), "and the leak:\n{stdout}");

    let report = read_report(&json);
    assert_eq!(report.schema, SCHEMA);
    assert_eq!(report.environments.len(), 1);
    let env = &report.environments[0];
    assert_eq!(env.invocations.len(), 25);
    assert!(env.invocations[0].cold_start && env.invocations[1..].iter().all(|i| !i.cold_start));
    let imports = env.init.imports.as_ref().expect("import profile");
    let slow = imports
        .modules
        .iter()
        .find(|m| m.module == "slow_config")
        .expect("slow_config profiled");
    assert!(
        slow.self_us >= 250_000,
        "slow_config spins 300 ms at import: {}",
        slow.self_us
    );
    let b = env.init.breakdown.expect("init breakdown");
    assert!(b.handler_module_ms >= 250.0, "{b:?}");
    assert!(
        report.findings.iter().any(|f| f.rule == "slow-import"
            && f.labels.contains(&("module".into(), "slow_config".into()))),
        "{:?}",
        report.findings
    );
    assert!(
        report.findings.iter().any(|f| f.rule == "memory-leak"),
        "{:?}",
        report.findings
    );
    let rss: Vec<f64> = env.invocations.iter().filter_map(|i| i.rss_bytes).collect();
    assert_eq!(rss.len(), 25, "RSS measured for every invocation");
    assert!(
        env.invocations
            .iter()
            .all(|i| i.open_fds.is_some_and(|n| n >= 3.0) && i.threads.is_some_and(|n| n >= 1.0)),
        "open fds and threads sampled from procfs for every invocation"
    );
    assert!(
        rss[24] - rss[1] > 20.0 * 200.0 * 1024.0,
        "the cache grows ~256 KiB per call: {rss:?}"
    );
    assert!(
        report.plugin_failures.is_empty(),
        "{:?}",
        report.plugin_failures
    );
}

#[test]
fn orders_example_over_two_cold_starts() {
    let out_dir = tempfile::tempdir().expect("tempdir");
    let json = out_dir.path().join("report.json");
    let folded = out_dir.path().join("imports.folded");
    let out = lambda(
        &examples().join("orders"),
        &[
            "app.py:handler",
            "--invocations",
            "3",
            "--cold",
            "2",
            "--json",
            json.to_str().expect("utf8"),
            "--folded",
            folded.to_str().expect("utf8"),
        ],
    );
    assert_success(&out);
    let report = read_report(&json);
    assert_eq!(report.environments.len(), 2);
    for env in &report.environments {
        assert_eq!(env.invocations.len(), 3);
        assert!(env.invocations[0].cold_start);
        assert!(env.init.init_duration_ms.is_some_and(|d| d > 0.0));
        let modules = env.init.imports.as_ref().map_or(0, |p| p.modules.len());
        assert!(modules > 100, "a heavy import graph: {modules} modules");
        assert!(
            env.invocations
                .iter()
                .all(|i| i.status == pyrometer::model::Status::Success && !i.partial)
        );
    }
    let folded = std::fs::read_to_string(&folded).expect("folded stacks");
    assert!(
        folded.lines().any(|l| l.starts_with("app;orders.receipts")),
        "{folded}"
    );
}

#[test]
fn bad_handler_and_event_are_one_clear_line() {
    let dir = examples().join("leaky");
    assert_one_line_failure(&lambda(&dir, &["missing.py:handler"]), "does not exist");
    assert_one_line_failure(&lambda(&dir, &["app.py"]), "expected FILE.py:FUNCTION");
    let bad_event = tempfile::NamedTempFile::new().expect("tmp");
    std::fs::write(bad_event.path(), "{oops").expect("write");
    assert_one_line_failure(
        &lambda(
            &dir,
            &[
                "app.py:handler",
                "--event",
                bad_event.path().to_str().expect("utf8"),
            ],
        ),
        "not valid JSON",
    );
}

#[test]
fn init_failure_shows_the_traceback_and_fails() {
    let out = lambda(
        &data_dir().join("lambda/init-fails"),
        &["app.py:handler", "--invocations", "2"],
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success(), "{stderr}");
    assert!(stderr.contains("failed at init"), "{stderr}");
    assert!(
        stderr.contains("database URL is not configured"),
        "{stderr}"
    );
    assert!(
        stderr.contains("app.py"),
        "the traceback names the file: {stderr}"
    );
}

#[test]
fn awslambdaric_runs_the_handler_with_the_probe() {
    let has_ric = Command::new("python3")
        .args(["-c", "import awslambdaric"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        has_ric,
        "awslambdaric is required: python3 -m pip install awslambdaric"
    );
    let out_dir = tempfile::tempdir().expect("tempdir");
    let json = out_dir.path().join("report.json");
    let out = lambda(
        &examples().join("orders"),
        &[
            "app.py:handler",
            "--invocations",
            "3",
            "--runtime",
            "awslambdaric",
            "--json",
            json.to_str().expect("utf8"),
        ],
    );
    assert_success(&out);
    let report = read_report(&json);
    assert_eq!(report.runtime_client, "awslambdaric");
    let env = &report.environments[0];
    assert_eq!(env.invocations.len(), 3);
    assert!(
        env.invocations.iter().all(|i| i.python.is_some()),
        "the probe wrapped the handler under awslambdaric"
    );
    let handler = env.init.python.as_ref().and_then(|p| p.handler.clone());
    assert_eq!(handler.as_deref(), Some("app.handler"));
}

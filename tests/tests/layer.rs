//! The Lambda layer end to end: `pyrometer layer build` writes the zip
//! (listed and unpacked here with Python's `zipfile`, an independent reader),
//! refuses bad inputs with one line, and `pyrometer lambda --layer` runs a
//! function with the layer attached — the real extension from the zip,
//! configured by the zip's `pyrometer.toml`, running the zip's precompiled
//! plugin and sampling the runtime from procfs, pushing to a real Pushgateway.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use pyrometer::config::{Config, ConfigFile, FlushStrategy};
use pyrometer::plugins::PluginSet;
use pyrometer_tests::gateway::{Gateway, series_sum};
use pyrometer_tests::{
    assert_one_line_failure, assert_success, extension_bin, guest, pyrometer_bin, python3,
};

const EXEC_WRAPPER_LINE: &str = "AWS_LAMBDA_EXEC_WRAPPER=/opt/pyrometer/pyrometer-exec-wrapper";

/// The repository root, where `examples/` is.
fn repo_root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("tests/ is in the repository")
        .to_path_buf()
}

/// `pyrometer layer build ARGS -o OUT`, with the extension built beside it.
fn layer_build(out: &Path, args: &[&str]) -> Output {
    let extension = extension_bin();
    Command::new(pyrometer_bin())
        .args(["layer", "build", "--extension-bin"])
        .arg(&extension)
        .args(args)
        .arg("-o")
        .arg(out)
        .output()
        .expect("run pyrometer layer build")
}

fn path_arg(path: &Path) -> &str {
    path.to_str().expect("utf-8 path")
}

/// One entry as Python's `zipfile` reads it.
#[derive(Debug, serde::Deserialize)]
struct Listed {
    name: String,
    mode: u32,
    date_time: Vec<u32>,
    method: u32,
    size: u64,
}

/// The zip's entries, after Python checked every CRC (`testzip`).
fn listing(zip: &Path) -> Vec<Listed> {
    const SCRIPT: &str = r#"
import json, sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as z:
    assert z.testzip() is None, "a CRC does not match"
    print(json.dumps([
        {"name": i.filename, "mode": i.external_attr >> 16, "date_time": list(i.date_time),
         "method": i.compress_type, "size": i.file_size}
        for i in z.infolist()
    ]))
"#;
    let out = Command::new(python3())
        .args(["-c", SCRIPT])
        .arg(zip)
        .output()
        .expect("python3");
    assert_success(&out);
    serde_json::from_slice(&out.stdout).expect("listing JSON")
}

/// Unpacks the zip with Python (which leaves modes aside) into `dir`.
fn python_extract(zip: &Path, dir: &Path) {
    let out = Command::new(python3())
        .args([
            "-c",
            "import sys, zipfile; zipfile.ZipFile(sys.argv[1]).extractall(sys.argv[2])",
        ])
        .arg(zip)
        .arg(dir)
        .output()
        .expect("python3");
    assert_success(&out);
}

#[test]
fn the_zip_holds_the_extension_probe_precompiled_plugins_and_checked_settings() {
    let dir = tempfile::tempdir().expect("tempdir");
    // A plugin named by the settings file, relative to it.
    std::fs::create_dir(dir.path().join("src")).expect("dir");
    std::fs::copy(guest("latency-slo"), dir.path().join("src/latency.wasm")).expect("copy");
    let config = dir.path().join("pyrometer.toml");
    std::fs::write(
        &config,
        r#"
        pushgateway_url = "http://gateway.internal:9091"
        flush = "periodic,5000"

        [[plugin]]
        path = "src/latency.wasm"
        config = { window = 50 }
        "#,
    )
    .expect("config");
    let zip = dir.path().join("layer.zip");
    let slow_imports = guest("slow-imports");
    let memory_trend = guest("memory-trend");
    let args = [
        "--plugin",
        path_arg(&slow_imports),
        "--plugin",
        path_arg(&memory_trend),
        "--plugin-config",
        "slow_imports:top_n=3",
        "--config",
        path_arg(&config),
    ];
    let out = layer_build(&zip, &args);
    assert_success(&out);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains(EXEC_WRAPPER_LINE), "{stdout}");
    assert!(
        stdout.contains("/opt/extensions/pyrometer-extension"),
        "{stdout}"
    );

    let entries = listing(&zip);
    let names: Vec<&str> = entries.iter().map(|e| e.name.as_str()).collect();
    let mut sorted = names.clone();
    sorted.sort_unstable();
    assert_eq!(names, sorted, "entries are sorted");
    let mode = |name: &str| {
        entries
            .iter()
            .find(|e| e.name == name)
            .unwrap_or_else(|| panic!("{name} in {names:?}"))
            .mode
    };
    assert_eq!(mode("extensions/"), 0o040_755);
    assert_eq!(mode("extensions/pyrometer-extension"), 0o100_755);
    assert_eq!(mode("pyrometer/pyrometer-exec-wrapper"), 0o100_755);
    assert_eq!(mode("pyrometer/sitecustomize.py"), 0o100_644);
    assert_eq!(mode("pyrometer/pyrometer_probe/__init__.py"), 0o100_644);
    assert_eq!(mode("pyrometer/pyrometer.toml"), 0o100_644);
    let cwasm: Vec<&str> = names
        .iter()
        .copied()
        .filter(|n| n.starts_with("pyrometer/plugins/") && !n.ends_with('/'))
        .collect();
    assert_eq!(
        cwasm,
        [
            "pyrometer/plugins/latency.cwasm",
            "pyrometer/plugins/memory_trend.cwasm",
            "pyrometer/plugins/slow_imports.cwasm"
        ]
    );
    assert!(
        entries.iter().all(|e| e.date_time == [1980, 1, 1, 0, 0, 0]),
        "fixed timestamps"
    );
    let deflated = entries
        .iter()
        .filter(|e| !e.name.ends_with('/'))
        .all(|e| e.method == 8);
    assert!(deflated, "files are deflated");
    let extension_size = std::fs::metadata(extension_bin()).expect("stat").len();
    assert_eq!(
        entries
            .iter()
            .find(|e| e.name == "extensions/pyrometer-extension")
            .map(|e| e.size),
        Some(extension_size)
    );

    // The precompiled plugins load in the host; the settings read back whole.
    let unpacked = dir.path().join("opt");
    python_extract(&zip, &unpacked);
    let set = PluginSet::new().expect("engine");
    for name in &cwasm {
        set.check(&unpacked.join(name))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
    }
    let text = std::fs::read_to_string(unpacked.join("pyrometer/pyrometer.toml")).expect("toml");
    let file = ConfigFile::parse(Path::new("/opt/pyrometer/pyrometer.toml"), &text)
        .expect("the written file is TOML");
    let mut settings = Config::default();
    let warnings = file.apply(&mut settings);
    assert!(warnings.is_empty(), "{warnings:?}\n{text}");
    assert_eq!(
        settings.flush,
        FlushStrategy::Periodic(std::time::Duration::from_secs(5))
    );
    assert!(settings.export.pushgateway.is_some(), "{text}");
    let plugins: Vec<(String, Vec<(String, String)>)> = settings
        .plugins
        .iter()
        .map(|p| {
            (
                p.path.display().to_string(),
                p.config.clone().into_iter().collect(),
            )
        })
        .collect();
    assert_eq!(
        plugins,
        [
            (
                "/opt/pyrometer/plugins/latency.cwasm".to_owned(),
                vec![("window".to_owned(), "50".to_owned())]
            ),
            (
                "/opt/pyrometer/plugins/slow_imports.cwasm".to_owned(),
                vec![("top_n".to_owned(), "3".to_owned())]
            ),
            (
                "/opt/pyrometer/plugins/memory_trend.cwasm".to_owned(),
                vec![]
            ),
        ]
    );

    let again = dir.path().join("again.zip");
    assert_success(&layer_build(&again, &args));
    assert!(
        std::fs::read(&zip).expect("zip") == std::fs::read(&again).expect("zip"),
        "the same inputs give the same bytes"
    );
}

#[test]
fn bad_inputs_fail_the_build_with_one_line_and_write_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let zip = dir.path().join("layer.zip");
    let text_file = dir.path().join("notes.wasm");
    std::fs::write(&text_file, "not a component").expect("write");
    let rejects_config = guest("rejects-config");
    let net_client = guest("net-client");
    let slow_imports = guest("slow-imports");
    let toml = |name: &str, text: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, text).expect("write");
        path
    };
    let not_toml = toml("syntax.toml", "flush = \"end\"\nemf = \n");
    let unknown_key = toml("unknown.toml", "colour = \"blue\"\n");
    let bad_flush = toml("flush.toml", "flush = \"sometimes\"\n");
    let bad_url = toml("url.toml", "remote_write_url = \"not a url\"\n");
    let cases: [(&[&str], &str); 10] = [
        (
            &["--plugin", path_arg(&text_file)],
            "is not a WebAssembly file",
        ),
        (&["--plugin", path_arg(&net_client)], "does not grant"),
        (
            &[
                "--plugin",
                path_arg(&rejects_config),
                "--plugin-config",
                "rejects_config:threshold=high",
            ],
            "threshold must be a number",
        ),
        (
            &[
                "--plugin",
                path_arg(&slow_imports),
                "--plugin-config",
                "slow_imports:top_n=lots",
            ],
            "does not load as a pyrometer plugin",
        ),
        (
            &["--plugin-config", "ghost:x=1"],
            "no plugin named \"ghost\"",
        ),
        (
            &[
                "--plugin",
                path_arg(&slow_imports),
                "--plugin",
                path_arg(&slow_imports),
            ],
            "are both named \"slow_imports\"",
        ),
        (
            &["--config", path_arg(&not_toml)],
            "is not valid TOML: line 2",
        ),
        (
            &["--config", path_arg(&unknown_key)],
            "unknown key `colour`",
        ),
        (&["--config", path_arg(&bad_flush)], "flush: \"sometimes\""),
        (&["--config", path_arg(&bad_url)], "not a url"),
    ];
    for (args, needle) in cases {
        let out = layer_build(&zip, args);
        assert_one_line_failure(&out, needle);
        assert!(!zip.exists(), "{args:?} wrote no zip");
    }
    let out = Command::new(pyrometer_bin())
        .args([
            "layer",
            "build",
            "--extension-bin",
            "/nonexistent/ext",
            "-o",
        ])
        .arg(&zip)
        .output()
        .expect("run");
    assert_one_line_failure(&out, "cannot read /nonexistent/ext");

    // Without --extension-bin the extension is looked for beside pyrometer.
    let lonely = dir.path().join("bin");
    std::fs::create_dir(&lonely).expect("dir");
    std::fs::copy(pyrometer_bin(), lonely.join("pyrometer")).expect("copy");
    let out = Command::new(lonely.join("pyrometer"))
        .args(["layer", "build", "-o"])
        .arg(&zip)
        .output()
        .expect("run");
    assert_one_line_failure(&out, "cargo build --release -p pyrometer-extension");
    assert_eq!(out.status.code(), Some(1));
}

/// `pyrometer lambda` on the leaky example from the repository root.
fn lambda_with_layer(layer: &Path, function_name: &str, args: &[&str]) -> Output {
    Command::new(pyrometer_bin())
        .current_dir(repo_root())
        .args(["lambda", "examples/leaky/app.py:handler", "--layer"])
        .arg(layer)
        .args(["--function-name", function_name])
        .args(args)
        .arg("--python")
        .arg(python3())
        .env("NO_COLOR", "1")
        // The emulator copies the extension's log lines to stderr.
        .env("PYROMETER_ECHO_LOGS", "1")
        .output()
        .expect("run pyrometer lambda")
}

#[test]
fn a_function_with_the_layer_runs_its_extension_plugin_and_procfs_sampling() {
    let gw = Gateway::start();
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("pyrometer.toml");
    std::fs::write(
        &config,
        format!(
            "pushgateway_url = \"{}\"\nflush_budget_ms = 1000\nlog = \"info\"\n",
            gw.url
        ),
    )
    .expect("config");
    let zip = dir.path().join("layer.zip");
    let slow_imports = guest("slow-imports");
    assert_success(&layer_build(
        &zip,
        &[
            "--plugin",
            path_arg(&slow_imports),
            "--config",
            path_arg(&config),
        ],
    ));
    let out = lambda_with_layer(&zip, "layer/e2e", &["--invocations", "3"]);
    assert_success(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("[pyrometer-extension]") && stderr.contains("ready"),
        "the layer's extension started and logged at the layer's level: {stderr}"
    );

    let text = gw.metrics().expect("gateway metrics");
    let function = [r#"function_name="layer/e2e""#];
    let sum = |prefix: &str| series_sum(&text, prefix, &function);
    assert_eq!(sum("faas_invocations_total{"), 3.0, "{text}");
    assert!(
        series_sum(
            &text,
            "pyrometer_findings_total{",
            &[
                function[0],
                r#"plugin="slow_imports""#,
                r#"rule="slow-import""#
            ]
        ) >= 1.0,
        "the layer's plugin named the slow import: {text}"
    );
    assert!(sum("pyrometer_slow_imports_phase_seconds{") > 0.0, "{text}");
    // From procfs, sampled by the extension (the probe measures neither).
    assert!(sum("process_open_fds{") >= 3.0, "{text}");
    assert!(sum("process_threads{") >= 1.0, "{text}");
    assert!(sum("process_resident_memory_bytes{") > 1e6, "{text}");
    assert!(sum("process_cpu_seconds_total{") > 0.0, "{text}");
}

#[test]
fn a_layer_whose_settings_are_invalid_still_runs_the_function_and_says_why() {
    let dir = tempfile::tempdir().expect("tempdir");
    let zip = dir.path().join("layer.zip");
    assert_success(&layer_build(&zip, &[]));
    // Replace pyrometer.toml inside the zip, keeping every other entry as written.
    let broken = dir.path().join("broken.zip");
    let out = Command::new(python3())
        .args([
            "-c",
            r#"
import sys, zipfile
with zipfile.ZipFile(sys.argv[1]) as src, zipfile.ZipFile(sys.argv[2], "w") as dst:
    for info in src.infolist():
        data = src.read(info)
        if info.filename == "pyrometer/pyrometer.toml":
            data = b"flush = \n"
        dst.writestr(info, data)
"#,
        ])
        .arg(&zip)
        .arg(&broken)
        .output()
        .expect("python3");
    assert_success(&out);
    let json = dir.path().join("report.json");
    let out = lambda_with_layer(
        &broken,
        "layer/fail-open",
        &["--invocations", "2", "--json", path_arg(&json)],
    );
    assert_success(&out);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr
            .lines()
            .any(|l| l.starts_with("[pyrometer-extension]")
                && l.contains("pyrometer.toml is not valid TOML: line 1")),
        "the extension logs the warning and runs on defaults: {stderr}"
    );
    let report: pyrometer::report::LambdaReport =
        serde_json::from_str(&std::fs::read_to_string(&json).expect("report")).expect("JSON");
    let invocations: Vec<_> = report
        .environments
        .iter()
        .flat_map(|e| &e.invocations)
        .map(|i| i.status)
        .collect();
    assert_eq!(
        invocations,
        [pyrometer::model::Status::Success; 2],
        "the function ran as without the layer's settings"
    );
}

#[test]
fn a_missing_corrupt_or_foreign_layer_is_one_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let corrupt = dir.path().join("corrupt.zip");
    std::fs::write(&corrupt, b"PK\x03\x04 this is not really a zip").expect("write");
    let foreign = dir.path().join("python-deps.zip");
    let out = Command::new(python3())
        .args([
            "-c",
            "import sys, zipfile; zipfile.ZipFile(sys.argv[1], 'w').writestr('python/dep.py', '')",
        ])
        .arg(&foreign)
        .output()
        .expect("python3");
    assert_success(&out);
    for (zip, needle) in [
        (dir.path().join("missing.zip"), "cannot read"),
        (corrupt, "not a zip archive"),
        (foreign, "has no extensions/ directory"),
    ] {
        let out = lambda_with_layer(&zip, "layer/bad", &[]);
        assert_one_line_failure(&out, needle);
        assert_eq!(out.status.code(), Some(1));
    }
}

//! Loading plugins from files: `.wasm` and `.cwasm`, and every way a file can
//! be wrong — each must give a clear error, never a crash. Also drives the
//! `pyrometer plugin` CLI the way a plugin author would.

use std::path::Path;
use std::process::{Command, Output};

use pyrometer::model::Batch;
use pyrometer::plugins::{LoadError, PluginSet, PluginSpec, artifact};
use pyrometer_tests::{assert_one_line_failure, assert_success, guest, pyrometer_bin};

fn precompiled(dir: &Path, name: &str) -> std::path::PathBuf {
    let set = PluginSet::new().expect("engine");
    let bytes = artifact::precompile(set.engine(), &guest(name)).expect("precompile");
    let path = dir.join(format!("{name}.cwasm"));
    std::fs::write(&path, bytes).expect("write cwasm");
    path
}

fn load_error(path: &Path) -> LoadError {
    let mut set = PluginSet::new().expect("engine");
    match set.add(&PluginSpec::new(path)) {
        Ok(()) => panic!("{} loaded", path.display()),
        Err(e) => e,
    }
}

#[test]
fn cwasm_loads_and_behaves_like_the_wasm() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cwasm = precompiled(dir.path(), "echo");
    let batch: Batch =
        serde_json::from_str(r#"{"function":{"name":"f"},"invocations":[{"duration_ms":2.5}]}"#)
            .expect("batch");
    let mut outputs = Vec::new();
    for path in [guest("echo"), cwasm] {
        let mut set = PluginSet::new().expect("engine");
        set.add(&PluginSpec::new(&path)).expect("load");
        outputs.push(set.run(&batch).output);
    }
    assert_eq!(outputs[0], outputs[1]);
    assert!(!outputs[0].metrics.is_empty());
}

#[test]
fn corrupt_and_mismatched_cwasm_are_refused() {
    let dir = tempfile::tempdir().expect("tempdir");
    let good = std::fs::read(precompiled(dir.path(), "echo")).expect("read");

    let truncated = dir.path().join("truncated.cwasm");
    std::fs::write(&truncated, &good[..good.len() / 3]).expect("write");
    let err = load_error(&truncated);
    assert!(
        matches!(
            err,
            LoadError::Precompiled { .. } | LoadError::NotWasm { .. }
        ),
        "{err}"
    );

    // Another wasmtime's artifact: the engine section stamps the major
    // version as (format 0, length 2, "48"); pretend it came from wasmtime 47.
    let mut foreign = good.clone();
    let at = find(&foreign, &[0, 2, b'4', b'8']).expect("version stamp present");
    foreign[at + 3] = b'7';
    let foreign_path = dir.path().join("foreign.cwasm");
    std::fs::write(&foreign_path, &foreign).expect("write");
    let err = load_error(&foreign_path);
    assert!(matches!(err, LoadError::Precompiled { .. }), "{err}");
    assert!(
        err.to_string().contains("incompatible version '47'"),
        "{err}"
    );
    assert!(
        err.to_string().contains("pyrometer plugin compile"),
        "the error says how to fix it: {err}"
    );
}

fn find(hay: &[u8], needle: &[u8]) -> Option<usize> {
    hay.windows(needle.len()).position(|w| w == needle)
}

#[test]
fn non_components_are_refused_with_the_reason() {
    let dir = tempfile::tempdir().expect("tempdir");
    let text = dir.path().join("notes.wasm");
    std::fs::write(&text, "hello").expect("write");
    assert!(matches!(load_error(&text), LoadError::NotWasm { .. }));

    let core = dir.path().join("core.wasm");
    // `(module)`: the preamble of an empty core module (version 1, layer 0).
    std::fs::write(&core, b"\0asm\x01\0\0\0").expect("write");
    let err = load_error(&core);
    assert!(matches!(err, LoadError::NotAComponent { .. }), "{err}");
    assert!(err.to_string().contains("wasm32-wasip2"), "{err}");

    let empty_component = dir.path().join("empty.wasm");
    // `(component)`: the preamble of an empty component (version 0xd, layer 1).
    std::fs::write(&empty_component, b"\0asm\x0d\0\x01\0").expect("write");
    assert!(matches!(
        load_error(&empty_component),
        LoadError::World { .. }
    ));

    assert!(matches!(
        load_error(&dir.path().join("missing.wasm")),
        LoadError::Read { .. }
    ));
}

fn pyrometer(args: &[&str]) -> Output {
    Command::new(pyrometer_bin())
        .args(args)
        .output()
        .expect("run pyrometer")
}

#[test]
fn cli_check_run_and_compile() {
    let dir = tempfile::tempdir().expect("tempdir");
    let echo = guest("echo");
    let echo = echo.to_str().expect("utf8 path");

    let out = pyrometer(&["plugin", "check", echo]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_success(&out);
    assert!(
        stdout.contains("func analyze") && stdout.contains("func configure"),
        "{stdout}"
    );
    assert!(stdout.contains("pyrometer:plugin/types"), "{stdout}");

    let batch = dir.path().join("batch.json");
    std::fs::write(&batch, r#"[{"function":{"name":"a"},"invocations":[{"duration_ms":1}]},{"function":{"name":"b"}}]"#).expect("write");
    let out = pyrometer(&[
        "plugin",
        "run",
        echo,
        "--input",
        batch.to_str().expect("utf8"),
    ]);
    assert_success(&out);
    let printed: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON on stdout");
    assert_eq!(
        printed.as_array().map(Vec::len),
        Some(2),
        "one output per batch"
    );

    let cwasm = dir.path().join("echo.cwasm");
    let out = pyrometer(&[
        "plugin",
        "compile",
        echo,
        "-o",
        cwasm.to_str().expect("utf8"),
    ]);
    assert_success(&out);
    let out = pyrometer(&["plugin", "check", cwasm.to_str().expect("utf8")]);
    assert_success(&out);
}

#[test]
fn cli_bad_inputs_give_one_clear_line() {
    let dir = tempfile::tempdir().expect("tempdir");
    let echo = guest("echo");
    let echo = echo.to_str().expect("utf8 path");
    let file = |name: &str, contents: &str| {
        let path = dir.path().join(name);
        std::fs::write(&path, contents).expect("write");
        path.to_str().expect("utf8").to_owned()
    };
    let bad_json = file("bad.json", "{not json");
    let wrong_shape = file("wrong.json", r#"{"invocations":[{"duration_ms":"slow"}]}"#);
    let not_wasm = file("x.wasm", "text");
    let net = guest("net-client");
    let cwasm = dir.path().join("again.cwasm");
    let cwasm = cwasm.to_str().expect("utf8");
    assert!(
        pyrometer(&["plugin", "compile", echo, "-o", cwasm])
            .status
            .success()
    );
    let cases: [(&[&str], &str); 5] = [
        (
            &["plugin", "run", echo, "--input", &bad_json],
            "is not valid JSON",
        ),
        (
            &["plugin", "run", echo, "--input", &wrong_shape],
            "not a valid batch",
        ),
        (&["plugin", "check", &not_wasm], "not a WebAssembly file"),
        (
            &["plugin", "check", net.to_str().expect("utf8")],
            "does not grant",
        ),
        (
            &["plugin", "compile", cwasm, "-o", "/dev/null"],
            "already precompiled",
        ),
    ];
    for (args, needle) in cases {
        assert_one_line_failure(&pyrometer(args), needle);
    }
}

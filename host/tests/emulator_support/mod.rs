//! Shared harness for the emulator tests: temporary function directories,
//! the local CPython, pyrometer's built-in runtime, the conformance binaries,
//! small extension scripts, and a reader for the Telemetry API fixtures.
//!
//! Everything runs on loopback with real processes. A missing prerequisite
//! fails the test with the command that provides it; nothing is skipped.
#![allow(dead_code, unreachable_pub)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use pyrometer::emulator::EmulatorConfig;

/// A directory removed on drop.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> TempDir {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let nanos = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.subsec_nanos())
            .unwrap_or(0);
        let dir = std::env::temp_dir().join(format!(
            "pyrometer-{tag}-{}-{}-{nanos}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// Writes a file (creating parents) and returns its path.
    pub fn write(&self, name: &str, text: &str) -> PathBuf {
        let path = self.0.join(name);
        if let Some(parent) = path.parent() {
            std::fs::create_dir_all(parent).expect("create parent");
        }
        std::fs::write(&path, text).expect("write file");
        path
    }

    /// Writes an executable file.
    pub fn write_executable(&self, name: &str, text: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = self.write(name, text);
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o755)).expect("chmod");
        path
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// The repository root.
pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("host/ is in the repo")
        .to_path_buf()
}

/// The real path of the local `python3` (not a shim), so scripts can name it in a shebang.
pub fn python() -> PathBuf {
    let output = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .unwrap_or_else(|e| {
            panic!("python3 is needed for the emulator tests ({e}): apt-get install -y python3")
        });
    assert!(output.status.success(), "python3 -c failed");
    PathBuf::from(String::from_utf8_lossy(&output.stdout).trim())
}

/// pyrometer's built-in runtime script.
pub fn builtin_runtime() -> PathBuf {
    let path = repo_root().join("host/python/pyrometer_runtime.py");
    assert!(path.is_file(), "missing {}", path.display());
    path
}

/// A config running `handler` from `task_root` with the built-in runtime.
pub fn builtin_config(task_root: &Path, handler: &str) -> EmulatorConfig {
    let mut config = EmulatorConfig::new(
        [
            python().into_os_string(),
            builtin_runtime().into_os_string(),
        ],
        handler,
        task_root,
    );
    config.timeout = Duration::from_secs(20);
    config.init_timeout = Duration::from_secs(20);
    config
}

/// The directory the workspace's release binaries are built into.
fn release_dir() -> PathBuf {
    // target/release/deps/<test binary>
    let exe = std::env::current_exe().expect("test executable path");
    exe.parent()
        .and_then(Path::parent)
        .expect("target/release")
        .to_path_buf()
}

/// A binary of the `pyrometer-conformance` crate (`tests/conformance`).
pub fn conformance_binary(name: &str) -> PathBuf {
    let path = release_dir().join(name);
    assert!(
        path.is_file(),
        "{} is missing: build it first with `cargo build --release -p pyrometer-conformance` \
         (`cargo test --release --workspace` builds it too)",
        path.display()
    );
    path
}

/// Fails (never skips) when `awslambdaric` is not importable by `python3`.
pub fn require_awslambdaric() {
    let ok = Command::new(python())
        .args(["-c", "import awslambdaric"])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "awslambdaric is not installed for {}: python3 -m pip install awslambdaric",
        python().display()
    );
}

/// A free loopback port (for listeners a child process binds itself).
pub fn free_port() -> u16 {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").expect("bind a free port");
    listener.local_addr().expect("local addr").port()
}

/// A Python extension script: registers for `events`, then runs `body`
/// (Python, with `api(method, path, body)` and `ext_id` in scope).
pub fn python_extension(dir: &TempDir, name: &str, events: &[&str], body: &str) -> PathBuf {
    let events = events
        .iter()
        .map(|e| format!("\"{e}\""))
        .collect::<Vec<_>>()
        .join(", ");
    let script = format!(
        r#"#!{python}
import http.client, json, os, sys, time
host, _, port = os.environ["AWS_LAMBDA_RUNTIME_API"].rpartition(":")
conn = http.client.HTTPConnection(host, int(port))
def api(method, path, body=None, headers=None):
    conn.request(method, path, body=body, headers=headers or {{}})
    r = conn.getresponse()
    return r, r.read()
r, _ = api("POST", "/2020-01-01/extension/register", json.dumps({{"events": [{events}]}}),
           {{"Lambda-Extension-Name": "{name}"}})
ext_id = r.getheader("Lambda-Extension-Identifier")
{body}
"#,
        python = python().display(),
    );
    dir.write_executable(&format!("extensions/{name}"), &script)
}

/// Every fixture batch: (file name, parsed JSON).
pub fn telemetry_fixtures() -> Vec<(String, serde_json::Value)> {
    let dir = repo_root().join("../shared/fixtures/telemetry");
    let mut out = Vec::new();
    let entries =
        std::fs::read_dir(&dir).unwrap_or_else(|e| panic!("cannot read {}: {e}", dir.display()));
    for entry in entries.flatten() {
        let path = entry.path();
        if path.extension().is_some_and(|x| x == "json") {
            let text = std::fs::read_to_string(&path).expect("read fixture");
            let value =
                serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
            out.push((
                path.file_name()
                    .map(|n| n.to_string_lossy().into_owned())
                    .unwrap_or_default(),
                value,
            ));
        }
    }
    out.sort_by(|a, b| a.0.cmp(&b.0));
    assert!(!out.is_empty(), "no fixtures in {}", dir.display());
    out
}

/// Reads the JSON lines a conformance extension wrote.
pub fn json_lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .filter_map(|l| serde_json::from_str(l).ok())
        .collect()
}

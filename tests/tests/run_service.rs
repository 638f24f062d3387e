//! `pyrometer run` end to end: the real binary runs real services — Flask
//! under gunicorn, FastAPI under uvicorn, plain Python scripts — with the
//! embedded probe, under real HTTP load on loopback, and its `/metrics`,
//! summary, signals and exit codes are checked.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::os::unix::process::CommandExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, ExitStatus, Stdio};
use std::time::{Duration, Instant};

use pyrometer::sources::procfs::descendants_with_parents;
use pyrometer_tests::{assert_one_line_failure, guest, pyrometer_bin};
use serde_json::Value;

/// Longest wait for a condition a test is synchronising on.
const PATIENCE: Duration = Duration::from_secs(60);

fn web_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/web")
}

/// Fails (never skips) when a Python package the test drives is missing.
fn require_python(packages: &[&str]) {
    let code = format!("import {}", packages.join(", "));
    let ok = Command::new("python3")
        .args(["-c", &code])
        .status()
        .is_ok_and(|s| s.success());
    assert!(
        ok,
        "python3 with {packages:?} is required: python3 -m pip install {}",
        packages.join(" ")
    );
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// One plain HTTP/1.0 GET: (status, body), or `None` if nothing answers.
fn get(port: u16, path: &str) -> Option<(u16, String)> {
    let mut stream = TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(PATIENCE)).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    let status = response.split_whitespace().nth(1)?.parse().ok()?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, b)| b.to_owned())
        .unwrap_or_default();
    Some((status, body))
}

/// Polls `check` until it returns `Some`, for at most [`PATIENCE`].
fn wait_for<T>(what: &str, mut check: impl FnMut() -> Option<T>) -> T {
    let deadline = Instant::now() + PATIENCE;
    loop {
        if let Some(value) = check() {
            return value;
        }
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// The value of the first series of `metric` in `text` (any labels).
fn metric(text: &str, metric: &str) -> Option<f64> {
    text.lines()
        .filter(|l| {
            l.strip_prefix(metric)
                .is_some_and(|rest| rest.starts_with('{') || rest.starts_with(' '))
        })
        .find_map(|l| l.rsplit(' ').next()?.parse().ok())
}

/// A running `pyrometer run` and where its service and metrics listen.
struct Running {
    child: Child,
    metrics_port: u16,
    json: PathBuf,
    _dir: tempfile::TempDir,
}

impl Running {
    fn start(cwd: &Path, extra: &[&str], command: &[&str]) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        let json = dir.path().join("run.json");
        let metrics_port = free_port();
        let child = Command::new(pyrometer_bin())
            .current_dir(cwd)
            .arg("run")
            .args(["--listen", &format!("127.0.0.1:{metrics_port}")])
            .args(["--interval", "100ms", "--window", "500ms"])
            .arg("--json")
            .arg(&json)
            .args(extra)
            .arg("--")
            .args(command)
            .env("PYROMETER_HTTP_FLUSH_MS", "100")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .expect("start pyrometer run");
        Self {
            child,
            metrics_port,
            json,
            _dir: dir,
        }
    }

    fn metrics(&self) -> Option<String> {
        get(self.metrics_port, "/metrics").map(|(_, body)| body)
    }

    /// Waits until a metrics sample satisfies `ok`, and returns the text.
    fn wait_metric(&self, series: &str, ok: impl Fn(f64) -> bool) -> String {
        wait_for(series, || {
            let text = self.metrics()?;
            metric(&text, series).filter(|v| ok(*v)).map(|_| text)
        })
    }

    fn signal(&self, name: &str) {
        let ok = Command::new("kill")
            .args([&format!("-{name}"), &self.child.id().to_string()])
            .status()
            .is_ok_and(|s| s.success());
        assert!(ok, "kill -{name}");
    }

    /// Waits for pyrometer to exit: its status, stderr and JSON summary.
    fn finish(mut self) -> (ExitStatus, String, Value) {
        let mut stderr = String::new();
        if let Some(mut pipe) = self.child.stderr.take() {
            let _ = pipe.read_to_string(&mut stderr);
        }
        let status = self.child.wait().expect("wait");
        let json = std::fs::read_to_string(&self.json)
            .ok()
            .and_then(|t| serde_json::from_str(&t).ok())
            .unwrap_or(Value::Null);
        (status, stderr, json)
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.child.kill();
    }
}

fn promtool_check(text: &str) {
    let mut child = Command::new("promtool")
        .args(["check", "metrics"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("promtool is required: apt-get install -y prometheus");
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(text.as_bytes())
        .expect("write to promtool");
    let out = child.wait_with_output().expect("promtool");
    assert!(
        out.status.success(),
        "promtool check metrics: {}{}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

fn series_count(text: &str, route: &str, status: u16) -> Option<f64> {
    text.lines()
        .filter(|l| l.starts_with("http_server_request_duration_seconds_count{"))
        .filter(|l| l.contains(&format!("http_route=\"{route}\"")))
        .filter(|l| l.contains(&format!("http_response_status_code=\"{status}\"")))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .reduce(|a, b| a + b)
}

#[test]
fn flask_under_gunicorn_reports_routes_restarts_and_passes_promtool() {
    require_python(&["flask", "gunicorn"]);
    let port = free_port();
    let bind = format!("127.0.0.1:{port}");
    let slow_imports = guest("slow-imports");
    let run = Running::start(
        &web_dir(),
        &["--plugin", slow_imports.to_str().expect("utf-8 path")],
        &["gunicorn", "-w", "2", "-b", &bind, "flask_app:app"],
    );
    // Ready when a worker has loaded the app (300 ms of slow_settings), before any request.
    run.wait_metric("python_startup_duration_seconds", |s| s > 0.3);
    wait_for("the service to answer", || {
        get(port, "/").filter(|(s, _)| *s == 200)
    });
    for id in 0..20 {
        let (status, body) = get(port, &format!("/users/{id}")).expect("user");
        assert_eq!(status, 200);
        assert!(body.contains(&format!("user-{id}")));
    }
    for _ in 0..3 {
        assert_eq!(get(port, "/slow").map(|r| r.0), Some(200));
    }
    assert_eq!(get(port, "/boom").map(|r| r.0), Some(500));
    assert_eq!(get(port, "/no/such/page").map(|r| r.0), Some(404));

    let text = wait_for("every request in /metrics", || {
        let text = run.metrics()?;
        (series_count(&text, "/users/<int:user_id>", 200) == Some(20.0)
            && series_count(&text, "/slow", 200) == Some(3.0)
            && series_count(&text, "/boom", 500) == Some(1.0)
            && series_count(&text, "<unmatched>", 404) == Some(1.0))
        .then_some(text)
    });
    assert!(
        !text.contains("/users/1\""),
        "raw paths never become labels"
    );
    assert!(
        !text.contains("/no/such/page"),
        "unmatched paths never become labels"
    );
    assert!(metric(&text, "python_startup_duration_seconds").is_some_and(|s| s > 0.0));
    assert!(metric(&text, "process_resident_memory_bytes").is_some_and(|b| b > 1e6));
    promtool_check(&text);

    // Kill one worker: gunicorn replaces it, pyrometer counts the restart.
    let master = descendants_with_parents(run.child.id())
        .into_iter()
        .find(|(_, parent)| *parent == run.child.id())
        .map(|(pid, _)| pid)
        .expect("gunicorn's master");
    let worker = descendants_with_parents(master)
        .into_iter()
        .find(|(_, parent)| *parent == master)
        .map(|(pid, _)| pid)
        .expect("a gunicorn worker");
    let killed = Command::new("kill")
        .args(["-KILL", &worker.to_string()])
        .status()
        .is_ok_and(|s| s.success());
    assert!(killed);
    run.wait_metric("pyrometer_worker_restarts_total", |v| v >= 1.0);
    wait_for("the replacement to serve", || {
        get(port, "/").filter(|(s, _)| *s == 200)
    });

    run.signal("TERM");
    let (status, stderr, json) = run.finish();
    assert_eq!(
        status.code(),
        Some(0),
        "gunicorn's own exit status: {stderr}"
    );
    let summary = &json["summary"];
    assert_eq!(summary["ready_reason"], "server", "{json}");
    assert_eq!(summary["slowest_route"], "GET /slow", "{json}");
    assert!(summary["worker_restarts"].as_u64() >= Some(1), "{json}");
    assert!(
        summary["startup_ms"].as_f64().is_some_and(|ms| ms > 300.0),
        "{json}"
    );
    // The worker imports the app (slow_settings: 300 ms) after the fork:
    // the start-up import time counts it, not only the master's imports.
    let slowest_import_ms = summary["slowest_imports"][0][1].as_f64();
    assert!(
        slowest_import_ms > Some(300.0) && summary["import_phase_ms"].as_f64() >= slowest_import_ms,
        "{json}"
    );
    let findings = json["findings"].as_array().expect("findings");
    assert!(
        findings.iter().any(|f| f["rule"] == "slow-import"
            && f["message"]
                .as_str()
                .is_some_and(|m| m.contains("slow_settings"))),
        "the worker's start-up imports reach the plugin: {findings:?}"
    );
    assert!(stderr.contains("GET /slow"), "{stderr}");
}

#[test]
fn a_blocking_call_in_an_async_route_shows_as_loop_lag() {
    require_python(&["fastapi", "uvicorn"]);
    let port = free_port();
    let run = Running::start(
        &web_dir(),
        &[],
        &["uvicorn", "--port", &port.to_string(), "fastapi_app:app"],
    );
    // Ready when uvicorn's start-up is done, before any request.
    run.wait_metric("python_startup_duration_seconds", |s| s > 0.0);
    wait_for("the service to answer", || {
        get(port, "/hello").filter(|(s, _)| *s == 200)
    });
    for id in 0..10 {
        assert_eq!(get(port, &format!("/items/{id}")).map(|r| r.0), Some(200));
    }
    let quiet = run.wait_metric("http_server_active_requests", |_| true);
    let lag_before = metric(&quiet, "python_asyncio_loop_lag_seconds").unwrap_or(0.0);
    assert!(lag_before < 0.3, "no blocking call yet: {lag_before}");
    // Each /block stalls the loop for 500 ms; the monitor, due every 100 ms,
    // sees at least 400 ms of lag. The gauge is the worst lag of the last
    // window, so the stalls go on while it is watched.
    let blocker = std::thread::spawn(move || {
        (0..6)
            .map(|_| get(port, "/block").map(|r| r.0))
            .collect::<Vec<_>>()
    });
    let text = run.wait_metric("python_asyncio_loop_lag_seconds", |lag| lag >= 0.3);
    assert!(
        blocker
            .join()
            .expect("blocker")
            .iter()
            .all(|s| *s == Some(200))
    );
    assert_eq!(
        series_count(&text, "/items/{item_id}", 200),
        Some(10.0),
        "{text}"
    );
    promtool_check(&text);
    run.signal("INT");
    let (status, stderr, json) = run.finish();
    assert_eq!(status.code(), Some(0), "{stderr}");
    assert_eq!(json["summary"]["slowest_route"], "GET /block", "{json}");
    assert_eq!(json["summary"]["ready_reason"], "server", "{json}");
    assert!(
        json["summary"]["loop_lag_max_ms"].as_f64() >= Some(200.0),
        "{json}"
    );
    assert_eq!(json["summary"]["framework"], "fastapi", "{json}");
}

#[test]
fn the_exit_status_passes_through() {
    let dir = tempfile::tempdir().expect("tempdir");
    let run = |code: &str| {
        Command::new(pyrometer_bin())
            .current_dir(dir.path())
            .args([
                "run",
                "--listen",
                "127.0.0.1:0",
                "--",
                "python3",
                "-c",
                code,
            ])
            .output()
            .expect("pyrometer run")
    };
    assert_eq!(run("import sys; sys.exit(7)").status.code(), Some(7));
    assert_eq!(run("pass").status.code(), Some(0));
    let killed = run("import os, signal; os.kill(os.getpid(), signal.SIGKILL)");
    assert_eq!(killed.status.code(), Some(128 + 9));
}

#[test]
fn signals_reach_the_service_once() {
    // The service counts the SIGTERMs it gets, says when it is ready, and
    // exits 3 on the first; a second (from the terminal and from us) would
    // show as 4.
    let script = r#"
import signal, sys
n = 0
def on_term(*_):
    global n
    n += 1
signal.signal(signal.SIGTERM, on_term)
signal.signal(signal.SIGUSR1, lambda *_: print("usr1", flush=True))
print("ready", flush=True)
while n == 0:
    signal.pause()
sys.exit(2 + n)
"#;
    // pyrometer leads its own process group, as in a terminal, and the
    // signals go to the whole group, as a terminal's Ctrl-C does.
    let mut child = Command::new(pyrometer_bin())
        .args(["run", "--no-listen", "--", "python3", "-c", script])
        .process_group(0)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("pyrometer run");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    assert_eq!(lines.next().and_then(Result::ok).as_deref(), Some("ready"));
    let kill = |name: &str| {
        Command::new("kill")
            .args([&format!("-{name}"), "--", &format!("-{}", child.id())])
            .status()
            .is_ok_and(|s| s.success())
    };
    assert!(kill("USR1"));
    assert_eq!(lines.next().and_then(Result::ok).as_deref(), Some("usr1"));
    assert!(kill("TERM"));
    let status = child.wait().expect("wait");
    assert_eq!(status.code(), Some(3));
}

#[test]
fn a_command_that_cannot_start_is_one_clear_error() {
    let out = Command::new(pyrometer_bin())
        .args(["run", "--no-listen", "--", "/no/such/program"])
        .output()
        .expect("pyrometer run");
    assert_one_line_failure(&out, "cannot start /no/such/program");
    let out = Command::new(pyrometer_bin())
        .args([
            "run",
            "--no-listen",
            "--plugin",
            "/no/such.wasm",
            "--",
            "true",
        ])
        .output()
        .expect("pyrometer run");
    assert_one_line_failure(&out, "/no/such.wasm");
}

#[test]
fn the_final_window_lands_in_the_pushgateway() {
    require_python(&["flask"]);
    let gw = pyrometer_tests::gateway::Gateway::start();
    // A Flask app served by werkzeug's test client inside the process: its
    // requests go through the probe's middleware, then the process exits and
    // pyrometer pushes the last window.
    let script = r#"
from flask import Flask
app = Flask(__name__)
@app.route("/orders/<int:order_id>")
def order(order_id):
    return str(order_id)
client = app.test_client()
for i in range(7):
    client.get(f"/orders/{i}").close()
"#;
    let out = Command::new(pyrometer_bin())
        .args([
            "run",
            "--no-listen",
            "--name",
            "orders-svc",
            "--push-gateway",
            &gw.url,
            "--",
            "python3",
            "-c",
            script,
        ])
        .output()
        .expect("pyrometer run");
    pyrometer_tests::assert_success(&out);
    let text = pyrometer_tests::gateway::get(&format!("{}/metrics", gw.url)).expect("gateway");
    let count = text
        .lines()
        .find(|l| {
            l.starts_with("http_server_request_duration_seconds_count{")
                && l.contains(r#"function_name="orders-svc""#)
                && l.contains(r#"http_route="/orders/<int:order_id>""#)
        })
        .and_then(|l| l.rsplit(' ').next()?.parse::<f64>().ok());
    assert_eq!(count, Some(7.0), "{text}");
    assert!(
        text.lines()
            .any(|l| l.starts_with("process_resident_memory_bytes{")
                && l.contains(r#"function_name="orders-svc""#)),
        "{text}"
    );
}

#[test]
fn the_service_does_not_outlive_a_killed_pyrometer() {
    let script = "import os, time\nprint(os.getpid(), flush=True)\ntime.sleep(600)\n";
    let mut child = Command::new(pyrometer_bin())
        .args(["run", "--no-listen", "--", "python3", "-c", script])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("pyrometer run");
    let mut lines = BufReader::new(child.stdout.take().expect("stdout")).lines();
    let service: u32 = lines
        .next()
        .and_then(Result::ok)
        .and_then(|l| l.trim().parse().ok())
        .expect("the service's pid");
    assert!(Path::new(&format!("/proc/{service}")).exists());
    child.kill().expect("SIGKILL pyrometer");
    child.wait().expect("reap pyrometer");
    wait_for("the service to be gone", || {
        let stat = std::fs::read_to_string(format!("/proc/{service}/stat")).ok();
        // Gone, or a zombie waiting for init to reap it.
        stat.is_none_or(|s| {
            s.rsplit(')')
                .next()
                .is_some_and(|r| r.trim_start().starts_with('Z'))
        })
        .then_some(())
    });
}

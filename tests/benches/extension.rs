//! What `pyrometer-extension` costs a function, measured in one run:
//!
//! * **init**: from exec to its first `event/next` (Lambda's init waits for
//!   it), and its peak RSS then, with 0 and 4 precompiled (`.cwasm`) plugins,
//!   against a minimal Extensions API on loopback that answers at once;
//! * **post-runtime overhead** per invocation — `runtimeDone` → the
//!   extension's `next`, i.e. the emulator's `report` duration minus the
//!   runtime's — p50/p99, with a push to a loopback Pushgateway after every
//!   invocation (`PYROMETER_FLUSH=end`);
//! * **end-to-end invocation latency** as the caller sees it, with and
//!   without the extension (ratio), the built-in Python runtime and probe in
//!   both;
//! * the binary's size.
//!
//! Run with `cargo bench -p pyrometer-tests --bench extension` (after
//! `cargo build --release -p pyrometer -p pyrometer-extension`). Set
//! `PYROMETER_EXTENSION_BIN` to measure another build of the extension, e.g.
//! the layer's lean one: `PYROMETER_EXTENSION_BIN=target/dist/pyrometer-extension`
//! (see `lambda-extension/size.sh`). Plugins are always precompiled by this
//! bench's own (compiler) build, as `pyrometer layer build` would.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::mpsc;
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use pyrometer::emulator::{Emulator, EmulatorConfig, ShutdownReason};
use pyrometer::plugins::{PluginSet, artifact};
use pyrometer::python_assets;
use pyrometer_tests::gateway::Gateway;
use pyrometer_tests::{guest, percentile, python3};

const INIT_RUNS: usize = 20;
const WARMUP: usize = 20;
const INVOCATIONS: usize = 300;
const PLUGINS: [&str; 4] = [
    "slow-imports",
    "memory-trend",
    "latency-slo",
    "cold-start-budget",
];

/// An init measurement's label, plugins and extra environment.
type InitSetup<'a> = (&'a str, &'a [PathBuf], &'a [(&'a str, &'a str)]);

fn main() {
    let scratch = std::env::temp_dir().join(format!("pyrometer-ext-bench-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).expect("scratch dir");
    let cwasm = precompile_plugins(&scratch);
    let bin = extension_bin();
    let size = std::fs::metadata(&bin).map_or(0, |m| m.len());
    println!("binary: {:.1} MB ({})", size as f64 / 1e6, bin.display());
    // The configurations alternate, so a change in the machine's speed
    // during the run reaches all of them.
    // With PYROMETER_FAIL_INIT_ON_ERROR=1 the plugins load before the first
    // `next` (a failing plugin must be able to fail the init); by default
    // they load on their own thread, alongside.
    let before_next: &[(&str, &str)] = &[("PYROMETER_FAIL_INIT_ON_ERROR", "1")];
    let configs: [InitSetup; 3] = [
        ("0 plugins", &[], &[]),
        ("4 plugins", &cwasm, &[]),
        ("4 plugins loaded before next", &cwasm, before_next),
    ];
    let mut runs: Vec<(Vec<f64>, Vec<f64>)> = vec![(Vec::new(), Vec::new()); configs.len()];
    for i in 0..INIT_RUNS {
        for (c, (_, plugins, env)) in configs.iter().enumerate() {
            let (ms, rss) = init_once(&scratch, i * configs.len() + c, plugins, env);
            runs[c].0.push(ms);
            runs[c].1.push(rss);
        }
    }
    for ((label, _, _), (ms, rss)) in configs.iter().zip(runs) {
        println!(
            "init, {label}: exec → first next p50 {:.2} ms, p99 {:.2} ms; peak RSS p50 {:.1} MB",
            percentile(ms.clone(), 0.5),
            percentile(ms, 0.99),
            percentile(rss, 0.5) / 1e6,
        );
    }
    let gw = Gateway::start();
    let [with, no_push, without] = invocations(&scratch, [Some(Some(&gw.url)), Some(None), None]);
    println!(
        "post-runtime overhead without exporters: p50 {:.2} ms, p99 {:.2} ms",
        percentile(no_push.post_runtime_ms.clone(), 0.5),
        percentile(no_push.post_runtime_ms, 0.99),
    );
    println!(
        "post-runtime overhead (runtimeDone → next, push per invocation): p50 {:.2} ms, p99 {:.2} ms",
        percentile(with.post_runtime_ms.clone(), 0.5),
        percentile(with.post_runtime_ms, 0.99),
    );
    let (p50_with, p50_without) = (
        percentile(with.latency_ms.clone(), 0.5),
        percentile(without.latency_ms.clone(), 0.5),
    );
    println!(
        "invocation latency p50: {p50_with:.2} ms with the extension, {p50_without:.2} ms without (×{:.2}); p99 {:.2} / {:.2} ms",
        p50_with / p50_without,
        percentile(with.latency_ms, 0.99),
        percentile(without.latency_ms, 0.99),
    );
    let _ = std::fs::remove_dir_all(&scratch);
}

/// The extension to measure: `PYROMETER_EXTENSION_BIN` (relative to the
/// workspace root if relative), else the one built beside this bench.
fn extension_bin() -> PathBuf {
    match std::env::var_os("PYROMETER_EXTENSION_BIN").filter(|v| !v.is_empty()) {
        Some(bin) => {
            let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
            let bin = root.join(bin);
            let bin = std::fs::canonicalize(&bin).unwrap_or(bin);
            assert!(
                bin.exists(),
                "PYROMETER_EXTENSION_BIN: {} is missing",
                bin.display()
            );
            bin
        }
        None => pyrometer_tests::extension_bin(),
    }
}

fn precompile_plugins(dir: &Path) -> Vec<PathBuf> {
    let set = PluginSet::new().expect("plugin engine");
    PLUGINS
        .iter()
        .map(|name| {
            let bytes = artifact::precompile(set.engine(), &guest(name)).expect("precompile");
            let path = dir.join(format!("{name}.cwasm"));
            std::fs::write(&path, bytes).expect("write cwasm");
            path
        })
        .collect()
}

/// Runs the extension against a minimal Extensions API; returns (ms from
/// exec to its first `next`, peak RSS bytes then).
fn init_once(dir: &Path, run: usize, plugins: &[PathBuf], env: &[(&str, &str)]) -> (f64, f64) {
    let api = TcpListener::bind("127.0.0.1:0").expect("bind");
    let addr = api.local_addr().expect("addr");
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        for stream in api.incoming().flatten() {
            let tx = tx.clone();
            std::thread::spawn(move || serve(stream, &tx));
        }
    });
    let plugin_list: Vec<_> = plugins.iter().map(|p| p.display().to_string()).collect();
    let started = Instant::now();
    let mut child = Command::new(extension_bin())
        .env_clear()
        .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
        .env(
            "PYROMETER_PROBE_SOCKET",
            dir.join(format!("init-{run}.sock")),
        )
        .env("PYROMETER_PLUGINS", plugin_list.join(","))
        .envs(env.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("spawn the extension");
    let first_next: Instant = rx
        .recv_timeout(Duration::from_secs(10))
        .expect("first next");
    let rss = peak_rss_bytes(child.id());
    // Releases the long poll with SHUTDOWN.
    let _ = rx;
    let _ = child.wait();
    ((first_next - started).as_secs_f64() * 1e3, rss)
}

fn peak_rss_bytes(pid: u32) -> f64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<f64>().ok())
        })
        .map_or(0.0, |kb| kb * 1024.0)
}

/// Answers register, the telemetry subscription and `next` (with SHUTDOWN,
/// after reporting the moment it arrived and letting the RSS be read).
fn serve(stream: TcpStream, first_next: &mpsc::Sender<Instant>) {
    let mut reader = BufReader::new(stream.try_clone().expect("clone"));
    let mut writer = stream;
    loop {
        let mut request_line = String::new();
        if reader.read_line(&mut request_line).unwrap_or(0) == 0 {
            return;
        }
        let mut length = 0;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 {
                return;
            }
            if line == "\r\n" {
                break;
            }
            if let Some((k, v)) = line.split_once(':')
                && k.eq_ignore_ascii_case("content-length")
            {
                length = v.trim().parse().unwrap_or(0);
            }
        }
        let mut body = vec![0; length];
        let _ = reader.read_exact(&mut body);
        let (headers, body) = if request_line.contains("/register") {
            (
                "Lambda-Extension-Identifier: bench\r\n",
                r#"{"functionName":"bench"}"#.to_owned(),
            )
        } else if request_line.contains("/event/next") {
            let _ = first_next.send(Instant::now());
            // Give the reader of /proc a moment before the process moves on.
            std::thread::sleep(Duration::from_millis(20));
            let deadline_ms = SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64 + 2000);
            (
                "",
                format!(
                    r#"{{"eventType":"SHUTDOWN","shutdownReason":"SPINDOWN","deadlineMs":{deadline_ms}}}"#
                ),
            )
        } else {
            ("", "OK".to_owned())
        };
        let response = format!(
            "HTTP/1.1 200 OK\r\n{headers}Content-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        );
        if writer.write_all(response.as_bytes()).is_err() {
            return;
        }
    }
}

struct Figures {
    post_runtime_ms: Vec<f64>,
    latency_ms: Vec<f64>,
}

/// Invocations of a no-op Python handler in one environment per setup:
/// with the extension (pushing to the gateway if one is given), or without
/// any extension. The environments take turns, one invocation each, so a
/// change in the machine's speed during the run reaches all of them.
fn invocations<const N: usize>(dir: &Path, setups: [Option<Option<&str>>; N]) -> [Figures; N] {
    let mut emulators: Vec<Emulator> = setups
        .iter()
        .enumerate()
        .map(|(n, setup)| start_environment(&dir.join(format!("env-{n}")), *setup))
        .collect();
    let mut figures: [Figures; N] = std::array::from_fn(|_| Figures {
        post_runtime_ms: Vec::new(),
        latency_ms: Vec::new(),
    });
    for i in 0..WARMUP + INVOCATIONS {
        for (emulator, figures) in emulators.iter_mut().zip(figures.iter_mut()) {
            let started = Instant::now();
            let outcome = emulator.invoke("{}").expect("invoke");
            let latency = started.elapsed();
            if i < WARMUP {
                continue;
            }
            figures.latency_ms.push(latency.as_secs_f64() * 1e3);
            if let Some(runtime) = outcome.runtime_duration {
                let post = outcome.duration.saturating_sub(runtime);
                figures.post_runtime_ms.push(post.as_secs_f64() * 1e3);
            }
        }
    }
    for emulator in &mut emulators {
        emulator.shutdown(ShutdownReason::Spindown);
    }
    figures
}

/// One environment running the no-op handler, as [`invocations`] describes.
fn start_environment(dir: &Path, extension: Option<Option<&str>>) -> Emulator {
    let task_root = dir.join("task");
    std::fs::create_dir_all(&task_root).expect("task root");
    std::fs::write(
        task_root.join("app.py"),
        "def handler(event, context):\n    return 1\n",
    )
    .expect("handler");
    let probe = python_assets::install(&dir.join("probe")).expect("probe");
    let python = python3();
    let mut config = EmulatorConfig::new(
        [
            python.into_os_string(),
            probe.runtime_script.into_os_string(),
        ],
        "app.handler",
        &task_root,
    );
    config.exec_wrapper = Some(probe.exec_wrapper);
    let socket = dir.join("invoke.sock");
    config
        .env
        .push(("PYROMETER_PROBE_SOCKET".into(), socket.into_os_string()));
    if let Some(gateway) = extension {
        config.extensions.push(extension_bin());
        if let Some(url) = gateway {
            let var = "PYROMETER_PUSHGATEWAY_URL";
            config.env.push((var.into(), url.into()));
        }
    }
    Emulator::start(config).expect("emulator")
}

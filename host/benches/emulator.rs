//! Emulator overhead per invocation, against baselines measured in the same run.
//!
//! * **baseline**: a Runtime API client doing what a runtime does per
//!   invocation — `GET …/next`, then `POST …/response` — against a loopback
//!   hyper server that answers at once and does nothing else. This is the
//!   floor: two keep-alive HTTP round trips on the same stack the emulator uses.
//! * **emulator, minimal runtime**: the same client, as the runtime process of
//!   a real [`Emulator`], driven by `invoke()`. The difference to the baseline
//!   is what the emulator adds: bookkeeping, telemetry events, memory sampling,
//!   the hand-off between the caller and the runtime's long poll.
//! * **emulator, built-in Python runtime**: a no-op handler behind
//!   `host/python/pyrometer_runtime.py`, what `pyrometer lambda` runs.
//!
//! Both clients are this executable re-run as a child process
//! (`PYROMETER_BENCH_ROLE`), so every case crosses a process boundary.
//! Run: `cargo bench -p pyrometer --bench emulator`.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpStream;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use pyrometer::emulator::{Emulator, EmulatorConfig, Status};

const ROLE: &str = "PYROMETER_BENCH_ROLE";
const WARMUP: usize = 200;
const RUST_ITERATIONS: usize = 3000;
const PYTHON_ITERATIONS: usize = 1000;

fn main() {
    match std::env::var(ROLE).as_deref() {
        Ok("runtime") => runtime_loop(
            &std::env::var("AWS_LAMBDA_RUNTIME_API").unwrap_or_default(),
            usize::MAX,
        ),
        Ok("baseline") => baseline_client(),
        _ => run(),
    }
}

/// A minimal Runtime API client over one keep-alive connection: `next`, then
/// `response` with `{}`, `iterations` times (or until the server goes away).
fn runtime_loop(api: &str, iterations: usize) {
    let Ok(stream) = TcpStream::connect(api) else {
        return;
    };
    let _ = stream.set_nodelay(true);
    let mut reader = BufReader::new(stream.try_clone().unwrap_or_else(|_| std::process::exit(1)));
    let mut writer = stream;
    for _ in 0..iterations {
        let next = "GET /2018-06-01/runtime/invocation/next HTTP/1.1\r\nHost: rt\r\n\r\n";
        if writer.write_all(next.as_bytes()).is_err() {
            return;
        }
        let Some((status, id)) = read_response(&mut reader) else {
            return;
        };
        if status != 200 {
            return;
        }
        let post = format!(
            "POST /2018-06-01/runtime/invocation/{id}/response HTTP/1.1\r\nHost: rt\r\nContent-Type: application/json\r\nContent-Length: 2\r\n\r\n{{}}"
        );
        if writer.write_all(post.as_bytes()).is_err() || read_response(&mut reader).is_none() {
            return;
        }
    }
}

/// Reads one HTTP response: (status, request id header).
fn read_response(reader: &mut impl BufRead) -> Option<(u16, String)> {
    let mut line = String::new();
    reader.read_line(&mut line).ok()?;
    let status = line.split_whitespace().nth(1)?.parse().ok()?;
    let mut length = 0usize;
    let mut id = String::new();
    loop {
        line.clear();
        reader.read_line(&mut line).ok()?;
        let trimmed = line.trim_end();
        if trimmed.is_empty() {
            break;
        }
        let (name, value) = trimmed.split_once(':')?;
        let value = value.trim();
        if name.eq_ignore_ascii_case("content-length") {
            length = value.parse().ok()?;
        } else if name.eq_ignore_ascii_case("lambda-runtime-aws-request-id") {
            id = value.to_string();
        }
    }
    let mut body = vec![0; length];
    std::io::Read::read_exact(reader, &mut body).ok()?;
    Some((status, id))
}

/// The baseline client: warm up, then time the loop; prints nanoseconds.
fn baseline_client() {
    let api = std::env::var("AWS_LAMBDA_RUNTIME_API").unwrap_or_default();
    let iterations: usize = std::env::var("ITERATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    runtime_loop(&api, WARMUP);
    let started = Instant::now();
    runtime_loop(&api, iterations);
    println!("{}", started.elapsed().as_nanos());
}

/// A loopback server that answers `next` and `response` at once.
fn baseline_server() -> (tokio::runtime::Runtime, std::net::SocketAddr) {
    use http_body_util::Full;
    use hyper::body::Bytes;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap_or_else(|e| panic!("tokio: {e}"));
    let listener = runtime
        .block_on(tokio::net::TcpListener::bind("127.0.0.1:0"))
        .unwrap_or_else(|e| panic!("bind: {e}"));
    let addr = listener
        .local_addr()
        .unwrap_or_else(|e| panic!("addr: {e}"));
    runtime.spawn(async move {
        while let Ok((stream, _)) = listener.accept().await {
            let _ = stream.set_nodelay(true);
            tokio::spawn(async move {
                let service = hyper::service::service_fn(
                    |req: hyper::Request<hyper::body::Incoming>| async move {
                        let mut response =
                            hyper::Response::new(Full::new(Bytes::from_static(b"{}")));
                        if req.method() == hyper::Method::GET {
                            response.headers_mut().insert(
                                "Lambda-Runtime-Aws-Request-Id",
                                hyper::header::HeaderValue::from_static("id"),
                            );
                        } else {
                            *response.status_mut() = hyper::StatusCode::ACCEPTED;
                        }
                        Ok::<_, std::convert::Infallible>(response)
                    },
                );
                let _ = hyper::server::conn::http1::Builder::new()
                    .serve_connection(hyper_util::rt::TokioIo::new(stream), service)
                    .await;
            });
        }
    });
    (runtime, addr)
}

struct Measured {
    per_op: Duration,
}

impl Measured {
    fn per_second(&self) -> f64 {
        1.0 / self.per_op.as_secs_f64()
    }
}

fn measure_baseline(iterations: usize) -> Measured {
    let (_server, addr) = baseline_server();
    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("current exe: {e}"));
    let output = Command::new(exe)
        .env(ROLE, "baseline")
        .env("AWS_LAMBDA_RUNTIME_API", addr.to_string())
        .env("ITERATIONS", iterations.to_string())
        .stderr(Stdio::inherit())
        .output()
        .unwrap_or_else(|e| panic!("baseline client: {e}"));
    let nanos: u64 = String::from_utf8_lossy(&output.stdout)
        .trim()
        .parse()
        .unwrap_or(0);
    assert!(nanos > 0, "the baseline client failed");
    Measured {
        per_op: Duration::from_nanos(nanos) / iterations as u32,
    }
}

fn measure_emulator(config: EmulatorConfig, iterations: usize) -> Measured {
    let mut emulator = Emulator::start(config).unwrap_or_else(|e| panic!("emulator: {e}"));
    for _ in 0..WARMUP {
        let outcome = emulator
            .invoke("{}")
            .unwrap_or_else(|e| panic!("invoke: {e}"));
        assert_eq!(outcome.status, Status::Success, "{:?}", outcome.error);
    }
    // Keep the retained log from growing across the measured loop.
    emulator.drain_events();
    let started = Instant::now();
    for _ in 0..iterations {
        let outcome = emulator
            .invoke("{}")
            .unwrap_or_else(|e| panic!("invoke: {e}"));
        assert_eq!(outcome.status, Status::Success, "{:?}", outcome.error);
    }
    let elapsed = started.elapsed();
    Measured {
        per_op: elapsed / iterations as u32,
    }
}

fn python() -> PathBuf {
    let output = Command::new("python3")
        .args(["-c", "import sys; print(sys.executable)"])
        .output()
        .unwrap_or_else(|e| panic!("python3: {e}"));
    PathBuf::from(String::from_utf8_lossy(&output.stdout).trim())
}

fn run() {
    let scratch =
        std::env::temp_dir().join(format!("pyrometer-bench-emulator-{}", std::process::id()));
    std::fs::create_dir_all(&scratch).unwrap_or_else(|e| panic!("scratch dir: {e}"));
    std::fs::write(
        scratch.join("noop.py"),
        "def handler(event, context):\n    return None\n",
    )
    .unwrap_or_else(|e| panic!("write handler: {e}"));

    let baseline = measure_baseline(RUST_ITERATIONS);

    let exe = std::env::current_exe().unwrap_or_else(|e| panic!("current exe: {e}"));
    let mut minimal = EmulatorConfig::new([exe], "noop.handler", &scratch);
    minimal.env.push((ROLE.into(), "runtime".into()));
    let with_minimal = measure_emulator(minimal, RUST_ITERATIONS);

    let runtime_script =
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("python/pyrometer_runtime.py");
    let builtin = EmulatorConfig::new([python(), runtime_script], "noop.handler", &scratch);
    let with_python = measure_emulator(builtin, PYTHON_ITERATIONS);
    let _ = std::fs::remove_dir_all(&scratch);

    let us = |d: Duration| d.as_secs_f64() * 1e6;
    println!(
        "emulator overhead per invocation (no-op handler, loopback, {} + {} iterations)",
        RUST_ITERATIONS, PYTHON_ITERATIONS
    );
    println!(
        "  baseline: next + response round trips, bare hyper server  {:>8.1} µs/invocation  {:>8.0} invocations/s",
        us(baseline.per_op),
        baseline.per_second()
    );
    println!(
        "  emulator: minimal runtime process                          {:>8.1} µs/invocation  {:>8.0} invocations/s",
        us(with_minimal.per_op),
        with_minimal.per_second()
    );
    println!(
        "  emulator: built-in Python runtime                          {:>8.1} µs/invocation  {:>8.0} invocations/s",
        us(with_python.per_op),
        with_python.per_second()
    );
    println!(
        "  latency added by the emulator: {:.1} µs/invocation ({:.2}x the baseline); Python runtime: {:.2}x the baseline",
        us(with_minimal.per_op.saturating_sub(baseline.per_op)),
        with_minimal.per_op.as_secs_f64() / baseline.per_op.as_secs_f64(),
        with_python.per_op.as_secs_f64() / baseline.per_op.as_secs_f64(),
    );
}

//! Cost of `pyrometer run` on a web service: throughput and p99 latency of
//! the bundled Flask app's hello-world route (`examples/web/flask_app.py`,
//! gunicorn, one sync worker) under the same closed-loop load, started
//! directly (the baseline) and under `pyrometer run` with the probe and its
//! HTTP middleware, alternating so both see the same machine. Prints the
//! medians, their ratio and the median of each trial's ratio to the baseline
//! trial before it (target: at most 3 % fewer requests per second).
//!
//! Run with `cargo bench -p pyrometer-tests --bench service` (after
//! `cargo build --release -p pyrometer`; needs `python3 -m pip install flask gunicorn`).
//! `PYROMETER_BENCH_SECONDS` sets the length of one trial (default 4).

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use pyrometer_tests::pyrometer_bin;

/// Alternating trials per mode.
const TRIALS: usize = 9;
/// Client threads (closed loop: each sends its next request when the last is answered).
const CLIENTS: usize = 4;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn get(port: u16) -> bool {
    let Ok(mut stream) = TcpStream::connect(("127.0.0.1", port)) else {
        return false;
    };
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    if stream
        .write_all(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
        .is_err()
    {
        return false;
    }
    let mut response = Vec::with_capacity(256);
    stream.read_to_end(&mut response).is_ok()
        && (response.starts_with(b"HTTP/1.1 200") || response.starts_with(b"HTTP/1.0 200"))
}

fn start(with_pyrometer: bool, port: u16) -> Child {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/web");
    let bind = format!("127.0.0.1:{port}");
    let server = ["gunicorn", "-w", "1", "-b", &bind, "flask_app:app"];
    let mut command = if with_pyrometer {
        let mut c = Command::new(pyrometer_bin());
        c.args(["run", "--listen", "127.0.0.1:0", "--"])
            .args(server);
        c
    } else {
        let mut c = Command::new(server[0]);
        c.args(&server[1..]);
        c
    };
    let child = command
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the service (python3 -m pip install flask gunicorn)");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !get(port) {
        assert!(Instant::now() < deadline, "the service never answered");
        std::thread::sleep(Duration::from_millis(50));
    }
    child
}

/// Requests per second and p99 latency (ms) of `seconds` of closed-loop load.
fn load(port: u16, seconds: f64) -> (f64, f64) {
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut latencies = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    assert!(get(port), "a request failed");
                    latencies.push(t.elapsed().as_secs_f64() * 1e3);
                }
                latencies
            })
        })
        .collect();
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(seconds));
    stop.store(true, Ordering::Relaxed);
    let mut all: Vec<f64> = clients
        .into_iter()
        .flat_map(|c| c.join().expect("client"))
        .collect();
    let elapsed = started.elapsed().as_secs_f64();
    all.sort_by(f64::total_cmp);
    let p99 = all[(all.len() * 99 / 100).min(all.len() - 1)];
    (all.len() as f64 / elapsed, p99)
}

fn stop(mut child: Child) {
    let _ = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status();
    let _ = child.wait();
}

fn median(mut v: Vec<f64>) -> f64 {
    v.sort_by(f64::total_cmp);
    v[v.len() / 2]
}

fn main() {
    let seconds: f64 = std::env::var("PYROMETER_BENCH_SECONDS")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(4.0);
    let mut results = [(Vec::new(), Vec::new()), (Vec::new(), Vec::new())];
    for trial in 0..TRIALS {
        for (mode, with_pyrometer) in [false, true].into_iter().enumerate() {
            let port = free_port();
            let child = start(with_pyrometer, port);
            // A short warm-up, so both modes are measured past start-up.
            load(port, 0.5);
            let (rps, p99) = load(port, seconds);
            stop(child);
            eprintln!(
                "trial {trial} {}: {rps:.0} req/s, p99 {p99:.2} ms",
                if with_pyrometer {
                    "pyrometer run"
                } else {
                    "direct"
                }
            );
            results[mode].0.push(rps);
            results[mode].1.push(p99);
        }
    }
    let [(base_rps, base_p99), (run_rps, run_p99)] = results;
    // Each trial against the baseline trial just before it: robust to the
    // machine's speed drifting during the run (a shared VM's does).
    let paired = median(
        run_rps
            .iter()
            .zip(&base_rps)
            .map(|(run, base)| run / base)
            .collect(),
    );
    let (base_rps, base_p99) = (median(base_rps), median(base_p99));
    let (run_rps, run_p99) = (median(run_rps), median(run_p99));
    println!(
        "hello-world route, gunicorn 1 sync worker, {CLIENTS} closed-loop clients, {TRIALS} alternating trials of {seconds} s (medians)"
    );
    println!("  direct (baseline)  {base_rps:>8.0} req/s  p99 {base_p99:>6.2} ms  1.000x");
    println!(
        "  pyrometer run      {run_rps:>8.0} req/s  p99 {run_p99:>6.2} ms  {:.3}x throughput, {:.3}x p99",
        run_rps / base_rps,
        run_p99 / base_p99
    );
    println!(
        "  throughput loss    {:.1} % of medians, {:.1} % median of paired trials (target <= 3 %)",
        (1.0 - run_rps / base_rps) * 100.0,
        (1.0 - paired) * 100.0
    );
}

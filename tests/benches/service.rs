//! Cost of `pyrometer run` on a web service: throughput and p99 latency of
//! the bundled Flask app's hello-world route (`examples/web/flask_app.py`,
//! gunicorn, one sync worker) under the same closed-loop load, started
//! directly (the baseline) and under `pyrometer run` with the probe measuring
//! every request -- under gunicorn with gunicorn's own request hooks, see
//! `host/python/pyrometer_probe/gunicorn_requests.py` (target: at most 3 %
//! fewer requests per second).
//!
//! Two sources of noise are bigger than the effect measured, so the design
//! cancels both:
//!
//! * time: on a shared VM one burst's requests per second swing by tens of
//!   per cent with the neighbours' load, so seconds-long trials taken one
//!   after the other measure that swing more than the sidecar. The services
//!   run side by side and take the load in turns: short bursts, in an order
//!   that gives every service every position, so all see the same machine;
//! * the process: CPython's string hashing is seeded per process, and the
//!   seed moves how often dictionary lookups in Flask's and Werkzeug's hot
//!   paths collide -- instruction counts of the same request differ by up to
//!   5 % between seeds (cachegrind), with or without the probe. One pair of
//!   processes would bake one draw of that into the result, so the bench
//!   runs several groups of services ("pairs"), each with the same
//!   `PYTHONHASHSEED` (1, 2, ...) on every service, and averages them. Two
//!   processes of the same setup and seed still differ by several per cent
//!   (address layout): the processes vary more than the moments, so the
//!   default is many groups with one cycle of burst orders each.
//!
//! What the request path executes, which this machine's noise does not move,
//! is counted by `host/python/bench/bench_middleware.py` (callgrind).
//!
//! A third service in each pair is a control: `pyrometer run` with
//! `PYROMETER_PROBE=off` -- the sidecar, the environment and the probe's
//! modules, but nothing measured per request. Its "loss" is what this bench
//! reads for no work per request, so it shows how far the machine's noise
//! reaches. `PYROMETER_BENCH_CONTROL=http-off` makes it `pyrometer run` with
//! `PYROMETER_HTTP=off` instead -- the probe on, the web framework left
//! unhooked -- which splits the cost between the request measurement and the
//! rest; `PYROMETER_BENCH_CONTROL=middleware` makes it `pyrometer run` with
//! `PYROMETER_HTTP=middleware` -- requests measured by the WSGI middleware,
//! as on servers other than gunicorn -- which compares the two ways.
//!
//! Prints each pair's figures, each mode's totals, their ratios to the
//! baseline, the mean of the pairs' ratios with its 95 % interval and the
//! median of the per-round ratios.
//!
//! The services are pinned to CPU 1 and the load generator to CPU 0.
//!
//! It also reports what the sidecar adds in CPU: the time the whole process
//! tree spends per request (every thread of every process under the launched
//! command -- in `pyrometer run` mode including pyrometer itself), from the
//! kernel's `/proc/PID/task/TID/schedstat` run-time counters over each burst.
//! With the worker CPU-bound, throughput falls by the fraction CPU per
//! request grows. The part of it the kernel ran for the tree ("kernel": the
//! network stack, waking the clients) is split off by the threads' user and
//! system clock ticks (`/proc/PID/task/TID/stat`), whose ratio over all
//! bursts is steady even though each burst holds only ten ticks.
//!
//! `PYROMETER_BENCH_SERVER=uvicorn` loads the FastAPI app's `/hello`
//! (`examples/web/fastapi_app.py`) under uvicorn instead (one process; the
//! ASGI middleware measures, and the event loop's lag is monitored).
//! `PYROMETER_BENCH_PATH` loads another route of the app: `/users` (Flask)
//! or `/items` (FastAPI) answer a JSON list of 100 records, a route with
//! some work to do next to hello-world's nothing.
//!
//! The services run on the Python the `gunicorn` (or `uvicorn`) on the PATH
//! runs, which the bench prints last; under pyenv `PYENV_VERSION=3.12.1`
//! picks another installed version (with the packages installed into it).
//!
//! Run with `cargo bench -p pyrometer-tests --bench service` (after
//! `cargo build --release -p pyrometer`; needs `python3 -m pip install flask gunicorn`,
//! or `fastapi uvicorn` for uvicorn).
//! `PYROMETER_BENCH_CONTROL` (`probe-off`, `http-off` or `middleware`, see above) picks the control,
//! `PYROMETER_BENCH_PAIRS` (default 16) sets the number of service pairs,
//! `PYROMETER_BENCH_ROUNDS` (default 30, per pair: five cycles of the burst
//! orders) and `PYROMETER_BENCH_BURST_SECONDS` (default 0.1) the number and
//! length of the bursts.

use std::io::{Read, Write};
use std::net::{TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use pyrometer::sources::procfs::{descendants, parse_stat_cpu};
use pyrometer_tests::{percentile, pyrometer_bin};

/// The CPU the services (and, in `run` mode, pyrometer) are pinned to; the
/// load generator takes the other one. Pinned, the worker shares its CPU
/// only with what its mode brings along, and the scheduler's placement stops
/// adding noise.
const SERVER_CPU: &str = "1";
const CLIENT_CPU: &str = "0";
/// Client threads (closed loop: each sends its next request when the last is
/// answered). Enough that a connection is always waiting when the worker
/// finishes one: the worker's CPU, not the clients', sets the pace, so
/// throughput follows its cost per request.
const CLIENTS: usize = 8;

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

/// Sends one request for `path` and reads the whole answer: an error saying
/// what went wrong unless it is a 200.
fn get(port: u16, path: &str) -> Result<(), String> {
    let mut stream =
        TcpStream::connect(("127.0.0.1", port)).map_err(|e| format!("connect: {e}"))?;
    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
    let request = format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n");
    stream
        .write_all(request.as_bytes())
        .map_err(|e| format!("send: {e}"))?;
    let mut response = Vec::with_capacity(256);
    stream
        .read_to_end(&mut response)
        .map_err(|e| format!("read: {e}"))?;
    if response.starts_with(b"HTTP/1.1 200") || response.starts_with(b"HTTP/1.0 200") {
        return Ok(());
    }
    let head = String::from_utf8_lossy(&response);
    Err(format!(
        "answer {:?}",
        head.lines().next().unwrap_or("(empty)")
    ))
}

/// How a service is started.
#[derive(Clone, Copy)]
enum Mode {
    /// gunicorn directly: the baseline.
    Direct,
    /// Under `pyrometer run`: what the target is about.
    Run,
    /// Under `pyrometer run` with one part of the probe switched off or
    /// changed by an environment variable (see [`control`]).
    Control {
        variable: &'static str,
        value: &'static str,
        label: &'static str,
        /// What its figures show, for the report.
        shows: &'static str,
    },
}

impl Mode {
    /// The mode's name in the figures.
    fn label(self) -> &'static str {
        match self {
            Mode::Direct => "direct (baseline)",
            Mode::Run => "pyrometer run",
            Mode::Control { label, .. } => label,
        }
    }
}

/// The control mode `PYROMETER_BENCH_CONTROL` asks for: `probe-off` (the
/// default: the probe's modules load, nothing is measured; a control for
/// what this bench reads for no work per request), `http-off` (the probe
/// on, web frameworks left unhooked: what the rest of the probe costs) or
/// `middleware` (requests measured by the WSGI middleware instead of
/// gunicorn's hooks: what the other way costs).
fn control() -> Mode {
    match std::env::var("PYROMETER_BENCH_CONTROL").as_deref() {
        Err(_) | Ok("probe-off") => Mode::Control {
            variable: "PYROMETER_PROBE",
            value: "off",
            label: "run, probe off",
            shows: "what this bench reads for no work per request",
        },
        Ok("http-off") => Mode::Control {
            variable: "PYROMETER_HTTP",
            value: "off",
            label: "run, HTTP off",
            shows: "what the probe costs without measuring requests",
        },
        Ok("middleware") => Mode::Control {
            variable: "PYROMETER_HTTP",
            value: "middleware",
            label: "run, middleware",
            shows: "what measuring with the WSGI middleware costs",
        },
        Ok(other) => {
            panic!("PYROMETER_BENCH_CONTROL={other}: expected probe-off, http-off or middleware")
        }
    }
}

/// The service under load, as `PYROMETER_BENCH_SERVER` picks it.
#[derive(Clone, Copy)]
enum Server {
    /// `gunicorn` (the default): the Flask app, one sync worker, measured
    /// with gunicorn's request hooks.
    Gunicorn,
    /// `uvicorn`: the FastAPI app (`examples/web/fastapi_app.py`), one
    /// process, measured by the ASGI middleware, its event loop's lag
    /// monitored.
    Uvicorn,
}

impl Server {
    /// From `PYROMETER_BENCH_SERVER`; panics on an unknown name.
    fn from_env() -> Server {
        match std::env::var("PYROMETER_BENCH_SERVER").as_deref() {
            Err(_) | Ok("gunicorn") => Server::Gunicorn,
            Ok("uvicorn") => Server::Uvicorn,
            Ok(other) => panic!("PYROMETER_BENCH_SERVER={other}: expected gunicorn or uvicorn"),
        }
    }

    /// The service in the figures.
    fn describe(self) -> &'static str {
        match self {
            Server::Gunicorn => "Flask app, gunicorn 1 sync worker",
            Server::Uvicorn => "FastAPI app, uvicorn 1 process",
        }
    }

    /// The path loaded: `PYROMETER_BENCH_PATH`, else the hello-world
    /// route's (asked once: it lives as long as the bench, whose load
    /// threads borrow it).
    fn path(self) -> &'static str {
        if let Ok(path) = std::env::var("PYROMETER_BENCH_PATH") {
            assert!(
                path.starts_with('/'),
                "PYROMETER_BENCH_PATH={path:?}: expected a path such as /users"
            );
            return path.leak();
        }
        match self {
            Server::Gunicorn => "/",
            Server::Uvicorn => "/hello",
        }
    }

    /// The command serving on `port`, run in `examples/web`.
    fn command(self, port: u16) -> Vec<String> {
        let line = match self {
            Server::Gunicorn => format!("gunicorn -w 1 -b 127.0.0.1:{port} flask_app:app"),
            Server::Uvicorn => format!("uvicorn --host 127.0.0.1 --port {port} fastapi_app:app"),
        };
        line.split_whitespace().map(String::from).collect()
    }

    /// What to install should it not start.
    fn needs(self) -> &'static str {
        match self {
            Server::Gunicorn => "python3 -m pip install flask gunicorn",
            Server::Uvicorn => "python3 -m pip install fastapi uvicorn",
        }
    }
}

/// Starts `server` in `mode` on `port` with `PYTHONHASHSEED=seed`, and
/// waits until `path` answers.
fn start(server: Server, path: &'static str, mode: Mode, port: u16, seed: &str) -> Service {
    let dir = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../examples/web");
    // taskset execs the command, so the child's pid is the service's.
    let mut command = Command::new("taskset");
    command.args(["-c", SERVER_CPU]);
    if !matches!(mode, Mode::Direct) {
        command
            .arg(pyrometer_bin())
            .args(["run", "--listen", "127.0.0.1:0", "--"]);
    }
    // The probe's switches from the caller's environment would change what
    // the modes measure: only the control sets one.
    command
        .env_remove("PYROMETER_PROBE")
        .env_remove("PYROMETER_HTTP");
    if let Mode::Control {
        variable, value, ..
    } = mode
    {
        command.env(variable, value);
    }
    command.args(server.command(port));
    let child = command
        .env("PYTHONHASHSEED", seed)
        .current_dir(dir)
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "start the service: {e} (apt-get install util-linux; {})",
                server.needs()
            )
        });
    // Stopped by its drop should it never answer.
    let service = Service { port, child };
    let deadline = Instant::now() + Duration::from_secs(60);
    while let Err(e) = get(port, path) {
        assert!(
            Instant::now() < deadline,
            "the service never answered GET {path} with a 200 (last: {e}; PYROMETER_BENCH_PATH must be a route of the app)"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    service
}

/// CPU a set of threads ran for, as two counters that answer different
/// questions.
#[derive(Clone, Copy, Default)]
struct Cpu {
    /// Nanoseconds run (schedstat's first field): exact, the figure CPU per
    /// request is made of.
    run_ns: u64,
    /// Clock ticks charged in user mode (`stat`'s utime)...
    user_ticks: u64,
    /// ...and in the kernel (stime). Sampled at the tick, so only their
    /// ratio over many bursts is used: it splits `run_ns` between the
    /// service's own code and the kernel working for it (the network stack,
    /// waking the clients).
    system_ticks: u64,
}

impl Cpu {
    /// The two counted together (threads of a process, processes of a tree).
    fn add(self, other: Cpu) -> Cpu {
        Cpu {
            run_ns: self.run_ns + other.run_ns,
            user_ticks: self.user_ticks + other.user_ticks,
            system_ticks: self.system_ticks + other.system_ticks,
        }
    }

    /// What ran between the reading `before` and this one.
    fn since(self, before: Cpu) -> Cpu {
        Cpu {
            run_ns: self.run_ns.saturating_sub(before.run_ns),
            user_ticks: self.user_ticks.saturating_sub(before.user_ticks),
            system_ticks: self.system_ticks.saturating_sub(before.system_ticks),
        }
    }
}

/// One thread's [`Cpu`] from its `/proc/PID/task/TID` directory (zero if it is gone).
fn thread_cpu(task: &std::path::Path) -> Cpu {
    let run_ns = std::fs::read_to_string(task.join("schedstat"))
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse().ok())
        .unwrap_or(0);
    let (user_ticks, system_ticks) = std::fs::read_to_string(task.join("stat"))
        .ok()
        .and_then(|text| parse_stat_cpu(&text))
        .unwrap_or((0, 0));
    Cpu {
        run_ns,
        user_ticks,
        system_ticks,
    }
}

/// CPU every thread of `pid` has run for.
fn process_cpu(pid: u32) -> Cpu {
    let Ok(tasks) = std::fs::read_dir(format!("/proc/{pid}/task")) else {
        return Cpu::default();
    };
    tasks
        .flatten()
        .map(|task| thread_cpu(&task.path()))
        .fold(Cpu::default(), Cpu::add)
}

/// CPU of `root` and of its whole process tree.
fn tree_cpu(root: u32) -> (Cpu, Cpu) {
    let own = process_cpu(root);
    let tree = descendants(root)
        .into_iter()
        .map(process_cpu)
        .fold(own, Cpu::add);
    (own, tree)
}

/// One measured window of load.
struct Window {
    requests: usize,
    seconds: f64,
    /// Every request's latency, ms.
    latencies_ms: Vec<f64>,
    /// CPU the whole tree ran for.
    tree_cpu: Cpu,
    /// CPU the launched process itself ran for (pyrometer, in `run` mode).
    root_cpu: Cpu,
}

/// Requests, latencies and the CPU the service launched as `root` used
/// over `seconds` of closed-loop load.
fn measure(root: u32, port: u16, path: &'static str, seconds: f64) -> Window {
    let (own_before, tree_before) = tree_cpu(root);
    let (latencies_ms, elapsed) = load(port, path, seconds);
    let (own_after, tree_after) = tree_cpu(root);
    Window {
        requests: latencies_ms.len(),
        seconds: elapsed,
        latencies_ms,
        tree_cpu: tree_after.since(tree_before),
        root_cpu: own_after.since(own_before),
    }
}

/// Every request's latency (ms) and the seconds elapsed, of `seconds` of closed-loop load on `path`.
fn load(port: u16, path: &'static str, seconds: f64) -> (Vec<f64>, f64) {
    let stop = Arc::new(AtomicBool::new(false));
    let clients: Vec<_> = (0..CLIENTS)
        .map(|_| {
            let stop = Arc::clone(&stop);
            std::thread::spawn(move || {
                let mut latencies = Vec::new();
                while !stop.load(Ordering::Relaxed) {
                    let t = Instant::now();
                    if let Err(e) = get(port, path) {
                        panic!("GET {path} from the service on port {port} failed: {e}");
                    }
                    latencies.push(t.elapsed().as_secs_f64() * 1e3);
                }
                latencies
            })
        })
        .collect();
    let started = Instant::now();
    std::thread::sleep(Duration::from_secs_f64(seconds));
    stop.store(true, Ordering::Relaxed);
    let all: Vec<f64> = clients
        .into_iter()
        .flat_map(|c| c.join().expect("client"))
        .collect();
    (all, started.elapsed().as_secs_f64())
}

/// p99 latency (ms) over every request of `windows`.
fn p99(windows: &[Window]) -> f64 {
    let all = windows
        .iter()
        .flat_map(|w| w.latencies_ms.iter().copied())
        .collect();
    percentile(all, 0.99)
}

/// (steal, total) jiffies of all CPUs from `/proc/stat`: the share of time
/// the hypervisor gave to other guests, printed with the figures because on
/// a shared VM it is the noise that moves them most.
fn cpu_jiffies() -> (u64, u64) {
    let stat = std::fs::read_to_string("/proc/stat").unwrap_or_default();
    let fields: Vec<u64> = stat
        .lines()
        .next()
        .unwrap_or_default()
        .split_whitespace()
        .skip(1)
        .filter_map(|f| f.parse().ok())
        .collect();
    (fields.get(7).copied().unwrap_or(0), fields.iter().sum())
}

/// Percentage of time stolen between two [`cpu_jiffies`] readings.
fn steal_percent(before: (u64, u64), after: (u64, u64)) -> f64 {
    let total = after.1.saturating_sub(before.1).max(1);
    after.0.saturating_sub(before.0) as f64 * 100.0 / total as f64
}

/// A running service: stopped (SIGTERM, then waited for) when dropped, so
/// that a bench that fails midway leaves none behind.
struct Service {
    port: u16,
    child: Child,
}

impl Drop for Service {
    fn drop(&mut self) {
        let _ = Command::new("kill")
            .args(["-TERM", &self.child.id().to_string()])
            .status();
        let _ = self.child.wait();
    }
}

fn main() {
    let setting = |name: &str, default: f64| -> f64 {
        std::env::var(name)
            .ok()
            .and_then(|s| s.parse().ok())
            .unwrap_or(default)
    };
    let burst = setting("PYROMETER_BENCH_BURST_SECONDS", 0.1);
    let rounds = setting("PYROMETER_BENCH_ROUNDS", 30.0) as usize;
    let pairs = setting("PYROMETER_BENCH_PAIRS", 16.0) as usize;
    let pinned = Command::new("taskset")
        .args([
            "-a",
            "-p",
            "-c",
            CLIENT_CPU,
            &std::process::id().to_string(),
        ])
        .stdout(Stdio::null())
        .status()
        .expect("taskset (apt-get install util-linux)");
    assert!(pinned.success(), "taskset could not pin the load generator");
    let server = Server::from_env();
    let path = server.path();
    // In the order their figures are printed.
    let modes = [Mode::Direct, Mode::Run, control()];
    let mut windows: [Vec<Window>; 3] = Default::default();
    // Per mode, each pair's throughput against the pair's baseline.
    let mut pair_ratios: [Vec<f64>; 3] = Default::default();
    let run_started = cpu_jiffies();
    let mut interpreter = String::new();
    for pair in 0..pairs {
        let pair_started = cpu_jiffies();
        let seed = (pair + 1).to_string();
        let services: Vec<Service> = modes
            .iter()
            .map(|mode| start(server, path, *mode, free_port(), &seed))
            .collect();
        if interpreter.is_empty() {
            interpreter = interpreter_of(services[0].child.id());
        }
        // Warm-up, so all are measured past start-up.
        for service in &services {
            load(service.port, path, 1.0);
        }
        let mut pair_windows: [Vec<Window>; 3] = Default::default();
        for round in 0..rounds {
            // Every mode takes every position, forwards and backwards, once
            // per six rounds: a drift in the machine's speed cancels out, and
            // no mode is always (or never) the one that runs twice in a row
            // where one round ends and the next begins.
            let order = round_order(round);
            for mode in order {
                let service = &services[mode];
                pair_windows[mode].push(measure(service.child.id(), service.port, path, burst));
            }
        }
        drop(services);
        let base = throughput(&pair_windows[0]);
        let line: Vec<String> = modes
            .iter()
            .zip(&pair_windows)
            .map(|(mode, w)| format!("{} {:.0} req/s", mode.label(), throughput(w)))
            .collect();
        eprintln!(
            "pair {pair} (PYTHONHASHSEED={seed}): {}; steal {:.0} %",
            line.join(", "),
            steal_percent(pair_started, cpu_jiffies())
        );
        for (mode, these) in pair_windows.into_iter().enumerate() {
            pair_ratios[mode].push(throughput(&these) / base);
            windows[mode].extend(these);
        }
    }
    report(server, path, &modes, &windows, &pair_ratios, rounds, burst);
    println!(
        "  Python: {interpreter} (the baseline's; the PATH picks it, PYENV_VERSION under pyenv)"
    );
    println!(
        "  CPU time stolen by the hypervisor during the run: {:.0} %",
        steal_percent(run_started, cpu_jiffies())
    );
}

/// The executable process `pid` runs: for the baseline, the Python
/// interpreter serving (taskset and the server's script exec it), so a run
/// says which Python its figures are for.
fn interpreter_of(pid: u32) -> String {
    std::fs::read_link(format!("/proc/{pid}/exe"))
        .map(|exe| exe.display().to_string())
        .unwrap_or_else(|e| format!("unknown ({e})"))
}

/// The order of the three modes in round `round`: a rotation, reversed in
/// every other group of three rounds.
fn round_order(round: usize) -> [usize; 3] {
    let shift = round % 3;
    let order = [shift, (shift + 1) % 3, (shift + 2) % 3];
    if (round / 3).is_multiple_of(2) {
        order
    } else {
        [order[2], order[1], order[0]]
    }
}

/// Requests per second over `windows`.
fn throughput(windows: &[Window]) -> f64 {
    windows.iter().map(|w| w.requests as f64).sum::<f64>()
        / windows.iter().map(|w| w.seconds).sum::<f64>()
}

/// Prints each mode's totals, their ratios to the baseline, the mean of the
/// pairs' ratios with its 95 % interval, and the median of the rounds' ratios.
fn report(
    server: Server,
    path: &str,
    modes: &[Mode; 3],
    windows: &[Vec<Window>; 3],
    pair_ratios: &[Vec<f64>; 3],
    rounds: usize,
    burst: f64,
) {
    let base = &windows[0];
    let (base_rps, base_cpu) = (
        throughput(base),
        cpu_per_request(base, |w| w.tree_cpu.run_ns),
    );
    let base_p99 = p99(base);
    println!(
        "{} (GET {path}), {CLIENTS} closed-loop clients, {} pairs of services x {rounds} rounds of {burst} s per mode, alternating",
        server.describe(),
        pair_ratios[0].len()
    );
    for ((mode, these), ratios) in modes.iter().zip(windows).zip(pair_ratios) {
        let label = mode.label();
        let (rps, cpu, p99) = (
            throughput(these),
            cpu_per_request(these, |w| w.tree_cpu.run_ns),
            p99(these),
        );
        let is_base = std::ptr::eq(these, base);
        let system = cpu * system_share(these);
        let own = if is_base {
            String::new()
        } else {
            let root = cpu_per_request(these, |w| w.root_cpu.run_ns);
            format!("; pyrometer itself {root:.1}")
        };
        println!(
            "  {label:<18} {rps:>6.0} req/s  p99 {p99:>5.2} ms  CPU {cpu:>6.1} µs/request (kernel {system:.1}{own})  {:.3}x throughput, {:.3}x p99, {:.3}x CPU",
            rps / base_rps,
            p99 / base_p99,
            cpu / base_cpu,
        );
        if is_base {
            continue;
        }
        let (mean, interval) = mean_and_interval(ratios);
        let rounds_median = percentile(
            these
                .iter()
                .zip(base)
                .map(|(r, b)| (r.requests as f64 / r.seconds) / (b.requests as f64 / b.seconds))
                .collect(),
            0.5,
        );
        println!(
            "  {:<18} throughput loss {:.1} % overall; {:.1} % mean of the pairs (± {:.1} % at 95 %); {:.1} % median of the rounds",
            "",
            (1.0 - rps / base_rps) * 100.0,
            (1.0 - mean) * 100.0,
            interval * 100.0,
            (1.0 - rounds_median) * 100.0
        );
    }
    if let Mode::Control { shows, .. } = modes[2] {
        println!("  target: pyrometer run loses at most 3 %; the control shows {shows}");
    }
}

/// CPU per request over `windows`, µs, of the counter `f` picks.
fn cpu_per_request(windows: &[Window], f: fn(&Window) -> u64) -> f64 {
    let requests: usize = windows.iter().map(|w| w.requests).sum();
    windows.iter().map(f).sum::<u64>() as f64 / 1e3 / requests.max(1) as f64
}

/// The share of the tree's CPU over `windows` that the kernel ran for it (by clock ticks).
fn system_share(windows: &[Window]) -> f64 {
    let (user, system) = windows.iter().fold((0, 0), |(u, s), w| {
        (u + w.tree_cpu.user_ticks, s + w.tree_cpu.system_ticks)
    });
    system as f64 / (user + system).max(1) as f64
}

/// The mean of `ratios` and the half-width of its 95 % interval (the pairs
/// are independent draws).
fn mean_and_interval(ratios: &[f64]) -> (f64, f64) {
    let n = ratios.len() as f64;
    let mean = ratios.iter().sum::<f64>() / n;
    let spread =
        (ratios.iter().map(|r| (r - mean).powi(2)).sum::<f64>() / (n - 1.0).max(1.0)).sqrt();
    (mean, 1.96 * spread / n.sqrt())
}

//! Shared harness for the exporter tests: real servers (Pushgateway,
//! Prometheus) started from their Debian packages on free loopback ports, and
//! a fault-injecting proxy that answers the first requests badly and forwards
//! the rest to a real server.
//!
//! A missing binary fails the test with the command that installs it; readiness
//! is polled with a bounded deadline; every child is killed on drop.
#![allow(dead_code, unreachable_pub)]

use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use pyrometer::export::{Identity, MetricsRegistry, Snapshot};

/// How long a server may take to become ready.
pub const READY_TIMEOUT: Duration = Duration::from_secs(30);
const APT: &str = "apt-get update && apt-get install -y prometheus-pushgateway prometheus";

/// The path of `name`, or a panic that says how to install it.
pub fn require(name: &str) -> PathBuf {
    for dir in std::env::var("PATH")
        .unwrap_or_default()
        .split(':')
        .chain(["/usr/bin", "/usr/sbin"])
    {
        let candidate = Path::new(dir).join(name);
        if candidate.is_file() {
            return candidate;
        }
    }
    panic!("`{name}` is not installed; these tests need real servers: {APT}");
}

/// A port nobody listens on right now.
pub fn free_port() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").expect("bind an ephemeral port");
    listener.local_addr().expect("local addr").port()
}

/// A fresh directory under the system temp dir, removed on drop.
pub struct TempDir(pub PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static NEXT: AtomicUsize = AtomicUsize::new(0);
        let path = std::env::temp_dir().join(format!(
            "pyrometer-{tag}-{}-{}",
            std::process::id(),
            NEXT.fetch_add(1, Ordering::SeqCst)
        ));
        let _ = std::fs::remove_dir_all(&path);
        std::fs::create_dir_all(&path).expect("create temp dir");
        Self(path)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// GET `url`; returns status and body.
pub fn get(url: &str) -> (u16, String) {
    let agent = ureq::Agent::new_with_config(
        ureq::Agent::config_builder()
            .http_status_as_error(false)
            .timeout_global(Some(Duration::from_secs(10)))
            .build(),
    );
    match agent.get(url).call() {
        Ok(mut response) => {
            let status = response.status().as_u16();
            (
                status,
                response.body_mut().read_to_string().unwrap_or_default(),
            )
        }
        Err(error) => (0, error.to_string()),
    }
}

/// Polls `url` until it answers 200, or panics after [`READY_TIMEOUT`].
pub fn wait_ready(url: &str, child: &mut Child, log: &Path) {
    let deadline = Instant::now() + READY_TIMEOUT;
    loop {
        if get(url).0 == 200 {
            return;
        }
        if let Ok(Some(status)) = child.try_wait() {
            panic!(
                "server exited with {status}: {}",
                std::fs::read_to_string(log).unwrap_or_default()
            );
        }
        assert!(
            Instant::now() < deadline,
            "{url} not ready within {READY_TIMEOUT:?}"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// A child process killed on drop.
pub struct Server {
    child: Child,
    pub url: String,
    pub port: u16,
    _dir: TempDir,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A real Pushgateway, in memory only.
pub fn pushgateway() -> Server {
    pushgateway_on(free_port())
}

/// A real Pushgateway on `port`.
pub fn pushgateway_on(port: u16) -> Server {
    let binary = require("prometheus-pushgateway");
    let dir = TempDir::new("pushgateway");
    let log = dir.0.join("log");
    let mut child = Command::new(binary)
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--persistence.file=")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("start prometheus-pushgateway");
    let url = format!("http://127.0.0.1:{port}");
    wait_ready(&format!("{url}/-/ready"), &mut child, &log);
    Server {
        child,
        url,
        port,
        _dir: dir,
    }
}

/// A real Prometheus with the remote-write receiver, scraping `scrape` (if
/// any) every second.
pub fn prometheus(scrape: Option<SocketAddr>) -> Server {
    let binary = require("prometheus");
    let dir = TempDir::new("prometheus");
    let port = free_port();
    let mut config = String::from("global:\n  scrape_interval: 1s\n  evaluation_interval: 1s\n");
    if let Some(target) = scrape {
        config.push_str(&format!(
            "scrape_configs:\n  - job_name: sidecar\n    static_configs:\n      - targets: ['{target}']\n"
        ));
    }
    let config_path = dir.0.join("prometheus.yml");
    std::fs::write(&config_path, config).expect("write prometheus.yml");
    let log = dir.0.join("log");
    let mut child = Command::new(binary)
        .arg(format!("--config.file={}", config_path.display()))
        .arg(format!(
            "--storage.tsdb.path={}",
            dir.0.join("data").display()
        ))
        .arg(format!("--web.listen-address=127.0.0.1:{port}"))
        .arg("--web.enable-remote-write-receiver")
        .stdout(Stdio::null())
        .stderr(std::fs::File::create(&log).expect("log file"))
        .spawn()
        .expect("start prometheus");
    let url = format!("http://127.0.0.1:{port}");
    wait_ready(&format!("{url}/-/ready"), &mut child, &log);
    Server {
        child,
        url,
        port,
        _dir: dir,
    }
}

/// Runs an instant query; returns the result vector (`data.result`).
pub fn query(prometheus: &str, promql: &str) -> Vec<serde_json::Value> {
    let url = format!("{prometheus}/api/v1/query?query={}", percent_encode(promql));
    let (status, body) = get(&url);
    assert_eq!(status, 200, "query {promql}: {body}");
    let json: serde_json::Value = serde_json::from_str(&body).expect("query answer is JSON");
    json["data"]["result"]
        .as_array()
        .cloned()
        .unwrap_or_default()
}

/// Polls `promql` until `done` accepts its result, within `timeout`.
pub fn query_until(
    prometheus: &str,
    promql: &str,
    timeout: Duration,
    done: impl Fn(&[serde_json::Value]) -> bool,
) -> Vec<serde_json::Value> {
    let deadline = Instant::now() + timeout;
    loop {
        let result = query(prometheus, promql);
        if done(&result) {
            return result;
        }
        assert!(
            Instant::now() < deadline,
            "{promql} never satisfied the condition; last: {result:?}"
        );
        std::thread::sleep(Duration::from_millis(100));
    }
}

pub fn percent_encode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            _ => format!("%{b:02X}"),
        })
        .collect()
}

/// The pushgateway's exposition parsed.
pub fn gateway_metrics(gateway: &str) -> Snapshot {
    let (status, body) = get(&format!("{gateway}/metrics"));
    assert_eq!(status, 200);
    Snapshot::new(body)
}

/// An identity whose values contain `/`, as Lambda's do.
pub fn identity(instance: &str) -> Identity {
    Identity {
        job: "pyrometer-test".into(),
        function_name: "checkout".into(),
        function_version: "$LATEST/v2".into(),
        instance: instance.into(),
    }
}

pub fn registry(identity: &Identity) -> Arc<MetricsRegistry> {
    Arc::new(MetricsRegistry::new(identity))
}

/// What the proxy does with a request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Fault {
    /// Accept, read, never answer (the connection is held open).
    Hang,
    /// Answer with this status.
    Status(u16),
}

/// A proxy that applies `fault` to the first `count` requests and forwards
/// the rest to `upstream`. It records every request head it receives.
pub struct FaultProxy {
    pub url: String,
    pub heads: Arc<Mutex<Vec<String>>>,
    pub requests: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    addr: SocketAddr,
}

impl FaultProxy {
    pub fn start(fault: Fault, count: usize, upstream: Option<String>) -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        let heads = Arc::new(Mutex::new(Vec::new()));
        let requests = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        {
            let (heads, requests, stop) =
                (Arc::clone(&heads), Arc::clone(&requests), Arc::clone(&stop));
            std::thread::spawn(move || {
                let mut held = Vec::new();
                for stream in listener.incoming() {
                    if stop.load(Ordering::SeqCst) {
                        break;
                    }
                    let Ok(mut stream) = stream else { continue };
                    let _ = stream.set_read_timeout(Some(Duration::from_secs(10)));
                    let Some((head, body)) = read_request(&mut stream) else {
                        continue;
                    };
                    heads.lock().expect("heads").push(head.clone());
                    let n = requests.fetch_add(1, Ordering::SeqCst);
                    if n < count {
                        match fault {
                            Fault::Hang => held.push(stream),
                            Fault::Status(code) => {
                                let body = format!("injected {code}");
                                let _ = write!(
                                    stream,
                                    "HTTP/1.1 {code} Injected\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
                                    body.len()
                                );
                            }
                        }
                        continue;
                    }
                    match &upstream {
                        Some(upstream) => forward(&mut stream, upstream, &head, &body),
                        None => {
                            let _ = stream.write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n");
                        }
                    }
                }
            });
        }
        Self {
            url: format!("http://{addr}"),
            heads,
            requests,
            stop,
            addr,
        }
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        let _ = TcpStream::connect_timeout(&self.addr, Duration::from_secs(1));
    }
}

fn read_request(stream: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut data = Vec::new();
    let mut chunk = [0u8; 8192];
    let head_end = loop {
        if let Some(pos) = data.windows(4).position(|w| w == b"\r\n\r\n") {
            break pos + 4;
        }
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            return None;
        }
        data.extend_from_slice(&chunk[..n]);
    };
    let head = String::from_utf8_lossy(&data[..head_end]).into_owned();
    let headers: HashMap<String, String> = head
        .lines()
        .skip(1)
        .filter_map(|l| l.split_once(':'))
        .map(|(k, v)| (k.trim().to_ascii_lowercase(), v.trim().to_owned()))
        .collect();
    let length: usize = headers
        .get("content-length")
        .and_then(|l| l.parse().ok())
        .unwrap_or(0);
    let mut body = data[head_end..].to_vec();
    while body.len() < length {
        let n = stream.read(&mut chunk).ok()?;
        if n == 0 {
            break;
        }
        body.extend_from_slice(&chunk[..n]);
    }
    Some((head, body))
}

fn forward(stream: &mut TcpStream, upstream: &str, head: &str, body: &[u8]) {
    let authority = upstream.trim_start_matches("http://");
    let Ok(mut up) = TcpStream::connect(authority) else {
        return;
    };
    let _ = up.set_read_timeout(Some(Duration::from_secs(10)));
    // Same request, one connection: ask the upstream to close when done.
    let mut rewritten = String::new();
    for line in head.split("\r\n").filter(|l| !l.is_empty()) {
        if !line.to_ascii_lowercase().starts_with("connection:") {
            rewritten.push_str(line);
            rewritten.push_str("\r\n");
        }
    }
    rewritten.push_str("Connection: close\r\n\r\n");
    if up.write_all(rewritten.as_bytes()).is_err() || up.write_all(body).is_err() {
        return;
    }
    let mut answer = Vec::new();
    let _ = up.read_to_end(&mut answer);
    let _ = stream.write_all(&answer);
}

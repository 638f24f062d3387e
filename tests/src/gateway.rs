//! A real Pushgateway for end-to-end tests: Debian's `prometheus-pushgateway`
//! started on a free loopback port, in memory only, stopped when dropped.

use std::net::TcpListener;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// A running Pushgateway; killed when dropped.
pub struct Gateway {
    child: Child,
    /// Its base URL, `http://127.0.0.1:PORT`.
    pub url: String,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Gateway {
    /// Starts a gateway and waits until it is ready.
    ///
    /// # Panics
    /// If `prometheus-pushgateway` is missing (the message says how to
    /// install it) or does not become ready within 20 s.
    pub fn start() -> Gateway {
        let port = free_port();
        let child = Command::new("prometheus-pushgateway")
            .arg(format!("--web.listen-address=127.0.0.1:{port}"))
            // In memory only: Debian's build persists to a shared file by
            // default, which would carry one test's groups into the next
            // gateway (and into every later run).
            .arg("--persistence.file=")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect(
                "prometheus-pushgateway is required: apt-get install -y prometheus-pushgateway curl",
            );
        let gw = Gateway {
            child,
            url: format!("http://127.0.0.1:{port}"),
        };
        let deadline = Instant::now() + Duration::from_secs(20);
        while get(&format!("{}/-/ready", gw.url)).is_none() {
            assert!(
                Instant::now() < deadline,
                "the Pushgateway did not become ready"
            );
            std::thread::yield_now();
        }
        gw
    }

    /// Its `/metrics` page.
    pub fn metrics(&self) -> Option<String> {
        get(&format!("{}/metrics", self.url))
    }

    /// Pushes `text` (Prometheus text format) as group `job=<job>`, with
    /// curl; true on a 2xx answer.
    pub fn push(&self, job: &str, text: &str) -> bool {
        use std::io::Write;
        let child = Command::new("curl")
            .args(["-sf", "--max-time", "2", "-X", "PUT", "--data-binary", "@-"])
            .arg(format!("{}/metrics/job/{job}", self.url))
            .stdin(Stdio::piped())
            .stdout(Stdio::null())
            .spawn();
        let Ok(mut child) = child else {
            return false;
        };
        let written = child
            .stdin
            .take()
            .is_some_and(|mut stdin| stdin.write_all(text.as_bytes()).is_ok());
        child.wait().is_ok_and(|s| s.success()) && written
    }
}

/// A loopback port nothing listens on (at the time of the call).
///
/// # Panics
/// If no port can be bound.
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("free port")
        .port()
}

/// `GET url` with curl (2 s cap); the body on a 2xx answer.
pub fn get(url: &str) -> Option<String> {
    let out = Command::new("curl")
        .args(["-sf", "--max-time", "2", url])
        .output()
        .ok()?;
    out.status
        .success()
        .then(|| String::from_utf8_lossy(&out.stdout).into_owned())
}

/// The sum of the samples of `prefix` (a metric name and `{`) whose line
/// also contains every one of `labels` (`name="value"` strings).
pub fn series_sum(text: &str, prefix: &str, labels: &[&str]) -> f64 {
    text.lines()
        .filter(|l| l.starts_with(prefix) && labels.iter().all(|label| l.contains(label)))
        .filter_map(|l| l.rsplit(' ').next()?.parse::<f64>().ok())
        .sum()
}

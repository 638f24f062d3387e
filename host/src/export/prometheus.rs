//! Prometheus pull: the `/metrics` endpoint of the sidecar (`--listen ADDR`).
//!
//! A scrape renders the registry at that moment. The server is deliberately
//! tiny — std sockets, one short-lived thread per connection, HTTP/1.1 with
//! `Connection: close` — because its only client is a scraper asking for one
//! page every few seconds; reads and writes are bounded by timeouts and the
//! number of connections served at once is capped, so a stuck or hostile
//! client costs a thread for a few seconds at most.
//!
//! Routes: `GET /metrics` (gzip when asked for), `GET /-/healthy`, anything
//! else 404 (or 405 for other methods).

use std::io::{self, Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream, ToSocketAddrs};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::thread::JoinHandle;
use std::time::Duration;

use flate2::Compression;
use flate2::write::GzEncoder;

use super::MetricsRegistry;
use super::pushgateway::TEXT_CONTENT_TYPE;

/// Bound on reading a request and writing the answer.
pub const IO_TIMEOUT_MS: u64 = 5_000;
/// Connections served at once; more are answered 503 at once.
pub const MAX_CONCURRENT_CONNECTIONS: usize = 16;
/// Bound on a request head.
const MAX_REQUEST_HEAD_BYTES: usize = 16 * 1024;

/// A running `/metrics` server; stops when shut down or dropped.
#[derive(Debug)]
pub struct MetricsServer {
    local_addr: SocketAddr,
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl MetricsServer {
    /// Binds `addr` and serves `registry` from a background thread.
    pub fn bind(addr: impl ToSocketAddrs, registry: Arc<MetricsRegistry>) -> io::Result<Self> {
        let listener = TcpListener::bind(addr)?;
        let local_addr = listener.local_addr()?;
        let stop = Arc::new(AtomicBool::new(false));
        let thread = {
            let stop = Arc::clone(&stop);
            std::thread::Builder::new()
                .name("pyrometer-metrics".to_owned())
                .spawn(move || accept_loop(&listener, &registry, &stop))?
        };
        Ok(Self {
            local_addr,
            stop,
            thread: Some(thread),
        })
    }

    /// The address actually bound (useful with port 0).
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// Stops accepting and waits for the accept thread.
    pub fn shutdown(mut self) {
        self.stop_now();
    }

    fn stop_now(&mut self) {
        self.stop.store(true, Ordering::SeqCst);
        // Wake the blocking accept with a connection of our own.
        let _ = TcpStream::connect_timeout(&self.local_addr, Duration::from_secs(1));
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

impl Drop for MetricsServer {
    fn drop(&mut self) {
        if self.thread.is_some() {
            self.stop_now();
        }
    }
}

/// Serves `registry` on `listener` in the calling thread, forever: what
/// `pyrometer run --listen ADDR` calls.
pub fn serve(listener: TcpListener, registry: Arc<MetricsRegistry>) -> io::Result<()> {
    accept_loop(&listener, &registry, &AtomicBool::new(false));
    Ok(())
}

fn accept_loop(listener: &TcpListener, registry: &Arc<MetricsRegistry>, stop: &AtomicBool) {
    let active = Arc::new(AtomicUsize::new(0));
    for stream in listener.incoming() {
        if stop.load(Ordering::SeqCst) {
            break;
        }
        let Ok(mut stream) = stream else { continue };
        if active.fetch_add(1, Ordering::SeqCst) >= MAX_CONCURRENT_CONNECTIONS {
            active.fetch_sub(1, Ordering::SeqCst);
            let _ = stream.set_write_timeout(Some(Duration::from_millis(IO_TIMEOUT_MS)));
            let _ = respond(
                &mut stream,
                "503 Service Unavailable",
                "text/plain",
                b"busy\n",
                false,
            );
            continue;
        }
        let registry = Arc::clone(registry);
        let active_for_thread = Arc::clone(&active);
        let spawned = std::thread::Builder::new()
            .name("pyrometer-scrape".to_owned())
            .spawn(move || {
                let _ = handle(&mut stream, &registry);
                active_for_thread.fetch_sub(1, Ordering::SeqCst);
            });
        if spawned.is_err() {
            active.fetch_sub(1, Ordering::SeqCst);
        }
    }
}

fn handle(stream: &mut TcpStream, registry: &MetricsRegistry) -> io::Result<()> {
    let timeout = Some(Duration::from_millis(IO_TIMEOUT_MS));
    stream.set_read_timeout(timeout)?;
    stream.set_write_timeout(timeout)?;
    let head = read_head(stream)?;
    let mut lines = head.split("\r\n");
    let request_line = lines.next().unwrap_or_default();
    let mut parts = request_line.split(' ');
    let (method, target) = (
        parts.next().unwrap_or_default(),
        parts.next().unwrap_or_default(),
    );
    let accepts_gzip = lines.any(|line| {
        line.split_once(':').is_some_and(|(name, value)| {
            name.trim().eq_ignore_ascii_case("accept-encoding")
                && value.to_ascii_lowercase().contains("gzip")
        })
    });
    let path = target.split('?').next().unwrap_or_default();
    let head_only = method == "HEAD";
    if method != "GET" && !head_only {
        return respond(
            stream,
            "405 Method Not Allowed",
            "text/plain",
            b"method not allowed\n",
            head_only,
        );
    }
    match path {
        "/metrics" => {
            let text = registry.render();
            if accepts_gzip {
                let mut encoder = GzEncoder::new(Vec::new(), Compression::fast());
                encoder.write_all(text.as_bytes())?;
                let body = encoder.finish()?;
                respond_with(
                    stream,
                    "200 OK",
                    TEXT_CONTENT_TYPE,
                    Some("gzip"),
                    &body,
                    head_only,
                )
            } else {
                respond(
                    stream,
                    "200 OK",
                    TEXT_CONTENT_TYPE,
                    text.as_bytes(),
                    head_only,
                )
            }
        }
        "/-/healthy" | "/" => respond(stream, "200 OK", "text/plain", b"ok\n", head_only),
        _ => respond(
            stream,
            "404 Not Found",
            "text/plain",
            b"not found\n",
            head_only,
        ),
    }
}

fn read_head(stream: &mut TcpStream) -> io::Result<String> {
    let mut head = Vec::with_capacity(1024);
    let mut chunk = [0u8; 1024];
    while !head.windows(4).any(|w| w == b"\r\n\r\n") {
        if head.len() > MAX_REQUEST_HEAD_BYTES {
            return Err(io::Error::new(
                io::ErrorKind::InvalidData,
                "request head too large",
            ));
        }
        let n = stream.read(&mut chunk)?;
        if n == 0 {
            break;
        }
        head.extend_from_slice(&chunk[..n]);
    }
    Ok(String::from_utf8_lossy(&head).into_owned())
}

fn respond(
    stream: &mut TcpStream,
    status: &str,
    content_type: &str,
    body: &[u8],
    head_only: bool,
) -> io::Result<()> {
    respond_with(stream, status, content_type, None, body, head_only)
}

fn respond_with(
    stream: &mut TcpStream,
    status: &str,
    content_type: &str,
    encoding: Option<&str>,
    body: &[u8],
    head_only: bool,
) -> io::Result<()> {
    let encoding = encoding
        .map(|e| format!("Content-Encoding: {e}\r\n"))
        .unwrap_or_default();
    let head = format!(
        "HTTP/1.1 {status}\r\nContent-Type: {content_type}\r\n{encoding}Content-Length: {}\r\nConnection: close\r\n\r\n",
        body.len()
    );
    stream.write_all(head.as_bytes())?;
    if !head_only {
        stream.write_all(body)?;
    }
    stream.flush()
}

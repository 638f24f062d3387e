//! The HTTP endpoint a Lambda extension subscribes to the Telemetry API.
//!
//! Batches enter as POSTs (any path), are parsed with [`super::parse_batch`],
//! and leave one [`TelemetryEvent`] at a time through a bounded channel. The
//! listener **always answers 200**: a 4xx or 5xx makes Lambda re-deliver the
//! same batch, which would turn one bad event into a loop. What it could not
//! use — a body over the size limit, a batch that is not JSON, an event the
//! channel had no room for — is counted in [`ListenerStats`] instead.
//!
//! In Lambda, bind it on the sandbox's address (`0.0.0.0` or
//! `sandbox.localdomain`) and subscribe `http://sandbox.localdomain:PORT`;
//! locally (and under the emulator) bind it on loopback.

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use http_body_util::{BodyExt, Full, Limited};
use hyper::body::Incoming;
use hyper::server::conn::http1;
use hyper::service::service_fn;
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

use super::{ParseStats, TelemetryEvent, parse_batch};

/// Events the channel holds by default (Lambda's largest batch is 10,000).
pub const DEFAULT_CHANNEL_CAPACITY: usize = 10_000;
/// Largest body read by default, bytes (Lambda's largest batch is 1 MiB).
pub const DEFAULT_MAX_BODY_BYTES: usize = 4 * 1024 * 1024;

/// Where and how the listener runs.
#[derive(Debug, Clone)]
pub struct ListenerConfig {
    /// Address to bind; port 0 picks a free one.
    pub addr: SocketAddr,
    /// Events buffered between the listener and its consumer; more are dropped and counted.
    pub channel_capacity: usize,
    /// Largest request body read; larger bodies are discarded and counted.
    pub max_body_bytes: usize,
}

impl Default for ListenerConfig {
    fn default() -> Self {
        ListenerConfig {
            addr: SocketAddr::from(([127, 0, 0, 1], 0)),
            channel_capacity: DEFAULT_CHANNEL_CAPACITY,
            max_body_bytes: DEFAULT_MAX_BODY_BYTES,
        }
    }
}

/// What the listener received and what it could not pass on.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ListenerStats {
    /// Requests answered (all with 200).
    pub requests: u64,
    /// Bodies over [`ListenerConfig::max_body_bytes`], or cut off mid-read.
    pub unreadable_bodies: u64,
    /// Parse counts over every batch read.
    pub parse: ParseStats,
    /// Events dropped because the channel was full or its receiver gone.
    pub dropped: u64,
}

/// A running Telemetry API listener; stops when dropped.
#[derive(Debug)]
pub struct TelemetryListener {
    local_addr: SocketAddr,
    stats: Arc<Mutex<ListenerStats>>,
    task: JoinHandle<()>,
}

impl TelemetryListener {
    /// Binds the listener and starts serving on the current tokio runtime.
    ///
    /// Returns the listener and the receiving end of its bounded event channel.
    ///
    /// ```no_run
    /// # async fn demo() -> std::io::Result<()> {
    /// use pyrometer::sources::telemetry::{ListenerConfig, TelemetryListener};
    /// let (listener, mut events) = TelemetryListener::bind(ListenerConfig::default()).await?;
    /// println!("subscribe {}", listener.uri());
    /// while let Some(event) = events.recv().await {
    ///     println!("{} {:?}", event.event_type(), event.request_id());
    /// }
    /// # Ok(()) }
    /// ```
    pub async fn bind(
        config: ListenerConfig,
    ) -> std::io::Result<(TelemetryListener, mpsc::Receiver<TelemetryEvent>)> {
        let socket = TcpListener::bind(config.addr).await?;
        let local_addr = socket.local_addr()?;
        let (tx, rx) = mpsc::channel(config.channel_capacity.max(1));
        let stats = Arc::new(Mutex::new(ListenerStats::default()));
        let max_body = config.max_body_bytes;
        let task_stats = stats.clone();
        let task = tokio::spawn(async move {
            loop {
                let Ok((stream, _)) = socket.accept().await else {
                    // Out of descriptors and the like: the next accept may succeed.
                    tokio::task::yield_now().await;
                    continue;
                };
                let _ = stream.set_nodelay(true);
                let tx = tx.clone();
                let stats = task_stats.clone();
                tokio::spawn(async move {
                    let service =
                        service_fn(move |req| handle(req, tx.clone(), stats.clone(), max_body));
                    // A connection error only ends that connection.
                    let _ = http1::Builder::new()
                        .serve_connection(TokioIo::new(stream), service)
                        .await;
                });
            }
        });
        Ok((
            TelemetryListener {
                local_addr,
                stats,
                task,
            },
            rx,
        ))
    }

    /// The bound address.
    pub fn local_addr(&self) -> SocketAddr {
        self.local_addr
    }

    /// The destination URI to subscribe, `http://ADDR:PORT`.
    pub fn uri(&self) -> String {
        format!("http://{}", self.local_addr)
    }

    /// Counts so far.
    pub fn stats(&self) -> ListenerStats {
        *self.stats.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl Drop for TelemetryListener {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn handle(
    req: Request<Incoming>,
    tx: mpsc::Sender<TelemetryEvent>,
    stats: Arc<Mutex<ListenerStats>>,
    max_body: usize,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let body = Limited::new(req.into_body(), max_body).collect().await;
    let mut dropped = 0;
    let mut parse = ParseStats::default();
    let readable = match body {
        Ok(collected) => {
            let (events, batch_stats) = parse_batch(&collected.to_bytes());
            parse = batch_stats;
            for event in events {
                if tx.try_send(event).is_err() {
                    dropped += 1;
                }
            }
            true
        }
        Err(_) => false,
    };
    {
        let mut s = stats.lock().unwrap_or_else(PoisonError::into_inner);
        s.requests += 1;
        s.unreadable_bodies += u64::from(!readable);
        s.parse.add(&parse);
        s.dropped += dropped;
    }
    let mut response = Response::new(Full::new(Bytes::new()));
    *response.status_mut() = StatusCode::OK;
    Ok(response)
}

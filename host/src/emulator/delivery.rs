//! HTTP delivery of telemetry to one subscriber, as Lambda does it: events
//! are buffered until `maxItems` events or `maxBytes` bytes are held or
//! `timeoutMs` has passed since the first, then POSTed as one JSON array.
//!
//! One dispatcher task per subscription owns a keep-alive connection. A
//! refused connection is retried briefly (a subscriber usually subscribes
//! before its listener is accepting; `lambda-extension` even re-binds its
//! listener after every connection); a non-2xx answer makes it re-deliver the
//! batch a bounded number of times, as Lambda does; then the batch is dropped
//! and counted. Destinations are loopback only: `sandbox.localdomain` (the
//! name Lambda resolves for extensions) means this machine.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use bytes::{BufMut, Bytes, BytesMut};
use http_body_util::{BodyExt, Full, Limited};
use hyper::client::conn::http1::{self, SendRequest};
use hyper::{Method, Request};
use hyper_util::rt::TokioIo;
use tokio::net::TcpStream;
use tokio::sync::{Notify, mpsc};
use tokio::time::{Instant, sleep, sleep_until, timeout};

use super::hub::{DeliveryCounters, Encoded};
use crate::sources::telemetry::{LogsDropped, Record, TelemetryEvent, format_timestamp};

/// Buffering bounds of the Telemetry API (minimum, default, maximum).
pub(crate) const MAX_ITEMS_BOUNDS: (u64, u64, u64) = (1_000, 1_000, 10_000);
/// Bytes bounds.
pub(crate) const MAX_BYTES_BOUNDS: (u64, u64, u64) = (262_144, 262_144, 1_048_576);
/// Timeout bounds, milliseconds.
pub(crate) const TIMEOUT_MS_BOUNDS: (u64, u64, u64) = (25, 1_000, 30_000);

/// Connection attempts per batch before it is dropped.
const CONNECT_ATTEMPTS: u32 = 12;
/// First pause between connection attempts; it doubles up to [`MAX_RETRY_PAUSE`].
const FIRST_RETRY_PAUSE: Duration = Duration::from_millis(5);
const MAX_RETRY_PAUSE: Duration = Duration::from_millis(200);
/// Re-deliveries of a batch the subscriber answered with non-2xx.
const MAX_REDELIVERIES: u32 = 2;
/// How long a subscriber may take to connect, and to answer a batch.
const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);
const ANSWER_TIMEOUT: Duration = Duration::from_secs(5);
/// Answer bodies are read (to keep the connection usable) up to this size.
const MAX_ANSWER_BYTES: usize = 64 * 1024;

/// A subscriber's buffering settings, within the Telemetry API's bounds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Buffering {
    /// Events per batch at most.
    pub max_items: usize,
    /// Bytes per batch at most (a single larger event is sent alone).
    pub max_bytes: usize,
    /// How long the first event of a batch may wait.
    pub timeout: Duration,
}

impl Default for Buffering {
    fn default() -> Self {
        Buffering {
            max_items: MAX_ITEMS_BOUNDS.1 as usize,
            max_bytes: MAX_BYTES_BOUNDS.1 as usize,
            timeout: Duration::from_millis(TIMEOUT_MS_BOUNDS.1),
        }
    }
}

impl Buffering {
    /// The smallest buffering Lambda allows: 25 ms, as pyrometer's extension subscribes.
    pub fn fastest() -> Self {
        Buffering {
            timeout: Duration::from_millis(TIMEOUT_MS_BOUNDS.0),
            ..Buffering::default()
        }
    }

    /// Checks the settings against the Telemetry API's bounds.
    pub fn validate(&self) -> Result<(), String> {
        let check = |name: &str, value: u64, (min, _, max): (u64, u64, u64)| {
            if (min..=max).contains(&value) {
                Ok(())
            } else {
                Err(format!(
                    "buffering.{name} is {value}; allowed {min} to {max}"
                ))
            }
        };
        check("maxItems", self.max_items as u64, MAX_ITEMS_BOUNDS)?;
        check("maxBytes", self.max_bytes as u64, MAX_BYTES_BOUNDS)?;
        check(
            "timeoutMs",
            self.timeout.as_millis() as u64,
            TIMEOUT_MS_BOUNDS,
        )
    }
}

/// Where a subscriber's batches go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Target {
    addr: SocketAddr,
    host: String,
    path: String,
}

impl Target {
    /// Reads a destination URI; only `http://` to this machine is accepted.
    pub(crate) fn parse(uri: &str) -> Result<Target, String> {
        let parsed: hyper::Uri = uri
            .parse()
            .map_err(|e| format!("invalid URI {uri:?}: {e}"))?;
        if parsed.scheme_str() != Some("http") {
            return Err(format!("URI {uri:?} is not http://"));
        }
        let host = parsed
            .host()
            .ok_or_else(|| format!("URI {uri:?} has no host"))?;
        let ip = match host {
            "sandbox.localdomain" | "localhost" => IpAddr::V4(Ipv4Addr::LOCALHOST),
            other => other
                .trim_start_matches('[')
                .trim_end_matches(']')
                .parse::<IpAddr>()
                .map_err(|_| format!("URI {uri:?}: host {other} is not on this machine"))?,
        };
        if !ip.is_loopback() && !ip.is_unspecified() {
            return Err(format!(
                "URI {uri:?}: telemetry is only delivered to loopback"
            ));
        }
        // `0.0.0.0` as a destination means "this host", like a bind address.
        let ip = if ip.is_unspecified() {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        } else {
            ip
        };
        let port = parsed.port_u16().unwrap_or(80);
        let path = parsed
            .path_and_query()
            .map(|p| p.as_str().to_string())
            .unwrap_or_else(|| "/".into());
        Ok(Target {
            addr: SocketAddr::new(ip, port),
            host: format!("{host}:{port}"),
            path,
        })
    }
}

/// Tells a dispatcher to send what it holds now and stop buffering.
#[derive(Debug, Default)]
pub(crate) struct FlushSignal {
    notify: Notify,
    draining: AtomicBool,
}

impl FlushSignal {
    pub(crate) fn drain(&self) {
        self.draining.store(true, Ordering::SeqCst);
        self.notify.notify_one();
    }

    fn draining(&self) -> bool {
        self.draining.load(Ordering::SeqCst)
    }
}

/// Runs one subscription's deliveries until its queue closes and is empty.
pub(crate) async fn dispatch(
    target: Target,
    buffering: Buffering,
    mut rx: mpsc::Receiver<Arc<Encoded>>,
    flush: Arc<FlushSignal>,
    counters: Arc<DeliveryCounters>,
) {
    let mut connection: Option<SendRequest<Full<Bytes>>> = None;
    let mut carried: Option<Arc<Encoded>> = None;
    let mut closed = false;
    while !closed || carried.is_some() {
        let first = match carried.take() {
            Some(event) => event,
            None => match rx.recv().await {
                Some(event) => event,
                None => break,
            },
        };
        let mut batch = vec![first];
        let mut bytes = batch[0].json.len();
        let deadline = Instant::now() + buffering.timeout;
        while !closed
            && batch.len() < buffering.max_items
            && bytes < buffering.max_bytes
            && !flush.draining()
        {
            tokio::select! {
                biased;
                next = rx.recv() => match next {
                    Some(event) if bytes + event.json.len() + 1 > buffering.max_bytes => {
                        carried = Some(event);
                        break;
                    }
                    Some(event) => {
                        bytes += event.json.len() + 1;
                        batch.push(event);
                    }
                    None => closed = true,
                },
                _ = flush.notify.notified() => break,
                _ = sleep_until(deadline) => break,
            }
        }
        let dropped = counters.unreported_drops.swap(0, Ordering::Relaxed);
        let body = encode(
            &batch,
            dropped,
            counters.bytes_dropped.load(Ordering::Relaxed),
        );
        let sent = batch.len() as u64 + u64::from(dropped > 0);
        deliver(&target, &mut connection, body, sent, &counters).await;
    }
}

/// The JSON array of a batch, led by a `platform.logsDropped` if events were dropped.
fn encode(batch: &[Arc<Encoded>], dropped: u64, dropped_bytes: u64) -> Bytes {
    let mut out =
        BytesMut::with_capacity(batch.iter().map(|e| e.json.len() + 1).sum::<usize>() + 2);
    out.put_u8(b'[');
    if dropped > 0 {
        let notice = TelemetryEvent {
            time: format_timestamp(std::time::SystemTime::now()),
            record: Record::LogsDropped(LogsDropped {
                reason: Some("Some logs were dropped because the downstream consumer is slower than the logs production rate".into()),
                dropped_records: Some(dropped),
                dropped_bytes: Some(dropped_bytes),
                ..LogsDropped::default()
            }),
        };
        if let Ok(json) = serde_json::to_vec(&notice) {
            out.put_slice(&json);
            out.put_u8(b',');
        }
    }
    for (i, event) in batch.iter().enumerate() {
        if i > 0 {
            out.put_u8(b',');
        }
        out.put_slice(&event.json);
    }
    out.put_u8(b']');
    out.freeze()
}

async fn deliver(
    target: &Target,
    connection: &mut Option<SendRequest<Full<Bytes>>>,
    body: Bytes,
    events: u64,
    counters: &DeliveryCounters,
) {
    let mut pause = FIRST_RETRY_PAUSE;
    let mut connect_failures = 0;
    let mut rejections = 0;
    loop {
        match post(target, connection, body.clone()).await {
            Ok(status) if status.is_success() => {
                counters.batches_sent.fetch_add(1, Ordering::Relaxed);
                counters.events_sent.fetch_add(events, Ordering::Relaxed);
                return;
            }
            Ok(_) => {
                counters.batches_rejected.fetch_add(1, Ordering::Relaxed);
                rejections += 1;
                if rejections > MAX_REDELIVERIES {
                    break;
                }
            }
            Err(_) => {
                *connection = None;
                connect_failures += 1;
                if connect_failures >= CONNECT_ATTEMPTS {
                    break;
                }
            }
        }
        sleep(pause).await;
        pause = (pause * 2).min(MAX_RETRY_PAUSE);
    }
    counters.batches_failed.fetch_add(1, Ordering::Relaxed);
}

#[derive(Debug)]
struct DeliveryFailed;

async fn post(
    target: &Target,
    connection: &mut Option<SendRequest<Full<Bytes>>>,
    body: Bytes,
) -> Result<hyper::StatusCode, DeliveryFailed> {
    if connection.as_ref().is_none_or(|c| c.is_closed()) {
        *connection = Some(connect(target).await?);
    }
    let sender = connection.as_mut().ok_or(DeliveryFailed)?;
    let request = Request::builder()
        .method(Method::POST)
        .uri(&target.path)
        .header(hyper::header::HOST, &target.host)
        .header(hyper::header::CONTENT_TYPE, "application/json")
        .body(Full::new(body))
        .map_err(|_| DeliveryFailed)?;
    let answer = async {
        sender.ready().await.map_err(|_| DeliveryFailed)?;
        let response = sender
            .send_request(request)
            .await
            .map_err(|_| DeliveryFailed)?;
        let status = response.status();
        // Read the answer so the connection can carry the next batch.
        let _ = Limited::new(response.into_body(), MAX_ANSWER_BYTES)
            .collect()
            .await;
        Ok(status)
    };
    match timeout(ANSWER_TIMEOUT, answer).await {
        Ok(result) => result,
        Err(_) => Err(DeliveryFailed),
    }
}

async fn connect(target: &Target) -> Result<SendRequest<Full<Bytes>>, DeliveryFailed> {
    let stream = timeout(CONNECT_TIMEOUT, TcpStream::connect(target.addr))
        .await
        .map_err(|_| DeliveryFailed)?
        .map_err(|_| DeliveryFailed)?;
    let _ = stream.set_nodelay(true);
    let (sender, conn) = http1::handshake(TokioIo::new(stream))
        .await
        .map_err(|_| DeliveryFailed)?;
    tokio::spawn(async move {
        // Ends when the subscriber closes the connection or the sender is dropped.
        let _ = conn.await;
    });
    Ok(sender)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn destinations_are_loopback_only() {
        let t = Target::parse("http://sandbox.localdomain:9003").expect("sandbox");
        assert_eq!(t.addr, SocketAddr::from(([127, 0, 0, 1], 9003)));
        assert_eq!(t.path, "/");
        assert!(Target::parse("http://127.0.0.1:8080/telemetry").is_ok());
        assert!(Target::parse("http://[::1]:8080").is_ok());
        assert!(Target::parse("http://10.0.0.1:8080").is_err());
        assert!(Target::parse("http://example.com:8080").is_err());
        assert!(Target::parse("https://127.0.0.1:8080").is_err());
    }

    #[test]
    fn buffering_bounds_are_lambdas() {
        assert!(Buffering::default().validate().is_ok());
        assert!(Buffering::fastest().validate().is_ok());
        let too_fast = Buffering {
            timeout: Duration::from_millis(24),
            ..Buffering::default()
        };
        assert!(too_fast.validate().is_err());
        let too_few = Buffering {
            max_items: 999,
            ..Buffering::default()
        };
        assert!(too_few.validate().is_err());
    }
}

//! The Telemetry API side: our tolerant listener, a thread forwarding its
//! events into the loop's [`Input`] channel, and the subscription to the
//! `platform` stream with the smallest buffering Lambda allows (25 ms), so
//! `runtimeDone` and `report` reach us as early as they can.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::mpsc::SyncSender;

use pyrometer::sources::telemetry::{ListenerConfig, ListenerStats, TelemetryListener};

use crate::extensions_api::ExtensionsApi;
use crate::inputs::Input;

/// Lambda's smallest buffering timeout.
const BUFFERING_TIMEOUT_MS: u64 = 25;
/// Lambda's smallest `maxItems` and `maxBytes`.
const BUFFERING_MAX_ITEMS: u64 = 1_000;
const BUFFERING_MAX_BYTES: u64 = 262_144;

/// A running listener; it stops when dropped.
pub(crate) struct TelemetryFeed {
    listener: TelemetryListener,
    uri: String,
    // Declared last so the listener's task is dropped before its runtime.
    _runtime: tokio::runtime::Runtime,
}

impl TelemetryFeed {
    /// Starts the listener on a one-thread runtime. Under a local emulator
    /// (a loopback Runtime API) it binds loopback; in Lambda every address,
    /// subscribed as `sandbox.localdomain`.
    pub(crate) fn start(runtime_api: &str, inputs: SyncSender<Input>) -> anyhow::Result<Self> {
        let local = runtime_api.starts_with("127.") || runtime_api.starts_with("localhost");
        let ip = if local {
            IpAddr::V4(Ipv4Addr::LOCALHOST)
        } else {
            IpAddr::V4(Ipv4Addr::UNSPECIFIED)
        };
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .thread_name("pyrometer-telemetry")
            .enable_io()
            .enable_time()
            .build()?;
        let config = ListenerConfig {
            addr: SocketAddr::new(ip, 0),
            ..ListenerConfig::default()
        };
        let (listener, mut events) = runtime.block_on(TelemetryListener::bind(config))?;
        let port = listener.local_addr().port();
        let host = if local {
            "127.0.0.1"
        } else {
            "sandbox.localdomain"
        };
        std::thread::Builder::new()
            .name("pyrometer-telemetry-forward".into())
            .spawn(move || {
                while let Some(event) = events.blocking_recv() {
                    if inputs.send(Input::Telemetry(Box::new(event))).is_err() {
                        return;
                    }
                }
            })?;
        Ok(Self {
            listener,
            uri: format!("http://{host}:{port}"),
            _runtime: runtime,
        })
    }

    /// Subscribes the listener to the `platform` stream.
    pub(crate) fn subscribe(&self, api: &ExtensionsApi) -> anyhow::Result<()> {
        let body = serde_json::json!({
            "schemaVersion": "2022-12-13",
            "destination": { "protocol": "HTTP", "URI": self.uri },
            "types": ["platform"],
            "buffering": {
                "timeoutMs": BUFFERING_TIMEOUT_MS,
                "maxItems": BUFFERING_MAX_ITEMS,
                "maxBytes": BUFFERING_MAX_BYTES,
            },
        });
        api.put_json("/2022-07-01/telemetry", &body)
    }

    /// What the listener received and could not use.
    pub(crate) fn stats(&self) -> ListenerStats {
        self.listener.stats()
    }
}

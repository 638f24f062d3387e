//! The Telemetry API (`2022-07-01`): `PUT /2022-07-01/telemetry` subscribes a
//! registered extension to the `platform`, `function` and `extension`
//! streams, delivered over HTTP with the buffering it asked for (within
//! Lambda's bounds; out-of-bounds settings are refused with 400 as Lambda
//! does). The emulator's caller subscribes through the same path with
//! [`super::Emulator::subscribe_http`].
//!
//! A subscription made during init is first sent the environment's events so
//! far, so `platform.initStart` is not lost to the race between starting a
//! process and its subscribing. It ends with its environment.

use std::sync::Arc;
use std::time::Duration;

use hyper::body::Incoming;
use hyper::{Request, StatusCode};
use serde::Deserialize;

use super::delivery::{self, Buffering, FlushSignal, Target};
use super::events;
use super::extensions_api::ID_HEADER;
use super::hub::{DeliveryCounters, Owner, Sink, Subscriber, TelemetryType};
use super::server::{Reply, error_reply, header, read_body};
use super::state::Shared;

const MAX_REQUEST_BYTES: usize = 64 * 1024;
const SCHEMA_VERSIONS: &[&str] = &["2022-07-01", "2022-12-13", "2025-01-29"];

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct SubscribeBody {
    schema_version: Option<String>,
    destination: Destination,
    types: Vec<String>,
    #[serde(default)]
    buffering: BufferingBody,
}

#[derive(Debug, Deserialize)]
struct Destination {
    protocol: String,
    #[serde(rename = "URI")]
    uri: String,
}

#[derive(Debug, Default, Deserialize)]
#[serde(rename_all = "camelCase")]
struct BufferingBody {
    max_items: Option<u64>,
    max_bytes: Option<u64>,
    timeout_ms: Option<u64>,
}

fn invalid(message: &str) -> Reply {
    error_reply(StatusCode::BAD_REQUEST, "ValidationError", message)
}

/// `PUT /2022-07-01/telemetry`.
pub(crate) async fn subscribe(shared: &Arc<Shared>, req: Request<Incoming>) -> Reply {
    let Some(id) = header(req.headers(), ID_HEADER).map(str::to_string) else {
        return error_reply(
            StatusCode::FORBIDDEN,
            "Extension.InvalidRequest",
            &format!("missing {ID_HEADER}"),
        );
    };
    let Ok(body) = read_body(req.into_body(), MAX_REQUEST_BYTES).await else {
        return invalid("unreadable body");
    };
    let request: SubscribeBody = match serde_json::from_slice(&body) {
        Ok(request) => request,
        Err(e) => return invalid(&format!("invalid subscription: {e}")),
    };
    if let Some(version) = request.schema_version.as_deref()
        && !SCHEMA_VERSIONS.contains(&version)
    {
        return invalid(&format!("unsupported schemaVersion {version}"));
    }
    if request.destination.protocol != "HTTP" {
        return invalid(&format!(
            "destination protocol {} is not supported here (HTTP is)",
            request.destination.protocol
        ));
    }
    let mut types = Vec::new();
    for name in &request.types {
        match TelemetryType::parse(name) {
            Some(t) if !types.contains(&t) => types.push(t),
            Some(_) => {}
            None => return invalid(&format!("unknown telemetry type {name}")),
        }
    }
    if types.is_empty() {
        return invalid("types is empty");
    }
    let defaults = Buffering::default();
    let buffering = Buffering {
        max_items: request
            .buffering
            .max_items
            .map_or(defaults.max_items, |v| v as usize),
        max_bytes: request
            .buffering
            .max_bytes
            .map_or(defaults.max_bytes, |v| v as usize),
        timeout: request
            .buffering
            .timeout_ms
            .map_or(defaults.timeout, Duration::from_millis),
    };
    let (name, generation) = {
        let mut state = shared.lock();
        let generation = state.generation;
        match state.extension_by_id(&id) {
            Some(slot) => (slot.name.clone(), generation),
            None => {
                return error_reply(
                    StatusCode::FORBIDDEN,
                    "Extension.InvalidRequest",
                    "unknown extension identifier",
                );
            }
        }
    };
    let owner = Owner::Extension { generation, id };
    if let Err(message) = add_http_subscriber(
        shared,
        name,
        owner,
        &request.destination.uri,
        types,
        buffering,
    ) {
        return invalid(&message);
    }
    let mut reply =
        hyper::Response::new(http_body_util::Full::new(bytes::Bytes::from_static(b"OK")));
    *reply.status_mut() = StatusCode::OK;
    reply
}

/// Validates and starts one HTTP subscription, replaying this environment's events.
pub(crate) fn add_http_subscriber(
    shared: &Shared,
    name: String,
    owner: Owner,
    uri: &str,
    types: Vec<TelemetryType>,
    buffering: Buffering,
) -> Result<(), String> {
    buffering.validate()?;
    let target = Target::parse(uri)?;
    let (tx, rx) = tokio::sync::mpsc::channel(buffering.max_items);
    let flush = Arc::new(FlushSignal::default());
    let counters = Arc::new(DeliveryCounters::default());
    tokio::spawn(delivery::dispatch(
        target,
        buffering,
        rx,
        flush.clone(),
        counters.clone(),
    ));
    // Lambda announces extensions' subscriptions; the caller's own is not Lambda's.
    let announcement = matches!(owner, Owner::Extension { .. }).then(|| {
        let type_names: Vec<&str> = types.iter().map(|t| t.as_str()).collect();
        events::telemetry_subscription(&shared.clock, shared.clock.now(), &name, &type_names)
    });
    shared.hub.subscribe(
        Subscriber {
            name,
            destination: uri.to_string(),
            owner,
            types,
            sink: Sink::Http { tx, flush },
            counters,
        },
        true,
    );
    if let Some(event) = announcement {
        shared.hub.emit(event);
    }
    Ok(())
}

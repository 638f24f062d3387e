//! The Extensions API (`2020-01-01`), which extensions drive: `register`,
//! `event/next` (long poll for INVOKE and SHUTDOWN), `init/error` and
//! `exit/error`.
//!
//! An extension's first `next` ends its init; during an invocation, its
//! `next` says it is done with that invocation, which `platform.report`
//! waits for. Event bodies are exactly Lambda's:
//!
//! ```json
//! {"eventType":"INVOKE","deadlineMs":1666361106165,"requestId":"…","invokedFunctionArn":"arn:aws:lambda:…",
//!  "tracing":{"type":"X-Amzn-Trace-Id","value":"Root=…;Parent=…;Sampled=0"}}
//! {"eventType":"SHUTDOWN","shutdownReason":"SPINDOWN","deadlineMs":1666361108165}
//! ```

use std::sync::Arc;

use bytes::Bytes;
use hyper::body::Incoming;
use hyper::header::HeaderValue;
use hyper::{Request, StatusCode};
use serde::Deserialize;

use super::events;
use super::ids;
use super::outcome::FunctionError;
use super::server::{Reply, accepted, error_reply, header, json_reply, read_body};
use super::state::{ExtensionSlot, Phase, Shared};

/// Largest register or error body read, bytes.
const MAX_REQUEST_BYTES: usize = 64 * 1024;
pub(crate) const NAME_HEADER: &str = "Lambda-Extension-Name";
pub(crate) const ID_HEADER: &str = "Lambda-Extension-Identifier";
const EVENT_ID_HEADER: &str = "Lambda-Extension-Event-Identifier";
const ACCEPT_FEATURE_HEADER: &str = "Lambda-Extension-Accept-Feature";
const ERROR_TYPE_HEADER: &str = "Lambda-Extension-Function-Error-Type";

/// The INVOKE event body.
pub(crate) fn invoke_event(
    deadline_ms: u64,
    request_id: &str,
    function_arn: &str,
    trace: &str,
) -> Bytes {
    Bytes::from(
        serde_json::json!({
            "eventType": "INVOKE",
            "deadlineMs": deadline_ms,
            "requestId": request_id,
            "invokedFunctionArn": function_arn,
            "tracing": { "type": "X-Amzn-Trace-Id", "value": trace },
        })
        .to_string(),
    )
}

/// The SHUTDOWN event body.
pub(crate) fn shutdown_event(reason: &str, deadline_ms: u64) -> Bytes {
    Bytes::from(
        serde_json::json!({ "eventType": "SHUTDOWN", "shutdownReason": reason, "deadlineMs": deadline_ms })
            .to_string(),
    )
}

fn forbidden(message: &str) -> Reply {
    error_reply(StatusCode::FORBIDDEN, "Extension.InvalidRequest", message)
}

/// `POST /2020-01-01/extension/register`.
pub(crate) async fn register(shared: &Arc<Shared>, req: Request<Incoming>) -> Reply {
    #[derive(Deserialize, Default)]
    #[serde(default)]
    struct Body {
        events: Vec<String>,
    }
    let Some(name) = header(req.headers(), NAME_HEADER).map(str::to_string) else {
        return error_reply(
            StatusCode::BAD_REQUEST,
            "InvalidRequest",
            &format!("missing {NAME_HEADER}"),
        );
    };
    let wants_account =
        header(req.headers(), ACCEPT_FEATURE_HEADER).is_some_and(|f| f.contains("accountId"));
    let body = match read_body(req.into_body(), MAX_REQUEST_BYTES).await {
        Ok(body) => body,
        Err(_) => return error_reply(StatusCode::BAD_REQUEST, "InvalidRequest", "unreadable body"),
    };
    let Ok(parsed) = serde_json::from_slice::<Body>(&body) else {
        return error_reply(
            StatusCode::BAD_REQUEST,
            "InvalidRequest",
            "body is not {\"events\": [...]}",
        );
    };
    if let Some(bad) = parsed
        .events
        .iter()
        .find(|e| !matches!(e.as_str(), "INVOKE" | "SHUTDOWN"))
    {
        return error_reply(
            StatusCode::BAD_REQUEST,
            "InvalidRequest",
            &format!("unknown event type {bad}"),
        );
    }
    let id = ids::uuid();
    {
        let mut state = shared.lock();
        if state.phase != Phase::Init {
            return forbidden("extensions register during the init phase only");
        }
        // An external extension registers under its executable's file name
        // (its slot exists from before its launch; a fast one may register
        // before the launcher has stored its pid); any other name is an
        // internal extension (inside the runtime process).
        let index = match state
            .extensions
            .iter()
            .position(|e| e.name == name && e.id.is_none())
        {
            Some(i) => i,
            None if state.extensions.iter().any(|e| e.name == name) => {
                return forbidden(&format!("extension {name} is already registered"));
            }
            None => {
                state.extensions.push(ExtensionSlot::named(name.clone()));
                state.extensions.len() - 1
            }
        };
        let slot = &mut state.extensions[index];
        slot.id = Some(id.clone());
        slot.wants_invoke = parsed.events.iter().any(|e| e == "INVOKE");
        slot.wants_shutdown = parsed.events.iter().any(|e| e == "SHUTDOWN");
        let names: Vec<&str> = parsed.events.iter().map(String::as_str).collect();
        let now = shared.clock.now();
        shared
            .hub
            .emit(events::extension(&shared.clock, now, &name, &names));
    }
    shared.notify();
    let config = &shared.config;
    let mut body = serde_json::json!({
        "functionName": config.function_name,
        "functionVersion": config.function_version,
        "handler": config.handler,
    });
    if wants_account {
        body["accountId"] = serde_json::Value::String(config.account_id.clone());
    }
    let mut reply = json_reply(StatusCode::OK, &body);
    if let Ok(value) = HeaderValue::from_str(&id) {
        reply.headers_mut().insert(ID_HEADER, value);
    }
    reply
}

/// `GET /2020-01-01/extension/event/next`.
pub(crate) async fn next(shared: &Arc<Shared>, req: Request<Incoming>) -> Reply {
    let Some(id) = header(req.headers(), ID_HEADER).map(str::to_string) else {
        return forbidden(&format!("missing {ID_HEADER}"));
    };
    let polled = {
        let mut state = shared.lock();
        if let Some(invocation) = state.invocation.as_mut() {
            invocation
                .pending_extensions
                .retain(|pending| *pending != id);
        }
        let Some(slot) = state.extension_by_id(&id) else {
            return forbidden("unknown extension identifier");
        };
        slot.ready = true;
        if slot.shutdown_sent && slot.queue_is_empty() {
            slot.done_after_shutdown = true;
        }
        slot.poll()
    };
    shared.notify();
    let body = match polled {
        Ok(body) => body,
        Err(waiting) => match waiting.await {
            Ok(body) => body,
            Err(_) => {
                return error_reply(
                    StatusCode::GONE,
                    "Extension.Shutdown",
                    "the execution environment has ended",
                );
            }
        },
    };
    let mut reply = http_ok_json(body);
    if let Ok(value) = HeaderValue::from_str(&ids::uuid()) {
        reply.headers_mut().insert(EVENT_ID_HEADER, value);
    }
    reply
}

fn http_ok_json(body: Bytes) -> Reply {
    let mut reply = hyper::Response::new(http_body_util::Full::new(body));
    reply.headers_mut().insert(
        hyper::header::CONTENT_TYPE,
        HeaderValue::from_static("application/json"),
    );
    reply
}

/// Which error an extension reports.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum ErrorKind {
    /// `init/error`: init fails.
    Init,
    /// `exit/error`: the extension is about to exit; the environment is reset.
    Exit,
}

/// `POST /2020-01-01/extension/init/error` and `…/exit/error`.
pub(crate) async fn report_error(
    shared: &Arc<Shared>,
    req: Request<Incoming>,
    kind: ErrorKind,
) -> Reply {
    let Some(id) = header(req.headers(), ID_HEADER).map(str::to_string) else {
        return forbidden(&format!("missing {ID_HEADER}"));
    };
    let header_type = header(req.headers(), ERROR_TYPE_HEADER).map(str::to_string);
    let body = read_body(req.into_body(), MAX_REQUEST_BYTES)
        .await
        .unwrap_or_default();
    let error = FunctionError::from_post(header_type.as_deref(), body);
    {
        let mut state = shared.lock();
        let in_init = state.phase == Phase::Init;
        let Some(slot) = state.extension_by_id(&id) else {
            return forbidden("unknown extension identifier");
        };
        match kind {
            ErrorKind::Init if !in_init => return forbidden("init/error outside the init phase"),
            ErrorKind::Init => {
                slot.init_error.get_or_insert(error);
            }
            ErrorKind::Exit => {
                state.exit_error.get_or_insert(error);
            }
        }
    }
    shared.notify();
    accepted()
}

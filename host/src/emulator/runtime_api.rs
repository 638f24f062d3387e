//! The Runtime API (`2018-06-01`), which the function's runtime drives:
//! `invocation/next` (long poll), `invocation/{id}/response`,
//! `invocation/{id}/error` and `init/error`.
//!
//! The runtime's calls are the emulator's clock marks: its first `next` ends
//! runtime init (`platform.initRuntimeDone`); the arrival and end of its
//! response time `responseLatency` and `responseDuration`; its next `next`
//! after a response completes the invocation (`platform.runtimeDone`).

use std::sync::Arc;
use std::time::Instant;

use hyper::body::Incoming;
use hyper::header::{CONTENT_TYPE, HeaderValue};
use hyper::{Request, Response, StatusCode};

use super::config::MAX_PAYLOAD_BYTES;
use super::events::{self, ResponseTimes, RuntimeDoneFacts};
use super::outcome::{FunctionError, Status};
use super::server::{BodyError, Reply, accepted, error_reply, header, read_body};
use super::state::{Invocation, NextInvocation, Phase, Reply as RuntimeReply, Shared};

/// Largest `init/error` body read, bytes.
const MAX_INIT_ERROR_BYTES: usize = MAX_PAYLOAD_BYTES;
const ERROR_TYPE_HEADER: &str = "Lambda-Runtime-Function-Error-Type";

/// `GET /2018-06-01/runtime/invocation/next`.
pub(crate) async fn next(shared: &Arc<Shared>) -> Reply {
    let polled = {
        let mut state = shared.lock();
        let now = shared.clock.now();
        if state.phase == Phase::Init && state.runtime.ready_at.is_none() {
            state.runtime.ready_at = Some(now);
            shared.hub.emit(events::init_runtime_done(
                &shared.clock,
                now,
                shared.config.init_type.as_str(),
                "success",
                None,
            ));
        }
        if state.phase == Phase::Invoking
            && let Some(invocation) = state.invocation.as_mut()
            && invocation.runtime_done.is_none()
        {
            finish(shared, invocation, now);
        }
        state.runtime.poll()
    };
    shared.notify();
    let invocation = match polled {
        Ok(invocation) => invocation,
        Err(waiting) => match waiting.await {
            Ok(invocation) => invocation,
            // The environment ended while the runtime waited; it is being stopped.
            Err(_) => {
                return error_reply(
                    StatusCode::GONE,
                    "Runtime.Shutdown",
                    "the execution environment is shutting down",
                );
            }
        },
    };
    invocation_response(invocation)
}

/// The runtime finished the invocation: emit `platform.runtimeDone`.
fn finish(shared: &Shared, invocation: &mut Invocation, now: Instant) {
    let (status, error_type, produced) = match &invocation.reply {
        Some(RuntimeReply::Response(body)) => (Status::Success, None, Some(body.len() as u64)),
        Some(RuntimeReply::Error(e)) => (
            Status::Error,
            Some(e.error_type.clone()),
            Some(e.raw.len() as u64),
        ),
        // `next` without an answer: Lambda's runtimes never do this.
        None => (
            Status::Failure,
            Some("Runtime.NoResponse".to_string()),
            None,
        ),
    };
    shared.hub.emit(events::runtime_done(
        &shared.clock,
        now,
        RuntimeDoneFacts {
            request_id: &invocation.request_id,
            trace: &invocation.trace,
            started: invocation.started,
            status: status_str(status),
            error_type: error_type.as_deref(),
            response: invocation.reply_times,
            produced_bytes: produced,
        },
    ));
    invocation.runtime_done = Some((now, status, error_type));
}

/// A status as the Telemetry API writes it.
pub(crate) fn status_str(status: Status) -> &'static str {
    match status {
        Status::Success => "success",
        Status::Error => "error",
        Status::Timeout => "timeout",
        Status::OutOfMemory | Status::Failure => "failure",
    }
}

fn invocation_response(invocation: NextInvocation) -> Reply {
    let mut response = Response::new(http_body_util::Full::new(invocation.payload));
    let headers = response.headers_mut();
    let mut set = |name: &'static str, value: &str| {
        if let Ok(value) = HeaderValue::from_str(value) {
            headers.insert(name, value);
        }
    };
    set("Lambda-Runtime-Aws-Request-Id", &invocation.request_id);
    set(
        "Lambda-Runtime-Deadline-Ms",
        &invocation.deadline_ms.to_string(),
    );
    set(
        "Lambda-Runtime-Invoked-Function-Arn",
        &invocation.function_arn,
    );
    set("Lambda-Runtime-Trace-Id", &invocation.trace);
    if let Some(context) = &invocation.client_context {
        set("Lambda-Runtime-Client-Context", context);
    }
    if let Some(identity) = &invocation.cognito_identity {
        set("Lambda-Runtime-Cognito-Identity", identity);
    }
    headers.insert(CONTENT_TYPE, HeaderValue::from_static("application/json"));
    response
}

/// Claims the right to answer invocation `id`; `Err` is the reply to send.
fn begin_reply(shared: &Shared, id: &str) -> Result<Instant, Box<Reply>> {
    let mut state = shared.lock();
    let now = shared.clock.now();
    match state.invocation.as_mut() {
        Some(invocation) if invocation.request_id == id => {
            if invocation.reply_began.is_some() {
                return Err(Box::new(error_reply(
                    StatusCode::FORBIDDEN,
                    "InvalidStateTransition",
                    &format!("invocation {id} was already answered"),
                )));
            }
            invocation.reply_began = Some(now);
            Ok(now)
        }
        _ => Err(Box::new(error_reply(
            StatusCode::BAD_REQUEST,
            "InvalidRequestID",
            &format!("{id} is not the invocation in progress"),
        ))),
    }
}

fn store_reply(shared: &Shared, id: &str, began: Instant, reply: RuntimeReply) {
    {
        let mut state = shared.lock();
        let ended = shared.clock.now();
        if let Some(invocation) = state.invocation.as_mut().filter(|i| i.request_id == id) {
            invocation.reply = Some(reply);
            invocation.reply_times = Some(ResponseTimes { began, ended });
        }
    }
    shared.notify();
}

fn too_large() -> FunctionError {
    FunctionError::platform(
        "Function.ResponseSizeTooLarge",
        format!(
            "Response payload size exceeded maximum allowed payload size ({MAX_PAYLOAD_BYTES} bytes)."
        ),
    )
}

/// `POST /2018-06-01/runtime/invocation/{id}/response`.
pub(crate) async fn response(shared: &Arc<Shared>, id: String, req: Request<Incoming>) -> Reply {
    let began = match begin_reply(shared, &id) {
        Ok(began) => began,
        Err(reply) => return *reply,
    };
    match read_body(req.into_body(), MAX_PAYLOAD_BYTES).await {
        Ok(body) => {
            store_reply(shared, &id, began, RuntimeReply::Response(body));
            accepted()
        }
        Err(BodyError::TooLarge) => {
            store_reply(shared, &id, began, RuntimeReply::Error(too_large()));
            error_reply(
                StatusCode::PAYLOAD_TOO_LARGE,
                "RequestEntityTooLarge",
                &format!("response is over {MAX_PAYLOAD_BYTES} bytes"),
            )
        }
        Err(BodyError::Broken) => {
            let error = FunctionError::platform(
                "Runtime.TruncatedResponse",
                "the response body was cut off",
            );
            store_reply(shared, &id, began, RuntimeReply::Error(error));
            error_reply(
                StatusCode::BAD_REQUEST,
                "InvalidRequest",
                "the response body was cut off",
            )
        }
    }
}

/// `POST /2018-06-01/runtime/invocation/{id}/error`.
pub(crate) async fn error(shared: &Arc<Shared>, id: String, req: Request<Incoming>) -> Reply {
    let began = match begin_reply(shared, &id) {
        Ok(began) => began,
        Err(reply) => return *reply,
    };
    let header_type = header(req.headers(), ERROR_TYPE_HEADER).map(str::to_string);
    let error = match read_body(req.into_body(), MAX_PAYLOAD_BYTES).await {
        Ok(body) => FunctionError::from_post(header_type.as_deref(), body),
        Err(BodyError::TooLarge) => too_large(),
        Err(BodyError::Broken) => {
            FunctionError::platform("Runtime.TruncatedResponse", "the error body was cut off")
        }
    };
    store_reply(shared, &id, began, RuntimeReply::Error(error));
    accepted()
}

/// `POST /2018-06-01/runtime/init/error`.
pub(crate) async fn init_error(shared: &Arc<Shared>, req: Request<Incoming>) -> Reply {
    let header_type = header(req.headers(), ERROR_TYPE_HEADER).map(str::to_string);
    let body = match read_body(req.into_body(), MAX_INIT_ERROR_BYTES).await {
        Ok(body) => body,
        Err(_) => bytes::Bytes::new(),
    };
    let error = FunctionError::from_post(header_type.as_deref(), body);
    {
        let mut state = shared.lock();
        if state.phase != Phase::Init {
            return error_reply(
                StatusCode::FORBIDDEN,
                "InvalidStateTransition",
                "init/error outside the init phase",
            );
        }
        state.runtime.init_error.get_or_insert(error);
    }
    shared.notify();
    accepted()
}

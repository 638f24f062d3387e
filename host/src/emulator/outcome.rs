//! What the emulator reports back to its caller: the request it takes
//! ([`InvokeRequest`]) and the outcomes of init, invocations and shutdown.
//!
//! Every duration here is measured by the emulator from the real processes'
//! API calls; the same figures appear in the telemetry events it emits.

use std::fmt;
use std::time::Duration;

use bytes::Bytes;
use serde::Deserialize;

pub use crate::model::Status;

/// One invocation's input.
#[derive(Debug, Clone, Default)]
pub struct InvokeRequest {
    /// The event, as bytes (normally JSON).
    pub payload: Bytes,
    /// `Lambda-Runtime-Client-Context` (JSON), for mobile-SDK-style invocations.
    pub client_context: Option<String>,
    /// `Lambda-Runtime-Cognito-Identity` (JSON).
    pub cognito_identity: Option<String>,
}

impl InvokeRequest {
    /// A request with just a payload.
    pub fn new(payload: impl Into<Bytes>) -> Self {
        InvokeRequest {
            payload: payload.into(),
            ..InvokeRequest::default()
        }
    }
}

/// An error as Lambda's runtimes report it: `{"errorType", "errorMessage", "stackTrace"}`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FunctionError {
    /// `errorType`, or the `Lambda-Runtime-Function-Error-Type` header, or a
    /// platform type such as `Sandbox.Timedout` or `Runtime.ExitError`.
    pub error_type: String,
    /// `errorMessage`.
    pub error_message: String,
    /// `stackTrace`, one frame or line per element.
    pub stack_trace: Vec<String>,
    /// The body the runtime posted, as it came (empty for platform errors).
    pub raw: Bytes,
}

impl FunctionError {
    /// An error the platform itself reports (no body from the runtime).
    pub(crate) fn platform(error_type: &str, error_message: impl Into<String>) -> Self {
        FunctionError {
            error_type: error_type.to_string(),
            error_message: error_message.into(),
            ..FunctionError::default()
        }
    }

    /// Reads a posted error body, tolerating anything: the header's type wins
    /// over a missing one in the body; a body that is not the usual JSON is
    /// kept as the message.
    pub(crate) fn from_post(header_type: Option<&str>, body: Bytes) -> Self {
        #[derive(Deserialize, Default)]
        #[serde(rename_all = "camelCase", default)]
        struct Posted {
            error_type: Option<String>,
            error_message: Option<String>,
            stack_trace: Option<serde_json::Value>,
        }
        let parsed = serde_json::from_slice::<Posted>(&body).ok();
        let (body_type, message, trace) = match parsed {
            Some(p) => (
                p.error_type,
                p.error_message.unwrap_or_default(),
                match p.stack_trace {
                    Some(serde_json::Value::Array(frames)) => frames
                        .into_iter()
                        .map(|f| match f {
                            serde_json::Value::String(s) => s,
                            other => other.to_string(),
                        })
                        .collect(),
                    Some(serde_json::Value::String(s)) => s.lines().map(str::to_string).collect(),
                    _ => Vec::new(),
                },
            ),
            None => (
                None,
                String::from_utf8_lossy(&body).into_owned(),
                Vec::new(),
            ),
        };
        let error_type = body_type
            .filter(|t| !t.is_empty())
            .or_else(|| header_type.map(str::to_string))
            .unwrap_or_else(|| "Unhandled".to_string());
        FunctionError {
            error_type,
            error_message: message,
            stack_trace: trace,
            raw: body,
        }
    }
}

impl fmt::Display for FunctionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.error_message.is_empty() {
            f.write_str(&self.error_type)
        } else {
            write!(f, "{}: {}", self.error_type, self.error_message)
        }
    }
}

/// How an execution environment's init phase went.
#[derive(Debug, Clone, PartialEq)]
pub struct InitOutcome {
    /// `Success`, `Error` (init error posted), `Failure` (a process died) or `Timeout`.
    pub status: Status,
    /// What went wrong, if anything.
    pub error: Option<FunctionError>,
    /// From the processes' start to the end of init (`initReport` `durationMs`).
    pub duration: Duration,
    /// From the processes' start to the runtime's first `next` (`initRuntimeDone`),
    /// if it got that far.
    pub runtime_ready: Option<Duration>,
    /// When init started, milliseconds since the Unix epoch.
    pub start_unix_ms: f64,
    /// Names of the extensions that registered.
    pub extensions: Vec<String>,
}

/// How one invocation went, with the figures of its `platform.report`.
#[derive(Debug, Clone, PartialEq)]
pub struct InvokeOutcome {
    /// The request id given to the runtime and extensions.
    pub request_id: String,
    /// How it ended.
    pub status: Status,
    /// The body the runtime posted to `…/response`.
    pub response: Option<Bytes>,
    /// The error, for any status but `Success`.
    pub error: Option<FunctionError>,
    /// True when the invocation waited for its environment: the on-demand
    /// init (or an init run just before it by
    /// [`Emulator::init`](super::Emulator::init)), or a SnapStart restore. Not
    /// the first invocation of a provisioned-concurrency environment
    /// initialised ahead.
    pub cold_start: bool,
    /// The init phase of this invocation's environment, on its first
    /// invocation (SnapStart: the snapshot's init, when it ran for this one).
    pub init: Option<InitOutcome>,
    /// The SnapStart restore this invocation waited for (`restoreDurationMs`).
    pub restore_duration: Option<Duration>,
    /// When the invocation started (`platform.start`), milliseconds since the Unix epoch.
    pub start_unix_ms: f64,
    /// From the start to the response fully received (`responseLatency` + `responseDuration`).
    pub response_latency: Option<Duration>,
    /// From the start to the runtime's next `next` (`runtimeDone` `durationMs`).
    pub runtime_duration: Option<Duration>,
    /// From the start to the end of the invocation, extensions included
    /// (`report` `durationMs`).
    pub duration: Duration,
    /// `billedDurationMs`: the duration rounded up to the millisecond (plus
    /// the billed restore, after a SnapStart restore).
    pub billed_duration_ms: u64,
    /// `maxMemoryUsedMB`: the runtime process tree's peak RSS so far.
    pub max_memory_used_mb: u64,
    /// `producedBytes`: the response's size.
    pub produced_bytes: Option<u64>,
    /// True if the environment was torn down after this invocation (timeout,
    /// crash, failed init): the next invocation is a cold start.
    pub environment_reset: bool,
}

/// Why an execution environment shuts down (the SHUTDOWN event's `shutdownReason`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ShutdownReason {
    /// Lambda reclaims an idle environment.
    Spindown,
    /// An invocation or init timed out.
    Timeout,
    /// A process failed.
    Failure,
}

impl ShutdownReason {
    /// The value Lambda sends in `shutdownReason`.
    pub fn as_wire(self) -> &'static str {
        match self {
            ShutdownReason::Spindown => "SPINDOWN",
            ShutdownReason::Timeout => "TIMEOUT",
            ShutdownReason::Failure => "FAILURE",
        }
    }
}

impl fmt::Display for ShutdownReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.as_wire().to_ascii_lowercase())
    }
}

/// How a shutdown went.
#[derive(Debug, Clone, PartialEq)]
pub struct ShutdownOutcome {
    /// Why it shut down.
    pub reason: ShutdownReason,
    /// From the SHUTDOWN event to the last process gone.
    pub duration: Duration,
    /// Extensions that finished (exited, or called `next` again) before the deadline.
    pub extensions_done: Vec<String>,
    /// Processes still running at the deadline, ended with SIGKILL.
    pub killed: Vec<String>,
}

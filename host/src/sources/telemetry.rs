//! The Lambda Telemetry API (`2022-07-01`): its events, and a tolerant listener.
//!
//! Data enters as the JSON arrays Lambda (or the local emulator) POSTs to a
//! subscriber, and leaves as [`TelemetryEvent`]s: one typed [`Record`] per
//! event, or the raw JSON of anything this model does not know.
//!
//! **Tolerance is the contract.** Lambda adds fields and event types over time,
//! the AWS documentation's own examples carry typos, and `lambda-extension`
//! 1.x rejects a whole batch over one unknown event. Here:
//!
//! * every field is optional, and fields this model does not name are kept in
//!   `extra` (so re-serialising an event loses nothing);
//! * an unknown `type`, or a known type whose record has a field of the wrong
//!   JSON type, is kept whole as [`Record::Raw`] and counted in [`ParseStats`];
//! * an event missing a field Lambda always sends (a `requestId`, a report's
//!   `metrics`, the `time`) is kept typed and counted as incomplete;
//! * a body that is not a JSON array is counted, never an error;
//! * [`parse_batch`] never panics (the listener answers 200 regardless, since
//!   a 4xx makes Lambda re-deliver the same batch).
//!
//! The same types serialise the events the emulator emits, in the exact shape
//! Lambda sends (integers where Lambda sends integers, absent fields omitted).

mod listener;
mod timestamp;

use serde::de::DeserializeOwned;
use serde::{Deserialize, Deserializer, Serialize, Serializer};
use serde_json::{Map, Value};

pub use listener::{
    DEFAULT_CHANNEL_CAPACITY, DEFAULT_MAX_BODY_BYTES, ListenerConfig, ListenerStats,
    TelemetryListener,
};
pub use timestamp::{format_timestamp, parse_timestamp_ms};

/// One event of a Telemetry API batch: `{"time": …, "type": …, "record": …}`.
#[derive(Debug, Clone, PartialEq)]
pub struct TelemetryEvent {
    /// When Lambda generated the event (RFC 3339, UTC); empty if it was missing.
    pub time: String,
    /// What happened.
    pub record: Record,
}

impl TelemetryEvent {
    /// The event's `type` (`platform.start`, `function`, …).
    pub fn event_type(&self) -> &str {
        self.record.event_type()
    }

    /// [`Self::time`] as milliseconds since the Unix epoch, if it parses.
    pub fn time_unix_ms(&self) -> Option<f64> {
        parse_timestamp_ms(&self.time)
    }

    /// The request id of an invocation event (`start`, `runtimeDone`, `report`).
    pub fn request_id(&self) -> Option<&str> {
        match &self.record {
            Record::Start(r) => r.request_id.as_deref(),
            Record::RuntimeDone(r) => r.request_id.as_deref(),
            Record::Report(r) => r.request_id.as_deref(),
            _ => None,
        }
    }

    /// Reads one event from its JSON value, never failing (see the module doc).
    pub fn from_value(value: Value) -> (Self, EventQuality) {
        let Value::Object(mut object) = value else {
            let event = TelemetryEvent {
                time: String::new(),
                record: Record::Raw(RawRecord {
                    event_type: String::new(),
                    record: value,
                    reason: RawReason::Malformed("event is not a JSON object".into()),
                }),
            };
            return (event, EventQuality::Malformed);
        };
        let time = match object.remove("time") {
            Some(Value::String(s)) => Some(s),
            _ => None,
        };
        let event_type = match object.remove("type") {
            Some(Value::String(s)) => s,
            _ => String::new(),
        };
        let record = object.remove("record").unwrap_or(Value::Null);
        let (record, mut quality) = Record::from_parts(event_type, record);
        if time.is_none() && quality == EventQuality::Complete {
            quality = EventQuality::Incomplete;
        }
        (
            TelemetryEvent {
                time: time.unwrap_or_default(),
                record,
            },
            quality,
        )
    }
}

impl Serialize for TelemetryEvent {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        use serde::ser::SerializeMap;
        let mut map = serializer.serialize_map(Some(3))?;
        map.serialize_entry("time", &self.time)?;
        map.serialize_entry("type", self.event_type())?;
        match &self.record {
            Record::InitStart(r) => map.serialize_entry("record", r)?,
            Record::InitRuntimeDone(r) => map.serialize_entry("record", r)?,
            Record::InitReport(r) => map.serialize_entry("record", r)?,
            Record::Start(r) => map.serialize_entry("record", r)?,
            Record::RuntimeDone(r) => map.serialize_entry("record", r)?,
            Record::Report(r) => map.serialize_entry("record", r)?,
            Record::RestoreStart(r) => map.serialize_entry("record", r)?,
            Record::RestoreRuntimeDone(r) => map.serialize_entry("record", r)?,
            Record::RestoreReport(r) => map.serialize_entry("record", r)?,
            Record::Extension(r) => map.serialize_entry("record", r)?,
            Record::TelemetrySubscription(r) => map.serialize_entry("record", r)?,
            Record::LogsDropped(r) => map.serialize_entry("record", r)?,
            Record::FunctionLog(v) | Record::ExtensionLog(v) => map.serialize_entry("record", v)?,
            Record::Raw(raw) => map.serialize_entry("record", &raw.record)?,
        }
        map.end()
    }
}

impl<'de> Deserialize<'de> for TelemetryEvent {
    /// Never fails on a well-formed JSON value; see [`TelemetryEvent::from_value`].
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        Ok(Self::from_value(Value::deserialize(deserializer)?).0)
    }
}

/// How well one event matched the model.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EventQuality {
    /// Typed, with every field Lambda always sends.
    Complete,
    /// Typed, but missing a field Lambda always sends.
    Incomplete,
    /// An event type this model does not know; kept raw.
    UnknownType,
    /// Not an object, or a known type with a field of the wrong JSON type; kept raw.
    Malformed,
}

/// The record of one event, by `type`.
#[derive(Debug, Clone, PartialEq)]
pub enum Record {
    /// `platform.initStart`.
    InitStart(InitStart),
    /// `platform.initRuntimeDone`.
    InitRuntimeDone(InitRuntimeDone),
    /// `platform.initReport`.
    InitReport(InitReport),
    /// `platform.start`.
    Start(Start),
    /// `platform.runtimeDone`.
    RuntimeDone(RuntimeDone),
    /// `platform.report`.
    Report(Report),
    /// `platform.restoreStart` (SnapStart).
    RestoreStart(RestoreStart),
    /// `platform.restoreRuntimeDone` (SnapStart).
    RestoreRuntimeDone(RestoreRuntimeDone),
    /// `platform.restoreReport` (SnapStart).
    RestoreReport(RestoreReport),
    /// `platform.extension`: an extension registered.
    Extension(ExtensionState),
    /// `platform.telemetrySubscription`: an extension subscribed.
    TelemetrySubscription(TelemetrySubscription),
    /// `platform.logsDropped`: Lambda dropped events for a slow subscriber.
    LogsDropped(LogsDropped),
    /// `function`: one line of the function's output (a string, or an object in JSON log format).
    FunctionLog(Value),
    /// `extension`: one line of an extension's output.
    ExtensionLog(Value),
    /// Anything else, kept as it came.
    Raw(RawRecord),
}

impl Record {
    /// The `type` this record is sent under.
    pub fn event_type(&self) -> &str {
        match self {
            Record::InitStart(_) => "platform.initStart",
            Record::InitRuntimeDone(_) => "platform.initRuntimeDone",
            Record::InitReport(_) => "platform.initReport",
            Record::Start(_) => "platform.start",
            Record::RuntimeDone(_) => "platform.runtimeDone",
            Record::Report(_) => "platform.report",
            Record::RestoreStart(_) => "platform.restoreStart",
            Record::RestoreRuntimeDone(_) => "platform.restoreRuntimeDone",
            Record::RestoreReport(_) => "platform.restoreReport",
            Record::Extension(_) => "platform.extension",
            Record::TelemetrySubscription(_) => "platform.telemetrySubscription",
            Record::LogsDropped(_) => "platform.logsDropped",
            Record::FunctionLog(_) => "function",
            Record::ExtensionLog(_) => "extension",
            Record::Raw(raw) => &raw.event_type,
        }
    }

    fn from_parts(event_type: String, record: Value) -> (Record, EventQuality) {
        fn typed<T: DeserializeOwned + Required>(
            event_type: String,
            record: Value,
            wrap: fn(T) -> Record,
        ) -> (Record, EventQuality) {
            // A missing record reads as an empty one: every field is then absent.
            let missing = record.is_null();
            let record = if missing {
                Value::Object(Map::new())
            } else {
                record
            };
            match T::deserialize(&record) {
                Ok(typed) => {
                    let quality = if typed.has_required() && !missing {
                        EventQuality::Complete
                    } else {
                        EventQuality::Incomplete
                    };
                    (wrap(typed), quality)
                }
                Err(e) => (
                    Record::Raw(RawRecord {
                        event_type,
                        record,
                        reason: RawReason::Malformed(e.to_string()),
                    }),
                    EventQuality::Malformed,
                ),
            }
        }
        match event_type.as_str() {
            "platform.initStart" => typed(event_type, record, Record::InitStart),
            "platform.initRuntimeDone" => typed(event_type, record, Record::InitRuntimeDone),
            "platform.initReport" => typed(event_type, record, Record::InitReport),
            "platform.start" => typed(event_type, record, Record::Start),
            "platform.runtimeDone" => typed(event_type, record, Record::RuntimeDone),
            "platform.report" => typed(event_type, record, Record::Report),
            "platform.restoreStart" => typed(event_type, record, Record::RestoreStart),
            "platform.restoreRuntimeDone" => typed(event_type, record, Record::RestoreRuntimeDone),
            "platform.restoreReport" => typed(event_type, record, Record::RestoreReport),
            "platform.extension" => typed(event_type, record, Record::Extension),
            "platform.telemetrySubscription" => {
                typed(event_type, record, Record::TelemetrySubscription)
            }
            "platform.logsDropped" => typed(event_type, record, Record::LogsDropped),
            "function" => (Record::FunctionLog(record), EventQuality::Complete),
            "extension" => (Record::ExtensionLog(record), EventQuality::Complete),
            _ => (
                Record::Raw(RawRecord {
                    event_type,
                    record,
                    reason: RawReason::UnknownType,
                }),
                EventQuality::UnknownType,
            ),
        }
    }
}

/// Which fields of a record Lambda always sends.
trait Required {
    fn has_required(&self) -> bool {
        true
    }
}

/// An event kept as it came.
#[derive(Debug, Clone, PartialEq)]
pub struct RawRecord {
    /// Its `type` (empty when missing).
    pub event_type: String,
    /// Its `record` (the whole event when it was not an object).
    pub record: Value,
    /// Why it was not typed.
    pub reason: RawReason,
}

/// Why an event was kept raw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RawReason {
    /// The `type` is not one this model knows.
    UnknownType,
    /// The event or its record did not have the expected shape (the detail).
    Malformed(String),
}

/// Shorthand for the `skip_serializing_if` of optional fields.
fn none<T>(v: &Option<T>) -> bool {
    v.is_none()
}

/// An integer that Lambda sends as an integer but a sloppy producer may send
/// as `2600.0`: accepted either way, re-serialised as an integer.
fn lenient_u64<'de, D: Deserializer<'de>>(d: D) -> Result<Option<u64>, D::Error> {
    let v = Option::<Value>::deserialize(d)?;
    match v {
        None | Some(Value::Null) => Ok(None),
        Some(Value::Number(n)) => {
            if let Some(u) = n.as_u64() {
                Ok(Some(u))
            } else {
                match n.as_f64() {
                    Some(f) if (0.0..1.8e19).contains(&f) => Ok(Some(f.round() as u64)),
                    _ => Err(serde::de::Error::custom(format!(
                        "not a non-negative integer: {n}"
                    ))),
                }
            }
        }
        Some(other) => Err(serde::de::Error::custom(format!("not a number: {other}"))),
    }
}

/// A timed section of a phase (`responseLatency`, `runtimeOverhead`, …).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Span {
    /// Span name.
    #[serde(default, skip_serializing_if = "none")]
    pub name: Option<String>,
    /// Start time (RFC 3339).
    #[serde(default, skip_serializing_if = "none")]
    pub start: Option<String>,
    /// Duration, milliseconds.
    #[serde(default, skip_serializing_if = "none")]
    pub duration_ms: Option<f64>,
    /// Fields this model does not name.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// The X-Ray trace context of an invocation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Tracing {
    /// Span id.
    #[serde(default, skip_serializing_if = "none")]
    pub span_id: Option<String>,
    /// Always `X-Amzn-Trace-Id` today.
    #[serde(default, rename = "type", skip_serializing_if = "none")]
    pub trace_type: Option<String>,
    /// The trace header value (`Root=…;Parent=…;Sampled=…`).
    #[serde(default, skip_serializing_if = "none")]
    pub value: Option<String>,
    /// Fields this model does not name.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `platform.initStart`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InitStart {
    /// `on-demand`, `provisioned-concurrency` or `snap-start`.
    #[serde(default, skip_serializing_if = "none")]
    pub initialization_type: Option<String>,
    /// `init`, or `invoke` for an init re-run inside an invocation.
    #[serde(default, skip_serializing_if = "none")]
    pub phase: Option<String>,
    /// Runtime version, such as `python:3.12.v20`.
    #[serde(default, skip_serializing_if = "none")]
    pub runtime_version: Option<String>,
    /// Runtime version ARN.
    #[serde(default, skip_serializing_if = "none")]
    pub runtime_version_arn: Option<String>,
    /// Function name.
    #[serde(default, skip_serializing_if = "none")]
    pub function_name: Option<String>,
    /// Function version.
    #[serde(default, skip_serializing_if = "none")]
    pub function_version: Option<String>,
    /// Fields this model does not name.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}
impl Required for InitStart {}

/// `platform.initRuntimeDone`: the runtime finished its init (first `next`, or an error).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InitRuntimeDone {
    /// Initialization type.
    #[serde(default, skip_serializing_if = "none")]
    pub initialization_type: Option<String>,
    /// Phase.
    #[serde(default, skip_serializing_if = "none")]
    pub phase: Option<String>,
    /// `success`, `error`, `failure` or `timeout`.
    #[serde(default, skip_serializing_if = "none")]
    pub status: Option<String>,
    /// Error type when not successful.
    #[serde(default, skip_serializing_if = "none")]
    pub error_type: Option<String>,
    /// Spans.
    #[serde(default, skip_serializing_if = "none")]
    pub spans: Option<Vec<Span>>,
    /// Fields this model does not name.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}
impl Required for InitRuntimeDone {}

/// `metrics` of `platform.initReport` and `platform.restoreReport`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct PhaseMetrics {
    /// Duration of the phase, milliseconds.
    #[serde(default, skip_serializing_if = "none")]
    pub duration_ms: Option<f64>,
    /// Fields this model does not name.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `platform.initReport`: the init phase's outcome and duration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct InitReport {
    /// Initialization type.
    #[serde(default, skip_serializing_if = "none")]
    pub initialization_type: Option<String>,
    /// Phase.
    #[serde(default, skip_serializing_if = "none")]
    pub phase: Option<String>,
    /// Status (newer schemas).
    #[serde(default, skip_serializing_if = "none")]
    pub status: Option<String>,
    /// Error type when not successful.
    #[serde(default, skip_serializing_if = "none")]
    pub error_type: Option<String>,
    /// Metrics.
    #[serde(default, skip_serializing_if = "none")]
    pub metrics: Option<PhaseMetrics>,
    /// Spans.
    #[serde(default, skip_serializing_if = "none")]
    pub spans: Option<Vec<Span>>,
    /// Fields this model does not name.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}
impl Required for InitReport {
    fn has_required(&self) -> bool {
        self.metrics
            .as_ref()
            .is_some_and(|m| m.duration_ms.is_some())
    }
}

/// `platform.start`: an invocation began.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Start {
    /// Request id.
    #[serde(default, skip_serializing_if = "none")]
    pub request_id: Option<String>,
    /// Function version.
    #[serde(default, skip_serializing_if = "none")]
    pub version: Option<String>,
    /// Trace context.
    #[serde(default, skip_serializing_if = "none")]
    pub tracing: Option<Tracing>,
    /// Fields this model does not name.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}
impl Required for Start {
    fn has_required(&self) -> bool {
        self.request_id.is_some()
    }
}

/// `metrics` of `platform.runtimeDone`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeDoneMetrics {
    /// From the invocation's start to the runtime's next `next`, milliseconds.
    #[serde(default, skip_serializing_if = "none")]
    pub duration_ms: Option<f64>,
    /// Size of the response, bytes.
    #[serde(
        default,
        skip_serializing_if = "none",
        deserialize_with = "lenient_u64"
    )]
    pub produced_bytes: Option<u64>,
    /// Fields this model does not name.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `platform.runtimeDone`: the runtime finished an invocation.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RuntimeDone {
    /// Request id.
    #[serde(default, skip_serializing_if = "none")]
    pub request_id: Option<String>,
    /// `success`, `error`, `failure` or `timeout`.
    #[serde(default, skip_serializing_if = "none")]
    pub status: Option<String>,
    /// Error type when not successful.
    #[serde(default, skip_serializing_if = "none")]
    pub error_type: Option<String>,
    /// Metrics.
    #[serde(default, skip_serializing_if = "none")]
    pub metrics: Option<RuntimeDoneMetrics>,
    /// Spans: `responseLatency`, `responseDuration`, `runtimeOverhead`.
    #[serde(default, skip_serializing_if = "none")]
    pub spans: Option<Vec<Span>>,
    /// Trace context.
    #[serde(default, skip_serializing_if = "none")]
    pub tracing: Option<Tracing>,
    /// Fields this model does not name.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}
impl Required for RuntimeDone {
    fn has_required(&self) -> bool {
        self.request_id.is_some() && self.status.is_some()
    }
}

/// `metrics` of `platform.report`.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ReportMetrics {
    /// Invocation duration including extensions' post-invocation work, milliseconds.
    #[serde(default, skip_serializing_if = "none")]
    pub duration_ms: Option<f64>,
    /// Billed duration, whole milliseconds.
    #[serde(
        default,
        skip_serializing_if = "none",
        deserialize_with = "lenient_u64"
    )]
    pub billed_duration_ms: Option<u64>,
    /// Configured memory, MB.
    #[serde(
        default,
        rename = "memorySizeMB",
        skip_serializing_if = "none",
        deserialize_with = "lenient_u64"
    )]
    pub memory_size_mb: Option<u64>,
    /// Peak memory of the execution environment so far, MB.
    #[serde(
        default,
        rename = "maxMemoryUsedMB",
        skip_serializing_if = "none",
        deserialize_with = "lenient_u64"
    )]
    pub max_memory_used_mb: Option<u64>,
    /// Init duration, on the first report of an environment, milliseconds.
    #[serde(default, skip_serializing_if = "none")]
    pub init_duration_ms: Option<f64>,
    /// Restore duration (SnapStart), milliseconds.
    #[serde(default, skip_serializing_if = "none")]
    pub restore_duration_ms: Option<f64>,
    /// Billed restore duration (SnapStart), milliseconds.
    #[serde(
        default,
        skip_serializing_if = "none",
        deserialize_with = "lenient_u64"
    )]
    pub billed_restore_duration_ms: Option<u64>,
    /// Fields this model does not name.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}

/// `platform.report`: an invocation's final figures.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Report {
    /// Request id.
    #[serde(default, skip_serializing_if = "none")]
    pub request_id: Option<String>,
    /// `success`, `error`, `failure` or `timeout`.
    #[serde(default, skip_serializing_if = "none")]
    pub status: Option<String>,
    /// Error type when not successful.
    #[serde(default, skip_serializing_if = "none")]
    pub error_type: Option<String>,
    /// Metrics.
    #[serde(default, skip_serializing_if = "none")]
    pub metrics: Option<ReportMetrics>,
    /// Spans.
    #[serde(default, skip_serializing_if = "none")]
    pub spans: Option<Vec<Span>>,
    /// Trace context.
    #[serde(default, skip_serializing_if = "none")]
    pub tracing: Option<Tracing>,
    /// Fields this model does not name.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}
impl Required for Report {
    fn has_required(&self) -> bool {
        self.request_id.is_some()
            && self
                .metrics
                .as_ref()
                .is_some_and(|m| m.duration_ms.is_some())
    }
}

/// `platform.restoreStart` (SnapStart).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestoreStart {
    /// Runtime version.
    #[serde(default, skip_serializing_if = "none")]
    pub runtime_version: Option<String>,
    /// Runtime version ARN.
    #[serde(default, skip_serializing_if = "none")]
    pub runtime_version_arn: Option<String>,
    /// Function name.
    #[serde(default, skip_serializing_if = "none")]
    pub function_name: Option<String>,
    /// Function version.
    #[serde(default, skip_serializing_if = "none")]
    pub function_version: Option<String>,
    /// Fields this model does not name.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}
impl Required for RestoreStart {}

/// `platform.restoreRuntimeDone` (SnapStart).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestoreRuntimeDone {
    /// Status.
    #[serde(default, skip_serializing_if = "none")]
    pub status: Option<String>,
    /// Error type when not successful.
    #[serde(default, skip_serializing_if = "none")]
    pub error_type: Option<String>,
    /// Spans.
    #[serde(default, skip_serializing_if = "none")]
    pub spans: Option<Vec<Span>>,
    /// Fields this model does not name.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}
impl Required for RestoreRuntimeDone {}

/// `platform.restoreReport` (SnapStart).
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct RestoreReport {
    /// Status.
    #[serde(default, skip_serializing_if = "none")]
    pub status: Option<String>,
    /// Error type when not successful.
    #[serde(default, skip_serializing_if = "none")]
    pub error_type: Option<String>,
    /// Metrics.
    #[serde(default, skip_serializing_if = "none")]
    pub metrics: Option<PhaseMetrics>,
    /// Spans.
    #[serde(default, skip_serializing_if = "none")]
    pub spans: Option<Vec<Span>>,
    /// Fields this model does not name.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}
impl Required for RestoreReport {}

/// `platform.extension`: an extension's registration.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ExtensionState {
    /// Extension name.
    #[serde(default, skip_serializing_if = "none")]
    pub name: Option<String>,
    /// `Ready`, …
    #[serde(default, skip_serializing_if = "none")]
    pub state: Option<String>,
    /// Events it registered for (`INVOKE`, `SHUTDOWN`).
    #[serde(default, skip_serializing_if = "none")]
    pub events: Option<Vec<String>>,
    /// Error type, if its init failed.
    #[serde(default, skip_serializing_if = "none")]
    pub error_type: Option<String>,
    /// Fields this model does not name.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}
impl Required for ExtensionState {}

/// `platform.telemetrySubscription`: an extension subscribed to the Telemetry API.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct TelemetrySubscription {
    /// Extension name.
    #[serde(default, skip_serializing_if = "none")]
    pub name: Option<String>,
    /// `Subscribed`, …
    #[serde(default, skip_serializing_if = "none")]
    pub state: Option<String>,
    /// Types subscribed to (`platform`, `function`, `extension`).
    #[serde(default, skip_serializing_if = "none")]
    pub types: Option<Vec<String>>,
    /// Fields this model does not name.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}
impl Required for TelemetrySubscription {}

/// `platform.logsDropped`: events Lambda dropped because a subscriber fell behind.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct LogsDropped {
    /// Why.
    #[serde(default, skip_serializing_if = "none")]
    pub reason: Option<String>,
    /// Events dropped.
    #[serde(
        default,
        skip_serializing_if = "none",
        deserialize_with = "lenient_u64"
    )]
    pub dropped_records: Option<u64>,
    /// Bytes dropped.
    #[serde(
        default,
        skip_serializing_if = "none",
        deserialize_with = "lenient_u64"
    )]
    pub dropped_bytes: Option<u64>,
    /// Fields this model does not name.
    #[serde(flatten)]
    pub extra: Map<String, Value>,
}
impl Required for LogsDropped {}

/// What parsing one or more batches found.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ParseStats {
    /// Batches read.
    pub batches: u64,
    /// Bodies that were not a JSON array (their events are lost; nothing else is).
    pub invalid_batches: u64,
    /// Events read (every kind below included).
    pub events: u64,
    /// Events typed but missing a field Lambda always sends.
    pub incomplete: u64,
    /// Events of an unknown type, kept raw.
    pub unknown_type: u64,
    /// Events that did not have the expected shape, kept raw.
    pub malformed: u64,
}

impl ParseStats {
    /// Adds another batch's counts to these.
    pub fn add(&mut self, other: &ParseStats) {
        self.batches += other.batches;
        self.invalid_batches += other.invalid_batches;
        self.events += other.events;
        self.incomplete += other.incomplete;
        self.unknown_type += other.unknown_type;
        self.malformed += other.malformed;
    }
}

/// Parses one POST body of the Telemetry API. Never fails, never panics.
///
/// ```
/// use pyrometer::sources::telemetry::{parse_batch, Record};
/// let body = br#"[{"time":"2022-10-21T14:05:03.165Z","type":"platform.start","record":{"requestId":"r1"}},
///                 {"time":"2022-10-21T14:05:03.166Z","type":"platform.fromTheFuture","record":{}}]"#;
/// let (events, stats) = parse_batch(body);
/// assert_eq!(events.len(), 2);
/// assert!(matches!(events[0].record, Record::Start(_)));
/// assert_eq!(stats.unknown_type, 1);
/// ```
pub fn parse_batch(body: &[u8]) -> (Vec<TelemetryEvent>, ParseStats) {
    let mut stats = ParseStats {
        batches: 1,
        ..ParseStats::default()
    };
    let items = match serde_json::from_slice::<Value>(body) {
        Ok(Value::Array(items)) => items,
        _ => {
            stats.invalid_batches = 1;
            return (Vec::new(), stats);
        }
    };
    let mut events = Vec::with_capacity(items.len());
    for item in items {
        let (event, quality) = TelemetryEvent::from_value(item);
        stats.events += 1;
        match quality {
            EventQuality::Complete => {}
            EventQuality::Incomplete => stats.incomplete += 1,
            EventQuality::UnknownType => stats.unknown_type += 1,
            EventQuality::Malformed => stats.malformed += 1,
        }
        events.push(event);
    }
    (events, stats)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn one(json: &str) -> (TelemetryEvent, EventQuality) {
        let value: Value = serde_json::from_str(json).expect("test JSON");
        TelemetryEvent::from_value(value)
    }

    #[test]
    fn report_metrics_accept_floats_for_integers_and_serialise_integers() {
        let (event, quality) = one(
            r#"{"time":"2022-10-21T14:05:05.766Z","type":"platform.report","record":{"requestId":"r",
               "metrics":{"durationMs":2599.4,"billedDurationMs":2600.0,"memorySizeMB":128,"maxMemoryUsedMB":94}}}"#,
        );
        assert_eq!(quality, EventQuality::Complete);
        let Record::Report(report) = &event.record else {
            panic!("not a report: {event:?}")
        };
        let metrics = report.metrics.as_ref().expect("metrics");
        assert_eq!(metrics.billed_duration_ms, Some(2600));
        let json = serde_json::to_value(&event).expect("serialise");
        assert_eq!(
            json["record"]["metrics"]["billedDurationMs"],
            serde_json::json!(2600)
        );
    }

    #[test]
    fn wrong_field_types_keep_the_event_raw() {
        let (event, quality) =
            one(r#"{"time":"t","type":"platform.start","record":{"requestId":42}}"#);
        assert_eq!(quality, EventQuality::Malformed);
        assert_eq!(event.event_type(), "platform.start");
        assert!(matches!(event.record, Record::Raw(_)));
        // Re-serialised exactly as it came.
        let json = serde_json::to_value(&event).expect("serialise");
        assert_eq!(json["record"]["requestId"], serde_json::json!(42));
    }

    #[test]
    fn unknown_fields_survive_a_round_trip() {
        let input = r#"{"time":"t","type":"platform.initStart","record":{"initializationType":"on-demand","phase":"init","instanceId":"abc","instanceMaxMemory":3008}}"#;
        let (event, quality) = one(input);
        assert_eq!(quality, EventQuality::Complete);
        let back = serde_json::to_value(&event).expect("serialise");
        assert_eq!(
            back,
            serde_json::from_str::<Value>(input).expect("test JSON")
        );
    }

    #[test]
    fn missing_required_fields_are_incomplete_not_fatal() {
        let (_, quality) =
            one(r#"{"time":"t","type":"platform.report","record":{"requestId":"r"}}"#);
        assert_eq!(quality, EventQuality::Incomplete);
        let (event, quality) = one(r#"{"type":"function","record":"hello"}"#);
        assert_eq!(quality, EventQuality::Incomplete);
        assert_eq!(
            event.record,
            Record::FunctionLog(Value::String("hello".into()))
        );
    }

    #[test]
    fn garbage_batches_are_counted() {
        for body in [
            &b""[..],
            b"{}",
            b"not json",
            b"[1, \"two\", null, {}]",
            b"\xff\xfe",
        ] {
            let (_, stats) = parse_batch(body);
            assert_eq!(stats.batches, 1);
            assert!(
                stats.invalid_batches + stats.malformed + stats.unknown_type >= 1,
                "{body:?}"
            );
        }
    }
}

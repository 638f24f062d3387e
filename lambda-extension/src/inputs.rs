//! The one channel every source feeds: telemetry events from the listener's
//! forwarding thread and decoded probe datagrams from the probe's reader
//! thread. The lifecycle loop waits on it with `recv_timeout`, so it wakes
//! exactly when something arrives or its bound runs out — no polling.

use std::sync::mpsc::{Receiver, SyncSender, sync_channel};

use pyrometer::sources::probe::{ProbeMessage, RejectReason};
use pyrometer::sources::telemetry::TelemetryEvent;

/// Inputs held between the sources and the loop; when full, sources wait
/// (and the telemetry listener's own bounded channel drops and counts).
const CHANNEL_CAPACITY: usize = 4096;

/// One input for the collector.
#[derive(Debug)]
pub(crate) enum Input {
    /// A Telemetry API event.
    Telemetry(Box<TelemetryEvent>),
    /// A decoded probe message.
    Probe(Box<ProbeMessage>),
    /// A probe datagram the decoder rejected.
    ProbeRejected(RejectReason),
}

/// The sending and receiving ends.
pub(crate) fn channel() -> (SyncSender<Input>, Receiver<Input>) {
    sync_channel(CHANNEL_CAPACITY)
}

//! [`Clock`]: one monotonic clock for durations, anchored once to the wall
//! clock so that every timestamp the emulator writes (`time`, span `start`,
//! `deadlineMs`) agrees with the durations it reports, even if the system
//! clock is stepped while it runs.

use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use crate::sources::telemetry::format_timestamp;

/// Monotonic instants, convertible to wall-clock time.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Clock {
    anchor: Instant,
    anchor_wall: SystemTime,
}

impl Clock {
    pub(crate) fn new() -> Self {
        Clock {
            anchor: Instant::now(),
            anchor_wall: SystemTime::now(),
        }
    }

    pub(crate) fn now(&self) -> Instant {
        Instant::now()
    }

    /// The wall-clock time of a monotonic instant.
    pub(crate) fn wall(&self, at: Instant) -> SystemTime {
        match at.checked_duration_since(self.anchor) {
            Some(after) => self.anchor_wall + after,
            None => self.anchor_wall - self.anchor.duration_since(at),
        }
    }

    /// Milliseconds since the Unix epoch (fractional).
    pub(crate) fn unix_ms(&self, at: Instant) -> f64 {
        self.wall(at)
            .duration_since(UNIX_EPOCH)
            .unwrap_or(Duration::ZERO)
            .as_secs_f64()
            * 1000.0
    }

    /// Whole milliseconds since the Unix epoch, as `deadlineMs` carries them.
    pub(crate) fn unix_ms_u64(&self, at: Instant) -> u64 {
        self.wall(at)
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_millis() as u64)
            .unwrap_or(0)
    }

    /// The Telemetry API timestamp of an instant.
    pub(crate) fn timestamp(&self, at: Instant) -> String {
        format_timestamp(self.wall(at))
    }
}

/// A duration in milliseconds with microsecond precision, as Lambda writes them.
pub(crate) fn millis(d: Duration) -> f64 {
    d.as_micros() as f64 / 1000.0
}

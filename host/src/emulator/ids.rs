//! Identifiers the emulator hands out: request ids, extension ids, X-Ray
//! trace headers and log stream names, in the formats Lambda uses.
//!
//! They need to be unique, not unpredictable: the bits come from std's
//! randomly keyed SipHash over a process-wide counter and the time.

use std::collections::hash_map::RandomState;
use std::hash::{BuildHasher, Hasher};
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{SystemTime, UNIX_EPOCH};

static COUNTER: AtomicU64 = AtomicU64::new(0);

fn random_u64() -> u64 {
    let mut hasher = RandomState::new().build_hasher();
    hasher.write_u64(COUNTER.fetch_add(1, Ordering::Relaxed));
    hasher.write_u128(
        SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or(0),
    );
    hasher.finish()
}

/// A version-4 UUID, `8-4-4-4-12` lowercase hex (request and extension ids).
pub(crate) fn uuid() -> String {
    let hi = (random_u64() & 0xffff_ffff_ffff_0fff) | 0x0000_0000_0000_4000;
    let lo = (random_u64() & 0x3fff_ffff_ffff_ffff) | 0x8000_0000_0000_0000;
    format!(
        "{:08x}-{:04x}-{:04x}-{:04x}-{:012x}",
        hi >> 32,
        (hi >> 16) & 0xffff,
        hi & 0xffff,
        lo >> 48,
        lo & 0xffff_ffff_ffff
    )
}

/// An invocation's X-Ray context: the header value and the span id.
#[derive(Debug, Clone)]
pub(crate) struct Trace {
    /// `Root=1-<epoch hex>-<96-bit hex>;Parent=<64-bit hex>;Sampled=0`.
    pub(crate) header: String,
    /// The parent segment id, also the telemetry `spanId`.
    pub(crate) span_id: String,
}

pub(crate) fn trace(unix_secs: u64) -> Trace {
    let span_id = format!("{:016x}", random_u64());
    let root = format!(
        "1-{:08x}-{:08x}{:016x}",
        unix_secs as u32,
        random_u64() as u32,
        random_u64()
    );
    // Sampled=0: nothing here sends segments to an X-Ray daemon.
    Trace {
        header: format!("Root={root};Parent={span_id};Sampled=0"),
        span_id,
    }
}

/// A log stream name as Lambda forms it: `YYYY/MM/DD/[$LATEST]<32 hex>`.
pub(crate) fn log_stream_name(date: &str, version: &str) -> String {
    format!(
        "{date}/[{version}]{:016x}{:016x}",
        random_u64(),
        random_u64()
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uuids_are_v4_and_distinct() {
        let a = uuid();
        let b = uuid();
        assert_ne!(a, b);
        assert_eq!(a.len(), 36);
        assert_eq!(&a[14..15], "4");
        assert!(matches!(&a[19..20], "8" | "9" | "a" | "b"), "{a}");
    }

    #[test]
    fn trace_header_has_lambda_shape() {
        let t = trace(0x6352_a70e);
        assert!(t.header.starts_with("Root=1-6352a70e-"), "{}", t.header);
        assert!(t.header.contains(&format!(";Parent={};", t.span_id)));
        assert_eq!(t.span_id.len(), 16);
    }
}

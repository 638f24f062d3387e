//! Bounded capture of a guest's stdout and stderr.
//!
//! A plugin that prints is not an error, but its output must not grow without
//! bound nor reach the user's function's own stdout (in Lambda that is the
//! function's log stream). Each stream keeps at most `capacity` bytes per call;
//! the rest is accepted, dropped and counted, so the guest never sees a write
//! error (Rust's `println!` panics on one).

use std::sync::{Arc, Mutex, PoisonError};

use bytes::Bytes;
use wasmtime_wasi::cli::{IsTerminal, StdoutStream};
use wasmtime_wasi::p2::{OutputStream, Pollable, StreamResult};

/// Largest write the guest is told it may make at once.
const WRITE_PERMIT_BYTES: usize = 64 * 1024;

/// One captured stream; clones share the same buffer.
#[derive(Clone)]
pub struct CapturedOutput {
    inner: Arc<Mutex<Captured>>,
}

#[derive(Default)]
struct Captured {
    kept: Vec<u8>,
    capacity: usize,
    dropped_bytes: u64,
}

/// What a stream captured since it was last drained.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct Drained {
    /// The bytes kept, at most the capacity.
    pub text: String,
    /// Bytes written beyond the capacity and discarded.
    pub dropped_bytes: u64,
}

impl CapturedOutput {
    /// A stream keeping at most `capacity` bytes between drains.
    pub fn new(capacity: usize) -> Self {
        Self {
            inner: Arc::new(Mutex::new(Captured {
                capacity,
                ..Captured::default()
            })),
        }
    }

    /// Takes what was captured and resets the stream.
    pub fn drain(&self) -> Drained {
        let mut c = self.lock();
        let text = String::from_utf8_lossy(&c.kept).into_owned();
        c.kept.clear();
        Drained {
            text,
            dropped_bytes: std::mem::take(&mut c.dropped_bytes),
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, Captured> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

impl IsTerminal for CapturedOutput {
    fn is_terminal(&self) -> bool {
        false
    }
}

impl StdoutStream for CapturedOutput {
    fn p2_stream(&self) -> Box<dyn OutputStream> {
        Box::new(self.clone())
    }

    fn async_stream(&self) -> Box<dyn tokio::io::AsyncWrite + Send + Sync> {
        // Only WASI 0.2 is linked (see sandbox.rs); nothing asks for the async
        // (WASI 0.3) view, which would discard everything.
        Box::new(tokio::io::sink())
    }
}

#[wasmtime_wasi::async_trait]
impl Pollable for CapturedOutput {
    async fn ready(&mut self) {}
}

impl OutputStream for CapturedOutput {
    fn write(&mut self, bytes: Bytes) -> StreamResult<()> {
        let mut c = self.lock();
        let room = c.capacity.saturating_sub(c.kept.len());
        let keep = bytes.len().min(room);
        c.kept.extend_from_slice(&bytes[..keep]);
        c.dropped_bytes += (bytes.len() - keep) as u64;
        Ok(())
    }

    fn flush(&mut self) -> StreamResult<()> {
        Ok(())
    }

    fn check_write(&mut self) -> StreamResult<usize> {
        Ok(WRITE_PERMIT_BYTES)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn keeps_up_to_capacity_and_counts_the_rest() {
        let out = CapturedOutput::new(4);
        let mut stream = out.p2_stream();
        stream.write(Bytes::from_static(b"abc")).expect("write");
        stream.write(Bytes::from_static(b"defg")).expect("write");
        assert_eq!(
            out.drain(),
            Drained {
                text: "abcd".into(),
                dropped_bytes: 3
            }
        );
        assert_eq!(out.drain(), Drained::default());
    }
}

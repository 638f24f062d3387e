//! The probe's Unix datagram socket, bound by whoever collects: the runtime's
//! probe sends to it (`PYROMETER_PROBE_SOCKET`), we receive and decode.
//!
//! Datagrams enter through [`ProbeSocket::recv`] (one, blocking or not as the
//! socket is set) or [`ProbeSocket::drain_into`] (everything queued, straight
//! into a [`Collector`]); they leave as decoded [`ProbeMessage`]s. What the
//! decoder rejects is counted in its [`DecoderStats`].

use std::io;
use std::os::unix::net::UnixDatagram;
use std::path::Path;

use super::probe::{DecoderStats, MAX_DATAGRAM_BYTES, ProbeDecoder, ProbeMessage, RejectReason};
use crate::collector::Collector;

/// A bound probe socket and its decoder.
#[derive(Debug)]
pub struct ProbeSocket {
    socket: UnixDatagram,
    decoder: ProbeDecoder,
    buf: Vec<u8>,
}

impl ProbeSocket {
    /// Binds `path`, non-blocking. A stale socket file left at `path` by an
    /// earlier process is replaced.
    pub fn bind(path: &Path) -> io::Result<Self> {
        let socket = match UnixDatagram::bind(path) {
            Err(e) if e.kind() == io::ErrorKind::AddrInUse => {
                std::fs::remove_file(path)?;
                UnixDatagram::bind(path)?
            }
            other => other?,
        };
        socket.set_nonblocking(true)?;
        Ok(Self {
            socket,
            decoder: ProbeDecoder::new(),
            buf: vec![0; MAX_DATAGRAM_BYTES + 1],
        })
    }

    /// Makes [`Self::recv`] wait for a datagram (for a dedicated reader thread).
    pub fn set_blocking(&self, blocking: bool) -> io::Result<()> {
        self.socket.set_nonblocking(!blocking)
    }

    /// Bounds how long a blocking [`Self::recv`] waits (`None`: forever), so
    /// a reader thread can look up from the socket now and then.
    pub fn set_read_timeout(&self, timeout: Option<std::time::Duration>) -> io::Result<()> {
        self.socket.set_read_timeout(timeout)
    }

    /// Receives and decodes one datagram. The outer error is the socket's
    /// (`WouldBlock` when non-blocking and empty); the inner one is a datagram
    /// the decoder rejected; `Ok(Ok(None))` a profile chunk awaiting the rest.
    pub fn recv(&mut self) -> io::Result<Result<Option<ProbeMessage>, RejectReason>> {
        let n = self.socket.recv(&mut self.buf)?;
        Ok(self.decoder.decode(&self.buf[..n]))
    }

    /// Feeds every datagram already queued to the collector. The probe sends
    /// before the runtime posts its response, and a Unix datagram is queued
    /// when `send` returns, so after an invocation returns its records are here.
    pub fn drain_into(&mut self, collector: &mut Collector) {
        while let Ok(decoded) = self.recv() {
            // Rejected datagrams are counted by the decoder.
            if let Ok(Some(message)) = decoded {
                collector.on_probe(message);
            }
        }
    }

    /// What the decoder accepted and rejected.
    pub fn stats(&self) -> &DecoderStats {
        self.decoder.stats()
    }
}

//! The probe's Unix datagram socket, bound by whoever collects: the runtime's
//! probe sends to it (`PYROMETER_PROBE_SOCKET`), we receive and decode.
//!
//! Datagrams enter through [`ProbeSocket::recv`] (one, blocking or not as the
//! socket is set) or [`ProbeSocket::drain_into`] (everything queued, straight
//! into a [`Collector`]); they leave as decoded [`ProbeMessage`]s. What the
//! decoder rejects is counted in its [`DecoderStats`].

use std::io;
use std::net::Shutdown;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use super::probe::{DecoderStats, MAX_DATAGRAM_BYTES, ProbeDecoder, ProbeMessage, RejectReason};
use crate::collector::Collector;

/// A bound probe socket and its decoder.
#[derive(Debug)]
pub struct ProbeSocket {
    socket: UnixDatagram,
    decoder: ProbeDecoder,
    buf: Vec<u8>,
    /// Set by a [`ReadCloser`]: reading has been shut down.
    read_closed: Arc<AtomicBool>,
}

/// Ends reading from a [`ProbeSocket`] from another thread, waking a reader
/// blocked in [`ProbeSocket::recv`] without a timeout to poll on: after
/// [`Self::close`], a blocking `recv` returns the datagrams still queued,
/// then `ErrorKind::UnexpectedEof` (a non-blocking one `WouldBlock`, as
/// before).
#[derive(Debug)]
pub struct ReadCloser {
    socket: UnixDatagram,
    read_closed: Arc<AtomicBool>,
}

impl ReadCloser {
    /// Shuts the socket down for reading (`shutdown(2)`, which wakes a
    /// blocked receiver). Idempotent.
    pub fn close(&self) {
        self.read_closed.store(true, Ordering::Release);
        let _ = self.socket.shutdown(Shutdown::Read);
    }
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
            read_closed: Arc::new(AtomicBool::new(false)),
        })
    }

    /// A handle that ends reading from this socket (see [`ReadCloser`]).
    pub fn read_closer(&self) -> io::Result<ReadCloser> {
        Ok(ReadCloser {
            socket: self.socket.try_clone()?,
            read_closed: Arc::clone(&self.read_closed),
        })
    }

    /// Makes [`Self::recv`] wait for a datagram (for a dedicated reader thread).
    pub fn set_blocking(&self, blocking: bool) -> io::Result<()> {
        self.socket.set_nonblocking(!blocking)
    }

    /// Receives and decodes one datagram. The outer error is the socket's
    /// (`WouldBlock` when non-blocking and empty; when blocking,
    /// `UnexpectedEof` once a [`ReadCloser`] closed it and nothing is
    /// queued); the inner one is a
    /// datagram the decoder rejected; `Ok(Ok(None))` a profile chunk awaiting
    /// the rest.
    pub fn recv(&mut self) -> io::Result<Result<Option<ProbeMessage>, RejectReason>> {
        let n = self.socket.recv(&mut self.buf)?;
        // A shut-down socket reads as empty datagrams once its queue is empty.
        if n == 0 && self.read_closed.load(Ordering::Acquire) {
            return Err(io::ErrorKind::UnexpectedEof.into());
        }
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

#[cfg(test)]
mod tests {
    use super::*;

    fn bound() -> (tempfile::TempDir, std::path::PathBuf, ProbeSocket) {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("probe.sock");
        let socket = ProbeSocket::bind(&path).expect("bind");
        (dir, path, socket)
    }

    #[test]
    fn a_closed_socket_still_yields_what_was_queued_then_ends() {
        let (_dir, path, mut socket) = bound();
        socket.set_blocking(true).expect("blocking");
        let sender = UnixDatagram::unbound().expect("sender");
        for garbage in [&b"not a record"[..], b"nor this"] {
            sender.send_to(garbage, &path).expect("send");
        }
        socket.read_closer().expect("closer").close();
        for _ in 0..2 {
            assert!(
                matches!(socket.recv(), Ok(Err(_))),
                "a queued datagram, rejected"
            );
        }
        let end = socket.recv().expect_err("nothing left");
        assert_eq!(end.kind(), io::ErrorKind::UnexpectedEof);
        assert_eq!(socket.stats().accepted, 0);
    }

    #[test]
    fn closing_wakes_a_blocked_reader() {
        let (_dir, _path, mut socket) = bound();
        socket.set_blocking(true).expect("blocking");
        let closer = socket.read_closer().expect("closer");
        let reader = std::thread::spawn(move || socket.recv().map(|_| ()));
        closer.close();
        let outcome = reader.join().expect("reader thread");
        assert_eq!(
            outcome.expect_err("woken, not fed").kind(),
            io::ErrorKind::UnexpectedEof
        );
    }
}

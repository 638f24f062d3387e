"""Transport: datagrams to the receiver over a non-blocking Unix datagram socket.

Data enters as ``(kind, body)`` from the probe and leaves as one datagram per
call to :meth:`Transport.send`, to the socket named by
``PYROMETER_PROBE_SOCKET``. The header line (see :mod:`.wire`) carries the
process id, a per-process sequence number and the number of datagrams dropped
so far, so a drop always becomes known to the receiver with the next record
that does arrive.

It never waits on the receiver: the socket is non-blocking. When the receive
queue is full (``EAGAIN``; Linux queues only ``net.unix.max_dgram_qlen``
datagrams, 10 by default), the record joins a small backlog (at most
``MAX_BACKLOG_DATAGRAMS``) that is sent, in order, before the next record -- a
receiver that stalls for a few milliseconds loses nothing -- and only a record
that finds the backlog full is dropped and counted. When no receiver is there
(``ENOENT``, ``ECONNREFUSED``) a record is dropped and counted, except the init
records (``keep=True``), which wait in the backlog for a receiver that binds
later; reconnection is tried at most once per second, so a process with no
receiver pays no ``connect`` per record. A sequence number is given when a
datagram leaves or is dropped, so gaps at the receiver are exactly the drops.

The ``_socket`` C module is used directly: ``socket.py`` would import
``selectors`` and ``enum``, which costs time and changes the application's own
import profile.
"""

import _thread
import os
from time import perf_counter_ns

from . import imports as _imports
from . import wire

#: How long to wait before trying to reach a missing receiver again.
RECONNECT_INTERVAL_NS = 1_000_000_000
#: Records waiting for a full or missing receiver, at most.
MAX_BACKLOG_DATAGRAMS = 128

_NO_RECEIVER_ERRNOS = frozenset({2, 111, 107, 89, 104, 32})  # ENOENT ECONNREFUSED ENOTCONN EDESTADDRREQ ECONNRESET EPIPE

_SENT = 0
_FULL = 1
_GONE = 2


class Transport:
    """Sends wire-format records of one process to the receiver socket."""

    def __init__(self, path):
        self.path = path
        self.pid = os.getpid()
        self.dropped = 0
        self._seq = 0
        self._socket = None
        self._next_connect_ns = 0
        self._backlog = []  # (kind, body, keep), oldest first
        self._prefixes = {}  # kind -> the header up to the sequence number
        self._header_tail = (0, "\t0\n")  # (dropped, the header after the sequence number)
        self._lock = _thread.allocate_lock()
        with _imports.muted():
            try:
                import _socket
            except ImportError:  # a build without sockets: every record is dropped
                _socket = None
        self._socket_module = _socket

    def _connect(self):
        now = perf_counter_ns()
        if now < self._next_connect_ns or self._socket_module is None:
            return None
        self._next_connect_ns = now + RECONNECT_INTERVAL_NS
        module = self._socket_module
        kind = module.SOCK_DGRAM | getattr(module, "SOCK_CLOEXEC", 0)
        try:
            sock = module.socket(module.AF_UNIX, kind)
        except OSError:
            return None
        try:
            sock.setblocking(False)
            sock.connect(self.path)
        except OSError:
            sock.close()
            return None
        self._socket = sock
        return sock

    def close(self):
        """Close the socket (the next send reconnects, subject to the retry interval)."""
        sock = self._socket
        self._socket = None
        if sock is not None:
            try:
                sock.close()
            except OSError:
                pass

    def _drop(self):
        self.dropped += 1
        self._seq += 1

    def _try_send(self, sock, kind, body):
        """Send one datagram: _SENT, _FULL (queue full) or _GONE (no receiver)."""
        prefix = self._prefixes.get(kind)
        if prefix is None:
            prefix = self._prefixes[kind] = wire.header_prefix(kind, self.pid)
        tail = self._header_tail
        if tail[0] != self.dropped:
            tail = self._header_tail = (self.dropped, "\t%d\n" % self.dropped)
        # An f-string of strings and one number: the cheapest way to build it.
        text = f"{prefix}{self._seq}{tail[1]}{body}"
        try:
            data = text.encode()
        except UnicodeEncodeError:  # lone surrogates from undecodable file names
            data = text.encode("utf-8", "replace")
        try:
            sock.send(data)
        except BlockingIOError:
            return _FULL
        except OSError as error:
            if error.errno in _NO_RECEIVER_ERRNOS:
                self.close()
                self._next_connect_ns = perf_counter_ns() + RECONNECT_INTERVAL_NS
                return _GONE
            self._drop()  # e.g. EMSGSIZE: this datagram can never be sent
            return _SENT
        self._seq += 1
        return _SENT

    def _flush_backlog(self, sock):
        """Send waiting records in order; True if the backlog is now empty."""
        backlog = self._backlog
        while backlog:
            kind, body, keep = backlog[0]
            status = self._try_send(sock, kind, body)
            if status == _SENT:
                del backlog[0]
            elif status == _FULL:
                return False
            else:
                self._forget_unkept()
                return False
        return True

    def _forget_unkept(self):
        """The receiver is gone: only the init records keep waiting."""
        kept = []
        for entry in self._backlog:
            if entry[2]:
                kept.append(entry)
            else:
                self._drop()
        self._backlog = kept

    def _wait(self, kind, body, keep):
        if len(self._backlog) < MAX_BACKLOG_DATAGRAMS:
            self._backlog.append((kind, body, keep))
        else:
            self._drop()
        return False

    def send(self, kind, body, keep=False):
        """Send one record; True if it left now, False if it waits or was dropped.

        Never raises, never waits on the receiver.
        """
        try:
            # acquire/release: half the cost of ``with`` on this per-invocation path
            lock = self._lock
            lock.acquire()
            try:
                sock = self._socket or self._connect()
                if sock is None:
                    if keep:
                        return self._wait(kind, body, keep)
                    self._drop()
                    return False
                if self._backlog and not self._flush_backlog(sock):
                    if self._socket is None and not keep:
                        self._drop()
                        return False
                    return self._wait(kind, body, keep)
                status = self._try_send(sock, kind, body)
                if status == _SENT:
                    return True
                if status == _FULL or keep:
                    return self._wait(kind, body, keep)
                self._drop()
                return False
            finally:
                lock.release()
        except Exception:
            self.dropped += 1
            return False

    def waiting(self):
        """Records in the backlog."""
        return len(self._backlog)

    def flush(self):
        """Try once more to send the backlog, reconnecting now if needed (at exit)."""
        with self._lock:
            if not self._backlog:
                return
            if self._socket is None:
                self._next_connect_ns = 0
            sock = self._socket or self._connect()
            if sock is not None:
                self._flush_backlog(sock)

    def discard_backlog(self):
        """Count the records still waiting as dropped and forget them (at exit). Returns how many."""
        with self._lock:
            count = len(self._backlog)
            for _ in range(count):
                self._drop()
            self._backlog = []
            return count

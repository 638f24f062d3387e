"""Transport: datagrams to the receiver over a non-blocking Unix datagram socket.

Data enters as ``(kind, body)`` from the probe and leaves as one datagram per
call to :meth:`Transport.send`, to the socket named by
``PYROMETER_PROBE_SOCKET``. The header line (see :mod:`.wire`) carries the
process id, a per-process sequence number and the number of datagrams dropped
so far, so a drop always becomes known to the receiver with the next record
that does arrive.

It never waits: the socket is non-blocking, so a full receive queue
(``EAGAIN``) drops the datagram and counts it; a missing or closed receiver
(``ENOENT``, ``ECONNREFUSED``) does the same, and reconnection is attempted at
most once per second so a process with no receiver pays one failed ``send``
check per record, not a ``connect`` each time. Records of the init phase are
sent with ``keep=True``: if no receiver is there yet, up to
``MAX_KEPT_DATAGRAMS`` of them wait and are sent before the next record once a
receiver is reachable (they are counted as dropped only if they never leave).

The ``_socket`` C module is used directly: ``socket.py`` would import
``selectors`` and ``enum``, which costs time and changes the application's own
import profile.
"""

import itertools
import os
from time import perf_counter_ns

from . import imports as _imports
from . import wire

#: How long to wait before trying to reach a missing receiver again.
RECONNECT_INTERVAL_NS = 1_000_000_000
#: Init-phase datagrams kept while no receiver is reachable.
MAX_KEPT_DATAGRAMS = 64

_NO_RECEIVER_ERRNOS = frozenset({2, 111, 107, 89, 104, 32})  # ENOENT ECONNREFUSED ENOTCONN EDESTADDRREQ ECONNRESET EPIPE


class Transport:
    """Sends wire-format records of one process to the receiver socket."""

    def __init__(self, path):
        self.path = path
        self.pid = os.getpid()
        self.dropped = 0
        self._seq = itertools.count()
        self._socket = None
        self._next_connect_ns = 0
        self._kept = []
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

    def _transmit(self, sock, kind, body):
        """Send one datagram; returns True, False (dropped) or None (no receiver)."""
        data = (wire.header(kind, self.pid, next(self._seq), self.dropped) + body).encode("utf-8", "replace")
        try:
            sock.send(data)
            return True
        except BlockingIOError:  # receive queue full
            return False
        except OSError as error:
            if error.errno in _NO_RECEIVER_ERRNOS:
                self.close()
                self._next_connect_ns = perf_counter_ns() + RECONNECT_INTERVAL_NS
            return False

    def send(self, kind, body, keep=False):
        """Send one record; True if it left, False if it was dropped (or kept).

        Never raises.
        """
        try:
            sock = self._socket
            if sock is None:
                sock = self._connect()
                if sock is None:
                    if keep and len(self._kept) < MAX_KEPT_DATAGRAMS:
                        self._kept.append((kind, body))
                    else:
                        next(self._seq)
                        self._drop()
                    return False
            if self._kept:
                self._send_kept(sock)
            if self._transmit(sock, kind, body):
                return True
            self._drop()
            return False
        except Exception:
            self._drop()
            return False

    def _send_kept(self, sock):
        kept = self._kept
        self._kept = []
        for kind, body in kept:
            if not self._transmit(sock, kind, body):
                self._drop()

    def discard_kept(self):
        """Count kept datagrams as dropped and forget them (at exit). Returns how many."""
        count = len(self._kept)
        for _ in range(count):
            next(self._seq)
            self._drop()
        self._kept = []
        return count

    def flush_kept(self):
        """Try once more to send the kept datagrams (at exit, before giving up on them)."""
        if not self._kept:
            return
        sock = self._socket or self._connect_now()
        if sock is not None:
            self._send_kept(sock)

    def _connect_now(self):
        self._next_connect_ns = 0
        return self._connect()

"""HTTP request aggregation: per-window latency histograms, sent as ``http`` records.

Data enters from the WSGI/ASGI middleware (:mod:`.middleware`), two calls per
request: :func:`request_started` (the in-flight gauge goes up) and
:func:`request_finished` (the request joins its series). A series is one
``(method, route template, status)`` of one framework; per window it holds a
count, the sum and maximum of the durations in µs and non-cumulative bucket
counts over :data:`BOUNDS_US`. Data leaves as ``http`` records (see
PROTOCOL.md), sent every ``PYROMETER_HTTP_FLUSH_MS`` (default 1 000) by a
daemon thread started at the first request of each process, and once more at
exit, before the ``exit`` record. A window with no completed request and
nothing in flight sends nothing.

The per-request path is a few integer operations: no allocation beyond the
series key, no system call, and one lock held only for the dictionary update.
The first completed request of a process is its "ready" time
(``first_response_unix_us``); if the process has not sent its ``init`` record
yet, it marks the application ready then (``ready_reason`` ``request``), which
sends the import profile.

Cardinality is bounded: methods outside the standard ones become ``_OTHER``,
and a process admits at most :data:`MAX_SERIES` distinct series; the requests
of any further one are counted in the series of route :data:`OTHER_ROUTE`
(same method and status).

A forked child (a gunicorn worker) starts with empty windows, no flush
thread and no first request: its parent reports what it served itself. The
thread starts at the first request, so a server that forks its workers
before serving (gunicorn, uWSGI) forks a process without it.
"""

import os
import _thread
from bisect import bisect_left
from time import perf_counter_ns, time_ns

from . import process, runtime, wire

#: Upper bounds of the duration buckets, µs: OpenTelemetry's default for
#: ``http.server.request.duration`` (0.005 s .. 10 s). A bucket counts the
#: durations above the previous bound, up to and including its own; one more
#: bucket counts those above the last bound.
BOUNDS_US = (
    5_000, 10_000, 25_000, 50_000, 75_000, 100_000, 250_000, 500_000,
    750_000, 1_000_000, 2_500_000, 5_000_000, 7_500_000, 10_000_000,
)  # fmt: skip
#: Distinct series a process admits; later ones are counted under OTHER_ROUTE.
MAX_SERIES = 256
#: Route label of requests no route matched (a 404 from the router).
UNMATCHED_ROUTE = "<unmatched>"
#: Route label of requests whose series did not fit under MAX_SERIES.
OTHER_ROUTE = "<other>"
#: Method label of non-standard methods.
OTHER_METHOD = "_OTHER"
#: Methods kept as they are (RFC 9110 and PATCH); any other is OTHER_METHOD.
METHODS = frozenset(("GET", "HEAD", "POST", "PUT", "DELETE", "CONNECT", "OPTIONS", "TRACE", "PATCH"))

#: Time between two ``http`` records, ns (``PYROMETER_HTTP_FLUSH_MS``, default 1 000).
FLUSH_INTERVAL_NS = 1_000_000_000
try:
    FLUSH_INTERVAL_NS = max(10_000_000, int(float(os.environ.get("PYROMETER_HTTP_FLUSH_MS", "1000")) * 1_000_000))
except (ValueError, OverflowError):
    pass

# Per series: [count, sum_us, max_us, bucket 0, .., bucket len(BOUNDS_US)].
_FIRST_BUCKET = 3
_SERIES_SLOTS = _FIRST_BUCKET + len(BOUNDS_US) + 1


class HttpWindow:
    """The requests one framework served in the current window, by series.

    ``series`` maps ``(method, route, status)`` to the counters above; it is
    replaced by an empty dictionary at each flush. ``in_flight`` holds one
    entry per request begun and not finished (appending to and popping from
    a list is atomic, so the gauge needs no lock). ``loop`` and ``monitor``
    are the asyncio event loop an ASGI app last ran on and its lag monitor.
    """

    __slots__ = ("framework", "series", "admitted", "in_flight", "loop", "monitor")

    def __init__(self, framework):
        self.framework = framework
        self.series = {}
        self.admitted = set()
        self.in_flight = []
        self.loop = None
        self.monitor = None

    def reset(self):
        """Forget everything (in a forked child: the parent reports its own requests)."""
        self.series = {}
        self.admitted = set()
        self.in_flight = []
        self.loop = None
        self.monitor = None


_windows = {}  # framework -> HttpWindow
# Held for each series update; the flush swaps the series dictionary under it.
_lock = _thread.allocate_lock()
# Held through a whole flush, so a window is never sent after the exit record.
_flush_lock = _thread.allocate_lock()
# [flush thread started, exit flush done, first response unix µs or None]
_life = [False, False, None]


def window(framework):
    """The window of ``framework``, created on first use."""
    with _lock:
        current = _windows.get(framework)
        if current is None:
            current = _windows[framework] = HttpWindow(framework)
        return current


def request_started(http_window):
    """A request began: count it in flight, start the flush thread if due; returns its start (ns)."""
    http_window.in_flight.append(None)
    if not _life[0]:
        _start_flusher()
    return perf_counter_ns()


def request_finished(http_window, method, route, status, started_ns):
    """A request ended: add it to its series of the current window. Never raises."""
    try:
        finished = perf_counter_ns()
        elapsed_us = (finished - started_ns) // 1000
        if method not in METHODS:
            method = OTHER_METHOD
        key = (method, route, status)
        bucket = _FIRST_BUCKET + bisect_left(BOUNDS_US, elapsed_us)
        with _lock:
            counters = http_window.series.get(key)
            if counters is None:
                counters = _new_series(http_window, key)
            counters[0] += 1
            counters[1] += elapsed_us
            if elapsed_us > counters[2]:
                counters[2] = elapsed_us
            counters[bucket] += 1
            first = _life[2] is None
            if first:
                _life[2] = time_ns() // 1000
        in_flight = http_window.in_flight
        if in_flight:  # empty only for a request begun before a fork reset the gauge
            in_flight.pop()
        if first:
            if not process.state.init_sent:
                process.mark_ready("request")
            else:
                process.send_fork_imports()
    except Exception:
        pass


def _new_series(http_window, key):
    """Counters for a key not yet in this window (called under _lock)."""
    admitted = http_window.admitted
    if key not in admitted:
        if len(admitted) < MAX_SERIES:
            admitted.add(key)
        else:
            key = (key[0], OTHER_ROUTE, key[2])
            counters = http_window.series.get(key)
            if counters is not None:
                return counters
    counters = http_window.series[key] = [0] * _SERIES_SLOTS
    return counters


def watch_loop(http_window, loop):
    """Monitor the lag of ``loop``, the event loop an ASGI request runs on (once per loop)."""
    try:
        http_window.monitor = runtime.running_loop_monitor(loop)
        http_window.loop = loop
    except Exception:
        pass


def take_window(http_window, window_end_unix_us):
    """Body lines of ``http_window``'s record, or [] when there is nothing to send; starts a new window."""
    in_flight = len(http_window.in_flight)
    monitor = http_window.monitor
    # Taken even when nothing is sent: the lag reported is this window's.
    lag_us, pending = monitor.take() if monitor is not None else (None, None)
    with _lock:
        series = http_window.series
        if not series and not in_flight:
            return []
        http_window.series = {}
    rows = [
        (method, route, status, counters[0], counters[1], counters[2], counters[_FIRST_BUCKET:])
        for (method, route, status), counters in series.items()
    ]
    return wire.http_bodies(
        http_window.framework,
        window_end_unix_us,
        _life[2],
        in_flight,
        lag_us,
        pending,
        BOUNDS_US,
        rows,
    )


def flush(final=False):
    """Send one ``http`` record per framework whose window has something; ``final`` at exit.

    After the final flush nothing more is sent. Never raises.
    """
    if not process.state.enabled:
        return
    try:
        with _flush_lock:
            if _life[1]:
                return
            if final:
                _life[1] = True
            window_end_unix_us = time_ns() // 1000
            for http_window in list(_windows.values()):
                for body in take_window(http_window, window_end_unix_us):
                    process.send(wire.KIND_HTTP, body)
    except Exception:
        pass


def _start_flusher():
    with _lock:
        if _life[0]:
            return
        _life[0] = True
    if not process.state.enabled:
        return
    try:
        _thread.start_new_thread(_flush_periodically, ())
    except Exception:
        pass


def _flush_periodically():
    """The flush thread: one window every FLUSH_INTERVAL_NS until the exit flush."""
    interval_s = FLUSH_INTERVAL_NS / 1e9
    sleep = _thread.allocate_lock()
    sleep.acquire()  # never released: acquiring it again waits out the interval
    while not _life[1]:
        sleep.acquire(True, interval_s)
        flush()


def at_exit():
    """The last window, sent before the ``exit`` record. Never raises."""
    flush(final=True)


def _after_fork_in_child():
    global _lock, _flush_lock
    # A lock held by another thread at the fork stays held forever in the child.
    _lock = _thread.allocate_lock()
    _flush_lock = _thread.allocate_lock()
    for http_window in _windows.values():
        http_window.reset()
    _life[:] = [False, False, None]


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)

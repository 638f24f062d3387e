"""HTTP request aggregation: per-window latency histograms, sent as ``http`` records.

Data enters from the WSGI/ASGI middleware (:mod:`.middleware`), two steps per
request: :func:`request_started` (the in-flight gauge goes up; the WSGI
wrapper does the same inline) and :func:`request_finished` (the request
joins its series). A series is one
``(method, route template, status)`` of one framework; per window it is
sent as a count, the sum and maximum of the durations in µs and
non-cumulative bucket counts over :data:`BOUNDS_US`. Data leaves as ``http``
records (see PROTOCOL.md), sent every ``PYROMETER_HTTP_FLUSH_MS`` (default
1 000) by a daemon thread started when a process completes its first
request, and once more at exit, before the ``exit`` record. A window with no
completed request and nothing in flight sends nothing.

The per-request path is kept short, as it runs in the application's request
loop: a request appends its duration (ns) to its series' array -- no
bucketing, no division, no system call, no lock (a lock is taken only to
add a series) -- and the flush works the arrays out in C (a sort, one
bisection per bound). The first completed request of a process is its "ready" time
(``first_response_unix_us``); if the process has not sent its ``init`` record
yet, it marks the application ready then (``ready_reason`` ``request``), which
sends the import profile.

Cardinality is bounded: methods outside the standard ones become ``_OTHER``,
and a process admits at most :data:`MAX_SERIES` distinct series; the requests
of any further one are counted in the series of route :data:`OTHER_ROUTE`
(same method and status).

A forked child (a gunicorn worker) starts with empty windows, no flush
thread and no first request: its parent reports what it served itself. The
thread starts at the first completed request, so a server that forks its
workers before serving (gunicorn, uWSGI) forks a process without it.
"""

import os
import _thread
from array import array
from bisect import bisect_left
from collections import deque
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

#: Upper bounds of the buckets in ns, as :func:`_summary` compares them: a
#: duration of ``d`` ns is ``d // 1000`` µs, at most ``b`` µs when below ``(b + 1) * 1000`` ns.
_BOUNDS_NS = tuple((bound + 1) * 1000 for bound in BOUNDS_US)
#: Durations a series keeps before they are folded into its summary: bounds a
#: window's memory should the flush thread fall behind (it runs every second).
FOLD_AT = 8192


class HttpWindow:
    """The requests one framework served in the current window, by series.

    ``series`` maps ``(method, route, status)`` to the durations (ns) of its
    requests, in the order they ended, as an ``array('q')``: a request
    appends 8 bytes (no object kept per request), and the counts, sums and
    buckets are worked out at the flush (:func:`_summary`, in C: a sort and
    one bisection per bound). A series whose array reaches
    :data:`FOLD_AT` is folded into ``folded`` (same key, a summary).

    Requests append without a lock: an array is never replaced, and whoever
    takes durations out of it (the flush, a fold; both under ``_lock``)
    takes the first ``len()`` of them and deletes that prefix, so a request
    that appends meanwhile -- even one that looked its array up before --
    lands after it, in the next window. ``series`` keeps its arrays across
    windows (at most :data:`MAX_SERIES` of them plus the overflow series);
    ``folded`` is replaced by an empty dictionary at each flush.
    ``in_flight`` holds one entry per request begun and not finished
    (appending to and popping from a deque is atomic and never reallocates,
    so the gauge needs no lock). ``loop`` and ``monitor`` are the asyncio
    event loop an ASGI app last ran on and its lag monitor. ``by_server`` is
    true once the server measures this framework's requests itself (see
    :mod:`.gunicorn_requests`): the middleware then passes them through.
    """

    __slots__ = ("framework", "series", "folded", "admitted", "in_flight", "loop", "monitor", "by_server")

    def __init__(self, framework):
        self.framework = framework
        self.reset()

    def reset(self):
        """Forget everything (in a forked child: the parent reports its own requests)."""
        self.series = {}
        self.folded = {}
        self.admitted = set()
        self.in_flight = deque()
        self.loop = None
        self.monitor = None
        self.by_server = False


_windows = {}  # framework -> HttpWindow
# Held to add a series and to take durations out of one (flush, fold).
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
    """A request began: count it in flight; returns its start (ns)."""
    http_window.in_flight.append(None)
    return perf_counter_ns()


def request_finished(http_window, method, route, status, started_ns):
    """A request ended: add its duration to its series of the current window. Never raises.

    The first request a process completes also starts the flush thread and
    marks the application ready.
    """
    try:
        elapsed_ns = perf_counter_ns() - started_ns
        # The key as it is names the series in the common case (keys in
        # ``series`` are labelled already): labelling waits for a miss.
        key = (method, route, status)
        try:
            durations = http_window.series.get(key)
        except TypeError:  # an unhashable part: labelled below
            durations = None
        if durations is None:
            key, durations = _labelled_series(http_window, method, route, status)
        durations.append(elapsed_ns)
        if len(durations) >= FOLD_AT:
            _fold(http_window, key, durations)
        in_flight = http_window.in_flight
        if in_flight:  # empty only for a request begun before a fork reset the gauge
            in_flight.pop()
    except Exception:
        pass


def _labelled_series(http_window, method, route, status):
    """``(key, durations)`` of the series of a request whose key is not in ``series`` as it is: labelled, then admitted.

    A new series is how a process's first completed request shows, so it is
    noted here too.
    """
    if method not in METHODS:
        method = OTHER_METHOD
    if route.__class__ is not str or not route:
        route = _route_label(route)
    key = (method, route, status)
    durations = http_window.series.get(key)
    if durations is None:
        key, durations = _new_series(http_window, key)
    if _life[2] is None:
        _first_response()
    return key, durations


def _first_response():
    """The process's first completed request (once): note it, start the flush thread, mark the app ready."""
    with _lock:
        if _life[2] is not None:
            return
        _life[2] = time_ns() // 1000
    _start_flusher()
    if not process.state.init_sent:
        process.mark_ready("request")
    else:
        process.send_fork_imports()


def _route_label(route):
    """A route that is not a non-empty string as a label: empty or failing to print is :data:`UNMATCHED_ROUTE`."""
    if not route:
        return UNMATCHED_ROUTE
    try:
        return str(route)
    except Exception:
        return UNMATCHED_ROUTE


def _new_series(http_window, key):
    """``(key, durations)`` for a key without a series: the key's own, new
    unless another request just added it, or its :data:`OTHER_ROUTE` series
    once :data:`MAX_SERIES` keys were admitted.
    """
    with _lock:
        series = http_window.series
        admitted = http_window.admitted
        if key not in admitted:
            if len(admitted) < MAX_SERIES:
                admitted.add(key)
            else:
                key = (key[0], OTHER_ROUTE, key[2])
        durations = series.get(key)
        if durations is None:
            durations = series[key] = array("q")
        return key, durations


def _summary(durations_ns):
    """``[count, sum ns, max ns, bucket counts...]`` of some durations in ns (buckets as in :data:`BOUNDS_US`)."""
    ordered = sorted(durations_ns)
    summary = [len(ordered), sum(ordered), ordered[-1] if ordered else 0]
    below = 0
    for bound in _BOUNDS_NS:
        upto = bisect_left(ordered, bound)
        summary.append(upto - below)
        below = upto
    summary.append(len(ordered) - below)
    return summary


def _merge(into, summary):
    """Add ``summary`` to ``into`` (both as :func:`_summary` gives them)."""
    into[0] += summary[0]
    into[1] += summary[1]
    into[2] = max(into[2], summary[2])
    for position in range(3, len(into)):
        into[position] += summary[position]


def _take(durations):
    """The durations in an array now, deleted from it (under _lock; see :class:`HttpWindow`)."""
    count = len(durations)
    taken = durations[:count]
    del durations[:count]
    return taken


def _fold(http_window, key, durations):
    """Fold a full array of durations into the series' summary, emptying it."""
    with _lock:
        if len(durations) < FOLD_AT:  # another request folded it first
            return
        summary = _summary(_take(durations))
        folded = http_window.folded.get(key)
        if folded is None:
            http_window.folded[key] = summary
        else:
            _merge(folded, summary)


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
        folded = http_window.folded
        http_window.folded = {}
        taken = [(key, _take(durations)) for key, durations in list(http_window.series.items()) if durations]
    # Every series of the window, by key: the folded ones (some had nothing
    # more after their fold) with the durations taken now merged in.
    for key, durations in taken:
        summary = _summary(durations)
        earlier = folded.get(key)
        if earlier is not None:
            _merge(summary, earlier)
        folded[key] = summary
    rows = [
        (method, route, status, summary[0], summary[1] // 1000, summary[2] // 1000, summary[3:])
        for (method, route, status), summary in folded.items()
    ]
    if not rows and not in_flight:
        return []
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

"""Runtime metrics: what the interpreter and the process cost, read cheaply.

Data enters from three places and leaves as plain numbers the handler wrapper
puts in each ``invoke`` record:

* garbage collection, through a ``gc.callbacks`` hook installed at start-up:
  collections, pause time (``perf_counter_ns`` between the ``start`` and
  ``stop`` phases), objects collected and uncollectable, per generation, as
  running totals in :data:`gc_totals` and :data:`gc_snapshot` (a record
  reports the difference);
* the process: resident set size from ``/proc/self/statm`` through a file
  descriptor kept open (one ``pread``, about 1 µs; reopened in a forked child,
  where ``/proc/self`` would still name the parent; parsed only when it
  changed), CPU user/system time and peak RSS from ``getrusage``
  (microsecond resolution, unlike ``os.times``);
* the interpreter: ``sys.getallocatedblocks()`` (sampled when it is slow, see
  :func:`allocated_blocks`), ``len(sys.modules)`` and the number of Python
  threads (``_thread._count()`` plus the main thread);
* asyncio: an event-loop monitor (:class:`LoopMonitor`) on each loop the probe
  sees running; it wakes every ``PYROMETER_LOOP_INTERVAL_MS`` (default 100),
  measures how late it woke (the loop's lag) and counts pending tasks.
"""

import gc
import os
import sys
import _thread
from time import perf_counter_ns

from . import imports as _imports

#: Per generation g (0..2): ``[4g]`` collections, ``[4g+1]`` pause ns,
#: ``[4g+2]`` objects collected, ``[4g+3]`` uncollectable; running totals.
gc_totals = [0] * 12
#: :data:`gc_totals` as a tuple, or None once a collection changed them (see
#: :func:`refresh_gc_snapshot`): a handler call keeps the one current when it
#: began and, the usual case, finds the same object when it ends (no
#: collection ran) without copying anything. The GC callback only drops it:
#: allocating there would shift the collector's schedule (see the record
#: lists in :mod:`.imports`).
gc_snapshot = tuple(gc_totals)
_gc_started_ns = [0]


# (bumped threshold, thresholds to restore) while the first collection is due.
_threshold_restore = None


def keep_gc_schedule(before):
    """Let the first collection come where it would have come without the probe.

    Loading the probe allocates a few hundred objects the collector counts,
    which would bring every later collection that much earlier -- moving a
    millisecond-long generation-1 collection from one module's import to
    another's. The first threshold is raised by what the probe allocated (from
    ``before``, ``gc.get_count()`` taken before it loaded) and restored when that
    collection starts; from then on the schedule is the program's own.
    """
    global _threshold_restore
    try:
        if before is None:
            return
        now = gc.get_count()
        if now[0] < before[0] or now[1] != before[1]:
            return  # a collection ran while the probe loaded: nothing to offset
        extra = now[0] - before[0]
        first, second, third = gc.get_threshold()
        if extra <= 0 or first <= 0:
            return
        gc.set_threshold(first + extra, second, third)
        _threshold_restore = (first + extra, (first, second, third))
    except Exception:
        pass


def _restore_threshold():
    global _threshold_restore
    bumped, original = _threshold_restore
    _threshold_restore = None
    current = gc.get_threshold()
    if current[0] == bumped:  # unless the program set its own meanwhile
        gc.set_threshold(original[0], current[1], current[2])


def _on_gc(phase, info):
    try:
        if phase == "start":
            _gc_started_ns[0] = perf_counter_ns()
            if _threshold_restore is not None:
                _restore_threshold()
            return
        pause = perf_counter_ns() - _gc_started_ns[0]
        generation = info.get("generation", 0)
        if generation > 2:
            generation = 2
        elif generation < 0:
            generation = 0
        base = generation * 4
        totals = gc_totals
        totals[base] += 1
        totals[base + 1] += pause
        totals[base + 2] += info.get("collected", 0)
        totals[base + 3] += info.get("uncollectable", 0)
        global gc_snapshot
        gc_snapshot = None
    except Exception:
        pass


def refresh_gc_snapshot():
    """:data:`gc_snapshot`, taken anew if a collection dropped it."""
    global gc_snapshot
    snapshot = gc_snapshot
    if snapshot is None:
        snapshot = gc_snapshot = tuple(gc_totals)
    return snapshot


def install_gc_callback():
    """Start counting collections. Idempotent."""
    if _on_gc not in gc.callbacks:
        gc.callbacks.append(_on_gc)


def uninstall_gc_callback():
    """Stop counting collections (used by tests)."""
    try:
        gc.callbacks.remove(_on_gc)
    except ValueError:
        pass


def gc_summary(since=None):
    """(collections, pause µs) over all generations, since a snapshot or ever."""
    totals = gc_totals
    if since is not None:
        totals = [now - then for now, then in zip(totals, since)]
    return totals[0] + totals[4] + totals[8], (totals[1] + totals[5] + totals[9]) // 1000


_statm_fd = None
_statm_failed = False
_statm_last = (b"", None)  # the last /proc/self/statm read and its RSS, replaced whole
_pread = os.pread
_PAGE_BYTES = 4096
try:
    _PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")
except (AttributeError, ValueError, OSError):
    pass


def rss_bytes():
    """Resident set size in bytes, or None where ``/proc`` is unavailable."""
    global _statm_fd, _statm_failed, _statm_last
    fd = _statm_fd
    if fd is None:
        if _statm_failed:
            return None
        try:
            fd = _statm_fd = os.open("/proc/self/statm", os.O_RDONLY | getattr(os, "O_CLOEXEC", 0))
        except OSError:
            _statm_failed = True
            return None
    try:
        statm = _pread(fd, 96, 0)  # "size resident shared text lib data dt", in pages
        last = _statm_last
        if statm == last[0]:
            return last[1]  # unchanged since the last reading: skip the parsing
        rss = int(statm.split(None, 2)[1]) * _PAGE_BYTES
        _statm_last = (statm, rss)
        return rss
    except (OSError, ValueError, IndexError):
        return None


def _no_usage():
    """:func:`usage` where ``getrusage`` is unavailable."""
    return None


def _load_usage():
    global usage
    with _imports.muted():
        try:
            import resource
            from _functools import partial  # built in: functools itself may not be loaded yet

            getrusage_self = partial(resource.getrusage, resource.RUSAGE_SELF)
            getrusage_self()  # fails now (no resource module, a seccomp filter) or never
        except Exception:
            getrusage_self = _no_usage
    usage = getrusage_self


def usage():
    """``getrusage(RUSAGE_SELF)`` (CPU times in seconds, peak RSS), or None where unavailable.

    The first call (or :func:`prepare`) loads ``resource`` and replaces this
    function with the cheapest equivalent, called twice per invocation: the C
    call itself, without a Python frame, or a function returning None.
    """
    _load_usage()
    return usage()


_unloaded_usage = usage


def prepare():
    """Load what the per-invocation path needs, outside any invocation (at ready)."""
    if usage is _unloaded_usage:
        _load_usage()


#: ``ru_maxrss`` unit in bytes: kilobytes on Linux, bytes on macOS.
MAXRSS_UNIT_BYTES = 1 if sys.platform == "darwin" else 1024


#: Time one invocation may spend on ``sys.getallocatedblocks()``, on average.
ALLOCATED_BLOCKS_BUDGET_NS = 1_000
_blocks_countdown = [0]


def allocated_blocks():
    """``sys.getallocatedblocks()``, or None on invocations where it is skipped.

    It walks every memory pool (CPython 3.9 to 3.13 alike), so it costs time
    in proportion to the heap: a fraction of a microsecond for a small one,
    tens of microseconds for a large one. Its cost is measured each time it is
    read; when it exceeds ``ALLOCATED_BLOCKS_BUDGET_NS`` it is read only on
    one invocation in as many as keep the average within the budget.
    """
    countdown = _blocks_countdown
    if countdown[0] > 0:
        countdown[0] -= 1
        return None
    started = perf_counter_ns()
    blocks = sys.getallocatedblocks()
    cost = perf_counter_ns() - started
    if cost > ALLOCATED_BLOCKS_BUDGET_NS:
        countdown[0] = min(999, cost // ALLOCATED_BLOCKS_BUDGET_NS)
    return blocks


def python_threads():
    """Threads running Python code: those started by ``_thread``/``threading`` plus the main one."""
    try:
        return _thread._count() + 1
    except Exception:
        return 1


def after_fork_in_child():
    """Reopen what names this process: ``/proc/self`` resolved to the parent when opened."""
    global _statm_fd, _statm_failed
    fd = _statm_fd
    _statm_fd = None
    _statm_failed = False
    if fd is not None:
        try:
            os.close(fd)
        except OSError:
            pass
    _loops.clear()


# asyncio -----------------------------------------------------------------

#: Seconds between two wake-ups of a loop monitor.
LOOP_INTERVAL_S = 0.1
try:
    LOOP_INTERVAL_S = max(0.001, float(os.environ.get("PYROMETER_LOOP_INTERVAL_MS", "100")) / 1000.0)
except ValueError:
    pass

_loops = {}  # id(loop) -> LoopMonitor


class LoopMonitor:
    """Measures one asyncio event loop's lag and pending tasks between records."""

    __slots__ = ("loop", "max_lag_ns", "pending_tasks", "_due", "_handle", "_all_tasks")

    def __init__(self, loop, all_tasks):
        self.loop = loop
        self.max_lag_ns = 0
        self.pending_tasks = None
        self._all_tasks = all_tasks
        self._due = 0.0
        self._handle = None
        self._schedule()

    def _schedule(self):
        loop = self.loop
        self._due = loop.time() + LOOP_INTERVAL_S
        self._handle = loop.call_at(self._due, self._tick)

    def _tick(self):
        try:
            loop = self.loop
            lag_ns = int((loop.time() - self._due) * 1e9)
            if lag_ns > self.max_lag_ns:
                self.max_lag_ns = lag_ns
            try:
                self.pending_tasks = len(self._all_tasks(loop))
            except Exception:
                self.pending_tasks = None
            if not loop.is_closed():
                self._schedule()
        except Exception:
            pass

    def take(self):
        """(max lag µs since the last take, pending tasks at the last wake-up)."""
        lag = self.max_lag_ns
        self.max_lag_ns = 0
        return lag // 1000, self.pending_tasks

    def stop(self):
        """Cancel the next wake-up."""
        handle = self._handle
        if handle is not None:
            handle.cancel()


def running_loop_monitor(loop=None):
    """The monitor of ``loop`` (default: the loop running on this thread), started if new.

    Returns None when no loop runs. Cheap when ``asyncio`` was never imported:
    one dictionary lookup.
    """
    asyncio = sys.modules.get("asyncio")
    if asyncio is None:
        return None
    try:
        if loop is None:
            loop = asyncio.events._get_running_loop()
            if loop is None:
                return None
        monitor = _loops.get(id(loop))
        if monitor is not None and monitor.loop is loop:
            return monitor
        for key, other in list(_loops.items()):
            if other.loop.is_closed():
                del _loops[key]
        monitor = _loops[id(loop)] = LoopMonitor(loop, asyncio.all_tasks)
        return monitor
    except Exception:
        return None

"""Import-time profile: self and cumulative time of every module import.

How data enters: :func:`install` replaces ``_frozen_importlib._find_and_load``,
the function CPython's C import code calls (by attribute lookup on the
``_frozen_importlib`` module) for every module that is not yet in
``sys.modules``. ``importlib.import_module`` reaches it too, through
``_gcd_import``. This is the level at which ``-X importtime`` measures, so one
record covers finding the module (``find_spec`` over every finder), creating
it (``create_module``: the ``dlopen`` and init function of a C extension) and
executing it -- a loader wrapper around ``exec_module`` alone would miss the
first two. It costs one Python call per real import (about 1 µs), not one per
``import`` statement: modules already in ``sys.modules`` take the C fast path
and never reach it.

How data leaves: :func:`take_completed` hands the completed records, in the
order their imports began (so parents precede children), to the transport,
which encodes them as ``imports`` datagrams (see PROTOCOL.md).

Correctness notes:

* Thread safety: each thread keeps its own stack of open imports (a
  ``_thread._local``, so ``threading`` is not imported at start-up). Records are
  appended to one list; ``list.append`` is atomic under the GIL.
* Failed imports keep their record, with the exception type as the error; the
  exception propagates unchanged.
* Circular imports: the second ``import a`` inside ``a`` finds ``a`` in
  ``sys.modules`` and never reaches the hook, so it is not double counted.
  ``importlib.import_module`` of a module already present (``_gcd_import`` always
  calls ``_find_and_load``) is passed straight through for the same reason.
* Modules that replace themselves in ``sys.modules`` and namespace packages
  need nothing special: records hold names and clock readings, never module
  objects; the origin is looked up by name only when the profile is flushed.
* Lazy loaders (``importlib.util.LazyLoader``): the import itself is recorded
  (it is cheap: the module body has not run); the body runs at the first
  attribute access, and its time is then counted in whatever import is open
  at that moment, or in nothing -- exactly as ``-X importtime`` counts it.
* Tracebacks: the hook's code object carries the file name
  ``<frozen importlib._bootstrap>``, so CPython's traceback trimming of import
  machinery frames removes the hook's frame as well, and a failing import shows
  the same traceback with or without the probe.
"""

import sys
import _thread
import _frozen_importlib
from time import perf_counter_ns

# A record is a list (the cheapest mutable record in CPython) with these slots.
NAME = 0  # dotted module name
PARENT = 1  # the record of the import that was open when this one began, or None
START_NS = 2  # perf_counter_ns() when the import began (0 until it ends)
END_NS = 3  # perf_counter_ns() when it ended; 0 while it is still running
CHILDREN_NS = 4  # total cumulative time of direct children
ERROR = 5  # exception type name if the import failed, else None
WIRE_INDEX = 6  # index assigned when the record is flushed; -1 before, -2 if hidden

#: Every import record not yet flushed, in the order the imports began.
records = []

_original = None


class _ThreadImports(_thread._local):
    """Per-thread state of the hook: the stack of imports open on this thread.

    ``stack`` is ``None`` while the probe itself imports something (see
    :func:`muted`), which makes the hook pass the import straight through.
    """

    def __init__(self):
        self.stack = []


_threads = _ThreadImports()


def _error_name(exc):
    """Return the exception's type as ``module.QualName`` (bare for builtins)."""
    try:
        cls = exc.__class__
        module = cls.__module__
        if module == "builtins":
            return cls.__qualname__
        return module + "." + cls.__qualname__
    except Exception:  # a hostile __class__ must not turn into a new error
        return "BaseException"


def install():
    """Start recording imports. Idempotent. Returns True if newly installed."""
    global _original
    if _original is not None:
        return False
    original = _frozen_importlib._find_and_load
    modules = sys.modules
    threads = _threads
    append = records.append
    clock = perf_counter_ns
    error_name = _error_name

    # Indices are literals below (not the named constants) because a global
    # lookup per slot would add measurable time to every import.
    def _find_and_load(name, import_):
        if name in modules:
            return original(name, import_)
        stack = threads.stack
        if stack is None:
            return original(name, import_)
        record = [name, stack[-1] if stack else None, 0, 0, 0, None, -1]
        append(record)
        stack.append(record)
        start = clock()
        try:
            return original(name, import_)
        except BaseException as exc:
            record[5] = error_name(exc)
            raise
        finally:
            end = clock()
            record[2] = start
            record[3] = end
            if stack and stack[-1] is record:
                stack.pop()
                if stack:
                    stack[-1][4] += end - start

    # CPython trims traceback frames from this file name (see module doc).
    _find_and_load.__code__ = _find_and_load.__code__.replace(
        co_filename="<frozen importlib._bootstrap>"
    )
    _find_and_load.__qualname__ = "_find_and_load"
    _find_and_load.__doc__ = original.__doc__
    _find_and_load.__wrapped__ = original
    _frozen_importlib._find_and_load = _find_and_load
    _original = original
    return True


def uninstall():
    """Stop recording imports (used by tests). Records already taken stay."""
    global _original
    if _original is None:
        return
    if getattr(_frozen_importlib._find_and_load, "__wrapped__", None) is _original:
        _frozen_importlib._find_and_load = _original
    _original = None


def installed():
    """True while the hook is in place."""
    return _original is not None


class muted:
    """Context manager: imports made by the probe itself on this thread are not recorded."""

    __slots__ = ("_saved",)

    def __enter__(self):
        self._saved = _threads.stack
        _threads.stack = None
        return self

    def __exit__(self, *exc_info):
        _threads.stack = self._saved
        return False


def open_imports():
    """Number of imports currently open on this thread (0 outside any import)."""
    stack = _threads.stack
    return len(stack) if stack else 0


def timed_load(name, load):
    """Run ``load()`` as if it were the import of ``name``, recording it like one.

    Used for modules the probe loads by hand (the chained ``sitecustomize``),
    which never pass through ``_find_and_load``.
    """
    stack = _threads.stack
    if stack is None or _original is None:
        return load()
    record = [name, stack[-1] if stack else None, 0, 0, 0, None, -1]
    records.append(record)
    stack.append(record)
    start = perf_counter_ns()
    try:
        return load()
    except BaseException as exc:
        record[ERROR] = _error_name(exc)
        raise
    finally:
        end = perf_counter_ns()
        record[START_NS] = start
        record[END_NS] = end
        if stack and stack[-1] is record:
            stack.pop()
            if stack:
                stack[-1][CHILDREN_NS] += end - start


_next_index = 0


def take_completed(hidden_prefix="pyrometer_probe"):
    """Remove and return the completed records, as wire rows.

    Only the longest prefix of completed records is taken, so a parent is
    never sent before a child that is still running elsewhere. Records whose
    name starts with ``hidden_prefix`` (the probe's own modules) are left out
    and their children re-parented to the nearest shown ancestor.

    Returns ``(base_index, rows)``; each row is
    ``(index, parent_index, self_us, cumulative_us, name, error)`` with
    ``parent_index`` -1 at top level. Indices count every shown record of the
    process, starting at 0; ``base_index`` is the index of the first row.
    """
    global _next_index
    pending = records[:]  # a snapshot; other threads may append meanwhile
    count = 0
    for record in pending:
        # A hidden record may still be open (the handler module is loaded from
        # inside the probe's own module body); it is never sent, so it does
        # not hold back the records after it.
        if record[END_NS] == 0 and not (hidden_prefix and record[NAME].startswith(hidden_prefix)):
            break
        count += 1
    if count == 0:
        return _next_index, []
    taken = pending[:count]
    del records[:count]
    base = _next_index
    rows = []
    for record in taken:
        name = record[NAME]
        if hidden_prefix and name.startswith(hidden_prefix):
            record[WIRE_INDEX] = -2
            continue
        parent = record[PARENT]
        while parent is not None and parent[WIRE_INDEX] == -2:
            parent = parent[PARENT]
        parent_index = parent[WIRE_INDEX] if parent is not None else -1
        if parent_index < 0:
            parent_index = -1
        record[WIRE_INDEX] = index = _next_index
        _next_index += 1
        cumulative_ns = record[END_NS] - record[START_NS]
        self_ns = cumulative_ns - record[CHILDREN_NS]
        if self_ns < 0:
            self_ns = 0
        rows.append((index, parent_index, self_ns // 1000, cumulative_ns // 1000, name, record[ERROR]))
    return base, rows


def pending_count():
    """Number of records not yet taken (completed or not)."""
    return len(records)


def forget_all():
    """Drop every record without sending it (a forked child must not resend its parent's)."""
    del records[:]

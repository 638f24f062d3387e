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

The hook also runs post-import callbacks (:func:`after_import`): the web
framework hooks patch a framework's classes the moment its module finished
importing, whatever imported it. Other imports pay one dictionary lookup, and
the callbacks' own time is taken out of the imports open around them.

How data leaves: :func:`take_completed` hands the completed records, in the
order their imports began (so parents precede children), to
:func:`.process.flush_imports`, which has them encoded as ``imports``
datagrams (see PROTOCOL.md) and sent.

Correctness notes:

* Thread safety: each thread keeps its own stack of open imports (a
  ``_thread._local``, so ``threading`` is not imported at start-up); the
  record lists are changed under one lock, held for a few list operations.
* Garbage collection: the hook allocates no object the collector tracks (see
  the record lists below), so collections happen at the same points of the
  program as without the probe.
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

# The records live in parallel lists, one slot per import, indexed by the
# import's process-wide number minus ``_base[0]`` (the number of records
# already taken). There is no object per record on purpose: every container
# the hook allocated would advance the garbage collector's allocation count,
# moving collections -- which cost milliseconds in an import-heavy start-up --
# from one module's import to another's, so the profile would differ from the
# one ``-X importtime`` gives for the same program. Ints, strings and list
# slots are not tracked by the collector.
names = []  # dotted module name
parents = []  # number of the import that was open when this one began, or -1
starts = []  # perf_counter_ns() when it began (0 until it ends)
ends = []  # perf_counter_ns() when it ended; 0 while it is still running
children = []  # total cumulative ns of direct children
errors = {}  # number -> exception type name, for failed imports
_base = [0]  # number of the record in slot 0
_lock = _thread.allocate_lock()

_original = None

# Module name -> callbacks to run each time that module finishes importing
# (see after_import). The hook looks a name up here once per real import.
_after_import = {}
# Import number -> ns of post-import callbacks that ran while it was open: the
# probe's own work, taken out of that import's time when it ends.
_probe_ns = {}


class _ThreadImports(_thread._local):
    """Per-thread state of the hook: the numbers of the imports open on this thread.

    ``stack`` is ``None`` while the probe itself imports something (see
    :class:`muted`), which makes the hook pass the import straight through.
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


def _run_after_import(name, module):
    """Run the callbacks registered for ``name``; their failures are swallowed.

    Their time is the probe's: it is taken out of the imports still open
    around them (a package importing the module), as if they had not run.
    """
    started = perf_counter_ns()
    enclosing = _threads.stack
    with muted():
        for callback in _after_import.get(name, ()):
            try:
                callback(module)
            except Exception:
                pass
    if enclosing:
        spent = perf_counter_ns() - started
        for number in enclosing:
            _probe_ns[number] = _probe_ns.get(number, 0) + spent


def after_import(name, callback):
    """Call ``callback(module)`` once module ``name`` has finished importing. Never raises.

    The callback runs on the importing thread right after the module body
    completed (not after a failed import), with the probe's imports muted,
    and again if the module is ever imported anew. A module that is already
    imported gets its callback now. Costs other imports one dictionary lookup.
    """
    try:
        _after_import.setdefault(name, []).append(callback)
        module = sys.modules.get(name)
        spec = getattr(module, "__spec__", None)
        if module is not None and not getattr(spec, "_initializing", False):
            with muted():
                callback(module)
    except Exception:
        pass


def install():
    """Start recording imports. Idempotent. Returns True if newly installed."""
    global _original
    if _original is not None:
        return False
    original = _frozen_importlib._find_and_load
    modules = sys.modules
    threads = _threads
    clock = perf_counter_ns
    error_name = _error_name
    acquire = _lock.acquire
    release = _lock.release
    base = _base
    add_name = names.append
    add_parent = parents.append
    add_start = starts.append
    add_end = ends.append
    add_children = children.append
    watched = _after_import
    run_after_import = _run_after_import
    probe_ns = _probe_ns

    def _find_and_load(name, import_):
        if name in modules:
            return original(name, import_)
        stack = threads.stack
        if stack is None:
            return original(name, import_)
        acquire()
        number = base[0] + len(names)
        add_name(name)
        add_parent(stack[-1] if stack else -1)
        add_start(0)
        add_end(0)
        add_children(0)
        release()
        stack.append(number)
        start = clock()
        try:
            module = original(name, import_)
        except BaseException as exc:
            errors[number] = error_name(exc)
            raise
        finally:
            end = clock()
            if stack and stack[-1] == number:
                stack.pop()
            if probe_ns:
                start += probe_ns.pop(number, 0)
            acquire()
            slot = number - base[0]
            if slot >= 0:
                starts[slot] = start
                ends[slot] = end
            if stack:
                slot = stack[-1] - base[0]
                if slot >= 0:
                    children[slot] += end - start
            release()
        if name in watched:
            run_after_import(name, module)
        return module

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


class detached:
    """Context manager: imports on this thread are recorded at top level.

    The probe's Lambda handler module loads the user's module from inside its
    own (hidden) import; detached, the user's module is a top-level node, as it
    would be without the probe.
    """

    __slots__ = ("_saved",)

    def __enter__(self):
        self._saved = _threads.stack
        if self._saved is not None:
            _threads.stack = []
        return self

    def __exit__(self, *exc_info):
        _threads.stack = self._saved
        return False


def timed_load(name, load):
    """Run ``load()`` as if it were the import of ``name``, recording it like one.

    Used for modules the probe loads by hand (the chained ``sitecustomize``),
    which never pass through ``_find_and_load``.
    """
    stack = _threads.stack
    if stack is None or _original is None:
        return load()
    with _lock:
        number = _base[0] + len(names)
        names.append(name)
        parents.append(stack[-1] if stack else -1)
        starts.append(0)
        ends.append(0)
        children.append(0)
    stack.append(number)
    start = perf_counter_ns()
    try:
        return load()
    except BaseException as exc:
        errors[number] = _error_name(exc)
        raise
    finally:
        end = perf_counter_ns()
        if stack and stack[-1] == number:
            stack.pop()
        if _probe_ns:
            start += _probe_ns.pop(number, 0)
        with _lock:
            slot = number - _base[0]
            if slot >= 0:
                starts[slot] = start
                ends[slot] = end
            if stack and stack[-1] - _base[0] >= 0:
                children[stack[-1] - _base[0]] += end - start


def take_completed(hidden_prefix="pyrometer_probe"):
    """Remove and return the completed records, as columns of wire fields.

    Only the longest prefix of completed records is taken, so a parent is
    never sent before a child that is still running elsewhere. Records whose
    name starts with ``hidden_prefix`` (the probe's own modules) are left out;
    they never have children (the probe mutes or detaches its own imports).

    Returns the lists ``(numbers, parents, self_us, cumulative_us, names,
    errors)``, one entry per module in the order the imports began:
    ``numbers`` count every import of the process (so numbers of left-out
    records are missing), ``parents`` are -1 at top level, and ``errors`` hold
    the exception type of a failed import, else None. Columns rather than a
    tuple per record: a profile has hundreds of records, and columns are
    built by comprehensions, with no Python call per record.
    """
    with _lock:
        # The first record still open; a hidden one (the handler module is
        # loaded from inside the probe's own module body) is never sent, so
        # it does not hold back the records after it.
        count = len(names)
        slot = 0
        while True:
            try:
                slot = ends.index(0, slot)
            except ValueError:
                break
            if not (hidden_prefix and names[slot].startswith(hidden_prefix)):
                count = slot
                break
            slot += 1
        if count == 0:
            return [], [], [], [], [], []
        first = _base[0]
        taken_names = names[:count]
        taken_parents = parents[:count]
        taken_starts = starts[:count]
        taken_ends = ends[:count]
        taken_children = children[:count]
        for column in (names, parents, starts, ends, children):
            del column[:count]
        _base[0] = first + count
        failed = {number: errors.pop(number) for number in list(errors) if number < first + count} if errors else {}
    cumulative_ns = [end - start for start, end in zip(taken_starts, taken_ends)]
    columns = (
        list(range(first, first + count)),
        taken_parents,
        [(total - nested) // 1000 if total > nested else 0 for total, nested in zip(cumulative_ns, taken_children)],
        [total // 1000 for total in cumulative_ns],
        taken_names,
        [None] * count,
    )
    for number, error in failed.items():
        if number >= first:  # an earlier one ended after its record was taken
            columns[5][number - first] = error
    if hidden_prefix:
        hidden = [slot for slot, name in enumerate(taken_names) if name.startswith(hidden_prefix)]
        for slot in reversed(hidden):
            for column in columns:
                del column[slot]
    return columns


def pending_count():
    """Number of records not yet taken (completed or not)."""
    return len(names)


def forget_all():
    """Drop every record without sending it (a forked child must not resend its parent's)."""
    with _lock:
        count = len(names)
        for column in (names, parents, starts, ends, children):
            del column[:]
        _base[0] += count
        errors.clear()

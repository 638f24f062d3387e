"""The probe's life in one process: start-up, ready, fork and exit.

Data enters from ``sitecustomize`` (:func:`start`, which also registers the
web framework hooks of :mod:`.frameworks` for when a framework is imported),
from whoever knows the application is ready (:func:`mark_ready`: the Lambda
handler module once the user's handler is loaded, the handler wrapper at the
first invocation, a web server's start-up (:func:`server_ready`, see
:mod:`.servers`), the HTTP middleware at the first completed request, or
:func:`at_exit`), and from the fork hooks. It leaves as the ``init``,
``imports``, ``fork``, ``ready`` and ``exit`` records (see PROTOCOL.md), sent through the
one :class:`~.transport.Transport` of the process; at exit the last ``http``
window (:mod:`.web`) goes before the ``exit`` record.

A forked child starts over: new process id, new socket, sequence and drop
counters from zero, an empty import list (its parent reports the imports made
before the fork), invocation count from zero (its first invocation is its cold
start), and no ``init`` record of its own -- it announces itself with a
``fork`` record naming its parent instead.
"""

import os
import sys
import time
from time import perf_counter_ns, time_ns

from . import imports, runtime

#: A first invocation later than this after ready is a "proactive init":
#: Lambda initialised the environment ahead of demand.
PROACTIVE_INIT_AFTER_NS = 10_000_000_000
#: Longest the probe waits at exit for a full receiver to take the last records
#: (``PYROMETER_EXIT_FLUSH_MS``, default 20).
EXIT_FLUSH_NS = 20_000_000
try:
    EXIT_FLUSH_NS = int(float(os.environ.get("PYROMETER_EXIT_FLUSH_MS", "20")) * 1_000_000)
except ValueError:
    pass


#: Modules whose import hooks a web framework (see :mod:`.frameworks`, loaded
#: only when one of them is imported).
WEB_FRAMEWORK_MODULES = (
    "flask.app",
    "django.core.handlers.base",
    "django.core.handlers.wsgi",
    "django.core.handlers.asgi",
    "starlette.applications",
)


#: Modules whose import hooks a web server's start-up (see :mod:`.servers`):
#: the server marks its process ready when it starts taking requests.
SERVER_MODULES = (
    "gunicorn.workers.base",
    "uvicorn.server",
    "werkzeug.serving",
    "django.core.servers.basehttp",
)
#: Of those, the pre-fork servers: a process that imported one and forks
#: before it is ready is a master starting its workers (see :func:`_before_fork`).
PREFORK_SERVER_MODULES = ("gunicorn.workers.base",)


def _web_framework_imported(module):
    """Post-import callback: install the HTTP middleware in the framework just imported."""
    from . import frameworks

    frameworks.hook(module)


def _server_imported(module):
    """Post-import callback: hook the start-up of the web server just imported."""
    from . import servers

    servers.hook(module)


class ProbeState:
    """Everything the probe knows about the current process."""

    def __init__(self):
        self.enabled = False
        self.socket_path = None
        self.pid = os.getpid()
        self.exec_unix_us = None
        self.exec_source = None
        self.probe_unix_us = None
        self.probe_perf_ns = None
        self.probe_init_ns = 0
        self.modules_before_probe = 0
        self.gc_at_probe = None
        self.ready = False
        self.ready_perf_ns = 0
        self.ready_unix_us = None
        self.ready_reason = None
        self.init_sent = False
        self.fork_imports_sent = False
        self.fork_ready_sent = False
        self.parent_imports_sent = False
        self.invocations = 0
        self.transport = None
        self.profiles_sent = 0
        self.parent_pid = None
        self.fork_unix_us = None
        self.fork_pending = False


state = ProbeState()


def switch(value):
    """A switch variable's value (``PYROMETER_PROBE``, ``PYROMETER_HTTP``) as compared: trimmed, lower case, ``""`` if unset."""
    return (value or "").strip().lower()


def _is_off(value):
    """Whether a switch variable's value turns something off."""
    return switch(value) in ("0", "off", "false", "no")


def _disabled_by_env(environ):
    path = environ.get("PYROMETER_PROBE_SOCKET")
    if not path or _is_off(environ.get("PYROMETER_PROBE")):
        return None
    return path


def start(started_perf_ns=None, environ=None):
    """Start measuring: install the import hook, the GC callback and the web framework hooks. Never raises.

    Called by ``sitecustomize`` as early as the interpreter allows. Does
    nothing unless ``PYROMETER_PROBE_SOCKET`` names a socket.
    ``PYROMETER_HTTP=off`` leaves the web frameworks alone: no per-request
    measurement (and its cost), the rest as usual (``middleware``: see
    :mod:`.gunicorn_requests`).
    """
    try:
        environ = os.environ if environ is None else environ
        path = _disabled_by_env(environ)
        if path is None or state.enabled:
            return False
        now = perf_counter_ns()
        state.probe_perf_ns = started_perf_ns if started_perf_ns is not None else now
        state.probe_unix_us = time_ns() // 1000 - (now - state.probe_perf_ns) // 1000
        import atexit  # built in; imported before the hook so it is not profiled

        imports.install()
        if not _is_off(environ.get("PYROMETER_HTTP")):
            for name in WEB_FRAMEWORK_MODULES:
                imports.after_import(name, _web_framework_imported)
        for name in SERVER_MODULES:
            imports.after_import(name, _server_imported)
        runtime.install_gc_callback()
        state.enabled = True
        state.socket_path = path
        state.pid = os.getpid()
        state.modules_before_probe = len(sys.modules)
        state.gc_at_probe = list(runtime.gc_totals)
        exec_us = environ.get("PYROMETER_EXEC_UNIX_US", "")
        if exec_us.isdigit():
            state.exec_unix_us = int(exec_us)
            state.exec_source = "env"
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(before=_before_fork, after_in_child=_after_fork_in_child)
        atexit.register(at_exit)
        state.probe_init_ns = perf_counter_ns() - state.probe_perf_ns
        return True
    except Exception:
        return False


def transport():
    """The process's transport, created on first use."""
    sender = state.transport
    if sender is None:
        with imports.muted():
            from .transport import Transport
        sender = state.transport = Transport(state.socket_path)
    return sender


def send(kind, body, keep=False):
    """Send one record; a forked child announces itself first. Never raises."""
    try:
        sender = state.transport or transport()
        if state.fork_pending:
            with imports.muted():
                from . import wire
            state.fork_pending = False
            sender.send(wire.KIND_FORK, wire.fork_body(state.parent_pid, state.fork_unix_us), keep=True)
        return sender.send(kind, body, keep)
    except Exception:
        return False


def _process_age_us():
    """Time since exec from /proc (10 ms resolution), or None."""
    try:
        with open("/proc/self/stat", "rb") as stat:
            fields = stat.read().rsplit(b")", 1)[1].split()
        start_ticks = int(fields[19])  # field 22 of stat(5); fields[0] is field 3
        with open("/proc/uptime", "rb") as uptime:
            uptime_s = float(uptime.read().split()[0])
        return int((uptime_s - start_ticks / os.sysconf("SC_CLK_TCK")) * 1e6)
    except Exception:
        return None


def note_ready(reason):
    """Remember when the application became ready (first call wins)."""
    if state.ready:
        return
    state.ready_perf_ns = perf_counter_ns()
    state.ready_unix_us = time_ns() // 1000
    state.ready_reason = reason
    state.ready = True


def flush_imports(phase, invocation, handler_module=None, keep=False):
    """Send the completed, unsent import records as one profile.

    Returns ``(profile_id, modules, import_phase_us, handler_index)``, or None
    when there was nothing to send (always sends for the ``init`` phase).
    """
    numbers, parents, self_us, cumulative_us, names, errors = imports.take_completed()
    if not numbers and phase != "init":
        return None
    with imports.muted():
        from . import origin, wire
    modules = sys.modules
    classify = origin.classify
    origins = [classify(name, modules) for name in names]
    lines = wire.import_rows(numbers, parents, self_us, cumulative_us, origins, errors, names)
    import_phase_us = sum([cumulative for parent, cumulative in zip(parents, cumulative_us) if parent == -1])
    handler_index = -1
    if handler_module is not None:
        for position, name in enumerate(names):
            if name == handler_module and parents[position] == -1:
                handler_index = position
    profile_id = state.profiles_sent
    state.profiles_sent += 1
    first = numbers[0] if numbers else imports._base[0]
    for body in wire.import_bodies(profile_id, first, lines, phase, invocation):
        send(wire.KIND_IMPORTS, body, keep)
    return profile_id, len(numbers), import_phase_us, handler_index


def send_init(handler=None, handler_module=None, handler_load_ns=None, error=None):
    """Send the import profile so far and the ``init`` record, once per process."""
    if not state.enabled or state.init_sent:
        return
    with imports.muted():
        from . import wire
    state.init_sent = True
    note_ready("explicit")
    if state.ready_reason != "exit":  # invocations may follow: load what they need now
        runtime.prepare()
    profile_id, modules, import_phase_us, handler_index = flush_imports(
        "init", 0, handler_module=handler_module, keep=True
    )
    exec_unix_us = state.exec_unix_us
    exec_source = state.exec_source
    if exec_unix_us is None:
        age = _process_age_us()
        if age is not None:
            exec_unix_us = time_ns() // 1000 - age
            exec_source = "proc"
    collections, pause_us = runtime.gc_summary(state.gc_at_probe)
    body = wire.init_body(
        python="%s-%d.%d.%d" % ((sys.implementation.name,) + tuple(sys.version_info[:3])),
        exec_unix_us=exec_unix_us,
        exec_source=exec_source,
        probe_unix_us=state.probe_unix_us,
        ready_unix_us=state.ready_unix_us,
        ready_reason=state.ready_reason,
        probe_init_us=state.probe_init_ns // 1000,
        modules_before_probe=state.modules_before_probe,
        modules_at_ready=len(sys.modules),
        import_phase_us=import_phase_us,
        handler_load_us=None if handler_load_ns is None else handler_load_ns // 1000,
        handler=handler,
        handler_index=handler_index,
        error=error,
        profile_id=profile_id,
        profile_modules=modules,
        gc_collections=collections,
        gc_pause_us=pause_us,
    )
    send(wire.KIND_INIT, body, keep=True)


def mark_ready(reason="explicit", **init):
    """The application is ready: record the time and send the init records. Never raises."""
    try:
        note_ready(reason)
        send_init(**init)
    except Exception:
        pass


def server_ready():
    """A web server of this process started taking requests (see :mod:`.servers`). Never raises.

    A process not yet ready is ready now (reason ``server``), which sends its
    ``init`` record. A forked child -- a pre-fork server's worker, ready on
    its own once it has loaded the application -- sends a ``ready`` record
    and its start-up imports instead (once).
    """
    try:
        if not state.enabled:
            return
        if state.fork_unix_us is None:
            mark_ready("server")
        elif not state.fork_ready_sent:
            state.fork_ready_sent = True
            with imports.muted():
                from . import wire
            send(wire.KIND_READY, wire.ready_body(time_ns() // 1000, "server"), keep=True)
            send_fork_imports()
    except Exception:
        pass


def send_fork_imports():
    """A forked child's start-up imports, once: when its server is ready, else at its first served request.

    A pre-fork server's workers import the application after the fork, so
    those imports are the start-up that matters; they go as an ``imports``
    profile of phase ``init`` (with no ``init`` record). Never raises.
    """
    try:
        if state.enabled and state.fork_unix_us is not None and not state.fork_imports_sent:
            state.fork_imports_sent = True
            flush_imports("init", 0, keep=True)
    except Exception:
        pass


def _before_fork():
    """A pre-fork server's master (:data:`PREFORK_SERVER_MODULES`) starting its
    workers before it is ready sends its start-up imports so far (an
    ``imports`` profile of phase ``init``) at its first fork, rather than at
    its exit: with ``--preload`` they are the application's. Any other
    process forks as before (a Lambda handler's init profile stays whole).
    Never raises.
    """
    try:
        if (
            state.enabled
            and not state.init_sent
            and not state.parent_imports_sent
            and any(name in sys.modules for name in PREFORK_SERVER_MODULES)
        ):
            state.parent_imports_sent = True
            flush_imports("init", 0, keep=True)
    except Exception:
        pass


def _after_fork_in_child():
    try:
        if not state.enabled:
            return
        state.parent_pid = state.pid
        state.pid = os.getpid()
        state.fork_unix_us = time_ns() // 1000
        state.fork_pending = True
        imports.forget_all()
        runtime.after_fork_in_child()
        sender = state.transport
        state.transport = None
        if sender is not None:
            sender.close()
        state.invocations = 0
        state.init_sent = True
        state.fork_imports_sent = False
        state.fork_ready_sent = False
        state.parent_imports_sent = False
        state.ready = True
        state.ready_perf_ns = perf_counter_ns()
        state.ready_unix_us = state.fork_unix_us
        state.ready_reason = "fork"
    except Exception:
        pass


def _drain(sender):
    deadline = perf_counter_ns() + EXIT_FLUSH_NS
    sender.flush()
    while sender.waiting() and perf_counter_ns() < deadline:
        time.sleep(0.001)
        sender.flush()


def at_exit():
    """Send what is left: the init records if never sent, late imports, then ``exit``."""
    try:
        if not state.enabled or state.pid != os.getpid():
            return
        with imports.muted():
            from . import wire
        if not state.init_sent:
            note_ready("exit")
            send_init()
        else:
            flush_imports("exit", state.invocations)
        web = sys.modules.get("pyrometer_probe.web")
        if web is not None:  # loaded once a web framework was hooked
            web.at_exit()
        sender = transport()
        # The one place the probe waits: at exit, twice at most EXIT_FLUSH_NS,
        # for a receiver whose queue is full to take the last records, then
        # the exit record itself.
        _drain(sender)
        unsent = sender.discard_backlog()
        send(wire.KIND_EXIT, wire.exit_body(state.invocations, time_ns() // 1000, unsent))
        _drain(sender)
    except Exception:
        pass

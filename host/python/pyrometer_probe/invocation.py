"""Handler wrapper: one ``invoke`` record per call of the user's handler.

Data enters as the call itself (the wrapper returned by :func:`wrap`) and leaves
as an ``invoke`` record sent after the handler returns or raises: duration,
how it ended (the exception type, if any), cold start and proactive init flags,
and the runtime metrics of :mod:`.runtime` over the call.

The wrapper never changes what the handler does: the result is returned as
is, an exception propagates as the same object (the traceback gains the
wrapper's one frame), and any failure of the probe's own bookkeeping is
swallowed. Per call it costs a few microseconds (see ``bench/``): clock
readings, one ``getrusage`` on each side, one ``pread`` of
``/proc/self/statm`` after, one string and one ``send``. This is the probe's
hot path: the functions it calls are bound once (except those that
:mod:`.runtime` rebinds), and everything that is the same from call to call
is prepared once.
"""

import _thread
import sys
from time import perf_counter_ns, time_ns

from . import process, runtime, wire
from . import imports as _imports

_state = process.state
_thread_count = _thread._count
_import_names = _imports.names  # mutated in place, never rebound
_gc_totals = runtime.gc_totals  # idem
_modules = sys.modules
_rss_bytes = runtime.rss_bytes
_allocated_blocks = runtime.allocated_blocks
_MAXRSS_UNIT_BYTES = runtime.MAXRSS_UNIT_BYTES
_invoke_body = wire.invoke_body
_KIND_INVOKE = wire.KIND_INVOKE

_CO_COROUTINE = 0x0080  # inspect.CO_COROUTINE, without importing inspect


def begin():
    """Snapshot before a call; returns a token for :func:`end` (None if the probe is off)."""
    try:
        entered = perf_counter_ns()
        state = _state
        if not state.enabled:
            return None
        if not state.ready:
            process.note_ready("invoke")
        number = state.invocations = state.invocations + 1
        usage = runtime.usage()
        monitor = runtime.running_loop_monitor() if "asyncio" in _modules else None
        gc_before = runtime.gc_snapshot
        if gc_before is None:
            gc_before = runtime.refresh_gc_snapshot()
        start_unix_us = time_ns() // 1000
        started = perf_counter_ns()
        return (started, start_unix_us, number, usage, gc_before, monitor, started - entered)
    except Exception:
        return None


def end(token, args, exc):
    """Send the ``invoke`` record for a call begun with :func:`begin`. Never raises.

    ``args`` are the handler's positional arguments (a Lambda handler's
    second is the context, which has the request id); ``exc`` is what the
    handler raised, or None.
    """
    finished = perf_counter_ns()
    if token is None:
        return
    try:
        started, start_unix_us, number, before, gc_before, monitor, begin_ns = token
        state = _state
        after = runtime.usage()
        rss = _rss_bytes()
        if after is not None and before is not None:
            # by index (ru_utime, ru_stime, ru_maxrss): cheaper than by name
            cpu_user_us = int((after[0] - before[0]) * 1e6)
            cpu_system_us = int((after[1] - before[1]) * 1e6)
            peak = after[2] * _MAXRSS_UNIT_BYTES
            if rss is not None and rss > peak:
                peak = rss  # getrusage was read first; the peak is at least what is resident now
        else:
            cpu_user_us = cpu_system_us = peak = None
        if monitor is not None:
            lag_us, pending = monitor.take()
        else:
            lag_us = pending = None
        if runtime.gc_snapshot is gc_before:
            gc = None  # no collection ran: the common case, encoded as a constant
        else:
            b = gc_before
            t = _gc_totals
            gc = (
                t[0] - b[0], t[1] - b[1], t[2] - b[2], t[3] - b[3],
                t[4] - b[4], t[5] - b[5], t[6] - b[6], t[7] - b[7],
                t[8] - b[8], t[9] - b[9], t[10] - b[10], t[11] - b[11],
            )  # fmt: skip
        request_id = None
        if len(args) > 1:
            try:
                request_id = getattr(args[1], "aws_request_id", None)
            except Exception:  # a context object whose attribute access fails
                pass
        late_imports = len(_import_names)
        body = _invoke_body(
            request_id,
            number,
            number == 1,
            number == 1 and started - state.ready_perf_ns > process.PROACTIVE_INIT_AFTER_NS,
            start_unix_us,
            finished - started,
            None if exc is None else _imports._error_name(exc),
            gc,
            _allocated_blocks(),
            len(_modules),
            _thread_count() + 1,
            rss,
            peak,
            cpu_user_us,
            cpu_system_us,
            lag_us,
            pending,
            late_imports,
            begin_ns + perf_counter_ns() - finished,
        )
        sender = state.transport
        if sender is None or state.fork_pending:
            process.send(_KIND_INVOKE, body)
        else:
            sender.send(_KIND_INVOKE, body)
        if not state.init_sent:
            process.send_init()
        elif late_imports:
            process.flush_imports("invoke", number)
    except Exception:
        pass


def wrap(handler):
    """Return ``handler`` wrapped so every call is measured.

    A coroutine function gets an ``async`` wrapper (the await is measured); a
    Lambda-style ``handler(event, context)`` gets its request id from
    ``context.aws_request_id``.
    """
    code = getattr(handler, "__code__", None)
    if code is not None and code.co_flags & _CO_COROUTINE:

        async def pyrometer_async_handler(*args, **kwargs):
            token = begin()
            try:
                result = await handler(*args, **kwargs)
            except BaseException as exc:
                end(token, args, exc)
                raise
            end(token, args, None)
            return result

        wrapper = pyrometer_async_handler
    else:

        def pyrometer_handler(*args, **kwargs):
            token = begin()
            try:
                result = handler(*args, **kwargs)
            except BaseException as exc:
                end(token, args, exc)
                raise
            end(token, args, None)
            return result

        wrapper = pyrometer_handler
    try:
        wrapper.__wrapped__ = handler
        wrapper.__name__ = getattr(handler, "__name__", wrapper.__name__)
        wrapper.__qualname__ = getattr(handler, "__qualname__", wrapper.__qualname__)
        wrapper.__doc__ = getattr(handler, "__doc__", None)
        wrapper.__module__ = getattr(handler, "__module__", wrapper.__module__)
    except (AttributeError, TypeError):
        pass
    return wrapper

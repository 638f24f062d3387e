"""Handler wrapper: one ``invoke`` record per call of the user's handler.

Data enters as the call itself (the wrapper returned by :func:`wrap`) and leaves
as an ``invoke`` record sent after the handler returns or raises: duration,
how it ended (the exception type, if any), cold start and proactive init flags,
and the runtime metrics of :mod:`.runtime` over the call.

The wrapper never changes what the handler does: the result is returned as
is, an exception propagates as the same object (the traceback gains the
wrapper's one frame), and any failure of the probe's own bookkeeping is
swallowed. Per call it costs a few microseconds (see ``bench/``): two clock
readings, one ``getrusage`` and one ``pread`` of ``/proc/self/statm`` on each
side, a copy of twelve GC counters, one string and one ``send``.
"""

import sys
from time import perf_counter_ns, time_ns

from . import process, runtime, wire
from . import imports as _imports

_CO_COROUTINE = 0x0080  # inspect.CO_COROUTINE, without importing inspect


def _request_id(args):
    try:
        if len(args) > 1:
            return getattr(args[1], "aws_request_id", None)
    except Exception:  # a context object whose attribute access fails
        pass
    return None


def begin():
    """Snapshot before a call; returns a token for :func:`end` (None if the probe is off)."""
    try:
        entered = perf_counter_ns()
        state = process.state
        if not state.enabled:
            return None
        if not state.ready:
            process.note_ready("invoke")
        state.invocations += 1
        number = state.invocations
        user_us, system_us, _ = runtime.cpu_and_peak()
        monitor = runtime.running_loop_monitor()
        gc_before = runtime.gc_totals[:]
        start_unix_us = time_ns() // 1000
        started = perf_counter_ns()
        return [started, start_unix_us, number, user_us, system_us, gc_before, monitor, started - entered]
    except Exception:
        return None


def end(token, request_id, exc):
    """Send the ``invoke`` record for a call begun with :func:`begin`. Never raises."""
    finished = perf_counter_ns()
    if token is None:
        return
    try:
        started, start_unix_us, number, user_before, system_before, gc_before, monitor, begin_ns = token
        state = process.state
        user_us, system_us, peak = runtime.cpu_and_peak()
        totals = runtime.gc_totals
        gc = [now - then for now, then in zip(totals, gc_before)]
        if monitor is not None:
            lag_us, pending = monitor.take()
        else:
            lag_us = pending = None
        cold = number == 1
        proactive = cold and started - state.ready_perf_ns > process.PROACTIVE_INIT_AFTER_NS
        error = None if exc is None else _imports._error_name(exc)
        late_imports = _imports.pending_count()
        rss = runtime.rss_bytes()
        if peak is not None and rss is not None and rss > peak:
            peak = rss  # getrusage was read first; the peak is at least what is resident now
        body = wire.invoke_body(
            request_id,
            number,
            cold,
            proactive,
            start_unix_us,
            finished - started,
            error,
            gc,
            sys.getallocatedblocks(),
            len(sys.modules),
            runtime.python_threads(),
            rss,
            peak,
            None if user_before is None else user_us - user_before,
            None if system_before is None else system_us - system_before,
            lag_us,
            pending,
            late_imports,
            begin_ns + perf_counter_ns() - finished,
        )
        process.send(wire.KIND_INVOKE, body)
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
                end(token, _request_id(args), exc)
                raise
            end(token, _request_id(args), None)
            return result

        wrapper = pyrometer_async_handler
    else:

        def pyrometer_handler(*args, **kwargs):
            token = begin()
            try:
                result = handler(*args, **kwargs)
            except BaseException as exc:
                end(token, _request_id(args), exc)
                raise
            end(token, _request_id(args), None)
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

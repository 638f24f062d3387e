"""pyrometer's Python probe: import profile, handler wrapper and runtime metrics.

Loaded at interpreter start by the ``sitecustomize`` beside this package (the
exec wrapper or ``pyrometer`` puts that directory on ``PYTHONPATH``). It does
nothing unless ``PYROMETER_PROBE_SOCKET`` names the Unix datagram socket of a
receiver. Standard library only; CPython 3.9 to 3.13. The wire format is in
``PROTOCOL.md``.

The public API is for code that is not a Lambda handler (the Lambda path needs
none): :func:`wrap` measures calls of a function, :func:`mark_ready` says the
application finished starting (and sends the import profile), and
:func:`watch_loop` measures an asyncio event loop's lag. Each never raises.
"""

__all__ = ["PROTOCOL_VERSION", "wrap", "mark_ready", "watch_loop", "enabled"]

#: Version of the wire format this probe speaks.
PROTOCOL_VERSION = 1


def wrap(handler):
    """Return ``handler`` wrapped so each call sends an ``invoke`` record."""
    from .imports import muted

    with muted():
        from .invocation import wrap as _wrap

    return _wrap(handler)


def mark_ready(reason="explicit"):
    """The application is ready: send the ``init`` record and the import profile so far."""
    from .imports import muted

    with muted():
        from .process import mark_ready as _mark_ready

    _mark_ready(reason)


def watch_loop(loop=None):
    """Measure lag and pending tasks of ``loop`` (default: the running loop), reported per invocation."""
    from .imports import muted

    with muted():
        from .runtime import running_loop_monitor

    return running_loop_monitor(loop) is not None


def enabled():
    """True when the probe is measuring this process."""
    from .process import state

    return state.enabled

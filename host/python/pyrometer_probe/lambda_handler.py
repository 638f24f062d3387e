"""The Lambda ``_HANDLER`` target: loads the user's handler and measures it.

The exec wrapper sets ``_HANDLER=pyrometer_probe.lambda_handler.handler`` and
keeps the user's own handler in ``PYROMETER_HANDLER``. When the runtime
imports this module (during the init phase, like the user's module would be),
it imports the user's module -- timed as its own top-level node of the import
profile, since ``importlib.import_module`` is invisible to ``-X importtime`` --
sends the ``init`` record and the import profile, and exposes ``handler``, the
user's function wrapped by :func:`.invocation.wrap`.

Failures look exactly as they would without the probe: if the user's module
fails to import, the same exception propagates (after an ``init`` record
carrying its type), so the runtime reports ``Runtime.ImportModuleError`` or
``Runtime.UserCodeSyntaxError`` as usual; if the function is missing, this
module has no ``handler`` attribute either, so the runtime reports
``Runtime.HandlerNotFound``.
"""

import os
import sys
from time import perf_counter_ns

import _frozen_importlib

from . import process
from .imports import _error_name, detached
from .invocation import wrap

#: Environment variable holding the user's handler (``module.function``).
HANDLER_ENV = "PYROMETER_HANDLER"


def split_handler(spec):
    """The handler's (module, function).

    Accepts Lambda's ``dir/module.function``, ``module:function``, and
    ``path/to/app.py:function`` (a file relative to ``LAMBDA_TASK_ROOT``, or the
    working directory), as pyrometer's built-in runtime does. For a file, its
    directory is put first on ``sys.path`` and the module is its stem.
    """
    if ":" in spec:
        module, _, function = spec.partition(":")
    else:
        module, _, function = spec.rpartition(".")
    if not module or not function:
        raise ValueError(f"bad handler {spec!r}: expected module.function")
    if module.endswith(".py"):
        path = module
        if not os.path.isabs(path):
            path = os.path.join(os.environ.get("LAMBDA_TASK_ROOT") or os.getcwd(), path)
        directory, filename = os.path.split(os.path.normpath(path))
        if directory not in sys.path:
            sys.path.insert(0, directory)
        return filename[:-3], function
    return module.replace("/", "."), function


def load(spec):
    """Import the handler's module, report init, and return the wrapped function (or None)."""
    module_name, function_name = split_handler(spec)
    started = perf_counter_ns()
    try:
        # Detached: the user's module is a top-level import, as without the probe.
        with detached():
            module = _frozen_importlib._gcd_import(module_name)
    except BaseException as exc:
        process.mark_ready(
            "handler",
            handler=spec,
            handler_module=module_name,
            handler_load_ns=perf_counter_ns() - started,
            error=_error_name(exc),
        )
        raise
    elapsed = perf_counter_ns() - started
    function = getattr(module, function_name, None)
    process.mark_ready(
        "handler",
        handler=spec,
        handler_module=module_name,
        handler_load_ns=elapsed,
        error=None if function is not None else "HandlerNotFound",
    )
    if function is None or not process.state.enabled:
        return function
    return wrap(function)


_spec = os.environ.get(HANDLER_ENV, "")
if not _spec:
    raise ImportError(
        f"pyrometer: {HANDLER_ENV} is not set; the exec wrapper keeps the original _HANDLER there",
        name=__name__,
    )
_function = load(_spec)
if _function is not None:
    handler = _function
del _function

"""Starts pyrometer's probe at interpreter start, then the next ``sitecustomize``.

``site`` imports the first ``sitecustomize`` on ``sys.path``; this directory
comes first because it is on ``PYTHONPATH``. After starting the probe (see
``pyrometer_probe/process.py``) it loads the ``sitecustomize`` that would have
run without it, if any, from the rest of ``sys.path`` -- timed in the import
profile like any import -- and lets that module's errors reach ``site``, which
reports them as it always does.

Last, it moves its own directory from the front of ``sys.path`` to the end
(see :func:`_step_aside`), so the application's imports no longer search it.
"""


def _start_probe():
    import os

    # Imported whether the probe is on or off: its own few allocations happen
    # before the probe can count them (see below), so on and off differ only
    # by what the probe itself allocates.
    import gc

    if not os.environ.get("PYROMETER_PROBE_SOCKET"):
        return  # off: load nothing, so the program runs as it would without us
    from time import perf_counter_ns

    started = perf_counter_ns()
    # No collection while the probe loads, and the probe's own allocations
    # offset afterwards (see pyrometer_probe.runtime.keep_gc_schedule).
    before = gc.get_count()
    collecting = gc.isenabled()
    gc.disable()
    runtime = None
    measuring = False
    try:
        from pyrometer_probe import process, runtime

        measuring = process.start(started)
    except Exception:  # the probe must never stop the interpreter from starting
        pass
    finally:
        # Only a started probe restores the threshold (at the first
        # collection, from its GC callback): switched off, it leaves it alone.
        if measuring:
            runtime.keep_gc_schedule(before)
        if collecting:
            gc.enable()


def _chain(here):
    import os
    import sys

    import _frozen_importlib
    import _frozen_importlib_external

    search = []
    for entry in sys.path:
        try:
            if os.path.abspath(entry or os.curdir) == here:
                continue
        except (TypeError, ValueError):
            continue
        search.append(entry)
    spec = _frozen_importlib_external.PathFinder.find_spec("sitecustomize", search)
    if spec is None:
        return
    this = sys.modules.get("sitecustomize")

    def load():
        try:
            return _frozen_importlib._load(spec)
        except BaseException:
            if this is not None:
                sys.modules["sitecustomize"] = this
            raise

    try:
        from pyrometer_probe import imports
    except Exception:
        load()
        return
    imports.timed_load("sitecustomize", load)


def _step_aside(here):
    """Move this directory to the end of ``sys.path``, probe on or off. Never raises.

    ``PYTHONPATH`` put it first, so every later top-level import that is not
    yet in ``sys.modules`` would search it before the real locations: one
    ``stat`` and a check per module suffix, about 1 % of an import-heavy
    start-up (see ``bench/``), for a directory that holds nothing the
    application imports. At the end it costs only imports found nowhere
    else, and what it holds stays importable: ``pyrometer_probe`` is already
    in ``sys.modules`` when the probe is on, and is found here when it is off
    and the Lambda runtime imports ``pyrometer_probe.lambda_handler``.
    """
    try:
        import os
        import sys

        mine = [entry for entry in sys.path if isinstance(entry, str) and entry and os.path.abspath(entry) == here]
        for entry in mine:
            sys.path.remove(entry)
        sys.path.extend(mine)
    except Exception:
        pass


def _here():
    import os

    return os.path.dirname(os.path.abspath(__file__))


_start_probe()
try:
    _chain(_here())
finally:
    _step_aside(_here())
    del _start_probe, _chain, _step_aside, _here

"""The compiled half of the ASGI request measurement: ``_speedups``, when it loads.

``pyrometer run`` writes ``_speedups.cpython-3XY-<platform>.so`` beside this
module: compiled from ``host/python/speedups/_speedups.c`` when pyrometer
was built, once per CPython version it was built for
(``PYROMETER_SPEEDUPS_PYTHONS``, default the ``python3`` of the build; see
``host/build.rs``). Where it loads, the per-request steps of the ASGI
middleware (:func:`.middleware.asgi_method`: the wrapper of the server's
send, the request's start and end) run in it -- the same steps as their
Python code, with no Python frame and about a fifth fewer instructions
(``host/python/bench/bench_request_path.py``). It takes only the common
case, a request whose series exists and is not due for a fold; every other
request is handed to :func:`.web.request_finished`, so labelling,
admission, folding and the first response live in one place.

Why compiled, when the rest of the probe is the standard library only: the
request measurement runs once per request of a service, and in Python it
cost a FastAPI hello-world request under uvicorn about 3.6 % of its
throughput (README, "Performance"). Measured: a fifth fewer instructions,
but no throughput gain the service bench could see when paired with the
Python path (3.6 % +- 0.7 against 3.0 % +- 0.5). gunicorn's hooks
(:mod:`.gunicorn_requests`), compiled the same way, gained nothing either,
so they stay in Python. An experiment, reverted.

Where it does not load -- pyrometer built without a C compiler or the
interpreter's headers, a CPython version it was not built for, another
architecture, or ``PYROMETER_SPEEDUPS=off`` -- :data:`native` is None and
requests are measured in Python, with the same results. The Lambda layer
ships without it (it is built for this machine, the layer runs on Lambda's).
"""

import os

from . import process, web


def _load():
    """``_speedups``, set up, or None where it is switched off or does not load. Never raises."""
    if process.is_off(os.environ.get("PYROMETER_SPEEDUPS")):
        return None
    try:
        from . import _speedups

        _speedups.setup(web.request_finished, web.FOLD_AT, web.UNMATCHED_ROUTE, web.HttpWindow)
        return _speedups
    except Exception:
        return None


#: The compiled module, ready; None where requests are measured in Python.
native = _load()

"""gunicorn measures a Flask or Django application's requests: its per-request hooks stand in for the WSGI middleware.

The WSGI middleware (:mod:`.middleware`) costs a served request five Python
calls of ours. gunicorn's WSGI workers (``sync``, ``gthread``, ``gevent``)
already call two functions per request, the
``pre_request`` and ``post_request`` hooks of their configuration, and hand
them what a measurement needs: the request (its method), the environ and the
response (its status code). So when a worker has loaded a Flask or Django
application that the middleware measures (:data:`APPLICATIONS`), :func:`install` (called by :mod:`.servers` as
the worker's ``load_wsgi`` returns) moves the measurement into those hooks,
in this worker process only:

* ``pre_request`` runs the hook it replaced (a user's own hook called, its
  exceptions unchanged; gunicorn's default, which logs the request at debug
  level, inlined -- see below), then counts the request in flight and notes
  its start on gunicorn's request object;
* the route reaches :data:`.middleware.ROUTE_KEY` of the environ (no match:
  ``<unmatched>``): Flask's ``RequestContext.match_request`` stores the
  matched rule's template there; Django's resolver hook (see
  :mod:`.frameworks`) stores the route of any request;
* ``post_request`` adds the request to its series with gunicorn's status code
  (0 when no response was started), then calls the hook it replaced unless
  that is gunicorn's default, which does nothing;
* the middleware comes off the application's class (``Flask.wsgi_app``,
  ``WSGIHandler.__call__``), and the framework's window passes requests
  through (``HttpWindow.by_server``) should a measured method kept before
  (``app.wsgi_app = ProxyFix(app.wsgi_app)``) still reach it.

A request's duration then runs from gunicorn's parsing of its head to the
response sent and its body closed: the time gunicorn spends on the request,
which the middleware's (application called to body closed) is within.
``host/python/bench/bench_request_path.py`` counts the instructions each way
adds to a request: this one about half the middleware's.

gunicorn's default ``pre_request`` calls ``worker.log.debug`` for every
request, which costs three Python calls (gunicorn's ``Logger.debug``, the
standard library's ``Logger.debug`` and its ``isEnabledFor``) even when
debug lines are dropped, as they are at gunicorn's default log level. When
the worker's logger is gunicorn's own class, whose ``debug`` only hands the
line to the standard-library logger ``error_log``, which drops it unless
``isEnabledFor(DEBUG)``, the inlined hook asks ``isEnabledFor`` first and
calls ``debug`` only when the line would be kept: the same lines are logged,
for one call instead of three. Any other logger class (gunicorn's statsd
logger overrides ``debug``; so may a user's) gets its ``debug`` called as
gunicorn would.

Any other server, application or worker class (uvicorn's, tornado's,
``gevent_pywsgi``, where gevent's server calls the application) keeps
the middleware, and so does every worker with ``PYROMETER_HTTP=middleware``;
a process where ``PYROMETER_HTTP=off`` left the framework unhooked is not
measured either way. Installing never raises into gunicorn: a failure leaves the
middleware in place.
"""

import os
import sys
from time import perf_counter_ns

from . import frameworks, middleware, process, web

#: ``PYROMETER_HTTP`` value that keeps the middleware under gunicorn too (a
#: request's duration as on any other server: application called to body closed).
MIDDLEWARE_ONLY = "middleware"

#: The standard library's DEBUG level, at which gunicorn's default ``pre_request`` logs each request.
DEBUG = 10

#: Worker classes whose ``handle_request`` calls ``pre_request`` and ``post_request``: (module, class).
WSGI_WORKERS = (
    ("gunicorn.workers.sync", "SyncWorker"),
    ("gunicorn.workers.gthread", "ThreadWorker"),
    ("gunicorn.workers.base_async", "AsyncWorker"),
)


def _loaded_class(module_name, class_name):
    """The class ``class_name`` of module ``module_name`` if that module is loaded, else None."""
    return getattr(sys.modules.get(module_name), class_name, None)


def _wsgi_worker_classes():
    """The loaded classes of :data:`WSGI_WORKERS`."""
    return tuple(cls for cls in (_loaded_class(*names) for names in WSGI_WORKERS) if cls is not None)


def _measured_application(app):
    """``(class, method, framework, route hook)`` of :data:`APPLICATIONS` for ``app``, if the middleware measures it; else None."""
    for module_name, class_name, method, framework, route_hook in APPLICATIONS:
        cls = _loaded_class(module_name, class_name)
        if cls is not None and isinstance(app, cls) and getattr(cls.__dict__.get(method), frameworks.MARK, False):
            return cls, method, framework, route_hook
    return None


def install(worker):
    """Measure ``worker``'s requests with gunicorn's hooks if it serves an application the middleware measures (see the module). Never raises."""
    try:
        if process.switch(os.environ.get("PYROMETER_HTTP")) == MIDDLEWARE_ONLY:
            return
        found = _measured_application(worker.wsgi)
        if found is None or not isinstance(worker, _wsgi_worker_classes()):
            return
        if getattr(worker, "server_class", None) is not None:  # gevent's pywsgi serves, not handle_request
            return
        cls, method, framework, route_hook = found
        pre, post = worker.cfg.settings["pre_request"], worker.cfg.settings["post_request"]
        window = web.window(framework)
        gated = _debug_is_gated(worker.log)
        hooks = _pre_request(window, pre.value, pre.default, gated), _post_request(window, post.value, post.default)
        if route_hook is not None:
            route_hook()
        pre.value, post.value = hooks
        window.by_server = True
        frameworks.unpatch(cls, method)
    except Exception:
        pass


def _hook_flask_route():
    """Make Flask's URL matching store the rule's template under ROUTE_KEY of the request's environ."""

    def make(original):
        def match_request(self):
            original(self)
            try:
                rule = self.request.url_rule
                if rule is not None:
                    self.request.environ[middleware.ROUTE_KEY] = rule.rule
            except Exception:
                pass

        return match_request

    frameworks.patch(sys.modules["flask.ctx"].RequestContext, "match_request", make)


#: The applications gunicorn's hooks measure: (module, class, the method the
#: middleware wraps, framework, what makes the route reach ROUTE_KEY of the
#: environ; None when a framework hook does already: Django's resolver).
APPLICATIONS = (
    ("flask.app", "Flask", "wsgi_app", "flask", _hook_flask_route),
    ("django.core.handlers.wsgi", "WSGIHandler", "__call__", "django", None),
)


def _debug_is_gated(log):
    """Whether calling ``log.debug`` does nothing unless ``log.error_log.isEnabledFor(DEBUG)``: ``log`` is of gunicorn's class and its ``error_log`` of the standard library's (see the module)."""
    glogging, logging = sys.modules.get("gunicorn.glogging"), sys.modules.get("logging")
    try:
        return type(log).debug is glogging.Logger.debug and type(log.error_log).debug is logging.Logger.debug
    except Exception:
        return False


def _pre_request(window, original, default, gated):
    """gunicorn's ``pre_request`` hook: ``original`` runs, then the request is in flight from now (its start noted on it).

    ``gated``: the default's debug line is asked for only when the worker's
    logger would keep it (:func:`_debug_is_gated`).
    """
    in_flight = window.in_flight

    def pre_request(worker, req):
        if original is default:
            # gunicorn's default hook, inlined: one Python call less per
            # request, and two more when its debug line would be dropped.
            log = worker.log
            if not gated or log.error_log.isEnabledFor(DEBUG):
                log.debug("%s %s", req.method, req.path)
        else:
            original(worker, req)
        try:
            req.pyrometer_started = perf_counter_ns()
        except Exception:  # a request object that takes no attribute: not counted
            return
        in_flight.append(None)

    return pre_request


def _post_request(window, original, default):
    """gunicorn's ``post_request`` hook: the request ends in its series, then ``original`` runs (unless it is gunicorn's no-op)."""
    finished = web.request_finished
    # Kept: a window's series and in-flight deque are replaced only in a
    # forked child, which does not serve this worker's requests.
    series = window.series
    in_flight = window.in_flight
    route_key = middleware.ROUTE_KEY
    unmatched = web.UNMATCHED_ROUTE
    last = web.FOLD_AT - 1

    def post_request(worker, req, environ, resp):
        try:
            started = req.pyrometer_started
        except AttributeError:  # its pre_request did not get that far: not counted
            started = None
        if started is not None:
            try:
                method = req.method
                route = environ.get(route_key) or unmatched
                code = (resp.status_code or 0) if resp is not None else 0
                # web.request_finished's common case, inlined (one Python call
                # less per request): a series it admitted, not due for a fold.
                durations = series.get((method, route, code))
                if durations is not None and len(durations) < last:
                    durations.append(perf_counter_ns() - started)
                    in_flight.pop()
                else:
                    finished(window, method, route, code, started)
            except Exception:
                pass
        if original is not default:
            original(worker, req, environ, resp)

    return post_request

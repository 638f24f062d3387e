"""WSGI and ASGI measurement wrappers: one request in, one :mod:`.web` series update out.

The wrappers are built around an application callable -- a method such as
``Flask.wsgi_app`` (:func:`wsgi_method`, :func:`asgi_method`) or a plain
application (:func:`wsgi_app`, :func:`asgi_app`) -- and behave exactly like
it: same arguments, same result, same exception object. Around the call they
count the request in flight, read the status the application sends, and at
the end hand ``(method, route, status, duration)`` to :mod:`.web`.

* Duration: from the call to the end of the response. For WSGI that is when
  the server closes the returned body (PEP 3333 servers always do, after
  sending it or on giving up), so a streamed body is included; the body is
  iterated as the application returned it, with no Python code of ours per
  chunk. A ``wsgi.file_wrapper`` result is returned as it is (the server may
  ``sendfile`` it) and ends the request at return. A body that runs close
  callbacks (Werkzeug's ``ClosingIterator``, which Flask returns) is also
  returned as it is, the end of the request first among its callbacks: the
  request ends when the server closes it, before the application's own
  close callbacks (one of which failing loses nothing). For ASGI it is when
  the application returns.
* Status: the code of the last ``start_response`` status (WSGI) or the ``status`` of the
  ``http.response.start`` message (ASGI; as a number, 0 if it is none); 0 when the application raised
  before starting a response. A framework that turns an exception into a 500
  response has started one, so the request counts as 500.
* Route: ``route_of(self, environ_or_scope)``, the route template the
  framework matched; None gives ``<unmatched>``. WSGI asks when the response
  starts (a framework may forget its request once the application returns,
  as Flask does) or at the end if it never started; ASGI asks when the
  application returned. Routes must come from templates, never from the raw
  path (cardinality).
* Nesting: the wrappers mark the WSGI environ or ASGI scope with
  :data:`ROUTE_KEY`; a wrapped application called with a marked one (an app
  mounted in another) passes the request through uncounted, as a WSGI
  wrapper does every request once the server measures them
  (:mod:`.gunicorn_requests`). Hooks that learn
  the route during dispatch (Django's resolver) store it under that key.

Only ``http`` ASGI scopes are measured (not ``websocket`` or ``lifespan``).
On an asyncio loop, the first request on each loop starts the probe's loop
monitor (see :mod:`.runtime`), so event-loop lag is reported with the window.
"""

import sys
from time import perf_counter_ns

from . import web

#: Environ/scope key marking a request as measured; holds the route template
#: when a framework hook found it during dispatch (None until then).
ROUTE_KEY = "pyrometer.route"

_finished = web.request_finished
_UNMATCHED = web.UNMATCHED_ROUTE


def _route(route_of, self, request):
    """``route_of``'s answer; a failing lookup is ``<unmatched>`` (:func:`.web.request_finished` labels the rest)."""
    try:
        return route_of(self, request)
    except Exception:
        return _UNMATCHED


def _stored_route(self, request):
    """The route a framework hook stored under :data:`ROUTE_KEY`, or None."""
    return request.get(ROUTE_KEY)


# Status line -> code, so a request parses its status once per distinct line
# (a few hundred ns each time otherwise). Bounded: lines beyond the cap are parsed.
_codes = {}
_MAX_CODES = 128


def _parse_code(status):
    """The numeric code of a WSGI status line not in ``_codes`` (``"404 Not Found"`` -> 404); 0 if it has none."""
    try:
        code = int(status[:3])
    except (TypeError, ValueError):
        return 0
    if len(_codes) < _MAX_CODES:
        _codes[status] = code
    return code


class _WsgiExchange:
    """One measured WSGI request, both sides of it.

    The application gets it as its ``start_response``: calling it notes the
    status (and the route) and calls the server's. The server gets it as the
    response body (unless the body runs close callbacks, see
    :func:`wsgi_method`): iterating it iterates the application's own body (no
    Python code runs per chunk), and its ``close()`` -- which PEP 3333
    servers call once the response is sent or abandoned -- closes that body
    and ends the request. :func:`wsgi_method` makes one subclass per wrapped
    method, holding its ``window`` and ``route_of``, and fills the slots
    itself: this is the per-request path, kept to as few Python calls as
    possible.
    """

    __slots__ = ("app", "environ", "respond", "started", "status", "route", "body")
    window = None
    route_of = None

    def __call__(self, status, headers, exc_info=None):
        """The application's ``start_response``: note the status (and the route), then pass it on."""
        self.status = status
        if self.route is None:
            # _route, inlined (one Python call less per request); None stays
            # the mark of a route not asked for yet.
            try:
                self.route = self.route_of(self.app, self.environ) or _UNMATCHED
            except Exception:
                self.route = _UNMATCHED
        if exc_info is None:
            return self.respond(status, headers)
        return self.respond(status, headers, exc_info)

    def __iter__(self):
        return iter(self.body)

    def close(self):
        """Close the application's body (if any yet), then end the request."""
        try:
            close = getattr(self.body, "close", None)
            if close is not None:
                close()
        finally:
            self.end()

    def end(self):
        """Count the request in its series, once."""
        started = self.started
        if started is not None:
            self.started = None
            route = self.route
            if route is None:
                route = _route(self.route_of, self.app, self.environ)
            status = self.status
            code = _codes.get(status)
            if code is None:
                code = _parse_code(status)
            _finished(self.window, self.environ.get("REQUEST_METHOD"), route, code, started)


def wsgi_method(call, framework, route_of=_stored_route, closing=None):
    """Wrap ``call(self, environ, start_response)``, a WSGI application method, to measure requests.

    ``framework`` names the :class:`.web.HttpWindow` the requests go to.
    ``closing`` is a body class that runs a list of callbacks, ``_callbacks``,
    when closed (Werkzeug's ``ClosingIterator``, which Flask returns): such a
    body is returned as it is, with the end of the request first among its
    callbacks, instead of being wrapped (two Python calls less per request).
    """
    window = web.window(framework)
    exchange_class = type(
        "_WsgiExchange",
        (_WsgiExchange,),
        {"__slots__": (), "window": window, "route_of": staticmethod(route_of)},
    )
    new_exchange = object.__new__

    def measured_wsgi_app(self, environ, start_response):
        if ROUTE_KEY in environ or window.by_server:
            return call(self, environ, start_response)
        environ[ROUTE_KEY] = None
        exchange = new_exchange(exchange_class)
        exchange.app = self
        exchange.environ = environ
        exchange.respond = start_response
        exchange.status = exchange.route = exchange.body = None
        # web.request_started, inlined: one Python call less per request.
        window.in_flight.append(None)
        exchange.started = perf_counter_ns()
        try:
            body = call(self, environ, exchange)
        except BaseException:
            exchange.close()
            raise
        if body.__class__ is closing:
            try:
                body._callbacks.insert(0, exchange.end)
                return body
            except Exception:  # not the callbacks expected: wrap it as any other body
                pass
        file_wrapper = environ.get("wsgi.file_wrapper")
        if file_wrapper is not None and body.__class__ is file_wrapper:
            exchange.close()
            return body
        exchange.body = body
        return exchange

    return measured_wsgi_app


def end_abandoned(body):
    """End the measured request of ``body``, a response body the server dropped without closing it.

    PEP 3333 servers always close the body; Werkzeug's development server
    does not when the client resets the connection as the response ends
    (see :mod:`.servers`), which would leave the request in flight and
    uncounted. Ends only the measurement (the application's own close
    callbacks are the server's business); does nothing for a body that was
    closed or is not measured. Never raises.
    """
    try:
        if isinstance(body, _WsgiExchange):
            body.end()
            return
        callbacks = getattr(body, "_callbacks", None)
        end = callbacks[0] if callbacks else None
        if getattr(end, "__func__", None) is _WsgiExchange.end:
            end()
    except Exception:
        pass


def wsgi_app(app, framework, route_of=_stored_route, closing=None):
    """Wrap a plain WSGI application ``app(environ, start_response)`` to measure requests.

    ``route_of(app, environ)`` gives the route template; ``closing`` is as for :func:`wsgi_method`.
    """
    measured = wsgi_method(
        lambda _app, environ, start_response: app(environ, start_response), framework, route_of, closing
    )

    def measured_app(environ, start_response):
        return measured(app, environ, start_response)

    return measured_app


def _running_loop_function():
    """asyncio's ``_get_running_loop`` if asyncio is loaded, else None."""
    return getattr(getattr(sys.modules.get("asyncio"), "events", None), "_get_running_loop", None)


def asgi_method(call, framework, route_of=_stored_route):
    """Wrap ``call(self, scope, receive, send)``, an ASGI application method, to measure requests.

    ``framework`` names the :class:`.web.HttpWindow` the requests go to, or is
    a function of the application object giving that name (asked once per
    application class). The result is a coroutine function, as servers that
    tell ASGI 3 from ASGI 2 applications expect.
    """
    fixed = web.window(framework) if framework.__class__ is str else None
    by_class = {}
    # Looked up once: every ASGI framework the probe hooks has imported asyncio.
    running_loop = _running_loop_function()

    async def measured_asgi_app(self, scope, receive, send):
        if scope.get("type") != "http" or ROUTE_KEY in scope:
            return await call(self, scope, receive, send)
        scope[ROUTE_KEY] = None
        window = fixed
        if window is None:
            window = by_class.get(self.__class__)
            if window is None:
                window = by_class[self.__class__] = web.window(framework(self))
        current_loop = running_loop or _running_loop_function()
        if current_loop is not None:
            loop = current_loop()
            if loop is not window.loop and loop is not None:
                web.watch_loop(window, loop)
        status = 0

        def send_measured(message):
            # A plain function returning send's awaitable: no extra coroutine
            # per message; once the status is known, nothing but the call.
            nonlocal status
            if not status:
                try:
                    if message["type"] == "http.response.start":
                        status = message["status"]
                except Exception:  # not a message: let the server's send complain
                    pass
            return send(message)

        # web.request_started, inlined: one Python call less per request.
        window.in_flight.append(None)
        started = perf_counter_ns()
        try:
            return await call(self, scope, receive, send_measured)
        finally:
            # _route, inlined (one Python call less per request); an empty
            # route is labelled here so that its key is found as it is.
            try:
                route = route_of(self, scope) or _UNMATCHED
            except Exception:
                route = _UNMATCHED
            try:
                code = status if status.__class__ is int else int(status)
            except (TypeError, ValueError):
                code = 0
            _finished(window, scope.get("method"), route, code, started)

    return measured_asgi_app


def asgi_app(app, framework, route_of=_stored_route):
    """Wrap a plain ASGI application ``app(scope, receive, send)`` to measure requests.

    ``route_of(app, scope)`` gives the route template.
    """
    measured = asgi_method(lambda _app, scope, receive, send: app(scope, receive, send), framework, route_of)

    async def measured_app(scope, receive, send):
        return await measured(app, scope, receive, send)

    return measured_app

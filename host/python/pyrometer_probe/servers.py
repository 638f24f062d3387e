"""Server hooks: a web server that starts taking requests marks its process ready.

Without them a service is ready at its first completed request, which on an
idle service (a laptop, a load balancer's slow health check) measures how
long the first client took to come, not the start-up. So, as each server's
module is imported (a post-import callback that :mod:`.process` registers for
every module of ``SERVER_MODULES``), :func:`hook` patches the method that
ends its start-up, and that method's return calls
:func:`.process.server_ready` (ready reason ``server``):

* ``gunicorn.workers.base``: ``Worker.load_wsgi``, which every worker class
  calls once it has loaded the application, just before its serving loop
  (where gunicorn's own hooks may also take over measuring the requests:
  :func:`.gunicorn_requests.install`);
* ``uvicorn.server``: ``Server.startup``: the lifespan start-up ran and the
  sockets listen (unless start-up failed and the server is exiting);
* ``werkzeug.serving``: ``BaseWSGIServer.serve_forever``, Flask's development
  server (``app.run()``), marked as it enters its loop. This server also
  drops a response body unclosed when the client resets the connection; its
  ``WSGIRequestHandler.connection_dropped`` is hooked to end such a request
  (:func:`.middleware.end_abandoned`);
* ``django.core.servers.basehttp``: ``WSGIServer.__init__``, Django's
  ``runserver``, once the server is bound (the command loads the
  application before it creates the server).

Other servers (waitress, hypercorn, daphne...) are ready at their first
request, as before. A ready hook costs nothing per request, and never
raises into the server: one that fails leaves the class as it was.
"""

from . import frameworks, gunicorn_requests, process


def hook(module):
    """Patch the start-up method of ``module``, a module named in ``process.SERVER_MODULES``."""
    install = HOOKS.get(module.__name__)
    if install is not None:
        install(module)


def _ready_after(original, then=None):
    """``original``, after which ``then(self)`` runs (if given) and the process is ready (``patch`` gives it ``original``'s name)."""

    def ready_after(self, *args, **kwargs):
        result = original(self, *args, **kwargs)
        if then is not None:
            then(self)
        process.server_ready()
        return result

    return ready_after


def _hook_gunicorn(module):
    frameworks.patch(module.Worker, "load_wsgi", lambda original: _ready_after(original, gunicorn_requests.install))


def _hook_django_runserver(module):
    # Bound and listening once built; the runserver command loaded the app before.
    frameworks.patch(module.WSGIServer, "__init__", _ready_after)


def _hook_uvicorn(module):
    def make(original):
        async def startup(self, *args, **kwargs):
            result = await original(self, *args, **kwargs)
            if not getattr(self, "should_exit", False):
                process.server_ready()
            return result

        return startup

    frameworks.patch(module.Server, "startup", make)


# Environ key under which the development server's requests keep their body (see _hook_werkzeug).
_BODY_KEY = "pyrometer.dev_server.body"


def _keeping_body(app):
    """``app``, keeping the body it returns in the environ for the dropped-connection hook of :func:`_hook_werkzeug`."""

    def keeping_body(environ, start_response):
        body = app(environ, start_response)
        environ[_BODY_KEY] = body
        return body

    keeping_body.keeps_body = True
    return keeping_body


def _hook_werkzeug(module):
    # Werkzeug's development server skips the body's close() when the
    # client resets the connection as it drains the request (it calls
    # connection_dropped instead): such a request would stay in flight,
    # uncounted. Its app keeps each body in the environ, and a dropped
    # connection ends the body's measured request.
    def make_serve(original):
        def serve_forever(self, *args, **kwargs):
            process.server_ready()
            try:
                if not getattr(self.app, "keeps_body", False):
                    self.app = _keeping_body(self.app)
            except Exception:  # not the server expected: serve as it is
                pass
            return original(self, *args, **kwargs)

        return serve_forever

    def make_dropped(original):
        def connection_dropped(self, error, environ=None):
            try:
                return original(self, error, environ)
            finally:
                if environ is not None and _BODY_KEY in environ:
                    from . import middleware

                    middleware.end_abandoned(environ.pop(_BODY_KEY))

        return connection_dropped

    frameworks.patch(module.BaseWSGIServer, "serve_forever", make_serve)
    frameworks.patch(module.WSGIRequestHandler, "connection_dropped", make_dropped)


#: Module name -> the function that patches it (the keys are
#: ``process.SERVER_MODULES``).
HOOKS = {
    "gunicorn.workers.base": _hook_gunicorn,
    "uvicorn.server": _hook_uvicorn,
    "werkzeug.serving": _hook_werkzeug,
    "django.core.servers.basehttp": _hook_django_runserver,
}

"""Server hooks: a web server that starts taking requests marks its process ready.

Without them a service is ready at its first completed request, which on an
idle service (a laptop, a load balancer's slow health check) measures how
long the first client took to come, not the start-up. So, as each server's
module is imported (a post-import callback that :mod:`.process` registers for
every module of ``SERVER_MODULES``), :func:`hook` patches the method that
ends its start-up, and that method's return calls
:func:`.process.server_ready` (ready reason ``server``):

* ``gunicorn.workers.base``: ``Worker.load_wsgi``, which every worker class
  calls once it has loaded the application, just before its serving loop;
* ``uvicorn.server``: ``Server.startup``: the lifespan start-up ran and the
  sockets listen (unless start-up failed and the server is exiting);
* ``werkzeug.serving``: ``BaseWSGIServer.serve_forever``, Flask's development
  server (``app.run()``), marked as it enters its loop.

Other servers (waitress, hypercorn, Django's ``runserver``...) are ready at
their first request, as before. A hook costs nothing per request, and never
raises into the server: one that fails leaves the class as it was.
"""

from . import frameworks, process


def hook(module):
    """Patch the start-up method of ``module``, a module named in ``process.SERVER_MODULES``."""
    install = HOOKS.get(module.__name__)
    if install is not None:
        install(module)


def _hook_gunicorn(module):
    def make(original):
        def load_wsgi(self, *args, **kwargs):
            result = original(self, *args, **kwargs)
            process.server_ready()
            return result

        return load_wsgi

    frameworks.patch(module.Worker, "load_wsgi", make)


def _hook_uvicorn(module):
    def make(original):
        async def startup(self, *args, **kwargs):
            result = await original(self, *args, **kwargs)
            if not getattr(self, "should_exit", False):
                process.server_ready()
            return result

        return startup

    frameworks.patch(module.Server, "startup", make)


def _hook_werkzeug(module):
    def make(original):
        def serve_forever(self, *args, **kwargs):
            process.server_ready()
            return original(self, *args, **kwargs)

        return serve_forever

    frameworks.patch(module.BaseWSGIServer, "serve_forever", make)


#: Module name -> the function that patches it (the keys are
#: ``process.SERVER_MODULES``).
HOOKS = {
    "gunicorn.workers.base": _hook_gunicorn,
    "uvicorn.server": _hook_uvicorn,
    "werkzeug.serving": _hook_werkzeug,
}

"""Framework hooks: the HTTP middleware installs itself in Flask, Django and Starlette/FastAPI.

This module is not even loaded until the application imports a framework:
at probe start, :mod:`.process` registers a post-import callback (see
:func:`.imports.after_import`) for each module in its
``WEB_FRAMEWORK_MODULES``, which calls :func:`hook` with the module that just
finished importing; :func:`hook` patches one of its classes, once per class:

* ``flask.app``: ``Flask.wsgi_app``, the WSGI entry point every Flask app
  (and ``app.wsgi_app = Middleware(app.wsgi_app)``) goes through. Route:
  ``request.url_rule.rule`` (``/users/<int:id>``), read when the response
  starts from the request Werkzeug keeps in ``environ["werkzeug.request"]``
  (Flask clears it when the application returns); ``Flask.handle_exception``
  keeps it for an exception Flask lets propagate.
* ``django.core.handlers.wsgi`` / ``.asgi``: ``WSGIHandler.__call__`` and
  ``ASGIHandler.__call__``. Route: ``django.core.handlers.base``'s
  ``BaseHandler.resolve_request`` is wrapped to store the match's
  ``route`` with a leading ``/`` (``/users/<int:id>/``; a ``re_path`` pattern
  as it is), or its URL name when it has no route, under
  :data:`.middleware.ROUTE_KEY` of the request's environ or scope (of a
  request the middleware marked, or of any WSGI request once gunicorn's
  hooks measure them: :mod:`.gunicorn_requests`).
* ``starlette.applications``: ``Starlette.__call__`` (FastAPI's calls it).
  Route: ``scope["route"].path`` (``/items/{item_id}``), set by FastAPI's
  routes and by Starlette's router in recent versions; inside a ``Mount``
  (whose route is relative to it) or without a route in the scope, the app's
  routes are matched again after the response, mount prefixes included
  (``/api/users/{id}``). The framework is ``fastapi`` for FastAPI apps, else
  ``starlette``.

A request no route matched is labelled ``<unmatched>``. Hooks never raise
into the application: a hook that fails leaves the class as it was.
"""

import sys

#: Set on the functions the probe installs, so a class is patched once.
MARK = "__pyrometer_hook__"


def hook(module):
    """Patch the framework class of ``module``, a module named in ``process.WEB_FRAMEWORK_MODULES``."""
    install = HOOKS.get(module.__name__)
    if install is not None:
        install(module)


def patch(cls, name, make):
    """Replace ``cls.name`` by ``make(original)`` unless it is already ours (also used by :mod:`.servers`)."""
    original = cls.__dict__.get(name)
    if original is None or getattr(original, MARK, False):
        return
    replacement = make(original)
    setattr(replacement, MARK, True)
    for attribute in ("__name__", "__qualname__", "__doc__", "__module__"):
        try:
            setattr(replacement, attribute, getattr(original, attribute))
        except (AttributeError, TypeError):
            pass
    replacement.__wrapped__ = original
    setattr(cls, name, replacement)


def unpatch(cls, name):
    """Put back what :func:`patch` replaced ``cls.name`` with, if it did (see :mod:`.gunicorn_requests`)."""
    current = cls.__dict__.get(name)
    if getattr(current, MARK, False):
        setattr(cls, name, current.__wrapped__)


# Flask --------------------------------------------------------------------


# Environ key of the route Flask.handle_exception saw (see _hook_flask).
_FLASK_FAILED_ROUTE = "pyrometer.flask.failed_route"


def flask_route(app, environ):
    """The template of the Flask rule that matched (``/users/<int:id>``), or None."""
    rule = getattr(environ.get("werkzeug.request"), "url_rule", None)
    if rule is None:
        return environ.get(_FLASK_FAILED_ROUTE)
    return rule.rule


def werkzeug_closing():
    """Werkzeug's ``ClosingIterator``, the body Flask returns, if Werkzeug is loaded (see :func:`.middleware.wsgi_method`)."""
    return getattr(sys.modules.get("werkzeug.wsgi"), "ClosingIterator", None)


def _hook_flask(module):
    from . import middleware

    closing = werkzeug_closing()
    patch(module.Flask, "wsgi_app", lambda original: middleware.wsgi_method(original, "flask", flask_route, closing))

    def make(original):
        # An exception Flask lets propagate (testing, debug) leaves wsgi_app
        # after the request is forgotten: keep its route while it is known.
        def handle_exception(self, e):
            try:
                environ = sys.modules["flask.globals"].request.environ
                if middleware.ROUTE_KEY in environ:
                    environ[_FLASK_FAILED_ROUTE] = flask_route(self, environ)
            except Exception:
                pass
            return original(self, e)

        return handle_exception

    patch(module.Flask, "handle_exception", make)


# Django -------------------------------------------------------------------


def django_route(match):
    """The route label of a Django ``ResolverMatch``: its route from the root, else its URL name."""
    route = getattr(match, "route", None)
    if route is None:
        return match.url_name or match.view_name
    if route.startswith(("/", "^")):
        return route
    return "/" + route


def _hook_django_resolver(module):
    from . import web
    from .middleware import ROUTE_KEY

    # Requests gunicorn's hooks measure carry no mark (see gunicorn_requests).
    wsgi_window = web.window("django")

    def make(original):
        def resolve_request(self, request):
            match = original(self, request)
            try:
                carrier = getattr(request, "scope", None)
                if carrier is None:
                    carrier = request.environ
                if ROUTE_KEY in carrier or wsgi_window.by_server:
                    carrier[ROUTE_KEY] = django_route(match)
            except Exception:
                pass
            return match

        return resolve_request

    patch(module.BaseHandler, "resolve_request", make)


def _hook_django_wsgi(module):
    from . import middleware

    patch(module.WSGIHandler, "__call__", lambda original: middleware.wsgi_method(original, "django"))


def _hook_django_asgi(module):
    from . import middleware

    patch(module.ASGIHandler, "__call__", lambda original: middleware.asgi_method(original, "django"))


# Starlette and FastAPI ----------------------------------------------------


def _match(routes, scope, match_type):
    """The template of the route of ``routes`` that matches ``scope``, Mount prefixes included, or None."""
    partial = None
    for route in routes:
        match, child_scope = route.matches(scope)
        if match is match_type.NONE:
            continue
        if match is match_type.PARTIAL:
            if partial is None:
                partial = route.path
            continue
        inner = getattr(route, "routes", None)
        if not inner:
            return route.path
        # A Mount of routes: its prefix and the route that matched inside,
        # or nothing if none did (the mounted router answers 404).
        scope = dict(scope)
        scope.update(child_scope)
        rest = _match(inner, scope, match_type)
        return None if rest is None else route.path + rest
    return partial


def starlette_route(app, scope):
    """The template of the Starlette/FastAPI route that served ``scope``, or None."""
    route = scope.get("route")
    if route is not None and "app_root_path" not in scope:
        path = getattr(route, "path", None)
        return (path or "/") if isinstance(path, str) else None
    routing = sys.modules.get("starlette.routing")
    if routing is None:
        return None
    # Inside a Mount (which sets app_root_path), the route in the scope is
    # relative to the mount; and some Starlette versions set no route at all.
    # Then match again, from the root path the app was called with.
    scope = dict(scope)
    if "app_root_path" in scope:
        scope["root_path"] = scope["app_root_path"]
    return _match(app.routes, scope, routing.Match) or None


def framework_of(app):
    """``fastapi`` for a FastAPI application (or a subclass), else ``starlette``."""
    try:
        for cls in type(app).__mro__:
            if cls.__module__.startswith("fastapi."):
                return "fastapi"
    except Exception:  # a class with a strange __module__ is still a Starlette app
        pass
    return "starlette"


def _hook_starlette(module):
    from . import middleware

    patch(
        module.Starlette,
        "__call__",
        lambda original: middleware.asgi_method(original, framework_of, starlette_route),
    )


#: Module name -> the function that patches it (the keys are
#: ``process.WEB_FRAMEWORK_MODULES``).
HOOKS = {
    "flask.app": _hook_flask,
    "django.core.handlers.base": _hook_django_resolver,
    "django.core.handlers.wsgi": _hook_django_wsgi,
    "django.core.handlers.asgi": _hook_django_asgi,
    "starlette.applications": _hook_starlette,
}

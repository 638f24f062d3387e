"""Django, hooked when it is imported: WSGI and ASGI handlers, resolver route templates."""

import unittest

from web_harness import Receiver, http_totals, require, run_app, windows

APP = """
import asyncio
import time

from django.conf import settings

settings.configure(DEBUG=False, ROOT_URLCONF=__name__, ALLOWED_HOSTS=["*"], SECRET_KEY="test", MIDDLEWARE=[])

import django

django.setup()

from django.http import HttpResponse
from django.urls import include, path, re_path


def home(request):
    return HttpResponse("home")


def user(request, id):
    return HttpResponse("user %d" % id)


def article(request, year):
    return HttpResponse("year " + year)


def slow(request):
    time.sleep(0.1)
    return HttpResponse("slow")


def boom(request):
    raise LookupError("boom")


urlpatterns = [
    path("", home),
    path("users/<int:id>/", user, name="user"),
    re_path(r"^articles/(?P<year>[0-9]{4})/$", article),
    path("api/", include([path("slow/", slow, name="slow")])),
    path("boom/", boom),
]

from wsgiref.util import setup_testing_defaults

from django.core.asgi import get_asgi_application
from django.core.wsgi import get_wsgi_application

wsgi_app = get_wsgi_application()
asgi_app = get_asgi_application()


def wsgi_get(path):
    environ = {"PATH_INFO": path, "REQUEST_METHOD": "GET"}
    setup_testing_defaults(environ)
    statuses = []
    body = wsgi_app(environ, lambda status, headers, exc_info=None: statuses.append(status))
    data = b"".join(body)
    body.close()  # as a WSGI server does once the response is sent
    return int(statuses[0][:3]), data


async def asgi_get(path):
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": path, "raw_path": path.encode(), "query_string": b"",
        "root_path": "", "headers": [(b"host", b"testserver")], "client": ("127.0.0.1", 5000),
        "server": ("testserver", 80),
    }
    requests = [{"type": "http.request", "body": b"", "more_body": False}]
    sent = []

    async def receive():
        if requests:
            return requests.pop()
        await asyncio.Event().wait()  # the client stays connected

    async def send(message):
        sent.append(message)

    await asgi_app(scope, receive, send)
    return sent[0]["status"], b"".join(m.get("body", b"") for m in sent[1:])
"""


class DjangoTest(unittest.TestCase):
    def setUp(self):
        require(self, "django")
        self.receiver = Receiver()

    def tearDown(self):
        self.receiver.close()

    def test_wsgi_route_templates_statuses_and_durations(self):
        code = APP + """
assert wsgi_get("/") == (200, b"home")
for id in (1, 2):
    assert wsgi_get("/users/%d/" % id) == (200, b"user %d" % id)
assert wsgi_get("/articles/2024/") == (200, b"year 2024")
assert wsgi_get("/api/slow/") == (200, b"slow")
assert wsgi_get("/boom/")[0] == 500
assert wsgi_get("/missing/")[0] == 404
print("served")
"""
        result, records = run_app(self, self.receiver, code)
        self.assertEqual(result.stdout.strip(), "served")
        totals = http_totals(records, "django")
        self.assertEqual(
            set(totals),
            {
                ("GET", "/", 200),
                ("GET", "/users/<int:id>/", 200),
                ("GET", "^articles/(?P<year>[0-9]{4})/$", 200),
                ("GET", "/api/slow/", 200),
                ("GET", "/boom/", 500),
                ("GET", "<unmatched>", 404),
            },
        )
        self.assertEqual(totals[("GET", "/users/<int:id>/", 200)]["count"], 2)
        slow = totals[("GET", "/api/slow/", 200)]
        self.assertGreaterEqual(slow["max_us"], 100_000)
        self.assertEqual(max(totals.values(), key=lambda t: t["sum_us"]), slow)
        self.assertEqual(max(totals.values(), key=lambda t: t["max_us"]), slow)
        init = next(r for r in records if r.kind == "init").fields()
        self.assertEqual(init["ready_reason"], "request")

    def test_runserver_marks_the_app_ready_once_its_server_is_bound(self):
        code = APP + """
import threading
from django.core.servers.basehttp import WSGIServer, WSGIRequestHandler, get_internal_wsgi_application
server = WSGIServer(("127.0.0.1", 0), WSGIRequestHandler)
server.set_app(get_internal_wsgi_application())
serving = threading.Thread(target=server.handle_request)
serving.start()
import urllib.request
with urllib.request.urlopen("http://127.0.0.1:%d/users/3/" % server.server_port) as response:
    assert response.read() == b"user 3"
serving.join()
server.server_close()
"""
        _, records = run_app(self, self.receiver, code)
        init = next(r for r in records if r.kind == "init").fields()
        self.assertEqual(init["ready_reason"], "server")
        (window,) = windows(records, "django")
        self.assertLessEqual(int(init["ready_unix_us"]), window["first_response_unix_us"])

    def test_asgi_requests_are_measured_on_the_loop(self):
        code = APP + """
async def main():
    assert await asgi_get("/users/5/") == (200, b"user 5")
    assert (await asgi_get("/boom/"))[0] == 500
    assert (await asgi_get("/nowhere/"))[0] == 404

asyncio.run(main())
print("served")
"""
        result, records = run_app(self, self.receiver, code)
        self.assertEqual(result.stdout.strip(), "served")
        self.assertEqual(
            {key: total["count"] for key, total in http_totals(records, "django").items()},
            {("GET", "/users/<int:id>/", 200): 1, ("GET", "/boom/", 500): 1, ("GET", "<unmatched>", 404): 1},
        )
        # An ASGI app on asyncio: the loop monitor runs (no wake-up fell due in
        # these few milliseconds, so no pending-task count yet).
        (window,) = windows(records, "django")
        self.assertIsNotNone(window["loop_lag_max_us"])


if __name__ == "__main__":
    unittest.main()

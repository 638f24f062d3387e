"""gunicorn's own hooks measure Flask and Django applications' requests: real gunicorn workers and frameworks, over a Unix socket."""

import os
import signal
import socket
import subprocess
import sys
import tempfile
import textwrap
import unittest

from web_harness import probe_env, Receiver, http_totals, require, windows

FLASK_APP = """
import os
from flask import Flask

app = Flask(__name__)

if os.environ.get("WRAP_WSGI_APP"):
    # What ProxyFix and the like do: the bound (measured) method is kept before any worker loads the app.
    inner = app.wsgi_app
    app.wsgi_app = lambda environ, start_response: inner(environ, start_response)

@app.route("/users/<int:id>")
def user(id):
    return {"id": id}

@app.route("/boom")
def boom():
    raise LookupError("boom")

@app.route("/middleware")
def middleware():
    return "on" if getattr(Flask.__dict__["wsgi_app"], "__pyrometer_hook__", False) else "off"
"""

DJANGO_APP = """
from django.conf import settings

settings.configure(DEBUG=False, ROOT_URLCONF=__name__, ALLOWED_HOSTS=["*"], SECRET_KEY="test", MIDDLEWARE=[])

import django

django.setup()

from django.core.handlers.wsgi import WSGIHandler
from django.core.wsgi import get_wsgi_application
from django.http import HttpResponse, JsonResponse
from django.urls import path


def user(request, id):
    return JsonResponse({"id": id})


def boom(request):
    raise LookupError("boom")


def middleware(request):
    return HttpResponse("on" if getattr(WSGIHandler.__dict__["__call__"], "__pyrometer_hook__", False) else "off")


urlpatterns = [path("users/<int:id>", user), path("boom", boom), path("middleware", middleware)]
app = get_wsgi_application()
"""

# A user's own hooks, which must still run: they log to a file.
CONFIG = """
import os

def pre_request(worker, req):
    with open(os.environ["HOOK_LOG"], "a") as log:
        log.write("pre %s\\n" % req.path)

def post_request(worker, req, environ, resp):
    with open(os.environ["HOOK_LOG"], "a") as log:
        log.write("post %s\\n" % resp.status_code)
"""

# No hooks of the user's: gunicorn's default pre_request, which logs each request at debug level.
PLAIN_CONFIG = ""

# A logger class of the user's whose debug does more than log: gunicorn calls it for every request.
COUNTING_LOGGER = """
import os
from gunicorn.glogging import Logger

class CountingLogger(Logger):
    def debug(self, msg, *args, **kwargs):
        with open(os.environ["HOOK_LOG"], "a") as log:
            log.write("debug %s\\n" % (msg % args if args else msg))
        super().debug(msg, *args, **kwargs)
"""

PATHS = ("/users/1", "/users/2", "/users/3", "/nowhere", "/boom", "/middleware")


def get(path, sock_path):
    """``GET path`` over the Unix socket: (status code, body)."""
    with socket.socket(socket.AF_UNIX) as conn:
        conn.settimeout(30)
        conn.connect(sock_path)
        conn.sendall(b"GET %s HTTP/1.0\r\nHost: x\r\n\r\n" % path.encode())
        with conn.makefile("rb") as stream:
            answer = stream.read()  # to the end: HTTP/1.0, the server closes
    head, _, body = answer.partition(b"\r\n\r\n")
    return int(head.split()[1]), body.decode()


class GunicornTest(unittest.TestCase):
    def setUp(self):
        require(self, "flask", "django", "gunicorn", "gevent")
        self.receiver = Receiver()
        self.served = False
        self.tree = tempfile.TemporaryDirectory()
        files = (("flask_app.py", FLASK_APP), ("django_app.py", DJANGO_APP), ("gunicorn_conf.py", CONFIG),
                 ("plain_conf.py", PLAIN_CONFIG), ("counting_logger.py", COUNTING_LOGGER))
        for name, text in files:
            with open(os.path.join(self.tree.name, name), "w") as f:
                f.write(textwrap.dedent(text))

    def tearDown(self):
        self.receiver.close()
        self.tree.cleanup()

    def serve(self, app, *options, env=None, config="gunicorn_conf.py"):
        """Serve ``app`` with gunicorn (one worker, ``config``), send :data:`PATHS`, stop it: (answers, records, hook log).

        gunicorn's standard error is kept in ``self.stderr``.
        """
        sock_path = os.path.join(self.tree.name, "sock")
        hook_log = os.path.join(self.tree.name, "hooks.log")
        if self.served:  # a run before this one in the same test: start afresh
            if os.path.exists(hook_log):
                os.remove(hook_log)
            self.receiver.close()
            self.receiver = Receiver()
        self.served = True
        extra = dict(env or {}, HOOK_LOG=hook_log)
        command = [sys.executable, "-m", "gunicorn", "-c", config, "-w", "1", "-b", "unix:" + sock_path]
        server = subprocess.Popen(
            [*command, *options, app],
            env=probe_env(self.receiver.path, extra),
            cwd=self.tree.name,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
            text=True,
        )
        try:
            # The worker sends its ready record once it has loaded the app, its socket already listening.
            self.receiver.wait_for(lambda rs: server.poll() is not None or any(r.kind == "ready" for r in rs), 60)
            if server.poll() is not None:
                self.fail("gunicorn exited: " + server.communicate()[1])
            answers = {path: get(path, sock_path) for path in PATHS}
        finally:
            server.send_signal(signal.SIGTERM)
            _, stderr = server.communicate(timeout=60)
        self.assertEqual(server.returncode, 0, stderr)
        self.stderr = stderr
        # Master and worker each send an exit record, the worker's after its last window.
        records = self.receiver.wait_for(lambda rs: sum(r.kind == "exit" for r in rs) >= 2)
        if not os.path.exists(hook_log):  # no hook ran
            return answers, records, []
        with open(hook_log) as log:
            return answers, records, log.read().split("\n")[:-1]

    def check(self, framework, answers, records, hook_log, middleware):
        self.assertEqual(answers["/users/2"][0], 200)
        self.assertIn('"id"', answers["/users/2"][1])
        self.assertEqual(answers["/nowhere"][0], 404)
        self.assertEqual(answers["/boom"][0], 500)
        self.assertEqual(answers["/middleware"], (200, middleware))
        totals = {key: total["count"] for key, total in http_totals(records, framework).items()}
        self.assertEqual(
            totals,
            {
                ("GET", "/users/<int:id>", 200): 3,
                ("GET", "<unmatched>", 404): 1,
                ("GET", "/boom", 500): 1,
                ("GET", "/middleware", 200): 1,
            },
        )
        self.assertEqual(windows(records, framework)[-1]["in_flight"], 0)
        # The user's hooks ran once per request, in order, and saw what they always saw.
        expected = []
        for path, (status, _) in answers.items():
            expected += ["pre " + path, "post %d" % status]
        self.assertEqual(hook_log, expected)

    def test_sync_threaded_and_gevent_workers_measure_with_their_hooks_the_middleware_off(self):
        for app, framework in (("flask_app:app", "flask"), ("django_app:app", "django")):
            for options in ((), ("--threads", "2"), ("--worker-class", "gevent")):
                with self.subTest(app=app, options=options):
                    self.check(framework, *self.serve(app, *options), middleware="off")

    def test_a_worker_whose_server_calls_the_app_keeps_the_middleware(self):
        # gevent_pywsgi: gevent's WSGI server serves, gunicorn's request hooks never run.
        answers, records, hook_log = self.serve("flask_app:app", "--worker-class", "gevent_pywsgi")
        self.assertEqual(answers["/middleware"], (200, "on"))
        self.assertEqual(hook_log, [])
        self.assertEqual(sum(total["count"] for total in http_totals(records, "flask").values()), len(PATHS))

    def test_a_wsgi_app_wrapped_at_import_is_counted_once(self):
        # The wrapper keeps the measured method: it passes requests through.
        self.check("flask", *self.serve("flask_app:app", env={"WRAP_WSGI_APP": "1"}), middleware="off")

    def test_http_middleware_keeps_the_middleware_and_counts_once(self):
        for app, framework in (("flask_app:app", "flask"), ("django_app:app", "django")):
            with self.subTest(app=app):
                self.check(framework, *self.serve(app, env={"PYROMETER_HTTP": "middleware"}), middleware="on")

    def test_http_off_leaves_gunicorn_and_the_frameworks_alone(self):
        for app, framework in (("flask_app:app", "flask"), ("django_app:app", "django")):
            with self.subTest(app=app):
                answers, records, hook_log = self.serve(app, env={"PYROMETER_HTTP": "off"})
                self.assertEqual(answers["/middleware"], (200, "off"))
                self.assertEqual(http_totals(records, framework), {})
                self.assertEqual(len(hook_log), 2 * len(PATHS))

    def test_gunicorns_default_hook_logs_each_request_at_debug_level_and_only_then(self):
        for level, logged in (("debug", True), ("info", False)):
            with self.subTest(level=level):
                answers, records, _ = self.serve("flask_app:app", "--log-level", level, config="plain_conf.py")
                self.assertEqual(answers["/middleware"], (200, "off"))  # gunicorn's hooks measured
                self.assertEqual(sum(total["count"] for total in http_totals(records, "flask").values()), len(PATHS))
                for path in PATHS:
                    self.assertEqual("[DEBUG] GET " + path + "\n" in self.stderr, logged, (path, self.stderr))

    def test_a_logger_class_of_the_users_gets_every_debug_call(self):
        # At gunicorn's default level its debug lines are dropped, but this
        # class's debug does more than log: it is called for every request.
        answers, records, hook_log = self.serve(
            "flask_app:app", "--logger-class", "counting_logger.CountingLogger", config="plain_conf.py"
        )
        self.assertEqual(answers["/middleware"], (200, "off"))
        self.assertEqual(sum(total["count"] for total in http_totals(records, "flask").values()), len(PATHS))
        self.assertEqual([line for line in hook_log if line.startswith("debug GET ")], ["debug GET " + p for p in PATHS])


if __name__ == "__main__":
    unittest.main()

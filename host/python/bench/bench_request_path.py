"""Instructions the probe's request measurement adds to one request, counted in process, each way it measures.

The served-request counts of ``bench_middleware.py`` move by about 1 % from
one process to the next (object addresses change how Flask's and Werkzeug's
lookups collide), more than a change to the measurement moves them. This
counts the measurement alone, with little else in the request to collide,
under valgrind's callgrind with address randomisation off, for the two ways
the probe measures a request:

* ``middleware``: the WSGI middleware (:mod:`pyrometer_probe.middleware`)
  around a minimal application that answers like Flask (``start_response``,
  then a Werkzeug ``ClosingIterator`` body), called as a server calls it --
  body iterated, then closed -- bare, and as the Flask hook installs it;
* ``gunicorn``: what a gunicorn worker calls per request around a Flask
  application -- its ``pre_request`` hook, Flask's URL matching, its
  ``post_request`` hook -- with gunicorn's default hooks (bare), and once
  :func:`pyrometer_probe.gunicorn_requests.install` has replaced them;
* ``asgi``: a FastAPI application with one ``async def`` route, called as an
  ASGI server calls it, one request after the other on an asyncio loop --
  bare, and with the ASGI middleware as the Starlette hook installs it.

Each of the six (way, bare or measured) runs twice, with the same start-up
and warm-up, serving ``--requests`` and five times as many requests: the
difference of the two counts, per request, is what a request costs there,
and measured minus bare is the measurement's cost (the aggregation included;
the flush thread does not run).

Usage: ``python3 host/python/bench/bench_request_path.py [--requests N]``
(needs ``apt-get install valgrind util-linux`` and ``pip install flask gunicorn fastapi``).
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile
from concurrent.futures import ThreadPoolExecutor

from bench_middleware import callgrind_totals

HERE = os.path.dirname(os.path.abspath(__file__))
PROBE_DIR = os.path.normpath(os.path.join(HERE, ".."))
WARM_UP_REQUESTS = 200

#: The programs under callgrind, by way: ``argv[1]`` is ``bare`` or
#: ``measured``, ``argv[2]`` the requests; ``serve(n)`` serves n requests.
DRIVERS = {
    "middleware": """
from werkzeug.wsgi import ClosingIterator
from pyrometer_probe import frameworks, middleware

class App:
    def wsgi_app(self, environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return ClosingIterator([b"hello"], [lambda: None])

def route_of(app, environ):
    return "/"

call = App.wsgi_app
if sys.argv[1] == "measured":
    call = middleware.wsgi_method(call, "flask", route_of, frameworks.werkzeug_closing())
app = App()

def start_response(status, headers, exc_info=None):
    return None

def serve(n):
    for _ in range(n):
        body = call(app, {"REQUEST_METHOD": "GET"}, start_response)
        for _chunk in body:
            pass
        body.close()
""",
    "gunicorn": """
from flask import Flask
from gunicorn.config import Config
from gunicorn.glogging import Logger
from gunicorn.workers.sync import SyncWorker
from pyrometer_probe import frameworks, gunicorn_requests, middleware

frameworks.hook(sys.modules["flask.app"])  # the middleware, as the probe installs it
app = Flask("bench")

@app.route("/")
def index():
    return "hello"

worker = SyncWorker.__new__(SyncWorker)  # the attributes install() and the hooks use
worker.cfg = Config()
worker.log = Logger(worker.cfg)
worker.wsgi = app
if sys.argv[1] == "measured":
    gunicorn_requests.install(worker)
    assert worker.cfg.pre_request is not Config().pre_request, "install() left gunicorn's hooks"

class Request:
    method = "GET"
    path = "/"

class Response:
    status_code = 200

response = Response()
context = app.test_request_context("/")
environ = context.request.environ

def serve(n):
    pre_request, post_request = worker.cfg.pre_request, worker.cfg.post_request
    for _ in range(n):
        environ.pop(middleware.ROUTE_KEY, None)
        request = Request()
        pre_request(worker, request)
        context.match_request()
        post_request(worker, request, environ, response)
""",
    "asgi": """
import asyncio
from pyrometer_probe import frameworks

if sys.argv[1] == "measured":
    import starlette.applications
    frameworks.hook(sys.modules["starlette.applications"])  # the middleware, as the probe installs it
from fastapi import FastAPI

app = FastAPI()

@app.get("/hello")
async def hello():
    return {"hello": "world"}

SCOPE = {
    "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "scheme": "http",
    "server": ("127.0.0.1", 8000), "client": ("127.0.0.1", 50000), "method": "GET", "root_path": "",
    "path": "/hello", "raw_path": b"/hello", "query_string": b"", "headers": [(b"host", b"localhost")],
}

async def receive():
    return {"type": "http.request", "body": b"", "more_body": False}

async def send(message):
    return None

async def requests(n):
    for _ in range(n):
        await app(dict(SCOPE), receive, send)

def serve(n):
    asyncio.run(requests(n))
""",
}
#: Appended to each driver: warm up, then serve.
SERVE = """
serve(%d)
serve(int(sys.argv[2]))
""" % WARM_UP_REQUESTS


def instructions(way, mode, requests, scratch):
    """Instructions of one run of ``way``'s driver."""
    env = dict(os.environ, PYTHONHASHSEED="1", PYTHONPATH=PROBE_DIR)
    out = os.path.join(scratch, "cg.%s.%s.%d" % (way, mode, requests))
    subprocess.run(
        ["setarch", "-R", "valgrind", "--tool=callgrind", "--callgrind-out-file=" + out,
         os.path.realpath(sys.executable), "-c", "import sys\n" + DRIVERS[way] + SERVE, mode, str(requests)],
        env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    count = callgrind_totals(out).get("Ir")
    if count is not None:
        return count
    sys.exit("bench_request_path: no count in the callgrind output of the %s %s run" % (way, mode))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=1000)
    args = parser.parse_args()
    for tool, install in (("valgrind", "apt-get install valgrind"), ("setarch", "apt-get install util-linux")):
        if shutil.which(tool) is None:
            sys.exit("bench_request_path: %s is missing (%s)" % (tool, install))
    for module in ("flask", "gunicorn", "fastapi"):
        try:
            __import__(module)
        except ImportError:
            sys.exit("bench_request_path: %s is missing (python3 -m pip install flask gunicorn fastapi)" % module)
    low, high = args.requests, 5 * args.requests
    runs = [(way, mode, n) for way in DRIVERS for mode in ("bare", "measured") for n in (low, high)]
    with tempfile.TemporaryDirectory() as scratch, ThreadPoolExecutor(os.cpu_count() or 2) as pool:
        futures = {run: pool.submit(instructions, *run, scratch) for run in runs}
        counts = {run: future.result() for run, future in futures.items()}
    for way in DRIVERS:
        per_request = {mode: (counts[way, mode, high] - counts[way, mode, low]) / (high - low)
                       for mode in ("bare", "measured")}
        print("%-10s %6.0f instructions per request measured, %6.0f bare: the measurement adds %.0f"
              % (way, per_request["measured"], per_request["bare"], per_request["measured"] - per_request["bare"]))


if __name__ == "__main__":
    main()

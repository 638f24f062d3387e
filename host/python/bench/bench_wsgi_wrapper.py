"""Instructions the probe's WSGI middleware adds to one request, counted in process.

The served-request counts of ``bench_middleware.py`` move by about 1 % from
one process to the next (object addresses change how Flask's and Werkzeug's
lookups collide), more than a change to the middleware moves them. This
counts the middleware alone, with little else in the request to collide: a
minimal WSGI application that answers like Flask (``start_response``, then a
Werkzeug ``ClosingIterator`` body) is called as a server calls it -- body
iterated, then closed -- bare and through the probe's middleware as the
Flask hook installs it, under valgrind's callgrind with address
randomisation off. Two processes run the same start-up and warm-up and serve
``--requests`` bare requests; then one serves as many more bare and the
other as many measured. The difference of their counts, per request, is the
middleware's cost (the aggregation included; the flush thread does not run).

Usage: ``python3 host/python/bench/bench_wsgi_wrapper.py [--requests N]``
(needs ``apt-get install valgrind util-linux`` and ``pip install flask``).
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

#: The program under callgrind: ``argv[1]`` is ``bare`` or ``measured``, ``argv[2]`` the requests.
DRIVER = """
import sys
from werkzeug.wsgi import ClosingIterator
from pyrometer_probe import frameworks, middleware

class App:
    def wsgi_app(self, environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return ClosingIterator([b"hello"], [lambda: None])

def route_of(app, environ):
    return "/"

bare = App.wsgi_app
calls = {
    "bare": bare,
    "measured": middleware.wsgi_method(bare, "flask", route_of, frameworks.werkzeug_closing()),
}
app = App()

def start_response(status, headers, exc_info=None):
    return None

def serve(call, n):
    for _ in range(n):
        body = call(app, {"REQUEST_METHOD": "GET"}, start_response)
        for _chunk in body:
            pass
        body.close()

for call in calls.values():
    serve(call, 200)
serve(bare, int(sys.argv[2]))
serve(calls[sys.argv[1]], int(sys.argv[2]))
"""


def instructions(mode, requests, scratch):
    """Instructions of one run of DRIVER."""
    env = dict(os.environ, PYTHONHASHSEED="1", PYTHONPATH=PROBE_DIR)
    out = os.path.join(scratch, "cg." + mode)
    subprocess.run(
        ["setarch", "-R", "valgrind", "--tool=callgrind", "--callgrind-out-file=" + out,
         os.path.realpath(sys.executable), "-c", DRIVER, mode, str(requests)],
        env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    count = callgrind_totals(out).get("Ir")
    if count is not None:
        return count
    sys.exit("bench_wsgi_wrapper: no count in the callgrind output of the %s run" % mode)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=4000)
    args = parser.parse_args()
    for tool, install in (("valgrind", "apt-get install valgrind"), ("setarch", "apt-get install util-linux")):
        if shutil.which(tool) is None:
            sys.exit("bench_wsgi_wrapper: %s is missing (%s)" % (tool, install))
    try:
        import werkzeug  # noqa: F401
    except ImportError:
        sys.exit("bench_wsgi_wrapper: werkzeug is missing (python3 -m pip install flask)")
    with tempfile.TemporaryDirectory() as scratch, ThreadPoolExecutor(2) as pool:
        runs = {mode: pool.submit(instructions, mode, args.requests, scratch) for mode in ("bare", "measured")}
        counts = {mode: run.result() for mode, run in runs.items()}
    print("the middleware: %.0f instructions per request (%d requests, bare and measured)"
          % ((counts["measured"] - counts["bare"]) / args.requests, args.requests))


if __name__ == "__main__":
    main()

"""CPU cost of the probe (and its HTTP middleware) per Flask request, in instructions.

Wall-clock throughput on a shared VM swings by more than the effect measured,
so this counts instructions with valgrind's cachegrind instead, which the
machine's load does not move (the process's layout still does, by several
per cent between runs: see the README's figures): the bundled
Flask app (``examples/web/flask_app.py``) serves its hello-world route as a
WSGI call, in-process (no server, no sockets), ``LOW`` and ``HIGH`` times in
two runs; (I(HIGH) - I(LOW)) / (HIGH - LOW) is the cost of one request with
start-up cancelled out. It does so without the probe and with it (probe and
middleware on, sending to a socket nobody reads), for several
``PYTHONHASHSEED`` values: the seed moves how often Flask's dictionary lookups
collide, by a few per cent either way, so one seed alone says little.
Address randomisation is off (``setarch -R``): objects hashed by identity
would otherwise lay out dictionaries differently in every run.

The collector is off during the requests: where its collections land (and
whether a full one falls between ``LOW`` and ``HIGH``) depends on every
allocation since start-up, the probe's included, and moved the per-request
figure by up to 15 % either way -- a change of layout, not work done per
request. What is left is what the middleware executes.

Usage: ``python3 host/python/bench/bench_middleware.py [--python PATH] [--seeds N]``
(needs ``apt-get install valgrind`` and ``pip install flask``).
"""

import argparse
import os
import shutil
import subprocess
import sys
import tempfile

HERE = os.path.dirname(os.path.abspath(__file__))
PROBE_DIR = os.path.dirname(HERE)
WEB_DIR = os.path.join(PROBE_DIR, "..", "..", "examples", "web")
LOW, HIGH = 1000, 3000

# The workload: the hello-world route as a WSGI call, as a server would make it.
WORKLOAD = r"""
import io, sys
sys.path.insert(0, sys.argv[2])
from flask_app import app
def start_response(status, headers, exc_info=None):
    pass
def environ():
    return {"REQUEST_METHOD": "GET", "PATH_INFO": "/", "SERVER_NAME": "localhost",
            "SERVER_PORT": "80", "SERVER_PROTOCOL": "HTTP/1.1", "QUERY_STRING": "",
            "wsgi.url_scheme": "http", "wsgi.input": io.BytesIO(), "wsgi.errors": sys.stderr}
import gc
gc.collect()
gc.disable()
for _ in range(int(sys.argv[1])):
    body = app(environ(), start_response)
    for chunk in body:
        pass
    body.close()
"""


def instructions(python, requests, seed, probe, scratch):
    """Instructions cachegrind counted for one run of the workload."""
    env = dict(os.environ, PYTHONHASHSEED=str(seed))
    env.pop("PYTHONPATH", None)
    env.pop("PYROMETER_PROBE_SOCKET", None)
    if probe:
        env["PYTHONPATH"] = PROBE_DIR
        env["PYROMETER_PROBE_SOCKET"] = os.path.join(scratch, "nobody.sock")
    out = os.path.join(scratch, "cg.%d.%d.%d" % (seed, probe, requests))
    script = os.path.join(scratch, "workload.py")
    subprocess.run(
        ["setarch", "-R", "valgrind", "--tool=cachegrind", "--cache-sim=no", "--cachegrind-out-file=" + out,
         python, script, str(requests), WEB_DIR],
        env=env, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
    )
    with open(out) as f:
        for line in f:
            if line.startswith("summary:"):
                return int(line.split()[1])
    raise RuntimeError("no summary in " + out)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--seeds", type=int, default=3)
    args = parser.parse_args()
    if shutil.which("valgrind") is None:
        sys.exit("bench_middleware: valgrind is missing (apt-get install valgrind)")
    python = os.path.realpath(args.python)  # not a pyenv shim: valgrind must see the interpreter
    with tempfile.TemporaryDirectory() as scratch:
        with open(os.path.join(scratch, "workload.py"), "w") as f:
            f.write(WORKLOAD)
        ratios = []
        for seed in range(1, args.seeds + 1):
            per_request = []
            for probe in (False, True):
                low = instructions(python, LOW, seed, probe, scratch)
                high = instructions(python, HIGH, seed, probe, scratch)
                per_request.append((high - low) / (HIGH - LOW))
            without, with_probe = per_request
            ratios.append(with_probe / without)
            print("PYTHONHASHSEED=%d: %.0f instructions/request without the probe, %.0f with (%+.1f %%)"
                  % (seed, without, with_probe, (with_probe / without - 1) * 100))
        mean = sum(ratios) / len(ratios)
        print("mean over %d seeds: %+.1f %% instructions per Flask request (%s)" % (len(ratios), (mean - 1) * 100, python))


if __name__ == "__main__":
    main()

"""CPU cost of the probe per served Flask request, in instructions.

Wall-clock throughput on a shared VM swings by more than the effect measured
(see the service bench, ``cargo bench -p pyrometer-tests --bench service``),
so this counts what the request path executes instead: the bundled Flask app
(``examples/web/flask_app.py``) served by gunicorn (one sync worker) under
valgrind's callgrind, in the three setups of the service bench -- gunicorn
started directly, under ``pyrometer run`` (the probe measuring requests: with
gunicorn's own request hooks, see ``pyrometer_probe/gunicorn_requests.py``), and
under ``pyrometer run`` with ``PYROMETER_PROBE=off`` (a control: everything
but the measuring). Each service is warmed up, then the worker's counters are
zeroed, ``--requests`` requests are served one after the other over loopback,
and the worker's counters are dumped: instructions per request, start-up
excluded.

Counts are per thread (``--separate-threads``); the figure is the worker's
main thread, where the requests run. The probe's flush thread works once per
window (every second, not per request) and valgrind slows the requests about
fifty-fold, so its share per request here would be fifty times too big: it
is printed apart, in all.

CPython seeds its string hashing per process, and the seed moves how often
dictionary lookups in Flask's and Werkzeug's hot paths collide, so the three
setups run with the same ``PYTHONHASHSEED``, for several seeds.

``--cache-sim`` also simulates the caches (callgrind's ``--cache-sim=yes``)
and prints the worker's first-level cache misses per request -- instruction
fetches, data reads, data writes -- which show how much of its added work
runs cold (code and data not in the cache).

Usage: ``python3 host/python/bench/bench_middleware.py [--pyrometer PATH] [--seeds N] [--requests N] [--cache-sim]``
(needs ``apt-get install valgrind``, ``pip install flask gunicorn`` and a
release build: ``cargo build --release -p pyrometer``).
"""

import argparse
import glob
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.normpath(os.path.join(HERE, "..", "..", ".."))
WEB_DIR = os.path.join(ROOT, "examples", "web")
#: The setups, in the order they are printed; the first is the baseline.
MODES = ("direct", "pyrometer run", "run, probe off")
WARM_UP_REQUESTS = 100


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def get(port):
    """One ``GET /`` on a new connection; True when it was answered 200."""
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=60) as conn:
            conn.sendall(b"GET / HTTP/1.0\r\nHost: localhost\r\n\r\n")
            response = b""
            while True:
                chunk = conn.recv(65536)
                if not chunk:
                    break
                response += chunk
        return response.startswith((b"HTTP/1.1 200", b"HTTP/1.0 200"))
    except OSError:
        return False


def children(pid):
    """Process ids whose parent is ``pid``."""
    found = []
    for stat in glob.glob("/proc/[0-9]*/stat"):
        try:
            with open(stat) as f:
                fields = f.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(stat.split("/")[2]))
    return found


#: The events read from a callgrind dump, by the names it gives them: the
#: instructions, and with --cache-sim the first-level misses.
EVENTS = ("Ir", "I1mr", "D1mr", "D1mw")


def start(mode, seed, pyrometer, gunicorn, scratch, cache_sim):
    """Starts the service of ``mode`` under callgrind; returns (process, port, worker pid)."""
    port = free_port()
    env = dict(os.environ, PYTHONHASHSEED=str(seed))
    for switch in ("PYROMETER_PROBE", "PYROMETER_HTTP"):  # a caller's would change what the setups measure
        env.pop(switch, None)
    command = []
    if mode != "direct":
        command = [pyrometer, "run", "--listen", "127.0.0.1:0", "--"]
    if mode == "run, probe off":
        env["PYROMETER_PROBE"] = "off"
    out = os.path.join(scratch, "cg.%d.%s.%%p" % (seed, mode.replace(" ", "_").replace(",", "")))
    command += ["valgrind", "--tool=callgrind", "--trace-children=yes", "--separate-threads=yes",
                "--cache-sim=" + ("yes" if cache_sim else "no"), "--callgrind-out-file=" + out, gunicorn, "-w", "1", "-b", "127.0.0.1:%d" % port, "flask_app:app"]
    service = subprocess.Popen(command, env=env, cwd=WEB_DIR, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                               start_new_session=True)
    deadline = time.monotonic() + 300
    while not get(port):
        if service.poll() is not None or time.monotonic() > deadline:
            stop(service)
            sys.exit("bench_middleware: the %s service never answered (is gunicorn installed?)" % mode)
        time.sleep(0.5)
    # gunicorn's master is the service itself or, under pyrometer, its child;
    # the worker is the master's only child.
    master = service.pid if mode == "direct" else children(service.pid)[0]
    (worker,) = children(master)
    return service, port, worker


def stop(service):
    try:
        os.killpg(service.pid, signal.SIGTERM)
    except ProcessLookupError:
        pass
    service.wait()


def callgrind_totals(path):
    """The totals of a callgrind output file by event name (``{"Ir": ..., "I1mr": ...}``); {} if it has none."""
    names = []
    with open(path) as f:
        for line in f:
            if line.startswith("events:"):
                names = line.split()[1:]
            elif line.startswith(("summary:", "totals:")):
                return dict(zip(names, map(int, line.split()[1:])))
    return {}


def dumped(scratch, worker):
    """The :data:`EVENTS` each thread of ``worker`` counted in its first dump: {thread number: {event: count}}."""
    counts = {}
    for path in glob.glob(os.path.join(scratch, "cg.*.%d.1-*" % worker)):
        found = callgrind_totals(path)
        if found:
            counts[int(path.rsplit("-", 1)[1])] = {event: found[event] for event in EVENTS if event in found}
    return counts


def measure(mode, seed, requests, pyrometer, gunicorn, scratch, cache_sim):
    """({event: main-thread count per request}, other threads' instructions) of one service."""
    service, port, worker = start(mode, seed, pyrometer, gunicorn, scratch, cache_sim)
    try:
        for _ in range(WARM_UP_REQUESTS):
            get(port)
        subprocess.run(["callgrind_control", "-z", str(worker)], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        for _ in range(requests):
            if not get(port):
                sys.exit("bench_middleware: a request to the %s service failed" % mode)
        subprocess.run(["callgrind_control", "-d", str(worker)], check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    finally:
        stop(service)
    counts = dumped(scratch, worker)
    if 1 not in counts:
        sys.exit("bench_middleware: no callgrind dump for the %s worker" % mode)
    per_request = {event: count / requests for event, count in counts[1].items()}
    return per_request, sum(these["Ir"] for thread, these in counts.items() if thread != 1)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pyrometer", default=os.path.join(ROOT, "target", "release", "pyrometer"))
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--requests", type=int, default=500)
    parser.add_argument("--cache-sim", action="store_true", help="also count first-level cache misses")
    args = parser.parse_args()
    for tool, install in (("valgrind", "apt-get install valgrind"), ("callgrind_control", "apt-get install valgrind"),
                          ("gunicorn", "python3 -m pip install flask gunicorn")):
        if shutil.which(tool) is None:
            sys.exit("bench_middleware: %s is missing (%s)" % (tool, install))
    if not os.access(args.pyrometer, os.X_OK):
        sys.exit("bench_middleware: no pyrometer at %s (cargo build --release -p pyrometer)" % args.pyrometer)
    # The script beside the interpreter rather than a pyenv shim, which valgrind would trace too.
    beside = os.path.join(os.path.dirname(os.path.realpath(sys.executable)), "gunicorn")
    gunicorn = beside if os.access(beside, os.X_OK) else shutil.which("gunicorn")
    events = EVENTS if args.cache_sim else EVENTS[:1]
    ratios = {(mode, event): [] for mode in MODES[1:] for event in events}
    with tempfile.TemporaryDirectory() as scratch:
        for seed in range(1, args.seeds + 1):
            # The setups of a seed run side by side: instruction counts do not
            # depend on what else the machine runs.
            with ThreadPoolExecutor(len(MODES)) as pool:
                futures = {
                    mode: pool.submit(measure, mode, seed, args.requests, args.pyrometer, gunicorn, scratch,
                                      args.cache_sim)
                    for mode in MODES
                }
                figures = {mode: future.result() for mode, future in futures.items()}
            for mode in MODES:
                main_thread, others = figures[mode]
                misses = "".join("; %s %.0f" % (event, main_thread[event]) for event in events[1:])
                print("PYTHONHASHSEED=%d %-15s %8.0f instructions/request (main thread)%s; other threads %d in all"
                      % (seed, mode, main_thread["Ir"], misses, others), flush=True)
            base = figures[MODES[0]][0]
            for (mode, event), these in ratios.items():
                these.append(figures[mode][0][event] / base[event])
    for (mode, event), these in ratios.items():
        what = "instructions" if event == "Ir" else event + " (first-level misses)"
        print("%-15s %+.2f %% %s per request, mean of %d seeds (%s)"
              % (mode, (sum(these) / len(these) - 1) * 100, what, len(these),
                 ", ".join("%+.2f" % ((r - 1) * 100) for r in these)))


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Benchmark of the probe's cost, each figure against a baseline measured in the same run.

1. Import phase: ``python -c "import heavyapp.handler"`` (about 300 stdlib
   modules) with and without the probe, alternating, median of ``--runs``
   processes each, and the median of the ratios of the runs taken back to
   back. Wall time is spawn to exit; CPU time is the child's
   user + system time (``wait4``). With the probe a live receiver drains the
   socket, so the init records are really sent.
2. Per-invocation overhead: a no-op handler called directly and through
   ``pyrometer_probe.wrap`` (records sent to a live receiver in another
   process), and through the wrapper with the send left out, interleaved,
   median of the per-call times; the differences are the probe's cost and
   its send's share. Run twice, with the interpreter pinned to one CPU and
   the receiver pinned to another CPU, then to the same one: the send wakes
   the receiver, which costs several microseconds more across CPUs (an
   inter-processor interrupt, expensive in a VM) than on the sender's own,
   so an unpinned run gives either figure, or a mix, as the scheduler places
   the receiver.
3. Records lost at 1 000 invocations/s: a probed process calls a wrapped
   handler on a 1 ms schedule for ``--seconds``; the receiver counts the
   ``invoke`` records it gets, and the sender's own drop count.

Usage: ``python3 bench/bench_probe.py [--python PYTHON] [--runs 15] [--calls 20000] [--seconds 5]``

As root the measured interpreters run under ``chrt -f 10`` (real-time class),
so other load on the machine does not preempt them; ``--no-rt`` turns it off.
"""

import argparse
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import textwrap
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))
PROBE_DIR = os.path.dirname(HERE)
APPS_DIR = os.path.join(PROBE_DIR, "tests", "apps")


class Drain:
    """A receiving socket drained by a thread (on CPU ``cpu`` if given); counts datagrams by kind."""

    def __init__(self, path, cpu=None):
        self.path = path
        self.cpu = cpu
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4 * 1024 * 1024)
        self.sock.bind(path)
        self.sock.settimeout(0.05)
        self.kinds = {}
        self.last_dropped = {}
        self._stop = False
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self):
        if self.cpu is not None:
            os.sched_setaffinity(0, {self.cpu})  # this thread only
        while not self._stop:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            header = data.split(b"\n", 1)[0].split(b"\t")
            if len(header) < 6 or header[0] != b"pyrometer-probe":
                continue
            kind = header[2].decode()
            self.kinds[kind] = self.kinds.get(kind, 0) + 1
            self.last_dropped[int(header[3])] = int(header[5])

    def close(self):
        self._stop = True
        self._thread.join(1)
        self.sock.close()


def rt_prefix(enabled):
    if not enabled:
        return []
    try:
        ok = subprocess.run(["chrt", "-f", "10", "true"], capture_output=True).returncode == 0
    except OSError:
        ok = False
    return ["chrt", "-f", "10"] if ok else []


def clean_env(**extra):
    env = dict(os.environ)
    for name in ("PYTHONPROFILEIMPORTTIME", "PYROMETER_PROBE_SOCKET", "PYTHONDONTWRITEBYTECODE"):
        env.pop(name, None)
    env.update(extra)
    return env


def run_process(argv, env):
    started = time.perf_counter_ns()
    child = subprocess.Popen(argv, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    _, status, usage = os.wait4(child.pid, 0)
    wall = time.perf_counter_ns() - started
    stderr = child.stderr.read().decode(errors="replace")
    child.stderr.close()
    if status != 0:
        raise SystemExit(f"{argv} failed: {stderr}")
    return wall, int((usage.ru_utime + usage.ru_stime) * 1e9)


def import_phase(python, runs, prefix, tmp):
    subprocess.run([python, "-m", "compileall", "-q", APPS_DIR, PROBE_DIR], env=clean_env(), check=True)
    drain = Drain(os.path.join(tmp, "import.sock"))
    argv = prefix + [python, "-c", "import heavyapp.handler"]
    base_env = clean_env(PYTHONPATH=APPS_DIR)
    probe_env = clean_env(PYTHONPATH=PROBE_DIR + os.pathsep + APPS_DIR, PYROMETER_PROBE_SOCKET=drain.path)
    samples = {"without": ([], []), "with": ([], [])}
    run_process(argv, base_env)
    run_process(argv, probe_env)
    for i in range(runs):
        order = (("without", base_env), ("with", probe_env)) if i % 2 == 0 else (("with", probe_env), ("without", base_env))
        for name, env in order:
            wall, cpu = run_process(argv, env)
            samples[name][0].append(wall)
            samples[name][1].append(cpu)
    time.sleep(0.2)
    drain.close()
    result = {}
    for name, (walls, cpus) in samples.items():
        result[name] = (statistics.median(walls), statistics.median(cpus), min(walls), min(cpus))
    # Pair i ran back to back, so a burst of load elsewhere skews one pair's
    # ratio rather than one side's median.
    result["paired"] = tuple(
        statistics.median([w / wo for w, wo in zip(samples["with"][k], samples["without"][k])]) for k in (0, 1)
    )
    return result, drain.kinds


INVOKE_CHILD = textwrap.dedent(
    """
    import gc, json, os, statistics, sys, time
    import pyrometer_probe
    from pyrometer_probe import process

    calls, cpu = int(sys.argv[1]), int(sys.argv[2])
    if cpu >= 0:
        os.sched_setaffinity(0, {cpu})

    def handler(event, context):
        return event

    class Context:
        aws_request_id = "0f6f6c1e-5a8b-4bb5-9d39-2f4a1b9f5c11"

    wrapped = pyrometer_probe.wrap(handler)
    context = Context()
    clock = time.perf_counter_ns

    def measure(fn, count):
        times = []
        append = times.append
        for i in range(count):
            start = clock()
            fn(1, context)
            append(clock() - start)
            if i % 8 == 7:
                time.sleep(0.0002)  # let the receiver keep up (not timed)
        return times

    for fn in (handler, wrapped):  # warm up both paths, paced: a burst would start with a backlog
        measure(fn, 200)
    transport = process.state.transport
    gc.disable()
    raw, probed, unsent = [], [], []
    for _ in range(3):  # interleave to share any drift
        raw += measure(handler, calls)
        probed += measure(wrapped, calls)
        transport.send = lambda *args, **kwargs: True  # the wrapper's own work, without the send
        unsent += measure(wrapped, calls)
        del transport.send
    gc.enable()
    print(json.dumps({
        "unsent_median_ns": statistics.median(unsent),
        "raw_median_ns": statistics.median(raw),
        "probed_median_ns": statistics.median(probed),
        "raw_mean_ns": statistics.fmean(raw),
        "probed_mean_ns": statistics.fmean(probed),
        "probed_p99_ns": sorted(probed)[int(len(probed) * 0.99)],
        "dropped": transport.dropped,
        "calls": 3 * calls,
    }))
    """
)


def per_invocation(python, calls, prefix, tmp, sender_cpu=None, receiver_cpu=None):
    import json

    drain = Drain(os.path.join(tmp, "invoke.sock"), cpu=receiver_cpu)
    env = clean_env(PYTHONPATH=PROBE_DIR, PYROMETER_PROBE_SOCKET=drain.path)
    cpu = -1 if sender_cpu is None else sender_cpu
    out = subprocess.run(prefix + [python, "-c", INVOKE_CHILD, str(calls), str(cpu)], env=env, capture_output=True, text=True)
    time.sleep(0.2)
    drain.close()
    os.unlink(drain.path)
    if out.returncode != 0:
        raise SystemExit(out.stderr)
    return json.loads(out.stdout), drain.kinds


RATE_CHILD = textwrap.dedent(
    """
    import sys, time
    import pyrometer_probe
    from pyrometer_probe import process

    seconds, rate = float(sys.argv[1]), int(sys.argv[2])
    handler = pyrometer_probe.wrap(lambda event, context: event)
    period = 1_000_000_000 // rate
    total = int(seconds * rate)
    due = time.perf_counter_ns()
    late = 0
    for i in range(total):
        now = time.perf_counter_ns()
        if due > now:
            time.sleep((due - now) / 1e9)
        elif now - due > period:
            late += 1
        handler(i, None)
        due += period
    print(total, process.state.transport.dropped, late)
    """
)


def loss_at_rate(python, seconds, rate, tmp):
    drain = Drain(os.path.join(tmp, "rate.sock"))
    env = clean_env(PYTHONPATH=PROBE_DIR, PYROMETER_PROBE_SOCKET=drain.path)
    started = time.perf_counter()
    out = subprocess.run([python, "-c", RATE_CHILD, str(seconds), str(rate)], env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    time.sleep(0.3)
    drain.close()
    if out.returncode != 0:
        raise SystemExit(out.stderr)
    sent, dropped, late = (int(x) for x in out.stdout.split())
    received = drain.kinds.get("invoke", 0)
    return sent, received, dropped, late, elapsed


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--python", default=sys.executable)
    parser.add_argument("--runs", type=int, default=15)
    parser.add_argument("--calls", type=int, default=20000)
    parser.add_argument("--seconds", type=float, default=5.0)
    parser.add_argument("--rate", type=int, default=1000)
    parser.add_argument("--no-rt", action="store_true", help="do not run the measured interpreters under chrt -f")
    args = parser.parse_args()
    prefix = rt_prefix(not args.no_rt)
    version = subprocess.run([args.python, "-c", "import sys; print(sys.version.split()[0])"], capture_output=True, text=True).stdout.strip()
    print(f"CPython {version} ({args.python}); scheduling: {' '.join(prefix) or 'normal'}; load average {os.getloadavg()[0]:.2f}")

    with tempfile.TemporaryDirectory(prefix="pyro-bench-") as tmp:
        result, kinds = import_phase(args.python, args.runs, prefix, tmp)
        (w0, c0, mw0, mc0), (w1, c1, mw1, mc1) = result["without"], result["with"]
        pw, pc = result["paired"]
        print(f"\n1. import phase of heavyapp ({args.runs} runs each, medians; min in brackets; median of pair ratios)")
        print(f"   wall  without {w0 / 1e6:8.1f} ms   with {w1 / 1e6:8.1f} ms   ratio {w1 / w0:.3f}   [{mw1 / mw0:.3f}]   paired {pw:.3f}")
        print(f"   cpu   without {c0 / 1e6:8.1f} ms   with {c1 / 1e6:8.1f} ms   ratio {c1 / c0:.3f}   [{mc1 / mc0:.3f}]   paired {pc:.3f}")
        print(f"   records received: {kinds}")

        cpus = sorted(os.sched_getaffinity(0))
        placements = [("on another CPU", cpus[0], cpus[1])] if len(cpus) > 1 else []
        placements.append(("on the same CPU", cpus[0], cpus[0]))
        print(f"\n2. per-invocation overhead ({3 * args.calls} calls each; interpreter on CPU {cpus[0]})")
        for where, sender_cpu, receiver_cpu in placements:
            stats, kinds = per_invocation(args.python, args.calls, prefix, tmp, sender_cpu, receiver_cpu)
            overhead = stats["probed_median_ns"] - stats["raw_median_ns"]
            print(f"   receiver {where} (CPU {receiver_cpu}):")
            print(f"     no-op handler  direct {stats['raw_median_ns'] / 1e3:6.2f} µs   wrapped {stats['probed_median_ns'] / 1e3:6.2f} µs (median)")
            print(f"     overhead {overhead / 1e3:.2f} µs median, {(stats['probed_mean_ns'] - stats['raw_mean_ns']) / 1e3:.2f} µs mean, wrapped p99 {stats['probed_p99_ns'] / 1e3:.2f} µs")
            print(f"     of which the send: {(stats['probed_median_ns'] - stats['unsent_median_ns']) / 1e3:.2f} µs (wrapper without it: {(stats['unsent_median_ns'] - stats['raw_median_ns']) / 1e3:.2f} µs)")
            print(f"     records received {kinds.get('invoke', 0)}, dropped by the sender {stats['dropped']}")

        sent, received, dropped, late, elapsed = loss_at_rate(args.python, args.seconds, args.rate, tmp)
        print(f"\n3. {args.rate} invocations/s for {args.seconds:g} s ({elapsed:.1f} s wall, {late} calls behind schedule)")
        print(f"   sent {sent}, received {received}, lost {sent - received}, dropped by the sender {dropped}")


if __name__ == "__main__":
    main()

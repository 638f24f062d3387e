"""Test harness: a receiving socket, a child interpreter with the probe, a reference decoder.

The decoder here is a second, independent reading of PROTOCOL.md (the Rust one
is ``host/src/sources/probe.rs``): if the two disagree, one of them is wrong.
"""

import os
import socket
import subprocess
import sys
import tempfile
import threading
import time

TESTS_DIR = os.path.dirname(os.path.abspath(__file__))
PROBE_DIR = os.path.dirname(TESTS_DIR)
APPS_DIR = os.path.join(TESTS_DIR, "apps")
EXEC_WRAPPER = os.path.join(PROBE_DIR, "pyrometer-exec-wrapper")

INVOKE_FIELDS = (
    "request_id number cold_start proactive_init start_unix_us duration_ns status error "
    "g0_collections g0_pause_ns g0_collected g0_uncollectable "
    "g1_collections g1_pause_ns g1_collected g1_uncollectable "
    "g2_collections g2_pause_ns g2_collected g2_uncollectable "
    "allocated_blocks modules threads rss_bytes max_rss_bytes cpu_user_us cpu_system_us "
    "loop_lag_max_us loop_pending_tasks imports probe_ns"
).split()
INIT_FIELDS = (
    "python exec_unix_us exec_source probe_unix_us ready_unix_us ready_reason probe_init_us "
    "modules_before_probe modules_at_ready import_phase_us handler_load_us handler handler_index "
    "error profile_id profile_modules gc_collections gc_pause_us"
).split()
FORK_FIELDS = ["parent_pid", "fork_unix_us"]
READY_FIELDS = ["ready_unix_us", "reason"]
EXIT_FIELDS = ["invocations", "exit_unix_us", "unsent"]
HTTP_FIELDS = (
    "framework window_end_unix_us first_response_unix_us in_flight loop_lag_max_us loop_pending_tasks "
    "bounds_us series"
).split()
SERIES_FIELDS = ["method", "status", "count", "sum_us", "max_us", "buckets", "route"]


class Record:
    """One decoded datagram."""

    def __init__(self, kind, pid, seq, dropped, lines, size):
        self.kind = kind
        self.pid = pid
        self.seq = seq
        self.dropped = dropped
        self.lines = lines
        self.size = size

    def fields(self):
        """The single body line of init/invoke/fork/ready/exit as a dict (values as text)."""
        names = {"init": INIT_FIELDS, "invoke": INVOKE_FIELDS, "fork": FORK_FIELDS, "ready": READY_FIELDS, "exit": EXIT_FIELDS}[
            self.kind
        ]
        line = self.lines[0]
        assert len(line) >= len(names), (self.kind, line)
        return dict(zip(names, line))

    def __repr__(self):
        return f"Record({self.kind} pid={self.pid} seq={self.seq} dropped={self.dropped} lines={len(self.lines)})"


def parse(datagram):
    """Decode one datagram strictly; raises AssertionError if it breaks PROTOCOL.md."""
    assert len(datagram) <= 8192, len(datagram)
    text = datagram.decode("utf-8")
    assert text.endswith("\n"), "datagram must end with a newline"
    lines = [line.split("\t") for line in text[:-1].split("\n")]
    header = lines[0]
    assert header[0] == "pyrometer-probe" and header[1] == "1", header
    assert header[2] in ("init", "imports", "invoke", "fork", "ready", "exit", "http"), header
    return Record(header[2], int(header[3]), int(header[4]), int(header[5]), lines[1:], len(datagram))


def _optional(field):
    return None if field == "-" else int(field)


def http_window(record):
    """One ``http`` datagram, decoded and checked: the window's fields and its series.

    Numbers become ints (``None`` for ``-``); ``bounds_us`` and each series'
    ``buckets`` become lists. Raises AssertionError if it breaks PROTOCOL.md.
    """
    assert record.kind == "http", record
    head = record.lines[0]
    assert len(head) >= len(HTTP_FIELDS), head
    window = dict(zip(HTTP_FIELDS, head))
    for name in ("window_end_unix_us", "in_flight", "series"):
        window[name] = int(window[name])
    for name in ("first_response_unix_us", "loop_lag_max_us", "loop_pending_tasks"):
        window[name] = _optional(window[name])
    bounds = [int(b) for b in window["bounds_us"].split(",")]
    assert bounds == sorted(set(bounds)), bounds
    window["bounds_us"] = bounds
    lines = record.lines[1:]
    assert len(lines) == window["series"], (len(lines), window["series"])
    series = []
    for line in lines:
        assert len(line) >= len(SERIES_FIELDS), line
        row = dict(zip(SERIES_FIELDS, line))
        for name in ("status", "count", "sum_us", "max_us"):
            row[name] = int(row[name])
        row["buckets"] = [int(b) for b in row["buckets"].split(",")]
        assert len(row["buckets"]) == len(bounds) + 1, row
        assert sum(row["buckets"]) == row["count"], row
        assert row["max_us"] <= row["sum_us"], row
        series.append(row)
    window["series"] = series
    return window


def http_totals(records, framework=None):
    """Every ``http`` record's series added up: ``{(method, route, status): totals}``.

    Totals are ``count``, ``sum_us``, ``max_us`` (the largest) and ``buckets``.
    """
    totals = {}
    for record in records:
        if record.kind != "http":
            continue
        window = http_window(record)
        if framework is not None and window["framework"] != framework:
            continue
        for row in window["series"]:
            key = (row["method"], row["route"], row["status"])
            total = totals.setdefault(key, {"count": 0, "sum_us": 0, "max_us": 0, "buckets": [0] * len(row["buckets"])})
            total["count"] += row["count"]
            total["sum_us"] += row["sum_us"]
            total["max_us"] = max(total["max_us"], row["max_us"])
            total["buckets"] = [a + b for a, b in zip(total["buckets"], row["buckets"])]
    return totals


class Profile:
    """A reassembled import profile."""

    def __init__(self, pid, profile_id, phase, invocation, base, rows):
        self.pid = pid
        self.profile_id = profile_id
        self.phase = phase
        self.invocation = invocation
        self.base = base
        # rows: dicts with index, parent, self_us, cumulative_us, origin, error, module
        self.rows = rows

    def by_name(self, name):
        """All rows for a module name."""
        return [row for row in self.rows if row["module"] == name]

    def one(self, name):
        """The single row for a module name."""
        rows = self.by_name(name)
        assert len(rows) == 1, (name, rows)
        return rows[0]

    def children(self, row):
        """Rows whose parent is ``row``."""
        return [other for other in self.rows if other["parent"] == row["index"]]

    def parent_of(self, row):
        """The parent row, or None at top level (or when the parent is in another profile)."""
        for other in self.rows:
            if other["index"] == row["parent"]:
                return other
        return None


def profiles(records):
    """Reassemble every complete import profile, in the order their first chunk arrived."""
    pending = {}
    order = []
    for record in records:
        if record.kind != "imports":
            continue
        head = record.lines[0]
        profile_id, chunk, count, base, total, in_chunk = (int(x) for x in head[:6])
        key = (record.pid, profile_id)
        if key not in pending:
            pending[key] = {"count": count, "chunks": {}, "base": base, "phase": head[6], "invocation": int(head[7])}
            order.append(key)
        rows = record.lines[1:]
        assert len(rows) == in_chunk, (len(rows), in_chunk)
        pending[key]["chunks"][chunk] = rows
        pending[key]["total"] = total
    result = []
    for key in order:
        entry = pending[key]
        if len(entry["chunks"]) != entry["count"]:
            continue
        rows = []
        for chunk in range(entry["count"]):
            for line in entry["chunks"][chunk]:
                rows.append(
                    {
                        "index": int(line[0]),
                        "parent": int(line[1]),
                        "self_us": int(line[2]),
                        "cumulative_us": int(line[3]),
                        "origin": line[4],
                        "error": None if line[5] == "-" else line[5],
                        "module": line[6],
                    }
                )
        assert len(rows) == entry["total"]
        result.append(Profile(key[0], key[1], entry["phase"], entry["invocation"], entry["base"], rows))
    return result


class Receiver:
    """A bound Unix datagram socket in a temporary directory, drained by a thread."""

    def __init__(self, read=True, rcvbuf=4 * 1024 * 1024, path=None):
        self._dir = tempfile.TemporaryDirectory(prefix="pyro-")
        self.path = path or os.path.join(self._dir.name, "probe.sock")
        self.sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
        self.sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, rcvbuf)
        self.sock.bind(self.path)
        self.datagrams = []
        self._lock = threading.Lock()
        self._stop = False
        self._thread = None
        if read:
            self.start_reading()

    def start_reading(self):
        """Start the draining thread (a receiver created with read=False lets its queue fill)."""
        self.sock.settimeout(0.05)
        self._thread = threading.Thread(target=self._drain, daemon=True)
        self._thread.start()

    def _drain(self):
        while not self._stop:
            try:
                data = self.sock.recv(65536)
            except socket.timeout:
                continue
            except OSError:
                return
            with self._lock:
                self.datagrams.append(data)

    def records(self, settle_s=0.2):
        """Every datagram received so far, decoded (after letting in-flight ones arrive)."""
        time.sleep(settle_s)
        with self._lock:
            data = list(self.datagrams)
        return [parse(d) for d in data]

    def wait_for(self, predicate, timeout_s=10.0):
        """Wait until ``predicate(records)`` holds; returns the records."""
        deadline = time.monotonic() + timeout_s
        while True:
            records = self.records(settle_s=0.02)
            if predicate(records) or time.monotonic() > deadline:
                return records

    def close(self):
        """Stop reading and remove the socket."""
        self._stop = True
        if self._thread is not None:
            self._thread.join(1.0)
        self.sock.close()
        self._dir.cleanup()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.close()


def probe_env(socket_path, extra=None, pythonpath=()):
    """Environment for a child interpreter with the probe on its path."""
    env = dict(os.environ)
    env.pop("PYTHONPROFILEIMPORTTIME", None)
    # Records must not be lost because a busy machine was slow to schedule the
    # receiving thread while the child exited (the default is 20 ms).
    env["PYROMETER_EXIT_FLUSH_MS"] = "2000"
    env["PYTHONPATH"] = os.pathsep.join([PROBE_DIR, *pythonpath])
    if socket_path is not None:
        env["PYROMETER_PROBE_SOCKET"] = socket_path
    else:
        env.pop("PYROMETER_PROBE_SOCKET", None)
    if extra:
        env.update(extra)
    return env


def run_python(code, socket_path, extra_env=None, pythonpath=(), cwd=None, timeout=120, argv=None):
    """Run ``code`` in a child of the interpreter running the tests, with the probe."""
    args = [sys.executable, "-c", code] if argv is None else [sys.executable, *argv]
    return subprocess.run(
        args,
        env=probe_env(socket_path, extra_env, pythonpath),
        cwd=cwd,
        capture_output=True,
        text=True,
        timeout=timeout,
    )


def start_python(code, socket_path, extra_env=None, pythonpath=(), cwd=None):
    """Start ``code`` in a child with the probe; its stdin and stdout are pipes (text, line-buffered).

    For tests that hand-shake with the child: it prints a line when it got
    somewhere and reads one to go on.
    """
    return subprocess.Popen(
        [sys.executable, "-u", "-c", code],
        env=probe_env(socket_path, extra_env, pythonpath),
        cwd=cwd,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        bufsize=1,
    )


def write_tree(root, files):
    """Create ``files`` ({relative path: text}) under ``root``."""
    for relative, text in files.items():
        path = os.path.join(root, relative)
        os.makedirs(os.path.dirname(path), exist_ok=True)
        with open(path, "w") as handle:
            handle.write(text)

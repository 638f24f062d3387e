"""Wire format v1: how the probe's records become datagram text (see PROTOCOL.md).

Data enters as plain Python values from the other modules and leaves as the
``str`` body of one datagram (the transport adds the header line). Every body
is one or more lines of TAB-separated fields, each line ending in ``\\n``; an
absent value is ``-``. Free text (module names, exception types, request ids,
the handler) is cleaned so it can never contain a separator.
"""

#: First field of every header line.
MAGIC = "pyrometer-probe"
#: Wire format version; the decoder rejects any other.
VERSION = 1
#: Largest datagram the probe sends and the decoder accepts, in bytes.
MAX_DATAGRAM_BYTES = 8192
#: Room kept for the header line when packing import rows into chunks.
HEADER_RESERVE_BYTES = 128
#: Longest free-text field; longer text is cut (a module name is never this long).
MAX_TEXT_CHARS = 512

KIND_INIT = "init"
KIND_IMPORTS = "imports"
KIND_INVOKE = "invoke"
KIND_FORK = "fork"
KIND_EXIT = "exit"
KIND_HTTP = "http"
KIND_READY = "ready"

_TRANSLATE = {ord("\t"): " ", ord("\n"): " ", ord("\r"): " "}


def text(value):
    """A free-text field: ``-`` when absent or empty, separators replaced, length capped."""
    if value is None:
        return "-"
    value = str(value)
    if not value:
        return "-"
    if len(value) > MAX_TEXT_CHARS:
        value = value[:MAX_TEXT_CHARS]
    if "\t" in value or "\n" in value or "\r" in value:
        value = value.translate(_TRANSLATE)
    return value


def number(value):
    """An integer field: ``-`` when absent."""
    if value is None:
        return "-"
    return str(int(value))


def header(kind, pid, seq, dropped):
    """The header line: magic, version, kind, pid, sequence number, drops so far."""
    return f"{MAGIC}\t{VERSION}\t{kind}\t{pid}\t{seq}\t{dropped}\n"


def header_prefix(kind, pid):
    """The part of the header that is the same for every record of a kind from one process."""
    return f"{MAGIC}\t{VERSION}\t{kind}\t{pid}\t"


def init_body(
    python,
    exec_unix_us,
    exec_source,
    probe_unix_us,
    ready_unix_us,
    ready_reason,
    probe_init_us,
    modules_before_probe,
    modules_at_ready,
    import_phase_us,
    handler_load_us,
    handler,
    handler_index,
    error,
    profile_id,
    profile_modules,
    gc_collections,
    gc_pause_us,
):
    """Body of the ``init`` record: from interpreter start to a ready handler."""
    return "\t".join(
        (
            text(python),
            number(exec_unix_us),
            text(exec_source),
            number(probe_unix_us),
            number(ready_unix_us),
            text(ready_reason),
            number(probe_init_us),
            number(modules_before_probe),
            number(modules_at_ready),
            number(import_phase_us),
            number(handler_load_us),
            text(handler),
            number(handler_index),
            text(error),
            number(profile_id),
            number(profile_modules),
            number(gc_collections),
            number(gc_pause_us),
        )
    ) + "\n"


_IMPORT_ROW = "%d\t%d\t%d\t%d\t%s\t%s\t%s\n"


def import_row(index, parent, self_us, cumulative_us, origin, error, name):
    """One module of an import profile."""
    return _IMPORT_ROW % (index, parent, self_us, cumulative_us, origin, text(error), text(name))


def import_rows(indexes, parents, self_us, cumulative_us, origins, errors, names):
    """The :func:`import_row` lines of a whole profile, from one list per field.

    The usual profile, whose module names are all short and printable, is
    formatted by one ``%`` per row run from C, with no Python call per row;
    any other, row by row.
    """
    if not _plain(names):
        return list(map(import_row, indexes, parents, self_us, cumulative_us, origins, errors, names))
    errors = ["-" if error is None else text(error) for error in errors]
    return list(map(_IMPORT_ROW.__mod__, zip(indexes, parents, self_us, cumulative_us, origins, errors, names)))


def _plain(names):
    """True if every name is a non-empty str that :func:`text` would leave as it is."""
    try:
        return all(names) and max(map(len, names), default=0) <= MAX_TEXT_CHARS and "".join(names).isprintable()
    except TypeError:  # not all str
        return False


def import_bodies(profile_id, base, rows, phase, invocation):
    """Bodies of the ``imports`` chunks carrying one profile (always at least one chunk).

    ``rows`` are ``import_row`` lines. Each chunk starts with
    ``profile_id, chunk_index, chunk_count, base_index, rows_total, rows_in_chunk,
    phase, invocation`` and stays under ``MAX_DATAGRAM_BYTES`` with the header.
    """
    budget = MAX_DATAGRAM_BYTES - HEADER_RESERVE_BYTES - 96  # 96: this chunk line
    chunks = []
    current = []
    size = 0
    for row in rows:
        length = len(row) if row.isascii() else len(row.encode("utf-8", "replace"))
        if current and size + length > budget:
            chunks.append(current)
            current = []
            size = 0
        current.append(row)
        size += length
    chunks.append(current)
    count = len(chunks)
    total = len(rows)
    phase = text(phase)
    return [
        f"{profile_id}\t{i}\t{count}\t{base}\t{total}\t{len(chunk)}\t{phase}\t{number(invocation)}\n"
        + "".join(chunk)
        for i, chunk in enumerate(chunks)
    ]


# One substitution per field that changes from call to call, ``%d`` where it
# is always a number; the fields that are the same in most invocations come
# as prepared pieces: the cold start and proactive init flags; status, error
# and the twelve GC counters; modules, threads, RSS and peak RSS; the loop
# fields and the pending imports. Each substitution costs a few hundred
# machine instructions, and turning a number into text as much again.
_INVOKE_FORMAT = "%s\t%d\t%s\t%d\t%d\t%s\t%s\t%s\t%s\t%s\t%s\t%d\n"
_FLAGS = ("0\t0", "0\t1", "1\t0", "1\t1")
#: The twelve GC fields of an invocation without garbage collection.
NO_GC = "\t".join(["0"] * 12)
_OK_NO_GC = "ok\t-\t" + NO_GC
_NO_LOOP_NO_IMPORTS = "-\t-\t0"
# The last (modules, threads, rss, peak rss, their four fields): they change
# in few invocations. One tuple, replaced whole, so threads encoding records
# at the same time never see half of one.
_gauges = (0, 0, None, None, "0\t0\t-\t-")


def invoke_body(
    request_id,
    number_in_process,
    cold_start,
    proactive_init,
    start_unix_us,
    duration_ns,
    error,
    gc,
    allocated_blocks,
    modules,
    threads,
    rss_bytes,
    max_rss_bytes,
    cpu_user_us,
    cpu_system_us,
    loop_lag_max_us,
    loop_pending_tasks,
    imports,
    probe_ns,
):
    """Body of the ``invoke`` record, one per handler call.

    ``gc`` holds, per generation 0..2, collections, pause ns, objects
    collected and uncollectable (12 integers), or None when no collection ran;
    ``error`` is the exception type or None; the optional figures are None
    when unknown. This is the probe's hot path: one ``%`` format, with one
    substitution per field that changes from call to call; the others come
    prepared (see ``_INVOKE_FORMAT``).
    """
    global _gauges
    gauges = _gauges
    if gauges[0] != modules or gauges[1] != threads or gauges[2] != rss_bytes or gauges[3] != max_rss_bytes:
        gauges = _gauges = (
            modules,
            threads,
            rss_bytes,
            max_rss_bytes,
            "%d\t%d\t%s\t%s"
            % (modules, threads, "-" if rss_bytes is None else rss_bytes, "-" if max_rss_bytes is None else max_rss_bytes),
        )
    if error is None and gc is None:
        outcome = _OK_NO_GC
    else:
        outcome = "%s\t%s\t%s" % (
            "ok" if error is None else "error",
            "-" if error is None else text(error),
            NO_GC if gc is None else "%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d\t%d" % tuple(gc),
        )
    if loop_lag_max_us is None and loop_pending_tasks is None and imports == 0:
        rest = _NO_LOOP_NO_IMPORTS
    else:
        rest = "%s\t%s\t%d" % (
            "-" if loop_lag_max_us is None else loop_lag_max_us,
            "-" if loop_pending_tasks is None else loop_pending_tasks,
            imports,
        )
    if not (
        request_id.__class__ is str
        and 0 < len(request_id) <= MAX_TEXT_CHARS
        and "\t" not in request_id
        and "\n" not in request_id
        and "\r" not in request_id
    ):
        request_id = text(request_id)  # the usual request id needs no cleaning: skip the call
    return _INVOKE_FORMAT % (
        request_id,
        number_in_process,
        _FLAGS[(2 if cold_start else 0) + (1 if proactive_init else 0)],
        start_unix_us,
        duration_ns,
        outcome,
        "-" if allocated_blocks is None else allocated_blocks,
        gauges[4],
        "-" if cpu_user_us is None else cpu_user_us,
        "-" if cpu_system_us is None else cpu_system_us,
        rest,
        probe_ns,
    )


def fork_body(parent_pid, fork_unix_us):
    """Body of the ``fork`` record, sent first by a forked child."""
    return f"{number(parent_pid)}\t{number(fork_unix_us)}\n"


def ready_body(ready_unix_us, reason):
    """Body of the ``ready`` record: a forked child became ready to serve on its own."""
    return f"{number(ready_unix_us)}\t{text(reason)}\n"


def exit_body(invocations, exit_unix_us, unsent):
    """Body of the ``exit`` record, the last a process sends."""
    return f"{number(invocations)}\t{number(exit_unix_us)}\t{number(unsent)}\n"


def http_series_line(method, route, status, count, sum_us, max_us, buckets):
    """One series of an ``http`` record: buckets as comma-separated counts, the route last."""
    return "%s\t%d\t%d\t%d\t%d\t%s\t%s\n" % (
        text(method),
        status,
        count,
        sum_us,
        max_us,
        ",".join(map(str, buckets)),
        text(route),
    )


def http_bodies(
    framework,
    window_end_unix_us,
    first_response_unix_us,
    in_flight,
    loop_lag_max_us,
    loop_pending_tasks,
    bounds_us,
    series,
):
    """Bodies of the ``http`` datagrams carrying one window (at least one datagram).

    ``series`` holds ``(method, route, status, count, sum_us, max_us, buckets)``
    tuples. Each datagram repeats the window line, then carries as many series
    lines as fit under ``MAX_DATAGRAM_BYTES``: every datagram stands alone, and
    a receiver adds up the series of all of them.
    """
    head = "%s\t%s\t%s\t%s\t%s\t%s\t%s\t" % (
        text(framework),
        number(window_end_unix_us),
        number(first_response_unix_us),
        number(in_flight),
        number(loop_lag_max_us),
        number(loop_pending_tasks),
        ",".join(map(str, bounds_us)),
    )
    # Room for the header line, the window line and its series count.
    budget = MAX_DATAGRAM_BYTES - HEADER_RESERVE_BYTES - len(head.encode("utf-8", "replace")) - 8
    parts = []
    current = []
    size = 0
    for row in series:
        line = http_series_line(*row)
        length = len(line.encode("utf-8", "replace"))
        if current and size + length > budget:
            parts.append(current)
            current = []
            size = 0
        current.append(line)
        size += length
    parts.append(current)
    return ["%s%d\n%s" % (head, len(lines), "".join(lines)) for lines in parts]

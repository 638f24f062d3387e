"""HTTP instrumentation without a framework: aggregation, buckets, cardinality, encoding, WSGI and ASGI wrappers.

The in-process tests drive :mod:`pyrometer_probe.web` and the generic
middleware of :mod:`pyrometer_probe.middleware` directly (the probe itself is
off in the test process, so nothing is sent); the end-to-end ones run plain
WSGI apps in a child interpreter with the probe and decode what it sends. The
real frameworks are tested in ``../tests_web``.
"""

import ast
import asyncio
import gc
import itertools
import sys
import textwrap
import threading
import time
import unittest

from probe_harness import PROBE_DIR, Receiver, http_totals, http_window, parse, profiles, run_python, start_python

sys.path.insert(0, PROBE_DIR)

from pyrometer_probe import frameworks, middleware, process, runtime, web, wire  # noqa: E402

_names = itertools.count()


def fresh_window():
    """A window of its own for each test (windows are per framework name, process-wide)."""
    return web.window("test-%d" % next(_names))


class FakeClock:
    """Replaces the clock :mod:`.web` and :mod:`.middleware` read, so durations are exact."""

    def __init__(self):
        self.now = 10**15

    def advance_us(self, us):
        self.now += us * 1000

    def __enter__(self):
        self._saved = web.perf_counter_ns, middleware.perf_counter_ns
        web.perf_counter_ns = middleware.perf_counter_ns = lambda: self.now
        return self

    def __exit__(self, *exc_info):
        web.perf_counter_ns, middleware.perf_counter_ns = self._saved


def request(window, duration_us, method="GET", route="/r", status=200):
    """One request of exactly ``duration_us``."""
    with FakeClock() as clock:
        started = web.request_started(window)
        clock.advance_us(duration_us)
        web.request_finished(window, method, route, status, started)


def decoded(window):
    """Take the window and decode its datagrams as a receiver would."""
    bodies = web.take_window(window, 1_700_000_000_000_000)
    return [http_window(parse((wire.header("http", 4_000_000, 10**12, 10**12) + body).encode())) for body in bodies]


def series_of(windows):
    """``{(method, route, status): series}`` over decoded datagrams; a series may appear only once."""
    found = {}
    for window in windows:
        for row in window["series"]:
            key = (row["method"], row["route"], row["status"])
            assert key not in found, key
            found[key] = row
    return found


class AggregationTest(unittest.TestCase):
    def test_count_sum_max_per_series(self):
        window = fresh_window()
        for us in (1000, 3000, 2000):
            request(window, us, route="/a")
        request(window, 7000, route="/a", status=500)
        request(window, 10, method="POST", route="/a")
        (decoded_window,) = decoded(window)
        found = series_of([decoded_window])
        self.assertEqual(set(found), {("GET", "/a", 200), ("GET", "/a", 500), ("POST", "/a", 200)})
        ok = found[("GET", "/a", 200)]
        self.assertEqual((ok["count"], ok["sum_us"], ok["max_us"]), (3, 6000, 3000))
        self.assertEqual(found[("GET", "/a", 500)]["buckets"][1], 1)
        self.assertEqual(decoded_window["bounds_us"], list(web.BOUNDS_US))
        self.assertEqual(decoded_window["in_flight"], 0)

    def test_bucket_edges_are_upper_inclusive_with_an_overflow_bucket(self):
        window = fresh_window()
        expected = [0] * (len(web.BOUNDS_US) + 1)
        cases = [(0, 0), (5000, 0), (5001, 1), (10_000, 1), (250_000, 6), (250_001, 7), (10_000_000, 13)]
        cases += [(10_000_001, 14), (99_000_000, 14)]
        for us, bucket in cases:
            request(window, us)
            expected[bucket] += 1
        (row,) = decoded(window)[0]["series"]
        self.assertEqual(row["buckets"], expected)
        self.assertEqual(row["max_us"], 99_000_000)
        self.assertEqual(row["sum_us"], sum(us for us, _ in cases))

    def test_a_series_longer_than_the_fold_limit_is_folded_and_reported_whole(self):
        window = fresh_window()
        saved = web.FOLD_AT
        web.FOLD_AT = 3
        try:
            durations = (10, 6000, 20, 300_000, 5000, 70, 12_000_000)
            for us in durations:
                request(window, us)
                self.assertLess(len(window.series[("GET", "/r", 200)]), 3)
        finally:
            web.FOLD_AT = saved
        (row,) = decoded(window)[0]["series"]
        self.assertEqual((row["count"], row["sum_us"], row["max_us"]), (7, sum(durations), 12_000_000))
        expected = [0] * (len(web.BOUNDS_US) + 1)
        for bucket in (0, 1, 0, 7, 0, 0, 14):
            expected[bucket] += 1
        self.assertEqual(row["buckets"], expected)

    def test_a_series_folded_to_empty_is_still_reported(self):
        window = fresh_window()
        saved = web.FOLD_AT
        web.FOLD_AT = 3
        try:
            for us in (10, 20, 30):
                request(window, us)
        finally:
            web.FOLD_AT = saved
        self.assertEqual(len(window.series[("GET", "/r", 200)]), 0)
        (row,) = decoded(window)[0]["series"]
        self.assertEqual((row["count"], row["sum_us"], row["max_us"]), (3, 60, 30))
        self.assertEqual(web.take_window(window, 1), [], "the fold was the window's, not the next one's")

    def test_requests_ending_while_windows_are_taken_are_each_counted_once(self):
        window = fresh_window()
        threads, per_thread = 4, 3000

        def serve():
            for _ in range(per_thread):
                web.request_finished(window, "GET", "/r", 200, web.request_started(window))

        saved = web.FOLD_AT, sys.getswitchinterval()
        web.FOLD_AT = 7  # folds race with the appends too
        sys.setswitchinterval(1e-6)  # switch threads as often as CPython allows
        try:
            servers = [threading.Thread(target=serve) for _ in range(threads)]
            for server in servers:
                server.start()
            counted = windows = 0
            while any(server.is_alive() for server in servers) or windows == 0:
                counted += sum(row["count"] for taken in decoded(window) for row in taken["series"])
                windows += 1
            for server in servers:
                server.join()
            counted += sum(row["count"] for taken in decoded(window) for row in taken["series"])
        finally:
            web.FOLD_AT, interval = saved
            sys.setswitchinterval(interval)
        self.assertEqual(counted, threads * per_thread)
        self.assertEqual(len(window.in_flight), 0)

    def test_routes_that_are_not_strings_become_labels(self):
        class Printed:
            def __str__(self):
                return "/printed"

        class Hostile:
            def __str__(self):
                raise RuntimeError("no")

        window = fresh_window()
        for route in (None, "", Printed(), Hostile()):
            request(window, 100, route=route)
        found = series_of(decoded(window))
        self.assertEqual(found[("GET", web.UNMATCHED_ROUTE, 200)]["count"], 3)
        self.assertEqual(found[("GET", "/printed", 200)]["count"], 1)

    def test_an_unhashable_route_is_labelled_not_lost(self):
        window = fresh_window()
        for _ in range(2):
            request(window, 100, route=["/listed"])
        found = series_of(decoded(window))
        self.assertEqual(found[("GET", "['/listed']", 200)]["count"], 2)
        self.assertEqual(len(window.in_flight), 0)

    def test_methods_outside_the_standard_ones_are_one_label(self):
        window = fresh_window()
        for method in ("BREW", "get", None, "PATCH"):
            request(window, 100, method=method)
        found = series_of(decoded(window))
        self.assertEqual(found[("_OTHER", "/r", 200)]["count"], 3)
        self.assertEqual(found[("PATCH", "/r", 200)]["count"], 1)

    def test_series_beyond_the_cap_go_to_other_and_the_admitted_ones_stay(self):
        window = fresh_window()
        for n in range(web.MAX_SERIES + 44):
            request(window, 100, route="/route-%d/<id>" % n)
        windows = decoded(window)
        found = series_of(windows)
        self.assertEqual(len(found), web.MAX_SERIES + 1)
        self.assertEqual(found[("GET", web.OTHER_ROUTE, 200)]["count"], 44)
        self.assertEqual(sum(row["count"] for row in found.values()), web.MAX_SERIES + 44)
        # Next window: an admitted series keeps its route, a new one still overflows,
        # and a new status of an admitted route is a new series too.
        request(window, 100, route="/route-3/<id>")
        request(window, 100, route="/brand-new")
        request(window, 100, route="/route-3/<id>", status=404)
        found = series_of(decoded(window))
        self.assertEqual(found[("GET", "/route-3/<id>", 200)]["count"], 1)
        self.assertEqual(found[("GET", web.OTHER_ROUTE, 200)]["count"], 1)
        self.assertEqual(found[("GET", web.OTHER_ROUTE, 404)]["count"], 1)

    def test_in_flight_gauge_and_empty_windows(self):
        window = fresh_window()
        with FakeClock():
            first = web.request_started(window)
            web.request_started(window)
            web.request_finished(window, "GET", "/slow", 200, first)
        (only,) = decoded(window)
        self.assertEqual(only["in_flight"], 1)
        self.assertEqual(len(only["series"]), 1)
        # Nothing completed, one still running: the gauge alone is sent.
        (gauge,) = decoded(window)
        self.assertEqual((gauge["in_flight"], gauge["series"]), (1, []))
        with FakeClock():
            web.request_finished(window, "GET", "/slow", 200, first)
        self.assertEqual(len(decoded(window)), 1)
        # Nothing completed and nothing in flight: nothing to send.
        self.assertEqual(web.take_window(window, 1), [])


class EncodingTest(unittest.TestCase):
    def test_one_window_one_datagram(self):
        (body,) = wire.http_bodies(
            "flask", 1_700_000_000_000_000, None, 2, None, None, (5000, 10000), [("GET", "/u/<id>", 200, 2, 9000, 7000, [1, 1, 0])]
        )
        self.assertEqual(body, "flask\t1700000000000000\t-\t2\t-\t-\t5000,10000\t1\nGET\t200\t2\t9000\t7000\t1,1,0\t/u/<id>\n")
        (body,) = wire.http_bodies("fastapi", 5, 4, 0, 180_000, 3, (1,), [("GET", "/a\tb\nc", 0, 1, 2, 2, [0, 1])])
        self.assertEqual(body, "fastapi\t5\t4\t0\t180000\t3\t1\t1\nGET\t0\t1\t2\t2\t0,1\t/a b c\n")

    def test_large_windows_split_into_self_contained_datagrams(self):
        rows = [("GET", "/é" * 250 + str(n), 200, n + 1, 100 * (n + 1), 100, [n + 1] + [0] * 14) for n in range(40)]
        bodies = wire.http_bodies("django", 9, 8, 1, None, None, web.BOUNDS_US, rows)
        self.assertGreater(len(bodies), 4)
        windows = []
        for seq, body in enumerate(bodies):
            datagram = (wire.header("http", 4_194_304, 2**63, 2**63) + body).encode()
            self.assertLessEqual(len(datagram), wire.MAX_DATAGRAM_BYTES)
            windows.append(http_window(parse(datagram)))
        self.assertTrue(all((w["framework"], w["window_end_unix_us"], w["in_flight"]) == ("django", 9, 1) for w in windows))
        found = series_of(windows)
        self.assertEqual(len(found), 40)
        self.assertEqual(sum(row["count"] for row in found.values()), sum(n + 1 for n in range(40)))


def wsgi_environ(path="/x", method="GET"):
    return {"REQUEST_METHOD": method, "PATH_INFO": path}


class StartResponse:
    """A server's ``start_response``: records its calls."""

    def __init__(self):
        self.calls = []

    def __call__(self, status, headers, exc_info=None):
        self.calls.append((status, headers, exc_info))
        return self.write

    def write(self, data):
        raise AssertionError("write() is not used by these apps")


class Body:
    """An application's response body that counts its close() calls."""

    def __init__(self, chunks, between=None):
        self.chunks = chunks
        self.between = between
        self.closed = 0

    def __iter__(self):
        for n, chunk in enumerate(self.chunks):
            if n and self.between:
                self.between()
            yield chunk

    def close(self):
        self.closed += 1


class Closing:
    """Werkzeug's ClosingIterator, in short: close() runs the callbacks in order."""

    def __init__(self, chunks, callbacks):
        self.chunks = chunks
        self._callbacks = callbacks

    def __iter__(self):
        return iter(self.chunks)

    def close(self):
        for callback in self._callbacks:
            callback()


class WsgiMiddlewareTest(unittest.TestCase):
    def setUp(self):
        self.window_name = "wsgi-%d" % next(_names)
        self.window = web.window(self.window_name)

    def wrap(self, app, route="/x", closing=None):
        return middleware.wsgi_app(app, self.window_name, lambda app, environ: route, closing)

    def series(self):
        return series_of(decoded(self.window))

    def test_result_status_and_route(self):
        body = Body([b"hello ", b"world"])
        headers = [("Content-Type", "text/plain")]

        def app(environ, start_response):
            start_response("201 Created", headers)
            return body

        server = StartResponse()
        response = self.wrap(app, route="/things/<id>")(wsgi_environ(), server)
        self.assertEqual(b"".join(response), b"hello world")
        response.close()
        self.assertEqual(server.calls, [("201 Created", headers, None)])
        self.assertIs(server.calls[0][1], headers)
        self.assertEqual(body.closed, 1)
        self.assertEqual(self.series()[("GET", "/things/<id>", 201)]["count"], 1)

    def test_a_streamed_body_counts_until_it_is_finished(self):
        with FakeClock() as clock:
            body = Body([b"a", b"b", b"c"], between=lambda: clock.advance_us(20_000))

            def app(environ, start_response):
                start_response("200 OK", [])
                return body

            response = self.wrap(app)(wsgi_environ(), StartResponse())
            chunks = iter(response)
            self.assertEqual(next(chunks), b"a")
            self.assertEqual(len(self.window.in_flight), 1)
            self.assertEqual(list(chunks), [b"b", b"c"])
            response.close()
        self.assertEqual(len(self.window.in_flight), 0)
        row = self.series()[("GET", "/x", 200)]
        self.assertEqual((row["count"], row["sum_us"]), (1, 40_000))
        self.assertEqual(body.closed, 1)

    def test_a_body_with_close_callbacks_ends_the_request_first_among_them(self):
        def failing_callback():
            raise RuntimeError("a callback of the application failed")

        bodies = []

        def app(environ, start_response):
            start_response("200 OK", [])
            bodies.append(Closing([b"a", b"b"], [failing_callback]))
            if environ["PATH_INFO"] == "/without-callbacks":
                del bodies[-1]._callbacks
            return bodies[-1]

        with FakeClock() as clock:
            response = self.wrap(app, route="/c", closing=Closing)(wsgi_environ(), StartResponse())
            self.assertIs(response, bodies[0], "returned as the application returned it")
            self.assertEqual(b"".join(response), b"ab")
            clock.advance_us(700)
            for _ in range(2):  # a second close counts nothing more
                with self.assertRaises(RuntimeError):
                    response.close()
            # A body of that class without the callbacks expected is wrapped.
            wrapped = self.wrap(app, route="/w", closing=Closing)(wsgi_environ("/without-callbacks"), StartResponse())
            self.assertIsNot(wrapped, bodies[1])
            self.assertEqual(b"".join(wrapped), b"ab")
            with self.assertRaises(AttributeError):  # its own close() fails without them
                wrapped.close()
        found = self.series()
        self.assertEqual((found[("GET", "/c", 200)]["count"], found[("GET", "/c", 200)]["sum_us"]), (1, 700))
        self.assertEqual(found[("GET", "/w", 200)]["count"], 1)
        self.assertEqual(len(self.window.in_flight), 0)

    def test_a_body_closed_before_it_is_read_ends_the_request_once(self):
        body = Body([b"never read"])

        def app(environ, start_response):
            start_response("200 OK", [])
            return body

        response = self.wrap(app)(wsgi_environ(), StartResponse())
        response.close()
        response.close()
        self.assertEqual(body.closed, 2)
        self.assertEqual(self.series()[("GET", "/x", 200)]["count"], 1)
        self.assertEqual(len(self.window.in_flight), 0)

    def test_a_body_the_server_drops_unclosed_can_still_end_its_request_once(self):
        closed = []

        def app(environ, start_response):
            start_response("200 OK", [])
            if environ["PATH_INFO"] == "/closing":
                return Closing([b"a"], [lambda: closed.append(True)])
            return Body([b"b"])

        with FakeClock() as clock:
            dropped = [
                self.wrap(app, route=path, closing=Closing)(wsgi_environ(path), StartResponse())
                for path in ("/closing", "/plain")
            ]
            self.assertIsInstance(dropped[0], Closing, "returned as it is, the end among its callbacks")
            clock.advance_us(300)
            for body in dropped:
                middleware.end_abandoned(body)
                middleware.end_abandoned(body)  # once only
            closed_first = self.wrap(app, route="/closed", closing=Closing)(wsgi_environ("/closing"), StartResponse())
            closed_first.close()
            middleware.end_abandoned(closed_first)  # ended already
            middleware.end_abandoned(Body([b"not measured"]))
            middleware.end_abandoned(None)
        found = self.series()
        self.assertEqual((found[("GET", "/closing", 200)]["count"], found[("GET", "/closing", 200)]["sum_us"]), (1, 300))
        self.assertEqual(found[("GET", "/plain", 200)]["count"], 1)
        self.assertEqual(found[("GET", "/closed", 200)]["count"], 1)
        self.assertEqual(len(self.window.in_flight), 0)
        self.assertEqual(closed, [True], "the application's own close callbacks stay the server's business")

    def test_a_body_abandoned_half_read_is_closed_once(self):
        class ClosingIterator:
            """Its own iterator with a close(), like Werkzeug's response bodies."""

            def __init__(self):
                self.chunks = iter([b"a", b"b"])
                self.closed = 0

            def __iter__(self):
                return self

            def __next__(self):
                return next(self.chunks)

            def close(self):
                self.closed += 1

        body = ClosingIterator()

        def app(environ, start_response):
            start_response("200 OK", [])
            return body

        response = self.wrap(app)(wsgi_environ(), StartResponse())
        chunks = iter(response)
        self.assertEqual(next(chunks), b"a")
        response.close()  # the client went away
        del chunks
        gc.collect()
        self.assertEqual(body.closed, 1)
        self.assertEqual(self.series()[("GET", "/x", 200)]["count"], 1)

    def test_exceptions_propagate_unchanged(self):
        raised = ValueError("boom", 7)

        def before_start(environ, start_response):
            raise raised

        def after_start(environ, start_response):
            start_response("500 Internal Server Error", [], (ValueError, raised, None))
            raise raised

        for app, status in ((before_start, 0), (after_start, 500)):
            with self.assertRaises(ValueError) as caught:
                self.wrap(app)(wsgi_environ(), StartResponse())
            self.assertIs(caught.exception, raised)
            self.assertEqual(self.series()[("GET", "/x", status)]["count"], 1)
        self.assertEqual(len(self.window.in_flight), 0)

    def test_a_file_wrapper_body_is_returned_as_it_is(self):
        class FileWrapper:
            def __init__(self, filelike, block_size=8192):
                self.filelike = filelike

        wrapped = FileWrapper(object())

        def app(environ, start_response):
            start_response("200 OK", [])
            return environ["wsgi.file_wrapper"](wrapped.filelike)

        environ = wsgi_environ()
        environ["wsgi.file_wrapper"] = FileWrapper
        response = self.wrap(app)(environ, StartResponse())
        self.assertIs(response.__class__, FileWrapper)
        self.assertEqual(self.series()[("GET", "/x", 200)]["count"], 1)

    def test_a_nested_measured_app_is_counted_once(self):
        inner = self.wrap(lambda environ, start_response: (start_response("204 No Content", []), [])[1], route="/inner")
        outer = self.wrap(lambda environ, start_response: inner(environ, start_response), route="/outer")
        response = outer(wsgi_environ(), StartResponse())
        list(response)
        response.close()
        self.assertEqual(list(self.series()), [("GET", "/outer", 204)])

    def test_failing_or_missing_routes_are_unmatched(self):
        def app(environ, start_response):
            start_response("404 Not Found", [])
            return [b""]

        def broken(app, environ):
            raise KeyError("route")

        for route_of in (broken, lambda app, environ: None, lambda app, environ: ""):
            response = middleware.wsgi_app(app, self.window_name, route_of)(wsgi_environ(), StartResponse())
            list(response)
            response.close()
        self.assertEqual(self.series()[("GET", web.UNMATCHED_ROUTE, 404)]["count"], 3)


def asgi_scope(kind="http", path="/x"):
    return {"type": kind, "method": "GET", "path": path}


class Sent:
    """An ASGI server's ``send``: records the messages."""

    def __init__(self):
        self.messages = []

    async def __call__(self, message):
        self.messages.append(message)


async def nothing_to_receive():
    return {"type": "http.request", "body": b"", "more_body": False}


class AsgiMiddlewareTest(unittest.TestCase):
    def setUp(self):
        self.window_name = "asgi-%d" % next(_names)
        self.window = web.window(self.window_name)

    def wrap(self, app, route="/x"):
        return middleware.asgi_app(app, self.window_name, lambda app, scope: route)

    def series(self):
        return series_of(decoded(self.window))

    def test_status_route_and_messages_pass_through(self):
        start = {"type": "http.response.start", "status": 418, "headers": []}
        body = {"type": "http.response.body", "body": b"tea"}

        async def app(scope, receive, send):
            await send(start)
            await send(body)
            return "result"

        sent = Sent()
        result = asyncio.run(self.wrap(app, route="/pots/{id}")(asgi_scope(), nothing_to_receive, sent))
        self.assertEqual(result, "result")
        self.assertEqual(len(sent.messages), 2)
        self.assertIs(sent.messages[0], start)
        self.assertIs(sent.messages[1], body)
        self.assertEqual(self.series()[("GET", "/pots/{id}", 418)]["count"], 1)
        self.assertTrue(asyncio.iscoroutinefunction(self.wrap(app)))

    def test_the_status_is_the_first_start_message_s_as_a_number(self):
        def app_sending(*messages):
            async def app(scope, receive, send):
                for message in messages:
                    await send(message)

            return app

        def start(status):
            return {"type": "http.response.start", "status": status}

        body = {"type": "http.response.body", "body": b""}
        cases = (
            (app_sending(start("201"), body), 201),
            (app_sending(start("teapot"), body), 0),
            (app_sending(start(None), body), 0),
            (app_sending("not a message", start(202), body), 202),
            (app_sending(start(203), start(500), body), 203),
        )
        for app, status in cases:
            sent = Sent()
            asyncio.run(self.wrap(app)(asgi_scope(), nothing_to_receive, sent))
            self.assertEqual(sent.messages[-1], body)
            self.assertEqual([key[2] for key in self.series()], [status])
        self.assertEqual(len(self.window.in_flight), 0)

    def test_exceptions_propagate_unchanged(self):
        raised = RuntimeError("down")

        async def before_start(scope, receive, send):
            raise raised

        async def after_500(scope, receive, send):
            await send({"type": "http.response.start", "status": 500, "headers": []})
            await send({"type": "http.response.body", "body": b""})
            raise raised

        for app, status in ((before_start, 0), (after_500, 500)):
            with self.assertRaises(RuntimeError) as caught:
                asyncio.run(self.wrap(app)(asgi_scope(), nothing_to_receive, Sent()))
            self.assertIs(caught.exception, raised)
            self.assertEqual(self.series()[("GET", "/x", status)]["count"], 1)
        self.assertEqual(len(self.window.in_flight), 0)

    def test_only_http_scopes_are_counted_and_nesting_counts_once(self):
        seen = []

        async def app(scope, receive, send):
            seen.append(scope["type"])
            if scope["type"] == "http":
                await send({"type": "http.response.start", "status": 200, "headers": []})

        inner = self.wrap(app, route="/inner")

        async def outer_app(scope, receive, send):
            await inner(scope, receive, send)

        outer = self.wrap(outer_app, route="/outer")

        async def main():
            for kind in ("lifespan", "websocket", "http"):
                await outer(asgi_scope(kind), nothing_to_receive, Sent())

        asyncio.run(main())
        self.assertEqual(seen, ["lifespan", "websocket", "http"])
        self.assertEqual(list(self.series()), [("GET", "/outer", 200)])

    def test_a_blocking_call_in_async_code_shows_as_loop_lag(self):
        async def app(scope, receive, send):
            if scope["path"] == "/block":
                time.sleep(runtime.LOOP_INTERVAL_S * 3)  # blocks the event loop
            await send({"type": "http.response.start", "status": 200, "headers": []})

        measured = self.wrap(app)

        async def main():
            await measured(asgi_scope(path="/fast"), nothing_to_receive, Sent())
            monitor = self.window.monitor
            self.assertIsNotNone(monitor)
            self.assertIs(monitor.loop, asyncio.get_running_loop())
            await measured(asgi_scope(path="/block"), nothing_to_receive, Sent())
            # The monitor's wake-up fell due during the block: two passes of
            # the loop run it (the first runs what was ready before it).
            await asyncio.sleep(0)
            await asyncio.sleep(0)
            return decoded(self.window)

        (window,) = asyncio.run(main())
        self.assertGreaterEqual(window["loop_lag_max_us"], int(runtime.LOOP_INTERVAL_S * 1.5e6))
        self.assertIsNotNone(window["loop_pending_tasks"])
        self.assertEqual(sum(row["count"] for row in window["series"]), 2)


# End to end: a plain WSGI app in a child interpreter with the probe --------

APP = textwrap.dedent(
    """
    import json, os, sys
    from pyrometer_probe import middleware

    def hello(environ, start_response):
        start_response("200 OK", [("Content-Type", "text/plain")])
        return [b"hi"]

    app = middleware.wsgi_app(hello, "wsgi", lambda app, environ: "/hello")

    def serve(count):
        for _ in range(count):
            body = app({"REQUEST_METHOD": "GET", "PATH_INFO": "/hello"}, lambda status, headers: None)
            assert b"".join(body) == b"hi"
            body.close()
    """
)


class EndToEndTest(unittest.TestCase):
    def setUp(self):
        self.receiver = Receiver()

    def tearDown(self):
        self.receiver.close()

    def test_nothing_web_is_loaded_until_a_framework_is(self):
        self.assertEqual(set(frameworks.HOOKS), set(process.WEB_FRAMEWORK_MODULES))
        code = "import sys, json\nprint(sorted(m for m in sys.modules if m.startswith('pyrometer_probe.')))\n"
        result = run_python(code, self.receiver.path)
        self.assertEqual(result.returncode, 0, result.stderr)
        loaded = ast.literal_eval(result.stdout)
        self.assertIn("pyrometer_probe.imports", loaded)
        for module in ("frameworks", "middleware", "web"):
            self.assertNotIn("pyrometer_probe." + module, loaded)

    def test_windows_go_out_periodically_then_at_exit_before_the_exit_record(self):
        code = APP + textwrap.dedent(
            """
            serve(3)
            print("served", flush=True)
            time.sleep(0.3)  # idle: six flush intervals with nothing to send
            sys.stdin.readline()  # until the test saw the three requests
            serve(2)
            """
        )
        child = start_python("import time\n" + code, self.receiver.path, {"PYROMETER_HTTP_FLUSH_MS": "50"})
        try:
            self.assertEqual(child.stdout.readline().strip(), "served", child.stderr)
            # Sent by the flush thread while the child is busy doing nothing.
            records = self.receiver.wait_for(lambda rs: http_totals(rs).get(("GET", "/hello", 200), {}).get("count") == 3)
            self.assertEqual(http_totals(records)[("GET", "/hello", 200)]["count"], 3)
            child.stdin.write("go\n")
            child.stdin.flush()
            self.assertEqual(child.wait(60), 0)
        finally:
            child.kill()
            _, stderr = child.communicate()
        self.assertEqual(stderr, "")
        records = self.receiver.wait_for(lambda rs: any(r.kind == "exit" for r in rs))
        kinds = [r.kind for r in records]
        windows = [http_window(r) for r in records if r.kind == "http"]
        self.assertEqual(http_totals(records)[("GET", "/hello", 200)]["count"], 5)
        # Idle windows send nothing: every window has requests in it.
        self.assertTrue(all(w["series"] for w in windows), windows)
        self.assertLessEqual(len(windows), 5)
        self.assertEqual(kinds[-2:], ["http", "exit"])
        self.assertEqual({w["framework"] for w in windows}, {"wsgi"})
        self.assertEqual(len({w["first_response_unix_us"] for w in windows}), 1)
        ends = [w["window_end_unix_us"] for w in windows]
        self.assertEqual(ends, sorted(set(ends)))

    def test_the_first_request_marks_ready_and_sends_the_import_profile(self):
        result = run_python(APP + "serve(1)\n", self.receiver.path)
        self.assertEqual(result.returncode, 0, result.stderr)
        records = self.receiver.wait_for(lambda rs: any(r.kind == "exit" for r in rs))
        kinds = [r.kind for r in records]
        self.assertLess(kinds.index("init"), kinds.index("http"))
        init = next(r for r in records if r.kind == "init").fields()
        self.assertEqual(init["ready_reason"], "request")
        (window,) = [http_window(r) for r in records if r.kind == "http"]
        first = window["first_response_unix_us"]
        self.assertLessEqual(first, int(init["ready_unix_us"]))
        self.assertLess(int(init["ready_unix_us"]) - first, 1_000_000)
        self.assertLessEqual(first, window["window_end_unix_us"])
        (profile,) = [p for p in profiles(records) if p.phase == "init"]
        self.assertEqual(len(profile.by_name("json")), 1)

    def test_a_forked_worker_reports_only_its_own_requests(self):
        code = APP + textwrap.dedent(
            """
            serve(1)
            pid = os.fork()
            if pid == 0:
                serve(2)
                sys.exit(0)
            os.waitpid(pid, 0)
            print(os.getpid())
            """
        )
        result = run_python(code, self.receiver.path)
        self.assertEqual(result.returncode, 0, result.stderr)
        parent = int(result.stdout.strip())
        records = self.receiver.wait_for(lambda rs: sum(r.kind == "exit" for r in rs) >= 2)
        child = ({r.pid for r in records} - {parent}).pop()
        child_records = [r for r in records if r.pid == child]
        parent_records = [r for r in records if r.pid == parent]
        self.assertEqual(http_totals(child_records)[("GET", "/hello", 200)]["count"], 2)
        self.assertEqual(http_totals(parent_records)[("GET", "/hello", 200)]["count"], 1)
        self.assertNotIn("init", [r.kind for r in child_records])
        fork_unix_us = int(child_records[0].fields()["fork_unix_us"])
        child_window = next(http_window(r) for r in child_records if r.kind == "http")
        self.assertGreaterEqual(child_window["first_response_unix_us"], fork_unix_us)
        self.assertEqual([r.kind for r in child_records][-2:], ["http", "exit"])


if __name__ == "__main__":
    unittest.main()

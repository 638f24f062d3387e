"""The compiled half of the request measurement (``pyrometer_probe._speedups``): it loads, and fails safe.

What it measures is checked through its user, the ASGI middleware
(``test_web``'s ASGI tests), which runs with it and, under
``PYROMETER_SPEEDUPS=off``, without it (``run-tests.sh`` runs it both
ways). Here: that it loads on this CPython unless switched off, that its
clock is ``time.perf_counter_ns``'s, that misuse raises instead of
crashing, and that it keeps no references it should not.
"""

import gc
import os
import sys
import time
import unittest
import weakref

from probe_harness import PROBE_DIR

sys.path.insert(0, PROBE_DIR)

from pyrometer_probe import process, speedups, web  # noqa: E402

BUILD = "host/python/speedups/build.sh host/python/pyrometer_probe/_speedups.abi3.so (needs cc and python3-dev)"
SWITCHED_OFF = process.is_off(os.environ.get("PYROMETER_SPEEDUPS"))


def sent(message):
    """Stands for an ASGI server's send: returns what it was given."""
    return message


class LoadingTest(unittest.TestCase):
    def test_it_loads_unless_switched_off(self):
        if SWITCHED_OFF:
            self.assertIsNone(speedups.native)
        else:
            self.assertIsNotNone(speedups.native, "the compiled module did not load; build it: " + BUILD)


@unittest.skipIf(SWITCHED_OFF, "PYROMETER_SPEEDUPS=off: nothing compiled to check")
class CompiledTest(unittest.TestCase):
    def setUp(self):
        if speedups.native is None:
            self.fail("the compiled module did not load; build it: " + BUILD)
        self.native = speedups.native
        self.window = web.window("test-speedups-%s" % self.id())

    def test_a_duration_is_read_on_perf_counter_ns_clock(self):
        # The first request of a series ends in web.request_finished (Python's
        # clock minus the compiled start), the second in the compiled common
        # case: both lie within the time bracketing them.
        for _ in range(2):
            before = time.perf_counter_ns()
            exchange = self.native.exchange(self.window, sent)
            exchange.end("GET", "/clock")
            after = time.perf_counter_ns()
            durations = self.window.series[("GET", "/clock", 0)]
            self.assertGreaterEqual(durations[-1], 0)
            self.assertLessEqual(durations[-1], after - before)
        self.assertEqual(len(durations), 2)
        self.assertEqual(len(self.window.in_flight), 0)

    def test_an_exchange_ends_once_and_passes_messages_and_their_result_on(self):
        exchange = self.native.exchange(self.window, sent)
        self.assertEqual(len(self.window.in_flight), 1)
        message = {"type": "http.response.start", "status": 204}
        self.assertIs(exchange(message), message)
        exchange.end("GET", "/once")
        exchange.end("GET", "/once")
        self.assertEqual(len(self.window.series[("GET", "/once", 204)]), 1)
        self.assertEqual(len(self.window.in_flight), 0)

    def test_misuse_raises_instead_of_crashing(self):
        with self.assertRaises(TypeError):
            self.native.Exchange()
        with self.assertRaises(TypeError):
            self.native.exchange(self.window)
        with self.assertRaises(RuntimeError):
            self.native.setup(web.request_finished, web.FOLD_AT, web.UNMATCHED_ROUTE, web.HttpWindow)

    def test_references_are_released_and_cycles_collected(self):
        class Server:
            def send(self, message):
                return message

        server = Server()
        before = sys.getrefcount(self.window), sys.getrefcount(server)
        for _ in range(1000):
            exchange = self.native.exchange(self.window, server.send)
            exchange({"type": "http.response.start", "status": 200})
            exchange.end("GET", "/refs")
        del exchange
        self.assertEqual((sys.getrefcount(self.window), sys.getrefcount(server)), before)
        # An exchange the server's send refers back to: collected as a cycle.
        server.exchange = self.native.exchange(self.window, server.send)
        server.exchange.end("GET", "/refs")
        alive = weakref.ref(server)
        del server
        gc.collect()
        self.assertIsNone(alive(), "a cycle through an exchange was not collected")


if __name__ == "__main__":
    unittest.main()

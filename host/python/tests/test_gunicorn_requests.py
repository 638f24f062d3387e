"""gunicorn's request hooks as the probe installs them, fed what gunicorn may hand them -- including garbage.

In process, with stand-ins for gunicorn's worker, request and response (the
real gunicorn runs in ``../tests_web/test_gunicorn.py``), so the fail-open
paths are checked on every supported CPython: a hook never raises an error
of its own into gunicorn, a user's hook keeps its exceptions, and a request
either ends in its series once or is not counted, never left in flight.
"""

import itertools
import sys
import unittest

from probe_harness import PROBE_DIR

sys.path.insert(0, PROBE_DIR)

from pyrometer_probe import gunicorn_requests, middleware, web  # noqa: E402

_names = itertools.count()


class Log:
    def __init__(self):
        self.lines = []

    def debug(self, message, *args):
        self.lines.append(message % args)


class ErrorLog:
    """Stands for the standard-library logger under gunicorn's: records the levels asked about."""

    def __init__(self, enabled):
        self.enabled = enabled
        self.asked = []

    def isEnabledFor(self, level):
        self.asked.append(level)
        return self.enabled


class Worker:
    def __init__(self):
        self.log = Log()


class Request:
    method = "GET"
    path = "/users/7"


class SlottedRequest:
    """A request object that takes no new attribute."""

    __slots__ = ("method", "path")

    def __init__(self):
        self.method, self.path = "GET", "/"


class Response:
    def __init__(self, status_code):
        self.status_code = status_code


def gunicorn_pre_request(worker, req):
    """Stands for gunicorn's default ``pre_request``."""


def gunicorn_post_request(worker, req, environ, resp):
    """Stands for gunicorn's default ``post_request``."""


class HooksTest(unittest.TestCase):
    def setUp(self):
        self.window = web.window("test-gunicorn-%d" % next(_names))
        self.worker = Worker()
        self.calls = []

    def hooks(self, pre=gunicorn_pre_request, post=gunicorn_post_request, gated=None):
        if gated is None:  # as install() decides: the stand-in Log is not gunicorn's
            gated = gunicorn_requests._debug_is_gated(self.worker.log)
        return (
            gunicorn_requests._pre_request(self.window, pre, gunicorn_pre_request, gated),
            gunicorn_requests._post_request(self.window, post, gunicorn_post_request),
        )

    def counts(self):
        return {key: len(durations) for key, durations in self.window.series.items() if durations}

    def serve(self, req, environ, resp, **hooks):
        pre, post = self.hooks(**hooks)
        pre(self.worker, req)
        post(self.worker, req, environ, resp)

    def test_a_request_ends_in_its_series_once_with_gunicorns_default_log_line(self):
        for _ in range(3):
            self.serve(Request(), {middleware.ROUTE_KEY: "/users/<int:id>"}, Response(200))
        self.assertEqual(self.counts(), {("GET", "/users/<int:id>", 200): 3})
        self.assertEqual(len(self.window.in_flight), 0)
        self.assertEqual(self.worker.log.lines, ["GET /users/7"] * 3)

    def test_a_gated_debug_line_is_asked_for_first_and_logged_only_when_kept(self):
        for enabled in (True, False):
            with self.subTest(enabled=enabled):
                self.window = web.window("test-gunicorn-%d" % next(_names))
                self.worker.log = Log()
                self.worker.log.error_log = ErrorLog(enabled)
                self.serve(Request(), {middleware.ROUTE_KEY: "/users/<int:id>"}, Response(200), gated=True)
                self.assertEqual(self.worker.log.error_log.asked, [gunicorn_requests.DEBUG])
                self.assertEqual(self.worker.log.lines, ["GET /users/7"] if enabled else [])
                self.assertEqual(self.counts(), {("GET", "/users/<int:id>", 200): 1})

    def test_a_logger_that_is_not_gunicorns_over_the_standard_librarys_is_not_gated(self):
        for log in (None, object(), Log(), Worker()):
            self.assertFalse(gunicorn_requests._debug_is_gated(log), log)

    def test_no_response_or_no_status_counts_as_status_0_and_no_route_as_unmatched(self):
        self.serve(Request(), {}, None)  # gunicorn failed before it built the response
        self.serve(Request(), {}, Response(None))  # the application never started one
        self.assertEqual(self.counts(), {("GET", web.UNMATCHED_ROUTE, 0): 2})
        self.assertEqual(len(self.window.in_flight), 0)

    def test_a_request_object_that_takes_no_attribute_is_not_counted_and_nothing_raises(self):
        self.serve(SlottedRequest(), {}, Response(200))
        self.assertEqual(self.counts(), {})
        self.assertEqual(len(self.window.in_flight), 0)

    def test_an_end_without_a_start_is_not_counted_and_garbage_arguments_do_not_raise(self):
        _, post = self.hooks()
        post(self.worker, Request(), {}, Response(200))
        started = Request()
        started.pyrometer_started = "not a time"
        self.window.in_flight.append(None)
        post(self.worker, started, {}, Response(200))
        self.assertEqual(self.counts(), {})

    def test_a_users_hooks_run_and_keep_their_exceptions(self):
        def failing_pre(worker, req):
            self.calls.append("pre")
            raise ValueError("the user's")

        def post(worker, req, environ, resp):
            self.calls.append("post %d" % resp.status_code)

        pre_request, post_request = self.hooks(pre=failing_pre, post=post)
        req = Request()
        with self.assertRaisesRegex(ValueError, "the user's"):
            pre_request(self.worker, req)
        post_request(self.worker, req, {}, Response(500))  # gunicorn calls it even so
        self.assertEqual(self.calls, ["pre", "post 500"])
        self.assertEqual(self.counts(), {}, "a request whose pre_request failed is not counted")
        self.assertEqual(len(self.window.in_flight), 0)
        self.assertEqual(self.worker.log.lines, [], "gunicorn's default hook was replaced, not also run")


if __name__ == "__main__":
    unittest.main()

"""Flask, hooked when it is imported: route templates, statuses, durations, ready, exceptions."""

import unittest

from web_harness import Receiver, http_totals, profiles, require, run_app, windows

APP = """
import json
import time
from flask import Flask, Response

app = Flask(__name__)

@app.route("/users/<int:id>")
def user(id):
    return {"id": id}

@app.route("/slow")
def slow():
    time.sleep(0.1)
    return "slow"

@app.route("/stream")
def stream():
    def chunks():
        yield "a"
        time.sleep(0.03)
        yield "b"
    return Response(chunks())

@app.route("/boom")
def boom():
    raise LookupError("boom")

@app.route("/created", methods=["POST"])
def created():
    return "", 201
"""


class FlaskTest(unittest.TestCase):
    def setUp(self):
        require(self, "flask")
        self.receiver = Receiver()

    def tearDown(self):
        self.receiver.close()

    def test_route_templates_statuses_and_durations(self):
        code = APP + """
client = app.test_client()

def fetch(path, method="GET"):
    # Closing the response is what a WSGI server does when it has sent it.
    with client.open(path, method=method) as response:
        return response.status_code, response.data

for id in (1, 2, 3):
    status, body = fetch(f"/users/{id}")
    assert (status, json.loads(body)) == (200, {"id": id})
assert fetch("/slow") == (200, b"slow")
assert fetch("/stream") == (200, b"ab")
assert fetch("/boom")[0] == 500
assert fetch("/no/such/page")[0] == 404
assert fetch("/created", "POST") == (201, b"")
assert fetch("/slow", "POST")[0] == 405
print("served")
"""
        result, records = run_app(self, self.receiver, code)
        self.assertEqual(result.stdout.strip(), "served")
        totals = http_totals(records, "flask")
        self.assertEqual(
            set(totals),
            {
                ("GET", "/users/<int:id>", 200),
                ("GET", "/slow", 200),
                ("GET", "/stream", 200),
                ("GET", "/boom", 500),
                ("GET", "<unmatched>", 404),
                ("POST", "/created", 201),
                ("POST", "<unmatched>", 405),
            },
        )
        self.assertEqual(totals[("GET", "/users/<int:id>", 200)]["count"], 3)
        slow = totals[("GET", "/slow", 200)]
        self.assertGreaterEqual(slow["max_us"], 100_000)
        bounds = windows(records, "flask")[0]["bounds_us"]
        expected = [0] * (len(bounds) + 1)
        expected[next(i for i, bound in enumerate(bounds + [float("inf")]) if slow["max_us"] <= bound)] = 1
        self.assertEqual(slow["buckets"], expected)
        self.assertEqual(max(totals.values(), key=lambda t: t["sum_us"]), slow)
        self.assertEqual(max(totals.values(), key=lambda t: t["max_us"]), slow)
        # The streamed body's time counts: the request ends when it is consumed.
        self.assertGreaterEqual(totals[("GET", "/stream", 200)]["max_us"], 30_000)
        for window in windows(records, "flask"):
            self.assertEqual(window["in_flight"], 0)

    def test_werkzeugs_closing_body_is_kept_and_a_failing_close_callback_loses_nothing(self):
        code = APP + """
from werkzeug.test import EnvironBuilder
from werkzeug.wsgi import ClosingIterator

@app.route("/on-close")
def on_close():
    response = Response("x")
    response.call_on_close(lambda: 1 / 0)
    return response

body = app(EnvironBuilder(path="/users/1").get_environ(), lambda status, headers, exc_info=None: None)
assert type(body) is ClosingIterator, type(body)  # returned as Flask made it, not wrapped
body.close()
try:
    app.test_client().get("/on-close").close()
except ZeroDivisionError:
    print("the callback failed")
"""
        result, records = run_app(self, self.receiver, code)
        self.assertEqual(result.stdout.strip(), "the callback failed")
        totals = http_totals(records, "flask")
        self.assertEqual(totals[("GET", "/users/<int:id>", 200)]["count"], 1)
        self.assertEqual(totals[("GET", "/on-close", 200)]["count"], 1)
        for window in windows(records, "flask"):
            self.assertEqual(window["in_flight"], 0)

    def test_http_off_leaves_flask_unhooked_and_the_rest_measured(self):
        code = APP + """
assert not getattr(Flask.wsgi_app, "__pyrometer_hook__", False), "Flask was hooked"
with app.test_client().get("/users/7") as response:
    assert response.status_code == 200
print("unhooked")
"""
        result, records = run_app(self, self.receiver, code, {"PYROMETER_HTTP": "off"})
        self.assertEqual(result.stdout.strip(), "unhooked")
        self.assertEqual([r for r in records if r.kind == "http"], [])
        (profile,) = [p for p in profiles(records) if p.phase == "init"]
        self.assertTrue(profile.by_name("flask"))

    def test_an_http_switch_that_does_not_say_off_leaves_flask_measured(self):
        code = APP + """
assert getattr(Flask.wsgi_app, "__pyrometer_hook__", False), "Flask was not hooked"
app.test_client().get("/users/7").close()
"""
        _, records = run_app(self, self.receiver, code, {"PYROMETER_HTTP": "garbage"})
        self.assertEqual(http_totals(records, "flask")[("GET", "/users/<int:id>", 200)]["count"], 1)

    def test_the_first_request_marks_the_app_ready(self):
        code = APP + """
import colorsys  # imported before the first request: in the init profile
app.test_client().get("/users/7").close()
"""
        _, records = run_app(self, self.receiver, code)
        kinds = [r.kind for r in records]
        self.assertLess(kinds.index("init"), kinds.index("http"))
        init = next(r for r in records if r.kind == "init").fields()
        self.assertEqual(init["ready_reason"], "request")
        (window,) = windows(records, "flask")
        self.assertLessEqual(window["first_response_unix_us"], int(init["ready_unix_us"]))
        (profile,) = [p for p in profiles(records) if p.phase == "init"]
        self.assertEqual(int(init["profile_id"]), profile.profile_id)
        for module in ("flask", "werkzeug", "colorsys"):
            self.assertTrue(profile.by_name(module), module)

    def test_the_development_server_marks_ready_and_counts_requests_whose_client_reset(self):
        # Werkzeug's server skips the body's close() when the client resets
        # the connection while it drains the request: the probe still ends
        # the request (a client that resets as soon as it has its answer).
        code = APP + """
import socket, struct, threading
from werkzeug.serving import make_server
server = make_server("127.0.0.1", 0, app)
thread = threading.Thread(target=server.serve_forever, daemon=True)
thread.start()
for _ in range(5):
    client = socket.create_connection(("127.0.0.1", server.server_port))
    client.sendall(b"GET /users/7 HTTP/1.1\\r\\nHost: x\\r\\nConnection: close\\r\\n\\r\\n")
    answer = b""
    while b"}" not in answer:
        answer += client.recv(65536)
    assert answer.split()[1] == b"200", answer
    client.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
    client.close()  # a reset, not a FIN
server.shutdown()
thread.join()
"""
        _, records = run_app(self, self.receiver, code)
        init = next(r for r in records if r.kind == "init").fields()
        self.assertEqual(init["ready_reason"], "server")
        found = windows(records, "flask")
        self.assertLessEqual(int(init["ready_unix_us"]), found[0]["first_response_unix_us"])
        self.assertEqual(http_totals(records, "flask")[("GET", "/users/<int:id>", 200)]["count"], 5)
        self.assertEqual(found[-1]["in_flight"], 0)

    def test_exceptions_flask_lets_through_are_unchanged(self):
        code = APP + """
app.testing = True  # Flask re-raises view exceptions instead of answering 500
raised = LookupError("the very one")

@app.route("/raise/<name>")
def raise_it(name):
    raise raised

try:
    app.test_client().get("/raise/x")
except LookupError as caught:
    assert caught is raised, caught
    print("same exception")
"""
        result, records = run_app(self, self.receiver, code)
        self.assertEqual(result.stdout.strip(), "same exception")
        # No response was started: status 0, still under its route.
        self.assertEqual(list(http_totals(records, "flask")), [("GET", "/raise/<name>", 0)])


if __name__ == "__main__":
    unittest.main()

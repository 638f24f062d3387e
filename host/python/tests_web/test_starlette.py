"""Starlette and FastAPI, hooked when Starlette is imported: ASGI routes, statuses, loop lag."""

import os
import sys
import textwrap
import unittest

from web_harness import Receiver, http_totals, require, run_app, start_python, windows

FASTAPI_APP = """
import asyncio
import time

from fastapi import APIRouter, FastAPI
from fastapi.testclient import TestClient

app = FastAPI()
router = APIRouter(prefix="/api")


@app.get("/items/{item_id}")
async def item(item_id: int):
    return {"id": item_id}


@router.get("/users/{user_id}")
def user(user_id: str):  # a sync route: FastAPI runs it in a thread
    return {"user": user_id}


@app.get("/slow")
async def slow():
    await asyncio.sleep(0.1)
    return "slow"


@app.get("/block")
async def block():
    time.sleep(0.2)  # blocks the event loop
    return "blocked"


raised = LookupError("the very one")


@app.get("/boom")
async def boom():
    raise raised


app.include_router(router)
"""


class FastApiTest(unittest.TestCase):
    def setUp(self):
        require(self, "fastapi", "httpx")
        self.receiver = Receiver()

    def tearDown(self):
        self.receiver.close()

    def test_route_templates_statuses_and_durations(self):
        code = FASTAPI_APP + """
with TestClient(app, raise_server_exceptions=False) as client:
    for id in (1, 2, 3):
        assert client.get(f"/items/{id}").json() == {"id": id}
    assert client.get("/api/users/ada").json() == {"user": "ada"}
    assert client.get("/slow").status_code == 200
    assert client.get("/boom").status_code == 500
    assert client.get("/missing").status_code == 404
    assert client.post("/slow").status_code == 405
print("served")
"""
        result, records = run_app(self, self.receiver, code)
        self.assertEqual(result.stdout.strip(), "served")
        totals = http_totals(records, "fastapi")
        self.assertEqual(
            set(totals),
            {
                ("GET", "/items/{item_id}", 200),
                ("GET", "/api/users/{user_id}", 200),
                ("GET", "/slow", 200),
                ("GET", "/boom", 500),
                ("GET", "<unmatched>", 404),
                ("POST", "/slow", 405),
            },
        )
        self.assertEqual(totals[("GET", "/items/{item_id}", 200)]["count"], 3)
        slow = totals[("GET", "/slow", 200)]
        self.assertGreaterEqual(slow["max_us"], 100_000)
        self.assertEqual(max(totals.values(), key=lambda t: t["sum_us"]), slow)
        self.assertEqual(max(totals.values(), key=lambda t: t["max_us"]), slow)
        init = next(r for r in records if r.kind == "init").fields()
        self.assertEqual(init["ready_reason"], "request")

    def test_exceptions_propagate_unchanged(self):
        code = FASTAPI_APP + """
with TestClient(app) as client:
    try:
        client.get("/boom")
    except LookupError as caught:
        assert caught is raised, caught
        print("same exception")
"""
        result, records = run_app(self, self.receiver, code)
        self.assertEqual(result.stdout.strip(), "same exception")
        # Starlette answered 500 before re-raising: the request counts as a 500.
        self.assertEqual(list(http_totals(records, "fastapi")), [("GET", "/boom", 500)])

    def test_a_blocking_call_in_an_async_route_shows_as_loop_lag(self):
        code = FASTAPI_APP + textwrap.dedent(
            """
            import sys

            with TestClient(app) as client:
                for id in range(5):
                    client.get(f"/items/{id}")
                print("fast", flush=True)
                sys.stdin.readline()  # until the test saw the window of the fast requests
                client.get("/block")
                client.get("/items/9")  # the loop turns again: its monitor wakes up late
            """
        )
        env = {"PYROMETER_HTTP_FLUSH_MS": "50", "PYROMETER_LOOP_INTERVAL_MS": "20"}
        child = start_python(code, self.receiver.path, env)
        try:
            self.assertEqual(child.stdout.readline().strip(), "fast")
            self.receiver.wait_for(lambda rs: http_totals(rs).get(("GET", "/items/{item_id}", 200), {}).get("count") == 5)
            child.stdin.write("go\n")
            child.stdin.flush()
            self.assertEqual(child.wait(60), 0)
        finally:
            child.kill()
            _, stderr = child.communicate()
        records = self.receiver.wait_for(lambda rs: any(r.kind == "exit" for r in rs))
        self.assertIn("exit", [r.kind for r in records], stderr)
        sent = windows(records, "fastapi")
        blocked = [w for w in sent if any(row["route"] == "/block" for row in w["series"])]
        self.assertEqual(len(blocked), 1, sent)
        before = sent[: sent.index(blocked[0])]
        self.assertTrue(before)
        lag_with_block = max(w["loop_lag_max_us"] for w in sent[sent.index(blocked[0]) :])
        self.assertGreaterEqual(lag_with_block, 150_000)
        self.assertTrue(all(w["loop_lag_max_us"] < lag_with_block for w in before), before)
        self.assertGreater(max(w["loop_pending_tasks"] or 0 for w in sent), 0)


STARLETTE_APP = """
from starlette.applications import Starlette
from starlette.responses import PlainTextResponse
from starlette.routing import Mount, Route
from starlette.testclient import TestClient


async def hello(request):
    return PlainTextResponse("hello " + request.path_params["name"])


async def thing(request):
    return PlainTextResponse("thing %d" % request.path_params["id"])


app = Starlette(
    routes=[
        Route("/hello/{name}", hello),
        Mount("/shop", routes=[Route("/things/{id:int}", thing)]),
    ]
)
"""


class StarletteTest(unittest.TestCase):
    def setUp(self):
        require(self, "starlette", "httpx")
        self.receiver = Receiver()

    def tearDown(self):
        self.receiver.close()

    def test_routes_inside_mounts_keep_their_prefix(self):
        code = STARLETTE_APP + """
with TestClient(app) as client:
    assert client.get("/hello/ada").text == "hello ada"
    assert client.get("/shop/things/7").text == "thing 7"
    assert client.get("/shop/things/8").text == "thing 8"
    assert client.get("/shop/nothing").status_code == 404
print("served")
"""
        result, records = run_app(self, self.receiver, code)
        self.assertEqual(result.stdout.strip(), "served")
        self.assertEqual(
            {key: total["count"] for key, total in http_totals(records, "starlette").items()},
            {
                ("GET", "/hello/{name}", 200): 1,
                ("GET", "/shop/things/{id:int}", 200): 2,
                ("GET", "<unmatched>", 404): 1,
            },
        )

    def test_routes_are_matched_again_where_starlette_sets_none_in_the_scope(self):
        sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        from pyrometer_probe.frameworks import starlette_route

        namespace = {}
        exec(STARLETTE_APP, namespace)
        app = namespace["app"]

        def scope(path):
            # What the app was called with: older Starlette versions add no "route".
            return {"type": "http", "method": "GET", "path": path, "root_path": ""}

        self.assertEqual(starlette_route(app, scope("/hello/ada")), "/hello/{name}")
        self.assertEqual(starlette_route(app, scope("/shop/things/7")), "/shop/things/{id:int}")
        self.assertIsNone(starlette_route(app, scope("/shop/nothing")))
        self.assertIsNone(starlette_route(app, scope("/elsewhere")))


if __name__ == "__main__":
    unittest.main()

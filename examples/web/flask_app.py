"""A small Flask service for `pyrometer run` (see README.md beside it).

Routes: `/` (hello), `/users` (a JSON list of 100 users: a route with
some work to do), `/users/<int:user_id>` (a parametrised route: one
series, never one per id), `/slow` (200 ms of blocking work), `/boom`
(raises: a 500).
"""

import time

import slow_settings  # noqa: F401  (300 ms at import: the slow-imports plugin names it)
from flask import Flask, jsonify

app = Flask(__name__)


@app.route("/")
def hello():
    return "hello"


@app.route("/users")
def users():
    return jsonify([{"id": n, "name": f"user-{n}", "active": n % 3 != 0} for n in range(100)])


@app.route("/users/<int:user_id>")
def user(user_id):
    return jsonify(id=user_id, name=f"user-{user_id}")


@app.route("/slow")
def slow():
    time.sleep(0.2)
    return "done"


@app.route("/boom")
def boom():
    raise RuntimeError("boom")


if __name__ == "__main__":
    import os

    app.run(port=int(os.environ.get("PORT", "8000")))

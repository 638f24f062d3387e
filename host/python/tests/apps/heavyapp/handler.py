"""Lambda-style handler of the heavy app."""

import json

import heavyapp
from heavyapp import reports, storage, text, web


def handler(event, context):
    key = storage.put({"name": event.get("name", "x"), "price": event.get("price", 1)})
    body = web.render("p", text.wrap(json.dumps(event)))
    return {"statusCode": 200, "key": key, "count": storage.count(), "body": body, "fib": reports.fib(30)}


__all__ = ["handler", "heavyapp"]

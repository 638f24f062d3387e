"""An order-intake Lambda handler with a realistic, stdlib-only import graph.

Like many real functions it imports far more at cold start than one request
needs: an HTTP client stack, e-mail rendering, XML, SQLite, decimal money
maths, asyncio and logging configuration.
"""

import json

from orders import pricing, receipts, storage


def handler(event, context):
    order = {"id": context.aws_request_id, "items": event.get("items", [{"sku": "A-1", "qty": 2, "price": "9.90"}])}
    total = pricing.total(order["items"])
    storage.save(order["id"], total)
    return {"statusCode": 200, "body": json.dumps({"id": order["id"], "total": str(total), "receipt": receipts.render(order, total)[:80]})}

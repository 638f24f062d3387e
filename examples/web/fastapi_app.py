"""A small FastAPI service for `pyrometer run` (see README.md beside it).

Routes: `/hello`, `/items` (a JSON list of 100 items: a route with some
work to do), `/items/{item_id}` (parametrised), and `/block`, an
`async def` route that calls the blocking `time.sleep`: it stalls the event
loop, which pyrometer reports as event-loop lag.
"""

import asyncio
import time

from fastapi import FastAPI

app = FastAPI()


@app.get("/hello")
async def hello():
    return {"hello": "world"}


@app.get("/items")
async def items():
    return [{"id": n, "name": f"item-{n}", "active": n % 3 != 0} for n in range(100)]


@app.get("/items/{item_id}")
async def item(item_id: int):
    await asyncio.sleep(0)
    return {"id": item_id}


@app.get("/block")
async def block():
    time.sleep(0.5)  # the bug: a blocking call inside a coroutine
    return {"blocked_ms": 500}

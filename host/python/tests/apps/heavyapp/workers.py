"""Concurrency: asyncio, concurrent.futures, multiprocessing, threading, queue, sched."""

import asyncio
import concurrent.futures
import contextvars
import multiprocessing
import multiprocessing.pool
import queue
import sched
import selectors
import signal
import subprocess
import threading

REQUEST = contextvars.ContextVar("request", default=None)
POOL_SIZE = 4


async def gather(values):
    async def one(v):
        await asyncio.sleep(0)
        return v * 2

    return await asyncio.gather(*(one(v) for v in values))


def run(values):
    return asyncio.run(gather(values))

"""Stands in for a heavy configuration module: 300 ms of work at import."""

import time

_start = time.perf_counter()
while time.perf_counter() - _start < 0.3:
    pass

SETTINGS = {"loaded": True}

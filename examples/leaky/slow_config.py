"""Configuration that does expensive work at import time (the slow module)."""

import hashlib
import time

_deadline = time.perf_counter() + 0.3
_digest = b""
while time.perf_counter() < _deadline:  # stands in for parsing a large model file
    _digest = hashlib.sha256(_digest).digest()


def render(event):
    """A response body for the event."""
    return f"{_digest.hex()[:8]}:{sorted(event)}"

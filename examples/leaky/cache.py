"""A response cache that never evicts (the leak)."""

_ENTRIES = {}
_BLOCK = 256 * 1024


def remember(key, payload):
    """Keeps the payload, padded to a realistic response size, forever."""
    _ENTRIES[key] = payload + "x" * _BLOCK


def size():
    """Entries cached so far."""
    return len(_ENTRIES)

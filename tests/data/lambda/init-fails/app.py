"""A handler whose module raises at import: Lambda reports an init error."""

import json  # noqa: F401

raise RuntimeError("database URL is not configured")


def handler(event, context):
    return event

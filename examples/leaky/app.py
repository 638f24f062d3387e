"""A handler with two problems pyrometer's plugins should flag.

- `slow_config` takes ~300 ms to import (it "loads a model" at import time):
  the slow-imports plugin names it and the cold-start budget notices.
- `cache` keeps every response forever: RSS grows ~256 KiB per invocation,
  which the memory-trend plugin reports as a leak.
"""

import cache
import slow_config


def handler(event, context):
    payload = slow_config.render(event)
    cache.remember(context.aws_request_id, payload)
    return {"statusCode": 200, "cached": cache.size()}

"""A stdlib-only application with a heavy import graph (several hundred modules).

It imports what a realistic service imports -- HTTP, e-mail, XML, JSON, SQL,
compression, concurrency, logging, argument parsing, testing helpers -- and
does a little work at import time (compiled regexes, dataclasses, tables), so
per-module self time looks like real code. ``heavyapp.handler.handler`` is a
Lambda-style handler. Used by the probe's tests, its accuracy check against
``-X importtime`` and its benchmark.
"""

from heavyapp import config, storage, web, text, workers, reports, tools  # noqa: F401

"""Reports: datetime, calendar, zoneinfo-free time maths, inspect, traceback, unittest.mock."""

import calendar
import collections
import copy
import datetime
import functools
import heapq
import inspect
import itertools
import operator
import platform
import random
import shutil
import traceback
import unittest
import unittest.mock
import warnings
import weakref

try:  # optional dependency: the failed import is part of the profile
    import ujson_not_installed as fastjson  # noqa: F401
except ImportError:
    fastjson = None

try:
    import tomllib  # 3.11+
except ImportError:
    tomllib = None

MONTHS = [calendar.month_name[i] for i in range(1, 13)]
_TABLE = [(random.Random(i).random(), i) for i in range(2000)]
TOP = heapq.nlargest(10, _TABLE)


@functools.lru_cache(maxsize=None)
def fib(n: int) -> int:
    return n if n < 2 else fib(n - 1) + fib(n - 2)


def summary(values):
    c = collections.Counter(values)
    return {"most_common": c.most_common(3), "when": datetime.datetime.now().isoformat()}

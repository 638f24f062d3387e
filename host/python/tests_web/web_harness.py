"""Shared by the framework tests: the probe harness of ``../tests`` and framework checks.

The frameworks are real ones installed from PyPI in the interpreter running
the tests. A missing one fails the test with the command that installs it:
these tests exist to prove the hooks work on the real thing, so a skip would
hide exactly what they are for.
"""

import importlib.util
import os
import sys
import textwrap

TESTS_DIR = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests")
sys.path.insert(0, TESTS_DIR)

from probe_harness import Receiver, http_totals, http_window, probe_env, profiles, run_python, start_python  # noqa: E402

__all__ = [
    "Receiver",
    "http_totals",
    "http_window",
    "probe_env",
    "profiles",
    "require",
    "run_app",
    "start_python",
    "windows",
]

#: Import name -> PyPI name of what the framework tests use.
PACKAGES = {"flask": "flask", "django": "django", "fastapi": "fastapi", "starlette": "starlette", "httpx": "httpx", "gunicorn": "gunicorn", "gevent": "gevent packaging"}


def require(testcase, *modules):
    """Fail ``testcase`` with the pip command when one of ``modules`` is not installed."""
    missing = [name for name in modules if importlib.util.find_spec(name) is None]
    if missing:
        packages = " ".join(PACKAGES[name] for name in missing)
        testcase.fail(f"{', '.join(missing)} not installed for {sys.executable}: {sys.executable} -m pip install {packages}")


def run_app(testcase, receiver, code, extra_env=None):
    """Run ``code`` in a child with the probe; returns its result and every record it sent."""
    result = run_python(textwrap.dedent(code), receiver.path, extra_env)
    testcase.assertEqual(result.returncode, 0, result.stderr)
    records = receiver.wait_for(lambda rs: any(r.kind == "exit" for r in rs))
    testcase.assertIn("exit", [r.kind for r in records])
    return result, records


def windows(records, framework):
    """The decoded ``http`` datagrams of one framework."""
    return [w for w in (http_window(r) for r in records if r.kind == "http") if w["framework"] == framework]

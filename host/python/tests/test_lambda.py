"""The Lambda path: exec wrapper, ``_HANDLER`` swap, handler module timed, init errors."""

import json
import os
import subprocess
import sys
import tempfile
import textwrap
import unittest

from probe_harness import EXEC_WRAPPER, Receiver, profiles, write_tree

# What a Lambda runtime does with _HANDLER (awslambdaric's _get_handler, reduced).
MINI_RUNTIME = textwrap.dedent(
    """
    import importlib, json, os, sys

    class Context:
        aws_request_id = "req-1"

    modname, fname = os.environ["_HANDLER"].rsplit(".", 1)
    try:
        module = importlib.import_module(modname.replace("/", "."))
    except Exception as exc:
        print(json.dumps({"init_error": type(exc).__name__, "message": str(exc)}))
        sys.exit(0)
    if not hasattr(module, fname):
        print(json.dumps({"init_error": "HandlerNotFound"}))
        sys.exit(0)
    handler = getattr(module, fname)
    results = [handler({"n": n}, Context()) for n in range(2)]
    print(json.dumps({"results": results, "handler": os.environ["_HANDLER"],
                      "original": os.environ.get("PYROMETER_HANDLER")}))
    """
)


def run_wrapped(receiver, task_root, handler, extra_env=None, code=MINI_RUNTIME):
    env = dict(os.environ)
    for name in ("PYTHONPATH", "PYROMETER_PROBE_SOCKET", "PYTHONPROFILEIMPORTTIME", "PYROMETER_MODE"):
        env.pop(name, None)
    env.update({"_HANDLER": handler, "LAMBDA_TASK_ROOT": task_root, "PYTHONPATH": task_root})
    env["PYROMETER_EXIT_FLUSH_MS"] = "2000"  # see probe_harness.probe_env
    if receiver is not None:
        env["PYROMETER_PROBE_SOCKET"] = receiver.path
    env.update(extra_env or {})
    return subprocess.run(
        [EXEC_WRAPPER, sys.executable, "-c", code],
        env=env,
        cwd=task_root,
        capture_output=True,
        text=True,
        timeout=120,
    )


class LambdaHandlerTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="pyro-task-")
        self.root = self.tmp.name
        self.receiver = Receiver()

    def tearDown(self):
        self.receiver.close()
        self.tmp.cleanup()

    def records(self):
        return self.receiver.wait_for(lambda rs: any(r.kind == "exit" for r in rs))

    def test_handler_is_swapped_loaded_timed_and_measured(self):
        write_tree(
            self.root,
            {
                "app.py": "import time, json\ntime.sleep(0.03)\n\ndef handler(event, context):\n    return event['n'] * 10\n",
            },
        )
        result = run_wrapped(self.receiver, self.root, "app.handler")
        self.assertEqual(result.returncode, 0, result.stderr)
        output = json.loads(result.stdout)
        self.assertEqual(output["results"], [0, 10])
        self.assertEqual(output["handler"], "pyrometer_probe.lambda_handler.handler")
        self.assertEqual(output["original"], "app.handler")
        records = self.records()
        init = [r.fields() for r in records if r.kind == "init"][0]
        self.assertEqual(init["ready_reason"], "handler")
        self.assertEqual(init["handler"], "app.handler")
        self.assertEqual(init["exec_source"], "env")
        self.assertEqual(init["error"], "-")
        self.assertGreaterEqual(int(init["handler_load_us"]), 30_000)
        self.assertLessEqual(int(init["exec_unix_us"]), int(init["probe_unix_us"]))
        self.assertLessEqual(int(init["probe_unix_us"]), int(init["ready_unix_us"]))
        profile = [p for p in profiles(records) if p.phase == "init"][0]
        app = profile.one("app")
        self.assertEqual(profile.rows.index(app), int(init["handler_index"]))
        self.assertEqual(app["parent"], -1)
        self.assertEqual(app["origin"], "f")
        self.assertGreaterEqual(app["cumulative_us"], 30_000)
        self.assertEqual(int(init["profile_id"]), profile.profile_id)
        self.assertEqual(int(init["profile_modules"]), len(profile.rows))
        self.assertFalse([row for row in profile.rows if row["module"].startswith("pyrometer_probe")])
        invokes = [r.fields() for r in records if r.kind == "invoke"]
        self.assertEqual([(i["request_id"], i["cold_start"]) for i in invokes], [("req-1", "1"), ("req-1", "0")])
        # The init records went out during the init phase, before the first invocation.
        kinds = [r.kind for r in records]
        self.assertLess(kinds.index("init"), kinds.index("invoke"))

    def test_handler_in_a_subdirectory(self):
        write_tree(self.root, {"src/app.py": "def handler(event, context):\n    return 'sub'\n", "src/__init__.py": ""})
        result = run_wrapped(self.receiver, self.root, "src/app.handler")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(json.loads(result.stdout)["results"], ["sub", "sub"])

    def test_handler_given_as_a_file_path(self):
        write_tree(self.root, {"code/app.py": "def handler(event, context):\n    return 'file'\n"})
        result = run_wrapped(self.receiver, self.root, "code/app.py:handler")
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(json.loads(result.stdout)["results"], ["file", "file"])
        init = [r.fields() for r in self.records() if r.kind == "init"][0]
        self.assertEqual(init["handler"], "code/app.py:handler")
        self.assertNotEqual(init["handler_index"], "-1")

    def test_import_error_in_the_handler_module_is_reported_and_unchanged(self):
        write_tree(self.root, {"app.py": "import not_a_real_dependency\n\ndef handler(event, context):\n    return 1\n"})
        result = run_wrapped(self.receiver, self.root, "app.handler")
        self.assertEqual(result.returncode, 0, result.stderr)
        output = json.loads(result.stdout)
        self.assertEqual(output["init_error"], "ModuleNotFoundError")
        self.assertIn("not_a_real_dependency", output["message"])
        init = [r.fields() for r in self.records() if r.kind == "init"][0]
        self.assertEqual(init["error"], "ModuleNotFoundError")

    def test_syntax_error_in_the_handler_module_stays_a_syntax_error(self):
        write_tree(self.root, {"app.py": "def handler(event, context)\n    return 1\n"})
        result = run_wrapped(self.receiver, self.root, "app.handler")
        self.assertEqual(json.loads(result.stdout)["init_error"], "SyntaxError")
        init = [r.fields() for r in self.records() if r.kind == "init"][0]
        self.assertEqual(init["error"], "SyntaxError")

    def test_a_failed_handler_import_still_ends_with_the_exit_record(self):
        # The probe's own handler module is still importing when init is sent
        # (its record is taken then); the error it ends with comes later and
        # must not break the flush at exit.
        write_tree(self.root, {"app.py": "import not_a_real_dependency\n"})
        run_wrapped(self.receiver, self.root, "app.handler")
        records = self.records()
        self.assertEqual([r.kind for r in records][-1], "exit", records)

    def test_missing_function_looks_like_handler_not_found(self):
        write_tree(self.root, {"app.py": "def other(event, context):\n    return 1\n"})
        result = run_wrapped(self.receiver, self.root, "app.handler")
        self.assertEqual(json.loads(result.stdout)["init_error"], "HandlerNotFound")
        init = [r.fields() for r in self.records() if r.kind == "init"][0]
        self.assertEqual(init["error"], "HandlerNotFound")

    def test_text_mode_uses_cpython_importtime_and_no_probe(self):
        write_tree(self.root, {"app.py": "import json\n\ndef handler(event, context):\n    return 1\n"})
        result = run_wrapped(self.receiver, self.root, "app.handler", {"PYROMETER_MODE": "text"})
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertIn("import time: self [us] | cumulative | imported package", result.stderr)
        self.assertIn("| json", result.stderr)
        self.assertEqual(json.loads(result.stdout)["handler"], "app.handler")
        self.assertEqual(self.receiver.records(), [])

    def test_off_mode_and_missing_probe_change_nothing(self):
        write_tree(self.root, {"app.py": "def handler(event, context):\n    return 7\n"})
        for extra in ({"PYROMETER_MODE": "off"}, {"PYROMETER_PROBE_DIR": os.path.join(self.root, "nowhere")}):
            result = run_wrapped(self.receiver, self.root, "app.handler", extra)
            self.assertEqual(result.returncode, 0, result.stderr)
            output = json.loads(result.stdout)
            self.assertEqual(output, {"results": [7, 7], "handler": "app.handler", "original": None})
        self.assertEqual(self.receiver.records(), [])

    def test_no_receiver_still_runs_the_function(self):
        write_tree(self.root, {"app.py": "def handler(event, context):\n    return 3\n"})
        result = run_wrapped(None, self.root, "app.handler", {"PYROMETER_PROBE_SOCKET": os.path.join(self.root, "x.sock")})
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(json.loads(result.stdout)["results"], [3, 3])


if __name__ == "__main__":
    unittest.main()

"""Server hooks: a web server that starts taking requests marks its process ready.

Each test runs a child interpreter with the probe and stand-ins for the
servers' modules (same module, class and method names; the real servers are
tested in ``../tests_web`` and by ``pyrometer run``'s end-to-end tests), so
the hooks are checked on every supported CPython without installing anything.
"""

import ast
import os
import sys
import tempfile
import textwrap
import unittest

from probe_harness import PROBE_DIR, Receiver, profiles, run_python, start_python, write_tree

sys.path.insert(0, PROBE_DIR)

from pyrometer_probe import process, servers  # noqa: E402

STAND_INS = {
    "gunicorn/__init__.py": "",
    "gunicorn/workers/__init__.py": "",
    "gunicorn/workers/base.py": textwrap.dedent(
        """
        class Worker:
            def load_wsgi(self):
                import served_app
                self.wsgi = served_app.app
        """
    ),
    "uvicorn/__init__.py": "",
    "uvicorn/server.py": textwrap.dedent(
        """
        class Server:
            def __init__(self, fail):
                self.fail = fail
                self.should_exit = False

            async def startup(self):
                self.should_exit = self.fail
                return "started"
        """
    ),
    "werkzeug/__init__.py": "",
    "werkzeug/serving.py": textwrap.dedent(
        """
        class BaseWSGIServer:
            def serve_forever(self):
                import served_app  # what the loop would run, after the ready mark
                return "served"
        """
    ),
    "served_app.py": "import json\napp = object()\n",
}


class ServerHooksTest(unittest.TestCase):
    def setUp(self):
        self.receiver = Receiver()
        self.tree = tempfile.TemporaryDirectory()
        write_tree(self.tree.name, STAND_INS)

    def tearDown(self):
        self.receiver.close()
        self.tree.cleanup()

    def run_child(self, code):
        result = run_python(textwrap.dedent(code), self.receiver.path, pythonpath=(self.tree.name,))
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stderr, "")
        return result, self.receiver.wait_for(lambda rs: any(r.kind == "exit" for r in rs))

    def test_every_server_module_has_a_hook_and_none_is_loaded_before_a_server(self):
        self.assertEqual(set(servers.HOOKS), set(process.SERVER_MODULES))
        result, _ = self.run_child("import sys\nprint(sorted(m for m in sys.modules if m.startswith('pyrometer_probe.')))\n")
        self.assertNotIn("pyrometer_probe.servers", ast.literal_eval(result.stdout))

    def test_a_development_server_entering_its_loop_marks_the_process_ready(self):
        result, records = self.run_child(
            """
            import time
            from werkzeug.serving import BaseWSGIServer
            print(BaseWSGIServer().serve_forever(), time.time_ns() // 1000)
            """
        )
        answer, after_us = result.stdout.split()
        self.assertEqual(answer, "served", "the server's own method still runs and answers")
        init = next(r for r in records if r.kind == "init").fields()
        self.assertEqual(init["ready_reason"], "server")
        self.assertLessEqual(int(init["ready_unix_us"]), int(after_us))
        (profile,) = [p for p in profiles(records) if p.phase == "init"]
        self.assertEqual(profile.by_name("served_app"), [], "imported after the mark: not start-up")

    def test_uvicorn_is_ready_when_its_start_up_succeeds_only(self):
        for fail, reason in ((False, "server"), (True, "exit")):
            with self.subTest(fail=fail):
                self.receiver.close()  # a receiver of its own: records of this child only
                self.receiver = Receiver()
                result, records = self.run_child(
                    f"""
                    import asyncio
                    from uvicorn.server import Server
                    print(asyncio.run(Server({fail}).startup()))
                    """
                )
                self.assertEqual(result.stdout.strip(), "started")
                init = next(r for r in records if r.kind == "init").fields()
                self.assertEqual(init["ready_reason"], reason)

    def test_a_forked_worker_that_loaded_the_app_sends_ready_and_its_start_up_imports(self):
        result, records = self.run_child(
            """
            import os, sys
            from gunicorn.workers.base import Worker
            pid = os.fork()
            if pid == 0:
                Worker().load_wsgi()
                Worker().load_wsgi()  # once per process
                sys.exit(0)
            os.waitpid(pid, 0)
            print(os.getpid())
            """
        )
        records = self.receiver.wait_for(lambda rs: sum(r.kind == "exit" for r in rs) >= 2)
        parent = int(result.stdout)
        child_records = [r for r in records if r.pid != parent]
        kinds = [r.kind for r in child_records]
        self.assertEqual(kinds[:2], ["fork", "ready"], kinds)
        self.assertNotIn("init", kinds)
        self.assertEqual(kinds.count("ready"), 1)
        fork = child_records[0].fields()
        ready = child_records[1].fields()
        self.assertEqual(ready["reason"], "server")
        self.assertGreaterEqual(int(ready["ready_unix_us"]), int(fork["fork_unix_us"]))
        (profile,) = [p for p in profiles(child_records) if p.phase == "init"]
        self.assertEqual(len(profile.by_name("served_app")), 1, "the worker's start-up imports, sent when ready")
        parent_init = next(r for r in records if r.pid == parent and r.kind == "init").fields()
        self.assertEqual(parent_init["ready_reason"], "exit", "the master never served")

    def test_a_master_that_forks_its_workers_sends_its_start_up_imports_then(self):
        code = textwrap.dedent(
            """
            import os, sys
            from gunicorn.workers.base import Worker
            import served_app  # --preload: the master loads the app
            pid = os.fork()
            if pid == 0:
                Worker().load_wsgi()
                os._exit(0)
            os.waitpid(pid, 0)
            os.fork() or os._exit(0)  # a second fork sends nothing more
            print(os.getpid(), flush=True)
            sys.stdin.readline()  # until the test saw the master's imports
            """
        )
        master = start_python(code, self.receiver.path, pythonpath=(self.tree.name,))
        try:
            parent = int(master.stdout.readline())
            records = self.receiver.wait_for(
                lambda rs: any(p.pid == parent and p.by_name("served_app") for p in profiles(rs))
            )
            kinds = [r.kind for r in records if r.pid == parent]
            self.assertNotIn("exit", kinds, "sent at the fork, while the master runs")
            self.assertNotIn("init", kinds)
            (profile,) = [p for p in profiles(records) if p.pid == parent]
            self.assertEqual(profile.phase, "init")
            self.assertEqual(len(profile.by_name("served_app")), 1)
            master.stdin.write("go\n")
            master.stdin.flush()
            self.assertEqual(master.wait(60), 0)
        finally:
            master.kill()
            master.communicate()
        records = self.receiver.wait_for(lambda rs: any(r.pid == parent and r.kind == "exit" for r in rs))
        master_profiles = [p for p in profiles(records) if p.pid == parent]
        self.assertEqual(sum(len(p.by_name("served_app")) for p in master_profiles), 1, "never sent twice")

    def test_a_process_that_is_no_pre_fork_master_keeps_its_start_up_profile_whole(self):
        _, records = self.run_child(
            """
            import os
            import werkzeug.serving  # a server's module, as Flask imports it
            import served_app
            if os.fork() == 0:
                os._exit(0)
            os.wait()
            import pyrometer_probe
            pyrometer_probe.mark_ready()
            """
        )
        init = next(r for r in records if r.kind == "init").fields()
        parent = next(r for r in records if r.kind == "init").pid
        (profile,) = [p for p in profiles(records) if p.pid == parent and p.phase == "init"]
        self.assertEqual(int(init["profile_id"]), profile.profile_id)
        self.assertEqual(len(profile.by_name("served_app")), 1)


if __name__ == "__main__":
    unittest.main()

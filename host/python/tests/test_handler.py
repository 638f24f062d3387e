"""The handler wrapper: results and exceptions unchanged, flags, request ids, async."""

import textwrap
import unittest

from probe_harness import Receiver, run_python

PRELUDE = textwrap.dedent(
    """
    import pyrometer_probe

    class Context:
        def __init__(self, request_id):
            self.aws_request_id = request_id
    """
)


class HandlerWrapperTest(unittest.TestCase):
    def setUp(self):
        self.receiver = Receiver()

    def tearDown(self):
        self.receiver.close()

    def run_child(self, code, extra_env=None):
        result = run_python(PRELUDE + textwrap.dedent(code), self.receiver.path, extra_env)
        self.assertEqual(result.returncode, 0, result.stderr)
        records = self.receiver.wait_for(lambda rs: any(r.kind == "exit" for r in rs))
        return result, [r.fields() for r in records if r.kind == "invoke"], records

    def test_result_and_exception_pass_through_unchanged(self):
        code = """
            SENTINEL = object()

            class Boom(Exception):
                pass

            raised = Boom("bad", 42)

            def ok(event, context):
                return SENTINEL

            def fails(event, context):
                raise raised

            wrapped_ok = pyrometer_probe.wrap(ok)
            wrapped_fails = pyrometer_probe.wrap(fails)
            assert wrapped_ok({}, Context("r-1")) is SENTINEL
            assert wrapped_ok.__name__ == "ok" and wrapped_ok.__wrapped__ is ok
            try:
                wrapped_fails({}, Context("r-2"))
            except Boom as caught:
                assert caught is raised and caught.args == ("bad", 42)
            else:
                raise AssertionError("exception swallowed")
            print("checked")
        """
        result, invokes, _ = self.run_child(code)
        self.assertEqual(result.stdout.strip(), "checked")
        self.assertEqual([i["request_id"] for i in invokes], ["r-1", "r-2"])
        self.assertEqual([i["status"] for i in invokes], ["ok", "error"])
        self.assertEqual(invokes[1]["error"], "__main__.Boom")
        self.assertEqual(invokes[0]["error"], "-")

    def test_cold_start_is_the_first_invocation_only(self):
        code = """
            handler = pyrometer_probe.wrap(lambda event, context: event)
            for i in range(4):
                handler(i, Context(f"r-{i}"))
        """
        _, invokes, records = self.run_child(code)
        self.assertEqual([i["cold_start"] for i in invokes], ["1", "0", "0", "0"])
        self.assertEqual([i["number"] for i in invokes], ["1", "2", "3", "4"])
        self.assertTrue(all(i["proactive_init"] == "0" for i in invokes))
        init = [r.fields() for r in records if r.kind == "init"]
        self.assertEqual(len(init), 1)
        self.assertEqual(init[0]["ready_reason"], "invoke")

    def test_proactive_init_when_the_first_invoke_comes_late(self):
        code = """
            from pyrometer_probe import process
            pyrometer_probe.mark_ready()
            process.state.ready_perf_ns -= 11_000_000_000  # as if ready 11 s ago
            handler = pyrometer_probe.wrap(lambda event, context: event)
            handler(1, None)
            handler(2, None)
        """
        _, invokes, _ = self.run_child(code)
        self.assertEqual([(i["cold_start"], i["proactive_init"]) for i in invokes], [("1", "1"), ("0", "0")])

    def test_duration_is_the_handler_time(self):
        code = """
            import time
            handler = pyrometer_probe.wrap(lambda event, context: time.sleep(0.05))
            handler(None, None)
        """
        _, invokes, _ = self.run_child(code)
        duration = int(invokes[0]["duration_ns"])
        self.assertGreaterEqual(duration, 50_000_000)
        self.assertLess(duration, 1_000_000_000)
        self.assertGreater(int(invokes[0]["start_unix_us"]), 1_600_000_000_000_000)

    def test_async_handler_is_awaited_and_measured(self):
        code = """
            import asyncio

            async def handler(event, context):
                await asyncio.sleep(0.05)
                return event * 2

            wrapped = pyrometer_probe.wrap(handler)
            assert asyncio.iscoroutinefunction(wrapped)
            assert asyncio.run(wrapped(21, Context("a-1"))) == 42
        """
        _, invokes, _ = self.run_child(code)
        self.assertEqual(invokes[0]["request_id"], "a-1")
        self.assertGreaterEqual(int(invokes[0]["duration_ns"]), 50_000_000)

    def test_hostile_context_and_broken_probe_never_reach_user_code(self):
        code = """
            from pyrometer_probe import runtime

            class Hostile:
                @property
                def aws_request_id(self):
                    raise RuntimeError("no id for you")

            handler = pyrometer_probe.wrap(lambda event, context: "fine")
            assert handler(1, Hostile()) == "fine"

            def broken(*args):
                raise OSError("probe internals failing")
            runtime.usage = broken
            assert handler(2, Context("r-2")) == "fine"
            print("survived")
        """
        result, invokes, _ = self.run_child(code)
        self.assertEqual(result.stdout.strip(), "survived")
        self.assertEqual(invokes[0]["request_id"], "-")

    def test_wrapper_passes_through_when_the_probe_is_off(self):
        code = """
            handler = pyrometer_probe.wrap(lambda event, context: event + 1)
            assert handler(1, None) == 2
            print(pyrometer_probe.enabled())
        """
        result = run_python(PRELUDE + textwrap.dedent(code), None)
        self.assertEqual(result.returncode, 0, result.stderr)
        self.assertEqual(result.stdout.strip(), "False")


if __name__ == "__main__":
    unittest.main()

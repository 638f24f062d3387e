"""Runtime metrics per invocation: GC, memory, CPU, threads, modules, asyncio, late imports."""

import textwrap
import unittest

from probe_harness import Receiver, profiles, run_python


class RuntimeMetricsTest(unittest.TestCase):
    def setUp(self):
        self.receiver = Receiver()

    def tearDown(self):
        self.receiver.close()

    def invokes(self, code, extra_env=None):
        result = run_python("import pyrometer_probe\n" + textwrap.dedent(code), self.receiver.path, extra_env)
        self.assertEqual(result.returncode, 0, result.stderr)
        records = self.receiver.wait_for(lambda rs: any(r.kind == "exit" for r in rs))
        return [r.fields() for r in records if r.kind == "invoke"], records

    def test_gc_collections_pause_and_collected_per_generation(self):
        code = """
            import gc

            def make_cycles(event, context):
                for _ in range(2000):
                    a = []; b = [a]; a.append(b)
                gc.collect()

            handler = pyrometer_probe.wrap(make_cycles)
            handler(None, None)
            pyrometer_probe.wrap(lambda e, c: None)(None, None)
        """
        (busy, idle), _ = self.invokes(code)
        self.assertGreaterEqual(int(busy["g2_collections"]), 1)
        self.assertGreater(int(busy["g2_pause_ns"]), 0)
        collected = sum(int(busy[f"g{g}_collected"]) for g in range(3))
        self.assertGreaterEqual(collected, 3990)  # the last cycle is still referenced
        self.assertEqual(int(idle["g2_collections"]), 0)

    def test_memory_cpu_threads_and_modules(self):
        code = """
            import sys, threading, time
            keep = []
            stop = threading.Event()

            def work(event, context):
                keep.append(bytearray(64 * 1024 * 1024))
                for i in range(len(keep[-1]) // 4096):
                    keep[-1][i * 4096] = 1
                workers = [threading.Thread(target=stop.wait) for _ in range(3)]
                for w in workers: w.start()
                end = time.process_time() + 0.05
                while time.process_time() < end:
                    pass
                return len(sys.modules)

            handler = pyrometer_probe.wrap(lambda e, c: None)
            handler(None, None)
            modules = pyrometer_probe.wrap(work)(None, None)
            stop.set()
            print(modules)
        """
        (before, after), _ = self.invokes(code)
        self.assertGreater(int(before["rss_bytes"]), 1_000_000)
        self.assertGreater(int(after["rss_bytes"]) - int(before["rss_bytes"]), 60 * 1024 * 1024)
        self.assertGreaterEqual(int(after["max_rss_bytes"]), int(after["rss_bytes"]))
        self.assertGreaterEqual(int(after["cpu_user_us"]) + int(after["cpu_system_us"]), 40_000)
        self.assertGreaterEqual(int(after["threads"]), 4)
        self.assertEqual(int(before["threads"]), 1)
        self.assertGreater(int(before["allocated_blocks"]), 1000)  # the first call always reads it
        self.assertTrue(after["allocated_blocks"] == "-" or int(after["allocated_blocks"]) > 1000)
        self.assertGreater(int(after["modules"]), 20)

    def test_asyncio_loop_lag_and_pending_tasks(self):
        code = """
            import asyncio, time

            async def blocks(event, context):
                time.sleep(0.3)  # a blocking call inside async code

            async def yields(event, context):
                await asyncio.sleep(0.1)

            async def main():
                background = [asyncio.ensure_future(asyncio.sleep(5)) for _ in range(5)]
                await pyrometer_probe.wrap(blocks)(None, None)
                await pyrometer_probe.wrap(yields)(None, None)
                for task in background:
                    task.cancel()

            asyncio.run(main())
            pyrometer_probe.wrap(lambda e, c: None)(None, None)  # no loop runs here
        """
        (first, second, third), _ = self.invokes(code, {"PYROMETER_LOOP_INTERVAL_MS": "20"})
        self.assertNotEqual(second["loop_lag_max_us"], "-")
        self.assertGreaterEqual(int(second["loop_lag_max_us"]), 200_000)
        self.assertGreaterEqual(int(second["loop_pending_tasks"]), 5)
        self.assertEqual(third["loop_lag_max_us"], "-")
        self.assertEqual(third["loop_pending_tasks"], "-")

    def test_imports_during_an_invocation_are_sent_as_their_own_profile(self):
        code = """
            def lazy(event, context):
                import colorsys
                return colorsys.rgb_to_hsv(1, 0, 0)

            handler = pyrometer_probe.wrap(lambda e, c: None)
            handler(None, None)
            pyrometer_probe.wrap(lazy)(None, None)
        """
        (first, second), records = self.invokes(code)
        self.assertGreaterEqual(int(second["imports"]), 1)
        late = [p for p in profiles(records) if p.phase == "invoke"]
        self.assertEqual(len(late), 1)
        self.assertEqual(late[0].invocation, 2)
        self.assertEqual(late[0].one("colorsys")["parent"], -1)
        init = [p for p in profiles(records) if p.phase == "init"]
        self.assertEqual(init[0].by_name("colorsys"), [])


if __name__ == "__main__":
    unittest.main()

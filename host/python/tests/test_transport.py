"""Transport: no receiver, a full queue, a late receiver, forked children."""

import os
import subprocess
import sys
import tempfile
import textwrap
import time
import unittest

from probe_harness import Receiver, probe_env, profiles, run_python


class NoReceiverTest(unittest.TestCase):
    def test_missing_socket_drops_and_counts_without_blocking(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "nobody-listens.sock")
            code = textwrap.dedent(
                """
                import time, pyrometer_probe
                from pyrometer_probe import process
                handler = pyrometer_probe.wrap(lambda e, c: e)
                started = time.perf_counter()
                for i in range(200):
                    assert handler(i, None) == i
                elapsed = time.perf_counter() - started
                print(process.state.transport.dropped, round(elapsed, 3))
                """
            )
            result = run_python(code, path)
            self.assertEqual(result.returncode, 0, result.stderr)
            dropped, elapsed = result.stdout.split()
            self.assertGreaterEqual(int(dropped), 200)
            self.assertLess(float(elapsed), 1.0)


class FullQueueTest(unittest.TestCase):
    def test_full_queue_drops_counts_and_reports_the_drops_in_the_next_record(self):
        with Receiver(read=False, rcvbuf=4096) as receiver:
            code = textwrap.dedent(
                """
                import os, sys, time, pyrometer_probe
                from pyrometer_probe import process
                handler = pyrometer_probe.wrap(lambda e, c: e)
                started = time.perf_counter()
                for i in range(300):
                    handler(i, None)
                elapsed = time.perf_counter() - started
                print(process.state.transport.dropped, round(elapsed, 3), flush=True)
                sys.stdin.readline()  # wait until the receiver drains
                handler(-1, None)
                """
            )
            child = subprocess.Popen(
                [sys.executable, "-c", code],
                # A generous exit flush: the last records must not depend on how
                # fast a busy machine schedules the receiving thread.
                env=probe_env(receiver.path, {"PYROMETER_EXIT_FLUSH_MS": "5000"}),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            dropped, elapsed = child.stdout.readline().split()
            # 300 records: the socket queue and the backlog hold some, the rest are dropped.
            self.assertGreater(int(dropped), 100)
            self.assertLess(float(elapsed), 2.0)
            receiver.start_reading()
            time.sleep(0.2)
            child.stdin.write("\n")
            child.stdin.flush()
            _, stderr = child.communicate(timeout=60)
            self.assertEqual(child.returncode, 0, stderr)
            records = receiver.wait_for(lambda rs: any(r.kind == "exit" for r in rs))
            last = [r for r in records if r.kind == "invoke"][-1]
            self.assertGreaterEqual(last.dropped, int(dropped))
            # Every sequence number is accounted for: received or counted as dropped.
            exit_record = [r for r in records if r.kind == "exit"][-1]
            self.assertEqual(len(records) + exit_record.dropped, exit_record.seq + 1)


class StalledReceiverTest(unittest.TestCase):
    def test_a_receiver_that_stalls_briefly_loses_nothing(self):
        with Receiver(read=False) as receiver:
            code = textwrap.dedent(
                """
                import sys, pyrometer_probe
                from pyrometer_probe import process
                handler = pyrometer_probe.wrap(lambda e, c: e)
                for i in range(60):  # more than the socket queue holds
                    handler(i, None)
                print(process.state.transport.waiting(), flush=True)
                sys.stdin.readline()
                handler(-1, None)  # sends what the receiver takes of the backlog first
                print(process.state.transport.dropped, flush=True)  # the rest leaves at exit
                """
            )
            child = subprocess.Popen(
                [sys.executable, "-c", code],
                env=probe_env(receiver.path, {"PYROMETER_EXIT_FLUSH_MS": "5000"}),
                stdin=subprocess.PIPE,
                stdout=subprocess.PIPE,
                stderr=subprocess.PIPE,
                text=True,
            )
            waiting = int(child.stdout.readline())
            self.assertGreater(waiting, 0)
            receiver.start_reading()
            time.sleep(0.1)
            child.stdin.write("\n")
            child.stdin.flush()
            after = child.stdout.readline().split()
            _, stderr = child.communicate(timeout=60)
            self.assertEqual(child.returncode, 0, stderr)
            self.assertEqual(after, ["0"])
            records = receiver.wait_for(lambda rs: any(r.kind == "exit" for r in rs))
            invokes = [r for r in records if r.kind == "invoke"]
            self.assertEqual(len(invokes), 61)
            self.assertEqual([r.seq for r in records], list(range(len(records))))
            self.assertTrue(all(r.dropped == 0 for r in records))


class LateReceiverTest(unittest.TestCase):
    def test_init_records_wait_for_a_receiver_that_binds_later(self):
        with tempfile.TemporaryDirectory() as tmp:
            path = os.path.join(tmp, "late.sock")
            flag = os.path.join(tmp, "bound")
            code = textwrap.dedent(
                f"""
                import os, time, pyrometer_probe, json
                pyrometer_probe.mark_ready()  # no receiver yet: init records are kept
                while not os.path.exists({flag!r}):
                    time.sleep(0.01)
                time.sleep(1.1)  # past the reconnect interval
                pyrometer_probe.wrap(lambda e, c: e)(1, None)
                """
            )
            child = subprocess.Popen([sys.executable, "-c", code], env=probe_env(path), stderr=subprocess.PIPE, text=True)
            time.sleep(0.5)
            receiver = Receiver(path=path)  # binds where the child is already sending
            open(flag, "w").close()
            try:
                _, stderr = child.communicate(timeout=60)
                self.assertEqual(child.returncode, 0, stderr)
                records = receiver.wait_for(lambda rs: any(r.kind == "exit" for r in rs))
            finally:
                receiver.close()
            kinds = [r.kind for r in records]
            self.assertEqual(kinds[0], "imports")
            self.assertIn("init", kinds)
            self.assertLess(kinds.index("init"), kinds.index("invoke"))
            self.assertTrue(all(r.dropped == 0 for r in records), [(r.kind, r.dropped) for r in records])
            self.assertEqual([r.seq for r in records], list(range(len(records))))


class ForkTest(unittest.TestCase):
    def test_forked_child_starts_over_without_double_counting(self):
        with Receiver() as receiver:
            code = textwrap.dedent(
                """
                import os, sys, pyrometer_probe
                import json  # imported before the fork: the parent's to report
                handler = pyrometer_probe.wrap(lambda e, c: e)
                handler(1, None)
                pid = os.fork()
                if pid == 0:
                    import colorsys  # the child's own import
                    handler(2, None)
                    handler(3, None)
                    sys.exit(0)
                os.waitpid(pid, 0)
                handler(4, None)
                print(os.getpid())
                """
            )
            result = run_python(code, receiver.path)
            self.assertEqual(result.returncode, 0, result.stderr)
            parent = int(result.stdout.strip())
            records = receiver.wait_for(lambda rs: sum(r.kind == "exit" for r in rs) >= 2)
        pids = {r.pid for r in records}
        self.assertEqual(len(pids), 2)
        child = (pids - {parent}).pop()
        child_records = [r for r in records if r.pid == child]
        parent_records = [r for r in records if r.pid == parent]
        self.assertEqual(child_records[0].kind, "fork")
        self.assertEqual(int(child_records[0].fields()["parent_pid"]), parent)
        self.assertEqual([r.seq for r in child_records], list(range(len(child_records))))
        self.assertNotIn("init", [r.kind for r in child_records])
        child_invokes = [r.fields() for r in child_records if r.kind == "invoke"]
        self.assertEqual([(i["number"], i["cold_start"]) for i in child_invokes], [("1", "1"), ("2", "0")])
        parent_invokes = [r.fields() for r in parent_records if r.kind == "invoke"]
        self.assertEqual([i["number"] for i in parent_invokes], ["1", "2"])
        child_modules = [row["module"] for p in profiles(child_records) for row in p.rows]
        self.assertIn("colorsys", child_modules)
        self.assertNotIn("json", child_modules)
        parent_modules = [row["module"] for p in profiles(parent_records) for row in p.rows]
        self.assertIn("json", parent_modules)
        self.assertNotIn("colorsys", parent_modules)


if __name__ == "__main__":
    unittest.main()

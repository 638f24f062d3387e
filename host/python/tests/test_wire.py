"""Pure functions: wire encoding and origin classification (in-process, no hook installed)."""

import os
import sys
import tempfile
import unittest

from probe_harness import PROBE_DIR, parse, profiles, write_tree

sys.path.insert(0, PROBE_DIR)

from pyrometer_probe import origin, wire  # noqa: E402


class WireTest(unittest.TestCase):
    def test_text_fields_never_contain_separators(self):
        self.assertEqual(wire.text(None), "-")
        self.assertEqual(wire.text(""), "-")
        self.assertEqual(wire.text("a\tb\nc\rd"), "a b c d")
        self.assertEqual(len(wire.text("x" * 5000)), wire.MAX_TEXT_CHARS)
        self.assertEqual(wire.number(None), "-")
        self.assertEqual(wire.number(12.9), "12")

    def test_header(self):
        self.assertEqual(wire.header("invoke", 12, 3, 1), "pyrometer-probe\t1\tinvoke\t12\t3\t1\n")

    def test_chunks_stay_under_the_limit_and_reassemble(self):
        rows = [
            wire.import_row(10 + i, -1 if i == 0 else 10, i, i * 2, "s", None, "pkg.module_" + "x" * (i % 200))
            for i in range(900)
        ]
        bodies = wire.import_bodies(7, 10, rows, "init", 0)
        self.assertGreater(len(bodies), 5)
        datagrams = [(wire.header("imports", 1, n, 0) + body).encode() for n, body in enumerate(bodies)]
        self.assertTrue(all(len(d) <= wire.MAX_DATAGRAM_BYTES for d in datagrams))
        (profile,) = profiles([parse(d) for d in datagrams])
        self.assertEqual(len(profile.rows), 900)
        self.assertEqual(profile.rows[5]["module"], "pkg.module_xxxxx")
        self.assertEqual(profile.base, 10)

    def test_empty_profile_is_one_chunk(self):
        (body,) = wire.import_bodies(0, 0, [], "init", 0)
        self.assertEqual(body, "0\t0\t1\t0\t0\t0\tinit\t0\n")

    def test_invoke_body_has_31_fields(self):
        body = wire.invoke_body("r", 1, True, False, 5, 6, "E", list(range(12)), 1, 2, 3, None, None, 4, 5, None, None, 0, 9)
        fields = body.rstrip("\n").split("\t")
        self.assertEqual(len(fields), 31)
        self.assertEqual(fields[:8], ["r", "1", "1", "0", "5", "6", "error", "E"])
        self.assertEqual(fields[23:25], ["-", "-"])


class OriginTest(unittest.TestCase):
    def test_paths(self):
        stdlib = os.path.dirname(os.__file__)
        self.assertEqual(origin.classify_path("x", "builtin"), "b")
        self.assertEqual(origin.classify_path("x", None), "u")
        self.assertEqual(origin.classify_path("json", os.path.join(stdlib, "json", "__init__.py")), "s")
        site = os.path.join(stdlib, "site-packages", "requests", "__init__.py")
        self.assertEqual(origin.classify_path("requests", site), "p")
        self.assertEqual(origin.classify_path("yaml", "/opt/python/lib/python3.12/site-packages/yaml/__init__.py"), "l")
        self.assertEqual(origin.classify_path("helpers", "/opt/python/helpers.py"), "l")
        self.assertEqual(origin.classify_path("boto3", "/var/runtime/boto3/__init__.py"), "p")
        self.assertEqual(origin.classify_path("app", "/var/task/app.py"), "f")

    def test_vendored_packages_next_to_the_function_are_site_packages(self):
        with tempfile.TemporaryDirectory() as task:
            write_tree(
                task,
                {
                    "app.py": "",
                    "requests/__init__.py": "",
                    "requests-2.31.0.dist-info/METADATA": "",
                    "dateutil/__init__.py": "",
                    "python_dateutil-2.9.0.dist-info/top_level.txt": "dateutil\n",
                },
            )
            self.assertEqual(origin.classify_path("app", os.path.join(task, "app.py")), "f")
            self.assertEqual(origin.classify_path("requests.api", os.path.join(task, "requests", "api.py")), "p")
            self.assertEqual(origin.classify_path("dateutil", os.path.join(task, "dateutil", "__init__.py")), "p")

    def test_modules(self):
        self.assertEqual(origin.classify("sys"), "b")
        self.assertEqual(origin.classify("unittest"), "s")
        self.assertEqual(origin.classify("no.such.module"), "u")


if __name__ == "__main__":
    unittest.main()

"""The import profile: structure, timing coverage and the hard cases."""

import os
import sys
import tempfile
import textwrap
import unittest

from probe_harness import Receiver, profiles, run_python, write_tree


def init_profile(records):
    """The profile sent with the init record."""
    found = [p for p in profiles(records) if p.phase == "init"]
    assert len(found) == 1, [(p.phase, p.profile_id) for p in profiles(records)]
    return found[0]


class ImportProfileTest(unittest.TestCase):
    def setUp(self):
        self.tmp = tempfile.TemporaryDirectory(prefix="pyro-app-")
        self.root = self.tmp.name
        self.receiver = Receiver()

    def tearDown(self):
        self.receiver.close()
        self.tmp.cleanup()

    def run_app(self, code, extra_env=None):
        result = run_python(textwrap.dedent(code), self.receiver.path, extra_env, pythonpath=[self.root], cwd=self.root)
        self.assertEqual(result.returncode, 0, result.stderr)
        records = self.receiver.wait_for(lambda rs: any(r.kind == "exit" for r in rs))
        return result, records

    def test_tree_parents_origins_and_times(self):
        write_tree(
            self.root,
            {
                "shop/__init__.py": "import shop.cart\n",
                "shop/cart.py": "import json\nimport shop.prices\n",
                "shop/prices.py": "import time\ntime.sleep(0.03)\n",
            },
        )
        builtin = [n for n in sys.builtin_module_names if n not in sys.modules]
        code = f"""
            import sys
            candidates = {builtin!r}
            builtin = next((n for n in candidates if n not in sys.modules), None)
            import shop
            if builtin:
                __import__(builtin)
            print(builtin)
        """
        result, records = self.run_app(code)
        builtin = result.stdout.strip()
        profile = init_profile(records)
        for row in profile.rows:
            self.assertLess(row["parent"], row["index"])
            self.assertLessEqual(row["self_us"], row["cumulative_us"])
            self.assertFalse(row["module"].startswith("pyrometer_probe"), row)
        shop = profile.one("shop")
        cart = profile.one("shop.cart")
        prices = profile.one("shop.prices")
        self.assertEqual(shop["parent"], -1)
        self.assertEqual(profile.parent_of(cart), shop)
        self.assertEqual(profile.parent_of(prices), cart)
        self.assertEqual(profile.parent_of(profile.by_name("json")[0]), cart)
        self.assertGreaterEqual(prices["self_us"], 25_000)
        self.assertGreaterEqual(cart["cumulative_us"], prices["cumulative_us"])
        self.assertGreaterEqual(shop["cumulative_us"], cart["cumulative_us"])
        children = profile.children(cart)
        expected_self = cart["cumulative_us"] - sum(c["cumulative_us"] for c in children)
        self.assertAlmostEqual(cart["self_us"], expected_self, delta=len(children) + 1)
        self.assertEqual(shop["origin"], "f")
        self.assertEqual(profile.by_name("json")[0]["origin"], "s")
        if builtin != "None":
            self.assertEqual(profile.one(builtin)["origin"], "b")

    def test_find_and_create_are_timed_not_only_exec(self):
        # A finder that is slow to find and a loader slow to create, as a C
        # extension's dlopen is: all three phases must land in the module's time.
        write_tree(
            self.root,
            {
                "slowfinder.py": textwrap.dedent(
                    """
                    import sys, time, types
                    from importlib.machinery import ModuleSpec

                    class Loader:
                        def create_module(self, spec):
                            time.sleep(0.04)
                            return types.ModuleType(spec.name)
                        def exec_module(self, module):
                            time.sleep(0.04)

                    class Finder:
                        def find_spec(self, name, path=None, target=None):
                            if name != "virtual_ext":
                                return None
                            time.sleep(0.04)
                            return ModuleSpec(name, Loader())

                    sys.meta_path.insert(0, Finder())
                    """
                )
            },
        )
        _, records = self.run_app("import slowfinder\nimport virtual_ext\n")
        row = init_profile(records).one("virtual_ext")
        self.assertGreaterEqual(row["cumulative_us"], 115_000, row)
        self.assertGreaterEqual(row["self_us"], 115_000, row)

    def test_failed_imports_keep_their_record_and_error(self):
        write_tree(
            self.root,
            {
                "broken.py": "import json\nraise ValueError('at import')\n",
                "uses_broken.py": "import broken\n",
            },
        )
        code = """
            try:
                import not_installed_anywhere
            except ImportError:
                pass
            try:
                import uses_broken
            except ValueError:
                pass
        """
        _, records = self.run_app(code)
        profile = init_profile(records)
        missing = profile.one("not_installed_anywhere")
        self.assertEqual(missing["error"], "ModuleNotFoundError")
        self.assertEqual(missing["origin"], "u")
        self.assertEqual(profile.one("broken")["error"], "ValueError")
        self.assertEqual(profile.one("uses_broken")["error"], "ValueError")
        self.assertIsNone(profile.by_name("json")[0]["error"])

    def test_circular_imports_and_import_module_are_not_double_counted(self):
        write_tree(
            self.root,
            {
                "ring_a.py": "import ring_b\nVALUE = 1\n",
                "ring_b.py": "import ring_a\nimport importlib\nimportlib.import_module('ring_a')\n",
            },
        )
        _, records = self.run_app("import ring_a\nimport importlib\nimportlib.import_module('ring_b')\n")
        profile = init_profile(records)
        self.assertEqual(len(profile.by_name("ring_a")), 1)
        self.assertEqual(len(profile.by_name("ring_b")), 1)
        self.assertEqual(profile.parent_of(profile.one("ring_b")), profile.one("ring_a"))

    def test_namespace_package_replaced_module_and_lazy_loader(self):
        write_tree(
            self.root,
            {
                "nspkg/part.py": "X = 1\n",
                "chameleon.py": "import sys\nclass Stand:\n    answer = 42\nsys.modules[__name__] = Stand()\n",
                "lazy_target.py": "import time\ntime.sleep(0.02)\nVALUE = 7\n",
            },
        )
        code = """
            import importlib.util, sys
            import nspkg.part
            import chameleon
            assert chameleon.answer == 42
            spec = importlib.util.find_spec("lazy_target")
            loader = importlib.util.LazyLoader(spec.loader)
            spec.loader = loader
            module = importlib.util.module_from_spec(spec)
            sys.modules["lazy_target"] = module
            loader.exec_module(module)
            assert module.VALUE == 7
            import nspkg.part as again
            assert again.X == 1
        """
        _, records = self.run_app(code)
        profile = init_profile(records)
        ns = profile.one("nspkg")
        part = profile.one("nspkg.part")
        # As in -X importtime: importing a submodule imports its package inside it.
        self.assertEqual(profile.parent_of(ns), part)
        self.assertEqual(ns["origin"], "f")
        self.assertIsNone(ns["error"])
        chameleon = profile.one("chameleon")
        self.assertIsNone(chameleon["error"])
        self.assertIn(chameleon["origin"], ("u", "f"))

    def test_threads_have_their_own_stacks(self):
        write_tree(
            self.root,
            {
                "left_mod.py": "import time\ntime.sleep(0.15)\n",
                "right_mod.py": "import time\ntime.sleep(0.15)\n",
            },
        )
        code = """
            import threading
            barrier = threading.Barrier(2)
            def load(name):
                barrier.wait()
                __import__(name)
            threads = [threading.Thread(target=load, args=(n,)) for n in ("left_mod", "right_mod")]
            for t in threads: t.start()
            for t in threads: t.join()
        """
        _, records = self.run_app(code)
        profile = init_profile(records)
        for name in ("left_mod", "right_mod"):
            row = profile.one(name)
            self.assertEqual(row["parent"], -1, row)
            self.assertLess(row["cumulative_us"], 280_000, row)
            self.assertGreaterEqual(row["cumulative_us"], 140_000, row)

    def test_large_profiles_are_chunked_under_the_datagram_limit(self):
        names = [f"generated_module_with_a_rather_long_name_{i:04d}" for i in range(600)]
        write_tree(self.root, {f"{n}.py": "" for n in names})
        write_tree(self.root, {"bulk.py": "".join(f"import {n}\n" for n in names)})
        _, records = self.run_app("import bulk\n")
        chunks = [r for r in records if r.kind == "imports"]
        self.assertGreater(len(chunks), 3)
        self.assertTrue(all(r.size <= 8192 for r in chunks))
        profile = init_profile(records)
        bulk = profile.one("bulk")
        self.assertEqual(len(profile.children(bulk)), 600)
        numbers = [r["index"] for r in profile.rows]
        self.assertEqual(numbers, sorted(set(numbers)))
        self.assertEqual(numbers[0], profile.base)

    def test_failing_import_traceback_is_unchanged(self):
        write_tree(self.root, {"explodes.py": "def f():\n    raise KeyError('k')\nf()\n"})
        code = "import traceback\ntry:\n    import explodes\nexcept KeyError:\n    traceback.print_exc()\ntry:\n    import nope_nope\nexcept ImportError:\n    traceback.print_exc()\n"
        with_probe = run_python(code, self.receiver.path, pythonpath=[self.root], cwd=self.root)
        without = run_python(code, None, pythonpath=[self.root], cwd=self.root)
        self.assertIn("KeyError", with_probe.stderr)
        self.assertEqual(with_probe.stderr, without.stderr)

    def test_after_import_callbacks_run_once_a_module_finished_importing(self):
        write_tree(
            self.root,
            {
                "watched.py": "import colorsys\nVALUE = 42\n",
                "broken.py": "VALUE = 1\nraise ImportError('broken on purpose')\n",
            },
        )
        result, records = self.run_app(
            """
            import sys
            from pyrometer_probe import imports

            seen = []
            imports.after_import("watched", lambda module: seen.append(("watched", module.VALUE)))
            imports.after_import("watched", lambda module: 1 / 0)  # a failing callback harms nothing
            imports.after_import("broken", lambda module: seen.append(("broken", module.VALUE)))
            imports.after_import("os", lambda module: seen.append(("os", module is sys.modules["os"])))
            print(seen)
            import watched
            try:
                import broken
            except ImportError:
                pass
            del sys.modules["watched"]
            import watched
            print(seen)
            """
        )
        self.assertEqual(
            result.stdout.splitlines(),
            ["[('os', True)]", "[('os', True), ('watched', 42), ('watched', 42)]"],
        )
        watched = [row for p in profiles(records) for row in p.by_name("watched")]
        self.assertEqual(len(watched), 2)

    def test_after_import_callbacks_are_not_counted_in_the_importing_package(self):
        write_tree(self.root, {"pkg/__init__.py": "import pkg.watched\n", "pkg/watched.py": "VALUE = 42\n"})
        result, records = self.run_app(
            """
            import time
            from pyrometer_probe import imports

            def slow_callback(module):
                end = time.perf_counter() + 0.1
                while time.perf_counter() < end:
                    pass
                print("hooked", module.VALUE)

            imports.after_import("pkg.watched", slow_callback)
            import pkg
            """
        )
        self.assertEqual(result.stdout.strip(), "hooked 42")
        profile = init_profile(records)
        package = profile.one("pkg")
        self.assertLess(package["cumulative_us"], 50_000)
        self.assertLess(package["self_us"], 50_000)
        self.assertLess(profile.one("pkg.watched")["cumulative_us"], 50_000)

    def test_hook_is_absent_without_a_socket(self):
        code = "import _frozen_importlib as b\nprint(hasattr(b._find_and_load, '__wrapped__'))\n"
        self.assertEqual(run_python(code, None).stdout.strip(), "False")
        self.assertEqual(run_python(code, self.receiver.path).stdout.strip(), "True")
        off = run_python(code, self.receiver.path, {"PYROMETER_PROBE": "off"})
        self.assertEqual(off.stdout.strip(), "False")


    def test_switched_off_the_probe_leaves_the_gc_threshold_alone(self):
        # On, the probe lifts the first threshold while it loads, and only its GC
        # callback puts it back: off, there is no callback, so nothing may change.
        code = "import gc\nprint(gc.get_threshold())\n"
        own = run_python(code, None).stdout.strip()
        off = run_python(code, self.receiver.path, {"PYROMETER_PROBE": "off"})
        self.assertEqual(off.stdout.strip(), own, off.stderr)

class SitecustomizeChainTest(unittest.TestCase):
    def test_existing_sitecustomize_runs_and_is_timed(self):
        with tempfile.TemporaryDirectory() as other, Receiver() as receiver:
            write_tree(other, {"sitecustomize.py": "import os, colorsys\nos.environ['CHAINED'] = 'yes'\n"})
            result = run_python("import os\nprint(os.environ.get('CHAINED'))\n", receiver.path, pythonpath=[other])
            self.assertEqual(result.stdout.strip(), "yes", result.stderr)
            records = receiver.wait_for(lambda rs: any(r.kind == "exit" for r in rs))
            profile = init_profile(records)
            chained = profile.one("sitecustomize")
            self.assertEqual(profile.parent_of(profile.one("colorsys")), chained)

    def test_chained_sitecustomize_runs_without_the_probe_too(self):
        with tempfile.TemporaryDirectory() as other:
            write_tree(other, {"sitecustomize.py": "import os\nos.environ['CHAINED'] = 'yes'\n"})
            result = run_python("import os\nprint(os.environ.get('CHAINED'))\n", None, pythonpath=[other])
            self.assertEqual(result.stdout.strip(), "yes", result.stderr)

    def test_errors_in_the_chained_sitecustomize_are_reported_by_site_as_usual(self):
        with tempfile.TemporaryDirectory() as other, Receiver() as receiver:
            write_tree(other, {"sitecustomize.py": "raise RuntimeError('bad customize')\n"})
            result = run_python("print('started')\n", receiver.path, pythonpath=[other])
            self.assertEqual(result.stdout.strip(), "started")
            self.assertIn("Error in sitecustomize", result.stderr)
            self.assertIn("bad customize", result.stderr)


if __name__ == "__main__":
    unittest.main()

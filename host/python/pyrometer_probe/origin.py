"""Where an imported module's code came from: the origin classification.

Data enters as a module name (looked up in ``sys.modules`` when the profile is
flushed, never on the import path) and leaves as a one-letter origin code of
the wire format:

``b``  built into the interpreter, or frozen
``s``  the standard library (``sys._stdlib_dir``, or the directory of ``os``)
``p``  a third-party package: any ``site-packages``/``dist-packages`` path, the
       Lambda runtime's own ``/var/runtime``, or a package vendored next to the
       function code (a ``<name>-<version>.dist-info`` beside it, as
       ``pip install -t .`` leaves it)
``l``  a Lambda layer: anything under ``/opt``
``f``  the function's own code: everything else
``u``  unknown: the module is gone from ``sys.modules`` (a failed import, or a
       module that removed itself) and had no file
"""

import os
import sys

_STDLIB_DIR = getattr(sys, "_stdlib_dir", None)
if not _STDLIB_DIR:
    _STDLIB_DIR = os.path.dirname(getattr(os, "__file__", "") or "")
_STDLIB_PREFIX = os.path.join(_STDLIB_DIR, "") if _STDLIB_DIR else None
_LAYER_PREFIX = "/opt/"
_LAMBDA_RUNTIME_PREFIX = "/var/runtime/"

# Directory (a sys.path entry) -> set of top-level names installed there as
# distributions; filled on first use, one listdir per directory.
_vendored = {}


def _module_path(module):
    """The file (or first search location) a module was loaded from, or None.

    Returns "builtin" for built-in and frozen modules.
    """
    spec = getattr(module, "__spec__", None)
    if spec is not None:
        origin = getattr(spec, "origin", None)
        if origin in ("built-in", "frozen"):
            return "builtin"
        if origin and origin != "namespace" and os.path.isabs(origin):
            return origin
        locations = getattr(spec, "submodule_search_locations", None)
        if locations:
            try:
                for location in locations:
                    return location
            except Exception:
                pass
    path = getattr(module, "__file__", None)
    if isinstance(path, str) and path:
        return path
    if spec is None and getattr(module, "__loader__", None) is not None:
        name = getattr(getattr(module, "__loader__", None), "__name__", "")
        if name in ("BuiltinImporter", "FrozenImporter"):
            return "builtin"
    return None


def _normalize(name):
    return name.lower().replace("-", "_").replace(".", "_")


def _distributions_in(directory):
    """Top-level import names of the distributions installed in ``directory``."""
    names = _vendored.get(directory)
    if names is not None:
        return names
    names = set()
    try:
        entries = os.listdir(directory)
    except OSError:
        entries = []
    for entry in entries:
        if not entry.endswith(".dist-info") and not entry.endswith(".egg-info"):
            continue
        names.add(_normalize(entry.split("-", 1)[0]))
        try:
            with open(os.path.join(directory, entry, "top_level.txt")) as top_level:
                for line in top_level:
                    if line.strip():
                        names.add(_normalize(line.strip()))
        except OSError:
            pass
    _vendored[directory] = names
    return names


def _is_vendored(name, path):
    """True if the top-level package of ``name`` sits beside its dist-info."""
    top = name.partition(".")[0]
    marker = os.sep + top
    at = path.rfind(marker + os.sep)
    if at < 0:
        at = path.rfind(marker + ".")
    if at < 0:
        return False
    directory = path[:at] or os.sep
    return _normalize(top) in _distributions_in(directory)


def classify_path(name, path):
    """Origin code for module ``name`` loaded from ``path`` (see module doc)."""
    if path is None:
        return "u"
    if path == "builtin":
        return "b"
    if "/site-packages/" in path or "/dist-packages/" in path:
        return "l" if path.startswith(_LAYER_PREFIX) else "p"
    if _STDLIB_PREFIX and path.startswith(_STDLIB_PREFIX):
        return "s"
    if path.startswith(_LAYER_PREFIX):
        return "l"
    if path.startswith(_LAMBDA_RUNTIME_PREFIX):
        return "p"
    if _is_vendored(name, path):
        return "p"
    return "f"


def classify(name, modules=None):
    """Origin code of the module called ``name`` as it is now in ``sys.modules``."""
    try:
        module = (sys.modules if modules is None else modules).get(name)
        if module is None:
            if name in sys.builtin_module_names:
                return "b"
            return "u"
        # The usual module was loaded from a file: its spec's origin is the
        # absolute path (``os.path.isabs`` on POSIX, the probe's platforms).
        path = getattr(getattr(module, "__spec__", None), "origin", None)
        if path.__class__ is not str or not path.startswith("/"):
            path = _module_path(module)
        return classify_path(name, path)
    except Exception:
        return "u"

"""Writes demo.json: one execution environment's life as pyrometer batches.

A cold start whose import phase is dominated by a heavy third-party SDK, then
warm invocations in batches of 20 whose RSS creeps up by ~200 KiB per
invocation (a cache that never evicts) and whose latency tail slowly grows.
Deterministic (fixed seed); stdlib only. Run: python3 generate.py > demo.json
"""
import json
import random

rng = random.Random(7)
FUNCTION = {"name": "orders-api", "version": "42", "runtime": "python3.12", "memory_size_mb": 512}

# (module, parent index or None, self µs, origin); cumulative is derived below.
MODULES = [
    ("encodings", None, 900, "stdlib"),
    ("json", None, 1100, "stdlib"),
    ("json.decoder", 1, 800, "stdlib"),
    ("boto3", None, 4000, "site-packages"),
    ("botocore", 3, 9000, "site-packages"),
    ("botocore.session", 4, 12000, "site-packages"),
    ("botocore.loaders", 5, 38000, "site-packages"),
    ("botocore.client", 4, 61000, "site-packages"),
    ("urllib3", 4, 22000, "site-packages"),
    ("pandas", None, 35000, "layer"),
    ("numpy", 9, 91000, "layer"),
    ("pandas.core.frame", 9, 140000, "layer"),
    ("app", None, 2500, "function-code"),
    ("app.models", 12, 47000, "function-code"),
]


def import_profile():
    mods = [
        {"module": m, "parent": p, "self_us": s, "cumulative_us": s, "origin": o}
        for m, p, s, o in MODULES
    ]
    for i in reversed(range(len(mods))):
        parent = mods[i]["parent"]
        if parent is not None:
            mods[parent]["cumulative_us"] += mods[i]["cumulative_us"]
    return {"modules": mods}


def invocation(n, cold):
    duration = rng.lognormvariate(3.2, 0.35) + n * 0.9
    return {
        "request_id": f"8c2f6a1e-{n:04d}-4b7e-9a43-5d1c2e3f4a5b",
        "start_unix_ms": 1764100000000.0 + n * 1500,
        "cold_start": cold,
        "status": "error" if n % 37 == 36 else "success",
        "duration_ms": round(duration, 2),
        "billed_duration_ms": float(int(duration) + 1),
        "init_duration_ms": 1180.0 if cold else None,
        "max_memory_used_mb": 180.0,
        "memory_size_mb": 512.0,
        "rss_bytes": 150e6 + n * 200 * 1024 + rng.uniform(-300e3, 300e3),
        "cpu_user_ms": round(duration * 0.7, 2),
        "cpu_system_ms": round(duration * 0.05, 2),
        "gc_collections": 1 if n % 5 == 0 else 0,
        "gc_pause_ms": 0.8 if n % 5 == 0 else 0.0,
    }


batches = []
n = 0
for b in range(5):
    invs = []
    for _ in range(20):
        invs.append(invocation(n, cold=(n == 0)))
        n += 1
    batches.append({"function": FUNCTION, "invocations": invs, "imports": import_profile() if b == 0 else None})
print(json.dumps(batches, indent=1))

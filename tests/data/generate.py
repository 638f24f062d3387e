#!/usr/bin/env python3
"""Generate the fixture cases of the first-party plugins under tests/data/.

Every case folder is written from this script (stdlib only, deterministic:
each case seeds its own random.Random), so inputs of hundreds of invocations
never have to be written by hand and a change of scenario is one edit here.
The output is committed alongside the script, with CASES.md, an index of
every case and what it asserts.

    python3 tests/data/generate.py          # rewrite every case
    python3 tests/data/generate.py --check  # exit 1 if a committed file differs

README.md beside this script documents the folder layout and the
expected.json format.
"""

import argparse
import json
import random
import shutil
import sys
from pathlib import Path

DATA = Path(__file__).resolve().parent
PLUGINS = ("slow-imports", "cold-start-budget", "memory-trend", "latency-slo")

KIB = 1024
MIB = 1024 * 1024
EPOCH_MS = 1_767_225_600_000  # 2026-01-01T00:00:00Z


# ---------------------------------------------------------------- model helpers


def function(name="orders-api", memory_size_mb=512):
    return {
        "name": name,
        "version": "7",
        "runtime": "python3.12",
        "memory_size_mb": memory_size_mb,
    }


def invocation(i, duration_ms=120.0, status="success", cold_start=False,
               init_ms=None, rss_bytes=None):
    """One invocation in the host's JSON model; None fields are left out (NaN)."""
    inv = {
        "request_id": f"req-{i:05d}",
        "start_unix_ms": EPOCH_MS + i * 1000,
        "cold_start": cold_start,
        "status": status,
        "duration_ms": round(duration_ms, 1),
        "billed_duration_ms": float(int(duration_ms) + 1),
        "memory_size_mb": 512.0,
    }
    if init_ms is not None:
        inv["init_duration_ms"] = round(init_ms, 1)
    if rss_bytes is not None:
        inv["rss_bytes"] = float(int(rss_bytes))
    return inv


def batch(invocations, imports=None, fn=None):
    b = {"function": fn or function(), "invocations": invocations}
    if imports is not None:
        b["imports"] = {"modules": imports}
    return b


def module(name, parent, self_ms, cumulative_ms, origin):
    return {
        "module": name,
        "parent": parent,
        "self_us": int(self_ms * 1000),
        "cumulative_us": int(cumulative_ms * 1000),
        "origin": origin,
    }


def finding(rule, severity=None, **labels):
    f = {"rule": rule}
    if severity:
        f["severity"] = severity
    if labels:
        f["labels"] = labels
    return f


def metric(name, lo=None, hi=None, **labels):
    m = {"name": name}
    if labels:
        m["labels"] = labels
    if lo is not None:
        m["min"] = lo
    if hi is not None:
        m["max"] = hi
    return m


def near(name, value, **labels):
    """A metric whose value must equal `value` up to floating-point rounding."""
    tolerance = 1e-9 * max(1.0, abs(value))
    lo, hi = (float(f"{v:.12g}") for v in (value - tolerance, value + tolerance))
    return metric(name, lo, hi, **labels)


def exactly(name, value, **labels):
    """A metric that counts something, so it is exact."""
    return metric(name, value, value, **labels)


# ------------------------------------------------------------- slow-imports

SELF = "pyrometer_slow_imports_self_seconds"
CUMULATIVE = "pyrometer_slow_imports_cumulative_seconds"
PHASE = "pyrometer_slow_imports_phase_seconds"
SHARE = "pyrometer_slow_imports_init_share_ratio"
MODULES = "pyrometer_slow_imports_modules"


def boto_profile():
    """handler → boto3 → botocore (slow); json and a small util are cheap.
    Import phase = handler 562 ms + json 4 ms + util 6 ms = 572 ms."""
    return [
        module("handler", None, 2, 562, "function-code"),            # 0
        module("boto3", 0, 30, 480, "site-packages"),                 # 1
        module("botocore", 1, 60, 420, "site-packages"),              # 2
        module("botocore.session", 2, 200, 220, "site-packages"),     # 3
        module("botocore.loaders", 3, 20, 20, "site-packages"),       # 4
        module("botocore.client", 2, 140, 140, "site-packages"),      # 5
        module("requests", 0, 40, 80, "layer"),                       # 6
        module("urllib3", 6, 40, 40, "layer"),                        # 7
        module("json", None, 3, 4, "stdlib"),                         # 8
        module("json.decoder", 8, 1, 1, "stdlib"),                    # 9
        module("util", None, 6, 6, "function-code"),                  # 10
    ]


def wide_profile(rng, n):
    """n modules: 20 top-level packages with submodules, all 5 to 60 ms."""
    modules, tops = [], []
    for i in range(n):
        if i % 10 == 0:
            tops.append(i)
            modules.append([f"pkg{i // 10}", None, 0, 0, "site-packages"])
        else:
            modules.append([f"pkg{i // 10}.mod{i % 10}", tops[-1], 0, 0, "site-packages"])
        modules[-1][2] = rng.randint(5_000, 60_000)  # self, µs
    # cumulative = self + children's cumulative (children directly follow).
    for i in reversed(range(n)):
        modules[i][3] = modules[i][2] + sum(m[3] for m in modules if m[1] == i)
    return [
        {"module": m[0], "parent": m[1], "self_us": m[2], "cumulative_us": m[3], "origin": m[4]}
        for m in modules
    ]


def slow_imports_cases():
    cold = lambda init: [invocation(0, cold_start=True, init_ms=init)] + [
        invocation(i) for i in range(1, 4)
    ]
    yield "slow-module", {
        "about": "boto3 and its subtree take 480 ms: slow-import findings name it; "
                 "imports are 38% of the 1500 ms init, under the 50% share.",
        "input": batch(cold(1500.0), boto_profile()),
        "expected": {
            "findings": [
                finding("slow-import", "warning", module="boto3", origin="site-packages",
                        function_name="orders-api"),
                finding("slow-import", "warning", module="handler", origin="function-code"),
                finding("slow-import", "warning", module="botocore.session"),
            ],
            # handler, boto3, botocore, botocore.session, botocore.client are over 100 ms.
            "finding_count": 5,
            "absent_rules": ["import-share"],
            "metrics": [
                near(CUMULATIVE, 0.48, module="boto3", origin="site-packages"),
                near(SELF, 0.2, module="botocore.session"),
                near(PHASE, 0.572),
                metric(SHARE, 0.381, 0.382),
                exactly(MODULES, 11),
            ],
            "metric_count": {SELF: 10, CUMULATIVE: 10},
        },
    }
    yield "quiet", {
        "about": "Every module under 100 ms and imports a small share of init: no finding.",
        "input": batch(cold(800.0), [
            module("handler", None, 2, 52, "function-code"),
            module("json", 0, 30, 30, "stdlib"),
            module("decimal", 0, 20, 20, "stdlib"),
            module("util", None, 8, 8, "function-code"),
        ]),
        "expected": {
            "finding_count": 0,
            "metrics": [near(PHASE, 0.06), near(SHARE, 0.075)],
            "metric_count": {SELF: 4, CUMULATIVE: 4},
        },
    }
    yield "import-share", {
        "about": "Imports take 572 of 700 ms init (82%): import-share fires; the "
                 "module threshold is raised so nothing else does.",
        "config": {"module_threshold_ms": "1000"},
        "input": batch(cold(700.0), boto_profile()),
        "expected": {
            "findings": [finding("import-share", "warning", function_name="orders-api")],
            "finding_count": 1,
            "metrics": [metric(SHARE, 0.817, 0.818)],
        },
    }
    yield "custom-share", {
        "about": "max_import_share 0.3: 38% of init now fires import-share.",
        "config": {"max_import_share": "0.3", "module_threshold_ms": "1000"},
        "input": batch(cold(1500.0), boto_profile()),
        "expected": {"findings": [finding("import-share")], "finding_count": 1},
    }
    rng = random.Random(4)
    yield "top-n-bound", {
        "about": "200 modules, most over the 5 ms threshold: top_n 5 bounds both "
                 "rankings and the slow-import findings.",
        "config": {"top_n": "5", "module_threshold_ms": "5"},
        "input": batch(cold(60_000.0), wide_profile(rng, 200)),
        "expected": {
            "metric_count": {SELF: 5, CUMULATIVE: 5},
            "finding_count": 5,
            "absent_rules": ["import-share"],
            "metrics": [exactly(MODULES, 200)],
        },
    }
    yield "init-unknown", {
        "about": "The cold start has no init duration: slow modules are still "
                 "reported, the import share is skipped.",
        "input": batch([invocation(0, cold_start=True)], boto_profile()),
        "expected": {
            "findings": [finding("slow-import", module="boto3")],
            "absent_rules": ["import-share"],
            "metric_count": {SHARE: 0},
        },
    }
    yield "no-imports", {
        "about": "A warm batch without an import profile produces nothing.",
        "input": batch([invocation(i) for i in range(5)]),
        "expected": {"finding_count": 0, "metric_count": {SELF: 0, CUMULATIVE: 0, PHASE: 0, SHARE: 0}},
    }


# --------------------------------------------------------- cold-start-budget

USED = "pyrometer_cold_start_budget_used_ratio"
BUDGET = "pyrometer_cold_start_budget_seconds"


def cold_batch(init_ms, name="orders-api", warm=3):
    invocations = [invocation(0, cold_start=True, init_ms=init_ms)]
    invocations += [invocation(i) for i in range(1, warm + 1)]
    return batch(invocations, fn=function(name))


def cold_start_budget_cases():
    yield "under", {
        "about": "400 ms of a 1000 ms budget: gauges, no finding.",
        "input": cold_batch(400.0),
        "expected": {
            "finding_count": 0,
            "metrics": [near(USED, 0.4, function_name="orders-api"), near(BUDGET, 1)],
        },
    }
    yield "over", {
        "about": "1500 ms of 1000: warning.",
        "input": cold_batch(1500.0),
        "expected": {
            "findings": [finding("cold-start-budget", "warning", function_name="orders-api")],
            "finding_count": 1,
            "metrics": [near(USED, 1.5)],
        },
    }
    yield "critical", {
        "about": "2500 ms of 1000, beyond critical_factor 2: critical.",
        "input": cold_batch(2500.0),
        "expected": {
            "findings": [finding("cold-start-budget", "critical")],
            "finding_count": 1,
            "metrics": [near(USED, 2.5)],
        },
    }
    override = {"budget_ms": "500", "budget_ms.orders-api": "3000"}
    yield "per-function-override", {
        "about": "budget_ms.orders-api = 3000 overrides the 500 ms default: 2500 ms is within it.",
        "config": override,
        "input": cold_batch(2500.0),
        "expected": {
            "finding_count": 0,
            "metrics": [metric(USED, 0.833, 0.834), near(BUDGET, 3)],
        },
    }
    yield "override-other-function", {
        "about": "The override does not apply to users-api: 1200 ms of 500 is critical.",
        "config": override,
        "input": cold_batch(1200.0, name="users-api"),
        "expected": {
            "findings": [finding("cold-start-budget", "critical", function_name="users-api")],
            "metrics": [near(USED, 2.4, function_name="users-api"), near(BUDGET, 0.5)],
        },
    }
    yield "custom-critical-factor", {
        "about": "critical_factor 3: 2500 ms of 1000 is only a warning.",
        "config": {"critical_factor": "3"},
        "input": cold_batch(2500.0),
        "expected": {"findings": [finding("cold-start-budget", "warning")], "finding_count": 1},
    }
    yield "warm-only", {
        "about": "No cold start in the batch: nothing to measure.",
        "input": batch([invocation(i) for i in range(5)]),
        "expected": {"finding_count": 0, "metric_count": {USED: 0, BUDGET: 0}},
    }
    yield "init-unknown", {
        "about": "A cold start without an init duration is skipped.",
        "input": batch([invocation(0, cold_start=True)]),
        "expected": {"finding_count": 0, "metric_count": {USED: 0}},
    }
    yield "per-batch", {
        "about": "A critical cold start in the first batch; the last batch is warm and quiet.",
        "input": [cold_batch(2500.0), batch([invocation(i) for i in range(4, 8)])],
        "expected": {"finding_count": 0, "metric_count": {USED: 0}},
    }


# -------------------------------------------------------------- memory-trend

GROWTH = "pyrometer_memory_trend_growth_per_invocation_bytes"
R2 = "pyrometer_memory_trend_r_squared_ratio"
SAMPLES = "pyrometer_memory_trend_window_samples"
BASE_RSS = 96 * MIB


def rss_batch(rss_values, start=0, cold_first=False):
    """One batch; rss_values[k] is the RSS of invocation start+k (None = not measured)."""
    invocations = []
    for k, rss in enumerate(rss_values):
        cold = cold_first and k == 0
        invocations.append(invocation(start + k, cold_start=cold,
                                      init_ms=900.0 if cold else None, rss_bytes=rss))
    return batch(invocations)


def memory_trend_cases():
    rng = random.Random(1)
    leak = [BASE_RSS + 100 * KIB * i + rng.uniform(-256 * KIB, 256 * KIB) for i in range(41)]
    yield "steady-leak", {
        "about": "100 KiB per invocation plus ±256 KiB noise over 40 warm invocations: "
                 "memory-leak fires and the slope estimate is within 10%.",
        "input": rss_batch(leak, cold_first=True),
        "expected": {
            "findings": [finding("memory-leak", "warning", function_name="orders-api")],
            "finding_count": 1,
            "metrics": [
                metric(GROWTH, 90 * KIB, 110 * KIB),
                metric(R2, 0.8, 1.0),
                exactly(SAMPLES, 30),
            ],
        },
    }
    yield "sawtooth", {
        "about": "RSS climbs 1 MiB per invocation for 8 invocations, then drops back, "
                 "over and over (a cache or GC cycle): not a leak.",
        "input": rss_batch([BASE_RSS + MIB * (i % 8) for i in range(60)]),
        "expected": {"absent_rules": ["memory-leak"], "metrics": [exactly(SAMPLES, 30)]},
    }
    yield "slow-sawtooth-drop", {
        "about": "RSS climbs for the whole window, then gives half of it back: the "
                 "release shows it is not a leak.",
        "input": rss_batch([BASE_RSS + MIB * i for i in range(29)] + [BASE_RSS + 14 * MIB]),
        "expected": {"absent_rules": ["memory-leak"]},
    }
    rng = random.Random(2)
    step = [BASE_RSS + (24 * MIB if i >= 32 else 0) + rng.uniform(-64 * KIB, 64 * KIB)
            for i in range(40)]
    yield "one-off-step", {
        "about": "Flat, one 24 MiB jump (a cache filled once), flat again: the fitted "
                 "slope is large but the rise is not spread over the window.",
        "input": rss_batch(step),
        "expected": {"absent_rules": ["memory-leak"], "metrics": [metric(GROWTH, 64 * KIB)]},
    }
    yield "step-mid-window", {
        "about": "The one-off step exactly in the middle of the window, where the "
                 "fit is at its best (R² 0.75): still not a leak.",
        "input": rss_batch([BASE_RSS + (24 * MIB if i >= 15 else 0) for i in range(30)]),
        "expected": {"absent_rules": ["memory-leak"]},
    }
    yield "step-lenient-fit", {
        "about": "The mid-window step with min_r_squared lowered to 0.5: the line now "
                 "fits well enough (R² 0.75), and the halves rule alone rejects it "
                 "(both halves of the window are flat).",
        "config": {"min_r_squared": "0.5"},
        "input": rss_batch([BASE_RSS + (24 * MIB if i >= 15 else 0) for i in range(30)]),
        "expected": {"absent_rules": ["memory-leak"], "metrics": [metric(R2, 0.5, 0.8)]},
    }
    yield "too-few-samples", {
        "about": "A steep leak over 9 warm invocations is below min_samples (10): no verdict yet.",
        "input": rss_batch([BASE_RSS + MIB * i for i in range(10)], cold_first=True),
        "expected": {
            "absent_rules": ["memory-leak"],
            "metrics": [exactly(SAMPLES, 9)],
            "metric_count": {GROWTH: 0},
        },
    }
    batches = [rss_batch([BASE_RSS + 128 * KIB * i for i in range(k * 10, k * 10 + 10)],
                         start=k * 10, cold_first=(k == 0))
               for k in range(4)]
    yield "leak-across-batches", {
        "about": "128 KiB per invocation, 10 invocations per batch over 4 batches: "
                 "the history persists and the leak is reported on the last batch.",
        "input": batches,
        "expected": {
            "findings": [finding("memory-leak")],
            "metrics": [metric(GROWTH, 127 * KIB, 129 * KIB), exactly(SAMPLES, 30)],
        },
    }
    yield "cold-start-resets", {
        "about": "A leaking first batch, then a cold start (a new process) with 5 "
                 "warm invocations: the window restarts and holds too few samples.",
        "input": [
            rss_batch([BASE_RSS + 128 * KIB * i for i in range(30)]),
            rss_batch([BASE_RSS] * 6, start=30, cold_first=True),
        ],
        "expected": {"absent_rules": ["memory-leak"], "metrics": [exactly(SAMPLES, 5)]},
    }
    rng = random.Random(3)
    yield "flat", {
        "about": "RSS noise around a flat line: no leak, slope near zero.",
        "input": rss_batch([BASE_RSS + rng.uniform(-512 * KIB, 512 * KIB) for _ in range(40)]),
        "expected": {
            "absent_rules": ["memory-leak"],
            "metrics": [metric(GROWTH, -48 * KIB, 48 * KIB)],
        },
    }
    slow = [BASE_RSS + 16 * KIB * i for i in range(40)]
    yield "slow-growth", {
        "about": "Steady but slow growth (16 KiB per invocation) is under min_slope_bytes (64 KiB).",
        "input": rss_batch(slow),
        "expected": {"absent_rules": ["memory-leak"], "metrics": [near(GROWTH, 16 * KIB)]},
    }
    yield "custom-min-slope", {
        "about": "The same slow growth with min_slope_bytes 8192 is a leak.",
        "config": {"min_slope_bytes": "8192"},
        "input": rss_batch(slow),
        "expected": {"findings": [finding("memory-leak")]},
    }
    missing = [None if i % 4 == 0 else BASE_RSS + 100 * KIB * i for i in range(40)]
    yield "missing-rss", {
        "about": "Every 4th invocation has no RSS: skipped, the others still show the leak.",
        "input": rss_batch(missing),
        "expected": {
            "findings": [finding("memory-leak")],
            "metrics": [metric(GROWTH, 99 * KIB, 101 * KIB), exactly(SAMPLES, 30)],
        },
    }


# --------------------------------------------------------------- latency-slo

DURATION = "pyrometer_latency_slo_duration_seconds"
ERRORS = "pyrometer_latency_slo_error_ratio"
BURN = "pyrometer_latency_slo_burn_rate"
WINDOW = "pyrometer_latency_slo_window_samples"


def calls(rng, n, start=0, slow_every=0, error_every=0, status="error", slow_ms=1500.0):
    """n invocations of 80-400 ms; every slow_every-th is slow, every
    error_every-th fails (counting from the first, 1-based)."""
    out = []
    for k in range(1, n + 1):
        duration = rng.uniform(80.0, 400.0)
        if slow_every and k % slow_every == 0:
            duration = slow_ms
        failed = error_every and k % error_every == 0
        out.append(invocation(start + k, duration_ms=duration,
                              status=status if failed else "success"))
    return out


def latency_slo_cases():
    rng = random.Random(10)
    yield "healthy", {
        "about": "150 fast, successful invocations over two batches: quantiles in "
                 "range, zero burn, no finding.",
        "input": [batch(calls(rng, 90)), batch(calls(rng, 60, start=90))],
        "expected": {
            "finding_count": 0,
            "metrics": [
                metric(DURATION, 0.08, 0.4, quantile="0.5"),
                metric(DURATION, 0.08, 0.4, quantile="0.99"),
                near(ERRORS, 0),
                near(BURN, 0, objective="latency", window="long"),
                exactly(WINDOW, 100),
            ],
        },
    }
    rng = random.Random(11)
    yield "latency-burn-critical", {
        "about": "One invocation in 5 takes 1.5 s: 20% slow against 1% allowed is a "
                 "burn rate of 20 in both windows: critical.",
        "input": batch(calls(rng, 100, slow_every=5)),
        "expected": {
            "findings": [finding("slo-burn", "critical", objective="latency",
                                 function_name="orders-api")],
            "finding_count": 1,
            "metrics": [
                near(BURN, 20, objective="latency", window="long"),
                near(BURN, 20, objective="latency", window="short"),
                near(DURATION, 1.5, quantile="0.99"),
            ],
        },
    }
    rng = random.Random(12)
    yield "errors-burn-warning", {
        "about": "5% errors (one in 20, the newest 10 include one): burn 5 long, 10 "
                 "short, sustained 5: a warning.",
        "input": batch(calls(rng, 100, error_every=20)),
        "expected": {
            "findings": [finding("slo-burn", "warning", objective="errors")],
            "finding_count": 1,
            "metrics": [near(ERRORS, 0.05), near(BURN, 5, objective="errors", window="long")],
        },
    }
    rng = random.Random(13)
    failing = calls(rng, 100, error_every=4, status="failure")
    for k in (6, 30, 54):  # calls 7, 31 and 55: not already failing
        failing[k]["status"] = "out-of-memory"
    yield "errors-burn-critical", {
        "about": "Every 4th invocation fails (plus 3 out-of-memory): about 28% errors, critical.",
        "input": batch(failing),
        "expected": {
            "findings": [finding("slo-burn", "critical", objective="errors")],
            "metrics": [near(ERRORS, 0.28)],
        },
    }
    rng = random.Random(14)
    yield "recovered", {
        "about": "Heavy errors in the older part of the window, none in the newest "
                 "40: the long window still burns, the short does not, so no finding "
                 "(the multiwindow rule clears soon after a fix).",
        "input": batch(calls(rng, 60, error_every=3) + calls(rng, 40, start=60)),
        "expected": {
            "finding_count": 0,
            "metrics": [
                near(BURN, 20, objective="errors", window="long"),
                near(BURN, 0, objective="errors", window="short"),
            ],
        },
    }
    rng = random.Random(15)
    yield "too-few-samples", {
        "about": "15 failing invocations are below min_samples (20): gauges, no finding.",
        "input": batch(calls(rng, 15, error_every=1)),
        "expected": {"finding_count": 0, "metrics": [near(ERRORS, 1), exactly(WINDOW, 15)]},
    }
    rng = random.Random(16)
    yield "window-spans-batches", {
        "about": "5 batches of 30: the first two fail every other call, the last "
                 "three are clean. The window keeps the newest 100, which hold the "
                 "last 10 of batch 2 (5 errors): error ratio exactly 0.05; the short "
                 "window is clean, so no finding.",
        "input": [batch(calls(rng, 30, start=30 * k, error_every=2 if k < 2 else 0))
                  for k in range(5)],
        "expected": {
            "finding_count": 0,
            "metrics": [near(ERRORS, 0.05), exactly(WINDOW, 100)],
        },
    }
    rng = random.Random(17)
    custom = calls(rng, 100)
    slow = sum(1 for inv in custom if inv["duration_ms"] > 300.0)
    slow_short = sum(1 for inv in custom[-10:] if inv["duration_ms"] > 300.0)
    burn = (slow / 100) / 0.1
    short_burn = (slow_short / 10) / 0.1
    assert 2 < min(burn, short_burn) <= 10, (burn, short_burn)
    yield "custom-objective", {
        "about": f"Objective 300 ms for 90% of calls: {slow} of 100 calls of 80-400 ms "
                 f"are slower, burn {burn:.1f} (short {short_burn:.1f}): a warning.",
        "config": {"latency_objective_ms": "300", "latency_target": "0.9"},
        "input": batch(custom),
        "expected": {
            "findings": [finding("slo-burn", "warning", objective="latency")],
            "finding_count": 1,
            "metrics": [metric(BURN, burn - 1e-9, burn + 1e-9, objective="latency", window="long")],
        },
    }


# ------------------------------------------------------------------ writing


def render(value, indent=0):
    """JSON with one flat object (an invocation, a module) per line."""
    pad = "  " * indent
    if isinstance(value, dict):
        if all(not isinstance(v, (dict, list)) for v in value.values()):
            return json.dumps(value)
        items = [f'{pad}  {json.dumps(k)}: {render(v, indent + 1)}' for k, v in value.items()]
        return "{\n" + ",\n".join(items) + "\n" + pad + "}"
    if isinstance(value, list):
        if not value:
            return "[]"
        if all(not isinstance(v, (dict, list)) for v in value):
            return json.dumps(value)
        items = [f"{pad}  {render(v, indent + 1)}" for v in value]
        return "[\n" + ",\n".join(items) + "\n" + pad + "]"
    return json.dumps(value)


def files_of(case):
    files = {
        "input.json": render(case["input"]) + "\n",
        "expected.json": render(case["expected"]) + "\n",
    }
    if "config" in case:
        files["config.json"] = render(case["config"]) + "\n"
    return files


def index_of(all_cases):
    """CASES.md: every case and what it asserts, from the `about` texts."""
    lines = [
        "# Fixture cases",
        "",
        "Generated by `generate.py` (do not edit by hand); the format is in README.md.",
    ]
    for plugin, cases in all_cases.items():
        lines += ["", f"## {plugin}", "", "| case | config | what it asserts |", "|---|---|---|"]
        for name, case in cases.items():
            config = ", ".join(f"`{k}={v}`" for k, v in case.get("config", {}).items()) or "defaults"
            lines.append(f"| `{name}` | {config} | {case['about']} |")
    return "\n".join(lines) + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true",
                        help="compare with the files on disk instead of writing them")
    args = parser.parse_args()
    generators = {
        "slow-imports": slow_imports_cases,
        "cold-start-budget": cold_start_budget_cases,
        "memory-trend": memory_trend_cases,
        "latency-slo": latency_slo_cases,
    }
    stale = []
    all_cases = {plugin: dict(generators[plugin]()) for plugin in PLUGINS}
    index = DATA / "CASES.md"
    if not index.exists() or index.read_text() != index_of(all_cases):
        stale.append("CASES.md")
        if not args.check:
            index.write_text(index_of(all_cases))
    for plugin, cases in all_cases.items():
        root = DATA / plugin
        on_disk = {p.name for p in root.iterdir() if p.is_dir()} if root.exists() else set()
        for name in sorted(on_disk - cases.keys()):
            stale.append(f"{plugin}/{name} (no longer generated)")
            if not args.check:
                shutil.rmtree(root / name)
        for name, case in cases.items():
            folder = root / name
            wanted = files_of(case)
            present = {p.name for p in folder.iterdir()} if folder.exists() else set()
            for extra in sorted(present - wanted.keys()):
                stale.append(f"{plugin}/{name}/{extra} (no longer generated)")
                if not args.check:
                    (folder / extra).unlink()
            for file, text in wanted.items():
                path = folder / file
                if not path.exists() or path.read_text() != text:
                    stale.append(f"{plugin}/{name}/{file}")
                    if not args.check:
                        folder.mkdir(parents=True, exist_ok=True)
                        path.write_text(text)
    if args.check and stale:
        print("tests/data is out of date; run tests/data/generate.py:", *stale, sep="\n  ")
        return 1
    if not args.check:
        print(f"wrote {len(stale)} file(s)")
    return 0


if __name__ == "__main__":
    sys.exit(main())

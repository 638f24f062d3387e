#!/usr/bin/env bash
# The main job: run the bundled example Lambda handler (examples/leaky: a slow
# module and a slow leak) the way Lambda does, on this machine, with the four
# first-party plugins, and print the cold-start report. Also writes
# target/demo/report.{html,json} and the import tree for speedscope.
set -euo pipefail
cd "$(dirname "$0")/.."

rustup target add wasm32-wasip2 >/dev/null 2>&1 || true
cargo build --release -p pyrometer
guests=target/guests/plugins
(cd plugins && CARGO_TARGET_DIR="../$guests" cargo build --release --target wasm32-wasip2)
wasm="$PWD/$guests/wasm32-wasip2/release"
out="$PWD/target/demo"
mkdir -p "$out"

cd examples/leaky
"$OLDPWD/target/release/pyrometer" lambda app.py:handler --invocations 30 \
    --plugin "$wasm/slow_imports.wasm" --plugin "$wasm/cold_start_budget.wasm" \
    --plugin "$wasm/memory_trend.wasm" --plugin "$wasm/latency_slo.wasm" \
    --plugin-config cold_start_budget:budget_ms=300 \
    --json "$out/report.json" --html "$out/report.html" --speedscope "$out/imports.speedscope.json"
echo "HTML report: $out/report.html"

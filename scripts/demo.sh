#!/usr/bin/env bash
# The main job, until `pyrometer lambda` lands: build pyrometer and the four
# first-party plugins, then run each plugin over the bundled example — one
# execution environment's cold start and 100 warm invocations, in 5 batches
# (examples/batches/demo.json) — and print what it found.
set -euo pipefail
cd "$(dirname "$0")/.."

rustup target add wasm32-wasip2 >/dev/null 2>&1 || true
cargo build --release -p pyrometer
guests=target/guests/plugins
(cd plugins && CARGO_TARGET_DIR="../$guests" cargo build --release --target wasm32-wasip2)

for plugin in slow_imports cold_start_budget memory_trend latency_slo; do
    printf '\n=== %s ===\n' "$plugin"
    target/release/pyrometer plugin run "$guests/wasm32-wasip2/release/$plugin.wasm" \
        --input examples/batches/demo.json --format text
done

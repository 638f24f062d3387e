#!/usr/bin/env bash
# The whole test suite, from a fresh machine: installs what it needs (idempotent),
# then lints, builds once in release, and runs every test. `.ci/run` calls this.
#
# wasmtime is compiled once per run: tests, benches and the CLI all use the
# release profile (benches inherit it), so nothing here triggers a debug build.
set -euo pipefail
cd "$(dirname "$0")/.."
root="$PWD"

step() { printf '\n==> %s\n' "$*"; }

step "system packages"
need_apt=()
command -v prometheus-pushgateway >/dev/null || need_apt+=(prometheus-pushgateway)
command -v promtool >/dev/null || need_apt+=(prometheus)
command -v curl >/dev/null || need_apt+=(curl)
command -v python3 >/dev/null || need_apt+=(python3)
command -v chromium >/dev/null || need_apt+=(chromium)
if ((${#need_apt[@]})); then
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}"
fi

step "Python packages the tests run against"
# awslambdaric: the real Lambda runtime client; the web frameworks and servers:
# `pyrometer run` and the probe's middleware are tested against the real ones.
# gevent and packaging: gunicorn's gevent worker class.
python3 -c "import awslambdaric, flask, django, fastapi, httpx, gunicorn, uvicorn, gevent, packaging" 2>/dev/null ||
    python3 -m pip install -q awslambdaric flask django fastapi httpx gunicorn uvicorn gevent packaging

step "Rust toolchain (pinned by rust-toolchain.toml) and the wasm32-wasip2 target"
rustup show active-toolchain >/dev/null 2>&1 || rustup toolchain install
rustup target add wasm32-wasip2
rustup component add rustfmt clippy

step "format"
cargo fmt --all --check
for ws in plugins tests/guests; do (cd "$ws" && cargo fmt --all --check); done

step "clippy (host workspace, then the wasm guests)"
cargo clippy --release --workspace --all-targets -- -D warnings
for ws in plugins tests/guests; do
    (cd "$ws" && CARGO_TARGET_DIR="$root/target/guests/clippy-${ws//\//-}" cargo clippy --release --target wasm32-wasip2 -- -D warnings)
done

step "build"
cargo build --release --workspace --bins

step "Rust tests (host, end-to-end with compiled plugins)"
cargo test --release --workspace --no-fail-fast

step "plugin and plugin-kit unit tests (native)"
(cd plugins && CARGO_TARGET_DIR="$root/target/guests/kit-native" cargo test --target x86_64-unknown-linux-gnu)

step "Python probe tests on every CPython Lambda runs (3.9 - 3.13)"
host/python/run-tests.sh

step "benchmarks compile"
cargo bench --workspace --no-run

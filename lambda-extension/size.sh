#!/usr/bin/env bash
# Builds the lean extension the layer ships (`--profile dist`: LTO, one codegen
# unit, stripped, and no WebAssembly compiler) and prints its size against the
# release build's. With `--bench`, also measures its start-up (exec → first
# `next`) and peak RSS with 0 and 4 precompiled plugins.
#
#   lambda-extension/size.sh [--bench]
#
# `-p pyrometer-extension` must be built alone: built together with the
# `pyrometer` CLI, cargo unifies features and the extension gets the compiler too.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"

cargo build --release -p pyrometer -p pyrometer-extension
cargo build --profile dist -p pyrometer-extension

release="$target/release/pyrometer-extension"
dist="$target/dist/pyrometer-extension"
stripped="$(mktemp)"
trap 'rm -f "$stripped"' EXIT
strip -o "$stripped" "$release"

mb() { awk -v b="$(stat -c %s "$1")" 'BEGIN { printf "%6.1f MB (%d bytes)", b / 1e6, b }'; }
echo "release          $(mb "$release")"
echo "release, strip   $(mb "$stripped")"
echo "dist (layer)     $(mb "$dist")   (lto, codegen-units=1, strip, no compiler: .cwasm plugins only)"

if [[ "${1:-}" == "--bench" ]]; then
    PYROMETER_EXTENSION_BIN="$dist" cargo bench -p pyrometer-tests --bench extension
fi

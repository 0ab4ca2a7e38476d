#!/usr/bin/env bash
# Sets up and runs every check and test: formatting, lints, unit, integration and process tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

echo "==> cargo fmt --check" >&2
cargo fmt --all -- --check
echo "==> cargo clippy (all targets, warnings are errors)" >&2
cargo clippy --locked --workspace --all-targets -- -D warnings
echo "==> the protocol and the widget build for wasm32 (clippy, warnings are errors)" >&2
cargo clippy --locked -p keebai-protocol -p keebai-widget --target wasm32-unknown-unknown -- -D warnings
echo "==> cargo test" >&2
cargo test --locked --workspace

#!/usr/bin/env bash
# Sets up and runs every check and test: formatting, lints, unit, integration and process tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

echo "==> cargo fmt --check" >&2
cargo fmt --all -- --check
echo "==> cargo clippy (all targets, warnings are errors)" >&2
cargo clippy --locked --workspace --all-targets -- -D warnings
echo "==> keebai-protocol builds for wasm32" >&2
cargo check --locked -p keebai-protocol --target wasm32-unknown-unknown
echo "==> cargo test" >&2
cargo test --locked --workspace

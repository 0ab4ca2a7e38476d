#!/usr/bin/env bash
# Sets up and runs every check and test: formatting, lints, unit, integration, process, terminal
# and browser tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# The web toolchain: wasm32, Trunk, wasm-bindgen(-test-runner), wasm-opt, chromium + chromedriver.
eval "$(bash scripts/setup-web.sh)"

echo "==> cargo fmt --check" >&2
cargo fmt --all -- --check
echo "==> cargo clippy (all targets, warnings are errors)" >&2
cargo clippy --locked --workspace --all-targets -- -D warnings
echo "==> the protocol and the widget build for wasm32 (clippy, warnings are errors)" >&2
cargo clippy --locked -p keebai-protocol -p keebai-widget --target wasm32-unknown-unknown -- -D warnings
echo "==> cargo test" >&2
cargo test --locked --workspace
echo "==> widget tests in headless Chromium" >&2
CHROMEDRIVER=/usr/bin/chromedriver \
CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
    cargo test --locked -p keebai-widget --target wasm32-unknown-unknown --test browser

#!/usr/bin/env bash
# Sets up and runs every check and test: formatting, lints, the release builds' certificate check,
# unit, integration, process (incl. the real linker against the fake WhatsApp server), terminal
# and browser tests, schema fuzzing of /v1, and the end-to-end tests of the dashboard (debug and
# release builds) and of the release server binary.
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
echo "==> release builds trust only WhatsApp's certificates" >&2
bash scripts/check-release.sh
echo "==> cargo test" >&2
cargo test --locked --workspace --exclude keebai-e2e
echo "==> schema fuzzing of /v1 (schemathesis)" >&2
bash scripts/fuzz-api.sh
echo "==> widget tests in headless Chromium" >&2
CHROMEDRIVER=/usr/bin/chromedriver \
CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
    cargo test --locked -p keebai-widget --target wasm32-unknown-unknown --test browser
echo "==> the dashboard built by Trunk, debug and release (wasm-opt)" >&2
e2e_dist="${CARGO_TARGET_DIR:-target}/e2e"
trunk build --offline --dist "$e2e_dist/dist-debug"
trunk build --offline --release --dist "$e2e_dist/dist-release"
echo "==> end to end: the dashboard in headless Chromium against the real server" >&2
KEEBAI_E2E_DIST_DEBUG="$(realpath "$e2e_dist/dist-debug")" \
KEEBAI_E2E_DIST_RELEASE="$(realpath "$e2e_dist/dist-release")" \
KEEBAI_E2E_RELEASE_SERVER="$(realpath "${CARGO_TARGET_DIR:-target}/release/keebai-server")" \
CHROMEDRIVER=/usr/bin/chromedriver \
    cargo test --locked -p keebai-e2e

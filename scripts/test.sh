#!/usr/bin/env bash
# Sets up and runs every check and test: formatting, lints, the release builds' certificate check,
# unit, integration, process (incl. the real linker against the fake WhatsApp server), terminal
# and browser tests, schema fuzzing of /v1, and the end-to-end tests of the dashboard (debug and
# release builds) and of the release server binary.
#
# One build serves every step it can: the native build of every target is compiled once, with
# clippy-driver as the compiler of the workspace's crates (so it is also the lint), and a single
# `cargo test --workspace` (the end-to-end crate included) runs it; the schema fuzzer runs the
# `keebai-server` binary that build made. Only the release builds (scripts/check-release.sh,
# which must resolve features exactly as they ship) and the wasm builds differ. Each phase prints
# its time (`==> [1m05s] name`) and a summary table ends the run, on failure too.
set -euo pipefail
cd "$(dirname "$0")/.."
target="${CARGO_TARGET_DIR:-target}"

# --- phase timing ----------------------------------------------------------------------------
phase_names=()
phase_secs=()
phase_now=""
phase_start=0
run_start=$SECONDS
fmt_secs() { printf '%dm%02ds' $(($1 / 60)) $(($1 % 60)); }
# phase NAME: ends the running phase (printing its time) and starts NAME.
phase() {
    end_phase
    phase_now="$1"
    phase_start=$SECONDS
    printf '==> %s\n' "$phase_now" >&2
}
end_phase() {
    [[ -n "$phase_now" ]] || return 0
    local secs=$((SECONDS - phase_start))
    phase_names+=("$phase_now")
    phase_secs+=("$secs")
    printf '==> [%s] %s\n' "$(fmt_secs "$secs")" "$phase_now" >&2
    phase_now=""
}
summary() {
    local status=$? i failed=""
    if [[ -n "${KEEBAI_TEST_POSTGRES_DIR:-}" ]]; then
        bash scripts/postgres.sh stop "$KEEBAI_TEST_POSTGRES_DIR" 2>/dev/null || true
    fi
    if [[ -n "$phase_now" ]]; then
        failed="$phase_now"
        end_phase
    fi
    {
        printf '\n==> phase times\n'
        for i in "${!phase_names[@]}"; do
            printf '  %8s  %s\n' "$(fmt_secs "${phase_secs[$i]}")" "${phase_names[$i]}"
        done
        printf '  %8s  total\n' "$(fmt_secs $((SECONDS - run_start)))"
        if [[ $status -ne 0 ]]; then
            printf '==> FAILED (exit %d)%s\n' "$status" "${failed:+ in: $failed}"
        fi
    } >&2
}
trap summary EXIT

# waproto's build script writes `whatsapp.local.desc` into its OUT_DIR and registers that same
# file as an input (rerun-if-changed). Written during the script's first run, it is newer than
# the run itself, so the next cargo invocation finds the script stale, reruns it and rebuilds
# waproto and everything above it: 1 min 44 s of the debug tests and 4 min 52 s of the release
# check, once per fresh target dir (CARGO_LOG=cargo::core::compiler::fingerprint=info shows
# "stale: changed …/out/whatsapp.local.desc"). The file is derived from the script's real
# inputs, which cargo still tracks, so dating it back after a build loses nothing.
settle_waproto() {
    find "$target" -path '*/build/waproto-*/out/whatsapp.local.desc' \
        -exec touch -d @1000000000 {} + 2>/dev/null || true
}

# --- tools -----------------------------------------------------------------------------------
phase "setup: Rust components, crates"
bash scripts/setup.sh
phase "setup: web toolchain (wasm32, Trunk, wasm-bindgen, wasm-opt, chromium)"
# Assigned first, so that a failing setup stops the run (`eval "$(...)"` would hide it).
web_env="$(bash scripts/setup-web.sh)"
eval "$web_env"
phase "setup: webhook receivers (standardwebhooks from PyPI and npm)"
receivers_env="$(bash scripts/setup-receivers.sh)"
eval "$receivers_env"

# --- static checks ---------------------------------------------------------------------------
phase "cargo fmt --check"
cargo fmt --all -- --check
phase "build every native target, linted by clippy as it compiles (warnings are errors)"
# `cargo clippy` is `cargo check` with clippy-driver as the compiler of the workspace's crates
# (RUSTC_WORKSPACE_WRAPPER, lint flags in CLIPPY_ARGS). A check builds every dependency a second
# time, as metadata only, which on 2 cores cost 7 minutes from empty; here clippy-driver
# compiles the workspace's crates for real, so one build is linted, tested and fuzzed. The same
# variables are set for `cargo test` below, or cargo would rebuild the workspace's crates.
# `--all-targets` adds the benches and examples to what `cargo test` builds.
lint_env=(RUSTC_WORKSPACE_WRAPPER="$(command -v clippy-driver)" CLIPPY_ARGS=-Dwarnings)
env "${lint_env[@]}" cargo test --locked --workspace --all-targets --no-run
settle_waproto
phase "clippy for wasm32: the protocol and the widget, its browser tests too (warnings are errors)"
cargo clippy --locked -p keebai-protocol -p keebai-widget --target wasm32-unknown-unknown \
    --all-targets -- -D warnings

# --- builds the tests need -------------------------------------------------------------------
phase "release builds trust only WhatsApp's certificates (scripts/check-release.sh)"
bash scripts/check-release.sh
settle_waproto
phase "the dashboard built by Trunk, debug"
e2e_dist="$target/e2e"
trunk build --offline --dist "$e2e_dist/dist-debug"
phase "the dashboard built by Trunk, release (wasm-opt)"
trunk build --offline --release --dist "$e2e_dist/dist-release"

# --- tests -----------------------------------------------------------------------------------
phase "a throwaway Postgres for the tests of the Postgres backend (scripts/postgres.sh)"
# Installs Debian's postgresql when missing; stopped and deleted when this script exits.
pg_env="$(bash scripts/postgres.sh start)"
eval "$pg_env"
phase "cargo test --workspace (unit, integration, process, terminal; end to end in Chromium)"
# The end-to-end tests (crate keebai-e2e) read the two dashboards and the release server from
# these variables, and fail with a message naming them when one is unset.
KEEBAI_E2E_DIST_DEBUG="$(realpath "$e2e_dist/dist-debug")" \
KEEBAI_E2E_DIST_RELEASE="$(realpath "$e2e_dist/dist-release")" \
KEEBAI_E2E_RELEASE_SERVER="$(realpath "$target/release/keebai-server")" \
CHROMEDRIVER=/usr/bin/chromedriver \
    env "${lint_env[@]}" cargo test --locked --workspace
phase "schema fuzzing of /v1 (schemathesis), on the server cargo test built"
KEEBAI_FUZZ_SERVER="$(realpath "$target/debug/keebai-server")" bash scripts/fuzz-api.sh
phase "widget tests in headless Chromium"
CHROMEDRIVER=/usr/bin/chromedriver \
CARGO_TARGET_WASM32_UNKNOWN_UNKNOWN_RUNNER=wasm-bindgen-test-runner \
    cargo test --locked -p keebai-widget --target wasm32-unknown-unknown --test browser
end_phase

#!/usr/bin/env bash
# Installs what building and browser-testing the Leptos CSR widget with Trunk needs: the wasm32
# target, trunk, wasm-bindgen-cli (same version as Cargo.lock), wasm-opt (npm binaryen, in a
# project-independent prefix) and Debian's chromium + chromedriver. Idempotent: every step checks
# first, so a second run takes a few seconds. Nothing is downloaded except from crates.io, npm and
# apt, so trunk can then run with --offline.
#
#   scripts/setup-web.sh                 install, then print an `export PATH=...` line on stdout
#   eval "$(scripts/setup-web.sh)"       install and set PATH in the current shell
#   source scripts/setup-web.sh          the same
#
# KEEBAI_TOOLS overrides the tools prefix (default: ~/.cache/keebai/tools).

KEEBAI_TOOLS="${KEEBAI_TOOLS:-$HOME/.cache/keebai/tools}"

# Prints $PATH with the tools' bin dir and ~/.cargo/bin in front (once each).
_keebai_web_path() {
    local front="$KEEBAI_TOOLS/node_modules/.bin:$HOME/.cargo/bin" rest=":$PATH:" dir
    for dir in "$KEEBAI_TOOLS/node_modules/.bin" "$HOME/.cargo/bin"; do
        while [[ "$rest" == *":$dir:"* ]]; do rest="${rest/":$dir:"/:}"; done
    done
    rest="${rest#:}"
    rest="${rest%:}"
    printf '%s\n' "$front${rest:+:$rest}"
}

if [[ "${BASH_SOURCE[0]}" != "$0" ]]; then
    # Sourced: install in a child bash, so set -euo pipefail and any cd stay out of the caller.
    if KEEBAI_TOOLS="$KEEBAI_TOOLS" bash "${BASH_SOURCE[0]}" >/dev/null; then
        PATH="$(_keebai_web_path)"
        export PATH KEEBAI_TOOLS
        hash -r
        return 0
    else
        return 1
    fi
fi

set -euo pipefail

# Tool output goes to stderr; stdout carries only the final `export PATH=...` line.
say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
PATH="$(_keebai_web_path)"
export PATH

command -v cargo >/dev/null 2>&1 || die "cargo not found: install Rust with rustup (https://rustup.rs)"

# 1. wasm32 target
if ! rustup target list --installed | grep -qx 'wasm32-unknown-unknown'; then
    say "rustup target add wasm32-unknown-unknown"
    rustup target add wasm32-unknown-unknown
fi

# Chromium comes from apt, which mostly waits on the network: it runs in the background while
# cargo compiles the tools below, and step 5 waits for it.
apt_pid=""
apt_log="$(mktemp -t keebai-apt.XXXXXX)"
trap 'rm -f "$apt_log"' EXIT
if [[ ! -x /usr/bin/chromium || ! -x /usr/bin/chromedriver ]]; then
    sudo=""
    [[ "$(id -u)" == 0 ]] || sudo="sudo"
    say "apt-get install chromium chromium-driver (in the background)"
    (
        $sudo apt-get update \
            && DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends \
                chromium chromium-driver
    ) >"$apt_log" 2>&1 &
    apt_pid=$!
fi

# The tools are built for speed of building, not of running: their own release profiles ask for
# LTO and full optimisation, which on 2 cores costs several minutes each and buys nothing that a
# test run notices (trunk orchestrates; wasm-bindgen gets opt-level 1 since it rewrites the wasm).
# Both share one build dir, so their common crates compile once; it is removed afterwards.
tools_build="$KEEBAI_TOOLS/cargo-build"
tool_install() {
    local opt_level="$1"
    shift
    env CARGO_TARGET_DIR="$tools_build" \
        CARGO_PROFILE_RELEASE_OPT_LEVEL="$opt_level" \
        CARGO_PROFILE_RELEASE_LTO=false \
        CARGO_PROFILE_RELEASE_CODEGEN_UNITS=16 \
        CARGO_PROFILE_RELEASE_DEBUG=false \
        CARGO_PROFILE_RELEASE_INCREMENTAL=false \
        cargo install "$@" >&2
}

# 2. trunk (0.22 needs a newer rustc)
trunk_version="0.21.14"
if [[ "$(trunk --version 2>/dev/null || true)" != "trunk $trunk_version" ]]; then
    say "cargo install trunk --version $trunk_version --locked"
    tool_install 0 trunk --version "$trunk_version" --locked
fi

# 3. wasm-bindgen-cli, exactly the wasm-bindgen version in Cargo.lock. Not --locked: its own
#    lockfile pins a crate version the registry lacks.
wb_version="$(awk -F'"' '$0 == "name = \"wasm-bindgen\"" { getline; print $2; exit }' "$root/Cargo.lock")"
[[ -n "$wb_version" ]] || die "no wasm-bindgen package in $root/Cargo.lock"
if [[ "$(wasm-bindgen --version 2>/dev/null || true)" != "wasm-bindgen $wb_version" ]]; then
    say "cargo install wasm-bindgen-cli --version $wb_version"
    tool_install 1 wasm-bindgen-cli --version "$wb_version" --force
fi
rm -rf "$tools_build"

# 4. wasm-opt from npm binaryen (Debian's binaryen 108 produces broken bundles)
binaryen_version="132.0.0"
binaryen_pkg="$KEEBAI_TOOLS/node_modules/binaryen/package.json"
have_binaryen="$(node -p "require(process.argv[1]).version" "$binaryen_pkg" 2>/dev/null || true)"
if [[ "$have_binaryen" != "$binaryen_version" || ! -x "$KEEBAI_TOOLS/node_modules/.bin/wasm-opt" ]]; then
    say "npm install --prefix $KEEBAI_TOOLS binaryen@$binaryen_version"
    mkdir -p "$KEEBAI_TOOLS"
    npm install --prefix "$KEEBAI_TOOLS" --no-audit --no-fund --loglevel=error "binaryen@$binaryen_version" >&2
fi
hash -r
[[ "$(command -v wasm-opt)" == "$KEEBAI_TOOLS/node_modules/.bin/wasm-opt" ]] \
    || die "wasm-opt resolves to $(command -v wasm-opt), not $KEEBAI_TOOLS/node_modules/.bin/wasm-opt"
wasm_opt_out="$(wasm-opt --version)"
[[ "$wasm_opt_out" =~ version\ ${binaryen_version%%.*}([^0-9]|$) ]] \
    || die "wasm-opt --version printed '$wasm_opt_out', expected version ${binaryen_version%%.*}"

# 5. chromium + chromedriver from Debian (started in the background above)
if [[ -n "$apt_pid" ]]; then
    if ! wait "$apt_pid"; then
        cat "$apt_log" >&2
        die "apt-get install chromium chromium-driver failed (its output is above)"
    fi
    say "apt-get install chromium chromium-driver: done"
fi
# (2>/dev/null: Debian's launcher prints a harmless /etc/chromium.d/dev-shm warning.)
chromium_major="$(/usr/bin/chromium --version 2>/dev/null | grep -oE '[0-9]+\.[0-9.]+' | head -n1 | cut -d. -f1)"
driver_major="$(/usr/bin/chromedriver --version | grep -oE '[0-9]+\.[0-9.]+' | head -n1 | cut -d. -f1)"
[[ -n "$chromium_major" && "$chromium_major" == "$driver_major" ]] \
    || die "chromium major version '$chromium_major' differs from chromedriver '$driver_major'"

say "ok: trunk $trunk_version, wasm-bindgen $wb_version, wasm-opt ${binaryen_version%%.*}, chromium/chromedriver $chromium_major"
printf 'export PATH="%s"\n' "$PATH"

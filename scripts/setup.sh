#!/usr/bin/env bash
# Installs what building and testing keebai needs on a fresh Debian machine. Idempotent: each
# step checks first, so a second run takes a second or two.
set -euo pipefail

say() { printf '==> %s\n' "$*" >&2; }

if ! command -v cargo >/dev/null 2>&1; then
    if [ -x "$HOME/.cargo/bin/cargo" ]; then
        export PATH="$HOME/.cargo/bin:$PATH"
    else
        echo "cargo not found: install Rust 1.95 or newer with rustup (https://rustup.rs)" >&2
        exit 1
    fi
fi

need_rust="1.95.0"
have_rust="$(rustc --version | awk '{print $2}')"
if [ "$(printf '%s\n%s\n' "$need_rust" "$have_rust" | sort -V | head -n1)" != "$need_rust" ]; then
    echo "rustc $have_rust is older than $need_rust; run: rustup update stable" >&2
    exit 1
fi

# A C toolchain: SQLite and jemalloc (the server's allocator) are built from source.
if ! command -v cc >/dev/null 2>&1 || ! command -v make >/dev/null 2>&1; then
    sudo=""
    [[ "$(id -u)" == 0 ]] || sudo="sudo"
    say "apt-get install build-essential"
    $sudo apt-get update >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends build-essential >&2
fi

# rustfmt and clippy are part of the test command.
for component in rustfmt clippy; do
    if ! rustup component list --installed 2>/dev/null | grep -q "^$component"; then
        say "rustup component add $component"
        rustup component add "$component"
    fi
done

# The protocol crate also builds for the browser (the widget uses it).
if ! rustup target list --installed 2>/dev/null | grep -q '^wasm32-unknown-unknown$'; then
    say "rustup target add wasm32-unknown-unknown"
    rustup target add wasm32-unknown-unknown
fi

say "fetching crates"
cargo fetch --locked >/dev/null

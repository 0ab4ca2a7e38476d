#!/usr/bin/env bash
# Builds keebai-server and keebai-cli as they ship (release, as scripts/run.sh and the README
# build them) and fails if either could accept a fake WhatsApp server: whatsapp-rust's
# `danger-skip-cert-chain-verify` is for tests only and may appear only in [dev-dependencies]
# (shared/WHATSAPP.md). Two checks:
#   1. the release dependency graph (what cargo resolves for `cargo build --release -p X`) enables
#      no `danger-skip` feature of any crate;
#   2. the built server binary itself verifies WhatsApp's certificate chains
#      (`keebai-server check-build` presents a zero-signed chain and exits 1 if it passes).
set -euo pipefail
cd "$(dirname "$0")/.."
say() { printf '==> %s\n' "$*" >&2; }

target="${CARGO_TARGET_DIR:-target}"
for package in keebai-server keebai-cli; do
    graph="$(cargo tree --locked -p "$package" -e normal,build --target all --prefix none -f '{p} {f}')"
    leaked="$(grep -E 'danger-skip' <<<"$graph" || true)"
    if [ -n "$leaked" ]; then
        echo "the release build of $package enables a test-only feature:" >&2
        echo "$leaked" | sort -u >&2
        exit 1
    fi
    say "$package: no danger-skip feature in its release dependency graph"
done
# Built one at a time, exactly like the README's commands: features unify per build.
cargo build --locked --release --quiet -p keebai-server
cargo build --locked --release --quiet -p keebai-cli
"$target/release/keebai-server" check-build >&2

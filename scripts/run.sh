#!/usr/bin/env bash
# Sets up and runs keebai QR connect on http://127.0.0.1:8080 (data in ./data).
#
# It pairs real WhatsApp linked devices; KEEBAI_LINKER=simulated runs the declared demo device
# instead (see README). On first start it creates a token for account `demo` with every scope
# and keeps it in data/demo.token (0600).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
# Trunk, wasm-bindgen, wasm-opt and chromium (installed once; later runs take seconds).
eval "$(bash scripts/setup-web.sh)"
trunk build --release --offline
export KEEBAI_DIST_DIR="${KEEBAI_DIST_DIR:-$PWD/dist}"

export KEEBAI_DATA_DIR="${KEEBAI_DATA_DIR:-./data}"
export KEEBAI_LINKER="${KEEBAI_LINKER:-whatsapp}"

cargo build --release --locked -p keebai-server
server=target/release/keebai-server
if [ -n "${CARGO_TARGET_DIR:-}" ]; then server="$CARGO_TARGET_DIR/release/keebai-server"; fi

mkdir -p "$KEEBAI_DATA_DIR"
token_file="$KEEBAI_DATA_DIR/demo.token"
if [ ! -s "$token_file" ]; then
    (umask 077 && "$server" token create --account demo \
        --scope channels:connect --scope channels:read --scope messages:send >"$token_file")
fi

cat >&2 <<MSG

keebai QR connect on http://${KEEBAI_LISTEN:-127.0.0.1:8080}  (linker: $KEEBAI_LINKER)
Open http://${KEEBAI_LISTEN:-127.0.0.1:8080}/ for the dashboard with the widget.
A token for account "demo" is in $token_file; try:
  curl -s -X POST http://${KEEBAI_LISTEN:-127.0.0.1:8080}/v1/channels/whatsapp/connect \\
       -H "Authorization: Bearer \$(cat $token_file)" -H 'Content-Type: application/json' -d '{"mode":"qr"}'
Stop with Ctrl-C.

MSG
exec "$server" serve

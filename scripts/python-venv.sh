#!/usr/bin/env bash
# Makes sure Debian's python3 can create venvs (installs python3-venv when it cannot). Used by
# the scripts that keep Python tools in venvs of their own (fuzz-api.sh, setup-receivers.sh).
set -euo pipefail
if ! /usr/bin/python3 -c 'import ensurepip' 2>/dev/null; then
    sudo=""
    [[ "$(id -u)" == 0 ]] || sudo="sudo"
    printf '==> apt-get install python3-venv\n' >&2
    $sudo apt-get update >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends python3-venv >&2
fi

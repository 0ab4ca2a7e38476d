#!/usr/bin/env bash
# Installs the webhook receivers' libraries, the ones a customer would use to check keebai's
# signatures: `standardwebhooks` from PyPI (in its own venv) and from npm. Idempotent: a second
# run only checks the versions. Prints the variables the tests read:
#   eval "$(bash scripts/setup-receivers.sh)"
set -euo pipefail
cd "$(dirname "$0")/.."

python_version="1.1.0"
node_version="1.1.1"
tools="${KEEBAI_TOOLS:-$HOME/.cache/keebai/tools}"
venv="$tools/receivers-venv"
node_prefix="$tools/receivers-node"
say() { printf '==> %s\n' "$*" >&2; }
mkdir -p "$tools"

bash scripts/python-venv.sh
have="$("$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("standardwebhooks"))' 2>/dev/null || true)"
if [[ "$have" != "$python_version" ]]; then
    say "pip install standardwebhooks==$python_version"
    rm -rf "$venv"
    /usr/bin/python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "standardwebhooks==$python_version" >&2
fi

if ! command -v npm >/dev/null 2>&1; then
    bash scripts/setup-web.sh >/dev/null # installs Node.js and npm
fi
package="$node_prefix/node_modules/standardwebhooks/package.json"
have="$(node -p "require(process.argv[1]).version" "$package" 2>/dev/null || true)"
if [[ "$have" != "$node_version" ]]; then
    say "npm install standardwebhooks@$node_version"
    npm install --prefix "$node_prefix" --no-audit --no-fund --loglevel=error \
        "standardwebhooks@$node_version" >&2
fi

printf 'export KEEBAI_RECEIVER_PYTHON=%q\n' "$venv/bin/python"
printf 'export KEEBAI_RECEIVER_NODE_PATH=%q\n' "$node_prefix/node_modules"

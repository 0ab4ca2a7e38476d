#!/usr/bin/env bash
# A throwaway PostgreSQL server for the tests of cluster mode: its own data dir and socket dir in
# a temp dir, a free loopback port, trust authentication, no fsync (the data dies with it).
# Installs Debian's postgresql when no server is on the machine. `initdb` refuses to run as root,
# so as root the server runs as the `postgres` user.
#
#   scripts/postgres.sh start     start one; prints `export KEEBAI_TEST_DATABASE_URL=...` and
#                                 `export KEEBAI_TEST_POSTGRES_DIR=...` on stdout
#   scripts/postgres.sh restart DIR  restart the one in DIR (a test of what survives that)
#   scripts/postgres.sh stop DIR  stop the one in DIR and delete DIR
#
#   eval "$(scripts/postgres.sh start)"; ...; scripts/postgres.sh stop "$KEEBAI_TEST_POSTGRES_DIR"
set -euo pipefail

say() { printf '==> %s\n' "$*" >&2; }
die() { printf 'error: %s\n' "$*" >&2; exit 1; }

# The newest installed server's bin dir (Debian keeps them in /usr/lib/postgresql/<major>/bin).
pg_bin() {
    local dir
    dir="$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n1 || true)"
    [[ -n "$dir" && -x "$dir/initdb" && -x "$dir/pg_ctl" ]] && printf '%s\n' "$dir"
}

# Runs a command as the server's owner: `postgres` when we are root, else ourselves.
as_owner() {
    if [[ "$(id -u)" == 0 ]]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

start() {
    local bin
    if ! bin="$(pg_bin)"; then
        local sudo=""
        [[ "$(id -u)" == 0 ]] || sudo="sudo"
        say "apt-get install postgresql"
        $sudo apt-get update >&2
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y --no-install-recommends postgresql >&2
        bin="$(pg_bin)" || die "postgresql is installed but no initdb/pg_ctl is in /usr/lib/postgresql/*/bin"
    fi

    local dir port
    dir="$(mktemp -d -t keebai-postgres.XXXXXX)"
    chmod 0755 "$dir"
    mkdir "$dir/data" "$dir/socket"
    [[ "$(id -u)" != 0 ]] || chown postgres: "$dir/data" "$dir/socket"
    # A free port: bind port 0 and read what the kernel chose (a race with another process that
    # binds it in between is possible but harmless: pg_ctl then fails and says so).
    port="$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')"

    as_owner "$bin/initdb" --pgdata="$dir/data" --username=postgres --auth=trust \
        --encoding=UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
        || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
    # max_connections: every test server opens a pool of its own, and tests run in parallel.
    as_owner "$bin/pg_ctl" --pgdata="$dir/data" --log="$dir/data/server.log" --wait --timeout=30 \
        -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$dir/socket -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=500" \
        start >&2 \
        || { cat "$dir/data/server.log" >&2 || true; die "the test postgres did not start"; }
    say "postgres on 127.0.0.1:$port (data in $dir)"
    printf 'export KEEBAI_TEST_DATABASE_URL=%q\n' "postgres://postgres@127.0.0.1:$port/postgres"
    printf 'export KEEBAI_TEST_POSTGRES_DIR=%q\n' "$dir"
}

stop() {
    local dir="${1:-}" bin
    [[ -n "$dir" && -d "$dir/data" ]] || die "usage: $0 stop DIR (the KEEBAI_TEST_POSTGRES_DIR that start printed)"
    bin="$(pg_bin)" || die "no postgresql server installed"
    as_owner "$bin/pg_ctl" --pgdata="$dir/data" --mode=immediate --wait stop >&2 || true
    rm -rf "$dir"
}

restart() {
    local dir="${1:-}" bin
    [[ -n "$dir" && -d "$dir/data" ]] || die "usage: $0 restart DIR"
    bin="$(pg_bin)" || die "no postgresql server installed"
    as_owner "$bin/pg_ctl" --pgdata="$dir/data" --log="$dir/data/server.log" --mode=fast \
        --wait --timeout=30 restart >&2
}

case "${1:-}" in
    start) start ;;
    restart) restart "${2:-}" ;;
    stop) stop "${2:-}" ;;
    *) die "usage: $0 start | restart DIR | stop DIR" ;;
esac

#!/usr/bin/env bash
# A throw-away PostgreSQL cluster for the store tests.
#
#   eval "$(bash .ci/postgres.sh start)"   # prints `export BANDITKIT_TEST_POSTGRES_URL=...` and
#                                          # `export BANDITKIT_PG_DIR=...`
#   bash .ci/postgres.sh stop "$BANDITKIT_PG_DIR"
#
# `start` installs Debian's `postgresql` package when no initdb is found (as root; pass
# --no-install to fail instead), runs initdb into a new temporary folder (as the `postgres` user
# when run by root: initdb refuses root), and starts the server on a free port of 127.0.0.1 with
# its Unix socket in that folder, trust authentication, and one database `banditkit_test`.
# Everything it prints to stdout is shell to eval; progress goes to stderr.
set -euo pipefail
export PATH="$PATH:/usr/sbin:/sbin"  # runuser

find_bin_dir() {
    if command -v initdb > /dev/null 2>&1; then
        dirname "$(readlink -f "$(command -v initdb)")"
        return
    fi
    # Debian keeps the binaries off PATH, one folder per major version.
    local found
    found=$(ls -d /usr/lib/postgresql/*/bin 2> /dev/null | sort -V | tail -n 1 || true)
    if [ -n "$found" ] && [ -x "$found/initdb" ]; then
        echo "$found"
    fi
}

as_owner() {
    # Run a command as the cluster's owner: `postgres` when we are root, else ourselves.
    if [ "$(id -u)" = 0 ]; then
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

start() {
    local install=1
    [ "${1:-}" = "--no-install" ] && install=0
    local bin
    bin=$(find_bin_dir)
    if [ -z "$bin" ]; then
        if [ "$install" = 0 ] || [ "$(id -u)" != 0 ]; then
            echo "postgres.sh: initdb not found (install Debian's postgresql package)" >&2
            exit 1
        fi
        echo "postgres.sh: installing Debian's postgresql package" >&2
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq >&2
        apt-get install -y -qq postgresql >&2
        bin=$(find_bin_dir)
        [ -n "$bin" ] || { echo "postgres.sh: initdb still missing after install" >&2; exit 1; }
    fi
    local dir port
    dir=$(mktemp -d "${TMPDIR:-/tmp}/banditkit-pg.XXXXXX")
    # A start that fails half-way stops what it started and leaves no folder behind.
    trap 'stop "$dir"' EXIT
    chmod 755 "$dir"
    [ "$(id -u)" = 0 ] && chown postgres: "$dir"
    port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
    as_owner "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --no-instructions \
        > "$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; exit 1; }
    as_owner "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 60 \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c max_connections=100" start >&2 \
        || { cat "$dir/server.log" >&2; exit 1; }
    as_owner "$bin/createdb" -h 127.0.0.1 -p "$port" -U postgres banditkit_test >&2
    trap - EXIT
    echo "export BANDITKIT_TEST_POSTGRES_URL=postgresql://postgres@127.0.0.1:$port/banditkit_test"
    echo "export BANDITKIT_PG_DIR=$dir"
    echo "postgres.sh: PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port ($dir)" >&2
}

stop() {
    local dir=${1:?usage: postgres.sh stop DIR}
    local bin
    bin=$(find_bin_dir)
    if [ -d "$dir/data" ] && [ -n "$bin" ]; then
        as_owner "$bin/pg_ctl" -D "$dir/data" -m fast -w stop > /dev/null 2>&1 || true
    fi
    case "$dir" in
        */banditkit-pg.*) rm -rf "$dir" ;;
        *) echo "postgres.sh: not removing $dir (not made by start)" >&2 ;;
    esac
}

case "${1:-}" in
    start) shift; start "$@" ;;
    stop) shift; stop "$@" ;;
    *) echo "usage: $0 start [--no-install] | stop DIR" >&2; exit 2 ;;
esac

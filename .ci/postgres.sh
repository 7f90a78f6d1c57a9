#!/usr/bin/env bash
# PostgreSQL + pgvector for the pgvector tests, from Debian's packages, in a throwaway data directory.
#
#   eval "$(bash .ci/postgres.sh start)"   # prints `export WINNOW_TEST_PG_DSN=...` and `export WINNOW_PG_DIR=...`
#   bash .ci/postgres.sh stop "$WINNOW_PG_DIR"
#
# Debian 12 ships PostgreSQL 15 but no pgvector binary package (it arrives with Debian 13), so `start`
# builds the pgvector extension from Debian's own source package (trixie's, fetched by apt-get source
# with a private source list; the system's apt sources are left alone) against postgresql-server-dev.
# The server runs as the unprivileged `postgres` user (PostgreSQL refuses root) on a free local port.
set -euo pipefail

log() { echo "postgres.sh: $*" >&2; }

pg_version() { ls /usr/lib/postgresql | sort -n | tail -1; }

install_packages() {
    export DEBIAN_FRONTEND=noninteractive
    if [ ! -x "/usr/lib/postgresql/$(pg_version 2>/dev/null)/bin/initdb" ]; then
        log "installing postgresql"
        apt-get update -qq >&2
        apt-get install -y -qq --no-install-recommends postgresql make gcc >/dev/null
    fi
    local version
    version="$(pg_version)"
    if [ -f "/usr/lib/postgresql/$version/lib/vector.so" ]; then
        return 0
    fi
    if apt-cache show "postgresql-$version-pgvector" >/dev/null 2>&1; then
        log "installing Debian's postgresql-$version-pgvector"
        apt-get install -y -qq --no-install-recommends "postgresql-$version-pgvector" >/dev/null
        return 0
    fi
    if [ ! -f "/usr/include/postgresql/$version/server/postgres.h" ]; then
        log "installing postgresql-server-dev-$version"
        apt-get update -qq >&2
        apt-get install -y -qq --no-install-recommends "postgresql-server-dev-$version" make gcc >/dev/null
    fi
    build_pgvector "/usr/lib/postgresql/$version/bin/pg_config"
}

build_pgvector() {
    log "building pgvector from Debian's source package"
    local work
    work="$(mktemp -d)"
    chmod 755 "$work"
    mkdir -p "$work/lists/partial"
    echo "deb-src http://deb.debian.org/debian trixie main" >"$work/sources.list"
    local apt_opts=(-o "Dir::Etc::sourcelist=$work/sources.list" -o "Dir::Etc::sourceparts=/nonexistent"
        -o "Dir::State::Lists=$work/lists")
    apt-get "${apt_opts[@]}" update -qq >&2
    (cd "$work" && apt-get "${apt_opts[@]}" -qq source --download-only pgvector >/dev/null 2>&1)
    tar -xzf "$work"/pgvector_*.orig.tar.gz -C "$work"
    # OPTFLAGS="" keeps -march=native out, so the library runs on any x86-64 CI machine.
    make -C "$work"/pgvector-*/ PG_CONFIG="$1" OPTFLAGS="" -s >&2
    make -C "$work"/pgvector-*/ PG_CONFIG="$1" install -s >&2
    rm -rf "$work"
}

free_port() {
    python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'
}

start() {
    install_packages
    local bin dir port
    bin="/usr/lib/postgresql/$(pg_version)/bin"
    dir="$(mktemp -d /tmp/winnow-pg.XXXXXX)"
    port="$(free_port)"
    chown postgres:postgres "$dir"
    chmod 700 "$dir"
    runuser -u postgres -- "$bin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 >/dev/null
    runuser -u postgres -- "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
        -o "-p $port -k $dir -c listen_addresses=127.0.0.1" start >/dev/null
    runuser -u postgres -- "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -qc "CREATE DATABASE winnow" >/dev/null
    runuser -u postgres -- "$bin/psql" -h 127.0.0.1 -p "$port" -U postgres -d winnow \
        -qc "CREATE EXTENSION IF NOT EXISTS vector" >/dev/null
    log "PostgreSQL $("$bin/postgres" --version | awk '{print $3}') with pgvector on 127.0.0.1:$port, data in $dir"
    echo "export WINNOW_TEST_PG_DSN='postgresql://postgres@127.0.0.1:$port/winnow'"
    echo "export WINNOW_PG_DIR='$dir'"
}

stop() {
    local dir="${1:?give the directory that start printed as WINNOW_PG_DIR}"
    [ -d "$dir/data" ] || return 0
    runuser -u postgres -- "/usr/lib/postgresql/$(pg_version)/bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null || true
    rm -rf "$dir"
}

case "${1:-}" in
start) start ;;
stop) stop "${2:-}" ;;
*)
    echo "usage: $0 start | stop DIR" >&2
    exit 2
    ;;
esac

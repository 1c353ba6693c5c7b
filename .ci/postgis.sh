#!/usr/bin/env bash
# PostgreSQL + PostGIS for Zeren's tests and local development (Debian packages).
#
#   .ci/postgis.sh install            install postgresql-N + postgresql-N-postgis-3 when missing
#   .ci/postgis.sh start DIR [PORT]   throwaway cluster in DIR on 127.0.0.1:PORT (default 54329);
#                                         prints postgresql://postgres@127.0.0.1:PORT/zeren_test as the
#                                         last line of stdout (everything else goes to stderr)
#   .ci/postgis.sh stop DIR           stop the cluster in DIR (no-op when it is not running)
#   .ci/postgis.sh status DIR         exit 0 when the cluster in DIR is running
#
# The cluster trusts every connection from 127.0.0.1 and listens nowhere else (no Unix socket); fsync is
# off. It is for tests only. Starting again with the same DIR reuses the running server (or restarts it
# from the existing data). ZEREN_PG_MAJOR=NN forces a PostgreSQL major version.
set -euo pipefail

DEFAULT_PORT=54329
DB_NAME=zeren_test
APT_LOG=${TMPDIR:-/tmp}/zeren-postgis-apt.log
export DEBIAN_FRONTEND=noninteractive
# shellcheck source=.ci/apt.sh
source "$(dirname "${BASH_SOURCE[0]}")/apt.sh"

log() { printf 'postgis.sh: %s\n' "$*" >&2; }
die() { printf 'postgis.sh: error: %s\n' "$*" >&2; exit 1; }

usage() {
    sed -n '2,13p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
}

# Major versions with a server installed (initdb present), highest first.
installed_majors() {
    local d
    for d in /usr/lib/postgresql/*/bin/initdb; do
        [ -x "$d" ] || continue
        d=${d#/usr/lib/postgresql/}
        echo "${d%%/*}"
    done | sort -rn
}

has_postgis() { [ -f "/usr/share/postgresql/$1/extension/postgis.control" ]; }

# The major version whose binaries `start` uses: ZEREN_PG_MAJOR, else the highest one with PostGIS,
# else the highest one installed.
pick_major() {
    if [ -n "${ZEREN_PG_MAJOR:-}" ]; then echo "$ZEREN_PG_MAJOR"; return; fi
    local m first=""
    for m in $(installed_majors); do
        [ -n "$first" ] || first=$m
        if has_postgis "$m"; then echo "$m"; return; fi
    done
    [ -n "$first" ] || die "PostgreSQL is not installed; run: .ci/postgis.sh install"
    echo "$first"
}

apt_candidate() {  # prints the candidate version of a Debian package, or nothing
    apt-cache policy "$1" 2>/dev/null | awk '/Candidate:/ { if ($2 != "(none)") print $2 }'
}

cmd_install() {
    local m
    if [ -z "${ZEREN_PG_MAJOR:-}" ]; then
        for m in $(installed_majors); do
            if has_postgis "$m"; then
                log "PostgreSQL $m with PostGIS already installed"
                return 0
            fi
        done
    elif [ -x "/usr/lib/postgresql/$ZEREN_PG_MAJOR/bin/initdb" ] && has_postgis "$ZEREN_PG_MAJOR"; then
        log "PostgreSQL $ZEREN_PG_MAJOR with PostGIS already installed"
        return 0
    fi
    apt_update "$APT_LOG"
    local major="${ZEREN_PG_MAJOR:-}"
    if [ -z "$major" ]; then
        # Prefer a server that is already installed (only PostGIS is missing) ...
        for m in $(installed_majors); do
            if [ -n "$(apt_candidate "postgresql-$m-postgis-3")" ]; then major=$m; break; fi
        done
    fi
    if [ -z "$major" ]; then
        # ... else the distribution's default major version (what the `postgresql` package depends on) ...
        major=$(apt-cache depends postgresql 2>/dev/null | sed -n 's/^ *Depends: postgresql-\([0-9][0-9]*\)$/\1/p' | head -n1)
        if [ -n "$major" ] && [ -z "$(apt_candidate "postgresql-$major-postgis-3")" ]; then major=""; fi
    fi
    if [ -z "$major" ]; then
        # ... else the highest major version for which PostGIS 3 is packaged.
        major=$(apt-cache search --names-only '^postgresql-[0-9]+-postgis-3$' 2>/dev/null \
            | sed -n 's/^postgresql-\([0-9][0-9]*\)-postgis-3 .*/\1/p' | sort -rn | head -n1)
    fi
    [ -n "$major" ] || die "no postgresql-N-postgis-3 package found in the Debian package lists"

    local pkgs=("postgresql-$major-postgis-3")
    [ -x "/usr/lib/postgresql/$major/bin/initdb" ] || pkgs=("postgresql-$major" "${pkgs[@]}")
    apt_install "$APT_LOG" "${pkgs[@]}"
    has_postgis "$major" || die "PostGIS files for PostgreSQL $major missing after install"
    log "PostgreSQL $major with PostGIS installed"
}

# Run a command as the postgres user when we are root (PostgreSQL refuses to run as root).
as_pg() {
    if [ "$(id -u)" = 0 ]; then
        (cd / && runuser -u postgres -- "$@")
    else
        (cd / && "$@")
    fi
}

abs_dir() { realpath -m -- "$1"; }

# PID of the live (not zombie) postmaster that postmaster.pid in DIR names, or nothing. The postmaster's
# working directory is its data directory, which tells a reused PID from ours.
server_pid() {
    local dir=$1 pid st
    [ -f "$dir/postmaster.pid" ] || return 0
    pid=$(head -n 1 "$dir/postmaster.pid")
    [[ "$pid" =~ ^[0-9]+$ ]] || return 0
    st=$(ps -o stat= -p "$pid" 2>/dev/null || true)
    case "$st" in ""|Z*) return 0 ;; esac
    [ "$(readlink "/proc/$pid/cwd" 2>/dev/null)" = "$dir" ] || return 0
    echo "$pid"
}

# Port of the server running from DIR and answering on it, or nothing.
running_port() {
    local dir=$1 bin=$2 port rc=0
    [ -n "$(server_pid "$dir")" ] || return 0
    port=$(sed -n '4p' "$dir/postmaster.pid")
    "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" -t 5 || rc=$?
    # 0: accepting connections, 1: rejecting them (starting up or shutting down)
    if [ "$rc" -le 1 ]; then echo "$port"; fi
}

# Before a start: get rid of a stale postmaster.pid (process gone, a zombie, or its PID reused) and of a
# server process that no longer answers.
clear_stale() {
    local dir=$1 bin=$2 pid i
    [ -f "$dir/postmaster.pid" ] || return 0
    pid=$(server_pid "$dir")
    if [ -z "$pid" ]; then
        log "removing stale $dir/postmaster.pid"
        rm -f "$dir/postmaster.pid"
        return 0
    fi
    for i in $(seq 1 30); do  # it may still be starting or shutting down
        [ -n "$(server_pid "$dir")" ] || { rm -f "$dir/postmaster.pid"; return 0; }
        [ -z "$(running_port "$dir" "$bin")" ] || return 0
        sleep 1
    done
    log "server process $pid of $dir does not answer; stopping it"
    as_pg "$bin/pg_ctl" -D "$dir" -m immediate -w -t 30 stop >&2 || kill -KILL "$pid" 2>/dev/null || true
    sleep 1
    [ -n "$(server_pid "$dir")" ] || rm -f "$dir/postmaster.pid"
}

bin_for_dir() {  # binaries matching an existing cluster's version, else pick_major's
    local dir=$1 major
    if [ -f "$dir/PG_VERSION" ]; then
        major=$(cat "$dir/PG_VERSION")
        [ -x "/usr/lib/postgresql/$major/bin/pg_ctl" ] \
            || die "$dir holds a PostgreSQL $major cluster but PostgreSQL $major is not installed"
    else
        major=$(pick_major)
    fi
    echo "/usr/lib/postgresql/$major/bin"
}

write_config() {
    local dir=$1 port=$2
    cat >"$dir/zeren.conf" <<EOF
# Written by .ci/postgis.sh on every start: a throwaway test cluster.
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = ''
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
log_min_messages = warning
log_line_prefix = '%m [%p] %d '
EOF
    cat >"$dir/pg_hba.conf" <<'EOF'
# Written by .ci/postgis.sh: trust on loopback (127.0.0.1) only; a throwaway test cluster.
# TYPE  DATABASE  USER  ADDRESS       METHOD
host    all       all   127.0.0.1/32  trust
EOF
    grep -q "^include_if_exists = 'zeren.conf'" "$dir/postgresql.conf" \
        || printf "\ninclude_if_exists = 'zeren.conf'\n" >>"$dir/postgresql.conf"
    chown postgres:postgres "$dir/zeren.conf" "$dir/pg_hba.conf" 2>/dev/null || true
}

psql_at() {  # psql_at BIN PORT DB SQL...
    local bin=$1 port=$2 db=$3
    shift 3
    PGCONNECT_TIMEOUT=10 PGOPTIONS="-c client_min_messages=warning" "$bin/psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres -d "$db" "$@"
}

cmd_start() {
    [ $# -ge 1 ] && [ $# -le 2 ] || usage
    local dir port bin cur
    dir=$(abs_dir "$1")
    port=${2:-$DEFAULT_PORT}
    [[ "$port" =~ ^[0-9]+$ ]] || die "bad port: $port"

    if [ "$(id -u)" = 0 ]; then
        id postgres >/dev/null 2>&1 || die "no postgres user; run: .ci/postgis.sh install"
    fi
    mkdir -p -- "$dir"
    [ "$(id -u)" = 0 ] && chown postgres:postgres "$dir"
    chmod 700 "$dir"
    as_pg test -w "$dir" -a -x "$dir" \
        || die "the postgres user cannot write $dir (is a parent directory private to root?)"

    bin=$(bin_for_dir "$dir")

    if [ ! -f "$dir/PG_VERSION" ]; then
        [ -z "$(ls -A -- "$dir")" ] || die "$dir is not empty and holds no PostgreSQL cluster"
        log "initdb $dir ($("$bin/postgres" --version))"
        local initlog
        initlog=$(mktemp)
        as_pg "$bin/initdb" -D "$dir" -U postgres -A trust -E UTF8 --locale=C --no-sync >"$initlog" 2>&1 \
            || { cat "$initlog" >&2; rm -f "$initlog"; die "initdb failed"; }
        rm -f "$initlog"
    fi

    clear_stale "$dir" "$bin"
    cur=$(running_port "$dir" "$bin")
    if [ -n "$cur" ] && [ "$cur" != "$port" ]; then
        log "server in $dir runs on port $cur; restarting it on port $port"
        as_pg "$bin/pg_ctl" -D "$dir" -m fast -w stop >&2
        cur=""
    fi
    if [ -n "$cur" ]; then
        log "reusing the server already running from $dir on port $port"
    else
        if "$bin/pg_isready" -q -h 127.0.0.1 -p "$port" -t 2; then
            die "another server already listens on 127.0.0.1:$port (not the one in $dir); stop it or pick another port"
        fi
        write_config "$dir" "$port"
        log "starting PostgreSQL on 127.0.0.1:$port (data in $dir, log in $dir/server.log)"
        if ! as_pg "$bin/pg_ctl" -D "$dir" -l "$dir/server.log" -w -t 120 start >/dev/null; then
            tail -n 30 "$dir/server.log" >&2 || true
            die "pg_ctl start failed"
        fi
    fi

    if [ "$(psql_at "$bin" "$port" postgres -tAc "SELECT 1 FROM pg_database WHERE datname = '$DB_NAME'")" != 1 ]; then
        psql_at "$bin" "$port" postgres -c "CREATE DATABASE $DB_NAME" >&2
    fi
    psql_at "$bin" "$port" "$DB_NAME" -c "CREATE EXTENSION IF NOT EXISTS postgis" >&2 \
        || die "CREATE EXTENSION postgis failed (is postgresql-N-postgis-3 installed? run: .ci/postgis.sh install)"
    echo "postgresql://postgres@127.0.0.1:$port/$DB_NAME"
}

cmd_stop() {
    [ $# -eq 1 ] || usage
    local dir bin
    dir=$(abs_dir "$1")
    if [ ! -f "$dir/PG_VERSION" ]; then
        log "no cluster in $dir"
        return 0
    fi
    bin=$(bin_for_dir "$dir")
    if [ -n "$(server_pid "$dir")" ]; then
        as_pg "$bin/pg_ctl" -D "$dir" -m fast -w -t 60 stop >&2 \
            || as_pg "$bin/pg_ctl" -D "$dir" -m immediate -w -t 30 stop >&2
    else
        log "the server in $dir is not running"
    fi
}

cmd_status() {
    [ $# -eq 1 ] || usage
    local dir bin port
    dir=$(abs_dir "$1")
    [ -f "$dir/PG_VERSION" ] || { log "no cluster in $dir"; return 1; }
    bin=$(bin_for_dir "$dir")
    port=$(running_port "$dir" "$bin")
    [ -n "$port" ] || { log "the server in $dir is not running"; return 1; }
    log "running from $dir on 127.0.0.1:$port"
}

[ $# -ge 1 ] || usage
sub=$1
shift
case "$sub" in
    install) [ $# -eq 0 ] || usage; cmd_install ;;
    start) cmd_start "$@" ;;
    stop) cmd_stop "$@" ;;
    status) cmd_status "$@" ;;
    -h|--help|help) usage ;;
    *) usage ;;
esac

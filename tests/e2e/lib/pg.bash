# Sourced by e2e scripts that need a PostgreSQL server (after common.bash).
# pg_start DIR PORT: a throwaway server, data directory and unix socket in
# DIR (no TCP), pg_stat_statements preloaded, trust auth for user postgres;
# stopped by pg_stop, which the caller's EXIT trap must reach (pg_start
# installs one that stops it before common.bash's cleanup).
# initdb refuses root: the server runs as the postgres user via runuser.
PG_BIN=${PG_BIN:-/usr/lib/postgresql/15/bin}
PG_DIR= PG_PORT= PG_SOCK=

pg_as() {
    if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

pg_start() {
    PG_DIR=$1 PG_PORT=$2 PG_SOCK=$1/sock
    [ -x "$PG_BIN/initdb" ] || { echo "# no $PG_BIN/initdb"; return 1; }
    chmod 755 "$(dirname "$PG_DIR")"
    mkdir -p "$PG_DIR/sock" || return 1
    [ "$(id -u)" = 0 ] && chown -R postgres "$PG_DIR"
    pg_as "$PG_BIN/initdb" -D "$PG_DIR/data" -U postgres --auth=trust -E UTF8 --no-sync \
        >"$PG_DIR/initdb.log" 2>&1 || { cat "$PG_DIR/initdb.log" >&2; return 1; }
    trap 'pg_stop; cleanup' EXIT
    pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -l "$PG_DIR/server.log" -w -t 30 \
        -o "-k $PG_SOCK -p $PG_PORT -c listen_addresses= -c fsync=off -c shared_preload_libraries=pg_stat_statements" \
        start >/dev/null 2>&1 || { cat "$PG_DIR/server.log" >&2; return 1; }
}

pg_stop() {
    [ -n "$PG_DIR" ] && [ -f "$PG_DIR/data/postmaster.pid" ] &&
        pg_as "$PG_BIN/pg_ctl" -D "$PG_DIR/data" -m immediate -w -t 20 stop >/dev/null 2>&1
    PG_DIR=
}

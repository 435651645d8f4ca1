#!/usr/bin/env bash
# Local stack: Temporal dev server + PostgreSQL, all state in one directory.
#
# Usage:
#   scripts/services.sh start  STATE_DIR   start (or reuse) the stack; prints the env file
#   scripts/services.sh stop   STATE_DIR   stop what `start` started there (never fails)
#   scripts/services.sh env    STATE_DIR   print STATE_DIR/env (sourceable `export X=...` lines)
#   scripts/services.sh status STATE_DIR   show what is running
#   scripts/services.sh restart-temporal STATE_DIR   stop and start its Temporal, same port and
#                                                    database (chaos runs)
#   scripts/services.sh restart-postgres STATE_DIR   the same for its PostgreSQL
#
# Environment (start):
#   TEMPORAL_ADDRESS   use this Temporal server instead of starting one
#   DATABASE_URL       use this PostgreSQL instead of starting one
#   TEMPORAL_PORT, TEMPORAL_UI_PORT, PG_PORT   fixed ports (default: free ports, reused on restart)
#   TEMPORAL_HEADLESS=1   no Web UI (tests)
#   TEMPORAL_DYNAMIC_CONFIG   other dynamic-config file (default temporal/dynamic-config.yaml)
#   PG_FAST=1             fsync=off, synchronous_commit=off, full_page_writes=off, max_connections=300
#
# Several STATE_DIRs can run side by side (dev stack + test run): ports are picked per directory.
# Typical use:  scripts/services.sh start .stack >/dev/null && . .stack/env
set -euo pipefail

LOG_TAG=services
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

SEARCH_ATTRIBUTES_FILE="$ROOT/temporal/search-attributes.txt"
DYNAMIC_CONFIG_FILE="${TEMPORAL_DYNAMIC_CONFIG:-$ROOT/temporal/dynamic-config.yaml}"
TEMPORAL_NAMESPACE_DEFAULT=default
START_TIMEOUT=60

usage() { sed -n '2,22p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }

[[ $# -eq 2 ]] || usage
CMD="$1"
STATE_ARG="$2"
[[ -n "$STATE_ARG" ]] || usage

# ------------------------------------------------------------------ helpers
read_file() { [[ -f "$1" ]] && cat "$1" || true; }

# Name=Type lines of temporal/search-attributes.txt (comments and blanks skipped).
search_attributes() {
    [[ -f "$SEARCH_ATTRIBUTES_FILE" ]] || return 0
    sed -e 's/#.*//' -e 's/[[:space:]]//g' "$SEARCH_ATTRIBUTES_FILE" | grep -E '^[A-Za-z_][A-Za-z0-9_]*=[A-Za-z]+$' || true
}

# key=json lines from temporal/dynamic-config.yaml (flat `key: value` entries only).
dynamic_config_values() {
    [[ -f "$DYNAMIC_CONFIG_FILE" ]] || return 0
    sed -n -E 's/^([A-Za-z0-9_.]+)[[:space:]]*:[[:space:]]*([^#]*[^#[:space:]])[[:space:]]*(#.*)?$/\1=\2/p' "$DYNAMIC_CONFIG_FILE"
}

# Pick a port: explicit override > previous port (if free) > a fresh free port.
pick_port() {
    local override="$1" previous="$2" avoid="${3:-}" p
    if [[ -n "$override" ]]; then echo "$override"; return; fi
    if [[ -n "$previous" && "$previous" != "$avoid" ]] && port_is_free "$previous"; then echo "$previous"; return; fi
    for _ in 1 2 3 4 5; do
        p="$(free_port)"
        [[ "$p" != "$avoid" ]] && { echo "$p"; return; }
    done
    die "could not find a free port"
}

temporal_healthy() {
    "$TOOLS_BIN/temporal" operator cluster health --address "$1" --command-timeout 2s 2>/dev/null | grep -q SERVING
}

temporal_running_here() {
    local pid
    pid="$(read_file "$STATE_DIR/temporal.pid")"
    pid_matches "$pid" "temporal"
}

pg_pid_here() {
    local pid
    [[ -f "$STATE_DIR/pg/postmaster.pid" ]] || return 1
    pid="$(head -n1 "$STATE_DIR/pg/postmaster.pid")"
    pid_matches "$pid" "postgres" || return 1
    echo "$pid"
}

# The env of another stack was sourced into this shell: say so, it is an easy mistake.
warn_inherited() {
    if [[ -n "${STACK_STATE_DIR:-}" && "$STACK_STATE_DIR" != "$STATE_DIR" ]]; then
        warn "$1 looks inherited from $STACK_STATE_DIR/env (sourced earlier?); this stack will share it." \
             "For a separate stack: unset TEMPORAL_ADDRESS DATABASE_URL STACK_STATE_DIR"
    fi
}

# Everything we start must not inherit the lock fd (9), or the lock would outlive this script.
take_lock() {
    exec 9>"$STATE_DIR/.lock"
    flock -w 180 9 || die "timed out waiting for the lock on $STATE_DIR (another start/stop running?)"
}

# ------------------------------------------------------------------ temporal
start_temporal() {
    TEMPORAL_PID=""
    TEMPORAL_NS="$TEMPORAL_NAMESPACE_DEFAULT"
    TEMPORAL_UI_URL=""
    if temporal_running_here; then
        TEMPORAL_PID="$(cat "$STATE_DIR/temporal.pid")"
        TEMPORAL_ADDRESS="127.0.0.1:$(cat "$STATE_DIR/temporal.port")"
        TEMPORAL_UI_URL="$(read_file "$STATE_DIR/temporal.ui_url")"
        if wait_temporal "$TEMPORAL_ADDRESS" 10; then
            log "Temporal already running here (pid $TEMPORAL_PID, $TEMPORAL_ADDRESS)"
            return 0
        fi
        warn "Temporal pid $TEMPORAL_PID does not answer; restarting it"
        stop_temporal
    fi
    rm -f "$STATE_DIR/temporal.pid" "$STATE_DIR/temporal.external"

    if [[ -n "${TEMPORAL_ADDRESS:-}" ]]; then
        log "using external Temporal at $TEMPORAL_ADDRESS (TEMPORAL_ADDRESS is set)"
        warn_inherited TEMPORAL_ADDRESS
        TEMPORAL_NS="${TEMPORAL_NAMESPACE:-$TEMPORAL_NAMESPACE_DEFAULT}"
        wait_temporal "$TEMPORAL_ADDRESS" 15 \
            || die "external Temporal at TEMPORAL_ADDRESS=$TEMPORAL_ADDRESS does not answer (unset TEMPORAL_ADDRESS to start a local one)"
        echo "$TEMPORAL_ADDRESS" >"$STATE_DIR/temporal.external"
        rm -f "$STATE_DIR/temporal.ui_url"
        return 0
    fi

    local port ui_port="" args=() line attempt log_mark
    for attempt in 1 2 3; do
        # After a port clash (a free port taken by someone else meanwhile), pick fresh ports.
        if [[ $attempt -gt 1 ]]; then rm -f "$STATE_DIR/temporal.port" "$STATE_DIR/temporal.ui_port"; fi
        port="$(pick_port "${TEMPORAL_PORT:-}" "$(read_file "$STATE_DIR/temporal.port")")"
        ui_port=""
        args=(server start-dev --ip 127.0.0.1 --port "$port"
              --db-filename "$STATE_DIR/temporal.db"
              --sqlite-pragma journal_mode=wal --sqlite-pragma synchronous=normal
              --log-level warn)
        if [[ "${TEMPORAL_HEADLESS:-0}" == 1 ]]; then
            args+=(--headless)
        else
            ui_port="$(pick_port "${TEMPORAL_UI_PORT:-}" "$(read_file "$STATE_DIR/temporal.ui_port")" "$port")"
            args+=(--ui-port "$ui_port" --ui-disable-news-fetch)
        fi
        while IFS= read -r line; do args+=(--search-attribute "$line"); done < <(search_attributes)
        while IFS= read -r line; do args+=(--dynamic-config-value "$line"); done < <(dynamic_config_values)

        echo "$port" >"$STATE_DIR/temporal.port"
        if [[ -n "$ui_port" ]]; then echo "$ui_port" >"$STATE_DIR/temporal.ui_port"; fi
        echo "=== $(date -Is) attempt $attempt: temporal ${args[*]}" >>"$STATE_DIR/temporal.log"
        log_mark="$(wc -l <"$STATE_DIR/temporal.log")"
        # setsid: own session, so Ctrl-C in the calling terminal does not reach the server.
        setsid "$TOOLS_BIN/temporal" "${args[@]}" </dev/null >>"$STATE_DIR/temporal.log" 2>&1 9>&- &
        TEMPORAL_PID=$!
        TEMPORAL_STARTED_HERE=1
        echo "$TEMPORAL_PID" >"$STATE_DIR/temporal.pid"
        TEMPORAL_ADDRESS="127.0.0.1:$port"
        log "starting Temporal dev server (pid $TEMPORAL_PID) on $TEMPORAL_ADDRESS${ui_port:+, UI http://127.0.0.1:$ui_port}"

        if wait_temporal "$TEMPORAL_ADDRESS" "$START_TIMEOUT" "$TEMPORAL_PID"; then
            break
        fi
        stop_temporal
        if [[ $attempt -lt 3 && -z "${TEMPORAL_PORT:-}${TEMPORAL_UI_PORT:-}" ]] \
            && tail -n "+$((log_mark + 1))" "$STATE_DIR/temporal.log" | grep -q 'address already in use'; then
            warn "port clash; retrying with other ports"
            continue
        fi
        echo "----- tail of $STATE_DIR/temporal.log -----" >&2
        tail -n 40 "$STATE_DIR/temporal.log" >&2 || true
        die "Temporal dev server failed to start or did not become healthy on $TEMPORAL_ADDRESS within ${START_TIMEOUT}s (log: $STATE_DIR/temporal.log)"
    done
    if [[ -n "$ui_port" ]]; then
        TEMPORAL_UI_URL="http://127.0.0.1:$ui_port"
        echo "$TEMPORAL_UI_URL" >"$STATE_DIR/temporal.ui_url"
    else
        rm -f "$STATE_DIR/temporal.ui_url"
    fi
    verify_search_attributes "$TEMPORAL_ADDRESS"
}

# wait_temporal ADDRESS TIMEOUT [PID]
wait_temporal() {
    local addr="$1" timeout="$2" pid="${3:-}" deadline
    deadline=$((SECONDS + timeout))
    while ((SECONDS < deadline)); do
        if [[ -n "$pid" ]] && ! pid_alive "$pid"; then
            warn "Temporal process $pid exited during start-up"
            return 1
        fi
        temporal_healthy "$addr" && return 0
        sleep 0.3
    done
    return 1
}

verify_search_attributes() {
    local addr="$1" json missing
    json="$("$TOOLS_BIN/temporal" operator search-attribute list --address "$addr" \
        --namespace "$TEMPORAL_NAMESPACE_DEFAULT" --output json 2>&1)" \
        || die "cannot list search attributes on $addr: $json"
    missing="$(search_attributes | python3 -c '
import json, sys
data = json.loads(sys.argv[1])
have = {}
for section in ("customAttributes", "systemAttributes"):
    for k, v in (data.get(section) or {}).items():
        have[k] = str(v)
for line in sys.stdin:
    name, typ = line.strip().split("=", 1)
    got = have.get(name)
    norm = None if got is None else got.upper().replace("INDEXED_VALUE_TYPE_", "").replace("_", "")
    if norm != typ.upper():
        print(f"{name}={typ} (found: {got})")
' "$json")"
    if [[ -n "$missing" ]]; then
        die "search attributes not registered as expected on $addr: $(tr '\n' ' ' <<<"$missing")"
    fi
    log "search attributes registered: $(search_attributes | cut -d= -f1 | tr '\n' ' ')"
}

stop_temporal_if_started() {
    [[ "${TEMPORAL_STARTED_HERE:-0}" == 1 ]] && stop_temporal
    return 0
}

stop_temporal() {
    local pid
    pid="$(read_file "$STATE_DIR/temporal.pid")"
    if [[ -n "$pid" ]] && pid_matches "$pid" "temporal"; then
        log "stopping Temporal (pid $pid)"
        kill -TERM "$pid" 2>/dev/null || true
        for _ in $(seq 1 100); do pid_alive "$pid" || break; sleep 0.2; done
        if pid_alive "$pid"; then
            warn "Temporal pid $pid ignored SIGTERM for 20 s; sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
            for _ in $(seq 1 25); do pid_alive "$pid" || break; sleep 0.2; done
        fi
    fi
    rm -f "$STATE_DIR/temporal.pid"
}

# ------------------------------------------------------------------ postgres
pg_sockdir() {
    # Unix socket paths are limited to 107 bytes; fall back to a short dir under /tmp.
    local d="$STATE_DIR/pgsock" recorded
    recorded="$(read_file "$STATE_DIR/pg.sockdir")"
    if [[ -n "$recorded" && -d "$recorded" ]]; then echo "$recorded"; return; fi
    if (( ${#d} + 20 > 100 )); then
        d="$(mktemp -d /tmp/billingpg.XXXXXX)"
    else
        mkdir -p "$d"
    fi
    echo "$d" >"$STATE_DIR/pg.sockdir"
    echo "$d"
}

start_postgres() {
    PG_PID=""
    local pgdata="$STATE_DIR/pg" port sockdir opts pid
    if pid="$(pg_pid_here)"; then
        PG_PID="$pid"
        port="$(sed -n 4p "$pgdata/postmaster.pid")"
        DATABASE_URL="postgres://postgres@127.0.0.1:$port/billing"
        log "PostgreSQL already running here (pid $PG_PID, port $port)"
        ensure_database "$port"
        return 0
    fi
    rm -f "$STATE_DIR/pg.external"

    if [[ -n "${DATABASE_URL:-}" ]]; then
        log "using external PostgreSQL (DATABASE_URL is set)"
        warn_inherited DATABASE_URL
        "$TOOLS_BIN/psql" -X -q -A -t -d "$DATABASE_URL" -c 'select 1' >/dev/null 2>&1 \
            || die "external PostgreSQL at DATABASE_URL does not answer (unset DATABASE_URL to start a local one)"
        echo "external" >"$STATE_DIR/pg.external"
        return 0
    fi

    if is_root; then
        ensure_pg_sysuser
        ensure_traversable_by_pg "$STATE_DIR/pg"
    fi

    if [[ ! -f "$pgdata/PG_VERSION" ]]; then
        rm -rf "$pgdata"
        mkdir -p "$pgdata"
        chmod 700 "$pgdata"
        is_root && chown "$PG_SYSUSER:" "$pgdata"
        log "initdb $pgdata"
        local out
        if ! out="$(as_pg "$TOOLS_BIN/initdb" -D "$pgdata" -U postgres --auth=trust \
                --encoding=UTF8 --no-locale --no-sync 9>&- 2>&1)"; then
            printf '%s\n' "$out" >&2
            rm -rf "$pgdata"
            die "initdb failed"
        fi
    fi

    sockdir="$(pg_sockdir)"
    touch "$STATE_DIR/pg.log"
    if is_root; then chown "$PG_SYSUSER:" "$sockdir" "$STATE_DIR/pg.log"; fi
    local attempt log_mark
    for attempt in 1 2 3; do
        # After a port clash (a free port taken by someone else meanwhile), pick a fresh port.
        if [[ $attempt -gt 1 ]]; then rm -f "$STATE_DIR/pg.port"; fi
        port="$(pick_port "${PG_PORT:-}" "$(read_file "$STATE_DIR/pg.port")")"
        echo "$port" >"$STATE_DIR/pg.port"
        opts="-c listen_addresses=127.0.0.1 -p $port -k '$sockdir'"
        if [[ "${PG_FAST:-0}" == 1 ]]; then
            opts+=" -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300"
        fi
        log "starting PostgreSQL on 127.0.0.1:$port${PG_FAST:+ (PG_FAST=$PG_FAST)}"
        log_mark="$(wc -l <"$STATE_DIR/pg.log")"
        if as_pg "$TOOLS_BIN/pg_ctl" -D "$pgdata" -l "$STATE_DIR/pg.log" -w -t "$START_TIMEOUT" -s \
                -o "$opts" start 9>&- >/dev/null 2>>"$STATE_DIR/pg.log"; then
            break
        fi
        if [[ $attempt -lt 3 && -z "${PG_PORT:-}" ]] \
            && tail -n "+$((log_mark + 1))" "$STATE_DIR/pg.log" | grep -q 'could not bind\|already in use'; then
            warn "port clash; retrying with another port"
            continue
        fi
        echo "----- tail of $STATE_DIR/pg.log -----" >&2
        tail -n 40 "$STATE_DIR/pg.log" >&2 || true
        die "PostgreSQL did not start (log: $STATE_DIR/pg.log)"
    done
    PG_STARTED_HERE=1
    local deadline=$((SECONDS + START_TIMEOUT))
    until "$TOOLS_BIN/pg_isready" -q -h 127.0.0.1 -p "$port" -U postgres; do
        ((SECONDS < deadline)) || { tail -n 40 "$STATE_DIR/pg.log" >&2; die "PostgreSQL not ready on port $port"; }
        sleep 0.2
    done
    PG_PID="$(head -n1 "$pgdata/postmaster.pid")"
    DATABASE_URL="postgres://postgres@127.0.0.1:$port/billing"
    ensure_database "$port"
}

ensure_database() {
    local port="$1" exists
    exists="$("$TOOLS_BIN/psql" -X -q -A -t -h 127.0.0.1 -p "$port" -U postgres -d postgres \
        -c "select 1 from pg_database where datname = 'billing'")"
    if [[ "$exists" != 1 ]]; then
        log "creating database billing"
        "$TOOLS_BIN/createdb" -h 127.0.0.1 -p "$port" -U postgres billing
    fi
}

stop_postgres() {
    local pgdata="$STATE_DIR/pg" pid sockdir
    if pid="$(pg_pid_here)"; then
        log "stopping PostgreSQL (pid $pid)"
        if ! as_pg "$TOOLS_BIN/pg_ctl" -D "$pgdata" -m fast -w -t 60 -s stop >/dev/null 2>&1; then
            warn "pg_ctl stop failed; signalling postmaster $pid directly"
            kill -INT "$pid" 2>/dev/null || true
            for _ in $(seq 1 50); do pid_alive "$pid" || break; sleep 0.2; done
            pid_alive "$pid" && kill -QUIT "$pid" 2>/dev/null || true
        fi
    fi
    sockdir="$(read_file "$STATE_DIR/pg.sockdir")"
    if [[ "$sockdir" == /tmp/billingpg.* ]]; then rm -rf "$sockdir"; rm -f "$STATE_DIR/pg.sockdir"; fi
}

# ------------------------------------------------------------------ env file
write_env() {
    local tmp="$STATE_DIR/env.tmp.$$"
    {
        echo "# Generated by scripts/services.sh start $STATE_DIR at $(date -Is)"
        printf 'export TEMPORAL_ADDRESS=%q\n' "$TEMPORAL_ADDRESS"
        printf 'export TEMPORAL_NAMESPACE=%q\n' "$TEMPORAL_NS"
        printf 'export TEMPORAL_UI_URL=%q\n' "${TEMPORAL_UI_URL:-}"
        printf 'export DATABASE_URL=%q\n' "$DATABASE_URL"
        printf 'export TEMPORAL_PID=%q\n' "${TEMPORAL_PID:-}"
        printf 'export PG_PID=%q\n' "${PG_PID:-}"
        printf 'export STACK_STATE_DIR=%q\n' "$STATE_DIR"
    } >"$tmp"
    mv -f "$tmp" "$STATE_DIR/env"
}

# ------------------------------------------------------------------ commands
case "$CMD" in
start)
    mkdir -p "$STATE_ARG"
    STATE_DIR="$(cd "$STATE_ARG" && pwd -P)"
    if ! tools_installed; then
        log "tools not installed yet; running scripts/install-tools.sh"
        bash "$ROOT/scripts/install-tools.sh" 9>&-
    fi
    # shellcheck source=/dev/null
    source "$TOOLS/env.sh"
    take_lock
    # On failure, stop what this invocation started (a reused process is left alone).
    PG_STARTED_HERE=0
    trap 'rc=$?; if [[ $rc -ne 0 ]]; then [[ $PG_STARTED_HERE == 1 ]] && stop_postgres; stop_temporal_if_started; fi' EXIT
    start_postgres
    start_temporal
    write_env
    trap - EXIT
    log "stack ready; env in $STATE_DIR/env"
    cat "$STATE_DIR/env"
    ;;
stop)
    if [[ ! -d "$STATE_ARG" ]]; then log "nothing to stop: $STATE_ARG does not exist"; exit 0; fi
    STATE_DIR="$(cd "$STATE_ARG" && pwd -P)"
    take_lock || true
    set +e
    stop_temporal
    stop_postgres
    rm -f "$STATE_DIR/env" "$STATE_DIR/temporal.external" "$STATE_DIR/pg.external"
    log "stopped stack in $STATE_DIR"
    exit 0
    ;;
restart-temporal|restart-postgres)
    [[ -f "$STATE_ARG/env" ]] || die "no stack in $STATE_ARG (run: scripts/services.sh start $STATE_ARG)"
    STATE_DIR="$(cd "$STATE_ARG" && pwd -P)"
    # shellcheck source=/dev/null
    source "$TOOLS/env.sh"
    take_lock
    # What this directory runs, on the same port (clients reconnect to the same address).
    unset TEMPORAL_ADDRESS DATABASE_URL
    if [[ "$CMD" == restart-temporal ]]; then
        [[ -f "$STATE_DIR/temporal.external" ]] && die "Temporal of $STATE_DIR is external; not restarting it"
        TEMPORAL_PORT="$(cat "$STATE_DIR/temporal.port")"
        stop_temporal
        start_temporal
    else
        [[ -f "$STATE_DIR/pg.external" ]] && die "PostgreSQL of $STATE_DIR is external; not restarting it"
        PG_PORT="$(cat "$STATE_DIR/pg.port")"
        stop_postgres
        start_postgres
    fi
    ;;
env)
    [[ -f "$STATE_ARG/env" ]] || die "no env file in $STATE_ARG (run: scripts/services.sh start $STATE_ARG)"
    cat "$STATE_ARG/env"
    ;;
status)
    [[ -d "$STATE_ARG" ]] || { echo "not started: $STATE_ARG does not exist"; exit 1; }
    STATE_DIR="$(cd "$STATE_ARG" && pwd -P)"
    rc=0
    if temporal_running_here; then
        echo "temporal: running (pid $(cat "$STATE_DIR/temporal.pid"), 127.0.0.1:$(cat "$STATE_DIR/temporal.port"))"
    elif [[ -f "$STATE_DIR/temporal.external" ]]; then
        echo "temporal: external ($(cat "$STATE_DIR/temporal.external"))"
    else
        echo "temporal: stopped"; rc=1
    fi
    if pid="$(pg_pid_here)"; then
        echo "postgres: running (pid $pid, 127.0.0.1:$(sed -n 4p "$STATE_DIR/pg/postmaster.pid"))"
    elif [[ -f "$STATE_DIR/pg.external" ]]; then
        echo "postgres: external (DATABASE_URL)"
    else
        echo "postgres: stopped"; rc=1
    fi
    exit $rc
    ;;
*)
    usage
    ;;
esac

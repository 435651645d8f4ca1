#!/usr/bin/env bash
# The whole billing stack on this machine, in the foreground. Ctrl-C stops all of it.
#
# Usage: scripts/dev.sh
#
# What it does:
#   1. scripts/install-tools.sh (Temporal CLI, PostgreSQL 18, protoc into .tools/), the workspace
#      build shared with scripts/test.sh (`build_workspace` in scripts/lib.sh)
#   2. scripts/services.sh start .stack/dev: Temporal dev server with Web UI + PostgreSQL
#      (reused when already running there; external ones when TEMPORAL_ADDRESS / DATABASE_URL are set)
#   3. gateway emulator, access + notification stand-ins, starter API (migrates, seeds demo tariffs),
#      billing worker; each logs to .stack/dev/logs/NAME.log (the previous run's log is NAME.log.1)
#   4. prints every URL and port, then watches: if one process dies, prints its log tail, stops the
#      rest and exits 1. Ctrl-C / SIGTERM stops our processes, then `services.sh stop .stack/dev`.
#
# Environment (defaults in brackets):
#   EMULATOR_PORT [8090]  ACCESS_PORT [50061]  NOTIFICATION_PORT [50062]  AUTH_PORT [50063]
#   GRPC_PORT [50051]     HTTP_PORT [8080]
#       A busy port is an error naming the variable to change; nothing is picked silently.
#   TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE   use this Temporal server instead of the local one
#   DATABASE_URL                           use this PostgreSQL instead of the local one
#   TEMPORAL_PORT, TEMPORAL_UI_PORT, PG_PORT   fixed ports for the local Temporal / UI / PostgreSQL
#       (default: free ports picked by services.sh and kept across restarts of .stack/dev)
#   GATEWAY_PUBLIC_ID, GATEWAY_API_SECRET [pk_test_emulator / emulator_secret]   the emulator's
#       terminal, given to both the emulator and the worker
#   RUST_LOG, LOG_FORMAT=json, BILLING_* (task queue, timeouts, retry durations),
#   GATEWAY_TIMEOUT_MS, EMULATOR_* (other emulator options)   passed through to the processes
#
# Only one dev.sh per checkout (lock on .stack/dev/dev.lock); scripts/test.sh uses .stack/test and
# can run next to it. Processes left behind by a dev.sh killed with SIGKILL are stopped at the next start.
set -euo pipefail

# Started in the background by another script (`scripts/dev.sh &`), bash inherits SIGINT as
# ignored, and a signal ignored at entry cannot be trapped: `kill -INT` would do nothing.
# Re-execute once with SIGINT back to default so that it always means "stop the stack"
# (SIGPIPE and SIGXFSZ too: Python ignores them and exec would pass that on).
if [[ -z "${_DEV_SH_REEXEC:-}" && -r /proc/$$/status ]] \
    && (( 0x$(awk '/^SigIgn:/ {print $2}' /proc/$$/status) & 0x2 )); then
    export _DEV_SH_REEXEC=1
    exec python3 -c 'import os, signal, sys
for s in (signal.SIGINT, signal.SIGPIPE, signal.SIGXFSZ):
    signal.signal(s, signal.SIG_DFL)
os.execvp(sys.argv[1], sys.argv[1:])' bash "${BASH_SOURCE[0]}" "$@"
fi
unset _DEV_SH_REEXEC

ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
cd "$ROOT"
LOG_TAG=dev
# shellcheck source=scripts/lib.sh
source "$ROOT/scripts/lib.sh"   # log, warn, die, port_is_free, pid_alive, pid_matches

STATE="$ROOT/.stack/dev"
LOGS="$STATE/logs"
PIDS="$STATE/pids"
BIN="$ROOT/target/debug"

EMULATOR_PORT="${EMULATOR_PORT:-8090}"
ACCESS_PORT="${ACCESS_PORT:-50061}"
NOTIFICATION_PORT="${NOTIFICATION_PORT:-50062}"
AUTH_PORT="${AUTH_PORT:-50063}"
GRPC_PORT="${GRPC_PORT:-50051}"
HTTP_PORT="${HTTP_PORT:-8080}"
HOST=127.0.0.1

# ------------------------------------------------------------------ one dev stack at a time
mkdir -p "$STATE" "$LOGS" "$PIDS"
# fd 8 holds the lock for as long as this script runs; every child gets `8>&-`.
exec 8>"$STATE/dev.lock"
if ! flock -n 8; then
    die "scripts/dev.sh is already running for $STATE (pid $(cat "$STATE/dev.pid" 2>/dev/null || echo '?')); stop it first (Ctrl-C in its terminal)"
fi
echo $$ >"$STATE/dev.pid"

# ------------------------------------------------------------------ process bookkeeping
NAMES=()            # in start order
declare -A PID=()   # name -> pid
SERVICES_STARTED=0
STOPPING=0
FORCE=0

# Stop one of our processes: SIGINT (all our binaries shut down gracefully on it),
# then SIGTERM after 15 s, then SIGKILL after 5 s more (at once after a second Ctrl-C).
stop_one() {
    local name="$1" pid="${PID[$1]:-}" i
    [[ -n "$pid" ]] || return 0
    if pid_alive "$pid"; then
        log "stopping $name (pid $pid)"
        kill -INT "$pid" 2>/dev/null || true
        for ((i = 0; i < 150; i++)); do pid_alive "$pid" && [[ $FORCE == 0 ]] || break; sleep 0.1; done
        if pid_alive "$pid"; then
            [[ $FORCE == 1 ]] || warn "$name (pid $pid) still running 15 s after SIGINT; sending SIGTERM"
            kill -TERM "$pid" 2>/dev/null || true
            for ((i = 0; i < 50; i++)); do pid_alive "$pid" || break; sleep 0.1; done
        fi
        if pid_alive "$pid"; then
            warn "$name (pid $pid) still running; sending SIGKILL"
            kill -KILL "$pid" 2>/dev/null || true
        fi
    fi
    wait "$pid" 2>/dev/null || true
    rm -f "$PIDS/$name.pid"
    unset "PID[$name]"
}

cleanup() {
    local rc=$? i
    [[ $STOPPING == 1 ]] && return
    STOPPING=1
    set +e
    trap 'FORCE=1; warn "second interrupt: killing without waiting"' INT TERM HUP
    if ((${#NAMES[@]} == 0)) && [[ $SERVICES_STARTED == 0 ]]; then
        rm -f "$STATE/dev.pid"
        exit "$rc"
    fi
    echo >&2
    log "shutting down"
    # Reverse start order: worker and API first, gateway and stand-ins last, then Temporal/Postgres.
    for ((i = ${#NAMES[@]} - 1; i >= 0; i--)); do stop_one "${NAMES[$i]}"; done
    if [[ $SERVICES_STARTED == 1 ]]; then
        # Own session: a second Ctrl-C in the terminal must not cut the stop of Temporal/Postgres short.
        setsid -w bash "$ROOT/scripts/services.sh" stop "$STATE" 8>&- || warn "services.sh stop failed"
    fi
    rm -f "$STATE/dev.pid"
    log "stopped (logs kept in $LOGS)"
    exit "$rc"
}
trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
trap 'exit 129' HUP

# A previous run killed with SIGKILL may have left our processes behind: stop them.
reap_leftovers() {
    local f name pid
    for f in "$PIDS"/*.pid; do
        [[ -e "$f" ]] || continue
        name="$(basename "$f" .pid)"
        read -r pid exe <"$f" || true
        if [[ -n "${pid:-}" && -n "${exe:-}" ]] && pid_matches "$pid" "$exe"; then
            warn "stopping $name (pid $pid) left over from an earlier run"
            PID[$name]="$pid"
            stop_one "$name"
        fi
        rm -f "$f"
    done
}

log_tail() {
    local name="$1"
    echo "----- last 40 lines of $LOGS/$name.log -----" >&2
    tail -n 40 "$LOGS/$name.log" >&2 || true
    echo "-----" >&2
}

# Reaps a child that has exited; its exit code goes to REAPED_RC.
reap() {
    REAPED_RC=0
    wait "$1" 2>/dev/null || REAPED_RC=$?
}

# start NAME EXECUTABLE [ARGS...]; environment comes from the caller (`VAR=x start ...`).
# setsid: own session, so Ctrl-C in the terminal reaches only this script, which stops
# the processes in order. Logs: previous run's file kept as NAME.log.1.
start() {
    local name="$1" exe="$2"
    shift 2
    [[ -f "$LOGS/$name.log" ]] && mv -f "$LOGS/$name.log" "$LOGS/$name.log.1"
    echo "=== $(date -Is) $exe $*" >"$LOGS/$name.log"
    NO_COLOR=1 setsid "$exe" "$@" </dev/null >>"$LOGS/$name.log" 2>&1 8>&- &
    PID[$name]=$!
    NAMES+=("$name")
    echo "${PID[$name]} $exe" >"$PIDS/$name.pid"
    log "started $name (pid ${PID[$name]}), log $LOGS/$name.log"
}

# Fails (exit 1, with the log tail) when NAME is no longer running.
check_alive() {
    local name="$1" pid="${PID[$1]}"
    if ! pid_alive "$pid"; then
        reap "$pid"
        unset "PID[$name]"
        rm -f "$PIDS/$name.pid"
        log_tail "$name"
        die "$name (pid $pid) exited with code $REAPED_RC during start-up (log: $LOGS/$name.log)"
    fi
}

# wait_until NAME TIMEOUT_S DESCRIPTION COMMAND...: polls COMMAND while NAME stays alive.
wait_until() {
    local name="$1" timeout="$2" what="$3" deadline
    shift 3
    deadline=$((SECONDS + timeout))
    until "$@" >/dev/null 2>&1; do
        check_alive "$name"
        if ((SECONDS >= deadline)); then
            log_tail "$name"
            die "$name: $what not reached within ${timeout}s (log: $LOGS/$name.log)"
        fi
        sleep 0.2
    done
}

http_ok() { curl -fsS -o /dev/null --max-time 2 "$1"; }
port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

# ------------------------------------------------------------------ checks before starting anything
command -v curl >/dev/null || die "curl is required"

# Our six ports must be free; a busy one is an error that names the variable to change.
check_ports() {
    local var port busy=() b dups
    for var in EMULATOR_PORT ACCESS_PORT NOTIFICATION_PORT AUTH_PORT GRPC_PORT HTTP_PORT; do
        port="${!var}"
        if ! [[ "$port" =~ ^[0-9]+$ ]] || ((port < 1 || port > 65535)); then die "$var=$port is not a TCP port"; fi
        port_is_free "$port" || busy+=("$var=$port")
    done
    if ((${#busy[@]})); then
        for b in "${busy[@]}"; do
            warn "port ${b#*=} is already in use; choose another one with ${b%%=*}=PORT"
        done
        die "busy port(s): ${busy[*]}. E.g.: ${busy[0]%%=*}=$((${busy[0]#*=} + 1000)) scripts/dev.sh" \
            "(what holds it: ss -ltnp 'sport = :${busy[0]#*=}')"
    fi
    dups="$(printf '%s\n' "$EMULATOR_PORT" "$ACCESS_PORT" "$NOTIFICATION_PORT" "$AUTH_PORT" "$GRPC_PORT" "$HTTP_PORT" | sort | uniq -d)"
    [[ -z "$dups" ]] || die "port $dups is given twice (EMULATOR_PORT, ACCESS_PORT, NOTIFICATION_PORT, AUTH_PORT, GRPC_PORT, HTTP_PORT must differ)"
}

reap_leftovers
check_ports

# ------------------------------------------------------------------ tools, build, services
bash "$ROOT/scripts/install-tools.sh" 8>&- || die "scripts/install-tools.sh failed (see above)"
# shellcheck source=/dev/null
source "$ROOT/.tools/env.sh"

build_workspace 8>&- || die "the build failed (see the compiler errors above); nothing was started"
for b in gateway-emulator billing-stand-ins billing-worker starter-api; do
    [[ -x "$BIN/$b" ]] || die "$BIN/$b missing after cargo build"
done

SERVICES_STARTED=1
bash "$ROOT/scripts/services.sh" start "$STATE" 8>&- >/dev/null \
    || die "scripts/services.sh start $STATE failed (see above)"
# shellcheck source=/dev/null
source "$STATE/env"   # TEMPORAL_ADDRESS, TEMPORAL_NAMESPACE, TEMPORAL_UI_URL, DATABASE_URL, TEMPORAL_PID, PG_PID

# ------------------------------------------------------------------ our processes
check_ports   # again: the build may have taken minutes
GATEWAY_PUBLIC_ID="${GATEWAY_PUBLIC_ID:-pk_test_emulator}"
GATEWAY_API_SECRET="${GATEWAY_API_SECRET:-emulator_secret}"
EMULATOR_URL="http://$HOST:$EMULATOR_PORT"
ACCESS_URL="http://$HOST:$ACCESS_PORT"
NOTIFICATION_URL="http://$HOST:$NOTIFICATION_PORT"
API_URL="http://$HOST:$HTTP_PORT"
AUTH_URL="http://$HOST:$AUTH_PORT"

start gateway-emulator "$BIN/gateway-emulator" \
    --listen "$HOST:$EMULATOR_PORT" --state-file "$STATE/emulator-state.json" \
    --terminal "$GATEWAY_PUBLIC_ID:$GATEWAY_API_SECRET"
wait_until gateway-emulator 30 "$EMULATOR_URL/_emulator/health" http_ok "$EMULATOR_URL/_emulator/health"

start stand-ins "$BIN/billing-stand-ins" \
    --access "$HOST:$ACCESS_PORT" --notification "$HOST:$NOTIFICATION_PORT" --auth "$HOST:$AUTH_PORT"
wait_until stand-ins 30 "access port $ACCESS_PORT open" port_open "$HOST" "$ACCESS_PORT"
wait_until stand-ins 30 "notification port $NOTIFICATION_PORT open" port_open "$HOST" "$NOTIFICATION_PORT"
wait_until stand-ins 30 "$AUTH_URL/.well-known/jwks.json" http_ok "$AUTH_URL/.well-known/jwks.json"

# Who may call the API: the stand-ins' dev issuer, unless BILLING_AUTH_JWKS_URL / _FILE and
# BILLING_AUTH_ISSUER name a real auth service (or BILLING_AUTH=disabled, not recommended).
if [[ -z "${BILLING_AUTH_JWKS_URL:-}${BILLING_AUTH_JWKS_FILE:-}" && "${BILLING_AUTH:-required}" != disabled ]]; then
    export BILLING_AUTH_JWKS_URL="$AUTH_URL/.well-known/jwks.json" BILLING_AUTH_ISSUER=billing-dev-auth
    AUTH_NOTE="dev issuer of the stand-ins"
else
    AUTH_NOTE="${BILLING_AUTH_JWKS_URL:-${BILLING_AUTH_JWKS_FILE:-auth disabled}}"
fi

# Common environment of the worker and the starter API. BILLING_MODE=dev: this is the local
# stack (only dev mode lets a missing gateway / peer setting default to the emulator and stand-ins).
export TEMPORAL_ADDRESS TEMPORAL_NAMESPACE DATABASE_URL
export BILLING_MODE=dev

# The starter API applies the migrations and seeds the demo tariffs before it listens,
# so it goes before the worker.
BILLING_GRPC_ADDR="$HOST:$GRPC_PORT" BILLING_HTTP_ADDR="$HOST:$HTTP_PORT" \
BILLING_MIGRATE=true BILLING_SEED_DEMO=true \
    start starter-api "$BIN/starter-api"
wait_until starter-api 60 "$API_URL/healthz" http_ok "$API_URL/healthz"

GATEWAY_URL="$EMULATOR_URL" GATEWAY_PUBLIC_ID="$GATEWAY_PUBLIC_ID" GATEWAY_API_SECRET="$GATEWAY_API_SECRET" \
ACCESS_URL="$ACCESS_URL" NOTIFICATION_URL="$NOTIFICATION_URL" \
    start worker "$BIN/billing-worker"
wait_until worker 60 "'worker polling' in its log" grep -q "worker polling" "$LOGS/worker.log"
sleep 2
check_alive worker

# ------------------------------------------------------------------ the URL block
mask_url() { sed -E 's#(://[^:/@]+):[^@/]*@#\1:***@#' <<<"$1"; }
pad() { printf '  %-24s %s\n' "$1" "$2"; }
temporal_ui="${TEMPORAL_UI_URL:-}"
if [[ -z "$temporal_ui" ]]; then
    if [[ -f "$STATE/temporal.external" ]]; then temporal_ui="(external Temporal: its own UI)"; else temporal_ui="(none: TEMPORAL_HEADLESS=1)"; fi
fi
pg_note=""; [[ -f "$STATE/pg.external" ]] && pg_note="  (external, DATABASE_URL)"
t_note=""; [[ -f "$STATE/temporal.external" ]] && t_note="  (external, TEMPORAL_ADDRESS)"
svc_logs="$(
    [[ -f "$STATE/temporal.external" ]] || echo "$STATE/temporal.log"
    [[ -f "$STATE/pg.external" ]] || echo "$STATE/pg.log"
)"
svc_logs="${svc_logs//$'\n'/, }"
svc_logs="${svc_logs:-(both external)}"

cat <<EOF

==============================================================================
  Billing dev stack is up. Ctrl-C stops everything.
------------------------------------------------------------------------------
$(pad "Temporal gRPC" "$TEMPORAL_ADDRESS  (namespace $TEMPORAL_NAMESPACE, task queue ${BILLING_TASK_QUEUE:-billing})$t_note")
$(pad "Temporal Web UI" "$temporal_ui")
$(pad "PostgreSQL" "$(mask_url "$DATABASE_URL")$pg_note")
$(pad "Gateway emulator" "$EMULATOR_URL  (terminal $GATEWAY_PUBLIC_ID)")
$(pad "  docs" "$EMULATOR_URL/api/docs   control API: $EMULATOR_URL/_emulator/ledger")
$(pad "Billing gRPC" "$HOST:$GRPC_PORT  (billing.v1.BillingService, reflection + health)")
$(pad "Billing REST API" "$API_URL  (health: $API_URL/healthz)")
$(pad "  docs" "$API_URL/api/docs   OpenAPI: $API_URL/api/openapi.json")
$(pad "  3-D Secure TermUrl" "${BILLING_PUBLIC_URL:-$API_URL}/api/v1/3ds/callback  (base: BILLING_PUBLIC_URL)")
$(pad "Access stand-in" "$ACCESS_URL  (gRPC access.v1.AccessService)")
$(pad "Notification stand-in" "$NOTIFICATION_URL  (gRPC notification.v1.NotificationService)")
$(pad "Auth (API tokens)" "$AUTH_NOTE: JWKS $AUTH_URL/.well-known/jwks.json")
$(pad "  a dev token" "curl '$AUTH_URL/dev/token?sub=<user uuid>'  (&roles=admin or service)")
$(pad "Logs" "$LOGS/{gateway-emulator,stand-ins,starter-api,worker}.log")
$(pad "Temporal / PG logs" "$svc_logs")
------------------------------------------------------------------------------
  Try it (card 4000 0000 0000 3055: approved without 3-D Secure):

    USER_ID=\$(cat /proc/sys/kernel/random/uuid 2>/dev/null || uuidgen)
    TOKEN=\$(curl -fsS "$AUTH_URL/dev/token?sub=\$USER_ID")   # the user's own token
    curl -H "authorization: Bearer \$TOKEN" $API_URL/api/v1/tariffs
    CRYPTOGRAM=\$(target/debug/gateway-emulator cryptogram --card 4000000000003055 --format legacy)
    curl -sS -X POST $API_URL/api/v1/subscriptions -H "authorization: Bearer \$TOKEN" \\
      -H 'content-type: application/json' -d '{
      "tariff_code": "basic-monthly",
      "card_cryptogram": "'\$CRYPTOGRAM'", "cardholder_name": "IVAN IVANOV",
      "payer_ip": "203.0.113.7", "email": "ivan@example.com",
      "client_request_id": "'\$(cat /proc/sys/kernel/random/uuid 2>/dev/null || uuidgen)'"}'
    # -> {"outcome":"paid","subscription_id":...,"access_until":...}
    # (card 4242424242424242 instead: "three_ds_required" with acs_url, pa_req, md, term_url)
    curl -H "authorization: Bearer \$TOKEN" $API_URL/api/v1/users/\$USER_ID/subscription
    # (no token: 401; another user's id with this token: 403)
    curl $EMULATOR_URL/_emulator/ledger
==============================================================================

EOF

# ------------------------------------------------------------------ watch
while :; do
    for name in "${NAMES[@]}"; do
        pid="${PID[$name]:-}"
        [[ -n "$pid" ]] || continue
        if ! pid_alive "$pid"; then
            reap "$pid"
            unset "PID[$name]"
            rm -f "$PIDS/$name.pid"
            log_tail "$name"
            die "$name (pid $pid) exited with code $REAPED_RC; stopping the stack (log: $LOGS/$name.log)"
        fi
    done
    if [[ -n "${TEMPORAL_PID:-}" ]] && ! pid_alive "$TEMPORAL_PID"; then
        tail -n 40 "$STATE/temporal.log" >&2 || true
        die "the Temporal dev server (pid $TEMPORAL_PID) exited; stopping the stack (log: $STATE/temporal.log)"
    fi
    if [[ -n "${PG_PID:-}" ]] && ! pid_alive "$PG_PID"; then
        tail -n 40 "$STATE/pg.log" >&2 || true
        die "PostgreSQL (pid $PG_PID) exited; stopping the stack (log: $STATE/pg.log)"
    fi
    sleep 1
done

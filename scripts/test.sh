#!/usr/bin/env bash
# Runs every test of the workspace against real services.
#
# Installs the tools (scripts/install-tools.sh), checks style (`cargo fmt --check`, `cargo clippy
# --workspace --all-targets -- -D warnings`; `TEST_LINT=0` skips both), builds the workspace the
# way scripts/dev.sh does (one build serves both), starts a private Temporal dev server (headless)
# and PostgreSQL in .stack/test (unless TEMPORAL_ADDRESS / DATABASE_URL point at your own), runs
# `cargo nextest run --workspace` (or `cargo test --workspace` when nextest is missing), and
# stops the services again. Extra arguments go to the test runner, e.g.
#   TEST_LINT=0 scripts/test.sh -p billing-worker first_payment
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

bash scripts/install-tools.sh --with-chromium
# shellcheck source=/dev/null
source .tools/env.sh
# shellcheck source=scripts/lib.sh
source scripts/lib.sh

if [[ "${TEST_LINT:-1}" != 0 ]]; then
    echo "style: cargo fmt --all --check"
    cargo fmt --all --check || { echo "style: run 'cargo fmt --all'" >&2; exit 1; }
    echo "style: cargo clippy --workspace --all-targets -- -D warnings"
    cargo clippy --workspace --all-targets -- -D warnings
fi
# The same build as scripts/dev.sh (scripts/lib.sh): whichever runs second reuses it.
build_workspace

STATE="$ROOT/.stack/test"
cleanup() { bash scripts/services.sh stop "$STATE" >/dev/null 2>&1 || true; }
trap cleanup EXIT INT TERM
TEMPORAL_HEADLESS=1 PG_FAST=1 bash scripts/services.sh start "$STATE" >/dev/null
# shellcheck source=/dev/null
source "$STATE/env"
export TEMPORAL_ADDRESS DATABASE_URL
echo "test services: TEMPORAL_ADDRESS=$TEMPORAL_ADDRESS DATABASE_URL=$DATABASE_URL"

# Each test creates its own billing_test_<random> database and leaves it for inspection; drop the
# previous run's so that repeated runs do not fill the disk.
psql "$DATABASE_URL" -Atc "SELECT datname FROM pg_database WHERE datname LIKE 'billing_test_%'" 2>/dev/null \
    | while read -r db; do psql "$DATABASE_URL" -qc "DROP DATABASE IF EXISTS \"$db\"" >/dev/null 2>&1 || true; done

if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --no-fail-fast "$@"
else
    cargo test --workspace --no-fail-fast "$@"
fi

#!/usr/bin/env bash
# Runs every test of the workspace against real services.
#
# Installs the tools (scripts/install-tools.sh), starts a private Temporal dev server (headless)
# and PostgreSQL in .stack/test (unless TEMPORAL_ADDRESS / DATABASE_URL point at your own), runs
# `cargo nextest run --workspace` (or `cargo test --workspace` when nextest is missing), and
# stops the services again. Extra arguments go to the test runner, e.g.
#   scripts/test.sh -p billing-worker first_payment
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

bash scripts/install-tools.sh --with-chromium
# shellcheck source=/dev/null
source .tools/env.sh

STATE="$ROOT/.stack/test"
cleanup() { bash scripts/services.sh stop "$STATE" >/dev/null 2>&1 || true; }
trap cleanup EXIT INT TERM
TEMPORAL_HEADLESS=1 PG_FAST=1 bash scripts/services.sh start "$STATE" >/dev/null
# shellcheck source=/dev/null
source "$STATE/env"
export TEMPORAL_ADDRESS DATABASE_URL
echo "test services: TEMPORAL_ADDRESS=$TEMPORAL_ADDRESS DATABASE_URL=$DATABASE_URL"

if cargo nextest --version >/dev/null 2>&1; then
    cargo nextest run --workspace --no-fail-fast "$@"
else
    cargo test --workspace --no-fail-fast "$@"
fi

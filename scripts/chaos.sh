#!/usr/bin/env bash
# The chaos run (README, "Money safety"): CHAOS_N subscriptions (default 300) through their first
# payment and CHAOS_WAVES renewal waves (default 3) on two billing-worker processes, while a
# schedule drawn from CHAOS_SEED (default: random, printed) SIGKILLs and restarts the workers,
# restarts Temporal and PostgreSQL (a private stack in .stack/chaos-<seed>), injects every gateway
# fault at a rate (CHAOS_FAULT_RATE_PERCENT scales them, default 100) and fails workflow tasks
# after a share of the charges for longer than the gateway's idempotency window. Then it audits
# from the gateway emulator's ledger (the bank). The code is worker/tests/chaos.rs; the test
# suite runs a small one (N=30).
#
# Its last line:
#   chaos: seed S, N subscriptions, I invoices, P paid, 0 charged twice, 0 paid but unrecorded,
#   0 recorded but unpaid, 0 failed workflows, F faults injected
# and it exits 1 when any problem count is not zero. Reproduce a run with its seed:
#   CHAOS_SEED=1234 bash scripts/chaos.sh
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

bash scripts/install-tools.sh
# shellcheck source=/dev/null
source .tools/env.sh
# shellcheck source=scripts/lib.sh
source scripts/lib.sh
LOG_TAG=chaos
build_workspace

export CHAOS_N="${CHAOS_N:-300}"
export CHAOS_SEED="${CHAOS_SEED:-$(od -An -N4 -tu4 /dev/urandom | tr -d ' ')}"
export CHAOS_WAVES="${CHAOS_WAVES:-3}"
mkdir -p .stack
LOG=".stack/chaos-$CHAOS_SEED.log"
log "seed $CHAOS_SEED, $CHAOS_N subscriptions, $CHAOS_WAVES renewal waves; log: $LOG"
rc=0
# The run starts its own Temporal and PostgreSQL; nothing else is needed.
env -u TEMPORAL_ADDRESS -u DATABASE_URL \
    cargo test -q -p billing-worker --test chaos -- --nocapture --test-threads 1 >"$LOG" 2>&1 || rc=$?
grep '^chaos: ' "$LOG" | grep -v '^chaos: seed .*faults injected$' || true
line="$(grep '^chaos: seed .*faults injected$' "$LOG" | tail -n 1 || true)"
if [[ -z "$line" ]]; then
    tail -n 60 "$LOG" >&2
    echo "chaos: seed $CHAOS_SEED: the run did not finish (log: $LOG)"
    exit 1
fi
if [[ $rc -ne 0 ]]; then
    grep -A3 'panicked' "$LOG" | head -n 20 >&2 || true
fi
echo "$line"
[[ $rc -eq 0 ]] || exit 1

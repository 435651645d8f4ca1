#!/usr/bin/env bash
# First-payment latency benchmark (issue 3, "Performance"); results go to BENCHMARKS.md by hand.
#
# Installs the tools (scripts/install-tools.sh), starts a private Temporal dev server (headless)
# and PostgreSQL in .stack/bench (unless TEMPORAL_ADDRESS / DATABASE_URL point at your own), runs
#   cargo bench -p billing-worker --bench first_payment
# (release-optimised `bench` profile) and stops the services again. The full output is also
# saved to .stack/bench/first_payment-<UTC time>.txt.
#
# Environment:
#   BENCH_PG_FAST=0          durable PostgreSQL (default 1: fsync/synchronous_commit/full_page_writes off)
#   BENCH_N=300              sequential calls per target (concurrent: rounded up to the concurrency)
#   BENCH_CONCURRENCY=32     closed-loop clients of the concurrent runs
#   BENCH_WARMUP=20          warm-up calls per target, excluded from the statistics
#   BENCH_HISTORY_SAMPLE=40  histories per run decomposed into task/activity times (0: skip)
#   BENCH_DIAGNOSTICS=1      also time update-with-start + 6 no-op normal / 6 no-op local activities
#   BENCH_FLOOR_WFT_POLLERS  diagnostics only: workflow-task pollers of the floor worker
#   TEMPORAL_DYNAMIC_CONFIG  other dynamic-config file for the dev server (see scripts/services.sh)
# Extra arguments go to `cargo bench`.
#
# Then, on the same services, the renewal benchmarks (issue 5, BENCHMARKS.md "Renewals"):
#   cargo bench -p billing-worker --bench renewals        renewal throughput vs a bare workflow
#   cargo bench -p billing-worker --bench worker_memory   worker RSS with 10,000 sleeping subscriptions
# each saved to .stack/bench/<name>-<UTC time>.txt (they take several minutes each).
#   BENCH_RENEWALS=0         skip both;  BENCH_MEMORY=0  skip worker_memory only
#   BENCH_FIRST_PAYMENT=0    skip the first-payment benchmark (renewals / memory only)
#   BENCH_RENEWAL_NS=1000,2000,5000   subscriptions per throughput run (target checked at 2000)
#   BENCH_MEMORY_N=10000     sleeping subscriptions of the memory run
#   (more knobs in the header of worker/benches/renewals.rs and worker_memory.rs)
set -euo pipefail
ROOT="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
cd "$ROOT"

bash scripts/install-tools.sh
# shellcheck source=/dev/null
source .tools/env.sh

STATE="$ROOT/.stack/bench"
mkdir -p "$STATE"
cleanup() { bash scripts/services.sh stop "$STATE" >/dev/null 2>&1 || true; }
trap cleanup EXIT INT TERM

export BENCH_PG_FAST="${BENCH_PG_FAST:-1}"
EXTERNAL_DB=0
[[ -n "${DATABASE_URL:-}" ]] && EXTERNAL_DB=1
TEMPORAL_HEADLESS=1 PG_FAST="$BENCH_PG_FAST" bash scripts/services.sh start "$STATE" >/dev/null
# shellcheck source=/dev/null
source "$STATE/env"
export TEMPORAL_ADDRESS DATABASE_URL
[[ "$EXTERNAL_DB" == 1 ]] && export BENCH_PG_FAST=external
# For the CPU-per-call table (empty when the services are external).
BENCH_TEMPORAL_PID="$(cat "$STATE/temporal.pid" 2>/dev/null || true)"
BENCH_PG_PID="$(head -n1 "$STATE/pg/postmaster.pid" 2>/dev/null || true)"
[[ "$EXTERNAL_DB" == 1 ]] && BENCH_PG_PID=""
export BENCH_TEMPORAL_PID BENCH_PG_PID

OUT="$STATE/first_payment-$(date -u +%Y%m%dT%H%M%SZ).txt"
{
    echo "== bench.sh =="
    echo "date                 $(date -u '+%Y-%m-%d %H:%M:%S UTC')"
    echo "command              scripts/bench.sh $*"
    echo "git                  $(git rev-parse --short HEAD 2>/dev/null || echo '?')$(git diff --quiet 2>/dev/null || echo ' (working tree has uncommitted changes)')"
    echo "workflow source      workflows/src/*.rs sha256 $(cat workflows/src/*.rs | sha256sum | cut -c1-12)"
    echo "rustc                $(rustc --version)"
    echo "temporal             $(temporal --version 2>/dev/null | head -1) at $TEMPORAL_ADDRESS"
    echo "postgres             $(postgres --version 2>/dev/null | head -1), PG_FAST=$BENCH_PG_FAST"
    echo "services             TEMPORAL_HEADLESS=1, state in .stack/bench"
    dc="${TEMPORAL_DYNAMIC_CONFIG:-$ROOT/temporal/dynamic-config.yaml}"
    dcv="$(sed -n -E 's/^([A-Za-z0-9_.]+)[[:space:]]*:[[:space:]]*([^#]*[^#[:space:]]).*$/\1=\2/p' "$dc" 2>/dev/null | tr '\n' ' ')"
    echo "temporal dyn. config ${dc#"$ROOT"/}: ${dcv:-(none: server defaults)}"
} | tee "$OUT"

status=0
if [[ "${BENCH_FIRST_PAYMENT:-1}" != 0 ]]; then
    cargo bench -p billing-worker --bench first_payment "$@" 2>&1 | tee -a "$OUT"
    status="${PIPESTATUS[0]}"
    echo "saved to ${OUT#"$ROOT"/}"
fi

# Renewal throughput and worker memory (issue 5), on the same services.
if [[ "${BENCH_RENEWALS:-1}" != 0 ]]; then
    benches=(renewals)
    [[ "${BENCH_MEMORY:-1}" != 0 ]] && benches+=(worker_memory)
    for bench in "${benches[@]}"; do
        OUT_B="$STATE/$bench-$(date -u +%Y%m%dT%H%M%SZ).txt"
        set +e
        cargo bench -p billing-worker --bench "$bench" 2>&1 | tee "$OUT_B"
        s="${PIPESTATUS[0]}"
        set -e
        [[ "$s" == 0 ]] || status="$s"
        echo "saved to ${OUT_B#"$ROOT"/}"
    done
fi
exit "$status"

#!/usr/bin/env bash
# One-shot job (temporalio/admin-tools image) run by docker-compose.yml once the Temporal server
# answers: creates the namespace if missing, then registers the billing search attributes with the
# repository's own temporal/register-search-attributes.sh (mounted at /billing/temporal).
# Idempotent.
#
# Environment: TEMPORAL_ADDRESS (temporal:7233), TEMPORAL_NAMESPACE (default),
#              NAMESPACE_RETENTION (720h = 30 days of closed-workflow history),
#              REGISTER_SCRIPT (/billing/temporal/register-search-attributes.sh).
set -euo pipefail

: "${TEMPORAL_ADDRESS:=temporal:7233}" "${TEMPORAL_NAMESPACE:=default}" "${NAMESPACE_RETENTION:=720h}"
: "${REGISTER_SCRIPT:=/billing/temporal/register-search-attributes.sh}"
host="${TEMPORAL_ADDRESS%:*}" port="${TEMPORAL_ADDRESS##*:}"
# Use the IPv4 address: the CLI may otherwise try an IPv6 record of the service name first.
ip="$(getent ahostsv4 "$host" | awk 'NR == 1 { print $1 }')"
addr="${ip:-$host}:$port"
unset TEMPORAL_ADDRESS   # the CLI reads it too; be explicit with --address instead

echo "waiting for Temporal at $addr"
for i in $(seq 1 120); do
    if temporal operator cluster health --address "$addr" 2>/dev/null | grep -q SERVING; then break; fi
    [[ $i -lt 120 ]] || { echo "Temporal at $addr not SERVING after 120 s" >&2; exit 1; }
    sleep 1
done

if temporal operator namespace describe --address "$addr" -n "$TEMPORAL_NAMESPACE" >/dev/null 2>&1; then
    echo "namespace $TEMPORAL_NAMESPACE exists"
else
    echo "creating namespace $TEMPORAL_NAMESPACE (retention $NAMESPACE_RETENTION)"
    temporal operator namespace create --address "$addr" -n "$TEMPORAL_NAMESPACE" \
        --retention "$NAMESPACE_RETENTION" --description "billing"
fi

# A new namespace takes a few seconds to reach the frontend's namespace cache.
for i in $(seq 1 60); do
    if temporal operator search-attribute list --address "$addr" -n "$TEMPORAL_NAMESPACE" >/dev/null 2>&1; then break; fi
    [[ $i -lt 60 ]] || { echo "namespace $TEMPORAL_NAMESPACE not visible after 60 s" >&2; exit 1; }
    sleep 1
done

bash "$REGISTER_SCRIPT" "$addr" "$TEMPORAL_NAMESPACE"
echo "Temporal namespace $TEMPORAL_NAMESPACE ready"

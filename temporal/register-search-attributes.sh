#!/usr/bin/env bash
# Register the billing search attributes (temporal/search-attributes.txt) on an
# existing Temporal cluster. Idempotent: attributes that already exist with the
# right type are skipped; one that exists with another type is an error.
#
# Usage: temporal/register-search-attributes.sh ADDRESS [NAMESPACE]
#   ADDRESS    host:port of the frontend, e.g. 127.0.0.1:7233
#   NAMESPACE  default: $TEMPORAL_NAMESPACE or "default"
# Extra connection options (TLS, API key, ...) come from the usual TEMPORAL_*
# environment variables of the temporal CLI (TEMPORAL_TLS_CERT, TEMPORAL_API_KEY, ...).
# Uses .tools/bin/temporal when installed (scripts/install-tools.sh), else `temporal` on PATH.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
ROOT="$(dirname "$HERE")"
if [[ $# -lt 1 || $# -gt 2 || "$1" == -h || "$1" == --help ]]; then
    sed -n '2,10p' "$0" | sed 's/^# \{0,1\}//' >&2
    exit 2
fi
ADDRESS="$1"
NAMESPACE="${2:-${TEMPORAL_NAMESPACE:-default}}"
TEMPORAL="$ROOT/.tools/bin/temporal"
[[ -x "$TEMPORAL" ]] || TEMPORAL="$(command -v temporal)" \
    || { echo "temporal CLI not found (run scripts/install-tools.sh)" >&2; exit 1; }

existing="$("$TEMPORAL" operator search-attribute list --address "$ADDRESS" \
    --namespace "$NAMESPACE" --output json)"

rc=0
while IFS='=' read -r name type; do
    # Current type of NAME: "" when absent, else e.g. KEYWORD, DATETIME, KEYWORDLIST.
    have="$(python3 -c '
import json, sys
d = json.loads(sys.argv[1])
t = {**(d.get("systemAttributes") or {}), **(d.get("customAttributes") or {})}.get(sys.argv[2], "")
print(t.upper().replace("INDEXED_VALUE_TYPE_", "").replace("_", ""))
' "$existing" "$name")"
    want="$(tr '[:lower:]' '[:upper:]' <<<"$type")"
    if [[ -z "$have" ]]; then
        echo "create $name ($type)"
        "$TEMPORAL" operator search-attribute create --address "$ADDRESS" \
            --namespace "$NAMESPACE" --name "$name" --type "$type" >/dev/null
    elif [[ "$have" == "$want" ]]; then
        echo "ok     $name ($type)"
    else
        echo "ERROR  $name exists with type $have, expected $type" >&2
        rc=1
    fi
done < <(sed -e 's/#.*//' -e 's/[[:space:]]//g' "$HERE/search-attributes.txt" | grep -E '^[A-Za-z_][A-Za-z0-9_]*=[A-Za-z]+$')
exit $rc

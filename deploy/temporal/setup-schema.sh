#!/usr/bin/env bash
# One-shot job (temporalio/admin-tools image) run by docker-compose.yml before the Temporal server:
# creates the `temporal` and `temporal_visibility` databases if missing and brings both schemas to
# the version shipped in this admin-tools image. Idempotent: a second run only checks versions.
#
# Environment: SQL_HOST (postgresql), SQL_PORT (5432), SQL_USER, SQL_PASSWORD (read by
# temporal-sql-tool itself), SQL_PLUGIN (postgres12).
set -euo pipefail

: "${SQL_HOST:=postgresql}" "${SQL_PORT:=5432}" "${SQL_USER:=temporal}" "${SQL_PLUGIN:=postgres12}"
: "${SQL_PASSWORD:?SQL_PASSWORD is required}"
export SQL_PASSWORD PGPASSWORD="$SQL_PASSWORD"
SCHEMA_ROOT=/etc/temporal/schema/postgresql/v12

sql_tool() {
    temporal-sql-tool --plugin "$SQL_PLUGIN" --ep "$SQL_HOST" -p "$SQL_PORT" -u "$SQL_USER" "$@"
}

echo "waiting for PostgreSQL at $SQL_HOST:$SQL_PORT"
for _ in $(seq 1 60); do
    if psql -h "$SQL_HOST" -p "$SQL_PORT" -U "$SQL_USER" -d postgres -tAc 'select 1' >/dev/null 2>&1; then break; fi
    sleep 1
done

for spec in temporal:temporal visibility:temporal_visibility; do
    kind="${spec%%:*}" db="${spec#*:}"
    exists="$(psql -h "$SQL_HOST" -p "$SQL_PORT" -U "$SQL_USER" -d postgres -tAc \
        "select 1 from pg_database where datname = '$db'")"
    if [[ "$exists" != 1 ]]; then
        echo "creating database $db"
        sql_tool --db "$db" create
    fi
    echo "schema of $db"
    sql_tool --db "$db" setup-schema -v 0.0
    sql_tool --db "$db" update-schema -d "$SCHEMA_ROOT/$kind/versioned"
done
echo "Temporal schema ready"

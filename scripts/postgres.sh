#!/usr/bin/env bash
# Start a real PostgreSQL server for the test profile and print the connection settings as shell assignments.
# As root: the Debian cluster (pgtest refuses to run as root). Not root: print nothing; the tests then start a
# throw-away cluster with pgtest themselves.
set -euo pipefail
[ "$(id -u)" -eq 0 ] || exit 0
if ! ls /usr/lib/postgresql/*/bin/pg_ctl >/dev/null 2>&1; then
  apt-get update -qq >&2 && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >&2
fi
PGVER=$(ls /usr/lib/postgresql | sort -V | tail -1)
pg_lsclusters -h | grep -q "^$PGVER main" || pg_createcluster "$PGVER" main >&2
pg_ctlcluster "$PGVER" main start >&2 2>/dev/null || true   # 'already running' is fine
for _ in $(seq 1 120); do runuser -u postgres -- pg_isready -q && break; sleep 0.5; done
runuser -u postgres -- pg_isready -q
PORT=$(pg_lsclusters -h | awk -v v="$PGVER" '$1==v && $2=="main" {print $3}')
runuser -u postgres -- psql -p "$PORT" -qtAc "SELECT 1 FROM pg_roles WHERE rolname='aiida_mlip'" | grep -q 1 \
  || runuser -u postgres -- psql -p "$PORT" -qc "CREATE ROLE aiida_mlip LOGIN PASSWORD 'aiida_mlip' CREATEDB" >&2
echo "export MLIP_TRAINER_PG_HOST=localhost MLIP_TRAINER_PG_PORT=$PORT MLIP_TRAINER_PG_USER=aiida_mlip MLIP_TRAINER_PG_PASSWORD=aiida_mlip"

#!/bin/sh
# PostgreSQL first-start script (docker-entrypoint-initdb.d, runs once as the postgres user in
# the postgres container): the five schemas and roles from deploy/init.sql (each role owns only
# its own schema), then each role's password from its Compose secret. psql connects through the
# entrypoint's local socket (PGHOST/PGPORT may point elsewhere, e.g. for a test).
# Environment: POSTGRES_DB (the database), CARA_INIT_SQL (default /etc/cara-init/init.sql),
# CARA_SECRETS (default /run/secrets).
set -eu
db=${POSTGRES_DB:-cara}
sql=${CARA_INIT_SQL:-/etc/cara-init/init.sql}
secrets=${CARA_SECRETS:-/run/secrets}
psql -X -q -v ON_ERROR_STOP=1 -U "${POSTGRES_USER:-postgres}" -d "$db" -v db="$db" -f "$sql"
for s in intake triage booking billing national; do
  if [ ! -s "$secrets/db_$s" ]; then
    echo "init-db: no password in $secrets/db_$s (run deploy/compose/make-secrets.sh)" >&2
    exit 1
  fi
  pw=$(head -n 1 "$secrets/db_$s")
  # From stdin, not -c: psql interpolates :'pw' (quoted safely) only in script input.
  echo "ALTER ROLE :\"role\" PASSWORD :'pw';" |
    psql -X -q -v ON_ERROR_STOP=1 -U "${POSTGRES_USER:-postgres}" -d "$db" -v pw="$pw" \
         -v role="cara_$s"
done
echo "init-db: schemas, roles and passwords for intake triage booking billing national in $db"

#!/bin/sh
# PostgreSQL init (runs once, in the postgres container): each service role's password from
# its Compose secret.
set -eu
for s in intake triage booking billing national; do
  pw=$(head -n 1 "/run/secrets/db_$s")
  psql -v ON_ERROR_STOP=1 -U postgres -d cara -v pw="$pw" -v role="cara_$s" \
       -c "ALTER ROLE :\"role\" PASSWORD :'pw'"
done

#!/usr/bin/env bash
# Creates what docker-compose.yml mounts: database passwords, each service's CURVE key pair,
# the key ring (a directory, so that `cara keys new/revoke` reach running services), and the
# pseudonym secret. Run once, from the repository root, after `make` (it uses bin/cara).
set -euo pipefail
cd "$(dirname "$0")/../.."
dir=deploy/compose/secrets
mkdir -p "$dir" deploy/compose/keyring
umask 077
rand() { head -c 24 /dev/urandom | od -An -tx1 | tr -d ' \n'; }
[ -f "$dir/pg_superuser_password" ] || rand > "$dir/pg_superuser_password"
[ -f "$dir/pseudonym_secret" ] || rand > "$dir/pseudonym_secret"
for s in intake triage booking billing national; do
  [ -f "$dir/db_$s" ] || rand > "$dir/db_$s"
  [ -f "$dir/$s.key" ] || bin/cara keys new --role service --org "$s" --out "$dir/$s.key" \
      --keyring deploy/compose/keyring/keyring.json --name "$s" >/dev/null
done
chmod 0644 deploy/compose/keyring/keyring.json
echo "secrets in $dir, key ring in deploy/compose/keyring/keyring.json"
echo "add partners with: bin/cara keys new --role police --org dyfed-powys --out FILE --keyring deploy/compose/keyring/keyring.json"

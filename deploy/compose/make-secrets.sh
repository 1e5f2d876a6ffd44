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
# An operator identity for `cara status` / `cara deadletter` from this host (published ports).
[ -f "$dir/operator.key" ] || bin/cara keys new --role operator --org ops --out "$dir/operator.key" \
    --keyring deploy/compose/keyring/keyring.json --name operator-ops >/dev/null
cat > "$dir/operator.json" <<JSON
{"keys": {"secret_file": "operator.key", "keyring": "../keyring/keyring.json"},
 "services": {"intake": {"router": "tcp://127.0.0.1:7101"}, "triage": {"router": "tcp://127.0.0.1:7111"},
              "booking": {"router": "tcp://127.0.0.1:7121"}, "billing": {"router": "tcp://127.0.0.1:7131"},
              "national": {"router": "tcp://127.0.0.1:7141"}}}
JSON
chmod 0644 deploy/compose/keyring/keyring.json
# Compose (without Swarm) bind-mounts each secret file with its host owner and mode, and the
# containers run as other users (cara, uid 10001; postgres, uid 999): the files must be
# readable by them. The directory stays private to you on the host (0700), so only the
# containers that list a secret can read it.
chmod 0700 "$dir"
chmod 0644 "$dir"/*
echo "secrets in $dir, key ring in deploy/compose/keyring/keyring.json"
echo "after docker compose up: bin/cara --config $dir/operator.json status"
echo "add partners with: bin/cara keys new --role police --org dyfed-powys --out FILE --keyring deploy/compose/keyring/keyring.json"

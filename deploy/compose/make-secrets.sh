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
# `cara keys` writes the ring 0644 whatever the umask (the services read it as uid 10001); the
# services refuse a ring that group or other could write. Its directory (mounted as is) must be
# enterable by them too, also when it was made under a strict umask.
chmod 0755 deploy/compose/keyring
chmod 0644 deploy/compose/keyring/keyring.json
# Compose (without Swarm) bind-mounts each secret file with its host owner and mode, and ignores
# the long syntax's uid/gid/mode; the containers run as other users (cara, uid 10001; postgres,
# uid 999), so a file a container reads must be readable by "other": 0604 (the group bit would
# only reach your own group on the host). cara accepts such a file only because it is owned by
# another user than the one reading it, and only if no one but its owner can write it.
# operator.key is read only here, by bin/cara as you: 0600, and cara refuses it if it is looser.
# The directory stays private to you on the host (0700), so on the host no one else can reach
# any of them, and in the containers only those that list a secret have it.
chmod 0700 "$dir"
chmod 0604 "$dir"/pg_superuser_password "$dir"/pseudonym_secret "$dir"/db_* "$dir"/{intake,triage,booking,billing,national}.key
chmod 0600 "$dir/operator.key"
chmod 0644 "$dir/operator.json"  # addresses and file names, no secret
echo "secrets in $dir, key ring in deploy/compose/keyring/keyring.json"
echo "after docker compose up: bin/cara --config $dir/operator.json status"
echo "add partners with: bin/cara keys new --role police --org dyfed-powys --out FILE --keyring deploy/compose/keyring/keyring.json"

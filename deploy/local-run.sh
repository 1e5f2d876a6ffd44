#!/usr/bin/env bash
# `make run`: the whole system on this machine, no Docker. A PostgreSQL cluster under ./var/pg
# (private socket, own port), keys and configs under ./var, the five services in the
# background, logs in ./var/log. Ctrl-C stops everything (the cluster too, unless it was already
# running or CARA_KEEP_PG=1). A second run reuses the data.
set -euo pipefail
cd "$(dirname "$0")/.."
top=$PWD
var=$top/var
pg_port=${CARA_PG_PORT:-55432}
base=${CARA_BASE_PORT:-7100}
services=(intake triage booking billing national)
mkdir -p "$var/etc" "$var/keys" "$var/log"

# --- stopping ---------------------------------------------------------------------------
# On any exit (a failed step under set -e, Ctrl-C, TERM, a service that died): stop the
# services started, and the PostgreSQL cluster if this run started it (never one that was
# already running: a CARA_KEEP_PG=1 run, or another `make run` of this checkout). pg_ctl starts
# the postmaster in its own session, so an interrupt does not reach it: only this stops it.
pids=()
started_pg=0
up=0
stop_all() {
  trap - INT TERM EXIT
  if [ ${#pids[@]} -gt 0 ]; then
    echo; echo "stopping services..."
    for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
    for p in "${pids[@]}"; do wait "$p" 2>/dev/null || true; done
  fi
  if [ "$started_pg" = 1 ] && [ "${CARA_KEEP_PG:-0}" != 1 ]; then
    deploy/pg-cluster.sh stop "$pgdir"
    echo "PostgreSQL stopped."
  elif [ "$started_pg" = 1 ]; then
    echo "PostgreSQL left running (CARA_KEEP_PG=1): deploy/pg-cluster.sh stop $pgdir"
  fi
}
trap stop_all EXIT
trap 'exit $(( up ? 0 : 130 ))' INT TERM

# --- PostgreSQL -------------------------------------------------------------------------
pgdir=$var/pg
if [ "$(id -u)" = 0 ] && ! runuser -u postgres -- test -x "$var" 2>/dev/null; then
  # The postgres user cannot reach ./var (e.g. the checkout is under /root or a 0700 home): keep
  # the cluster in a folder it can reach and link it from ./var/pg.
  real=/var/tmp/cara-pg-$(printf '%s' "$top" | md5sum | cut -c1-12)
  if [ -e "$var/pg" ] && [ ! -L "$var/pg" ]; then
    if [ -d "$var/pg" ] && [ -z "$(ls -A "$var/pg")" ]; then
      rmdir "$var/pg"
    else
      # Never delete it: it is most likely the database of an earlier `make run` as its owner.
      owner=$(stat -c %U "$var/pg")
      echo "local-run: $var/pg already holds data (owner $owner), but the postgres user cannot" >&2
      echo "  reach $var, so as root the cluster cannot be kept there. Left untouched. Either run" >&2
      echo "  \`make run\` as $owner, let postgres reach $var (x on every folder above it), or move" >&2
      echo "  $var/pg away first." >&2
      exit 1
    fi
  fi
  # The name can be guessed and /var/tmp is open to all: pg-cluster.sh refuses it if anyone but
  # postgres or root made it or may write it, and makes it 0700 if it is new.
  [ -L "$var/pg" ] || ln -s "$real" "$var/pg"
  pgdir=$real
fi
# Before anything talks to a socket in it: a socket someone else could plant is not our cluster.
deploy/pg-cluster.sh check "$pgdir"
pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
pg_as_owner() { if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi; }
if ! "$pgbin/pg_isready" -q -h "$pgdir/socket" -p "$pg_port" 2>/dev/null; then
  if pg_as_owner "$pgbin/pg_ctl" -D "$pgdir/data" status >/dev/null 2>&1; then
    echo "local-run: a PostgreSQL server runs on $pgdir/data but does not answer on port" >&2
    echo "  $pg_port (another CARA_PG_PORT?); stop it (deploy/pg-cluster.sh stop $pgdir) or use its port." >&2
    exit 1
  fi
  started_pg=1 # before the start, so that an interrupt during it still stops the cluster
  deploy/pg-cluster.sh start "$pgdir" "$pg_port"
fi
sock=$pgdir/socket
psql_su() { PGOPTIONS='-c client_min_messages=warning' psql -X -q -v ON_ERROR_STOP=1 -h "$sock" -p "$pg_port" -U postgres "$@"; }
if [ -z "$(psql_su -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname = 'cara'")" ]; then
  psql_su -d postgres -c "CREATE DATABASE cara"
fi
psql_su -d cara -v db=cara -f deploy/init.sql >/dev/null

# Keys, the pseudonym secret and the configs that name them are for this user only (also those
# an earlier run left readable).
umask 077
chmod 0700 "$var/keys" "$var/etc"
chmod 0600 "$var/keys/"* "$var/etc/"* 2>/dev/null || true

# --- keys and key ring ------------------------------------------------------------------
ring=$var/keys/keyring.json
newkey() { # role org file
  [ -f "$var/keys/$3.key" ] || bin/cara keys new --role "$1" --org "$2" --out "$var/keys/$3.key" \
      --keyring "$ring" --name "$3" >/dev/null
}
for s in "${services[@]}"; do newkey service "$s" "$s"; done
newkey operator local operator
newkey police dyfed-powys police-dyfed-powys
newkey police gwent police-gwent
newkey triage diversion triage-diversion
newkey provider p1 provider-p1
newkey victim_contact p1 victim-contact-p1
newkey finance p1 finance-p1
newkey commissioner opcc-dyfed-powys commissioner-dyfed-powys
newkey hampton_trust hampton-trust hampton-trust

# --- configuration ----------------------------------------------------------------------
port_of() { # service index -> router port; pub = +1
  echo $(( base + 1 + 10 * $1 ))
}
ep() { local i; for i in "${!services[@]}"; do if [ "${services[$i]}" = "$1" ]; then echo "tcp://127.0.0.1:$(( $(port_of "$i") + $2 ))"; fi; done; }
upstream() { printf '"%s": {"router": "%s", "pub": "%s"}' "$1" "$(ep "$1" 0)" "$(ep "$1" 1)"; }
# Service settings for the local two-force deployment (Dyfed-Powys and Gwent, provider p1).
local_settings() {
  case $1 in
    intake) echo '"forces": {"dyfed-powys": {"deadline_weeks": 16}, "gwent": {"deadline_weeks": 16}}' ;;
    triage) echo '"routing": [{"force": "dyfed-powys", "provider": "p1", "from": "2024-04-01"}, {"force": "gwent", "provider": "p1", "from": "2024-04-01"}]' ;;
    *) echo "" ;;
  esac
}
secret=$var/keys/pseudonym.secret
[ -f "$secret" ] || head -c 32 /dev/urandom | od -An -tx1 | tr -d ' \n' > "$secret"
for i in "${!services[@]}"; do
  s=${services[$i]}
  case $s in
    intake) ups="$(upstream triage), $(upstream booking)" ;;
    triage) ups="$(upstream intake), $(upstream booking)" ;;
    booking) ups="$(upstream triage)" ;;
    billing) ups="$(upstream booking)" ;;
    national) ups="$(upstream intake), $(upstream triage), $(upstream booking)" ;;
  esac
  extra=$(local_settings "$s")
  # Only intake and national pseudonymise; the other services never get the secret.
  pseudonym=""
  case $s in intake|national) pseudonym="\"pseudonym_secret\": \"$(cat "$secret")\"," ;; esac
  cat > "$var/etc/$s.json" <<JSON
{
  "service": "$s",
  "db": {"conninfo": "host=$sock port=$pg_port dbname=cara user=cara_$s"},
  "bind": {"router": "$(ep "$s" 0)", "pub": "$(ep "$s" 1)"},
  "keys": {"secret_file": "$var/keys/$s.key", "keyring": "$ring"},
  "upstreams": {$ups},
  $pseudonym
  "log_level": "info"${extra:+,
  $extra}
}
JSON
done
client_config() { # name
  local endpoints="" s
  for s in "${services[@]}"; do
    endpoints+="${endpoints:+, }\"$s\": {\"router\": \"$(ep "$s" 0)\", \"pub\": \"$(ep "$s" 1)\"}"
  done
  cat > "$var/etc/client-$1.json" <<JSON
{
  "keys": {"secret_file": "$var/keys/$1.key", "keyring": "$ring"},
  "services": {$endpoints}
}
JSON
}
for who in operator police-dyfed-powys police-gwent triage-diversion provider-p1 victim-contact-p1 finance-p1 \
           commissioner-dyfed-powys hampton-trust; do client_config "$who"; done
cp "$var/etc/client-operator.json" "$var/etc/client.json"

# --- a sample referral for today ---------------------------------------------------------
# examples/referral.json is a fixed document (its caution is long past, so triage would return
# it as out of time). The tour submits a copy cautioned yesterday, with a reference of its own.
mkdir -p "$var/examples"
yesterday=$(date -u -d yesterday +%Y-%m-%d)
sed -e "s/\"given_at\": \"[^\"]*\"/\"given_at\": \"${yesterday}T16:20:00Z\"/" \
    -e "s/\"caution_reference\": \"[^\"]*\"/\"caution_reference\": \"DP-$(date -u +%Y%m%d)-004711\"/" \
    examples/referral.json > "$var/examples/referral.json"

# --- services ---------------------------------------------------------------------------
up=1 # from here Ctrl-C is the normal way to stop (exit 0)
for s in "${services[@]}"; do
  bin/cara-"$s" --config "$var/etc/$s.json" >>"$var/log/$s.log" 2>&1 &
  pids+=($!)
done
start=$(date +%s)
until bin/cara --config "$var/etc/client.json" status >/dev/null 2>&1; do
  if [ $(( $(date +%s) - start )) -ge 30 ]; then
    echo "services not healthy after 30 s:"; bin/cara --config "$var/etc/client.json" status || true
    echo "logs: $var/log/"; exit 1
  fi
  sleep 0.5
done
bin/cara --config "$var/etc/client.json" status || true
cat <<EOF

cara is up (healthy after $(( $(date +%s) - start )) s).
  PostgreSQL   socket $sock, port $pg_port, database cara (psql -h $sock -p $pg_port -U postgres cara)
  services     $(for s in "${services[@]}"; do printf '%s %s  ' "$s" "$(ep "$s" 0)"; done)
  logs         $var/log/<service>.log (JSON lines)
  clients      $var/etc/client-<identity>.json (operator, police-dyfed-powys, police-gwent,
               triage-diversion, provider-p1, victim-contact-p1, finance-p1,
               commissioner-dyfed-powys, hampton-trust)

Submit a referral as Dyfed-Powys Police:
  bin/cara --config $var/etc/client-police-dyfed-powys.json referral submit $var/examples/referral.json
See the police-facing outcomes:
  bin/cara --config $var/etc/client-police-dyfed-powys.json outcomes --after 0
Health of everything:
  bin/cara --config $var/etc/client.json status

Ctrl-C stops everything.
EOF
if [ "${CARA_RUN_ONCE:-0}" = 1 ]; then exit 0; fi
wait -n "${pids[@]}" || true
echo "a service exited; see $var/log/"
exit 1

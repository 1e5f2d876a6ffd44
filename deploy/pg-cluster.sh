#!/usr/bin/env bash
# A private PostgreSQL cluster for the local stack and the tests.
#   pg-cluster.sh start DIR PORT   initdb if needed, then start (socket in DIR/socket, no TCP)
#   pg-cluster.sh stop DIR         fast shutdown
#   pg-cluster.sh restart-immediate DIR PORT  crash-like restart (fault tests)
# initdb refuses to run as root: as root, the cluster belongs to the `postgres` user.
set -euo pipefail
cmd=${1:?usage: pg-cluster.sh start|stop|restart-immediate DIR [PORT] [extra postgres -c options]}
dir=${2:?missing DIR}
port=${3:-5432}
shift 3 2>/dev/null || shift $#
pgbin=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1)
[ -x "$pgbin/initdb" ] || { echo "pg-cluster: PostgreSQL server binaries not found (apt-get install postgresql)" >&2; exit 1; }

as_owner() {
  if [ "$(id -u)" = 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

start() {
  mkdir -p "$dir"
  if [ "$(id -u)" = 0 ]; then chown postgres: "$dir"; fi
  if [ ! -f "$dir/data/PG_VERSION" ]; then
    as_owner "$pgbin/initdb" -D "$dir/data" -U postgres --auth=trust -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
      || { cat "$dir/initdb.log" >&2; exit 1; }
  fi
  # The cluster trusts every local connection (--auth=trust), so only its owner (and root) may
  # reach the socket.
  as_owner mkdir -p "$dir/socket"
  chmod 0700 "$dir/socket" 2>/dev/null || as_owner chmod 0700 "$dir/socket"
  local opts="-k $dir/socket -p $port -c listen_addresses= -c max_connections=300 $*"
  as_owner "$pgbin/pg_ctl" -D "$dir/data" -l "$dir/postgres.log" -o "$opts" -w -t 60 start >/dev/null
}

case "$cmd" in
  start) start "$@" ;;
  stop) as_owner "$pgbin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true ;;
  restart-immediate)
    as_owner "$pgbin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    start "$@" ;;
  *) echo "pg-cluster: unknown command $cmd" >&2; exit 2 ;;
esac

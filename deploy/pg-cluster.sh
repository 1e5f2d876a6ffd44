#!/usr/bin/env bash
# A private PostgreSQL cluster for the local stack and the tests.
#   pg-cluster.sh start DIR PORT   initdb if needed, then start (socket in DIR/socket, no TCP)
#   pg-cluster.sh stop DIR         fast shutdown
#   pg-cluster.sh restart-immediate DIR PORT  crash-like restart (fault tests)
#   pg-cluster.sh check DIR        exit 1 (and say why) if DIR is not safe to use (see check)
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

# The cluster trusts every local connection (--auth=trust), so DIR, its socket directory and its
# data directory must be the cluster owner's (postgres as root, else you) or root's, and no one
# else may write them. A directory another user made first at a name that can be guessed (as
# root, `make run` keeps the cluster in /var/tmp) would let them reach the socket, plant a socket
# of their own, or write the cluster's configuration: refuse it, and never take it over (chown).
check() {
  local owner_uid p uid mode
  if [ "$(id -u)" = 0 ]; then owner_uid=$(id -u postgres); else owner_uid=$(id -u); fi
  for p in "$dir" "$dir/socket" "$dir/data"; do
    [ -e "$p" ] || [ -L "$p" ] || continue
    if [ -L "$p" ] || [ ! -d "$p" ]; then
      echo "pg-cluster: $p is not a directory (a symbolic link?); refusing to use it" >&2; return 1
    fi
    uid=$(stat -c %u "$p"); mode=$(stat -c %a "$p")
    if [ "$uid" != 0 ] && [ "$uid" != "$owner_uid" ]; then
      echo "pg-cluster: $p belongs to $(stat -c %U "$p"), not to the cluster's owner" \
           "($(id -un "$owner_uid")) or root; refusing to use it (someone else made it?)." >&2
      echo "  Look at what is in it, then remove it, or use another location." >&2
      return 1
    fi
    if (( 8#$mode & 8#022 )); then
      echo "pg-cluster: $p is mode $mode: group or other may write it; refusing to use it." >&2
      echo "  Look at what is in it, then remove it (or chmod go-w it), or use another location." >&2
      return 1
    fi
  done
}

start() {
  check || exit 1
  # shellcheck disable=SC2174 # the mode is meant for DIR itself, not its parents
  mkdir -p -m 0700 "$dir"
  check || exit 1 # made by someone else between the check and mkdir
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
  check) check ;;
  stop) as_owner "$pgbin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null 2>&1 || true ;;
  restart-immediate)
    as_owner "$pgbin/pg_ctl" -D "$dir/data" -m immediate -w stop >/dev/null 2>&1 || true
    start "$@" ;;
  *) echo "pg-cluster: unknown command $cmd" >&2; exit 2 ;;
esac

#!/usr/bin/env bash
# The test runner: unit tests, then integration tests against one throwaway PostgreSQL cluster
# (each test binary makes its own database). Each test runs in its own process group with a
# time limit; anything it leaves running is killed and counted as a failure.
# Usage: tests/run.sh UNIT_BINARIES... -- INTEGRATION_BINARIES...
set -uo pipefail
cd "$(dirname "$0")/.."
unit=(); integ=(); seen_sep=0
for a in "$@"; do
  if [ "$a" = "--" ]; then seen_sep=1; elif [ $seen_sep = 0 ]; then unit+=("$a"); else integ+=("$a"); fi
done
limit=${CARA_TEST_TIMEOUT:-900}
# Without these the check for leftover processes would silently count none.
for tool in pgrep setsid timeout; do
  command -v "$tool" >/dev/null ||
    { echo "tests/run.sh: $tool not found (Debian: apt-get install procps util-linux coreutils)"; exit 1; }
done
failed=(); passed=0
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=0}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}

run_one() {
  local t=$1 start rc leftover
  start=$(date +%s)
  echo "=== $t"
  # Own process group (setsid), so whatever the test starts can be found and killed after it.
  setsid timeout -s KILL "$limit" "$t" &
  local pid=$!
  wait "$pid"; rc=$?
  leftover=$(pgrep -g "$pid" 2>/dev/null | wc -l)
  if [ "$leftover" -gt 0 ]; then
    echo "!!! $t left $leftover process(es) behind; killing them"
    kill -KILL -- "-$pid" 2>/dev/null
    rc=${rc/#0/1}
  fi
  if [ "$rc" = 0 ]; then passed=$((passed + 1)); echo "--- ok $t ($(( $(date +%s) - start ))s)";
  else failed+=("$t"); echo "--- FAILED $t (exit $rc, $(( $(date +%s) - start ))s)"; fi
}

for t in "${unit[@]}"; do run_one "$t"; done

if [ ${#integ[@]} -gt 0 ]; then
  cluster=$(mktemp -d /tmp/cara-pg-XXXXXX)
  chmod 0755 "$cluster"
  port=$(( 20000 + RANDOM % 20000 ))
  cleanup() { deploy/pg-cluster.sh stop "$cluster/pg"; rm -rf "$cluster"; }
  trap cleanup EXIT
  # fsync off: a throwaway test cluster needs no protection from an OS crash.
  deploy/pg-cluster.sh start "$cluster/pg" "$port" -c fsync=off || { echo "cannot start test cluster"; exit 1; }
  export CARA_TEST_PGHOST="$cluster/pg/socket" CARA_TEST_PGPORT="$port" CARA_TEST_PGDATA="$cluster/pg"
  psql -X -q -v ON_ERROR_STOP=1 -h "$CARA_TEST_PGHOST" -p "$port" -U postgres -d postgres \
       -v db=postgres -f deploy/init.sql >/dev/null || { echo "cannot create roles"; exit 1; }
  for t in "${integ[@]}"; do run_one "$t"; done
fi

echo
echo "tests passed: $passed, failed: ${#failed[@]}"
for f in "${failed[@]}"; do echo "  FAILED: $f"; done
[ ${#failed[@]} = 0 ]

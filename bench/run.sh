#!/usr/bin/env bash
# make bench: figures measured against this machine's own limit in the same run.
# 1. pgbench: one-row INSERT, 8 clients, synchronous_commit on, 20 s: durable commits/s.
# 2. intake: 8 police clients over CURVE, 20 s: acknowledged referrals/s, ack p50/p99.
# 3. replay: a consumer catching up on a backlog of events: events/s.
# The cluster runs with fsync on and synchronous_commit on (durable), unlike the test cluster.
set -euo pipefail
cd "$(dirname "$0")/.."
seconds=${BENCH_SECONDS:-20}
replay_events=${BENCH_REPLAY_EVENTS:-200000}
mkdir -p bench/results build/bench
cflags="-std=c11 -O2 -g -D_GNU_SOURCE -pthread -Iinclude -Ibuild/gen -Itests/support $(pkg-config --cflags jansson libsodium libprotobuf-c libzmq) -I$(pg_config --includedir)"
libs="build/libcaratest.a build/libcara.a $(pkg-config --libs libzmq libprotobuf-c jansson libsodium) -lpq -lm -pthread"
cc $cflags -o build/bench/bench_intake bench/bench_intake.c $libs
cc $cflags -o build/bench/bench_replay bench/bench_replay.c $libs

cluster=$(mktemp -d /tmp/cara-bench-XXXXXX); chmod 0755 "$cluster"
port=$(( 20000 + RANDOM % 10000 ))
trap 'deploy/pg-cluster.sh stop "$cluster/pg"; rm -rf "$cluster"' EXIT
deploy/pg-cluster.sh start "$cluster/pg" "$port"
export CARA_TEST_PGHOST="$cluster/pg/socket" CARA_TEST_PGPORT="$port"
psql -X -q -h "$CARA_TEST_PGHOST" -p "$port" -U postgres -d postgres -v db=postgres \
     -f deploy/init.sql >/dev/null
pgbin=$(ls -d /usr/lib/postgresql/*/bin | sort -V | tail -n 1)
psql -X -q -h "$CARA_TEST_PGHOST" -p "$port" -U postgres -d postgres \
     -c "CREATE TABLE IF NOT EXISTS bench_row (id bigserial PRIMARY KEY, v text)" >/dev/null
echo "INSERT INTO bench_row (v) VALUES ('x');" > "$cluster/insert.sql"
echo "pgbench: 8 clients, ${seconds}s, one-row INSERT, synchronous_commit on ..."
pg_tps=$("$pgbin/pgbench" -h "$CARA_TEST_PGHOST" -p "$port" -U postgres -n -c 8 -j 2 \
         -T "$seconds" -f "$cluster/insert.sql" postgres 2>/dev/null \
         | awk '/^tps/ {print $3; exit}')
echo "intake: 8 clients, ${seconds}s ..."
intake=$(build/bench/bench_intake 8 "$seconds" 2>/dev/null | tail -n 1)
echo "replay: $replay_events events ..."
replay=$(build/bench/bench_replay "$replay_events" 2>/dev/null | tail -n 1)
cat > bench/results/latest.json <<JSON
{"machine": "$(nproc) cores", "pgbench_tps": $pg_tps, "intake": $intake, "replay": $replay}
JSON
python_free_ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
ack=$(echo "$intake" | sed -E 's/.*"acked_per_s": ([0-9.]+).*/\1/')
eps=$(echo "$replay" | sed -E 's/.*"events_per_s": ([0-9.]+).*/\1/')
printf '\n%-44s %12s %10s\n' "figure" "value" "x pgbench"
printf '%-44s %12s %10s\n' "pgbench durable one-row commits/s (8 clients)" "$pg_tps" "1.00"
printf '%-44s %12s %10s\n' "intake acknowledged referrals/s (8 clients)" "$ack" "$(python_free_ratio "$ack" "$pg_tps")"
printf '%-44s %12s\n' "intake ack latency p50 / p99 (ms)" "$(echo "$intake" | sed -E 's/.*"p50_ms": ([0-9.]+), "p99_ms": ([0-9.]+).*/\1 \/ \2/')"
printf '%-44s %12s\n' "intake peak RSS (kB)" "$(echo "$intake" | sed -E 's/.*"intake_rss_kb": ([0-9-]+).*/\1/')"
printf '%-44s %12s %10s\n' "replay events/s (consumer from zero)" "$eps" "$(python_free_ratio "$eps" "$pg_tps")"
printf '%-44s %12s\n' "consumer peak RSS (kB)" "$(echo "$replay" | sed -E 's/.*"consumer_rss_kb": ([0-9-]+).*/\1/')"
echo; echo "written: bench/results/latest.json"

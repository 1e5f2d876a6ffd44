#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (-fsanitize=fuzzer,address,undefined) and runs each
# for FUZZ_SECONDS (default 60; `make test` runs them for 15 s each). Any crash, leak or
# sanitizer report fails the run and leaves the reproducer in build/fuzz/<target>/.
#
# protobuf-c: the targets link Debian's libprotobuf-c 1.4.1, which is not instrumented, so
# UBSan cannot see inside it: the known shift in parse_tag_and_wiretype (a byte shifted left
# by up to 28 bits in a signed int) is not reported by these runs, and we do not hide it with a
# suppression either. It is upstream's (fixed after 1.4.1); our decoders never depend on the
# shifted value beyond protobuf-c's own bounds checks. Everything of ours (envelope, pbjson,
# intake validation, the generated descriptors' use) is instrumented and any finding fails.
set -uo pipefail
cd "$(dirname "$0")/../.."
seconds=${FUZZ_SECONDS:-60}
out=build/fuzz
mkdir -p "$out"
command -v clang >/dev/null || { echo "fuzz: clang not installed"; exit 1; }
cflags="-std=c11 -g -O1 -D_GNU_SOURCE -fsanitize=fuzzer,address,undefined -fno-sanitize-recover=undefined -Iinclude -Ibuild/gen -Iservices/intake $(pkg-config --cflags libprotobuf-c jansson libsodium)"
libs="$(pkg-config --libs libprotobuf-c jansson libsodium) -lm"
gen="build/gen/envelope.pb-c.c build/gen/intake.pb-c.c build/gen/triage.pb-c.c build/gen/booking.pb-c.c build/gen/billing.pb-c.c build/gen/national.pb-c.c"
common="common/envelope.c common/uuid.c common/timeutil.c common/pbjson.c common/reply.c common/log.c"
status=0
for target in envelope referral; do
  extra=""
  [ "$target" = referral ] && extra="services/intake/intake_validate.c"
  # shellcheck disable=SC2086
  clang $cflags -o "$out/fuzz_$target" "tests/fuzz/fuzz_$target.c" $common $extra $gen $libs \
    || { echo "fuzz: cannot build fuzz_$target"; exit 1; }
  mkdir -p "$out/$target"
  corpus="$out/$target/corpus"; mkdir -p "$corpus"
  cp -n tests/fuzz/corpus/"$target"/* "$corpus"/ 2>/dev/null || true
  echo "fuzz_$target: ${seconds}s"
  if ! "$out/fuzz_$target" -max_total_time="$seconds" -max_len=65536 -artifact_prefix="$out/$target/" \
       -print_final_stats=1 "$corpus" > "$out/$target/log" 2>&1; then
    echo "fuzz_$target FOUND A PROBLEM:"; tail -40 "$out/$target/log"; status=1
  else
    grep -E "stat::number_of_executed_units|cov:" "$out/$target/log" | tail -2
  fi
done
exit $status

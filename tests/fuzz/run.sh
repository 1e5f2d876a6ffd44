#!/usr/bin/env bash
# Builds the libFuzzer targets with clang (-fsanitize=fuzzer,address,undefined) and runs each for
# FUZZ_SECONDS (default 60; `make test` runs them for 15 s each). Any crash, leak, timeout or
# sanitizer report fails the run and leaves the reproducer in build/fuzz/<target>/.
#
# protobuf-c is compiled into the targets from Debian's own source package for the installed
# version (instrumented: coverage and sanitizers see inside the decoder), with exactly one UBSan
# check suppressed in exactly one function. Why, and what happens without the source:
# tests/fuzz/README.md.
set -uo pipefail
cd "$(dirname "$0")/../.."
seconds=${FUZZ_SECONDS:-60}
out=build/fuzz
mkdir -p "$out"
command -v clang >/dev/null || { echo "fuzz: clang not installed"; exit 1; }

# Prints the directory holding protobuf-c.c of the installed version, or nothing.
pbc_source() {
  local ver up dir
  ver=$(dpkg-query -W -f='${source:Version}' libprotobuf-c-dev 2>/dev/null) || return 0
  up=${ver#*:}; up=${up%-*}
  if [ -n "${PROTOBUF_C_SRC:-}" ]; then dir=$PROTOBUF_C_SRC
  else
    dir=$out/src/protobuf-c-$up
    if [ ! -f "$dir/protobuf-c/protobuf-c.c" ]; then
      # Debian's source package through apt itself (signed index, checksummed files), with a
      # private source list and state so that the system's apt configuration is left alone.
      local a=$out/src/apt codename
      codename=$(. /etc/os-release && echo "${VERSION_CODENAME:-bookworm}")
      mkdir -p "$a/lists/partial" "$a/cache/archives/partial"
      echo "deb-src http://deb.debian.org/debian $codename main" > "$a/sources.list"
      local opts=(-o "Dir::Etc::SourceList=$PWD/$a/sources.list" -o "Dir::Etc::SourceParts=/dev/null"
                  -o "Dir::State::Lists=$PWD/$a/lists" -o "Dir::Cache=$PWD/$a/cache" -o "Debug::NoLocking=1")
      ( cd "$out/src" && timeout 300 apt-get -q "${opts[@]}" update >/dev/null 2>&1 &&
        timeout 300 apt-get -q "${opts[@]}" source --download-only "protobuf-c=$ver" >/dev/null 2>&1 &&
        tar xzf "protobuf-c_$up.orig.tar.gz" ) || true
    fi
  fi
  # Only if it is the very version whose header the generated code compiles against.
  if [ -f "$dir/protobuf-c/protobuf-c.c" ] &&
     cmp -s "$dir/protobuf-c/protobuf-c.h" "$(pkg-config --variable=includedir libprotobuf-c)/protobuf-c/protobuf-c.h"; then
    echo "$dir"
  fi
}

san="-fsanitize=address,undefined -fno-sanitize-recover=undefined"
cflags="-std=c11 -g -O1 -D_GNU_SOURCE -Iinclude -Ibuild/gen -Iservices/intake $(pkg-config --cflags libprotobuf-c jansson libsodium)"
src=$(pbc_source)
if [ -n "$src" ]; then
  # The one known finding (README) is made recoverable so that the suppression file can name it;
  # every other check in protobuf-c still aborts.
  clang $cflags $san -fsanitize=fuzzer-no-link -fsanitize-recover=shift-base -I"$src" \
        -c -o "$out/protobuf-c.o" "$src/protobuf-c/protobuf-c.c" || { echo "fuzz: cannot build protobuf-c"; exit 1; }
  pbc="$out/protobuf-c.o"
  echo "fuzz: protobuf-c $(basename "$src") compiled in, instrumented (suppressed: $(grep -v '^#' tests/fuzz/ubsan.supp | tr '\n' ' '))"
else
  pbc="$(pkg-config --libs libprotobuf-c)"
  echo "fuzz: WARNING protobuf-c source not available: linking the uninstrumented system library (no coverage or UBSan inside the decoder)"
fi
libs="$(pkg-config --libs jansson libsodium) -lm"
gen="build/gen/envelope.pb-c.c build/gen/intake.pb-c.c build/gen/triage.pb-c.c build/gen/booking.pb-c.c build/gen/billing.pb-c.c build/gen/national.pb-c.c"
common="common/envelope.c common/uuid.c common/timeutil.c common/pbjson.c common/reply.c common/log.c common/utf8.c"
intake="services/intake/intake_validate.c services/intake/intake_diff.c"
export ASAN_OPTIONS=detect_leaks=1
export UBSAN_OPTIONS="halt_on_error=1:print_stacktrace=1:suppressions=$PWD/tests/fuzz/ubsan.supp"
status=0
for target in envelope referral intake_commands; do
  # shellcheck disable=SC2086
  clang $cflags $san -fsanitize=fuzzer -o "$out/fuzz_$target" "tests/fuzz/fuzz_$target.c" $common $intake $gen $pbc $libs \
    || { echo "fuzz: cannot build fuzz_$target"; exit 1; }
  mkdir -p "$out/$target"
  corpus="$out/$target/corpus"; mkdir -p "$corpus"
  seeds=tests/fuzz/corpus/$target
  [ "$target" = intake_commands ] && seeds=tests/fuzz/corpus/envelope
  # Regression inputs first (every file must pass as is), then fuzz from corpus + seeds.
  if ! "$out/fuzz_$target" -runs=0 tests/fuzz/corpus/regress/ > "$out/$target/regress.log" 2>&1; then
    echo "fuzz_$target FAILS A REGRESSION INPUT:"; tail -30 "$out/$target/regress.log"; status=1; continue
  fi
  echo "fuzz_$target: ${seconds}s"
  if ! "$out/fuzz_$target" -max_total_time="$seconds" -max_len=65536 -timeout=10 -rss_limit_mb=2048 \
       -artifact_prefix="$out/$target/" -print_final_stats=1 "$corpus" "$seeds" > "$out/$target/log" 2>&1; then
    echo "fuzz_$target FOUND A PROBLEM:"; tail -40 "$out/$target/log"; status=1
  else
    runs=$(grep -o 'stat::number_of_executed_units: [0-9]*' "$out/$target/log" | grep -o '[0-9]*$')
    cov=$(grep -E '#[0-9]+.*DONE' "$out/$target/log" | grep -o 'cov: [0-9]* ft: [0-9]* corp: [0-9/a-zA-Z]*' | tail -1)
    echo "# fuzz_$target: $runs inputs in ${seconds}s, $cov, 0 findings"
  fi
done
exit $status

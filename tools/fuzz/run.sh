#!/bin/sh
# Fuzz one parser with libFuzzer under ASan+UBSan:  tools/fuzz/run.sh NAME [SECONDS]
# New inputs that grow coverage land in $FUZZ_BUILD/corpus/NAME (not committed; FUZZ_BUILD
# defaults to _build-fuzz); crashes land in $FUZZ_BUILD/ as crash-*: copy each into
# tests/corpus/NAME/ once fixed.
set -eu
cd "$(dirname "$0")/../.."
name=$1
secs=${2:-300}
build=${FUZZ_BUILD:-_build-fuzz}
if [ ! -f "$build/build.ninja" ]; then
  # Every object gets libFuzzer's coverage instrumentation (fuzzer-no-link), so the fuzzer sees
  # the parsers' branches, not only the target's.
  CC=clang meson setup "$build" -Dfuzz=true -Dc_args=-fsanitize=fuzzer-no-link \
    -Db_sanitize=address,undefined -Db_lundef=false -Dbuildtype=debugoptimized
fi
meson compile -C "$build" "fuzz-$name"
mkdir -p "$build/corpus/$name"
cd "$build"
# Undefined behaviour is a finding too: stop and save the input.
export UBSAN_OPTIONS=halt_on_error=1:print_stacktrace=1
"./tools/fuzz/fuzz-$name" -max_total_time="$secs" -max_len=65536 -timeout=10 -rss_limit_mb=4096 \
  "corpus/$name" "../tests/corpus/$name"

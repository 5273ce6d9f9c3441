#!/bin/sh
# Fuzz one parser with libFuzzer under ASan+UBSan:  tools/fuzz/run.sh NAME [SECONDS]
# New inputs that grow coverage land in _build-fuzz/corpus/NAME (not committed); crashes land
# in _build-fuzz/ as crash-*: copy each into tests/corpus/NAME/ once fixed.
set -eu
cd "$(dirname "$0")/../.."
name=$1
secs=${2:-300}
if [ ! -f _build-fuzz/build.ninja ]; then
  CC=clang meson setup _build-fuzz -Dfuzz=true -Db_sanitize=address,undefined -Db_lundef=false \
    -Dbuildtype=debugoptimized
fi
meson compile -C _build-fuzz "fuzz-$name"
mkdir -p "_build-fuzz/corpus/$name"
cd _build-fuzz
"./tools/fuzz/fuzz-$name" -max_total_time="$secs" -max_len=65536 -timeout=10 -rss_limit_mb=4096 \
  "corpus/$name" "../tests/corpus/$name"

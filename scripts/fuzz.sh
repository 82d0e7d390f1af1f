#!/usr/bin/env bash
# Builds libFuzzer targets with clang and runs each for a bounded time.
#   bash scripts/fuzz.sh [SECONDS_PER_TARGET [TARGET...]]   (default 60 s, every target)
# Only the named targets and the libraries they need are built. Every build also runs each
# target over a fixed set of inputs as a test (replay_<target>, see tests/CMakeLists.txt).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
seconds=${1:-60}
build=${SFSTREAM_BUILD_DIR:-build-fuzz}
CXX=clang++ cmake -S . -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  -DSFSTREAM_BUILD_FUZZERS=ON -DSFSTREAM_BUILD_TESTS=ON -DSFSTREAM_BUILD_CLI=OFF \
  -DSFSTREAM_BUILD_SAMPLES=OFF >/dev/null
shift || true
if [ $# -gt 0 ]; then
  targets="$*"
else
  targets=$(cd tests/fuzz && ls fuzz_*.cpp 2>/dev/null | sed 's/\.cpp$//')
fi
[ -n "$targets" ] || { echo "fuzz: no targets" >&2; exit 1; }
# shellcheck disable=SC2086
cmake --build "$build" -j "$(nproc)" --target $targets
for t in $targets; do
  corpus="$build/corpus/$t"
  mkdir -p "$corpus"
  seeds=()
  [ -d "tests/fuzz/seeds/$t" ] && seeds=("tests/fuzz/seeds/$t")
  echo "fuzz: $t for ${seconds}s" >&2
  "$build/tests/$t" -max_total_time="$seconds" -print_final_stats=1 -timeout=10 \
    -rss_limit_mb=2048 "$corpus" "${seeds[@]}" 2>"$build/$t.log" || { tail -50 "$build/$t.log"; exit 1; }
  grep -E 'stat::number_of_executed_units|Done' "$build/$t.log" | tail -2 >&2
done

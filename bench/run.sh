#!/usr/bin/env bash
# The benchmark in one command: installs the JavaScript peers (versions pinned by
# bench/package-lock.json), builds what it runs, then runs bench/run.mjs.
#
#   bash bench/run.sh            full run: 100,000 events, 3 runs, HTTP and HTTPS; writes
#                                bench/RESULTS.md
#   bash bench/run.sh --quick    a smoke run: 5,000 events, 1 run (prints only)
#   bash bench/run.sh --soak     sfstream subscribe for 10 minutes at 2,000 events/s: RSS at
#                                start and end
#
# Environment: SFSTREAM_BENCH_BUILD (build directory, default build-bench), JOBS (default 2).
# Needs cmake, ninja, a C++20 compiler, node >= 18 and npm.
set -euo pipefail
here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
root="$(dirname "$here")"
build="${SFSTREAM_BENCH_BUILD:-$root/build-bench}"

if [[ ! -d "$here/node_modules/faye" || "$here/package-lock.json" -nt "$here/node_modules/.package-lock.json" ]]; then
  echo "bench: installing the JavaScript clients (npm ci)" >&2
  (cd "$here" && npm ci --no-audit --no-fund --loglevel=error)
fi

if [[ ! -f "$build/build.ninja" ]]; then
  cmake -S "$root" -B "$build" -G Ninja -DCMAKE_BUILD_TYPE=RelWithDebInfo \
    "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O2 -g1 -DNDEBUG" >&2
fi
echo "bench: building sfstream, bench_drain, bench_raw_reader, bench_run" >&2
cmake --build "$build" --target sfstream_cli bench_drain bench_raw_reader bench_run -j "${JOBS:-2}" >&2

exec node "$here/run.mjs" --build "$build" "$@"

#!/usr/bin/env bash
# Sets up (installs what is missing), builds and runs the whole test suite.
#   bash scripts/test.sh                       # the suite, warnings as errors
#   SFSTREAM_SANITIZE=1 bash scripts/test.sh   # the same suite under ASan + UBSan
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

jobs=$(nproc)
if [ "${SFSTREAM_SANITIZE:-0}" = 1 ]; then
  build=${SFSTREAM_BUILD_DIR:-build-asan}
  # -g1 (line tables): sanitizer reports keep file:line at a fraction of full -g's build time.
  flags=(-DCMAKE_BUILD_TYPE=Debug "-DCMAKE_CXX_FLAGS_DEBUG=-O0 -g1" -DSFSTREAM_SANITIZE=ON
         -DSFSTREAM_BUILD_SAMPLES=OFF)
  export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
  export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
else
  build=${SFSTREAM_BUILD_DIR:-build}
  flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O2 -g1 -DNDEBUG")
fi

cmake -S . -B "$build" -G Ninja -DSFSTREAM_WERROR=ON "${flags[@]}" >/dev/null
cmake --build "$build" -j "$jobs"
ctest --test-dir "$build" --output-on-failure -j "$jobs" --timeout 600

if [ "${SFSTREAM_SANITIZE:-0}" != 1 ]; then
  # The installed CMake package works for another project: find_package(sfstream CONFIG).
  rm -rf "$build/install" "$build/consumer"
  cmake --install "$build" --prefix "$build/install" >/dev/null
  cmake -S tests/consumer -B "$build/consumer" -G Ninja -DCMAKE_PREFIX_PATH="$PWD/$build/install" >/dev/null
  cmake --build "$build/consumer" -j "$jobs" >/dev/null
  "$build/consumer/sfstream_consumer"
fi

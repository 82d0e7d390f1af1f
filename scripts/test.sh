#!/usr/bin/env bash
# Sets up (installs what is missing), builds and runs the whole test suite.
#   bash scripts/test.sh                       # the suite, warnings as errors
#   SFSTREAM_SANITIZE=1 bash scripts/test.sh   # the same suite under ASan + UBSan, without the
#                                              # tests labelled heavy (see tests/heavy_labels.cmake)
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh

jobs=$(nproc)
if [ "${SFSTREAM_SANITIZE:-0}" = 1 ]; then
  build=${SFSTREAM_BUILD_DIR:-build-asan}
  # The long end-to-end suites (CTest label heavy) run once, in the normal build: the sanitizers
  # see the same code through the lighter suites.
  ctest_filter=(-LE heavy)
  # Only what the tests need (the benchmarks are left out): their folder's targets and deps.
  build_targets=(--target tests/all)
  # -g1 (line tables): sanitizer reports keep file:line at a fraction of full -g's build time.
  flags=(-DCMAKE_BUILD_TYPE=Debug "-DCMAKE_CXX_FLAGS_DEBUG=-O0 -g1" -DSFSTREAM_SANITIZE=ON
         -DSFSTREAM_BUILD_SAMPLES=OFF)
  export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:abort_on_error=1}
  export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
else
  build=${SFSTREAM_BUILD_DIR:-build}
  ctest_filter=()
  build_targets=()
  flags=(-DCMAKE_BUILD_TYPE=RelWithDebInfo "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O2 -g1 -DNDEBUG")
fi

cmake -S . -B "$build" -G Ninja -DSFSTREAM_WERROR=ON "${flags[@]}" >/dev/null
cmake --build "$build" -j "$jobs" "${build_targets[@]}"
# A green run proves something only if every entry ran a test case: no entry may select zero
# doctest cases (a renamed case, a name with ';' that CTest splits).
cmake "-DBUILD_DIR=$build" "-DLABEL_EXCLUDE=${ctest_filter[1]:-}" -P scripts/check_tests.cmake
ctest --test-dir "$build" --output-on-failure -j "$jobs" --timeout 600 "${ctest_filter[@]}"

if [ "${SFSTREAM_SANITIZE:-0}" != 1 ]; then
  # The installed CMake package works for another project: find_package(sfstream CONFIG).
  rm -rf "$build/install" "$build/consumer"
  cmake --install "$build" --prefix "$build/install" >/dev/null
  cmake -S tests/consumer -B "$build/consumer" -G Ninja -DCMAKE_PREFIX_PATH="$PWD/$build/install" >/dev/null
  cmake --build "$build/consumer" -j "$jobs" >/dev/null
  "$build/consumer/sfstream_consumer"
  # The installed emulator library runs an org inside the consumer's process.
  if [ -x "$build/consumer/sfstream_consumer_emulator" ]; then
    "$build/consumer/sfstream_consumer_emulator"
  fi
fi

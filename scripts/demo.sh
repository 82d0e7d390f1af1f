#!/usr/bin/env bash
# Sets up (installs what is missing), builds and runs the main job: the demo against the
# embedded org emulator. Extra arguments go to `sfstream demo` (e.g. --follow).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
build=${SFSTREAM_BUILD_DIR:-build}
# The same settings as scripts/test.sh, so that the two README commands share one build.
cmake -S . -B "$build" -G Ninja -DSFSTREAM_WERROR=ON -DCMAKE_BUILD_TYPE=RelWithDebInfo \
  "-DCMAKE_CXX_FLAGS_RELWITHDEBINFO=-O2 -g1 -DNDEBUG" >/dev/null
cmake --build "$build" -j "$(nproc)" --target sfstream_cli
exec "$build/cli/sfstream" demo "$@"

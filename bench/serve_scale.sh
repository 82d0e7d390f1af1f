#!/usr/bin/env bash
# sfstream serve at scale: 1,000 connections (or --connections N) of one service against the
# emulator, idle-streaming and then receiving 10 events each (--events E). Prints the peak RSS
# and the CPU time of each phase; asserts nothing.
#   bash bench/serve_scale.sh [BUILD_DIR] [--connections N] [--events E] [--idle S] [--threads T]
set -euo pipefail
root="$(cd "$(dirname "$0")/.." && pwd)"
build="${1:-$root/build}"
if [ $# -gt 0 ] && [ "${1#--}" = "$1" ]; then shift; fi
cmake --build "$build" --target sfstream_cli bench_serve_scale >/dev/null
exec "$build/bench/bench_serve_scale" "$build/cli/sfstream" "$@"

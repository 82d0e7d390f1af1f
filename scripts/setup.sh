#!/usr/bin/env bash
# Installs whatever sfstream needs that is missing on a Debian 12 machine. Idempotent: when
# everything is present it only checks, quietly and fast. Run as root (or with sudo available).
set -euo pipefail

packages=(
  build-essential cmake ninja-build pkg-config
  libboost1.81-dev rapidjson-dev libtinyxml2-dev doctest-dev libssl-dev
  clang libclang-rt-14-dev ca-certificates openssl ccache
  libtomlplusplus-dev
  # PostgreSQL: libpq for the store, leases and events sink; the 15 server for their tests.
  libpq-dev postgresql-15
  prometheus
  # Tests of the service's package and docs: systemd-analyze verifies the unit, CPack's
  # shared-library dependencies use file (dpkg-shlibdeps comes with build-essential), and
  # python3 runs the receiver's verifier that docs/webhooks.md shows. A minimal Debian 12
  # image has none of them.
  systemd file python3

)

missing=()
for p in "${packages[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed'; then
    missing+=("$p")
  fi
done

# Node.js and npm serve only the Faye interop test. A machine may already have them from
# another source (which then conflicts with Debian's npm package), so ask for the commands.
if ! command -v node >/dev/null 2>&1 || ! command -v npm >/dev/null 2>&1; then
  missing+=(nodejs npm)
fi

if [ ${#missing[@]} -eq 0 ]; then
  exit 0
fi

echo "setup: installing ${missing[*]}" >&2
sudo_cmd=()
if [ "$(id -u)" -ne 0 ]; then sudo_cmd=(sudo); fi
export DEBIAN_FRONTEND=noninteractive
"${sudo_cmd[@]}" apt-get update -qq
"${sudo_cmd[@]}" apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
echo "setup: done" >&2

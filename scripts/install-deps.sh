#!/usr/bin/env bash
# Installs GridLedger's build and test dependencies from Debian 12's packages, only what is missing.
# Run as root or with sudo available.
set -euo pipefail

PACKAGES=(
  build-essential cmake pkg-config
  librocksdb-dev rocksdb-tools
  libcapnp-dev capnproto
  libboost-dev libboost-system-dev
  prometheus-cpp-dev prometheus
  libgtest-dev libgmock-dev libbenchmark-dev
  libssl-dev
  libnats-dev nats-server
  libpq-dev postgresql
  nlohmann-json3-dev libcli11-dev
  libjemalloc-dev
)

missing=()
for package in "${PACKAGES[@]}"; do
  if ! dpkg-query -W -f='${Status}' "$package" 2>/dev/null | grep -q "install ok installed"; then
    missing+=("$package")
  fi
done
if [ ${#missing[@]} -eq 0 ]; then
  echo "install-deps: all ${#PACKAGES[@]} packages present"
  exit 0
fi

SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
echo "install-deps: installing ${missing[*]}"
$SUDO apt-get update -qq
DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}"

#!/usr/bin/env bash
# Installs what is missing, builds warning-clean (-Werror) and runs every test with ctest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh -DGRIDLEDGER_WERROR=ON -DGRIDLEDGER_BUILD_TESTS=ON
cd build
ctest --output-on-failure -j2 --timeout 900

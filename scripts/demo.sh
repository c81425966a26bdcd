#!/usr/bin/env bash
# Installs what is missing, builds, and runs the demo on an embedded data directory: appends a
# sample application's events with ledgerctl, prints its history and verifies the hash chain.
# Data directory: $GRIDLEDGER_DATA or ./data/demo (recreated on each run).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh -DGRIDLEDGER_BUILD_TESTS=OFF -DGRIDLEDGER_BUILD_BENCH=OFF
data="${GRIDLEDGER_DATA:-data/demo}"
rm -rf "$data"
ctl=build/cli/ledgerctl
echo "== appending examples/sample-application.jsonl to $data"
"$ctl" --data "$data" append examples/sample-application.jsonl
echo "== a retry of the same file changes nothing (duplicate: true)"
"$ctl" --data "$data" append examples/sample-application.jsonl | tail -n 1
echo "== history"
"$ctl" --data "$data" history app/KM-2026-000123
echo "== verify"
"$ctl" --data "$data" verify

#!/usr/bin/env bash
# Installs what is missing, builds, and runs the demo on an embedded data directory:
#   1. appends a sample application's events with ledgerctl and shows that a retry changes nothing;
#   2. loads a generated 2025–2026 workload (all kinds and classes, late steps, pauses, urges,
#      failed inspections, callbacks, reports, surveys, training) through the same front door;
#   3. shows the sample's history and SLA clocks, today's overdue steps, a KPI table, and verifies
#      the hash chain.
# Data directory: $GRIDLEDGER_DATA or ./data/demo (recreated on each run). Size: $DEMO_APPS (2000).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh -DGRIDLEDGER_BUILD_TESTS=OFF -DGRIDLEDGER_BUILD_BENCH=OFF
data="${GRIDLEDGER_DATA:-data/demo}"
rm -rf "$data"
ctl() { build/cli/ledgerctl --data "$data" "$@"; }
echo "== appending examples/sample-application.jsonl to $data"
ctl append examples/sample-application.jsonl
echo "== a retry of the same file changes nothing (duplicate: true)"
ctl append examples/sample-application.jsonl | tail -n 1
echo "== loading a generated workload of ${DEMO_APPS:-2000} applications"
ctl demo --apps "${DEMO_APPS:-2000}" --seed 7
echo "== history of the sample application"
ctl history app/XS-2026-000123
echo "== its SLA clocks"
ctl app XS-2026-000123 | head -c 600; echo " ..."
echo "== overdue steps now"
ctl overdue --table | head -n 12
echo "== KPI table, 2026-Q1"
ctl kpi --period 2026-Q1
echo "== verify"
ctl verify

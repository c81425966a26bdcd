#!/usr/bin/env bash
# Installs what is missing, builds, loads a demo data set into an embedded data directory and
# starts ledgerd on it (foreground; Ctrl-C or SIGTERM drains and stops it):
#   1. appends a sample application's events with ledgerctl and shows that a retry changes nothing;
#   2. loads a generated 2025–2026 workload (all kinds and classes, late steps, pauses, urges,
#      failed inspections, callbacks, reports, surveys, training) through the same front door;
#   3. shows the sample's history, today's overdue steps and a KPI table, verifies the chain;
#   4. makes bearer tokens for a clerk, a director and an auditor and starts ledgerd, printing how to
#      reach it with curl.
# Data directory: $GRIDLEDGER_DATA or ./data/demo (recreated on each run). Size: $DEMO_APPS (2000).
# Addresses: $LEDGERD_HTTP (127.0.0.1:8080), $LEDGERD_TCP (127.0.0.1:7070).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
bash scripts/build.sh -DGRIDLEDGER_BUILD_TESTS=OFF -DGRIDLEDGER_BUILD_BENCH=OFF
data="${GRIDLEDGER_DATA:-data/demo}"
http="${LEDGERD_HTTP:-127.0.0.1:8080}"
tcp="${LEDGERD_TCP:-127.0.0.1:7070}"
rm -rf "$data"
mkdir -p "$data"
ctl() { build/cli/ledgerctl --data "$data/ledger" "$@"; }
echo "== appending examples/sample-application.jsonl"
ctl append examples/sample-application.jsonl
echo "== a retry of the same file changes nothing (duplicate: true)"
ctl append examples/sample-application.jsonl | tail -n 1
echo "== loading a generated workload of ${DEMO_APPS:-2000} applications"
ctl demo --apps "${DEMO_APPS:-2000}" --seed 7
echo "== history of the sample application"
ctl history app/XS-2026-000123
echo "== overdue steps now"
ctl overdue --table | head -n 8
echo "== KPI table, 2026-Q1"
ctl kpi --period 2026-Q1
echo "== a dispute: the sample's customer class is corrected; what could be reported before stays visible"
# The recorded time before the correction, for `--as-of` (README: "Using it").
before="$(TZ=Asia/Shanghai date +%Y-%m-%dT%H:%M:%S.%6N%:z)"
echo "$before" > "$data/before-correction.txt"
ctl append examples/sample-correction.jsonl
echo "-- KM.XS 2026-Q2 timeliness as it could be reported at $before, then as corrected:"
ctl kpi --period 2026-Q2 --org KM.XS --as-of "$before" | grep "^timeliness "
ctl kpi --period 2026-Q2 --org KM.XS | grep "^timeliness "
echo "== verify"
ctl verify

tokens="$data/tokens.jsonl"
token() { build/cli/ledgerctl token add --tokens "$tokens" --id "$1" --role "$2" --org "$3" 2>/dev/null; }
clerk=$(token S1001 clerk KM.XS)
director=$(token D0001 director KM.XS)
auditor=$(token A0001 auditor KM)
# The tokens themselves: readable by this user alone, like everything ledgerd writes.
(umask 077 && cat > "$data/tokens.txt" <<TOKENS
clerk S1001 KM.XS     $clerk
director D0001 KM.XS  $director
auditor A0001 KM      $auditor
TOKENS
)
cat <<HOW

== ledgerd is starting on $data/ledger (tokens in $data/tokens.txt)
   HTTP/JSON   http://$http   (API: server/openapi.json)
   TCP         $tcp           (Cap'n Proto protocol: server/schema/protocol.capnp)
   try:
     curl -s http://$http/healthz
     curl -s -H 'Authorization: Bearer $auditor' http://$http/v1/apps/XS-2026-000123
     curl -s -H 'Authorization: Bearer $auditor' 'http://$http/v1/kpi?period=2026-Q1'
     curl -s -H 'Authorization: Bearer $auditor' 'http://$http/v1/overdue?org=KM.XS' | head -c 600
     build/cli/ledgerctl --server $tcp --token $auditor read --from 1 --limit 3
     build/cli/ledgerctl --http $http --token $auditor kpi --period 2026-Q1
   Ctrl-C stops it (drains, syncs, exits 0); run build/server/ledgerd again with the same
   flags to resume.

HOW
exec build/server/ledgerd --data "$data/ledger" --tokens "$tokens" --http "$http" --tcp "$tcp"

#!/usr/bin/env bash
# Builds the benchmarks (Release, in build-bench/) and runs them, printing what BENCHMARKS.md
# records about the run: date, commit, machine, filesystem of the data directory.
#
#   bench/run.sh                      # every benchmark
#   bench/run.sh append_bench [ARGS]  # one, with Google Benchmark arguments
#   bench/run.sh load_bench [ARGS]    # front doors vs PostgreSQL (load_bench --help for ARGS);
#                                     # builds ledgerd too and starts it and a PostgreSQL 15 itself
#
# Environment: GRIDLEDGER_BENCH_DIR  where the data directories go (default /tmp); fsync cost
#              depends on its filesystem, so say which one it was when quoting figures.
#              GRIDLEDGER_BENCH_BUILD  build directory (default <repo>/build-bench).
set -euo pipefail

root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
build="${GRIDLEDGER_BENCH_BUILD:-$root/build-bench}"
data="${GRIDLEDGER_BENCH_DIR:-/tmp}"
all_benchmarks=(append_bench rebuild_bench load_bench metrics_bench)

if [[ $# -gt 0 ]]; then
  benchmarks=("$1")
  shift
else
  benchmarks=("${all_benchmarks[@]}")
fi

cmake -S "$root" -B "$build" -DCMAKE_BUILD_TYPE=Release -DGRIDLEDGER_BUILD_TESTS=OFF \
  -DGRIDLEDGER_BUILD_BENCH=ON >/dev/null
targets=("${benchmarks[@]}")
# load_bench runs the real server: build it in the same tree (LEDGERD_PATH points there).
if [[ " ${benchmarks[*]} " == *" load_bench "* ]]; then targets+=(ledgerd); fi
cmake --build "$build" -j2 --target "${targets[@]}"

echo "date:       $(date -u '+%Y-%m-%d %H:%M UTC')"
echo "commit:     $(git -C "$root" rev-parse --short HEAD 2>/dev/null || echo unknown)$(
  git -C "$root" diff --quiet HEAD -- 2>/dev/null || echo ' (with uncommitted changes)')"
echo "cpu:        $(nproc) cores, $(sed -n 's/^model name\s*: //p' /proc/cpuinfo | head -1)"
echo "memory:     $(free -g | awk '/^Mem:/ {print $2}') GiB"
echo "data dir:   $data ($(df -T "$data" | awk 'NR == 2 {print $2 " on " $1}'))"
# Other work on the machine (or on the host's disk) moves fsync-bound figures a lot; these two lines
# before and after the run say whether it was quiet.
contention() {
  echo "load avg $(cut -d' ' -f1-3 /proc/loadavg); io pressure $(
    sed -n 's/^some //p' /proc/pressure/io 2>/dev/null || echo n/a)"
}
echo "before:     $(contention)"
for benchmark in "${benchmarks[@]}"; do
  echo
  echo "== $benchmark $*"
  GRIDLEDGER_BENCH_DIR="$data" "$build/bench/$benchmark" "$@"
done
echo
echo "after:      $(contention)"

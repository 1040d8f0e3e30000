#!/usr/bin/env bash
# make bench — runs every bench/bench_*.sh (or those named) against one throwaway
# PostgreSQL + Kafka, prints each table and collects them in bench/results/.
#   bench/run.sh [NAME...]      e.g. bench/run.sh inserter aggregator
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."
if [[ -z ${DATABASE_URL:-} || -z ${KAFKA_BROKERS:-} ]]; then
    # `make bench BENCH=scaling` alone: start the 3-node cluster it needs, not a single
    # broker it would leave idle (run among others, bench_scaling.sh starts its own)
    [[ "$*" == scaling ]] && exec tests/harness/up --kafka-cluster 3 -- "$0" "$@"
    exec tests/harness/up -- "$0" "$@"
fi
export KP_BIN=${KP_BIN:-$PWD/bin} KP_TBIN=${KP_TBIN:-$PWD/build/release/tbin}
# shellcheck source=bench/lib_proc.sh
. bench/lib_proc.sh
mkdir -p bench/results
out=bench/results/$(date -u +%Y%m%dT%H%M%SZ).md
export KP_BENCH_OUT=$PWD/$out
{
    echo "# klinepipe benchmarks, $(date -u '+%Y-%m-%d %H:%M UTC')"
    echo
    echo "Machine: $(nproc) cores ($(grep -m1 'model name' /proc/cpuinfo | cut -d: -f2- | sed 's/^ *//')),"
    echo "$(free -g | awk '/Mem:/{print $2}') GiB RAM, $(uname -sr), $(. /etc/os-release; echo "$PRETTY_NAME"),"
    echo "TCP congestion control $(tcp_cc) (docs/operations.md)."
    echo
} > "$out"
cat "$out"

scripts=()
if (($#)); then
    for n in "$@"; do scripts+=("bench/bench_$n.sh"); done
else
    scripts=(bench/bench_*.sh)
fi
rc=0
for s in "${scripts[@]}"; do
    [[ -f $s ]] || { echo "no such benchmark: $s" >&2; rc=2; continue; }
    name=$(basename "$s" .sh)
    echo "## ${name#bench_}" | tee -a "$out"
    echo | tee -a "$out"
    if ! bash "$s"; then
        echo "**${name} failed (exit $?)**" | tee -a "$out"
        rc=1
    fi
    echo | tee -a "$out"
done
cp "$out" bench/results/latest.md
echo "results: $out"
exit $rc

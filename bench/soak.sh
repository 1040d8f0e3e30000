#!/usr/bin/env bash
# make soak — the long soak of issue 17 (docs/storage.md "Soak"): thousands of symbols for
# many simulated hours of an accelerated kline-sim through the whole pipeline, retention
# and compaction on (on the sim's clock, KP_TEST_CLOCK), no faults. Samples the RSS of
# every program, the database size, partitions, dead tuples and the consumer lag, then
# checks every kept row against the exchange's truth (tests/faults/campaign.py) and writes
# soak.md, soak.csv and soak.svg (bench/soak_report.py). Not part of CI.
#   KP_SOAK_HOURS    simulated hours (default 24)
#   KP_SOAK_SYMBOLS  symbols (default 2000)
#   KP_SOAK_SPEED    sim seconds per real second (default 8: what 2 cores sustain at 2,000)
#   KP_SOAK_RETAIN   the aggregator's --retain (default 1s=30m)
#   KP_SOAK_COMPACT  the aggregator's --compact-after (default 10m)
#   KP_SOAK_SAMPLE   seconds between samples (default 10)
#   KP_SOAK_SEED     seed of the sim (default 17)
#   KP_SOAK_WATCHERS WebSocket clients left on the streamer all run, 5 symbols each (default 100)
#   KP_SOAK_PAGE     1: also a page that follows every symbol and counts bars pushed twice
#   KP_SOAK_OUT      where the results go (default bench/results)
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."
if [[ -z ${DATABASE_URL:-} || -z ${KAFKA_BROKERS:-} ]]; then
    exec tests/harness/up -- "$0" "$@"
fi
export KP_BIN=${KP_BIN:-$PWD/bin} KP_TBIN=${KP_TBIN:-$PWD/build/release/tbin}
hours=${KP_SOAK_HOURS:-24} symbols=${KP_SOAK_SYMBOLS:-2000} speed=${KP_SOAK_SPEED:-8}
out=${KP_SOAK_OUT:-bench/results}
run=$(mktemp -d "${TMPDIR:-/tmp}/kp-soak.XXXXXX")
minutes=$(awk -v h="$hours" -v s="$speed" 'BEGIN { printf "%.4f", h * 60 / s }')
echo "soak: $symbols symbols x $hours simulated h at speed $speed (~$minutes real min), logs in $run"
rc=0
python3 tests/faults/campaign.py --symbols "$symbols" --speed "$speed" --minutes "$minutes" \
    --seed "${KP_SOAK_SEED:-17}" --faults none --retain "${KP_SOAK_RETAIN:-1s=30m}" \
    --compact-after "${KP_SOAK_COMPACT:-10m}" --sample-secs "${KP_SOAK_SAMPLE:-10}" --no-kafka-check --bars-from-sim \
    --watchers "${KP_SOAK_WATCHERS:-100}" ${KP_SOAK_PAGE:+--watch-page} \
    --settle-secs 120 --drain-timeout 1200 --out "$run" || rc=$?
[[ -f $run/result.json ]] || { echo "soak: the campaign wrote no result (exit $rc); logs in $run" >&2; exit 1; }
python3 bench/soak_report.py "$run" "$out" || rc=1
echo "soak: $out/soak.md, $out/soak.svg, $out/soak.csv (logs in $run)"
exit "$rc"

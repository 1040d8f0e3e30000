#!/usr/bin/env bash
# bench_storage.sh — what a kline costs on disk in PostgreSQL, in live mode.
#
# The simulated exchange's truth for S symbols × T seconds (realistic prices, fixed tick
# and lot per symbol: tests/sim/gen.c), ordered second by second as a live feed delivers
# it, goes through the real kline-inserter with --batch-rows S (one batch per second, as
# in live mode: one checkpoint row per symbol per batch today), then kline-aggregator
# --once rolls it up. After VACUUM ANALYZE it prints, per table, heap (with TOAST and
# maps) and indexes, and the all-in bytes per kline; then retention of the whole range
# (`--retain 1s=1h`: every row is older) with its time and the dead tuples it leaves.
#
# Baselines in the same run: the canonical NDJSON record and a data.binance.vision CSV
# (gzip -6) of the same klines, the cold-archive form.
#
# BENCH_STORAGE_SYMBOLS (default 2000) and BENCH_STORAGE_SECONDS (default 120, whole
# minutes) size it; ~1 minute at the defaults. Needs DATABASE_URL (a postgresql:// URI).
set -euo pipefail
root=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
BIN=${KP_BIN:-$root/bin}
TBIN=${KP_TBIN:-$root/build/release/tbin}
S=${BENCH_STORAGE_SYMBOLS:-2000}
T=${BENCH_STORAGE_SECONDS:-120}
START=1780000020000 # a whole minute, in the past: retention may drop all of it
[[ -n ${DATABASE_URL:-} && $DATABASE_URL == postgres*://*/* ]] ||
	{ echo "bench_storage: DATABASE_URL must be a postgresql:// URI (start the harness)" >&2; exit 2; }
[[ -x $BIN/kline-inserter && -x $TBIN/kline-sim ]] || { echo "bench_storage: build first" >&2; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/bench_storage.XXXXXX")
db=kp_storbench_$$
sim_pid=
cleanup() {
	[[ -n $sim_pid ]] && { kill "$sim_pid" 2>/dev/null; wait "$sim_pid" 2>/dev/null; }
	psql "$DATABASE_URL" -XAtqc "drop database if exists $db" >/dev/null 2>&1 || true
	rm -rf "$work"
}
trap cleanup EXIT
log() { echo "bench_storage: $*" >&2; }
DB=${DATABASE_URL%/*}/$db
q() { psql "$DB" -XAtqc "$1"; }

psql "$DATABASE_URL" -XAtqc "create database $db" >/dev/null
"$BIN/kline-inserter" -i /dev/null -d "$DB" 2>/dev/null

log "truth of $S symbols x $T s from the simulated exchange"
"$TBIN/kline-sim" --num-symbols "$S" --speed 1000 --duration "$T" --start-time "$START" \
	--port-file "$work/port" --log-level warn &
sim_pid=$!
for _ in $(seq 100); do [[ -s $work/port ]] && break; sleep 0.1; done
sleep $((T / 1000 + 2))
curl -fsS "http://127.0.0.1:$(cat "$work/port")/truth?from=$START&to=$((START + (T - 1) * 1000))" >"$work/truth"
kill "$sim_pid"; wait "$sim_pid" 2>/dev/null || true; sim_pid=
n=$(wc -l <"$work/truth")
[[ $n -eq $((S * T)) ]] || { log "expected $((S * T)) klines from the sim, got $n"; exit 1; }
# live order: second by second (the truth is by symbol); and the CSV of the archive
python3 - "$work" <<'EOF'
import json, sys
w = sys.argv[1]
rows = [json.loads(l) for l in open(f"{w}/truth")]
rows.sort(key=lambda r: (r["open_time"], r["symbol"]))
with open(f"{w}/live.ndjson", "w") as f:
    for r in rows:
        f.write(json.dumps(r, separators=(",", ":")) + "\n")
cols = ["open_time", "open", "high", "low", "close", "volume", "close_time", "quote_volume",
        "trades", "taker_buy_volume", "taker_buy_quote_volume"]
by_sym = {}
for r in rows:
    by_sym.setdefault(r["symbol"], []).append(",".join(str(r[c]) for c in cols) + ",0")
with open(f"{w}/archive.csv", "w") as f:  # one file per symbol-day in the archive; one here
    for s in sorted(by_sym):
        f.write("\n".join(by_sym[s]) + "\n")
EOF
ndjson_b=$(wc -c <"$work/live.ndjson")
csvgz_b=$(gzip -6c "$work/archive.csv" | wc -c)

log "kline-inserter -i - --batch-rows $S (one batch per second)"
t0=$(date +%s%3N)
"$BIN/kline-inserter" -i "$work/live.ndjson" -d "$DB" --batch-rows "$S" --flush-ms 3600000 \
	--stats-interval 0 2>"$work/ins.log"
t1=$(date +%s%3N)
"$BIN/kline-aggregator" --once -d "$DB" -i 1m,5m,15m,1h,4h,1d 2>"$work/agg.log"
rows=$(q "select count(*) from kline_1s")
[[ $rows -eq $n ]] || { log "kline_1s holds $rows rows, expected $n"; exit 1; }
q "vacuum analyze" >/dev/null

per() { awk -v b="$1" -v n="$n" 'BEGIN { printf "%.1f", b / n }'; }
table_row() { # TABLE → "| table | rows | heap | indexes | per kline |", adds to total
	local t=$1 r h i
	r=$(q "select count(*) from $t")
	h=$(q "select pg_table_size('$t')")
	i=$(q "select pg_indexes_size('$t')")
	total=$((total + h + i))
	printf '| %s | %s | %s | %s | %s |\n' "$t" "$r" "$h" "$i" "$(per $((h + i)))"
}
tables=$(q "select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
            where n.nspname = 'public' and c.relkind in ('r','p') order by 1")
total=0
{
	echo "$S symbols × $T s = $n klines through kline-inserter --batch-rows $S (one batch per"
	echo "second, as live), then kline-aggregator --once (1m..1d); sizes after VACUUM ANALYZE."
	echo
	echo "| table | rows | heap + TOAST (B) | indexes (B) | B per kline |"
	echo "|---|---|---|---|---|"
	for t in $tables; do table_row "$t"; done
	echo "| **all-in** | | | | **$(per $total)** |"
	echo
	tuple=$(q "select round(avg(pg_column_size(k.*)), 1) from kline_1s k")
	echo "| per kline | bytes |"
	echo "|---|---|"
	echo "| kline_1s tuple (pg_column_size of the row) | $tuple |"
	echo "| baseline: canonical NDJSON record | $(per "$ndjson_b") |"
	echo "| baseline: data.binance.vision CSV, gzip -6 (the cold archive) | $(per "$csvgz_b") |"
	echo "| → a day of 2,000 symbols all-in | $(awk -v b="$total" -v n="$n" 'BEGIN { printf "%.1f GB", b / n * 172.8e6 / 1e9 }') |"
	echo
	echo "inserter: $((t1 - t0)) ms for $n klines ($(awk -v n="$n" -v ms=$((t1 - t0)) 'BEGIN { printf "%.0f", n / ms * 1000 }') rows/s)."
} | tee -a "${KP_BENCH_OUT:-/dev/null}"

log "retention of the whole range (every minute is rolled up)"
q "select pg_stat_reset()" >/dev/null
r0=$(date +%s%3N)
"$BIN/kline-aggregator" --once -d "$DB" --retain 1s=1h 2>"$work/ret.log"
r1=$(date +%s%3N)
left=$(q "select count(*) from kline_1s")
sleep 1 # the statistics collector reports within 500 ms
dead=$(q "select coalesce(sum(n_dead_tup), 0) from pg_stat_user_tables where relname like 'kline_1s%'")
echo "retention (\`--retain 1s=1h\`) of $n rows: $((r1 - r0)) ms, $left left, n_dead_tup $dead." |
	tee -a "${KP_BENCH_OUT:-/dev/null}"

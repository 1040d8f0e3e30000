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
	psql "$DATABASE_URL" -XAtqc "drop database if exists ${db}_old" >/dev/null 2>&1 || true
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
# the sim runs T seconds at speed 1000; on a loaded machine it may need longer
for _ in $(seq 240); do
	sleep 0.5
	curl -fsS "http://127.0.0.1:$(cat "$work/port")/truth?from=$START&to=$((START + (T - 1) * 1000))" >"$work/truth"
	[[ $(wc -l <"$work/truth") -ge $((S * T)) ]] && break
done
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
import datetime
def ts(ms):
    return datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc).isoformat()
old = ["symbol", "open_time", "close_time", "open", "high", "low", "close", "volume", "quote_volume",
       "trades", "taker_buy_volume", "taker_buy_quote_volume", "first_trade_id", "last_trade_id",
       "closed", "event_time", "source"]
with open(f"{w}/old.csv", "w") as f:  # the previous release's row, for the baseline
    for r in rows:
        v = [ts(r[c]) if c in ("open_time", "close_time", "event_time") and r.get(c) else
             str(r.get(c, "")).lower() for c in old]
        f.write(",".join(v) + "\n")
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
"$BIN/kline-aggregator" --once -d "$DB" -i 1m,5m,15m,1h,4h,1d --compact-after 0 2>"$work/agg.log"
rows=$(q "select count(*) from kline_1s")
[[ $rows -eq $n ]] || { log "kline_1s holds $rows rows, expected $n"; exit 1; }
q "vacuum analyze" >/dev/null

per() { awk -v b="$1" -v n="$n" 'BEGIN { printf "%.1f", b / n }'; }
table_row() { # TABLE → "| table | rows | heap | indexes | per kline |", adds to total
	local t=$1 r h i
	r=$(q "select count(*) from $t")
	# a partitioned table: the sum over its partitions
	h=$(q "select sum(pg_table_size(c)) from (select '$t'::regclass c union all
	       select inhrelid from pg_inherits where inhparent = '$t'::regclass) x")
	i=$(q "select sum(pg_indexes_size(c)) from (select '$t'::regclass c union all
	       select inhrelid from pg_inherits where inhparent = '$t'::regclass) x")
	total=$((total + h + i))
	printf '| %s | %s | %s | %s | %s |\n' "$t" "$r" "$h" "$i" "$(per $((h + i)))"
}
tables=$(q "select c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
            where n.nspname = 'public' and c.relkind in ('r','p') and not c.relispartition order by 1")
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
	tuple=$(q "select round(avg(pg_column_size(k.*)), 1) from kline_1s_lean k")
	echo "| per kline | bytes |"
	echo "|---|---|"
	echo "| kline_1s_lean tuple (pg_column_size of the row) | $tuple |"
	echo "| baseline: canonical NDJSON record | $(per "$ndjson_b") |"
	echo "| baseline: data.binance.vision CSV, gzip -6 (the cold archive) | $(per "$csvgz_b") |"
	echo "| → a day of 2,000 symbols all-in | $(awk -v b="$total" -v n="$n" 'BEGIN { printf "%.1f GB", b / n * 172.8e6 / 1e9 }') |"
	echo
	echo "inserter: $((t1 - t0)) ms for $n klines ($(awk -v n="$n" -v ms=$((t1 - t0)) 'BEGIN { printf "%.0f", n / ms * 1000 }') rows/s)."
} | tee -a "${KP_BENCH_OUT:-/dev/null}"

log "baseline: the same rows in the previous release's layout (schema 001-006)"
odb=${DATABASE_URL%/*}/${db}_old
psql "$DATABASE_URL" -XAtqc "create database ${db}_old" >/dev/null
oq() { psql "$odb" -XAtqc "$1"; }
oq "create table schema_migrations (version text primary key, applied_at timestamptz default now())"
for f in "$root"/schema/00[1-6]_*.sql; do psql "$odb" -XAtq -v ON_ERROR_STOP=1 -f "$f" >/dev/null; done
# as the previous inserter wrote them: one batch (transaction) per second, its rows and
# one checkpoint row per symbol per batch
psql "$odb" -XAtq -v ON_ERROR_STOP=1 -c "\\copy kline_1s (symbol, open_time, close_time, open, high, low,
	close, volume, quote_volume, trades, taker_buy_volume, taker_buy_quote_volume, first_trade_id,
	last_trade_id, closed, event_time, source) from '$work/old.csv' csv" >/dev/null
oq "insert into checkpoint (symbol, first_open_time, last_open_time, row_count)
	select symbol, open_time, open_time, 1 from kline_1s order by open_time, symbol" >/dev/null
oq "vacuum analyze" >/dev/null
old_row() { # TABLE → bytes per kline (heap + TOAST + indexes)
	awk -v b="$(oq "select pg_table_size('$1') + pg_indexes_size('$1')")" -v n="$n" 'BEGIN { printf "%.1f", b / n }'
}
new_1s=$(per "$(q "select sum(pg_table_size(c) + pg_indexes_size(c)) from (select inhrelid c from pg_inherits
	where inhparent = 'kline_1s_lean'::regclass) x")")
new_cp=$(per "$(q "select pg_table_size('checkpoint_batch') + pg_indexes_size('checkpoint_batch')
	+ pg_table_size('kline_symbol') + pg_indexes_size('kline_symbol')")")
old_1s=$(old_row kline_1s) old_cp=$(old_row checkpoint)
# the hours are past: --compact-after rebuilds each partition's primary key, one per run
nparts=$(q "select count(*) from kline_1s_partitions where from_time + interval '1 hour 1 second' <= now()")
for _ in $(seq "$nparts"); do "$BIN/kline-aggregator" --once -d "$DB" --compact-after 1s 2>>"$work/compact.log"; done
[[ $(q "select count(*) from kline_1s_compacted") -ge "$nparts" ]] || { log "compaction incomplete"; cat "$work/compact.log" >&2; exit 1; }
q "vacuum analyze" >/dev/null
cmp_1s=$(per "$(q "select sum(pg_table_size(c) + pg_indexes_size(c)) from (select inhrelid c from pg_inherits
	where inhparent = 'kline_1s_lean'::regclass) x")")
cmp_pk=$(per "$(q "select sum(pg_indexes_size(c)) from (select inhrelid c from pg_inherits
	where inhparent = 'kline_1s_lean'::regclass) x")")
rollups=$(per "$(q "select sum(pg_table_size(c) + pg_indexes_size(c)) from unnest(array['kline_1m','kline_5m',
	'kline_15m','kline_1h','kline_4h','kline_1d']::regclass[]) c")")
{
	echo
	echo "Before/after, the same klines (before: the previous release's row and one checkpoint"
	echo "row per symbol per batch, loaded in the same run):"
	echo
	echo "| B per kline | previous release | now | ratio |"
	echo "|---|---|---|---|"
	echo "| kline_1s (heap + PK) | $old_1s | $new_1s | $(awk -v a="$new_1s" -v b="$old_1s" 'BEGIN { printf "%.2f", a / b }') |"
	echo "| checkpoints | $old_cp | $new_cp | $(awk -v a="$new_cp" -v b="$old_cp" 'BEGIN { printf "%.3f", a / b }') |"
	echo "| checkpoints / kline_1s | $(awk -v a="$old_cp" -v b="$old_1s" 'BEGIN { printf "%.1f %%", 100 * a / b }') | $(awk -v a="$new_cp" -v b="$new_1s" 'BEGIN { printf "%.1f %%", 100 * a / b }') | |"
	echo "| kline_1s + checkpoints | $(awk -v a="$old_1s" -v b="$old_cp" 'BEGIN { printf "%.1f", a + b }') | $(awk -v a="$new_1s" -v b="$new_cp" 'BEGIN { printf "%.1f", a + b }') | |"
	echo "| kline_1s once its hour is compacted (--compact-after; its PK alone $cmp_pk) | | $cmp_1s | $(awk -v a="$cmp_1s" -v b="$old_1s" 'BEGIN { printf "%.2f", a / b }') |"
	echo "| **per kline, steady state** (compacted kline_1s + checkpoints + rollups) | **$(awk -v a="$old_1s" -v b="$old_cp" -v r="$rollups" 'BEGIN { printf "%.1f", a + b + r }')** | **$(awk -v a="$cmp_1s" -v b="$new_cp" -v r="$rollups" 'BEGIN { printf "%.1f", a + b + r }')** | |"
} | tee -a "${KP_BENCH_OUT:-/dev/null}"
psql "$DATABASE_URL" -XAtqc "drop database ${db}_old" >/dev/null

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

# The in-place upgrade of a database of the previous release (docs/storage.md, Upgrading):
# BENCH_STORAGE_UPGRADE_ROWS (default 10 M, 0 = skip) rows in the old layout, then the new
# inserter's first start, which applies 007-012.
U=${BENCH_STORAGE_UPGRADE_ROWS:-10000000}
if ((U > 0)); then
	log "upgrade: $U rows in the previous release's layout"
	psql "$DATABASE_URL" -XAtqc "create database ${db}_old" >/dev/null
	oq "create table schema_migrations (version text primary key, applied_at timestamptz default now())"
	for f in "$root"/schema/00[1-6]_*.sql; do
		{ echo "begin;"; cat "$f"; echo "insert into schema_migrations (version) values ('$(basename "$f" .sql)'); commit;"; } |
			psql "$odb" -XAtq -v ON_ERROR_STOP=1 >/dev/null
	done
	oq "insert into kline_1s (symbol, open_time, close_time, open, high, low, close, volume, quote_volume,
		trades, taker_buy_volume, taker_buy_quote_volume, first_trade_id, last_trade_id)
		select 'U' || (i % 2000), to_timestamp(1700000000 + i / 2000), to_timestamp(1700000000 + i / 2000) + interval '999 ms',
		       100.5, 101, 99, 100.25, 1.25, 125.5, 3, 0.5, 50.25, i, i + 2
		from generate_series(0, $U - 1) i" >/dev/null
	oq "vacuum analyze kline_1s" >/dev/null
	u0=$(date +%s%3N)
	"$BIN/kline-inserter" -i /dev/null -d "$odb" 2>"$work/upgrade.log"
	u1=$(date +%s%3N)
	[[ $(oq "select relkind from pg_class where relname = 'kline_1s'") == v &&
	   $(oq "select count(*) from kline_1s") == "$U" ]] || { log "upgrade failed"; cat "$work/upgrade.log" >&2; exit 1; }
	echo "upgrade in place (migrations 007-012) of $U rows: $((u1 - u0)) ms," \
	     "$(awk -v ms=$((u1 - u0)) -v u="$U" 'BEGIN { printf "%.1f s per 10 M rows", ms / u * 1e7 / 1000 }')" \
	     "(the scan of 009 under SHARE UPDATE EXCLUSIVE; every other step is a catalogue change)." |
		tee -a "${KP_BENCH_OUT:-/dev/null}"
	psql "$DATABASE_URL" -XAtqc "drop database ${db}_old" >/dev/null
fi

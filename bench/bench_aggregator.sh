#!/usr/bin/env bash
# bench_aggregator.sh — kline-aggregator against the harness PostgreSQL (DATABASE_URL, a
# postgresql:// URI; each part uses a database of its own, dropped at the end).
#
#   1. full rollup of 7 days x 2 symbols of 1s rows (1,209,600) into kline_1m;
#      baseline: the naive "GROUP BY the whole table" statement (same bar rules), whose
#      result is also checked to equal the aggregator's;
#   2. incremental run after one new minute of 2,000 symbols (120,000 rows) on tables of
#      ~1 M and ~10 M rows (median of 3 runs, process start to exit); baseline: the naive
#      whole-table GROUP BY at the same size;
#   3. loop mode: a minute's last second committed (+ NOTIFY) → its 1m bar committed,
#      p50/p99 over 60 minutes of 200 symbols (kp-agg-latency); baseline: the same
#      aggregator without LISTEN, polling every 5 s (the original design's 5 s buffer).
#
# Prints a markdown table (and appends it to $KP_BENCH_OUT if set). ~3-4 minutes.
set -euo pipefail
root=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
BIN=${KP_BIN:-$root/bin}
TBIN=${KP_TBIN:-$root/build/release/tbin}
GEN=$root/tests/integration/agg_gen.sql
AGG=$BIN/kline-aggregator
[[ -n ${DATABASE_URL:-} ]] || { echo "bench_aggregator: DATABASE_URL is not set (start the harness)" >&2; exit 2; }
[[ $DATABASE_URL == postgres*://*/* ]] || { echo "bench_aggregator: DATABASE_URL must be a postgresql:// URI" >&2; exit 2; }
[[ -x $AGG && -x $TBIN/kp-agg-latency ]] || { echo "bench_aggregator: build first (make programs testbins)" >&2; exit 2; }

base=${DATABASE_URL%/*}
dbs=()
loop_pid=
cleanup() {
	[[ -n $loop_pid ]] && kill "$loop_pid" 2>/dev/null && wait "$loop_pid" 2>/dev/null
	for d in "${dbs[@]}"; do
		psql "$DATABASE_URL" -XAtqc "drop database if exists $d" >/dev/null 2>&1 || true
	done
}
trap cleanup EXIT
log() { echo "bench_aggregator: $*" >&2; }
now_ms() { date +%s%3N; }
mkdb() {
	local name=kp_aggbench_$1_$$
	psql "$DATABASE_URL" -XAtqc "create database $name" >/dev/null
	dbs+=("$name")
	DB=$base/$name
	"$AGG" --once -d "$DB" 2>/dev/null # migrations
}
gen() { # DB NSYM SECS T0 CPSZ
	psql "$1" -XAtq -v ON_ERROR_STOP=1 -v nsym="$2" -v secs="$3" -v t0="$4" -v cpsz="$5" -f "$GEN"
}
q() { psql "$1" -XAtq -v ON_ERROR_STOP=1 -c "$2"; }
# The naive rollup: every minute of the whole table, same bar rules, one statement.
naive_select="select symbol, b as open_time, b + interval '1 min' - interval '1 ms' as close_time,
	coalesce((array_agg(open order by open_time) filter (where trades > 0))[1], (array_agg(close order by open_time desc))[1]) as open,
	coalesce(max(high) filter (where trades > 0), (array_agg(close order by open_time desc))[1]) as high,
	coalesce(min(low) filter (where trades > 0), (array_agg(close order by open_time desc))[1]) as low,
	coalesce((array_agg(close order by open_time desc) filter (where trades > 0))[1], (array_agg(close order by open_time desc))[1]) as close,
	sum(volume) as volume, sum(quote_volume) as quote_volume, sum(trades) as trades,
	sum(taker_buy_volume) as taker_buy_volume, sum(taker_buy_quote_volume) as taker_buy_quote_volume,
	coalesce((array_agg(first_trade_id order by open_time) filter (where trades > 0))[1], -1) as first_trade_id,
	coalesce((array_agg(last_trade_id order by open_time desc) filter (where trades > 0))[1], -1) as last_trade_id,
	true as closed, max(event_time) as event_time, 'agg' as source, now() as ingested_at, count(*)::int as row_count
	from (select *, date_bin('1 min', open_time, timestamptz 'epoch') b from kline_1s) k group by symbol, b"
timed() { # prints elapsed ms of "$@"
	local t0
	t0=$(now_ms)
	"$@" >/dev/null
	echo $(($(now_ms) - t0))
}
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (a > 0) printf "%.1fx", b / a; else print "-" }'; }
rows=()
row() { rows+=("| $1 | $2 | $3 | $4 | $5 |"); }

T0=1699920000 # 2023-11-14 00:00:00 UTC

# ---- 1. full rollup, 7 days x 2 symbols
log "1/3 full rollup: generating 7 d x 2 symbols of 1s rows"
mkdb full
gen "$DB" 2 604800 "$T0" 1000
full_ms=$(timed "$AGG" --once -d "$DB" -i 1m)
bars=$(q "$DB" "select count(*) from kline_1m")
naive_ms=$(timed q "$DB" "set jit = off; create table naive_1m as $naive_select")
diff_rows=$(q "$DB" "select count(*) from naive_1m n full join kline_1m k using (symbol, open_time)
	where n.symbol is null or k.symbol is null or (n.open, n.high, n.low, n.close, n.volume, n.quote_volume,
	n.trades, n.taker_buy_volume, n.taker_buy_quote_volume, n.first_trade_id, n.last_trade_id, n.row_count)
	is distinct from (k.open, k.high, k.low, k.close, k.volume, k.quote_volume, k.trades, k.taker_buy_volume,
	k.taker_buy_quote_volume, k.first_trade_id, k.last_trade_id, k.row_count)")
row "full rollup 7 d x 2 symbols (1,209,600 1s rows → $bars 1m bars)" "${full_ms} ms" "≤ 5000 ms" \
	"${naive_ms} ms (naive GROUP BY)" "$(ratio "$full_ms" "$naive_ms")"
row "full rollup: bars differing from the naive GROUP BY" "$diff_rows" "0" "-" "-"
all_ms=$(timed "$AGG" --once -d "$DB" -i 1m,5m,15m,1h,4h,1d --name all)
row "full rollup, all intervals 1m..1d (fresh progress row)" "${all_ms} ms" "-" "-" "-"
q "$DATABASE_URL" "drop database ${dbs[0]}" >/dev/null && dbs=("${dbs[@]:1}")

# ---- 2. incremental: one new minute of 2,000 symbols on ~1 M and ~10 M rows
incremental() { # LABEL SECONDS_PER_SYMBOL
	local label=$1 secs=$2 total i t ms med naive
	log "2/3 incremental at $label: generating 2000 symbols x $secs s"
	mkdb "inc$(tr A-Z a-z <<<"$label")"
	gen "$DB" 2000 "$secs" "$T0" 60
	total=$(q "$DB" "select count(*) from kline_1s")
	# The existing data is rolled up already (by the naive statement — that is the
	# baseline measurement) and its checkpoints consumed.
	naive=$(timed q "$DB" "set jit = off; insert into kline_1m $naive_select")
	q "$DB" "update aggregator_progress set last_checkpoint_id = (select max(id) from checkpoint) where name = 'default';
		insert into aggregator_watermark (name, symbol, watermark)
		select 'default', symbol, max(last_open_time) from checkpoint group by symbol; analyze" >/dev/null
	local runs=()
	for i in 0 1 2; do
		t=$((T0 + secs + i * 60))
		gen "$DB" 2000 60 "$t" 60
		ms=$(timed "$AGG" --once -d "$DB" -i 1m)
		runs+=("$ms")
		[[ $(q "$DB" "select count(*) from kline_1m where open_time = to_timestamp($t)") == 2000 ]] ||
			{ log "incremental run $i did not write 2000 bars"; exit 1; }
	done
	med=$(printf '%s\n' "${runs[@]}" | sort -n | sed -n 2p)
	row "incremental: 1 new minute x 2000 symbols (120,000 rows) on $total rows, median of 3 (runs: ${runs[*]} ms)" \
		"${med} ms" "≤ 1000 ms" "${naive} ms (naive GROUP BY)" "$(ratio "$med" "$naive")"
	q "$DATABASE_URL" "drop database ${dbs[0]}" >/dev/null && dbs=("${dbs[@]:1}")
}
incremental 1M 480    # 960,000 rows
incremental 10M 5040  # 10,080,000 rows

# ---- 3. loop mode latency
latency() { # ARGS... → prints the summary line
	local out
	"$AGG" -d "$DB" --stats-interval 0 "$@" 2>>"${KP_OUT:-/tmp}/bench_aggregator_loop.log" &
	loop_pid=$!
	sleep 1
	out=$("$TBIN/kp-agg-latency" -d "$DB" --samples "$samples" --symbols 200 --start-ms "$start_ms" | tail -1)
	kill "$loop_pid"
	wait "$loop_pid" || true
	loop_pid=
	echo "$out"
}
field() { sed -n "s/.* $1=\([0-9.]*\).*/\1/p" <<<"$2"; }
log "3/3 loop latency (LISTEN) and baseline (5 s polling)"
mkdb loop
samples=60 start_ms=1800000000000
lis=$(latency --every 60)
samples=12 start_ms=1810000020000
poll=$(latency --every 5 --no-listen)
row "loop: last second committed → 1m bar committed, p50 (60 minutes x 200 symbols)" \
	"$(field p50 "$lis") ms" "-" "$(field p50 "$poll") ms (5 s polling)" "$(ratio "$(field p50 "$lis")" "$(field p50 "$poll")")"
row "loop: last second committed → 1m bar committed, p99" \
	"$(field p99 "$lis") ms" "≤ 1000 ms" "$(field p99 "$poll") ms (5 s polling)" "$(ratio "$(field p99 "$lis")" "$(field p99 "$poll")")"

{
	echo "### kline-aggregator ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores)"
	echo
	echo "| metric | value | target | baseline (same run) | ratio |"
	echo "|---|---|---|---|---|"
	printf '%s\n' "${rows[@]}"
	echo
	echo "ratio = baseline / value (how many times faster than the baseline)."
} | tee -a "${KP_BENCH_OUT:-/dev/null}"

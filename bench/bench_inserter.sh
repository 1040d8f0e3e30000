#!/usr/bin/env bash
# bench_inserter.sh — kline-inserter against the harness Kafka and PostgreSQL
# (KAFKA_BROKERS, DATABASE_URL as a postgresql:// URI; each part uses a database and a
# topic of its own, dropped at the end).
#
#   1. throughput: 1,000,000 canonical klines (1,000 symbols x 1,000 s) waiting in a
#      4-partition topic → time from starting the inserter (new consumer group, default
#      settings) until every record is committed in PostgreSQL (its records_total counter
#      reaches N; the counter moves only after COMMIT and the Kafka offset commit).
#      Baseline (the ceiling): psql \copy of the same rows as CSV into a table of the
#      same shape and key (CREATE TABLE ... (LIKE kline_1s INCLUDING ALL)), same run.
#   2. steady state: 2,000 symbols x 1 kline/s for 60 s (a paced generator piped into
#      kcat: every second, the second that just ended) → latency from the Kafka message
#      timestamp (CreateTime, set by kcat when it produces) to the row's COMMIT, per row,
#      from the inserter's kline_inserter_e2e_seconds histogram (p50/p99 interpolated in
#      the bucket, as Prometheus' histogram_quantile does). --flush-ms 200 (the default),
#      then --flush-ms 500 (the default before) as the baseline.
#
# Prints a markdown table (and appends it to $KP_BENCH_OUT if set). ~4 minutes.
# BENCH_INSERTER_ROWS (default 1000000, a multiple of 1000) and BENCH_INSERTER_STEADY_S
# (default 60) shrink it for a quick look.
set -euo pipefail
root=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
BIN=${KP_BIN:-$root/bin}
TBIN=${KP_TBIN:-$root/build/release/tbin}
INS=$BIN/kline-inserter
GEN=$root/tests/integration/gen_klines.py
N=${BENCH_INSERTER_ROWS:-1000000}
STEADY_S=${BENCH_INSERTER_STEADY_S:-60}
STEADY_SYMBOLS=2000
[[ -n ${DATABASE_URL:-} && -n ${KAFKA_BROKERS:-} ]] ||
	{ echo "bench_inserter: DATABASE_URL and KAFKA_BROKERS must be set (start the harness)" >&2; exit 2; }
[[ $DATABASE_URL == postgres*://*/* ]] || { echo "bench_inserter: DATABASE_URL must be a postgresql:// URI" >&2; exit 2; }
[[ -x $INS && -x $TBIN/kp-topic ]] || { echo "bench_inserter: build first (make programs testbins)" >&2; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/bench_inserter.XXXXXX")
# shellcheck source=bench/lib_pgkafka.sh
. "$root/bench/lib_pgkafka.sh"
trap bench_cleanup EXIT
log() { echo "bench_inserter: $*" >&2; }
now_ms() { date +%s%3N; }
mkdb() { bench_mkdb kp_insbench "$1"; }        # NAME → sets DB, with the schema applied
mktopic() { bench_mktopic kp-insbench "$1" "$2"; } # NAME PARTITIONS → sets TOPIC
# Quantile Q of the histogram NAME from a /metrics text on stdin, in ms.
hist_quantile() {
	awk -v name="$1" -v q="$2" '
		index($1, name "_bucket{le=\"") == 1 {
			le = $1; sub(/.*le="/, "", le); sub(/".*/, "", le)
			n++; bound[n] = (le == "+Inf") ? -1 : le * 1000; cum[n] = $2
		}
		END {
			total = cum[n]; if (total == 0) { print "n/a"; exit }
			rank = q * total; lo = 0; prev = 0
			for (i = 1; i <= n; i++) {
				if (cum[i] >= rank) {
					hi = bound[i] < 0 ? lo : bound[i]
					c = cum[i] - prev
					printf "%.0f", (c > 0) ? lo + (hi - lo) * (rank - prev) / c : hi
					exit
				}
				prev = cum[i]; lo = bound[i]
			}
		}'
}

# ---- 1. throughput ----
secs=$((N / 1000))
log "generating $N klines (1000 symbols x $secs s)"
"$GEN" --keyed --symbols 1000 --seconds "$secs" --seed 42 --csv-out "$work/rows.csv" >"$work/rows.keyed"
mktopic tput 4
log "producing them to $TOPIC"
kcat -P -b "$KAFKA_BROKERS" -t "$TOPIC" -K$'\t' -X linger.ms=50 -X batch.num.messages=10000 \
	-l "$work/rows.keyed" 2>"$work/kcat.log"
have=$("$TBIN/kp-topic" -b "$KAFKA_BROKERS" count "$TOPIC")
[[ $have == "$N" ]] || { log "topic holds $have messages, not $N"; exit 1; }
rm -f "$work/rows.keyed"

mkdb tput
port=$(free_port)
log "inserter: $N records from Kafka into PostgreSQL"
t0=$(now_ms)
"$INS" -t "$TOPIC" --dlq-topic "" -g "bench-$$" -d "$DB" --metrics-port "$port" --stats-interval 0 \
	2>"$work/ins.log" &
pids+=($!)
ins_pid=$!
t_first=
while :; do
	n=$(metric "$port" kline_inserter_records_total || true)
	[[ -n $n && -z $t_first && $n != 0 ]] && t_first=$(now_ms)
	[[ $n == "$N" ]] && break
	kill -0 "$ins_pid" 2>/dev/null || { log "inserter died:"; tail -5 "$work/ins.log" >&2; exit 1; }
	(($(now_ms) - t0 < 600000)) || { log "timeout: $n of $N after 10 min"; exit 1; }
	sleep 0.1
done
t1=$(now_ms)
direct=$(metric "$port" kline_inserter_direct_batches_total)
batches=$(metric "$port" kline_inserter_batches_total)
kill "$ins_pid"
wait "$ins_pid" || true
rows=$(psql "$DB" -XAtqc "select count(*) from kline_1s")
[[ $rows == "$N" ]] || { log "kline_1s holds $rows rows, not $N"; exit 1; }
ins_ms=$((t1 - t0))
ins_rate=$((N * 1000 / ins_ms))

log "ceiling: psql \\copy of the same rows as CSV into a table shaped like kline_1s"
# kline_1s is a view (schema 012): LIKE takes its columns, not its key, so the key is named
psql "$DB" -XAtqc "create table ceiling (like kline_1s including defaults, close_time timestamptz, primary key (symbol, open_time))"
c0=$(now_ms)
psql "$DB" -XAtq -v ON_ERROR_STOP=1 -c "\\copy ceiling (symbol, open_time, close_time, open, high, low, close, volume, quote_volume, trades, taker_buy_volume, taker_buy_quote_volume, first_trade_id, last_trade_id, closed, event_time, source) from '$work/rows.csv' csv" >/dev/null
c1=$(now_ms)
copy_ms=$((c1 - c0))
copy_rate=$((N * 1000 / copy_ms))
# the two tables hold the same rows
diffs=$(psql "$DB" -XAtqc "select count(*) from (
	(select symbol, open_time, open_time + interval '999 ms', open, high, low, close, volume, quote_volume, trades, taker_buy_volume, taker_buy_quote_volume, first_trade_id, last_trade_id, closed, event_time, source from kline_1s
	 except select symbol, open_time, close_time, open, high, low, close, volume, quote_volume, trades, taker_buy_volume, taker_buy_quote_volume, first_trade_id, last_trade_id, closed, event_time, source from ceiling)) d")
[[ $diffs == 0 ]] || { log "kline_1s and the ceiling table differ in $diffs rows"; exit 1; }
rm -f "$work/rows.csv"

# ---- 2. steady state ----
steady() { # FLUSH_MS → sets P50 P99 COUNT
	mktopic "steady$1" 4
	mkdb "steady$1"
	local port pid total=$((STEADY_SYMBOLS * STEADY_S)) m
	port=$(free_port)
	"$INS" -t "$TOPIC" --dlq-topic "" -g "bench-steady-$$" -d "$DB" --flush-ms "$1" \
		--metrics-port "$port" --stats-interval 0 2>"$work/steady$1.log" &
	pid=$!
	pids+=("$pid")
	# wait for the assignment so the first seconds do not measure the group join
	for _ in $(seq 100); do grep -q assigned "$work/steady$1.log" && break; sleep 0.1; done
	log "steady state: $STEADY_SYMBOLS symbols x 1/s for $STEADY_S s, --flush-ms $1"
	"$GEN" --live --keyed --symbols "$STEADY_SYMBOLS" --seconds "$STEADY_S" --seed 5 |
		kcat -P -b "$KAFKA_BROKERS" -t "$TOPIC" -K$'\t' -X linger.ms=5 2>>"$work/kcat.log"
	for _ in $(seq 300); do
		[[ $(metric "$port" kline_inserter_records_total) == "$total" ]] && break
		sleep 0.1
	done
	m=$(curl -fs "http://127.0.0.1:$port/metrics")
	COUNT=$(awk '$1 == "kline_inserter_e2e_seconds_count" { print $2 }' <<<"$m")
	P50=$(hist_quantile kline_inserter_e2e_seconds 0.5 <<<"$m")
	P99=$(hist_quantile kline_inserter_e2e_seconds 0.99 <<<"$m")
	kill "$pid"
	wait "$pid" || true
	[[ $COUNT == "$total" ]] || log "only $COUNT of $total rows measured"
}
steady 200
s200=("$P50" "$P99" "$COUNT")
steady 500
s500=("$P50" "$P99" "$COUNT")

ratio=$(awk -v a="$ins_rate" -v b="$copy_rate" 'BEGIN { printf "%.2f", a / b }')
table=$(
	cat <<EOF

### kline-inserter ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, load $(cut -d' ' -f1 /proc/loadavg))

| metric | value | target | baseline (same run) | ratio |
|---|---|---|---|---|
| $N klines from Kafka to committed rows, rows/s (inserter start to last commit: $((ins_ms / 1000)).$((ins_ms % 1000 / 100)) s; $direct of $batches batches by direct COPY) | $ins_rate | ≥ 100000, and ≥ 50 % of the ceiling | psql \\copy CSV, same rows, same table shape and key: $copy_rate rows/s ($((copy_ms / 1000)).$((copy_ms % 1000 / 100)) s) | $ratio |
| steady $STEADY_SYMBOLS symbols x 1/s, $STEADY_S s, --flush-ms 200 (default): Kafka timestamp → committed row, p50 / p99 ms (${s200[2]} rows) | ${s200[0]} / ${s200[1]} | p99 < flush-ms + 500 | --flush-ms 500 (old default): ${s500[0]} / ${s500[1]} | |
EOF
)
echo "$table"
[[ -n ${KP_BENCH_OUT:-} ]] && echo "$table" >>"$KP_BENCH_OUT"
exit 0

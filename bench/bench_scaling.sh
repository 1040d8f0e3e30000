#!/usr/bin/env bash
# bench_scaling.sh — what a second and third instance buy, on the 3-node KRaft cluster
# harness (it starts one, `tests/harness/up --kafka-cluster 3`, unless it runs in one).
#
#   1. inserters in one consumer group: N klines (2,000 symbols, default 1,000,000)
#      waiting in a 6-partition topic of RF 3 → time from starting 1, 2 or 3 inserters
#      (a fresh group and database each time, default settings) until the sum of their
#      records_total counters reaches N (the counter moves only after the PostgreSQL COMMIT
#      and the offset commit); rows/s, each inserter's share and CPU. Baselines, same run:
#      1 inserter (the scaling ratio) and psql \copy of the same rows (the ceiling: all
#      inserters write into the one PostgreSQL).
#   2. streamers: kp-klinegen --realtime (200 symbols, 1 kline/s each) into a 6-partition
#      RF 3 topic; CLIENTS kp-wsload clients of 5 symbols on one streamer (the baseline),
#      then the same clients split in half over two streamers (each reads every
#      partition, as deployed); CPU % of each streamer over the window, delivered
#      msgs/s, p50/p99 latency.
#
# Environment: KP_BENCH_SCALING_ROWS (1000000, a multiple of 2000),
# KP_BENCH_SCALING_CLIENTS (1000: 5,000 msgs/s; 4,000 saturated this shared 2-core
# machine, the clients got 9,000 of 20,000 msgs/s), KP_BENCH_SCALING_SECS (20, the
# streamer window), KP_BENCH_SCALING_PARTS ("inserters streamers", either alone).
# Prints a markdown table (and appends it to $KP_BENCH_OUT if set). ~6 minutes.
set -euo pipefail
root=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
if [[ ${KP_KAFKA_NODES:-1} != 3 ]]; then
	# under bench/run.sh's single-broker harness: a cluster harness of its own
	exec env -u KP_HARNESS_DIR -u DATABASE_URL -u KAFKA_BROKERS -u KP_PG_PORT -u KP_KAFKA_NODES \
		-u KP_KAFKA_MODE "$root/tests/harness/up" --kafka-cluster 3 -- "$0" "$@"
fi
# shellcheck source=bench/lib_proc.sh
. "$root/bench/lib_proc.sh"
BIN=${KP_BIN:-$root/bin}
TBIN=${KP_TBIN:-$root/build/release/tbin}
INS=$BIN/kline-inserter
ST=$BIN/kline-streamer
GEN=$root/tests/integration/gen_klines.py
N=${KP_BENCH_SCALING_ROWS:-1000000}
SYMS=2000
PARTS=6
CLIENTS=${KP_BENCH_SCALING_CLIENTS:-1000}
PARTS_RUN=" ${KP_BENCH_SCALING_PARTS:-inserters streamers} "
DUR=${KP_BENCH_SCALING_SECS:-20}
NSYM=200
[[ -n ${DATABASE_URL:-} && -n ${KAFKA_BROKERS:-} ]] ||
	{ echo "bench_scaling: DATABASE_URL and KAFKA_BROKERS must be set (start the harness)" >&2; exit 2; }
[[ -x $INS && -x $ST && -x $TBIN/kp-topic && -x $TBIN/kp-wsload && -x $TBIN/kp-klinegen ]] ||
	{ echo "bench_scaling: build first (make programs testbins)" >&2; exit 2; }
((N % SYMS == 0)) || { echo "bench_scaling: KP_BENCH_SCALING_ROWS must be a multiple of $SYMS" >&2; exit 2; }
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"

work=$(mktemp -d "${TMPDIR:-/tmp}/bench_scaling.XXXXXX")
# shellcheck source=bench/lib_pgkafka.sh
. "$root/bench/lib_pgkafka.sh"
trap bench_cleanup EXIT
log() { echo "bench_scaling: $*" >&2; }
now_ms() { date +%s%3N; }
hz=$(getconf CLK_TCK)
mkdb() { bench_mkdb kp_scalbench "$1"; } # NAME → sets DB, with the schema applied
# NAME → sets TOPIC (PARTS partitions, RF 3: min.insync 2 from the brokers)
mktopic() { bench_mktopic kp-scalbench "$1" "$PARTS" 3; }
pct() { awk -v t="$1" -v hz="$hz" -v ms="$2" 'BEGIN { printf "%.1f", t / hz / (ms / 1000) * 100 }'; }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
rows=()
row() { rows+=("| $1 | $2 | $3 | $4 |"); }

# ---- 1. inserters in one group ----
if [[ $PARTS_RUN == *" inserters "* ]]; then
	secs=$((N / SYMS))
	log "generating $N klines ($SYMS symbols x $secs s)"
	"$GEN" --keyed --symbols "$SYMS" --seconds "$secs" --seed 42 --csv-out "$work/rows.csv" >"$work/rows.keyed"
	mktopic fill
	log "producing them to $TOPIC ($PARTS partitions, RF 3, acks=all)"
	kcat -P -b "$KAFKA_BROKERS" -t "$TOPIC" -K$'\t' -X acks=all -X linger.ms=50 -X batch.num.messages=10000 \
		-l "$work/rows.keyed" 2>"$work/kcat.log"
	have=$("$TBIN/kp-topic" -b "$KAFKA_BROKERS" count "$TOPIC")
	[[ $have == "$N" ]] || { log "topic holds $have messages, not $N"; exit 1; }
	rm -f "$work/rows.keyed"

	# drain K → RATE (rows/s), MS, SHARES ("a/b/c" records per inserter), CPU ("x/y/z" % each)
	drain() {
		local k=$1 i ports=() ips=() c0=() n t0 t1 sh=() cp=()
		mkdb "g$k"
		for ((i = 0; i < k; i++)); do
			ports+=("$(free_port)")
		done
		t0=$(now_ms)
		for ((i = 0; i < k; i++)); do
			"$INS" -b "$KAFKA_BROKERS" -t "$TOPIC" --dlq-topic "" -g "bench-scal-$k-$$" -d "$DB" \
				--metrics-port "${ports[i]}" --stats-interval 0 2>"$work/ins$k.$i.log" &
			pids+=($!)
			ips+=($!)
		done
		while :; do
			n=0
			for ((i = 0; i < k; i++)); do
				n=$((n + $(metric "${ports[i]}" kline_inserter_records_total || echo 0)))
			done
			((n >= N)) && break
			for p in "${ips[@]}"; do
				kill -0 "$p" 2>/dev/null || { log "an inserter died:"; tail -5 "$work"/ins"$k".*.log >&2; exit 1; }
			done
			(($(now_ms) - t0 < 900000)) || { log "timeout: $n of $N after 15 min"; exit 1; }
			sleep 0.1
		done
		t1=$(now_ms)
		for ((i = 0; i < k; i++)); do
			sh+=("$(metric "${ports[i]}" kline_inserter_records_total)")
			cp+=("$(pct "$(cpu_ticks "${ips[i]}")" $((t1 - t0)))")
			kill "${ips[i]}"
			wait "${ips[i]}" || true
		done
		n=$(psql "$DB" -XAtqc "select count(*) from kline_1s")
		[[ $n == "$N" ]] || { log "kline_1s holds $n rows, not $N"; exit 1; }
		MS=$((t1 - t0))
		RATE=$((N * 1000 / MS))
		SHARES=$(IFS=/; echo "${sh[*]}")
		CPU=$(IFS=/; echo "${cp[*]}")
		log "$k inserter(s): $RATE rows/s in $MS ms, records per inserter $SHARES, CPU % $CPU"
	}
	declare -A rate ms shares cpu
	for k in 1 2 3; do
		drain "$k"
		rate[$k]=$RATE ms[$k]=$MS shares[$k]=$SHARES cpu[$k]=$CPU
	done
	# kline_1s stores no close_time since schema 011: the CSV's third column is cut out
	log "ceiling: psql \\copy of the same rows as CSV into a table shaped like kline_1s"
	# kline_1s is a view (schema 012): LIKE takes its columns, not its key, so the key is named
	psql "$DB" -XAtqc "create table ceiling (like kline_1s including defaults, primary key (symbol, open_time))"
	c0=$(now_ms)
	psql "$DB" -XAtq -v ON_ERROR_STOP=1 -c "\\copy ceiling (symbol, open_time, open, high, low, close, volume, quote_volume, trades, taker_buy_volume, taker_buy_quote_volume, first_trade_id, last_trade_id, closed, event_time, source) from program 'cut -d, -f1,2,4- $work/rows.csv' csv" >/dev/null
	copy_ms=$(($(now_ms) - c0))
	copy_rate=$((N * 1000 / copy_ms))
	rm -f "$work/rows.csv"
	for k in 1 2 3; do
		row "$k inserter(s) in one group, $N klines ($PARTS partitions) → committed, rows/s ($((ms[$k] / 1000)).$((ms[$k] % 1000 / 100)) s; records per inserter ${shares[$k]}; CPU % each ${cpu[$k]})" \
			"${rate[$k]}" "1 inserter: ${rate[1]}; psql \\copy: $copy_rate" \
			"$(ratio "${rate[$k]}" "${rate[1]}") / $(ratio "${rate[$k]}" "$copy_rate")"
	done

fi

# ---- 2. streamers ----
if [[ $PARTS_RUN == *" streamers "* ]]; then
	mktopic feed
	syms=$("$TBIN/kp-klinegen" --symbols $NSYM --seconds 1 | jq -r .symbol | paste -sd, -)
	"$TBIN/kp-klinegen" --realtime --spread --symbols $NSYM |
		kcat -P -b "$KAFKA_BROKERS" -t "$TOPIC" -X linger.ms=5 2>>"$work/kcat.log" &
	pids+=($!)
	st_start() { # → PORT, SPID
		PORT=$(free_port)
		"$ST" -b "$KAFKA_BROKERS" -t "$TOPIC" --listen "127.0.0.1:$PORT" --stats-interval 0 --log-level warn \
			--max-clients 20000 2>>"$work/streamer.log" &
		SPID=$!
		pids+=("$SPID")
		for _ in $(seq 100); do curl -fsS -o /dev/null "http://127.0.0.1:$PORT/healthz" 2>/dev/null && break; sleep 0.1; done
		sleep 3 # assigned, every symbol has its first kline
	}
	# wsload PORT CLIENTS TAG → kp-wsload in the background (JSON in $work/TAG.json)
	wsload() {
		"$TBIN/kp-wsload" --port "$1" --symbols "$syms" -n "$2" --per-client 5 --concurrency 500 \
			--warmup 3 --duration "$DUR" --engine raw >"$work/$3.json" 2>"$work/$3.err" &
		WPID=$!
	}
	connected() { grep -q connected "$work/$1.err"; }
	# window PID... → CPU % of each over DUR-2 s, once every kp-wsload says it is connected
	window() {
		local t0 t1 p c0=() out=()
		sleep 3
		t0=$(now_ms)
		for p in "$@"; do c0+=("$(cpu_ticks "$p")"); done
		sleep $((DUR - 2))
		t1=$(now_ms)
		local i=0
		for p in "$@"; do
			out+=("$(pct $(($(cpu_ticks "$p") - c0[i])) $((t1 - t0)))")
			i=$((i + 1))
		done
		echo "${out[*]}"
	}
	jv() { jq -r ".$2" "$work/$1.json"; }

	log "streamers: $CLIENTS clients x 5 of $NSYM symbols on one streamer"
	st_start
	p1=$PORT s1=$SPID
	wsload "$p1" "$CLIENTS" one
	w=$WPID
	while kill -0 "$w" 2>/dev/null && ! connected one; do sleep 0.2; done
	read -r cpu_one < <(window "$s1")
	wait "$w"
	rss_one=$(rss_kb "$s1")
	log "one streamer: CPU $cpu_one %, $(jq -c . "$work/one.json")"
	log "the same clients split over two streamers"
	st_start
	p2=$PORT s2=$SPID
	half=$((CLIENTS / 2))
	wsload "$p1" "$half" a
	wa=$WPID
	wsload "$p2" $((CLIENTS - half)) b
	wb=$WPID
	while kill -0 "$wa" 2>/dev/null && kill -0 "$wb" 2>/dev/null && ! { connected a && connected b; }; do sleep 0.2; done
	read -r cpu_a cpu_b < <(window "$s1" "$s2")
	wait "$wa"
	wait "$wb"
	log "two streamers: CPU $cpu_a % and $cpu_b %, $(jq -c . "$work/a.json") $(jq -c . "$work/b.json")"
	msgs_two=$(awk -v a="$(jv a msgs_per_sec)" -v b="$(jv b msgs_per_sec)" 'BEGIN { printf "%.0f", a + b }')
	row "streamer CPU % per instance, $CLIENTS clients x 5 symbols ($NSYM symbols at 1/s from Kafka): 1 instance / 2 instances (each)" \
		"$cpu_one / $cpu_a, $cpu_b" "1 instance: $cpu_one" \
		"$(ratio "$cpu_a" "$cpu_one"), $(ratio "$cpu_b" "$cpu_one")"
	row "delivered msgs/s in all (offered: $((CLIENTS * 5))): 1 instance / 2 instances" "$(jv one msgs_per_sec) / $msgs_two" "1 instance: $(jv one msgs_per_sec)" \
		"$(ratio "$msgs_two" "$(jv one msgs_per_sec)")"
	row "latency p50 / p99 ms: 1 instance / 2 instances (a; b)" \
		"$(jv one p50_ms) / $(jv one p99_ms); $(jv a p50_ms) / $(jv a p99_ms); $(jv b p50_ms) / $(jv b p99_ms)" "-" "-"
	row "streamer RSS MB (1 instance, after the window)" "$(awk -v k="$rss_one" 'BEGIN { printf "%.1f", k / 1024 }')" "-" "-"
fi

table=$(
	echo
	echo "### scaling on the 3-node KRaft cluster ($(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores shared by the 3 brokers, PostgreSQL and every instance; load average at start $load_start)"
	echo
	echo "| metric | value | baseline (same run) | ratio to the baseline |"
	echo "|---|---|---|---|"
	printf '%s\n' "${rows[@]}"
)
echo "$table"
[[ -n ${KP_BENCH_OUT:-} ]] && echo "$table" >>"$KP_BENCH_OUT"
exit 0

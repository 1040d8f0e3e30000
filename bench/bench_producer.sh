#!/usr/bin/env bash
# bench_producer.sh — kline-producer against kline-sim and the harness Kafka (KAFKA_BROKERS).
#
#   1. throughput: kline-sim --speed max (1,000 symbols x 400 s = 400,000 klines) →
#      producer → Kafka; klines/s of wall time (sim, broker and producer share the 2
#      cores) and klines per second of producer CPU (the "one core" figure);
#      baseline: kcat -P publishing the same 400,000 key/value lines, pre-made, with the
#      same producer settings (idempotent, acks=all, linger.ms=1, the default), same broker;
#   2. memory: 2,000 symbols streaming in real time for 30 s: RSS and peak RSS;
#   3. latency added by the producer at that load: receive → Kafka ack, p50/p99, from
#      the producer's histogram (log-linear buckets, ±12.5 %).
#
# Throughput and latency are each measured with -X linger.ms=5 and -X linger.ms=1.
# Prints a markdown table (and appends it to $KP_BENCH_OUT if set). ~4 minutes.
set -euo pipefail
root=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
BIN=${KP_BIN:-$root/bin}
TBIN=${KP_TBIN:-$root/build/release/tbin}
PROD=$BIN/kline-producer
SIM=$TBIN/kline-sim
[[ -n ${KAFKA_BROKERS:-} ]] || { echo "bench_producer: KAFKA_BROKERS is not set (start the harness)" >&2; exit 2; }
[[ -x $PROD && -x $SIM && -x $TBIN/kp-topic ]] || { echo "bench_producer: build first (make programs testbins)" >&2; exit 2; }
command -v kcat >/dev/null || { echo "bench_producer: kcat is missing" >&2; exit 2; }

work=$(mktemp -d "${TMPDIR:-/tmp}/kp-bench-producer.XXXXXX")
pids=()
topics=()
cleanup() {
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null && wait "$p" 2>/dev/null; done
	for t in "${topics[@]}"; do "$TBIN/kp-topic" -b "$KAFKA_BROKERS" delete "$t" >/dev/null 2>&1 || true; done
	rm -rf "$work"
}
trap cleanup EXIT
log() { echo "bench_producer: $*" >&2; }
now_ms() { date +%s%3N; }
free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
metric() { curl -fsS "http://127.0.0.1:$1/metrics" | awk -v m="$2" '$1 == m { print $2 }'; }
cpu_ticks() { awk '{ print $14 + $15 }' "/proc/$1/stat"; }
rows=()
row() { rows+=("| $1 | $2 | $3 | $4 | $5 |"); }

start_sim() { # ARGS... → SIM_PORT, SIM_PID
	SIM_PORT=$(free_port)
	"$SIM" --listen "127.0.0.1:$SIM_PORT" "$@" 2>"$work/sim.log" &
	SIM_PID=$!
	pids+=("$SIM_PID")
	for _ in $(seq 50); do curl -fs -o /dev/null "http://127.0.0.1:$SIM_PORT/api/v3/ping" && return 0; sleep 0.1; done
	log "kline-sim did not start"; exit 1
}
new_topic() {
	local t=kp-bench-producer-$1-$$
	"$TBIN/kp-topic" -b "$KAFKA_BROKERS" create "$t" 6 >/dev/null
	topics+=("$t" "$t.rejected")
	echo "$t"
}

# ---- 1. throughput, once per linger.ms (the default 1 and the former default 5: the e2e
# latency target wants the smaller one, as long as it costs no throughput)
NSYM=1000 SECS=400 TOTAL=$((1000 * 400))
run_tput() { # LINGER → wall_rate, cpu_rate, topic
	log "1/3 throughput: $NSYM symbols x $SECS s at --speed max, linger.ms=$1"
	start_sim --num-symbols "$NSYM" --speed max --duration "$SECS"
	topic=$(new_topic "tput$1")
	mport=$(free_port)
	"$PROD" --all-symbols -t "$topic" --ws-url "ws://127.0.0.1:$SIM_PORT" --rest-url "http://127.0.0.1:$SIM_PORT" \
		--streams-per-conn 70 --metrics-port "$mport" --stats-interval 0 --watchdog-secs 60 -X "linger.ms=$1" \
		2>"$work/prod1.log" &
	ppid=$!
	pids+=("$ppid")
	local t_first='' n_first=0 t_last='' n_last=0 last_change d t
	last_change=$(now_ms)
	local deadline=$(($(now_ms) + 100000))
	while (($(now_ms) < deadline)); do
		sleep 0.25
		d=$(metric "$mport" kline_producer_delivered_total 2>/dev/null || echo 0)
		d=${d:-0}
		t=$(now_ms)
		if [[ -z $t_first ]] && ((d > 0)); then t_first=$t n_first=$d; fi
		if ((d > n_last)); then n_last=$d t_last=$t last_change=$t; fi
		((d >= TOTAL)) && break
		# everything the sim had is through (the last seconds of late subscribers are not live)
		((n_last > 0 && t - last_change > 3000)) && break
	done
	local cpu published hz count
	cpu=$(cpu_ticks "$ppid")
	published=$(metric "$mport" kline_producer_published_total)
	kill -TERM "$ppid"; wait "$ppid" || { log "producer exit $?"; exit 1; }
	kill "$SIM_PID"; wait "$SIM_PID" 2>/dev/null || true
	hz=$(getconf CLK_TCK)
	wall_rate=$(awk -v n=$((n_last - n_first)) -v ms=$((t_last - t_first)) 'BEGIN { printf "%d", (ms > 0 ? n * 1000 / ms : 0) }')
	cpu_rate=$(awk -v n="$published" -v c="$cpu" -v hz="$hz" 'BEGIN { printf "%d", (c > 0 ? n * hz / c : 0) }')
	count=$("$TBIN/kp-topic" -b "$KAFKA_BROKERS" count "$topic")
	log "producer linger.ms=$1: $n_last delivered ($count in the topic), $wall_rate/s wall, $cpu_rate/s per CPU second"
}
run_tput 5
wall5=$wall_rate cpu5=$cpu_rate
run_tput 1
wall_rate1=$wall_rate cpu_rate1=$cpu_rate
wall_rate=$wall5 cpu_rate=$cpu5

# baseline: kcat -P with the same lines (key TAB value), same settings
kcat -C -b "$KAFKA_BROKERS" -t "$topic" -e -q -f '%k\t%s\n' >"$work/lines"
nlines=$(wc -l <"$work/lines")
ktopic=$(new_topic kcat)
t0=$(now_ms)
/usr/bin/time -f '%U %S' -o "$work/kcat.time" kcat -P -l -b "$KAFKA_BROKERS" -t "$ktopic" -K $'\t' \
	-X enable.idempotence=true -X acks=all -X linger.ms=1 "$work/lines"
kcat_ms=$(($(now_ms) - t0))
kcat_rate=$(awk -v n="$nlines" -v ms="$kcat_ms" 'BEGIN { printf "%d", n * 1000 / ms }')
kcat_cpu_rate=$(awk -v n="$nlines" '{ c = $1 + $2; printf "%d", (c > 0 ? n / c : 0) }' "$work/kcat.time")
log "kcat -P: $nlines lines in $kcat_ms ms: $kcat_rate/s wall, $kcat_cpu_rate/s per CPU second"
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else print "-" }'; }
row "throughput, sim --speed max → Kafka (klines/s, wall, 2 shared cores)" "$wall_rate" ">= 100000" "kcat -P: $kcat_rate" "$(ratio "$wall_rate" "$kcat_rate")"
row "throughput per producer CPU second (klines/s, one core)" "$cpu_rate" ">= 100000" "kcat -P: $kcat_cpu_rate" "$(ratio "$cpu_rate" "$kcat_cpu_rate")"
row "throughput, wall (klines/s), -X linger.ms=1" "$wall_rate1" ">= 100000" "linger.ms=5: $wall5" "$(ratio "$wall_rate1" "$wall5")"
row "throughput per producer CPU second, -X linger.ms=1" "$cpu_rate1" ">= 100000" "linger.ms=5: $cpu5" "$(ratio "$cpu_rate1" "$cpu5")"

# ---- 2 + 3. memory and latency with 2,000 symbols in real time, per linger.ms
run_rt() { # LINGER SECS → rss, hwm, p50, p99
	log "2/3 memory + 3/3 latency: 2000 symbols, real time, $2 s, linger.ms=$1"
	start_sim --num-symbols 2000 --speed 1
	topic=$(new_topic "mem$1")
	mport=$(free_port)
	"$PROD" --all-symbols -t "$topic" --ws-url "ws://127.0.0.1:$SIM_PORT" --rest-url "http://127.0.0.1:$SIM_PORT" \
		--metrics-port "$mport" --stats-interval 0 -X "linger.ms=$1" 2>"$work/prod2.log" &
	ppid=$!
	pids+=("$ppid")
	sleep "$2"
	rss=$(awk '/^VmRSS/ { print $2 }' "/proc/$ppid/status")
	hwm=$(awk '/^VmHWM/ { print $2 }' "/proc/$ppid/status")
	p50=$(metric "$mport" kline_producer_latency_p50_us)
	p99=$(metric "$mport" kline_producer_latency_p99_us)
	local delivered
	delivered=$(metric "$mport" kline_producer_delivered_total)
	kill -TERM "$ppid"; wait "$ppid" || { log "producer exit $?"; exit 1; }
	kill "$SIM_PID"; wait "$SIM_PID" 2>/dev/null || true
	log "2000 symbols, linger.ms=$1: RSS $rss kB (peak $hwm kB), $delivered delivered, latency p50 $p50 us p99 $p99 us"
}
ms() { awk -v u="$1" 'BEGIN { printf "%.1f", u / 1000 }'; }
run_rt 1 25
p50_1=$p50 p99_1=$p99
run_rt 5 25
row "RSS with 2000 symbols, steady (MB)" "$((rss / 1024))" "<= 64" "-" "-"
row "peak RSS with 2000 symbols (MB, incl. exchangeInfo parse)" "$((hwm / 1024))" "<= 64" "-" "-"
row "latency receive → Kafka ack, p50 (ms, linger.ms=5)" "$(ms "$p50")" "-" "-" "-"
row "latency receive → Kafka ack, p99 (ms, linger.ms=5)" "$(ms "$p99")" "-" "-" "-"
row "latency receive → Kafka ack, p50 (ms, linger.ms=1)" "$(ms "$p50_1")" "-" "linger.ms=5: $(ms "$p50")" "$(ratio "$p50_1" "$p50")"
row "latency receive → Kafka ack, p99 (ms, linger.ms=1)" "$(ms "$p99_1")" "<= 25 (e2e)" "linger.ms=5: $(ms "$p99")" "$(ratio "$p99_1" "$p99")"

{
	echo "| metric | value | target | baseline (same run) | ratio |"
	echo "|---|---|---|---|---|"
	printf '%s\n' "${rows[@]}"
} | tee -a "${KP_BENCH_OUT:-/dev/null}"

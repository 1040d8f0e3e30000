#!/usr/bin/env bash
# bench_peers.sh — kline-streamer and Centrifugo side by side on the same Kafka (issue 19).
#
# Per workload: two fresh topics; kp-klinegen --realtime (one 1s kline per symbol per
# second, all written at the top of the second like Binance's closes: a burst, event_time
# = the moment each record is written) | kp-peer-feed, which produces every record in one
# loop to both: the streamer's topic, and Centrifugo's with the header centrifugo-channels
# = the symbol (Kafka consumer in publication data mode: the value is published as is).
# Then each server in turn, pinned to the same core (taskset), consumes its topic while
# kp-wsload (one process, raw epoll engine, pinned to the other core) connects the
# clients, subscribes each to its symbols (streamer: {"op":"subscribe"}; Centrifugo: its
# JSON protocol, connect + one subscribe per channel, anonymous/insecure on loopback) and
# measures receipt − event_time for every update whose event_time falls in the window.
#
#   w1  2,000 symbols, 1,000 clients x 5 symbols
#   w2    200 symbols, 10,000 clients x 2
#   w3    200 symbols, 500 clients x 200 (every symbol, named one by one for both)
#   w4     20 symbols, 10 clients x 20 (idle floor: what the Kafka hop and hand-off cost
#          when no CPU is short)
#
# delivered = updates received within KP_BENCH_PEERS_GRACE s of the window's end, of
# clients x symbols x seconds (failed or cut-off clients count as not delivered).
# CPU (% of one core) and RSS are sampled over the window; the client's own CPU is shown
# so that it is seen not to be the bottleneck.
#
# Environment: KP_BENCH_PEERS_SECS (window per server and workload, default 30),
# KP_BENCH_PEERS_WORKLOADS (subset of "w1 w2 w3 w4"), KP_BENCH_PEERS_SERVER_CPU (default
# 1), KP_BENCH_PEERS_CLIENT_CPU (default 0; the feeder runs there too), KP_BENCH_PEERS_GRACE
# (default 5), KP_BENCH_STREAMER_ARGS / KP_BENCH_CENTRIFUGO_JSON (extra streamer options;
# a JSON object merged into Centrifugo's config, e.g. '{"consumers":...}' is replaced
# whole), KP_CENTRIFUGO_BIN (bench/peers_centrifugo.sh builds v6.9.1 when unset).
# Needs KAFKA_BROKERS of a running harness (bench/run.sh starts one).
# KP_BENCH_PEERS_STAGES (default 1): run the streamer with --stage-stamps and the feeder
# with --ack-stats, and add where the time goes (event_time → broker ack → consumed by the
# streamer's feed thread → taken by its service loop → written to the socket → received by
# kp-wsload), p50 / p99 over the same window, to the table (bench/stage_quantiles.py).
# KP_BENCH_PEERS_BASELINE=PATH: another kline-streamer binary (e.g. the previous commit's)
# measured third in every workload, so before and after share the run's load; its rows
# are added below the table.
# Writes bench/results/peers.md (the table), peers-{streamer,centrifugo}.samples (raw
# latency samples, "workload ms", at most ~3,000 per run) and peers-latency.svg.
# About 7 minutes (plus ~5 the first time, to build Centrifugo).
set -Eeuo pipefail
root=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
BIN=${KP_BIN:-$root/bin}
TBIN=${KP_TBIN:-$root/build/release/tbin}
: "${KAFKA_BROKERS:?bench_peers: KAFKA_BROKERS of a running harness (bench/run.sh)}"
for b in "$BIN/kline-streamer" "$TBIN/kp-klinegen" "$TBIN/kp-wsload" "$TBIN/kp-peer-feed" "$TBIN/kp-topic"; do
	[[ -x $b ]] || { echo "bench_peers: $b missing (make programs testbins)" >&2; exit 2; }
done
CF=$("$root/bench/peers_centrifugo.sh")
DUR=${KP_BENCH_PEERS_SECS:-30}
GRACE=${KP_BENCH_PEERS_GRACE:-5}
WARMUP=3
SCPU=${KP_BENCH_PEERS_SERVER_CPU:-1}
CCPU=${KP_BENCH_PEERS_CLIENT_CPU:-0}
# The machine is shared: at a load average of 8-13 (other helpers' builds and tests) a
# server that wants more than its share of core $SCPU falls behind for that reason alone
# (seen: Centrifugo 27 % delivered at 500 x 200). With autogroup scheduling (one group per
# session, and every harness server is a session of its own) a process's nice only ranks
# it inside its session, so this session's autogroup (servers, client, feeder) and the
# harness broker's get NICE too; KP_BENCH_PEERS_NICE=0 measures the scheduler's share.
NICE=${KP_BENCH_PEERS_NICE:--10}
# autogroup_nice PID → that process's session gets NICE (no-op without autogroup)
autogroup_nice() {
	[[ -w /proc/$1/autogroup ]] || return 0
	echo "$NICE" >"/proc/$1/autogroup" 2>/dev/null || log "could not set the autogroup nice of $1"
}
# commands, not a function: "$!" of a backgrounded function is its subshell, not the program
on_server=(nice -n "$NICE" taskset -c "$SCPU")
on_client=(nice -n "$NICE" taskset -c "$CCPU")
WL=" ${KP_BENCH_PEERS_WORKLOADS:-w1 w2 w3 w4} "
STAGES=${KP_BENCH_PEERS_STAGES:-1}
BASELINE=${KP_BENCH_PEERS_BASELINE:-}
read -ra streamer_args <<<"${KP_BENCH_STREAMER_ARGS:-}"
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
(($(ulimit -n) >= 10300)) || { echo "bench_peers: need 10300 open files, have $(ulimit -n)" >&2; exit 2; }

results=$root/bench/results
mkdir -p "$results"
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kp-bench-peers.XXXXXX")
srv_pid= feed_pids=()
log() { echo "bench_peers: $*" >&2; }
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
stop_pid() {
	local p=$1
	kill -TERM "$p" 2>/dev/null || return 0
	for _ in $(seq 100); do kill -0 "$p" 2>/dev/null || break; sleep 0.1; done
	kill -KILL "$p" 2>/dev/null || true
	wait "$p" 2>/dev/null || true
}
stop_feed() {
	local p
	for p in ${feed_pids[@]+"${feed_pids[@]}"}; do stop_pid "$p"; done
	feed_pids=()
}
cleanup() {
	[[ -n $srv_pid ]] && stop_pid "$srv_pid"
	stop_feed
	[[ -n ${KEEP_TMP:-} ]] || rm -rf "$tmp"
}
trap cleanup EXIT
trap 'log "failed at line $LINENO: $BASH_COMMAND (exit $?)"' ERR

# shellcheck source=bench/lib_proc.sh
. "$root/bench/lib_proc.sh"
# ns the process's threads spent runnable but waiting for a CPU (schedstat field 2)
wait_ns() { cat /proc/"$1"/task/*/schedstat 2>/dev/null | awk '{s += $2} END {printf "%.0f", s}'; }
HZ=$(getconf CLK_TCK)
pct_of_core() { awk -v c="$1" -v hz="$HZ" -v ns="$2" 'BEGIN{printf "%.1f", c / hz / (ns / 1e9) * 100}'; }

# feed NAME SYMBOLS → topics $tmp/NAME.{st,cf}topic exist, records flow into both
feed() {
	local name=$1 nsym=$2 st="kp-peers-$1-$$" cf="kp-peers-$1-$$-cf"
	"$TBIN/kp-topic" -b "$KAFKA_BROKERS" create "$st" 6 >/dev/null
	"$TBIN/kp-topic" -b "$KAFKA_BROKERS" create "$cf" 6 >/dev/null
	echo "$st" >"$tmp/$name.sttopic"
	echo "$cf" >"$tmp/$name.cftopic"
	mkfifo "$tmp/$name.fifo"
	local ack=()
	[[ $STAGES == 1 ]] && ack=(--ack-stats "$tmp/$name.ack.prom")
	"${on_client[@]}" "$TBIN/kp-peer-feed" -b "$KAFKA_BROKERS" --topic "$st" --peer-topic "$cf" \
		${ack[@]+"${ack[@]}"} <"$tmp/$name.fifo" 2>>"$tmp/$name.feed.log" &
	feed_pids+=($!)
	"${on_client[@]}" "$TBIN/kp-klinegen" --realtime --symbols "$nsym" >"$tmp/$name.fifo" &
	feed_pids+=($!)
}

# start_centrifugo NAME → Centrifugo on PORT consuming NAME's peer topic; sets srv_pid
start_centrifugo() {
	local name=$1 cf
	cf=$(cat "$tmp/$name.cftopic")
	PORT=$(port)
	# Defaults everywhere but what a loopback bench needs: anonymous clients (insecure),
	# more channels per client than the default 128 (w3 subscribes to 200).
	jq -n --arg b "$KAFKA_BROKERS" --arg t "$cf" --arg g "kp-peers-$name-$$" --argjson p "$PORT" \
		--argjson extra "${KP_BENCH_CENTRIFUGO_JSON:-{\}}" '{
		log: {level: "warn"},
		http_server: {address: "127.0.0.1", port: $p},
		client: {insecure: true, allowed_origins: ["*"], channel_limit: 1024},
		http_api: {key: "kp-bench"},
		health: {enabled: true},
		consumers: [{name: "klines", enabled: true, type: "kafka",
			kafka: {brokers: ($b | split(",")), topics: [$t], consumer_group: $g,
				publication_data_mode: {enabled: true, channels_header: "centrifugo-channels"}}}]
	} * $extra' >"$tmp/$name.centrifugo.json"
	"${on_server[@]}" "$CF" -c "$tmp/$name.centrifugo.json" >>"$tmp/$name.centrifugo.log" 2>&1 &
	srv_pid=$!
	for _ in $(seq 100); do curl -fsS -o /dev/null "http://127.0.0.1:$PORT/health" 2>/dev/null && break; sleep 0.1; done
	# the consumer joins its group and fetches (it starts at the topic's beginning: the
	# few seconds since the topic was made are published to channels nobody follows yet)
	sleep 4
}

# start_streamer NAME [BINARY] → kline-streamer on PORT consuming NAME's topic; sets srv_pid
start_streamer() {
	local name=$1 exe=${2:-$BIN/kline-streamer} st
	st=$(cat "$tmp/$name.sttopic")
	PORT=$(port)
	"${on_server[@]}" "$exe" -b "$KAFKA_BROKERS" -t "$st" --listen "127.0.0.1:$PORT" \
		--catchup-secs 0 --max-clients 20000 --stats-interval 0 --log-level warn $([[ $STAGES == 1 ]] && echo --stage-stamps) \
		${streamer_args[@]+"${streamer_args[@]}"} 2>>"$tmp/$name.streamer.log" &
	srv_pid=$!
	for _ in $(seq 100); do curl -fsS -o /dev/null "http://127.0.0.1:$PORT/healthz" 2>/dev/null && break; sleep 0.1; done
	sleep 2 # partitions assigned, every symbol seen once
}

# scrape NAME SERVER WHEN → the feeder's ack histogram and (streamer) /metrics, saved
scrape() {
	[[ $STAGES == 1 ]] || return 0
	cp "$tmp/$1.ack.prom" "$tmp/$1.$2.ack$3" 2>/dev/null || true
	[[ $2 != centrifugo ]] && curl -fsS -o "$tmp/$1.$2.metrics$3" "http://127.0.0.1:$PORT/metrics" 2>/dev/null
	return 0
}

# measure NAME SERVER SYMS_CSV CLIENTS PER_CLIENT → one JSON line: kp-wsload's summary
# plus the server's and the client's CPU and the server's RSS over the window, and (with
# STAGES) the per-stage quantiles over the same window
measure() {
	local name=$1 server=$2 syms=$3 n=$4 k=$5 every
	every=$(((n * k * DUR) / 3000))
	((every >= 1)) || every=1
	local proto=streamer
	[[ $server == centrifugo ]] && proto=centrifugo
	"${on_client[@]}" "$TBIN/kp-wsload" --engine raw --proto "$proto" --port "$PORT" --symbols "$syms" \
		-n "$n" --per-client "$k" --concurrency 500 --warmup $WARMUP --duration "$DUR" --grace "$GRACE" \
		--samples "$tmp/$name.$server.samples" --sample-every "$every" --sample-label "$name" \
		>"$tmp/$name.$server.json" 2>"$tmp/$name.$server.err" &
	local lp=$! t0 c0 l0 w0 t1 c1 l1 w1 rss
	while kill -0 "$lp" 2>/dev/null && ! grep -q connected "$tmp/$name.$server.err"; do sleep 0.2; done
	sleep $((WARMUP + 1))
	t0=$(date +%s%N) c0=$(cpu_ticks "$srv_pid") l0=$(cpu_ticks "$lp") w0=$(wait_ns "$srv_pid")
	scrape "$name" "$server" 0
	sleep $((DUR - 1))
	t1=$(date +%s%N) c1=$(cpu_ticks "$srv_pid") l1=$(cpu_ticks "$lp") w1=$(wait_ns "$srv_pid")
	scrape "$name" "$server" 1
	rss=$(rss_kb "$srv_pid")
	wait "$lp" || true
	cat "$tmp/$name.$server.samples" >>"$tmp/$server.samples"
	local stages='{}'
	[[ $STAGES == 1 ]] && stages=$(python3 "$root/bench/stage_quantiles.py" \
		"$tmp/$name.$server.ack0" "$tmp/$name.$server.ack1" \
		"$tmp/$name.$server.metrics0" "$tmp/$name.$server.metrics1")
	jq -c --argjson cpu "$(pct_of_core $((c1 - c0)) $((t1 - t0)))" --argjson stages "$stages" \
		--argjson ccpu "$(pct_of_core $((l1 - l0)) $((t1 - t0)))" --argjson rss "$rss" \
		--argjson wait "$(awk -v w=$((w1 - w0)) -v ns=$((t1 - t0)) 'BEGIN{printf "%.1f", w / ns * 100}')" \
		'. + {cpu_pct: $cpu, client_cpu_pct: $ccpu, rss_kb: $rss, server_runq_wait_pct: $wait, stages: $stages}' \
		"$tmp/$name.$server.json"
}

stop_server() {
	stop_pid "$srv_pid"
	srv_pid=
}

# workload NAME SYMBOLS CLIENTS PER_CLIENT TITLE → appends a table row
rows=()
titles=()
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }
mb() { awk -v k="$1" 'BEGIN{printf "%.0f", k / 1024}'; }
workload() {
	local name=$1 nsym=$2 n=$3 k=$4 title=$5 syms s c
	[[ $WL == *" $name "* ]] || return 0
	syms=$("$TBIN/kp-klinegen" --symbols "$nsym" --seconds 1 | jq -r .symbol | paste -sd, -)
	v() { jq -r ".$2" <<<"$1"; }
	log "$name: $title; load average $(cut -d' ' -f1-3 /proc/loadavg)"
	feed "$name" "$nsym"
	# Centrifugo first: its consumer group starts at the topic's beginning, so the backlog
	# it replays before the clients come is only the seconds since the topic was made
	start_centrifugo "$name"
	c=$(measure "$name" centrifugo "$syms" "$n" "$k")
	log "$name centrifugo: $c"
	stop_server
	start_streamer "$name"
	s=$(measure "$name" streamer "$syms" "$n" "$k")
	log "$name streamer: $s"
	stop_server
	local b=
	if [[ -n $BASELINE ]]; then
		start_streamer "$name" "$BASELINE"
		b=$(measure "$name" baseline "$syms" "$n" "$k")
		log "$name baseline: $b"
		stop_server
		base_rows+=("| $title | $(v "$b" p50_ms) / $(v "$c" p50_ms) ($(ratio "$(v "$b" p50_ms)" "$(v "$c" p50_ms)")) \
| $(v "$b" p99_ms) / $(v "$c" p99_ms) ($(ratio "$(v "$b" p99_ms)" "$(v "$c" p99_ms)")) \
| $(v "$b" cpu_pct) / $(v "$c" cpu_pct) ($(ratio "$(v "$b" cpu_pct)" "$(v "$c" cpu_pct)")) \
| $(v "$b" delivered_pct) | $(v "$b" server_runq_wait_pct) |")
	fi
	stop_feed
	titles+=("$name=$title")
	rows+=("| $title | $(v "$s" p50_ms) / $(v "$c" p50_ms) ($(ratio "$(v "$s" p50_ms)" "$(v "$c" p50_ms)")) \
| $(v "$s" p99_ms) / $(v "$c" p99_ms) ($(ratio "$(v "$s" p99_ms)" "$(v "$c" p99_ms)")) \
| $(v "$s" cpu_pct) / $(v "$c" cpu_pct) ($(ratio "$(v "$s" cpu_pct)" "$(v "$c" cpu_pct)")) \
| $(mb "$(v "$s" rss_kb)") / $(mb "$(v "$c" rss_kb)") ($(ratio "$(v "$s" rss_kb)" "$(v "$c" rss_kb)")) \
| $(v "$s" delivered_pct) / $(v "$c" delivered_pct) ($(ratio "$(v "$s" delivered_pct)" "$(v "$c" delivered_pct)")) \
| $(v "$s" client_cpu_pct) / $(v "$c" client_cpu_pct) \
| $(v "$s" server_runq_wait_pct) / $(v "$c" server_runq_wait_pct) |")
	printf '%s %s %s\n' "$s" "$c" "$b" >>"$tmp/raw.jsonl"
	stage_row "$title" "$s" "$c"
	[[ -n $b ]] && stage_row "$title (baseline)" "$b" "$c"
	return 0
}
base_rows=()

# stage_row TITLE STREAMER_JSON CENTRIFUGO_JSON → appends a row of where the time went
stage_rows=()
stage_row() {
	[[ $STAGES == 1 ]] || return 0
	q() { jq -r --arg s "$2" '(.stages[$s].p50_ms // "-" | tostring) + " / " + (.stages[$s].p99_ms // "-" | tostring)' <<<"$1"; }
	stage_rows+=("| $1 | $(q "$2" kafka_ts) | $(q "$2" acked) | $(q "$2" consumed) | $(q "$2" drained) | $(q "$2" written) \
| $(jq -r '"\(.p50_ms) / \(.p99_ms)"' <<<"$2") | $(q "$3" acked) | $(jq -r '"\(.p50_ms) / \(.p99_ms)"' <<<"$3") |")
}

autogroup_nice $$
[[ -n ${KP_HARNESS_DIR:-} && -s $KP_HARNESS_DIR/kafka/pid ]] && autogroup_nice "$(cat "$KP_HARNESS_DIR/kafka/pid")"
load_start=$(cut -d' ' -f1-3 /proc/loadavg)
log "Centrifugo: $("$CF" version); server core $SCPU, client and feeder core $CCPU; ${DUR}s windows"
workload w1 2000 1000 5 "2,000 symbols, 1,000 clients x 5"
workload w2 200 10000 2 "200 symbols, 10,000 clients x 2"
workload w3 200 500 200 "200 symbols, 500 clients x 200"
workload w4 20 10 20 "20 symbols, 10 clients x 20 (idle floor)"
load_end=$(cut -d' ' -f1-3 /proc/loadavg)

{
	echo
	echo "### kline-streamer vs $("$CF" version | cut -d' ' -f1-2) on the same Kafka"
	echo
	echo "Each cell: kline-streamer / Centrifugo (ratio streamer/Centrifugo). Feed: 1s klines of"
	echo "every symbol written at the top of each second to both topics in one loop; latency ="
	echo "client receipt − the record's event_time (the moment the feeder wrote it), over ${DUR}s"
	echo "windows; each server pinned to core $SCPU in turn, kp-wsload and the feeder to core $CCPU,"
	echo "the Kafka broker unpinned; all of them at nice $NICE. CPU: % of one core; run-queue wait:"
	echo "time the server's threads were runnable but not running, summed over threads, % of the window"
	echo "(/proc/PID/task/*/schedstat: how much the shared machine held it back)."
	echo "Load average (1/5/15 min) at start: $load_start; at end: $load_end."
	echo "TCP congestion control: $(tcp_cc) (docs/operations.md: BBR holds back some bursts)."
	echo
	echo "| workload | p50 ms | p99 ms | server CPU % | server RSS MB | delivered % | client CPU % | server run-queue wait % |"
	echo "|---|---|---|---|---|---|---|---|"
	printf '%s\n' "${rows[@]}"
	if [[ -n $BASELINE ]]; then
		echo
		echo "Baseline, measured third in the same workloads: $BASELINE / Centrifugo (ratio)"
		echo
		echo "| workload | p50 ms | p99 ms | server CPU % | delivered % | server run-queue wait % |"
		echo "|---|---|---|---|---|---|"
		printf '%s\n' "${base_rows[@]}"
	fi
	if [[ $STAGES == 1 ]]; then
		echo
		echo "Where the time goes, p50 / p99 ms from the record's event_time, same windows (kline-streamer"
		echo "--stage-stamps; Kafka timestamp: the feeder's produce call; acked: the feeder's copy for the streamer's topic acknowledged by the broker,"
		echo "= Kafka timestamp + librdkafka's produce → ack latency; consumed: the streamer has it from"
		echo "librdkafka (baseline: its feed thread's rd_kafka_consumer_poll; now: the service loop's"
		echo "rd_kafka_consume_batch_queue); drained: its service loop applies it (baseline: taken from the feed queue);"
		echo "written: lws_write of the frame carrying it, per client; received: kp-wsload)."
		echo
		echo "| workload | Kafka timestamp | acked | consumed | drained | written | received | Centrifugo run: acked | Centrifugo: received |"
		echo "|---|---|---|---|---|---|---|---|---|"
		printf '%s\n' "${stage_rows[@]}"
	fi
} | tee -a "${KP_BENCH_OUT:-/dev/null}" >"$tmp/table.md"
cat "$tmp/table.md"
{
	echo "# bench_peers, $(date -u '+%Y-%m-%d %H:%M UTC')"
	cat "$tmp/table.md"
	echo
	echo "Raw kp-wsload summaries (streamer, then Centrifugo, then the baseline if any, per workload):"
	echo
	echo '```'
	cat "$tmp/raw.jsonl"
	echo '```'
} >"$results/peers.md"
cp "$tmp/streamer.samples" "$results/peers-streamer.samples"
cp "$tmp/centrifugo.samples" "$results/peers-centrifugo.samples"
kinds=$(printf '%s\n' "${titles[@]}" | paste -sd'|' -)
python3 "$root/bench/plot_latency.py" --out "$results/peers-latency.svg" --kinds "$kinds" \
	--title "kline-streamer vs Centrifugo: record written → client receipt (load avg at start $load_start)" \
	"kline-streamer=$results/peers-streamer.samples" "Centrifugo=$results/peers-centrifugo.samples"
log "wrote $results/peers.md, peers-*.samples, peers-latency.svg"

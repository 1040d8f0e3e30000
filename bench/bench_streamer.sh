#!/usr/bin/env bash
# bench_streamer.sh — kline-streamer fan-out on loopback (no Kafka, no database needed):
# kp-klinegen --realtime (200 symbols, one 1s kline per symbol per second, spread over the
# second, event_time = the moment it is written) | kline-streamer -i - ; kp-wsload (one
# process, many lws client connections) measures receipt time − event_time.
#
#   1. 10,000 clients x 2 symbols (20,000 msgs/s): p50/p99 latency, streamer CPU and RSS;
#      baseline: 1 client with 2 symbols, same feed.
#   2. memory per idle connection: streamer RSS with 10,000 idle connections − without,
#      per connection; baseline: the streamer's RSS with no client.
#   3. 500 clients x all 200 symbols (100,000 msgs/s): delivered msgs/s and p99;
#      baseline: 1 client x all 200 symbols.
#
#   1b. scenario 1 with --event-loop poll (lws's own poll() loop) against the default libuv/epoll loop.
#
# Environment: KP_BENCH_STREAMER_SECS (window, default 20), KP_BENCH_STREAMER_SCENARIOS
# (subset of "1 1b 2 3"), KP_BENCH_STREAMER_BIN (the streamer to measure),
# KP_BENCH_STREAMER_OLD (an older streamer binary: scenario 1 is run with it too and shown
# as the baseline, for before/after numbers from one run), KP_BENCH_STREAMER_ALT_LOOP
# (the loop of scenario 1b, default poll).
# kp-wsload runs its raw engine (epoll + a minimal RFC 6455 client): the lws 4.1 client
# parses byte by byte and polls every socket per pass, which made the client, not the
# server, the bottleneck at these rates.
# The machine is shared: the load average at start is printed with the table.
#
# Prints a markdown table (appended to $KP_BENCH_OUT if set). About 4 minutes.
set -euo pipefail
root=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
BIN=${KP_BIN:-$root/bin}
TBIN=${KP_TBIN:-$root/build/release/tbin}
ST=${KP_BENCH_STREAMER_BIN:-$BIN/kline-streamer}
# KP_BENCH_STREAMER_OLD=PATH: also run scenario 1 with that (older) binary, as the baseline
OLD=${KP_BENCH_STREAMER_OLD:-}
# KP_BENCH_STREAMER_SCENARIOS: which scenarios to run (default all: "1 1b 2 3")
SCEN=" ${KP_BENCH_STREAMER_SCENARIOS:-1 1b 2 3} "
want() { [[ $SCEN == *" $1 "* ]]; }
# scenario 1b runs the event loop that is not the default
ALT_LOOP=${KP_BENCH_STREAMER_ALT_LOOP:-poll}
GEN=$TBIN/kp-klinegen
LOAD=$TBIN/kp-wsload
[[ -x $ST && -x $GEN && -x $LOAD ]] || { echo "bench_streamer: build first (make programs testbins)" >&2; exit 2; }
ulimit -n 65536 2>/dev/null || ulimit -n "$(ulimit -Hn)"
(( $(ulimit -n) >= 10300 )) || { echo "bench_streamer: need 10300 open files, have $(ulimit -n)" >&2; exit 2; }

NSYM=200
DUR=${KP_BENCH_STREAMER_SECS:-20}
tmp=$(mktemp -d "${TMPDIR:-/tmp}/kp-bench-streamer.XXXXXX")
st_pid= gen_pid=
cleanup() {
	[[ -n $st_pid ]] && kill "$st_pid" 2>/dev/null && wait "$st_pid" 2>/dev/null
	[[ -n $gen_pid ]] && kill "$gen_pid" 2>/dev/null
	rm -rf "$tmp"
}
trap cleanup EXIT
log() { echo "bench_streamer: $*" >&2; }
port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

syms=$("$GEN" --symbols $NSYM --seconds 1 | jq -r .symbol | paste -sd, -)
load_start=$(cut -d' ' -f1-3 /proc/loadavg)

# start_streamer [ARGS] → a streamer fed by a realtime generator; sets PORT, st_pid, gen_pid
start_streamer() {
	PORT=$(port)
	mkfifo "$tmp/feed.$PORT"
	"$ST" -i "$tmp/feed.$PORT" --listen "127.0.0.1:$PORT" --stats-interval 0 --log-level warn \
		--max-clients 20000 "$@" 2>>"$tmp/streamer.log" &
	st_pid=$!
	"$GEN" --realtime --spread --symbols $NSYM >"$tmp/feed.$PORT" &
	gen_pid=$!
	for _ in $(seq 50); do curl -fsS -o /dev/null "http://127.0.0.1:$PORT/healthz" 2>/dev/null && break; sleep 0.1; done
	sleep 1.5 # every symbol has its first kline
}
stop_streamer() {
	kill "$gen_pid" 2>/dev/null || true
	wait "$gen_pid" 2>/dev/null || true
	kill "$st_pid"
	wait "$st_pid" || true
	st_pid= gen_pid=
}
rss_kb() { awk '/^VmRSS:/ {print $2}' "/proc/$1/status"; }
cpu_ticks() { awk '{print $14 + $15}' "/proc/$1/stat"; }

# load ARGS... → runs kp-wsload against PORT while sampling the streamer's CPU over the
# measured window; prints kp-wsload's JSON with "cpu_pct" and "rss_kb" of the streamer added
load() {
	"$LOAD" --port "$PORT" --symbols "$syms" --warmup 3 --duration "$DUR" --engine raw "$@" >"$tmp/load.json" 2>"$tmp/load.err" &
	local lp=$! t0 c0 t1 c1 rss=0
	# the measured window starts when every client is connected (kp-wsload says so on stderr)
	while kill -0 "$lp" 2>/dev/null && ! grep -q connected "$tmp/load.err"; do sleep 0.2; done
	sleep 3
	t0=$(date +%s%N) c0=$(cpu_ticks "$st_pid")
	sleep $((DUR - 2))
	t1=$(date +%s%N) c1=$(cpu_ticks "$st_pid")
	rss=$(rss_kb "$st_pid")
	wait "$lp"
	local hz
	hz=$(getconf CLK_TCK)
	jq -c --argjson cpu "$(awk -v c=$((c1 - c0)) -v hz="$hz" -v ns=$((t1 - t0)) 'BEGIN{printf "%.1f", c / hz / (ns / 1e9) * 100}')" \
		--argjson rss "$rss" '. + {cpu_pct: $cpu, rss_kb: $rss}' "$tmp/load.json"
}

rows=()
row() { rows+=("| $1 | $2 | $3 | $4 | $5 |"); }
ratio() { awk -v a="$1" -v b="$2" 'BEGIN{ if (b > 0) printf "%.2f", a / b; else print "n/a" }'; }

v() { jq -r ".$2" <<<"$1"; }

# ---- 1: 10,000 clients x 2 symbols
if want 1; then
	log "scenario 1: 10,000 clients x 2 symbols, $NSYM symbols at 1/s"
	start_streamer
	base1=$(load -n 1 --per-client 2)
	log "baseline (1 client): $base1"
	r1=$(load -n 10000 --per-client 2 --concurrency 500)
	log "10,000 clients: $r1"
	stop_streamer
	row "10k clients x 2 symbols: connected" "$(v "$r1" connected)" "10000" "1" "-"
	row "10k x 2: delivered msgs/s" "$(v "$r1" msgs_per_sec)" "≈20000" "$(v "$base1" msgs_per_sec)" "$(ratio "$(v "$r1" msgs_per_sec)" "$(v "$base1" msgs_per_sec)")"
	row "10k x 2: latency p50 (ms)" "$(v "$r1" p50_ms)" "-" "$(v "$base1" p50_ms)" "$(ratio "$(v "$r1" p50_ms)" "$(v "$base1" p50_ms)")"
	row "10k x 2: latency p99 (ms)" "$(v "$r1" p99_ms)" "≤ 50" "$(v "$base1" p99_ms)" "$(ratio "$(v "$r1" p99_ms)" "$(v "$base1" p99_ms)")"
	row "10k x 2: latency max (ms)" "$(v "$r1" max_ms)" "-" "$(v "$base1" max_ms)" "-"
	row "10k x 2: streamer CPU (% of one core)" "$(v "$r1" cpu_pct)" "-" "$(v "$base1" cpu_pct)" "$(ratio "$(v "$r1" cpu_pct)" "$(v "$base1" cpu_pct)")"
	row "10k x 2: streamer RSS (MB)" "$(awk -v k="$(v "$r1" rss_kb)" 'BEGIN{printf "%.1f", k/1024}')" "-" "$(awk -v k="$(v "$base1" rss_kb)" 'BEGIN{printf "%.1f", k/1024}')" "-"
	# the same scenario with an older build, for before/after numbers from one run
	if [[ -n $OLD ]]; then
		log "scenario 1 with the old build $OLD"
		new_st=$ST ST=$OLD
		start_streamer
		r1o=$(load -n 10000 --per-client 2 --concurrency 500)
		log "10,000 clients (old build): $r1o"
		stop_streamer
		ST=$new_st
		row "10k x 2: latency p50 (ms), this build vs old build" "$(v "$r1" p50_ms)" "-" "$(v "$r1o" p50_ms) (old)" "$(ratio "$(v "$r1" p50_ms)" "$(v "$r1o" p50_ms)")"
		row "10k x 2: latency p99 (ms), this build vs old build" "$(v "$r1" p99_ms)" "≤ 50" "$(v "$r1o" p99_ms) (old)" "$(ratio "$(v "$r1" p99_ms)" "$(v "$r1o" p99_ms)")"
		row "10k x 2: streamer CPU (%), this build vs old build" "$(v "$r1" cpu_pct)" "-" "$(v "$r1o" cpu_pct) (old)" "$(ratio "$(v "$r1" cpu_pct)" "$(v "$r1o" cpu_pct)")"
	fi
fi

# ---- 1b: the same with the other event loop
if want 1b; then
	log "scenario 1b: 10,000 clients x 2 symbols, --event-loop $ALT_LOOP"
	start_streamer --event-loop "$ALT_LOOP"
	r1b=$(load -n 10000 --per-client 2 --concurrency 500)
	log "10,000 clients ($ALT_LOOP): $r1b"
	stop_streamer
	if want 1; then
		row "10k x 2, --event-loop $ALT_LOOP: latency p50 (ms)" "$(v "$r1b" p50_ms)" "-" "$(v "$r1" p50_ms) (default)" "$(ratio "$(v "$r1b" p50_ms)" "$(v "$r1" p50_ms)")"
		row "10k x 2, --event-loop $ALT_LOOP: latency p99 (ms)" "$(v "$r1b" p99_ms)" "-" "$(v "$r1" p99_ms) (default)" "$(ratio "$(v "$r1b" p99_ms)" "$(v "$r1" p99_ms)")"
		row "10k x 2, --event-loop $ALT_LOOP: streamer CPU (%)" "$(v "$r1b" cpu_pct)" "-" "$(v "$r1" cpu_pct) (default)" "$(ratio "$(v "$r1b" cpu_pct)" "$(v "$r1" cpu_pct)")"
	fi
fi

# ---- 2: memory per idle connection
if want 2; then
	log "scenario 2: 10,000 idle connections"
	start_streamer
	rss0=$(rss_kb "$st_pid")
	"$LOAD" --engine raw --port "$PORT" --symbols "$syms" -n 10000 --idle --concurrency 500 --warmup 1 --duration 8 >"$tmp/idle.json" 2>"$tmp/idle.err" &
	lp=$!
	while kill -0 "$lp" 2>/dev/null && ! grep -q connected "$tmp/idle.err"; do sleep 0.2; done
	sleep 3
	rss1=$(rss_kb "$st_pid")
	conns=$(curl -fsS "http://127.0.0.1:$PORT/metrics" | awk '$1 == "kline_streamer_connections" {print $2}')
	wait "$lp"
	stop_streamer
	per=$(awk -v a="$rss0" -v b="$rss1" -v n="$conns" 'BEGIN{ if (n > 0) printf "%.2f", (b - a) / n; else print "n/a" }')
	row "memory per idle connection (KB)" "$per" "≤ 10" "$rss0 KB RSS at 0 clients" "$(ratio "$per" 10)"
	row "idle connections held" "$conns" "10000" "-" "-"
fi

# ---- 3: 500 clients x all 200 symbols
if want 3; then
	log "scenario 3: 500 clients x all $NSYM symbols"
	start_streamer
	base3=$(load -n 1 --all)
	log "baseline (1 client): $base3"
	r3=$(load -n 500 --all --concurrency 250)
	log "500 clients: $r3"
	# delivered = offered only if the streamer neither conflated nor dropped an update
	lost3=$(curl -fsS "http://127.0.0.1:$PORT/metrics" |
		awk '/^kline_streamer_(conflated|dropped|slow_clients_closed)_total /{n += $2} END{print n + 0}')
	stop_streamer
	row "500 x 200 symbols: delivered msgs/s" "$(v "$r3" msgs_per_sec)" "≥ 100000" "$(v "$base3" msgs_per_sec)" "$(ratio "$(v "$r3" msgs_per_sec)" "$(v "$base3" msgs_per_sec)")"
	row "500 x 200: latency p50 (ms)" "$(v "$r3" p50_ms)" "-" "$(v "$base3" p50_ms)" "$(ratio "$(v "$r3" p50_ms)" "$(v "$base3" p50_ms)")"
	row "500 x 200: latency p99 (ms)" "$(v "$r3" p99_ms)" "-" "$(v "$base3" p99_ms)" "$(ratio "$(v "$r3" p99_ms)" "$(v "$base3" p99_ms)")"
	row "500 x 200: updates conflated, dropped or cut off" "$lost3" "0" "-" "-"
	row "500 x 200: streamer CPU (% of one core)" "$(v "$r3" cpu_pct)" "-" "$(v "$base3" cpu_pct)" "$(ratio "$(v "$r3" cpu_pct)" "$(v "$base3" cpu_pct)")"
fi

{
	echo
	echo "### kline-streamer (loopback, $NSYM symbols at 1 kline/s each, ${DUR}s windows; load average at start: $load_start)"
	echo
	echo "| metric | value | target | baseline (same run) | ratio |"
	echo "|---|---|---|---|---|"
	printf '%s\n' "${rows[@]}"
} | tee -a "${KP_BENCH_OUT:-/dev/null}"

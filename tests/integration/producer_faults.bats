#!/usr/bin/env bats
# kline-producer against every fault knob of kline-sim, a Kafka outage, connection
# renewal and many streams: after each run every second of every symbol is in the
# topic, once, in order per symbol, and nothing is invented.

bats_require_minimum_version 1.5.0
load helpers
load producer_helpers

SYMS=BTCUSDT,ETHUSDT,BNBUSDT
DUR=100

# p_fault_run CONTROL [PRODUCER ARGS...] — 3 symbols, $DUR sim seconds at speed 10
# (extra sim flags in SIM_ARGS); CONTROL (a /control/... path, or "") is fired once
# the producer has published 30 klines. Checks the topic against the truth.
p_fault_run() {
	local ctl=$1
	shift
	# shellcheck disable=SC2086
	kp_sim_start --symbols "$SYMS" --speed 10 --duration "$DUR" ${SIM_ARGS:-}
	start=$(p_sim_start_ms)
	topic=$(kp_topic_new 3)
	p_producer prod -s "$SYMS" -t "$topic" --since "$start" --watchdog-secs 2 "$@"
	kp_wait_for 60 p_count_ge "$topic" 30
	[[ -z $ctl ]] || curl -fsS "$SIM_URL/control/$ctl" >/dev/null
	kp_wait_for 60 p_sim_done "$DUR"
	kp_wait_for 90 p_count_ge "$topic" $((3 * DUR))
	rc=0
	kp_stop "$PROD_PID" || rc=$?
	[ "$rc" -eq 0 ] || { echo "producer exit $rc"; false; }
	p_check_topic "$topic"
	p_order_ok "$topic"
}

@test "producer fault: the server closes the connection → reconnect, gap backfilled" {
	p_fault_run close
	[ "$(grep -c 'connecting to' "$KP_OUT/prod.log")" -ge 2 ]
	[ "$(p_sim_stat connections_closed_by_sim)" -ge 1 ]
}

@test "producer fault: abrupt TCP close (no close frame) → reconnect, gap backfilled" {
	p_fault_run 'close?abrupt=1'
	[ "$(grep -c 'connecting to' "$KP_OUT/prod.log")" -ge 2 ]
}

@test "producer fault: serverShutdown → make-before-break, nothing twice" {
	p_fault_run shutdown
	[ "$(p_sim_stat shutdowns_sent)" -ge 1 ]
	grep -q 'opening its successor (serverShutdown)' "$KP_OUT/prod.log"
	grep -q 'replaced by a newer connection' "$KP_OUT/prod.log"
}

@test "producer fault: a stalled stream trips the watchdog; the stalled seconds come from REST" {
	p_fault_run 'stall?secs=4'
	grep -q 'watchdog: silent' "$KP_OUT/prod.log"
	kcat -C -b "$KAFKA_BROKERS" -t "$topic" -e -q -f '%s\n' | grep -q '"source":"rest"'
}

@test "producer fault: refused connections back off and get through" {
	kp_sim_start --symbols "$SYMS" --speed 10 --duration "$DUR"
	start=$(p_sim_start_ms)
	topic=$(kp_topic_new 3)
	p_producer prod -s "$SYMS" -t "$topic" --since "$start"
	kp_wait_for 60 p_count_ge "$topic" 30
	curl -fsS "$SIM_URL/control/refuse?secs=3" >/dev/null
	curl -fsS "$SIM_URL/control/close" >/dev/null
	kp_wait_for 60 p_sim_done "$DUR"
	kp_wait_for 90 p_count_ge "$topic" $((3 * DUR))
	kp_stop "$PROD_PID"
	p_check_topic "$topic"
	[ "$(p_sim_stat connections_refused)" -ge 1 ]
	# backoff: a handful of attempts in 3 s, not hundreds
	[ "$(p_sim_stat connections_refused)" -le 10 ]
}

@test "producer fault: malformed messages go to <topic>.rejected with a reason; the stream goes on" {
	p_fault_run 'malformed?n=3'
	[ "$(p_sim_stat malformed_sent)" -eq 3 ]
	kp_wait_for 30 p_count_ge "$topic.rejected" 3
	[ "$(kp_topic_count "$topic.rejected")" -eq 3 ]
	kcat -C -b "$KAFKA_BROKERS" -t "$topic.rejected" -e -q -f '%k|%h\n' >"$BATS_TEST_TMPDIR/dlq"
	cat "$BATS_TEST_TMPDIR/dlq"
	[ "$(grep -c '^ws:conn[0-9]*|reason=' "$BATS_TEST_TMPDIR/dlq")" -eq 3 ]
	grep -q 'rejected message' "$KP_OUT/prod.log"
}

@test "producer fault: oversized frames are dead-lettered, not parsed" {
	p_fault_run 'oversized?n=2' --max-frame 4096
	[ "$(p_sim_stat oversized_sent)" -eq 2 ]
	kp_wait_for 30 p_count_ge "$topic.rejected" 2
	kcat -C -b "$KAFKA_BROKERS" -t "$topic.rejected" -e -q -f '%h\n' | grep -q 'exceeds --max-frame'
}

@test "producer fault: duplicated messages are published once" {
	p_fault_run 'duplicate?n=6'
	[ "$(p_sim_stat duplicates_sent)" -ge 6 ]
}

@test "producer fault: reordered messages end up complete and in order per symbol" {
	p_fault_run 'reorder?n=6'
	[ "$(p_sim_stat reordered)" -ge 1 ]
}

@test "producer fault: REST 429 with Retry-After during a backfill is waited out" {
	SIM_ARGS="--rest429 3"
	p_fault_run close
	[ "$(p_sim_stat rest_429)" -ge 1 ]
	grep -q 'Retry-After' "$KP_OUT/prod.log"
}

@test "producer fault: Kafka broker stopped for 10 s mid-run → nothing lost" {
	kp_sim_start --symbols "$SYMS" --speed 5 --duration 120
	start=$(p_sim_start_ms)
	topic=$(kp_topic_new 3)
	p_producer prod -s "$SYMS" -t "$topic" --since "$start"
	kp_wait_for 60 p_count_ge "$topic" 30
	kp_kafka_stop
	sleep 10 # the outage itself is the test condition, not a wait for something
	kp_kafka_start
	kp_wait_for 60 p_sim_done 120
	kp_wait_for 120 p_count_ge "$topic" 360
	rc=0
	kp_stop "$PROD_PID" || rc=$?
	[ "$rc" -eq 0 ]
	p_check_topic "$topic"
	p_order_ok "$topic"
}

@test "producer: --max-conn-age renews connections make-before-break, nothing missed or doubled" {
	p_fault_run '' --max-conn-age 2s
	[ "$(grep -c 'opening its successor (--max-conn-age)' "$KP_OUT/prod.log")" -ge 2 ]
}

@test "producer: 400 symbols over 2 connections (URL + SUBSCRIBE), with a close in the middle" {
	kp_sim_start --num-symbols 400 --speed 4 --duration 30
	start=$(p_sim_start_ms)
	topic=$(kp_topic_new 6)
	syms=$(curl -fsS "$SIM_URL/api/v3/exchangeInfo" | jq -r '[.symbols[] | select(.status == "TRADING") | .symbol] | join(",")')
	n=$(tr ',' '\n' <<<"$syms" | wc -l)
	p_producer prod --all-symbols -t "$topic" --since "$start" --streams-per-conn 250 --metrics-port "$(kp_free_port)"
	kp_wait_for 60 p_count_ge "$topic" $((n * 5))
	curl -fsS "$SIM_URL/control/close" >/dev/null
	kp_wait_for 60 p_sim_done 30
	kp_wait_for 120 p_count_ge "$topic" $((n * 30))
	kp_stop "$PROD_PID"
	p_check_topic "$topic"
	grep -q "exchangeInfo: $n trading symbols" "$KP_OUT/prod.log"
	grep -q 'in SUBSCRIBE' "$KP_OUT/prod.log"
	[ "$(p_sim_stat ws_requests)" -ge 2 ]
}

@test "producer: exits 1 when nothing arrives for --dead-after" {
	kp_sim_start --symbols BTCUSDT --speed 1 --stall-secs 60
	run --separate-stderr timeout 60 "$KP_BIN/kline-producer" -s BTCUSDT -o - --ws-url "$SIM_WS_URL" \
		--rest-url "$SIM_URL" --dead-after 4 --watchdog-secs 1
	[ "$status" -eq 1 ]
	[[ $stderr == *dead-after* ]]
	[[ $stderr == *watchdog* ]]
}

@test "producer: /metrics serves the counters" {
	kp_sim_start --symbols BTCUSDT --speed 10
	topic=$(kp_topic_new 1)
	port=$(kp_free_port)
	p_producer prod -s BTCUSDT -t "$topic" --metrics-port "$port"
	kp_wait_for 60 p_count_ge "$topic" 5
	kp_wait_for 30 bash -c "curl -fsS http://127.0.0.1:$port/metrics | grep -q '^kline_producer_delivered_total [1-9]'"
	curl -fsS "http://127.0.0.1:$port/metrics" >"$BATS_TEST_TMPDIR/m"
	for m in received_total published_total rejected_total reconnects_total backfilled_total delivery_errors_total \
		rest_requests_total rest_429_total last_message_age_seconds latency_p99_us; do
		grep -q "^kline_producer_$m" "$BATS_TEST_TMPDIR/m" || { echo "no $m"; false; }
	done
	kp_stop "$PROD_PID"
}

@test "producer: REST slows down before X-MBX-USED-WEIGHT-1M reaches --rest-weight-limit" {
	kp_sim_start --symbols BTCUSDT --speed 1000 --duration 30000 --rest-weight-limit 40
	kp_wait_for 60 p_sim_done 30000
	start=$(p_sim_start_ms)
	# 30 pages of 1000 at weight 2: more than the exchange's 40 per minute
	p_producer prod -s BTCUSDT -o - --backfill "$start..$((start + 29999000))" --rest-weight-limit 20 >/dev/null
	kp_wait_for 30 grep -q 'pausing until the next minute' "$KP_OUT/prod.log"
	[ "$(p_sim_stat rest_429)" -eq 0 ]
	[ "$(p_sim_stat rest_requests)" -le 12 ]
	rc=0
	kp_stop "$PROD_PID" || rc=$?
	[ "$rc" -eq 0 ]
}

@test "producer: a symbol silent while others flow is fetched from REST; seconds the exchange lacks are not invented" {
	# history with a hole: ETHUSDT has no klines for 150 of its 300 seconds
	kp_sim_start --symbols BTCUSDT,ETHUSDT --speed 1000 --duration 300
	kp_wait_for 30 p_sim_done 300
	t0=$(p_sim_start_ms)
	curl -fsS "$SIM_URL/truth" | jq -c "select(.symbol == \"BTCUSDT\" or .open_time < $((t0 + 100000)) or .open_time >= $((t0 + 250000)))" \
		>"$BATS_TEST_TMPDIR/hist.ndjson"
	kp_stop "$SIM_PID" || true
	[ "$(wc -l <"$BATS_TEST_TMPDIR/hist.ndjson")" -eq 450 ]
	kp_sim_start --symbols BTCUSDT,ETHUSDT --replay "$BATS_TEST_TMPDIR/hist.ndjson" --speed 20
	start=$(p_sim_start_ms)
	out=$BATS_TEST_TMPDIR/out.ndjson
	p_producer prod -s BTCUSDT,ETHUSDT -o - --since "$start" >"$out"
	kp_wait_for 60 p_sim_done 300
	kp_wait_for 60 bash -c "[ \$(wc -l <'$out') -ge 450 ]"
	kp_stop "$PROD_PID"
	p_check_values "$out"
	grep -q 'ETHUSDT: no kline since' "$KP_OUT/prod.log"
}

@test "producer: SIGTERM with Kafka down and klines undelivered exits 1 after --flush-timeout-ms" {
	kp_sim_start --symbols "$SYMS" --speed 5
	topic=$(kp_topic_new 3)
	port=$(kp_free_port)
	p_producer prod -s "$SYMS" -t "$topic" --metrics-port "$port" --flush-timeout-ms 2000
	kp_wait_for 60 p_count_ge "$topic" 10
	kp_kafka_stop
	m() { curl -fsS "http://127.0.0.1:$port/metrics" | awk -v k="$1" '$1 == k { print $2 }'; }
	undelivered() { (($(m kline_producer_published_total) > $(m kline_producer_delivered_total) + 5)); }
	kp_wait_for 30 undelivered
	rc=0
	kp_stop "$PROD_PID" || rc=$?
	kp_kafka_start
	[ "$rc" -eq 1 ]
	grep -q 'still undelivered' "$KP_OUT/prod.log"
}

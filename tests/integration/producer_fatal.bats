#!/usr/bin/env bats
# kline-producer survives a fatal error of its idempotent Kafka producer (issue 18): it
# takes back what the failed client had not delivered, builds a new client, and goes on.
# The fault is forced through the test hook KP_TEST_KAFKA_FATAL (docs/producer.md,
# "Fatal Kafka errors": rd_kafka_test_fatal_error with OUT_OF_ORDER_SEQUENCE_NUMBER, as
# librdkafka 2.0.2 raises after a leader failover), with the whole pipeline running as
# separate processes (tests/faults/campaign.py, no other fault), then kline_1s and
# kline_1m are compared with the exchange's truth.

# The second test takes the error from a broker: librdkafka's mock cluster
# (kp-mock-cluster --error 0:45) answers the first ProduceRequest with
# OUT_OF_ORDER_SEQUENCE_NUMBER, which librdkafka 2.0.2 turns into a fatal error with that
# request's messages failed (not only purged): they must reach the topic from the new client.

load helpers
load faults_helpers
load producer_helpers

@test "producer fatal: 4 forced fatal Kafka errors — client rebuilt each time, kline_1s and kline_1m equal the truth" {
	[[ $KP_KAFKA_MODE == real ]] || skip "needs the real Kafka broker (KP_KAFKA_MODE=$KP_KAFKA_MODE)"
	# 20 symbols x 900 sim s at speed 15: 18,000 klines, the first thousands from REST
	# (--since), so fatal errors hit both the backfill workers and the live stream
	faults_run producer_fatal 1 20 15 1 --faults none --producer-env KP_TEST_KAFKA_FATAL=1500,5000,9000,14000
	faults_tables_ok "$RESULT"
	[ "$FAULTS_RC" -eq 0 ]
	c() { jq -r ".counters[\"$1\"]" "$RESULT"; }
	echo "rebuilds $(c producer.kline_producer_kafka_rebuilds_total), taken back $(c producer.kline_producer_kafka_taken_back_total)"
	echo "# kafka: $(jq -r '.kafka_messages' "$RESULT") messages, $(jq -r '.kafka_repeated' "$RESULT") doubles; taken back $(c producer.kline_producer_kafka_taken_back_total)" >&3
	[ "$(c producer.kline_producer_kafka_rebuilds_total)" = 4 ]
	# the hook fires right after a produce: that kline was still queued, so it came back
	[ "$(c producer.kline_producer_kafka_taken_back_total)" -ge 4 ]
	# the producer kept running: one start, no exit of its own, exit 0 at SIGTERM
	[ "$(jq -r '.resources.producer.starts' "$RESULT")" = 1 ]
	[ "$(jq -r '.crashes | length' "$RESULT")" = 0 ]
	[ "$(jq -r '.exit_codes.producer' "$RESULT")" = 0 ]
	log=$KP_OUT/producer_fatal/producer.log
	[ "$(grep -c 'Kafka client rebuilt (#[0-9]*)' "$log")" = 4 ]
	grep -q 'kafka fatal error (OUT_OF_ORDER_SEQUENCE_NUMBER' "$log"
}

@test "producer fatal: a malformed KP_TEST_KAFKA_FATAL is a start-up error, not ignored" {
	KP_TEST_KAFKA_FATAL=5,3 run "$KP_BIN/kline-producer" -s BTCUSDT -b "$KAFKA_BROKERS" -t "$(kp_topic_new 1)"
	[ "$status" -ne 0 ]
	[[ $output == *"KP_TEST_KAFKA_FATAL=5,3: want increasing counts"* ]]
}

# p_metric PORT NAME → the value of one producer metric.
p_metric() { curl -fsS "http://127.0.0.1:$1/metrics" | awk -v n="$2" '$1 == n { print $2 }'; }

@test "producer fatal: OUT_OF_ORDER_SEQUENCE_NUMBER from the broker — the failed request's klines come back on the new client" {
	local d=$BATS_TEST_TMPDIR t=kp-fatal-mock
	kp_bg kp-mock-cluster "$KP_TBIN/kp-mock-cluster" --brokers 1 --out "$d/boot" \
		--topic "$t:2" --topic "$t.rejected:2" --topic "$t.resume:1" --error 0:45:1
	kp_wait_for 20 test -s "$d/boot"
	KAFKA_BROKERS=$(cat "$d/boot")
	kp_sim_start --num-symbols 5 --speed 4 --duration 60
	start=$(p_sim_start_ms)
	syms=$(curl -fsS "$SIM_URL/api/v3/exchangeInfo" | jq -r '[.symbols[].symbol] | join(",")')
	mport=$(kp_free_port)
	p_producer fatal-mock -s "$syms" -b "$KAFKA_BROKERS" -t "$t" --since "$start" --metrics-port "$mport"
	kp_wait_for 60 grep -q 'Kafka client rebuilt (#1)' "$KP_OUT/fatal-mock.log"
	# a fatal error from the broker, not the test hook
	grep 'kafka fatal error (OUT_OF_ORDER_SEQUENCE_NUMBER' "$KP_OUT/fatal-mock.log" | grep -vq test_fatal_error
	kp_wait_for 60 p_sim_done 60
	kp_wait_for 60 p_count_ge "$t" 300
	[ "$(p_metric "$mport" kline_producer_kafka_rebuilds_total)" = 1 ]
	taken=$(p_metric "$mport" kline_producer_kafka_taken_back_total)
	[ "$taken" -ge 1 ]
	kp_stop "$PROD_PID"
	# the failed request's messages may have been written (possibly persisted): doubles
	# are allowed in Kafka, never a loss; the rest of the check is on distinct messages
	kcat -C -b "$KAFKA_BROKERS" -t "$t" -e -q -f '%s\n' >"$d/all"
	sort -u "$d/all" >"$d/distinct"
	echo "# mock broker: $taken taken back, $(($(wc -l <"$d/all") - $(wc -l <"$d/distinct"))) doubles in Kafka" >&3
	p_check_values "$d/distinct"
}

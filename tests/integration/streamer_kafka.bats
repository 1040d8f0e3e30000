#!/usr/bin/env bats
# kline-streamer reading Kafka: every partition from --catchup-secs back (or from the end
# with --catchup-secs 0), a topic created after the streamer started, partitions added
# later, lag metric; catch-up of 2,000 symbols after a start and after kill -9.

bats_require_minimum_version 1.5.0
load helpers
load streamer_helpers

setup() {
	st_node_ready
	GEN=$KP_TBIN/kp-klinegen
}

# produce TOPIC FILE → each line as a message keyed by its symbol
produce() {
	jq -r '.symbol + "\t" + (. | tojson)' "$2" | kcat -P -b "$KAFKA_BROKERS" -t "$1" -K '\t' -z none
}

@test "streamer kafka: --catchup-secs 0: live records from every partition reach subscribers; older ones are not replayed" {
	topic=$(kp_topic_new 3)
	old=$BATS_TEST_TMPDIR/old.ndjson new=$BATS_TEST_TMPDIR/new.ndjson
	"$GEN" --symbols OLDCOIN --seconds 5 >"$old"
	produce "$topic" "$old"
	st_start -t "$topic" -b "$KAFKA_BROKERS" --catchup-secs 0
	kp_wait_for 20 grep -q "reading $topic partitions 0..2 from the end" "$KP_OUT/kline-streamer.log"
	out=$BATS_TEST_TMPDIR/ws.out
	st_ws --send '{"op":"subscribe","symbols":["*"]}' --duration 25 >"$out" &
	cpid=$!
	kp_wait_for 10 bash -c "curl -fsS '$ST_URL/metrics' | grep -q '^kline_streamer_connections 1'"
	"$GEN" --symbols 6 --seconds 20 >"$new"
	produce "$topic" "$new"
	kp_wait_for 20 bash -c "curl -fsS '$ST_URL/metrics' | grep -q '^kline_streamer_klines_total 120'"
	# conflation may merge a burst, but the newest price of each symbol always arrives
	for s in $(jq -r .symbol "$new" | sort -u); do
		kp_wait_for 10 bash -c "grep '^{\"type\":\"kline\",\"symbol\":\"$s\"' '$out' | tail -1 | jq -e --arg p '$(st_last_close "$new" "$s")' '.kline.close == \$p'"
	done
	kill "$cpid" 2>/dev/null || true
	wait "$cpid" || true
	# all 6 symbols (spread over the 3 partitions by key), none of the old ones
	[ "$(st_klines "$out" | jq -r .symbol | sort -u | wc -l)" -eq 6 ]
	! grep -q OLDCOIN "$out"
	# ingest_time is the Kafka message timestamp (producer time), close to now
	now=$(date +%s%3N)
	st_klines "$out" | tail -1 | jq -e --argjson now "$now" '.ingest_time > $now - 60000 and .ingest_time <= $now'
	kp_wait_for 10 bash -c "curl -fsS '$ST_URL/metrics' | grep -q '^kline_streamer_kafka_lag 0'"
	rc=0
	kp_stop "$ST_PID" || rc=$?
	[ "$rc" -eq 0 ]
}

@test "streamer kafka: a topic that does not exist yet, and partitions added later" {
	topic=kp-st-late-$$-$RANDOM
	st_start -t "$topic" -b "$KAFKA_BROKERS" -X topic.metadata.refresh.interval.ms=1000
	kp_wait_for 20 grep -q "topic $topic does not exist" "$KP_OUT/kline-streamer.log"
	"$KP_TBIN/kp-topic" -b "$KAFKA_BROKERS" create "$topic" 1
	kp_wait_for 30 grep -q "reading $topic partitions 0..0" "$KP_OUT/kline-streamer.log"
	f=$BATS_TEST_TMPDIR/a.ndjson
	"$GEN" --symbols 2 --seconds 3 >"$f"
	produce "$topic" "$f"
	kp_wait_for 20 bash -c "curl -fsS '$ST_URL/metrics' | grep -q '^kline_streamer_klines_total 6'"
	# grow to 4 partitions: the new ones are read from their beginning
	"$KP_TBIN/kp-addparts" "$KAFKA_BROKERS" "$topic" 4
	kp_wait_for 40 grep -q "reading $topic partitions 1..3 from the beginning" "$KP_OUT/kline-streamer.log"
	"$GEN" --symbols 8 --seconds 3 --start 4102444800000 >"$f"
	produce "$topic" "$f"
	kp_wait_for 20 bash -c "curl -fsS '$ST_URL/metrics' | grep -q '^kline_streamer_klines_total 30'"
}

@test "streamer kafka: 2,000 symbols produced before the start are all in the first snapshot, at their newest open_time" {
	topic=$(kp_topic_new 6)
	f=$BATS_TEST_TMPDIR/k.ndjson
	"$GEN" --symbols 2000 --seconds 3 >"$f"
	produce "$topic" "$f"
	st_start -t "$topic" -b "$KAFKA_BROKERS"
	kp_wait_for 20 grep -q "reading $topic partitions 0..5" "$KP_OUT/kline-streamer.log"
	st_snapshot_check "$f" 30
}

@test "streamer kafka: after kill -9 (while 2,000 symbols flow, and after they stopped) every symbol is back at its newest open_time" {
	topic=$(kp_topic_new 6)
	f=$BATS_TEST_TMPDIR/live.ndjson
	st_start -t "$topic" -b "$KAFKA_BROKERS"
	# one kline per symbol per second for 8 s, through the real producer
	kp_bg st-gen bash -c "'$GEN' --realtime --spread --symbols 2000 --duration 8 | tee '$f' |
		'$KP_BIN/kline-producer' --replay - -b '$KAFKA_BROKERS' -t '$topic' --dlq-topic ''"
	gen=$BG_PID
	kp_wait_for 20 bash -c "(( \$(curl -fsS '$ST_URL/metrics' | awk '\$1 == \"kline_streamer_klines_total\" {print \$2}') > 2000 ))"
	kill -9 "$ST_PID"
	# down for a second of data, back while it still flows
	kp_wait_for 10 bash -c "(( \$(wc -l <'$f') > 6000 ))"
	st_start -t "$topic" -b "$KAFKA_BROKERS"
	kp_wait_for 30 bash -c "! kill -0 $gen 2>/dev/null"
	st_snapshot_check "$f" 30
	# killed again after the data stopped: nothing new will come, the catch-up is all it has
	kill -9 "$ST_PID"
	st_start -t "$topic" -b "$KAFKA_BROKERS"
	st_snapshot_check "$f" 30
}

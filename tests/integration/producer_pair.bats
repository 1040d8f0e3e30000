#!/usr/bin/env bats
# A hot-standby producer pair (issue 18, README "Running on several machines"): two
# kline-producers on the same symbols from the same exchange into the same topic, one
# inserter, the aggregator and the streamer, all separate processes
# (tests/faults/campaign.py). Each producer is killed with SIGKILL in turn, several
# times, and restarted (it resumes from the topic). Kafka holds doubles (both publish
# every kline); the inserter's upsert makes them harmless: kline_1s and kline_1m must
# equal the exchange's truth. A WebSocket client follows every symbol the whole run:
# the streamer drops a copy equal to the bar it showed (kline_streamer_klines_repeated_total),
# so no bar is pushed to a page twice.

load helpers
load faults_helpers

setup_file() {
	[[ $KP_KAFKA_MODE == real ]] || skip "needs the real Kafka broker (KP_KAFKA_MODE=$KP_KAFKA_MODE)"
}

@test "producer pair: kill -9 of either producer, 3 times each — kline_1s and kline_1m equal the truth, no bar pushed twice" {
	# 20 symbols x 1,500 sim s at speed 20 (75 s), 6 kills alternating
	faults_run producer_pair 1.25 20 20 3 --producers 2 --faults kill9-producer,kill9-producer2 --watch-page
	faults_tables_ok "$RESULT"
	[ "$FAULTS_RC" -eq 0 ]
	[ "$(jq -r '.injected["kill9-producer"]' "$RESULT")" = 3 ]
	[ "$(jq -r '.injected["kill9-producer2"]' "$RESULT")" = 3 ]
	[ "$(jq -r '.skipped | length' "$RESULT")" = 0 ]
	c() { jq -r ".counters[\"$1\"]" "$RESULT"; }
	msgs=$(jq -r .kafka_messages "$RESULT")
	doubles=$(jq -r .kafka_repeated "$RESULT")
	echo "# kafka: $msgs messages, $(jq -r .kafka_distinct "$RESULT") distinct klines, $doubles doubles; streamer: $(c streamer.kline_streamer_klines_repeated_total) copies dropped; page: $(c page.updates) live updates, $(c page.repeats) repeated" >&3
	# both published: most klines are in Kafka twice
	[ "$doubles" -gt $(($(jq -r .kafka_distinct "$RESULT") / 2)) ]
	# the streamer saw the copies and dropped them; the page saw every bar once
	[ "$(c streamer.kline_streamer_klines_repeated_total)" -gt 0 ]
	[ "$(c page.error)" = null ]
	[ "$(c page.updates)" -gt 1000 ]
	[ "$(c page.repeats)" = 0 ]
	# both ended running and exited 0 at SIGTERM
	[ "$(jq -r '.exit_codes.producer' "$RESULT")" = 0 ]
	[ "$(jq -r '.exit_codes.producer2' "$RESULT")" = 0 ]
}

#!/usr/bin/env bats
# Every program with its PostgreSQL black-holed (tests/harness/blackhole: connections are
# accepted, nothing is ever answered): it keeps answering signals and doing its other
# work (Kafka, WebSocket clients), gives up on each call at its client-side deadline, and
# recovers with nothing lost once the database answers again.

bats_require_minimum_version 1.5.0
load helpers
load inserter_lib
load blackhole_lib

INS=$KP_BIN/kline-inserter
# max.poll.interval.ms just above the session timeout: a main loop blocked for longer
# than 7 s (in a connect or a query) would leave the group and have its partitions
# revoked, which the log shows.
GROUP_OPTS=(-X session.timeout.ms=6000 -X heartbeat.interval.ms=1000 -X max.poll.interval.ms=7000)
PG_OPTS=(--pg-timeout-ms 2000 --pg-connect-timeout-ms 2000)

ins_count_gt() { (($(ins_count "$1") > $2)); }

# each test logs to its own file (kp_bg appends), so a grep sees only this test's run
setup() { L=bh-$BATS_TEST_NUMBER-$$; }

@test "blackhole: inserter, database black-holed for 15 s while Kafka data flows: keeps polling, every row once after" {
	db=$(kp_db_new)
	t=$(kp_topic_new 2)
	bh_start
	f=$BATS_TEST_TMPDIR/feed
	"$INS_GEN" --keyed --symbols 20 --seconds 200 >"$f" # 4000
	kp_bg "$L" "$INS" -t "$t" -d "$(bh_url "$db")" -g "g-$t" --batch-rows 200 --flush-ms 100 \
		"${PG_OPTS[@]}" "${GROUP_OPTS[@]}"
	pid=$BG_PID
	kp_wait_for 30 grep -q "assigned" "$KP_OUT/$L.log"
	ins_produce_paced "$t" "$f" 200 0.7 # ~14 s of feed
	kp_wait_for 30 ins_count_gt "$db" 0
	bh_hole
	sleep 15
	kill -0 "$pid"
	before=$(ins_count "$db")
	bh_forward
	wait "$PRODUCER_PID"
	kp_wait_for 60 ins_count_is "$db" 4000
	echo "# rows before the hole ended: $before of 4000" >&3
	((before < 4000)) # the hole did hold up writes
	kill -0 "$pid"    # the same process
	kp_stop "$pid"
	diff <(ins_dump_rows "$db") <(ins_expect --symbols 20 --seconds 200)
	[ "$(kp_psql "$db" 'select sum(row_count) from checkpoint')" = 4000 ]
	ins_check_checkpoints "$db"
	grep -q 'no answer from PostgreSQL within 2000 ms' "$KP_OUT/$L.log"
	# it kept polling Kafka through the hole: never out of the group (until the stop)
	[ "$(sed '/stopping:/q' "$KP_OUT/$L.log" | grep -cE 'revoking|partitions lost|maximum poll interval')" = 0 ]
	[ "$(grep -c 'PostgreSQL accepts batches again' "$KP_OUT/$L.log")" = 1 ]
}

@test "blackhole: inserter, SIGTERM while the database is black-holed: exits within 5 s, nothing lost" {
	db=$(kp_db_new)
	t=$(kp_topic_new 2)
	bh_start
	ins_produce "$t" --symbols 10 --seconds 100 # 1000
	kp_bg "$L" "$INS" -t "$t" -d "$(bh_url "$db")" -g "g-$t" --batch-rows 100 --flush-ms 100 \
		--pg-timeout-ms 30000 --pg-connect-timeout-ms 30000 "${GROUP_OPTS[@]}"
	pid=$BG_PID
	kp_wait_for 30 ins_count_gt "$db" 0
	bh_hole
	ins_produce "$t" --symbols 10 --seconds 100 --start 1789500096000 # 1000 more
	sleep 3 # a transaction or a reconnect is now waiting on the hole (30 s deadlines)
	bh_stop_within 5 "$pid"
	bh_forward
	# a new inserter, straight to the database, finds every uncommitted record in Kafka
	kp_bg "$L" "$INS" -t "$t" -d "$db" -g "g-$t" --batch-rows 100 --flush-ms 100 "${GROUP_OPTS[@]}"
	pid=$BG_PID
	kp_wait_for 60 ins_count_is "$db" 2000
	kp_stop "$pid"
	diff <(ins_dump_rows "$db") <( (ins_expect --symbols 10 --seconds 100; \
		ins_expect --symbols 10 --seconds 100 --start 1789500096000) | LC_ALL=C sort)
	ins_check_checkpoints "$db"
}

AGG_T0=1789499940000 # a minute boundary

agg_1m_full() { ins_sql_is "$1" "select count(*) from kline_1m where row_count = 60" "$2"; }

@test "blackhole: aggregator --every, database black-holed: SIGTERM answered promptly, catches up after the hole" {
	db=$(kp_db_new)
	"$INS" -i /dev/null -d "$db" 2>/dev/null # the schema
	bh_start
	kp_bg "$L" "$KP_BIN/kline-aggregator" --every 1 -d "$(bh_url "$db")" --stats-interval 0 \
		--pg-timeout-ms 2000 --pg-connect-timeout-ms 2000
	pid=$BG_PID
	"$INS_GEN" --symbols 5 --seconds 120 --start $AGG_T0 | "$INS" -i - -d "$db" 2>/dev/null
	kp_wait_for 30 agg_1m_full "$db" 10
	bh_hole
	# written straight to the database while the aggregator cannot reach it
	"$INS_GEN" --symbols 5 --seconds 180 --start $((AGG_T0 + 120000)) | "$INS" -i - -d "$db" 2>/dev/null
	sleep 8 # several rounds: a run that times out, reconnects that time out
	kill -0 "$pid"
	agg_1m_full "$db" 10 # nothing could be rolled up
	grep -qE 'no answer from PostgreSQL within 2000 ms|connect: ' "$KP_OUT/$L.log"
	bh_forward
	kp_wait_for 30 agg_1m_full "$db" 25
	# and once more into the hole: SIGTERM must not wait for the database
	bh_hole
	sleep 3
	bh_stop_within 5 "$pid"
	bh_forward
}

@test "blackhole: streamer, database black-holed: WebSocket clients get live klines, /api/klines fails within its deadline" {
	load streamer_helpers
	st_node_ready
	db=$(kp_db_new)
	st_schema "$db"
	topic=$(kp_topic_new 1)
	bh_start
	STREAMER_DB_TIMEOUT_MS=2000 st_start -t "$topic" -b "$KAFKA_BROKERS" -d "$(bh_url "$db")"
	kp_wait_for 20 grep -q "reading $topic" "$KP_OUT/kline-streamer.log"
	run -0 curl -fsS "$ST_URL/api/klines?symbol=BTCUSDT&interval=1m"
	[ "$output" = "[]" ]
	bh_hole
	out=$BATS_TEST_TMPDIR/ws.out
	st_ws --send '{"op":"subscribe","symbols":["*"]}' --duration 20 >"$out" &
	cpid=$!
	kp_wait_for 10 bash -c "curl -fsS '$ST_URL/metrics' | grep -q '^kline_streamer_connections 1'"
	# API requests during the hole: each answers an error within the 2 s deadline (+1 s)
	for i in 1 2 3; do
		t0=$(date +%s%3N)
		run curl -sS -m 10 -o "$BATS_TEST_TMPDIR/api.$i" -w '%{http_code}' \
			"$ST_URL/api/klines?symbol=BTCUSDT&interval=1m"
		ms=$(($(date +%s%3N) - t0))
		echo "# /api/klines during the hole: HTTP $output in $ms ms: $(cat "$BATS_TEST_TMPDIR/api.$i")" >&3
		[ "$output" = 503 ]
		((ms < 3000))
	done &
	apipid=$!
	# meanwhile live klines from Kafka reach the WebSocket client
	"$KP_TBIN/kp-klinegen" --symbols 3 --seconds 5 |
		jq -r '.symbol + "\t" + (. | tojson)' | kcat -P -b "$KAFKA_BROKERS" -t "$topic" -K '\t' -z none
	kp_wait_for 15 bash -c "grep -c '^{\"type\":\"kline\"' '$out' | awk '\$1 >= 3 {ok=1} END {exit !ok}'"
	wait "$apipid"
	bh_forward
	# the database is back: the API answers again (a worker reconnects)
	kp_wait_for 15 curl -fsS -o /dev/null "$ST_URL/api/klines?symbol=BTCUSDT&interval=1m"
	kill "$cpid" 2>/dev/null || true
	wait "$cpid" || true
	# and SIGTERM while a request waits on the hole
	bh_hole
	curl -sS -m 10 -o /dev/null "$ST_URL/api/klines?symbol=BTCUSDT&interval=1m" || true &
	sleep 1
	bh_stop_within 5 "$ST_PID"
	bh_forward
}

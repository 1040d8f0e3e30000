#!/usr/bin/env bats
# kline-inserter against real Kafka and PostgreSQL: rows exact as decimals, checkpoints,
# rejects, dead letters, redelivery, -i, flush timing, SIGTERM.

bats_require_minimum_version 1.5.0
load helpers
load inserter_lib

INS=$KP_BIN/kline-inserter

@test "inserter: N klines from Kafka are in kline_1s exactly, with checkpoints per batch" {
	db=$(kp_db_new)
	t=$(kp_topic_new 3)
	ins_produce "$t" --symbols 20 --seconds 250 --seed 7
	kp_bg ins "$INS" -t "$t" -d "$db" -g "g-$t" --batch-rows 700 --flush-ms 100
	pid=$BG_PID
	kp_wait_for 60 ins_count_is "$db" 5000
	kp_stop "$pid"
	diff <(ins_dump_rows "$db") <(ins_expect --symbols 20 --seconds 250 --seed 7)
	# one checkpoint per symbol (and partition) per batch, covering exactly its rows
	[ "$(kp_psql "$db" 'select sum(row_count) from checkpoint')" = 5000 ]
	[ "$(kp_psql "$db" 'select count(distinct symbol) from checkpoint')" = 20 ]
	# 5000 records in batches of <= 700: every symbol has several checkpoints
	[ "$(kp_psql "$db" 'select min(n) from (select count(*) n from checkpoint group by symbol) s')" -ge 2 ]
	[ "$(kp_psql "$db" "select count(*) from checkpoint where kafka_topic <> '$t' or kafka_partition is null or first_offset is null")" = 0 ]
	# per (symbol, partition) the checkpoints tile the offsets: sum of rows = messages
	ins_check_checkpoints "$db"
	[ "$(kp_psql "$db" 'select count(*) from rejected')" = 0 ]
}

@test "inserter: waits for topics that do not exist yet" {
	db=$(kp_db_new)
	t=kp-late-$$-$RANDOM$RANDOM
	kp_bg ins "$INS" -t "$t" -d "$db" -g "g-$t" --flush-ms 100
	pid=$BG_PID
	kp_wait_for 20 grep -q "topic $t does not exist yet" "$KP_OUT/ins.log"
	"$KP_TBIN/kp-topic" -b "$KAFKA_BROKERS" create "$t" 2
	ins_produce "$t" --symbols 3 --seconds 40
	kp_wait_for 60 ins_count_is "$db" 120
	kp_stop "$pid"
	diff <(ins_dump_rows "$db") <(ins_expect --symbols 3 --seconds 40)
}

@test "inserter: redelivery to a new group from the earliest offset changes nothing" {
	db=$(kp_db_new)
	t=$(kp_topic_new 2)
	ins_produce "$t" --symbols 10 --seconds 100 --provisional
	kp_bg ins "$INS" -t "$t" -d "$db" -g "g1-$t" --batch-rows 300 --flush-ms 100
	pid=$BG_PID
	kp_wait_for 60 ins_count_is "$db" 1000
	# the last closed record of each symbol is the last message: wait until all landed
	kp_wait_for 60 ins_sql_is "$db" 'select count(*) from kline_1s where closed' 1000
	kp_stop "$pid"
	before=$(kp_psql "$db" "select md5(string_agg(k::text, ',' order by symbol, open_time)) from kline_1s k")
	cps=$(kp_psql "$db" "select count(*) || ' ' || max(id) from checkpoint")
	port=$(kp_free_port)
	kp_bg ins2 "$INS" -t "$t" -d "$db" -g "g2-$t" -X auto.offset.reset=earliest \
		--batch-rows 300 --flush-ms 100 --metrics-port "$port"
	pid=$BG_PID
	# every record again: 1000 closed + 1000 provisional, merged or unchanged
	kp_wait_for 60 ins_metric_is "$port" kline_inserter_records_total 2000
	ins_metric_is "$port" 'kline_inserter_rows_total{result="inserted"}' 0
	ins_metric_is "$port" 'kline_inserter_rows_total{result="updated"}' 0
	kp_stop "$pid"
	# not a single row touched (ingested_at included), no new checkpoint
	[ "$(kp_psql "$db" "select md5(string_agg(k::text, ',' order by symbol, open_time)) from kline_1s k")" = "$before" ]
	[ "$(kp_psql "$db" "select count(*) || ' ' || max(id) from checkpoint")" = "$cps" ]
	diff <(ins_dump_rows "$db") <(ins_expect --symbols 10 --seconds 100)
}

@test "inserter: malformed records go to rejected with reason and origin, the rest to kline_1s" {
	db=$(kp_db_new)
	t=$(kp_topic_new 1)
	good=$("$INS_GEN" --symbols 1 --seconds 3 --start 1789499996000)
	mapfile -t g <<<"$good"
	high_low=$(jq -c '.high = "1.00000000" | .low = "2.00000000"' <<<"${g[1]}")
	minute=$(jq -c '.interval = "1m" | .close_time = .open_time + 59999' <<<"${g[1]}")
	badsym=$(jq -c '.symbol = "BTC-USDT"' <<<"${g[1]}")
	{
		printf 'T0000USDT\t%s\n' "${g[0]}"
		printf 'T0000USDT\t%s\n' '{"symbol":"T0000USDT","open_time":'
		printf 'T0000USDT\t%s\n' "$high_low"
		printf 'T0000USDT\t%s\n' "$minute"
		printf 'T0000USDT\t%s\n' "$badsym"
		printf 'T0000USDT\t%s\n' 'not json at all'
		printf 'T0000USDT\t%s\n' "${g[2]}"
	} | kcat -P -b "$KAFKA_BROKERS" -t "$t" -K$'\t' 2>>"$KP_OUT/kcat.log"
	kp_bg ins "$INS" -t "$t" -d "$db" -g "g-$t" --flush-ms 100
	pid=$BG_PID
	kp_wait_for 60 ins_sql_is "$db" 'select count(*) from rejected' 5
	kp_wait_for 10 ins_count_is "$db" 2
	kp_stop "$pid"
	# the two good ones, exactly; the middle second was only sent broken
	diff <(ins_dump_rows "$db") <(ins_expect --symbols 1 --seconds 3 | sed -n '1p;3p')
	# raw payload verbatim, origin = kafka:topic/partition@offset, program, a reason
	[ "$(kp_psql "$db" "select convert_from(raw, 'UTF8') from rejected where origin = 'kafka:$t/0@5'")" = 'not json at all' ]
	[ "$(kp_psql "$db" "select convert_from(raw, 'UTF8') from rejected where origin = 'kafka:$t/0@2'")" = "$high_low" ]
	[ "$(kp_psql "$db" "select count(*) from rejected where program = 'kline-inserter' and reason <> ''")" = 5 ]
	kp_psql "$db" "select reason from rejected where origin = 'kafka:$t/0@3'" | grep -q '1m'
	kp_psql "$db" "select reason from rejected where origin = 'kafka:$t/0@1'" | grep -qi 'json'
}

@test "inserter: dead letters from <topic>.rejected land in rejected with their reason and origin" {
	db=$(kp_db_new)
	t=$(kp_topic_new 1)
	"$KP_TBIN/kp-topic" -b "$KAFKA_BROKERS" create "$t.rejected" 1
	printf 'ws:conn0\t{"e":"kline","broken\n' |
		kcat -P -b "$KAFKA_BROKERS" -t "$t.rejected" -K$'\t' -H reason='invalid JSON at byte 20' 2>>"$KP_OUT/kcat.log"
	# bytes that are not UTF-8 stay verbatim (bytea)
	printf 'rest:BTCUSDT\t\xff\xfe\x00garbage\n' |
		kcat -P -b "$KAFKA_BROKERS" -t "$t.rejected" -K$'\t' 2>>"$KP_OUT/kcat.log"
	ins_produce "$t" --symbols 2 --seconds 5
	kp_bg ins "$INS" -t "$t" -d "$db" -g "g-$t" --flush-ms 100
	pid=$BG_PID
	kp_wait_for 60 ins_sql_is "$db" 'select count(*) from rejected' 2
	kp_wait_for 30 ins_count_is "$db" 10
	kp_stop "$pid"
	[ "$(kp_psql "$db" "select reason from rejected where origin = 'ws:conn0 via kafka:$t.rejected/0@0'")" = 'invalid JSON at byte 20' ]
	[ "$(kp_psql "$db" "select convert_from(raw, 'UTF8') from rejected where origin like 'ws:conn0%'")" = '{"e":"kline","broken' ]
	[ "$(kp_psql "$db" "select encode(raw, 'hex') from rejected where origin like 'rest:BTCUSDT via kafka:%'")" = fffe0067617262616765 ]
	# --dlq-topic "" turns it off: a new group reads only the klines topic
	port=$(kp_free_port)
	kp_bg ins2 "$INS" -t "$t" -d "$db" -g "g2-$t" --dlq-topic "" --flush-ms 100 --metrics-port "$port"
	pid=$BG_PID
	kp_wait_for 60 ins_metric_is "$port" kline_inserter_records_total 10
	ins_metric_is "$port" kline_inserter_rejected_total 0
	kp_stop "$pid"
	[ "$(kp_psql "$db" 'select count(*) from rejected')" = 2 ]
}

@test "inserter: -i - from a pipe writes everything and exits 0 at end of input" {
	db=$(kp_db_new)
	run --separate-stderr bash -c "'$INS_GEN' --symbols 4 --seconds 300 | '$INS' -i - -d '$db' --batch-rows 250"
	[ "$status" -eq 0 ]
	[ -z "$output" ] # stdout carries data only, and the inserter has none
	diff <(ins_dump_rows "$db") <(ins_expect --symbols 4 --seconds 300)
	[ "$(kp_psql "$db" 'select sum(row_count) from checkpoint')" = 1200 ]
	# -i has no Kafka coordinates
	[ "$(kp_psql "$db" 'select count(*) from checkpoint where kafka_topic is not null or kafka_partition is not null or first_offset is not null')" = 0 ]
	# replaying the same input: nothing changes, no new checkpoint
	n=$(kp_psql "$db" 'select count(*) from checkpoint')
	"$INS_GEN" --symbols 4 --seconds 300 | "$INS" -i - -d "$db" 2>/dev/null
	[ "$(kp_psql "$db" 'select count(*) from checkpoint')" = "$n" ]
}

@test "inserter: provisional then closed → closed wins; closed then provisional → closed stays" {
	# one batch per record (--batch-rows 1), then everything in one batch (dedupe in memory)
	for rows in 1 5000; do
		db=$(kp_db_new)
		"$INS_GEN" --symbols 3 --seconds 20 --provisional | "$INS" -i - -d "$db" --batch-rows "$rows" 2>/dev/null
		diff <(ins_dump_rows "$db") <(ins_expect --symbols 3 --seconds 20)
		# now a provisional for every second again, after the closed ones
		"$INS_GEN" --symbols 3 --seconds 20 --provisional | awk 'NR % 2 == 1' >"$BATS_TEST_TMPDIR/prov"
		[ "$(grep -c '"closed":false' "$BATS_TEST_TMPDIR/prov")" = 60 ]
		"$INS" -i - -d "$db" --batch-rows "$rows" <"$BATS_TEST_TMPDIR/prov" 2>/dev/null
		diff <(ins_dump_rows "$db") <(ins_expect --symbols 3 --seconds 20)
	done
	# a closed kline with different values replaces the closed one (a correction)
	jq -c '.close = "1.00000000" | .low = "0.50000000"' <<<"$("$INS_GEN" --symbols 1 --seconds 1)" |
		"$INS" -i - -d "$db" 2>/dev/null
	[ "$(kp_psql "$db" "select close from kline_1s where symbol = 'T0000USDT' order by open_time limit 1")" = 1.00000000 ]
}

@test "inserter: -i rejects bad and oversized lines without stopping" {
	db=$(kp_db_new)
	f=$BATS_TEST_TMPDIR/in.ndjson
	"$INS_GEN" --symbols 1 --seconds 2 >"$f"
	head -c 70000 /dev/zero | tr '\0' x >>"$f"
	echo >>"$f"
	printf '\n\r\n' >>"$f" # blank lines carry nothing
	printf '{"symbol":"X"}\n' >>"$f"
	"$INS_GEN" --symbols 1 --seconds 3 | tail -1 >>"$f"
	printf '{"e":"kline"' >>"$f" # last line without newline
	run --separate-stderr "$INS" -i "$f" -d "$db"
	[ "$status" -eq 0 ]
	diff <(ins_dump_rows "$db") <(ins_expect --symbols 1 --seconds 3)
	[ "$(kp_psql "$db" 'select count(*) from rejected')" = 3 ]
	[ "$(kp_psql "$db" "select length(raw) from rejected where origin = 'file:$f:3'")" = 65536 ]
	kp_psql "$db" "select reason from rejected where origin = 'file:$f:3'" | grep -q '70000 bytes'
	[ "$(kp_psql "$db" "select convert_from(raw, 'UTF8') from rejected where origin = 'file:$f:8'")" = '{"e":"kline"' ]
	# stdin origin
	printf 'junk\n' | "$INS" -i - -d "$db" 2>/dev/null
	[ "$(kp_psql "$db" "select count(*) from rejected where origin = 'stdin:1'")" = 1 ]
}

@test "inserter: --flush-ms 100 writes a quiet trickle soon; --flush-ms 60000 waits, and SIGTERM flushes" {
	db=$(kp_db_new)
	t=$(kp_topic_new 1)
	kp_bg slow "$INS" -t "$t" -d "$db" -g "g-$t" --flush-ms 60000 --batch-rows 100000
	slow=$BG_PID
	kp_wait_for 30 grep -q "assigned 1 partition" "$KP_OUT/slow.log"
	ins_produce "$t" --symbols 2 --seconds 10
	# a second inserter (another group) with a 100 ms flush has them quickly
	db2=$(kp_db_new)
	kp_bg fast "$INS" -t "$t" -d "$db2" -g "g2-$t" --flush-ms 100 --batch-rows 100000
	fast=$BG_PID
	kp_wait_for 30 ins_count_is "$db2" 20
	kp_stop "$fast"
	# the 60 s batch is still open well after the fast one finished
	sleep 2
	ins_count_is "$db" 0
	rc=0
	kp_stop "$slow" || rc=$?
	[ "$rc" -eq 0 ]
	diff <(ins_dump_rows "$db") <(ins_expect --symbols 2 --seconds 10)
	grep -q "stopping: writing the 20 records in hand" "$KP_OUT/slow.log"
	# the offsets were committed: the same group gets nothing again
	port=$(kp_free_port)
	kp_bg again "$INS" -t "$t" -d "$db" -g "g-$t" --flush-ms 100 --metrics-port "$port"
	again=$BG_PID
	kp_wait_for 30 grep -q "assigned" "$KP_OUT/again.log"
	sleep 2
	ins_metric_is "$port" kline_inserter_records_total 0
	kp_stop "$again"
}

@test "inserter: usage errors exit 2 before connecting" {
	run --separate-stderr "$INS" --batch-rows 0
	[ "$status" -eq 2 ]
	[[ $stderr == *batch-rows* && $stderr == *usage* ]]
	run --separate-stderr "$INS" -X nonsense
	[ "$status" -eq 2 ]
	run --separate-stderr "$INS" --symbol btc-usdt -i -
	[ "$status" -eq 2 ]
	run --separate-stderr "$INS" --help
	[ "$status" -eq 0 ]
	[[ $output == *--flush-ms*INSERTER_FLUSH_MS* ]]
}

@test "inserter: durations take units (a bare number keeps its unit), -X is --kafka, --metrics-host binds there" {
	db=$(kp_db_new)
	INSERTER_FLUSH_MS=2s run --separate-stderr "$INS" -d "$db" -i /dev/null --stats-interval 0
	[ "$status" -eq 0 ]
	[[ $stderr == *"or 2000 ms"* ]] || { echo "$stderr"; false; }
	run --separate-stderr "$INS" -d "$db" -i /dev/null --flush-ms 250 --connect-timeout 1.5
	[ "$status" -eq 0 ]
	[[ $stderr == *"or 250 ms"* ]] || { echo "$stderr"; false; }
	for bad in "--flush-ms 0" "--flush-ms 2x" "--pg-timeout-ms 99ms" "--connect-timeout 25h"; do
		# shellcheck disable=SC2086 # word splitting wanted
		run --separate-stderr "$INS" -d "$db" -i /dev/null $bad
		[ "$status" -eq 2 ] || { echo "$bad: exit $status"; false; }
		[[ $stderr == *"${bad%% *}"* ]] || { echo "$bad: $stderr"; false; }
	done
	run --separate-stderr "$INS" --kafka nonsense
	[ "$status" -eq 2 ]
	[[ $stderr == *"expected KEY=VALUE"* ]]
	port=$(kp_free_port)
	run --separate-stderr "$INS" -d "$db" -i /dev/null --metrics-host 127.0.0.1 --metrics-port "$port"
	[ "$status" -eq 0 ] || { echo "$stderr"; false; }
	# an address of no local interface: the listen fails, so the host was used
	METRICS_HOST=192.0.2.1 run --separate-stderr "$INS" -d "$db" -i /dev/null --metrics-port "$port"
	[ "$status" -eq 1 ]
	[[ $stderr == *"192.0.2.1"* ]] || { echo "$stderr"; false; }
}

@test "inserter: -i rejects decimals written as 0E-8 at once, from a pipe and from a file, any batch size" {
	# Regression: a colleague saw -i - appear to hang on canonical records whose decimals
	# were "0E-8" (Python's Decimal for zero). Each run must end quickly and exactly.
	db=$(kp_db_new)
	"$INS_GEN" --symbols 3 --seconds 100 >"$BATS_TEST_TMPDIR/good"
	python3 - "$BATS_TEST_TMPDIR/good" >"$BATS_TEST_TMPDIR/mixed" <<'PY'
import json, sys
for i, line in enumerate(open(sys.argv[1])):
    print(line, end="")
    d = json.loads(line)
    d["open_time"] += 10_000_000
    d["close_time"] += 10_000_000
    for f in ("volume", "taker_buy_volume") if i % 2 else ("open", "high", "low", "close"):
        d[f] = "0E-8"
    print(json.dumps(d, separators=(",", ":")))
PY
	for br in 1 7 5000; do
		run --separate-stderr timeout 60 "$INS" -i - -d "$db" --batch-rows "$br" <"$BATS_TEST_TMPDIR/mixed"
		[ "$status" -eq 0 ]
		run --separate-stderr timeout 60 bash -c "cat '$BATS_TEST_TMPDIR/mixed' | '$INS' -i - -d '$db' --batch-rows $br"
		[ "$status" -eq 0 ]
		run --separate-stderr timeout 60 "$INS" -i "$BATS_TEST_TMPDIR/mixed" -d "$db" --batch-rows "$br"
		[ "$status" -eq 0 ]
	done
	diff <(ins_dump_rows "$db") <(ins_expect --symbols 3 --seconds 100)
	# 300 bad lines, stored once per origin: stdin:<n> (pipe and redirect alike, every
	# batch size: a re-read reject is not stored twice) and file:<path>:<n>
	[ "$(kp_psql "$db" "select count(*) from rejected where reason like '%exponent not allowed%'")" = 600 ]
	[ "$(kp_psql "$db" "select count(*) from rejected")" = 600 ]
}

@test "inserter: SIGTERM after its topic was deleted under it exits 0 within 10 s" {
	db=$(kp_db_new)
	t=$(kp_topic_new 1)
	kp_bg ins "$INS" -t "$t" --dlq-topic "" -d "$db" -g "g-$t" --flush-ms 100
	pid=$BG_PID
	kp_wait_for 30 grep -q "assigned 1 partition" "$KP_OUT/ins.log"
	ins_produce "$t" --symbols 2 --seconds 5
	kp_wait_for 30 ins_count_is "$db" 10
	"$KP_TBIN/kp-topic" -b "$KAFKA_BROKERS" delete "$t"
	kp_wait_for 30 grep -q "revoking 1 partition" "$KP_OUT/ins.log"
	t0=$(date +%s%N)
	kill -TERM "$pid"
	for _ in $(seq 150); do kill -0 "$pid" 2>/dev/null || break; sleep 0.1; done
	dt_ms=$((($(date +%s%N) - t0) / 1000000))
	if kill -0 "$pid" 2>/dev/null; then
		kill -KILL "$pid"
		echo "still running ${dt_ms} ms after SIGTERM" >&2
		false
	fi
	echo "exited ${dt_ms} ms after SIGTERM" >&2
	[ "$dt_ms" -lt 10000 ]
	rc=0
	wait "$pid" || rc=$?
	[ "$rc" -eq 0 ]
	grep -q "exit 0" "$KP_OUT/ins.log"
}

@test "inserter: the closed :59 second of a live minute is written at once, not after --flush-ms" {
	db=$(kp_db_new)
	db2=$(kp_db_new)
	t=$(kp_topic_new 1)
	t2=$(kp_topic_new 1)
	# seconds :57 :58 :59 of the current minute (live: ended less than 10 s ago or ahead)
	m=$(($(date +%s) / 60 * 60000))
	kp_bg ins "$INS" -t "$t" --dlq-topic "" -d "$db" -g "g-$t" --flush-ms 60000
	a=$BG_PID
	kp_bg ins2 "$INS" -t "$t2" --dlq-topic "" -d "$db2" -g "g-$t2" --flush-ms 60000
	b=$BG_PID
	kp_wait_for 30 grep -q "assigned 1 partition" "$KP_OUT/ins.log"
	kp_wait_for 30 grep -q "assigned 1 partition" "$KP_OUT/ins2.log"
	ins_produce "$t" --symbols 3 --seconds 3 --start $((m + 57000))
	ins_produce "$t2" --symbols 3 --seconds 2 --start $((m + 57000))
	kp_wait_for 30 ins_count_is "$db" 9
	# without a :59 the other batch waits for its 60 s
	sleep 2
	ins_count_is "$db2" 0
	kp_stop "$a"
	kp_stop "$b"
	ins_count_is "$db2" 6
	# a backlog (minutes long past) is not flushed per minute: one batch at SIGTERM
	db3=$(kp_db_new)
	t3=$(kp_topic_new 1)
	ins_produce "$t3" --symbols 2 --seconds 180
	kp_bg ins3 "$INS" -t "$t3" --dlq-topic "" -d "$db3" -g "g-$t3" --flush-ms 60000
	c=$BG_PID
	kp_wait_for 30 grep -q "assigned 1 partition" "$KP_OUT/ins3.log"
	sleep 3
	ins_count_is "$db3" 0
	kp_stop "$c"
	ins_count_is "$db3" 360
	# one batch: one compact checkpoint for both symbols
	[ "$(kp_psql "$db3" "select count(distinct id) || ' ' || count(*) from checkpoint")" = '1 2' ]
}

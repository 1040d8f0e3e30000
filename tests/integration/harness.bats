#!/usr/bin/env bats
# The test harness itself, against the real servers: if these fail, every
# other integration result is suspect.

load helpers

@test "harness: DATABASE_URL reaches PostgreSQL 15 and the klinepipe database" {
	run kp_psql "$DATABASE_URL" "select current_database(), current_setting('server_version_num')::int / 10000"
	[ "$status" -eq 0 ]
	[ "$output" = "klinepipe|15" ]
	# the throwaway settings are in force (tests rely on cheap commits)
	[ "$(kp_psql "$DATABASE_URL" 'show fsync')" = off ]
}

@test "harness: kp_db_new gives each caller its own empty database" {
	a=$(kp_db_new)
	b=$(kp_db_new)
	[ "$a" != "$b" ]
	kp_psql "$a" "create table only_in_a (x int); insert into only_in_a values (42)"
	[ "$(kp_psql "$a" 'select x from only_in_a')" = 42 ]
	run kp_psql "$b" 'select x from only_in_a'
	[ "$status" -ne 0 ]
	[[ $output == *only_in_a*"does not exist"* ]]
	[ "$(kp_psql "$b" "select count(*) from pg_tables where schemaname = 'public'")" = 0 ]
}

@test "harness: kp_free_port prints a port nobody listens on" {
	p=$(kp_free_port)
	[[ $p =~ ^[0-9]+$ ]]
	((p > 1024 && p < 65536))
	run bash -c "exec 3<>/dev/tcp/127.0.0.1/$p"
	[ "$status" -ne 0 ]
}

@test "harness: topic round trip of 1000 messages with kcat" {
	t=$(kp_topic_new 3)
	[ "$(kp_topic_count "$t")" = 0 ]
	seq 1 1000 | kcat -P -b "$KAFKA_BROKERS" -t "$t" -K: -l /dev/stdin 2>/dev/null ||
		seq 1 1000 | kcat -P -b "$KAFKA_BROKERS" -t "$t"
	kp_wait_for 10 test "$(kp_topic_count "$t")" = 1000
	run kp_topic_dump "$t"
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 1000 ]
	# every value exactly once, whatever partition it went to
	[ "$(printf '%s\n' "${lines[@]}" | sort -n | uniq | wc -l)" -eq 1000 ]
	[ "$(printf '%s\n' "${lines[@]}" | sort -n | head -1)" = 1 ]
	[ "$(printf '%s\n' "${lines[@]}" | sort -n | tail -1)" = 1000 ]
}

@test "harness: kp_topic_new topics are distinct and have the asked partitions" {
	a=$(kp_topic_new 4)
	b=$(kp_topic_new)
	[ "$a" != "$b" ]
	run kcat -L -b "$KAFKA_BROKERS" -t "$a" -J
	[ "$status" -eq 0 ]
	[ "$(jq -r --arg t "$a" '.topics[] | select(.topic == $t) | .partitions | length' <<<"$output")" = 4 ]
	run kcat -L -b "$KAFKA_BROKERS" -t "$b" -J
	[ "$(jq -r --arg t "$b" '.topics[] | select(.topic == $t) | .partitions | length' <<<"$output")" = 1 ]
}

@test "harness: PostgreSQL stop/start keeps the data and the port" {
	db=$(kp_db_new)
	kp_psql "$db" "create table survive (x text); insert into survive values ('still here')"
	port_before=$KP_PG_PORT
	kp_pg_stop
	run kp_psql "$db" 'select 1'
	[ "$status" -ne 0 ]
	kp_pg_start
	[ "$(kp_psql "$db" 'select x from survive')" = "still here" ]
	# same URL: programs under test reconnect to the same address
	[ "$(kp_psql "$DATABASE_URL" 'show port')" = "$port_before" ]
}

@test "harness: PostgreSQL pause stalls queries, resume lets them finish" {
	kp_pg_pause
	run timeout 2 psql "$DATABASE_URL" -XAtc 'select 1'
	kp_pg_resume
	[ "$status" -eq 124 ]
	[ "$(kp_psql "$DATABASE_URL" 'select 1')" = 1 ]
}

@test "harness: Kafka kill -9 and start keep a topic's messages" {
	t=$(kp_topic_new 2)
	seq 1 500 | kcat -P -b "$KAFKA_BROKERS" -t "$t" -X acks=all
	kp_wait_for 10 test "$(kp_topic_count "$t")" = 500
	kp_kafka_kill
	run timeout 5 kcat -L -b "$KAFKA_BROKERS" -t "$t" -m 2
	[ "$status" -ne 0 ]
	kp_kafka_start
	[ "$(kp_topic_count "$t")" = 500 ]
	[ "$(kp_topic_dump "$t" | wc -l)" -eq 500 ]
	# and the broker still takes writes
	echo after-restart | kcat -P -b "$KAFKA_BROKERS" -t "$t" -p 0
	kp_wait_for 10 test "$(kp_topic_count "$t")" = 501
}

@test "harness: Kafka graceful stop and start keep messages" {
	t=$(kp_topic_new)
	seq 1 100 | kcat -P -b "$KAFKA_BROKERS" -t "$t"
	kp_kafka_stop
	kp_kafka_start
	[ "$(kp_topic_count "$t")" = 100 ]
}

@test "harness: Kafka pause stalls clients, resume serves them" {
	t=$(kp_topic_new)
	echo one | kcat -P -b "$KAFKA_BROKERS" -t "$t"
	kp_kafka_pause
	run timeout 3 kcat -C -b "$KAFKA_BROKERS" -t "$t" -e -q -m 2
	kp_kafka_resume
	[ "$status" -ne 0 ]
	[ "$(kp_topic_dump "$t")" = one ]
}

@test "harness: kp_bg logs stderr to KP_OUT, kp_stop returns the exit code" {
	kp_bg harness-bg sh -c 'echo to-stderr >&2; trap "exit 7" TERM; while :; do sleep 0.1; done'
	pid=$BG_PID
	kp_wait_for 5 grep -q to-stderr "$KP_OUT/harness-bg.log"
	rc=0
	kp_stop "$pid" || rc=$?
	[ "$rc" -eq 7 ]
	run kill -0 "$pid"
	[ "$status" -ne 0 ]
	# through `run` the code cannot be known: kp_stop says so instead of lying
	kp_bg harness-bg sleep 30
	run kp_stop "$BG_PID"
	[ "$status" -eq 125 ]
	[[ $output == *"not a child"* ]]
}

@test "harness: kp_teardown ends what kp_bg started, children included" {
	kp_bg harness-orphan sh -c 'sleep 300 & sleep 300'
	pid=$BG_PID
	kp_wait_for 5 pgrep -g "$pid" -f "sleep 300"
	kp_teardown
	# killed children may linger as zombies until init reaps them: only
	# live states count
	run pgrep -g "$pid" -r R,S,D,T
	[ "$status" -ne 0 ]
}

@test "harness: kp_wait_for fails with the command's output after the timeout" {
	run kp_wait_for 1 sh -c 'echo not-yet; exit 3'
	[ "$status" -ne 0 ]
	[[ $output == *"gave up after 1s"* ]]
	[[ $output == *not-yet* ]]
}

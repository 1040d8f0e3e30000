#!/usr/bin/env bats
# kline-inserter under faults: kill -9, PostgreSQL stopped / frozen, a COMMIT whose
# outcome the client never learns, several inserters in one group with rebalances.
# Every test ends with the table equal to the input and consistent checkpoints.

bats_require_minimum_version 1.5.0
load helpers
load inserter_lib

INS=$KP_BIN/kline-inserter
# A member killed with -9 holds its partitions until its session times out: keep it
# short so a restarted inserter gets them back in seconds (broker minimum: 6 s).
FAST_GROUP=(-X session.timeout.ms=6000 -X heartbeat.interval.ms=1000)

teardown() {
	[[ -z ${FROZEN:-} ]] || kill -CONT "$FROZEN" 2>/dev/null || true
	kp_teardown
}

# After dropping revoked records, the log shows the new assignment of all 4 partitions.
ins_reassigned() { sed -n '/partitions revoked while/,$p' "$1" | grep -q "assigned 4 partition"; }

ins_count_gt() { (($(ins_count "$1") > $2)); }

@test "inserter faults: kill -9 at random moments, restart each time: every kline exactly once" {
	db=$(kp_db_new)
	t=$(kp_topic_new 4)
	ins_produce "$t" --symbols 30 --seconds 1500 --seed 3 # 45000 messages
	n=45000 prev=0 kills=0 at=
	# small batches: many transactions, so the kills land between COPY, COMMIT and the
	# offset commit in every possible order
	for i in 1 2 3 4 5; do
		kp_bg ins "$INS" -t "$t" -d "$db" -g "g-$t" --batch-rows 20 --flush-ms 50 "${FAST_GROUP[@]}"
		pid=$BG_PID
		# let it make progress, then kill it at a random point of its work
		kp_wait_for 60 ins_count_gt "$db" "$prev"
		sleep "0.$((RANDOM % 8))"
		kill -9 "$pid"
		wait "$pid" 2>/dev/null || true
		kills=$((kills + 1))
		prev=$(ins_count "$db")
		at="$at $prev"
		((prev < n)) || break
	done
	echo "# $kills kills, rows in kline_1s after each:$at (of $n)" >&3
	kp_bg ins "$INS" -t "$t" -d "$db" -g "g-$t" --batch-rows 20 --flush-ms 50 "${FAST_GROUP[@]}"
	pid=$BG_PID
	kp_wait_for 120 ins_count_is "$db" "$n"
	kp_stop "$pid"
	((kills >= 2))
	diff <(ins_dump_rows "$db") <(ins_expect --symbols 30 --seconds 1500 --seed 3)
	# no checkpoint written twice for the same rows, none missing
	[ "$(kp_psql "$db" 'select sum(row_count) from checkpoint')" = "$n" ]
	ins_check_checkpoints "$db"
}

@test "inserter faults: PostgreSQL stopped for 10 s mid-run: no loss, recovers by itself" {
	db=$(kp_db_new)
	t=$(kp_topic_new 2)
	f=$BATS_TEST_TMPDIR/feed
	"$INS_GEN" --keyed --symbols 20 --seconds 300 >"$f" # 6000
	kp_bg ins "$INS" -t "$t" -d "$db" -g "g-$t" --batch-rows 500 --flush-ms 100 "${FAST_GROUP[@]}"
	pid=$BG_PID
	kp_wait_for 30 grep -q "assigned" "$KP_OUT/ins.log"
	ins_produce_paced "$t" "$f" 200 0.3
	kp_wait_for 30 ins_count_gt "$db" 0
	kp_pg_stop
	sleep 10
	kp_pg_start
	wait "$PRODUCER_PID"
	kp_wait_for 120 ins_count_is "$db" 6000
	kill -0 "$pid" # the same process: it never gave up
	kp_stop "$pid"
	diff <(ins_dump_rows "$db") <(ins_expect --symbols 20 --seconds 300)
	[ "$(kp_psql "$db" 'select sum(row_count) from checkpoint')" = 6000 ]
	ins_check_checkpoints "$db"
	# one line per change of state, not one per retry
	[ "$(grep -c 'cannot write a batch' "$KP_OUT/ins.log")" = 1 ]
	[ "$(grep -c 'PostgreSQL accepts batches again' "$KP_OUT/ins.log")" = 1 ]
}

@test "inserter faults: its PostgreSQL session frozen (SIGSTOP): the transaction times out, then resumes" {
	db=$(kp_db_new)
	t=$(kp_topic_new 1)
	f=$BATS_TEST_TMPDIR/feed
	"$INS_GEN" --keyed --symbols 10 --seconds 200 >"$f" # 2000
	kp_bg ins "$INS" -t "$t" -d "$db" -g "g-$t" --batch-rows 100 --flush-ms 100 \
		--pg-timeout-ms 1500 "${FAST_GROUP[@]}"
	pid=$BG_PID
	kp_wait_for 30 grep -q "assigned" "$KP_OUT/ins.log"
	ins_produce_paced "$t" "$f" 100 0.3
	kp_wait_for 30 ins_count_gt "$db" 0
	# A hung server, as the client sees it: its backend stops answering. (Stopping the
	# postmaster alone would leave the established session working.)
	FROZEN=$(kp_psql "$db" "select pid from pg_stat_activity where datname = current_database() and application_name = 'kline-inserter'")
	[[ $FROZEN =~ ^[0-9]+$ ]]
	kill -STOP "$FROZEN"
	sleep 5
	kill -CONT "$FROZEN"
	FROZEN=
	wait "$PRODUCER_PID"
	kp_wait_for 120 ins_count_is "$db" 2000
	kp_stop "$pid"
	diff <(ins_dump_rows "$db") <(ins_expect --symbols 10 --seconds 200)
	[ "$(kp_psql "$db" 'select sum(row_count) from checkpoint')" = 2000 ]
	ins_check_checkpoints "$db"
	grep -q 'no answer from PostgreSQL within 1500 ms' "$KP_OUT/ins.log"
	grep -q 'PostgreSQL accepts batches again' "$KP_OUT/ins.log"
}

@test "inserter faults: a COMMIT that succeeds unseen is retried without doubling checkpoints" {
	db=$(kp_db_new)
	"$INS" -i /dev/null -d "$db" 2>/dev/null # creates the schema
	# The first COMMIT that writes checkpoints sleeps in a deferred trigger longer than
	# --pg-timeout-ms: the client gives up and drops the connection, the server commits.
	kp_psql "$db" "
		CREATE TABLE slept (x int);
		CREATE FUNCTION slow_once() RETURNS trigger LANGUAGE plpgsql AS \$\$
		BEGIN
			IF NOT EXISTS (SELECT 1 FROM slept) THEN
				INSERT INTO slept VALUES (1);
				PERFORM pg_sleep(3);
			END IF;
			RETURN NULL;
		END \$\$;
		CREATE CONSTRAINT TRIGGER slow_commit AFTER INSERT ON checkpoint_batch
			DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION slow_once();"
	run --separate-stderr bash -c "'$INS_GEN' --symbols 5 --seconds 100 | '$INS' -i - -d '$db' --pg-timeout-ms 1000"
	[ "$status" -eq 0 ]
	[[ $stderr == *"no answer from PostgreSQL within 1000 ms"* ]]
	[ "$(kp_psql "$db" 'select count(*) from slept')" = 1 ] # the slow COMMIT did commit
	diff <(ins_dump_rows "$db") <(ins_expect --symbols 5 --seconds 100)
	# one batch: one checkpoint per symbol, not two
	[ "$(kp_psql "$db" "select count(*) || ' ' || sum(row_count) from checkpoint")" = "5 500" ]
}

@test "inserter faults: inserters in one group split a 4-partition topic, join and leave mid-run: exactly once" {
	db=$(kp_db_new)
	t=$(kp_topic_new 4)
	f=$BATS_TEST_TMPDIR/feed
	"$INS_GEN" --keyed --symbols 40 --seconds 300 --seed 11 >"$f" # 12000
	common=(-t "$t" -d "$db" -g "g-$t" --batch-rows 300 --flush-ms 100 "${FAST_GROUP[@]}")
	kp_bg a "$INS" "${common[@]}"
	a=$BG_PID
	kp_bg b "$INS" "${common[@]}"
	b=$BG_PID
	kp_wait_for 60 grep -q "assigned" "$KP_OUT/a.log"
	kp_wait_for 60 grep -q "assigned" "$KP_OUT/b.log"
	ins_produce_paced "$t" "$f" 400 0.3
	kp_wait_for 60 ins_count_gt "$db" 3000
	# a third member joins (partitions move while records flow) ...
	kp_bg c "$INS" "${common[@]}"
	c=$BG_PID
	kp_wait_for 60 grep -q "assigned" "$KP_OUT/c.log"
	kp_wait_for 60 ins_count_gt "$db" 7000
	# ... and the first one leaves: its revoke writes its batch and commits
	kp_stop "$a"
	wait "$PRODUCER_PID"
	kp_wait_for 120 ins_count_is "$db" 12000
	kp_stop "$b"
	kp_stop "$c"
	diff <(ins_dump_rows "$db") <(ins_expect --symbols 40 --seconds 300 --seed 11)
	[ "$(kp_psql "$db" 'select sum(row_count) from checkpoint')" = 12000 ]
	ins_check_checkpoints "$db"
	# all three did share the work: each one's final stats line counts inserted rows
	for m in a b c; do
		grep 'stats:' "$KP_OUT/$m.log" | tail -1 | grep -Eq ' inserted=[1-9]'
	done
}

@test "inserter faults: rebalance while PostgreSQL is down (eager protocol): nothing lost, nothing doubled" {
	db=$(kp_db_new)
	t=$(kp_topic_new 4)
	f=$BATS_TEST_TMPDIR/feed
	"$INS_GEN" --keyed --symbols 40 --seconds 150 --seed 13 >"$f" # 6000
	common=(-t "$t" -d "$db" -g "g-$t" --batch-rows 200 --flush-ms 100 --pg-timeout-ms 3000
		"${FAST_GROUP[@]}" -X partition.assignment.strategy=range)
	kp_bg a "$INS" "${common[@]}"
	a=$BG_PID
	kp_bg b "$INS" "${common[@]}"
	b=$BG_PID
	kp_wait_for 60 grep -q "assigned" "$KP_OUT/a.log"
	kp_wait_for 60 grep -q "assigned" "$KP_OUT/b.log"
	ins_produce_paced "$t" "$f" 300 0.3
	kp_wait_for 60 ins_count_gt "$db" 1000
	kp_pg_stop
	kp_wait_for 30 grep -q "cannot write a batch" "$KP_OUT/a.log"
	kp_wait_for 30 grep -q "cannot write a batch" "$KP_OUT/b.log"
	# b leaves while nothing can be written: it cannot flush, so it commits nothing and
	# exits 1; the eager rebalance takes every partition from a too, which drops its
	# uncommitted records and reads them again, paused, from the committed offsets
	rc=0
	kp_stop "$b" || rc=$?
	[ "$rc" -eq 1 ]
	kp_wait_for 60 grep -q "partitions revoked while PostgreSQL is unavailable" "$KP_OUT/a.log"
	kp_wait_for 60 ins_reassigned "$KP_OUT/a.log"
	kp_pg_start
	wait "$PRODUCER_PID"
	kp_wait_for 120 ins_count_is "$db" 6000
	kp_stop "$a"
	diff <(ins_dump_rows "$db") <(ins_expect --symbols 40 --seconds 150 --seed 13)
	[ "$(kp_psql "$db" 'select sum(row_count) from checkpoint')" = 6000 ]
	ins_check_checkpoints "$db"
}

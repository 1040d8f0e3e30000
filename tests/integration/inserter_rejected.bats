#!/usr/bin/env bats
# kline-inserter and large junk: a rejected Kafka message is stored as a bounded prefix
# plus its size and SHA-256 (migration 005_rejected.sql), so junk costs bounded memory
# and bounded rows; a redelivered reject is still stored once (same origin and hash).

bats_require_minimum_version 1.5.0
load helpers
load inserter_lib

INS=$KP_BIN/kline-inserter
JUNK_N=150
JUNK_BYTES=1000000

# junk FILE → JUNK_N keyed messages of JUNK_BYTES each ("junk<TAB>payload"), every payload
# different (its number in the first bytes and in the last ones, beyond the prefix), the
# rest random base64.
junk() {
	python3 - "$1" "$JUNK_N" "$JUNK_BYTES" <<'EOF'
import base64, random, sys
path, n, size = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
rng = random.Random(7)  # incompressible, like real junk: TOAST cannot shrink it
with open(path, "w") as f:
    for i in range(n):
        head = "junk %06d " % i
        tail = " end %06d" % i
        body = base64.b64encode(rng.randbytes(size)).decode()[:size - len(head) - len(tail)]
        f.write("junk\t" + head + body + tail + "\n")
EOF
}

@test "inserter rejected: ${JUNK_N} junk messages of 1 MB: bounded memory and storage, size and hash kept" {
	db=$(kp_db_new)
	t=$(kp_topic_new 1)
	f=$BATS_TEST_TMPDIR/junk
	junk "$f"
	kcat -P -b "$KAFKA_BROKERS" -t "$t" -K$'\t' -X message.max.bytes=2000000 -l "$f" 2>>"$KP_OUT/kcat.log"
	ins_produce "$t" --symbols 2 --seconds 5 # good records after the junk still flow
	kp_bg ins-rej "$INS" -t "$t" -d "$db" -g "g-$t" --dlq-topic '' --flush-ms 200
	pid=$BG_PID
	kp_wait_for 120 ins_sql_is "$db" "select count(*) from rejected" "$JUNK_N"
	kp_wait_for 30 ins_count_is "$db" 10
	hwm_kb=$(awk '/^VmHWM/ { print $2 }' "/proc/$pid/status")
	kp_stop "$pid"
	bytes=$(kp_psql "$db" "select sum(octet_length(raw)) from rejected")
	table=$(kp_psql "$db" "select pg_total_relation_size('rejected')")
	echo "# ${JUNK_N} x ${JUNK_BYTES} B junk: raw stored ${bytes} B, table ${table} B, inserter peak RSS ${hwm_kb} kB" >&3
	# bounded: the default prefix is 64 KiB
	[ "$(kp_psql "$db" "select max(octet_length(raw)) from rejected")" = 65536 ]
	# 150 MB of junk took 569 MB before; ASan (make check) adds shadow memory and a
	# quarantine of up to 256 MB of freed blocks
	limit_mb=200
	ldd "$INS" | grep -q libasan && limit_mb=450
	((hwm_kb < limit_mb * 1024))
	# size and hash of the whole message
	[ "$(kp_psql "$db" "select count(*) from rejected where raw_size = $JUNK_BYTES")" = "$JUNK_N" ]
	want=$(sed -n 7p "$f" | cut -f2- | tr -d '\n' | sha256sum | cut -d' ' -f1)
	[ "$(kp_psql "$db" "select encode(raw_sha256, 'hex') from rejected where origin = 'kafka:$t/0@6'")" = "$want" ]
	[ "$(kp_psql "$db" "select convert_from(substring(raw from 1 for 12), 'UTF8') from rejected where origin = 'kafka:$t/0@6'")" = "junk 000006 " ]
	# a replay of the same offsets (new group, from the start) stores nothing twice
	log=ins-replay-$BATS_TEST_NUMBER-$$
	kp_bg "$log" "$INS" -t "$t" -d "$db" -g "g2-$t" --dlq-topic '' --flush-ms 200 --stats-interval 1
	pid=$BG_PID
	kp_wait_for 60 grep -q "rejected=$JUNK_N .*pending=0" "$KP_OUT/$log.log"
	kp_stop "$pid"
	[ "$(kp_psql "$db" "select count(*) from rejected")" = "$JUNK_N" ]
}

@test "inserter rejected: --rejected-prefix bounds the bytes kept; a message that differs only beyond it is a new reject" {
	db=$(kp_db_new)
	f=$BATS_TEST_TMPDIR/in
	printf 'junk AAAA tail-1\njunk AAAA tail-2\n' >"$f"
	run --separate-stderr "$INS" -i "$f" -d "$db" --rejected-prefix 9
	[ "$status" -eq 0 ]
	[ "$(kp_psql "$db" "select string_agg(convert_from(raw, 'UTF8') || ':' || raw_size, ',' order by origin) from rejected")" = "junk AAAA:16,junk AAAA:16" ]
	[ "$(kp_psql "$db" "select count(distinct raw_sha256) from rejected")" = 2 ]
	# the same file again: same origins, same hashes, nothing new
	run --separate-stderr "$INS" -i "$f" -d "$db" --rejected-prefix 9
	[ "$(kp_psql "$db" "select count(*) from rejected")" = 2 ]
}

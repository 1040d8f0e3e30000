#!/usr/bin/env bats
# The 3-node Kafka cluster harness (`tests/run.sh --cluster`, `make test-cluster`):
# three KRaft nodes, each broker and controller, on 127.0.0.2-4, and what every
# per-node ctl verb does to the cluster, seen from the metadata clients get.
# The pipeline test runs the real producer and inserter through a leader kill.

bats_require_minimum_version 1.5.0
load helpers
load producer_helpers
load faults_helpers

setup_file() {
	[[ ${KP_KAFKA_NODES:-1} == 3 ]] || {
		echo "cluster.bats needs a 3-node cluster harness (tests/run.sh --cluster); this one has ${KP_KAFKA_NODES:-1} Kafka node(s)" >&3
		return 1
	}
}

# Every node back: healed, resumed, started (kp_teardown resumes and starts all),
# and the cluster whole before the next test: a node back from an isolation
# forces an election (its epoch is higher), and its own metadata is stale for a
# few seconds; a test that starts in that window sees no controller at all.
teardown() {
	"$KP_CTL" kafka-heal || echo "teardown: heal failed" >&2
	kp_teardown
	"$KP_CTL" kafka-settled 120
}

cl_ctl() { "$KP_CTL" "$@"; }

# cl_part TOPIC [P] → "leader=L replicas=... isr=..."
cl_part() { cl_ctl kafka-partition "$@"; }
cl_isr_is() { [[ $(cl_part "$1" "${3:-0}") == *" isr=$2" ]]; }
cl_leader_not() {
	local l
	l=$(cl_ctl kafka-leader "$1") && ((l >= 1 && l != $2))
}
# node ids the metadata lists as brokers (fenced and stopped ones are not listed)
cl_brokers() { kcat -L -b "$KAFKA_BROKERS" -m 5 -J 2>/dev/null | jq -r '[.brokers[].id] | sort | join(",")'; }
cl_brokers_are() { [[ $(cl_brokers) == "$1" ]]; }
cl_others() {
	local i out=
	for i in 1 2 3; do ((i == $1)) || out+=${out:+,}$i; done
	echo "$out"
}
cl_node_addr() { cl_ctl kafka-nodes | awk -v n="$1" '$1 == n { print $2 }'; }
# the node's process state (R, S, T = stopped by a signal), "gone" once it exited (a zombie too)
cl_node_state() {
	local st
	st=$(awk '{ print $3 }' "/proc/$(cat "$KP_HARNESS_DIR/kafka/b$1/pid")/stat" 2>/dev/null) || st=
	[[ -n $st && $st != Z ]] && echo "$st" || echo gone
}

# cl_connect_as N HOST:PORT → a TCP connect from inside node N's cgroup (as node N's
# own connections to the others are made), 3 s at most.
cl_connect_as() {
	local procs
	procs="$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)/$(cat "$KP_HARNESS_DIR/kafka/b$1/cgroup")/cgroup.procs"
	timeout 3 bash -c 'echo $$ >"$1" && exec 3<>"/dev/tcp/${2%:*}/${2##*:}"' _ "$procs" "$2"
}

# A topic with 3 replicas of one partition, holding N messages written with acks=all.
cl_topic_rf3() {
	local t
	t=$(kp__uniq kp-c | tr _ -)
	"$KP_TBIN/kp-topic" -b "$KAFKA_BROKERS" create "$t" 1 3 >&2 || return 1
	seq 1 "$1" | kcat -P -b "$KAFKA_BROKERS" -t "$t" -X acks=all 2>>"$KP_OUT/kcat.log" || return 1
	kp_wait_for 30 cl_isr_is "$t" 1,2,3 || return 1
	echo "$t"
}

# cl_check_db DB → kline_1s holds exactly the exchange's truth: every closed kline once,
# every value equal (numerics compared as decimals), nothing else.
cl_check_db() {
	local d=$BATS_TEST_TMPDIR
	curl -fsS "$SIM_URL/truth" >"$d/truth.json"
	psql "$1" -XAtq -v ON_ERROR_STOP=1 -c "copy (select symbol,
		(extract(epoch from open_time) * 1000)::bigint, (extract(epoch from open_time) * 1000)::bigint + 999,
		open, high, low, close, volume, quote_volume, trades, taker_buy_volume,
		taker_buy_quote_volume, closed from kline_1s) to stdout with csv" >"$d/db.csv"
	python3 - "$d/truth.json" "$d/db.csv" <<'PY'
import csv, json, sys
from decimal import Decimal
F = ["open", "high", "low", "close", "volume", "quote_volume", "trades", "taker_buy_volume", "taker_buy_quote_volume"]
text = open(sys.argv[1]).read()
dec, i, truth = json.JSONDecoder(), 0, {}
while True:
    while i < len(text) and text[i].isspace():
        i += 1
    if i >= len(text):
        break
    k, i = dec.raw_decode(text, i)
    if k.get("closed", True):
        truth[(k["symbol"], int(k["open_time"]))] = (int(k["close_time"]),) + tuple(Decimal(str(k[f])) for f in F)
db, doubled = {}, 0
for r in csv.reader(open(sys.argv[2])):
    key = (r[0], int(r[1]))
    doubled += key in db
    db[key] = (int(r[2]),) + tuple(Decimal(v) for v in r[3:12])
missing = sorted(set(truth) - set(db))
extra = sorted(set(db) - set(truth))
wrong = sorted(k for k in set(truth) & set(db) if truth[k] != db[k])
print("kline_1s: %d expected, %d rows, %d missing, %d doubled, %d wrong, %d not in the truth"
      % (len(truth), len(db), len(missing), doubled, len(wrong), len(extra)))
for name, ks in (("missing", missing), ("wrong", wrong), ("extra", extra)):
    if ks:
        print(name, ks[:5])
sys.exit(1 if (missing or doubled or wrong or extra or not truth) else 0)
PY
}

@test "cluster: three KRaft nodes, each its own process, address, ports, log dir and cgroup; KAFKA_BROKERS names all three" {
	run cl_ctl kafka-nodes
	echo "$output"
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 3 ]
	[ "$(awk '$3 == "running" { print $5 }' <<<"$output" | sort -u | wc -l)" -eq 3 ]
	want=
	for i in 1 2 3; do
		addr=$(cl_node_addr "$i")
		[[ $addr == "127.0.0.$((i + 1)):"* ]]
		want+=${want:+,}$addr
		d=$KP_HARNESS_DIR/kafka/b$i
		pid=$(cat "$d/pid")
		# its own log dir, formatted for its node id, and its own server log
		grep -qx "node.id=$i" "$d/data/meta.properties"
		grep -q "log.dirs=$d/data" "$d/server.properties"
		[ -s "$d/server.log" ]
		# the JVM listens on its own address, broker and controller port
		ss -Hltnp src "${addr%:*}" | grep "pid=$pid," | grep -q ":${addr##*:} "
		ss -Hltnp src "${addr%:*}" | grep "pid=$pid," | grep -q ":$(cat "$d/cport") "
		# its own cgroup (what kafka-isolate matches)
		grep -qx "$pid" "$(awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts)/$(cat "$d/cgroup")/cgroup.procs"
		# the small heap
		tr '\0' '\n' <"/proc/$pid/cmdline" | grep -qx -- -Xmx384m
	done
	[ "$KAFKA_BROKERS" = "$want" ]
	# every client sees all three brokers at those addresses
	run kcat -L -b "$KAFKA_BROKERS" -J
	[ "$(jq -r '[.brokers[] | "\(.id)@\(.name)"] | sort | join(",")' <<<"$output")" = \
		"1@$(cl_node_addr 1),2@$(cl_node_addr 2),3@$(cl_node_addr 3)" ]
	# one active controller, from the quorum itself
	run cl_ctl kafka-controller
	echo "controller: $output"
	[ "$status" -eq 0 ]
	[[ $output =~ ^[123]$ ]]
	# the versions line says cluster
	cl_ctl versions | grep -q 'KRaft cluster of 3 nodes'
}

@test "cluster: kline-producer (replication auto) makes its topics 3 replicas in sync with min.insync.replicas=2; every kline once" {
	kp_sim_start --symbols BTCUSDT,ETHUSDT,BNBUSDT --speed 4 --duration 30
	start=$(p_sim_start_ms)
	topic=$(kp__uniq kp-p | tr _ -)
	# no --replication: auto = min(3, brokers) = 3, and min.insync.replicas = 3 - 1
	p_producer prod -s BTCUSDT,ETHUSDT,BNBUSDT -t "$topic" --since "$start" --partitions 2
	kp_wait_for 60 p_sim_done 30
	kp_wait_for 60 p_count_ge "$topic" 90
	rc=0
	kp_stop "$PROD_PID" || rc=$?
	[ "$rc" -eq 0 ]
	for t in "$topic" "$topic.rejected"; do
		for p in 0 1; do
			part=$(cl_part "$t" "$p")
			echo "$t[$p]: $part"
			[[ $part == *" replicas=1,2,3 isr=1,2,3" ]]
		done
		"$KP_TBIN/kp-topic" config "$t" >"$BATS_TEST_TMPDIR/config"
		grep -qx 'min.insync.replicas=2' "$BATS_TEST_TMPDIR/config"
	done
	p_check_topic "$topic"
	p_order_ok "$topic"
}

@test "cluster: --min-insync is set on the topic itself (over the brokers' default of 2); more than --replication is refused" {
	kp_sim_start --symbols BTCUSDT --speed 4 --duration 5
	topic=$(kp__uniq kp-i | tr _ -)
	p_producer prod -s BTCUSDT -t "$topic" --since "$(p_sim_start_ms)" --partitions 1 --min-insync 3
	kp_wait_for 60 p_count_ge "$topic" 3
	kp_stop "$PROD_PID"
	"$KP_TBIN/kp-topic" config "$topic" >"$BATS_TEST_TMPDIR/config"
	grep -qx 'min.insync.replicas=3' "$BATS_TEST_TMPDIR/config"
	grep -q 'created topic '"$topic"': 1 partitions, replication 3, min.insync.replicas 3' "$KP_OUT/prod.log"
	run -2 "$KP_BIN/kline-producer" -s BTCUSDT -t "$topic" --replication 2 --min-insync 3
	[[ $output == *"--min-insync 3 is more than --replication 2"* ]]
}

@test "cluster: kill -9 of the partition leader → a new leader; producer → inserter: nothing missing, doubled or wrong in kline_1s" {
	db=$(kp_db_new)
	kp_sim_start --symbols BTCUSDT,ETHUSDT,BNBUSDT --speed 2 --duration 40
	start=$(p_sim_start_ms)
	topic=$(kp__uniq kp-k | tr _ -)
	p_producer prod -s BTCUSDT,ETHUSDT,BNBUSDT -t "$topic" --since "$start" --replication 3 --partitions 1
	kp_bg ins "$KP_BIN/kline-inserter" -t "$topic" -d "$db" -g "g$topic" --stats-interval 5
	ins=$BG_PID
	kp_wait_for 60 p_count_ge "$topic" 15
	kp_wait_for 30 cl_isr_is "$topic" 1,2,3
	old=$(cl_ctl kafka-leader "$topic")
	echo "# leader of $topic[0]: node $old; kill -9 at $(date +%T.%3N)" >&3
	t0=$(date +%s%3N)
	cl_ctl kafka-kill "$old"
	[ "$(cl_node_state "$old")" = gone ]
	kp_wait_for 30 cl_leader_not "$topic" "$old"
	echo "# new leader: node $(cl_ctl kafka-leader "$topic") after $(($(date +%s%3N) - t0)) ms; $(cl_part "$topic")" >&3
	kp_wait_for 10 cl_isr_is "$topic" "$(cl_others "$old")"
	kp_wait_for 90 p_sim_done 40
	# the producer wrote through the election (it waits, it never drops)
	kp_wait_for 90 p_count_ge "$topic" 120
	kp__alive "$PROD_PID"
	kp_wait_for 60 ins_rows_ge "$db" 120
	rc=0
	kp_stop "$PROD_PID" || rc=$?
	[ "$rc" -eq 0 ]
	sleep 1 # the inserter's last flush (--flush-ms 200)
	rc=0
	kp_stop "$ins" || rc=$?
	[ "$rc" -eq 0 ]
	run cl_check_db "$db"
	echo "$output"
	echo "# $output" >&3
	echo "# messages in the topic: $(kp_topic_count "$topic") (the truth: 120 klines)" >&3
	[ "$status" -eq 0 ]
	# the killed node comes back and catches up into the ISR
	cl_ctl kafka-start "$old"
	kp_wait_for 60 cl_isr_is "$topic" 1,2,3
}

ins_rows_ge() { (($(kp_psql "$1" "select count(*) from kline_1s") >= $2)); }

# every kline_1s row lies inside a checkpoint of its symbol (the aggregator's contract)
cl_rows_uncovered() {
	kp_psql "$1" "select count(*) from kline_1s k where not exists (select 1 from checkpoint c
		where c.symbol = k.symbol and k.open_time between c.first_open_time and c.last_open_time)"
}

@test "cluster: three inserters in one consumer group; kill -9 of one → rebalance; nothing missing or doubled, checkpoints cover every row" {
	db=$(kp_db_new)
	kp_sim_start --num-symbols 30 --speed 2 --duration 40
	start=$(p_sim_start_ms)
	topic=$(kp__uniq kp-g | tr _ -)
	p_producer prod -s "$(seq -f 'SYM%04gUSDT' 1 30 | paste -sd,)" -t "$topic" --since "$start" --partitions 6
	pids=()
	for i in 1 2 3; do
		kp_bg "ins$i" "$KP_BIN/kline-inserter" -t "$topic" -d "$db" -g "g$topic" --stats-interval 5 \
			--metrics-port "$(kp_free_port)"
		pids+=("$BG_PID")
	done
	kp_wait_for 60 ins_rows_ge "$db" 300
	victim=${pids[1]}
	echo "# kill -9 of inserter 2 (pid $victim) at $(date +%T.%3N), $(kp_psql "$db" "select count(*) from kline_1s") rows" >&3
	kill -9 "$victim"
	kp_wait_for 90 p_sim_done 40
	kp_wait_for 90 ins_rows_ge "$db" 1200
	rc=0
	kp_stop "$PROD_PID" || rc=$?
	[ "$rc" -eq 0 ]
	sleep 1
	for p in "${pids[0]}" "${pids[2]}"; do
		rc=0
		kp_stop "$p" || rc=$?
		[ "$rc" -eq 0 ]
	done
	# the survivors took the victim's partitions over
	grep -q "assigned" "$KP_OUT/ins1.log" "$KP_OUT/ins3.log"
	run cl_check_db "$db"
	echo "$output"
	echo "# $output" >&3
	[ "$status" -eq 0 ]
	[ "$(cl_rows_uncovered "$db")" -eq 0 ]
}

@test "cluster: stop (clean) of the leader → it leaves the metadata and the ISR, data stays; start → it rejoins the ISR" {
	topic=$(cl_topic_rf3 100)
	n=$(cl_ctl kafka-leader "$topic")
	cl_ctl kafka-stop "$n"
	[ "$(cl_node_state "$n")" = gone ]
	# a controlled shutdown moves leadership before the node goes
	cl_leader_not "$topic" "$n"
	kp_wait_for 20 cl_isr_is "$topic" "$(cl_others "$n")"
	kp_wait_for 20 cl_brokers_are "$(cl_others "$n")"
	[ "$(kp_topic_count "$topic")" -eq 100 ]
	cl_ctl kafka-start "$n"
	kp__alive "$(cat "$KP_HARNESS_DIR/kafka/b$n/pid")"
	kp_wait_for 10 cl_brokers_are 1,2,3
	kp_wait_for 60 cl_isr_is "$topic" 1,2,3
	[ "$(kp_topic_count "$topic")" -eq 100 ]
}

@test "cluster: pause (SIGSTOP) of a follower → fenced, out of the ISR, writes go on; resume (SIGCONT) → back in the ISR" {
	topic=$(cl_topic_rf3 10)
	l=$(cl_ctl kafka-leader "$topic")
	n=$((l % 3 + 1))
	cl_ctl kafka-pause "$n"
	[ "$(cl_node_state "$n")" = T ]
	kp_wait_for 30 cl_isr_is "$topic" "$(cl_others "$n")"
	kp_wait_for 20 cl_brokers_are "$(cl_others "$n")"
	# min.insync.replicas=2: two in sync still take acks=all writes
	seq 11 20 | kcat -P -b "$KAFKA_BROKERS" -t "$topic" -X acks=all -X message.timeout.ms=20000
	[ "$(kp_topic_count "$topic")" -eq 20 ]
	cl_ctl kafka-resume "$n"
	[ "$(cl_node_state "$n")" != T ]
	kp_wait_for 60 cl_isr_is "$topic" 1,2,3
	# every node's own view, not only the stale one of the node just healed
	"$KP_CTL" kafka-settled 90
}

@test "cluster: isolate of the leader → unreachable, its process running, replaced as leader and out of the ISR; heal → back" {
	topic=$(cl_topic_rf3 10)
	n=$(cl_ctl kafka-leader "$topic")
	addr=$(cl_node_addr "$n")
	cl_ctl kafka-isolate "$n"
	cl_ctl kafka-nodes | grep -q "^$n .* isolated$"
	chain=$(iptables -w -S OUTPUT | awk '/-j KPH-/ { print $NF; exit }')
	[ "$(iptables -w -S "$chain" | grep -c -- '-j DROP')" -ge 2 ]
	# clients cannot reach it (connect times out: the SYN is dropped)
	run timeout 3 bash -c "exec 3<>/dev/tcp/${addr%:*}/${addr##*:}"
	[ "$status" -ne 0 ]
	# the process runs on, cut off
	[[ $(cl_node_state "$n") == [RS] ]]
	# and what it sends does not get out: a connection from its cgroup to another node
	o=$((n % 3 + 1))
	run cl_connect_as "$n" "$(cl_node_addr "$o")"
	[ "$status" -ne 0 ]
	# the others fence it: a new leader from the ISR, and it is out of the ISR
	kp_wait_for 30 cl_leader_not "$topic" "$n"
	kp_wait_for 30 cl_isr_is "$topic" "$(cl_others "$n")"
	seq 11 20 | kcat -P -b "$KAFKA_BROKERS" -t "$topic" -X acks=all -X message.timeout.ms=20000
	[ "$(kp_topic_count "$topic")" -eq 20 ]
	cl_ctl kafka-heal "$n"
	! cl_ctl kafka-nodes | grep -q isolated
	[ "$(iptables -w -S "$chain" | grep -c -- '-j DROP')" -eq 0 ]
	timeout 3 bash -c "exec 3<>/dev/tcp/${addr%:*}/${addr##*:}"
	cl_connect_as "$n" "$(cl_node_addr "$o")"
	kp_wait_for 60 cl_isr_is "$topic" 1,2,3
	# every node's own view, not only the stale one of the node just healed
	"$KP_CTL" kafka-settled 90
}

@test "cluster: kill -9 of the active controller → another node is elected; start → all three brokers again" {
	c=$(cl_ctl kafka-controller)
	cl_ctl kafka-kill "$c"
	kp_wait_for 30 bash -c "c=\$('$KP_CTL' kafka-controller) && [ \"\$c\" != $c ]"
	echo "# controller was node $c, now node $(cl_ctl kafka-controller)" >&3
	# its broker half is fenced once its session (3 s) expires; a JVM restarting on a
	# loaded machine (CI) takes longer than on an idle one, so both waits are generous
	kp_wait_for 60 cl_brokers_are "$(cl_others "$c")" || { echo "# brokers listed: $(cl_brokers)" >&3; false; }
	cl_ctl kafka-start "$c"
	kp_wait_for 60 cl_brokers_are 1,2,3 || { echo "# brokers listed: $(cl_brokers)" >&3; false; }
	run cl_ctl kafka-controller
	[ "$status" -eq 0 ]
	[[ $output =~ ^[123]$ ]]
}

@test "cluster: ctl verbs check their node number" {
	run cl_ctl kafka-kill 4
	[ "$status" -ne 0 ]
	[[ $output == *"no Kafka node '4'"* ]]
	run cl_ctl kafka-isolate
	[ "$status" -eq 2 ]
	run cl_ctl kafka-pause x
	[ "$status" -ne 0 ]
	cl_brokers_are 1,2,3
}

# The cluster fault campaign, short (tests/faults/campaign.py --cluster; the long one is
# cluster_faults_long.bats, `make test-faults-cluster`): 40 symbols × 5 real minutes at 5×,
# a hot-standby producer pair, 2 inserters in one group, a streamer pair, each fault once:
# kill -9 of one instance of each program, of the partition leader (from the metadata at
# that moment) and of the active controller, a rolling restart of all three nodes, a node
# SIGSTOPped and a node isolated for 10 s. KP_CFAULTS_{MINUTES,SYMBOLS,SPEED,SEED} change it.
@test "cluster: fault campaign, short — broker, controller, rolling restart, pause, isolation and program kills; nothing lost, doubled or wrong" {
	FAULTS_KINDS=9 faults_campaign cluster-faults "${KP_CFAULTS_MINUTES:-5}" "${KP_CFAULTS_SYMBOLS:-40}" \
		"${KP_CFAULTS_SPEED:-5}" 1 --cluster --partitions 6 --inserters 2 --pause-secs 10 \
		--quiet-tail 20 --drain-timeout 300 --settle-secs 90 ${KP_CFAULTS_SEED:+--seed "$KP_CFAULTS_SEED"}
}

# shellcheck shell=bash
# Helpers for tests/integration/*.bats (`load helpers`). The interface is the
# table in docs/DEVELOPING.md "Tests"; additions are marked (+).
#
# Environment from tests/run.sh (or `tests/harness/up`): KP_BIN, KP_TBIN,
# KP_HARNESS_DIR, DATABASE_URL, KAFKA_BROKERS, KP_PG_PORT, KP_OUT, KP_KAFKA_MODE
# (real|mock). Running `bats` by hand with only KP_HARNESS_DIR set works too:
# the rest is read from $KP_HARNESS_DIR/env.

KP_ROOT=${KP_ROOT:-$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)}
KP_CTL=$KP_ROOT/tests/harness/ctl

if [[ -z ${DATABASE_URL:-} || -z ${KAFKA_BROKERS:-} ]] && [[ -r ${KP_HARNESS_DIR:-/nonexistent}/env ]]; then
	# shellcheck disable=SC1091
	. "$KP_HARNESS_DIR/env"
fi
: "${KP_BIN:=$KP_ROOT/bin}"
: "${KP_TBIN:=$KP_ROOT/build/release/tbin}"
: "${KP_OUT:=${BATS_RUN_TMPDIR:-/tmp}/kp-out}"
: "${KP_KAFKA_MODE:=real}"
export KP_BIN KP_TBIN KP_OUT KP_KAFKA_MODE
mkdir -p "$KP_OUT"

# Where this test's background pids are listed (for kp_teardown), and a
# run-wide list tests/run.sh sweeps if a test is interrupted.
kp__bg_list() { echo "${BATS_TEST_TMPDIR:-${BATS_RUN_TMPDIR:-/tmp}}/kp-bg.pids"; }

kp_free_port() {
	python3 -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# A unique lower-case name usable as a database or topic name.
kp__uniq() { printf '%s_%s_%s%s' "$1" "${BATS_TEST_NUMBER:-0}" "$$" "$(od -An -N4 -tx4 /dev/urandom | tr -d ' ')"; }

kp__pg_admin_url() { echo "postgresql://postgres@127.0.0.1:${KP_PG_PORT}/postgres"; }

# Prints the URL of a new empty database; every test gets its own.
kp_db_new() {
	local name
	name=$(kp__uniq kp)
	psql "$(kp__pg_admin_url)" -XAtq -v ON_ERROR_STOP=1 -c "create database \"$name\"" >/dev/null || return 1
	echo "postgresql://postgres@127.0.0.1:${KP_PG_PORT}/$name"
}

# kp_topic_new [PARTITIONS] → prints the name of a new topic whose partitions
# all have a leader (ready to produce to).
kp_topic_new() {
	local parts=${1:-1} name
	name=$(kp__uniq kp-t | tr _ -)
	if [[ $KP_KAFKA_MODE == mock ]]; then
		# librdkafka 2.0's mock cluster has no CreateTopics; ask kp-mock-cluster.
		local req=$KP_HARNESS_DIR/kafka/topic-requests/$name i
		echo "$parts" >"$req.tmp" && mv "$req.tmp" "$req"
		for ((i = 0; i < 200; i++)); do
			[[ -e $req.done ]] && { echo "$name"; return 0; }
			[[ -e $req.err ]] && { echo "kp_topic_new: $(cat "$req.err")" >&2; return 1; }
			sleep 0.05
		done
		echo "kp_topic_new: the mock cluster did not create $name" >&2
		return 1
	fi
	if [[ ! -x $KP_TBIN/kp-topic ]]; then
		echo "kp_topic_new: $KP_TBIN/kp-topic is not built (make testbins)" >&2
		return 1
	fi
	"$KP_TBIN/kp-topic" -b "$KAFKA_BROKERS" create "$name" "$parts" >&2 || return 1
	echo "$name"
}

# kp_psql URL SQL → unaligned, tuples-only output; fails on any SQL error.
kp_psql() {
	psql "$1" -XAtq -v ON_ERROR_STOP=1 -c "$2"
}

# kp_wait_for TIMEOUT_S CMD... → retries CMD every 0.2 s; fails (with the
# command and its last output) when TIMEOUT_S passes.
kp_wait_for() {
	local timeout=$1 deadline out rc ms
	shift
	ms=$(awk -v t="$timeout" 'BEGIN { if (t !~ /^[0-9]+(\.[0-9]+)?$/) exit 1; print int(t * 1000) }') ||
		{ echo "kp_wait_for: TIMEOUT_S must be a number of seconds, not '$timeout'" >&2; return 2; }
	deadline=$(($(date +%s%3N) + ms))
	while :; do
		rc=0
		out=$("$@" 2>&1) || rc=$?
		((rc == 0)) && return 0
		if (($(date +%s%3N) >= deadline)); then
			echo "kp_wait_for: gave up after ${timeout}s: $* (exit $rc)" >&2
			[[ -n $out ]] && printf '%s\n' "$out" | tail -20 >&2
			return 1
		fi
		sleep 0.2
	done
}

# kp_bg NAME CMD... → starts CMD in the background (own process group),
# stderr appended to $KP_OUT/NAME.log, stdout and stdin those of the call
# (`kp_bg ins prog -i - <file >out` works). Sets BG_PID. kp_teardown stops
# it if the test does not.
kp_bg() {
	local name=$1 log
	shift
	log=$KP_OUT/$name.log
	printf '=== %s: %s\n' "${BATS_TEST_DESCRIPTION:-?}" "$*" >>"$log"
	# setsid (no fork here: a job of a non-interactive shell is no group leader)
	# gives the program its own group, so stop and teardown reach its children.
	# <&0: an explicit stdin, else bash gives a background job /dev/null
	setsid "$@" <&0 2>>"$log" 3>&- &
	BG_PID=$!
	echo "$BG_PID" >>"$(kp__bg_list)"
	[[ -n ${KP_BG_SWEEP:-} ]] && echo "$BG_PID" >>"$KP_BG_SWEEP"
	return 0
}

kp__alive() {
	local st
	st=$(awk '{print $3}' "/proc/$1/stat" 2>/dev/null) || return 1
	[[ -n $st && $st != Z ]]
}

# kp_stop PID → SIGTERM, waits up to 10 s (then SIGKILL), returns PID's exit
# code (128+signal if it died of one). Call it in the test's own shell, as
# `kp_stop "$PID"` or `rc=0; kp_stop "$PID" || rc=$?` -- NOT `run kp_stop`:
# `run` is a subshell, which cannot collect the exit code of the test shell's
# child, so kp_stop then fails with 125 instead of guessing.
kp_stop() {
	local pid=$1 i rc=0 was_alive=0
	kp__alive "$pid" && was_alive=1
	kill -TERM "$pid" 2>/dev/null || true
	for ((i = 0; i < 100; i++)); do
		kp__alive "$pid" || break
		sleep 0.1
	done
	if kp__alive "$pid"; then
		echo "kp_stop: $pid did not exit 10 s after SIGTERM; killing it" >&2
		kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
	fi
	wait "$pid" 2>/dev/null || rc=$?
	# A subshell knows the status of a child that ended before it was forked,
	# not of one that ends while it runs (wait then says 127 or 255).
	if ((rc == 127 || (was_alive && BASH_SUBSHELL > 0))); then
		echo "kp_stop: $pid is not a child of this shell (called through run or \$(...)?): its exit code is lost" >&2
		return 125
	fi
	return "$rc"
}

# kp_sim_start ARGS... → the simulated exchange on a free port; sets SIM_PORT,
# SIM_PID, SIM_URL, SIM_WS_URL. Fails the test if it is not up within 10 s.
kp_sim_start() {
	SIM_PORT=$(kp_free_port)
	kp_bg kline-sim "$KP_TBIN/kline-sim" --listen "127.0.0.1:$SIM_PORT" "$@"
	SIM_PID=$BG_PID
	SIM_URL=http://127.0.0.1:$SIM_PORT
	SIM_WS_URL=ws://127.0.0.1:$SIM_PORT
	export SIM_PORT SIM_PID SIM_URL SIM_WS_URL
	local i
	for ((i = 0; i < 50; i++)); do
		if ! kp__alive "$SIM_PID"; then
			echo "kp_sim_start: kline-sim exited; see $KP_OUT/kline-sim.log:" >&2
			tail -5 "$KP_OUT/kline-sim.log" >&2
			return 1
		fi
		curl -fs -o /dev/null "$SIM_URL/api/v3/ping" && return 0
		sleep 0.2
	done
	echo "kp_sim_start: no answer on $SIM_URL/api/v3/ping after 10 s; see $KP_OUT/kline-sim.log" >&2
	return 1
}

# kp_topic_count TOPIC → messages in the topic, all partitions.
kp_topic_count() {
	if [[ -x $KP_TBIN/kp-topic ]]; then
		"$KP_TBIN/kp-topic" -b "$KAFKA_BROKERS" count "$1"
	else
		kp_topic_dump "$1" | wc -l
	fi
}

# kp_topic_dump TOPIC → every message value, one per line (partition order
# within a partition; partitions interleave).
kp_topic_dump() {
	kcat -C -b "$KAFKA_BROKERS" -t "$1" -e -q -f '%s\n'
}

kp_pg_stop() { "$KP_CTL" pg-stop; }
kp_pg_start() { "$KP_CTL" pg-start; }
kp_pg_pause() { "$KP_CTL" pg-pause; }     # (+) SIGSTOP the postmaster and its backends
kp_pg_resume() { "$KP_CTL" pg-resume; }   # (+)
kp_kafka_stop() { "$KP_CTL" kafka-stop; }
kp_kafka_start() { "$KP_CTL" kafka-start; }
kp_kafka_kill() { "$KP_CTL" kafka-kill; }
kp_kafka_pause() { "$KP_CTL" kafka-pause; }   # (+) SIGSTOP the broker JVM
kp_kafka_resume() { "$KP_CTL" kafka-resume; } # (+)

# (+) Stops every kp_bg process of the current test (SIGTERM, 5 s, SIGKILL),
# resumes a paused server and restarts a stopped one so that a failed test
# does not break the tests after it. The default teardown below calls it; a
# file that defines its own teardown() must call kp_teardown itself.
kp_teardown() {
	local list pid i
	list=$(kp__bg_list)
	if [[ -s $list ]]; then
		while read -r pid; do
			kill -TERM -- "-$pid" 2>/dev/null || kill -TERM "$pid" 2>/dev/null || true
		done <"$list"
		for ((i = 0; i < 50; i++)); do
			local any=0
			while read -r pid; do kp__alive "$pid" && any=1; done <"$list"
			((any)) || break
			sleep 0.1
		done
		while read -r pid; do
			if kp__alive "$pid"; then
				echo "kp_teardown: $pid ignored SIGTERM; killing it" >&2
				kill -KILL -- "-$pid" 2>/dev/null || kill -KILL "$pid" 2>/dev/null || true
			fi
			wait "$pid" 2>/dev/null || true
		done <"$list"
		rm -f "$list"
	fi
	if [[ -n ${KP_HARNESS_DIR:-} && -d $KP_HARNESS_DIR ]]; then
		"$KP_CTL" pg-resume
		"$KP_CTL" kafka-resume
		"$KP_CTL" pg-start || echo "kp_teardown: could not restart PostgreSQL" >&2
		"$KP_CTL" kafka-start || echo "kp_teardown: could not restart Kafka" >&2
	fi
}

teardown() { kp_teardown; }

#!/usr/bin/env bash
# Runs every test suite against one throwaway PostgreSQL + Kafka and prints
# "N passed, N failed[, N skipped]" as its last line.
#
#   tests/run.sh [--faults] [--cluster] [FILTER...]
#
# Suites: every cmocka binary $KP_TBIN/test_* (CMOCKA_MESSAGE_OUTPUT=TAP) and
# every tests/integration/*.bats (`bats --tap`). A FILTER keeps the suites
# whose name (file name) contains it. Long suites (tests/integration/
# *_long.bats, e.g. the full fault campaign) run only with --faults or when a
# FILTER names them; the short fault suites are part of every run.
# Cluster suites (tests/integration/cluster*.bats) need a 3-node Kafka cluster
# harness: they run with --cluster (alone, unless FILTERs pick other suites
# too, which then run against the cluster as well), or when the FILTERs pick
# only cluster suites (`tests/run.sh cluster` starts the cluster by itself).
#
# Environment: KP_BIN, KP_TBIN (set by make), KP_KAFKA=real|mock|auto (broker
# choice, default auto = real when the jars resolved), KP_SUITE_TIMEOUT
# (seconds per suite, default 1200), KP_BATS_DIR (the bats suites, default
# tests/integration), KP_BATS_FILTER (a regex: only the bats tests whose name
# matches run, `bats --filter`). A harness already running (KP_HARNESS_DIR with an env
# file, e.g. from tests/harness/up) is reused instead of starting one.
# At the end every log of the run (KP_OUT, the harness logs) is scanned for
# sanitizer reports (tests/sanscan.sh); each one counts as a failed test.
# Exit 0 iff nothing failed and something passed.
set -uo pipefail
# Braces: bash reads the whole body before running it, so editing this file
# while a run is in progress cannot derail that run.
{

KP_ROOT=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
cd "$KP_ROOT" || exit 2
# shellcheck source=tests/harness/lib.sh
. "$KP_ROOT/tests/harness/lib.sh"

faults=0
cluster=0
filters=()
for a in "$@"; do
	case $a in
	--faults) faults=1 ;;
	--cluster) cluster=1 ;;
	-h | --help) sed -n '2,25s/^# \{0,1\}//p' "$0"; exit 0 ;;
	-*) echo "run.sh: unknown option $a" >&2; sed -n '5p' "$0" >&2; exit 2 ;;
	*) filters+=("$a") ;;
	esac
done

export KP_ROOT
export KP_BIN=${KP_BIN:-$KP_ROOT/bin}
export KP_TBIN=${KP_TBIN:-$KP_ROOT/build/release/tbin}
suite_timeout=${KP_SUITE_TIMEOUT:-1200}

stamp=$(date -u +%Y%m%dT%H%M%SZ)
export KP_OUT=$KP_ROOT/tests/out/$stamp
[[ -e $KP_OUT ]] && KP_OUT=$KP_OUT-$$
mkdir -p "$KP_OUT"
export KP_BG_SWEEP=$KP_OUT/.bg-pids
: >"$KP_BG_SWEEP"

# Everything printed from here on is also in run.log. tee ignores INT/TERM so
# the summary printed while handling Ctrl-C still reaches the log.
exec 3>&1 4>&2
exec > >(trap '' INT TERM; exec tee -a "$KP_OUT/run.log") 2>&1
tee_pid=$!

t_start=$(date +%s)
own_harness=0
suite_pgid=
cur_name=
pipe_pid=
passed=0 failed=0 skipped=0
summary=()
failures=()

# ---------------------------------------------------------------- cleanup

sweep_bg() {
	local pid
	while read -r pid; do
		[[ -n $pid ]] || continue
		# only a process that still leads its own group is one kp_bg started
		if kp_h_alive "$pid" && [[ $(ps -o pgid= -p "$pid" 2>/dev/null | tr -d ' ') == "$pid" ]]; then
			echo "run.sh: killing leftover background process $pid ($(tr '\0' ' ' </proc/"$pid"/cmdline 2>/dev/null | cut -c1-80))"
			kill -KILL -- "-$pid" 2>/dev/null
		fi
	done <"$KP_BG_SWEEP"
	: >"$KP_BG_SWEEP"
}

stop_suite() {
	[[ -n $suite_pgid ]] || return 0
	kill -INT -- "-$suite_pgid" 2>/dev/null
	local i
	for ((i = 0; i < 50; i++)); do
		kill -0 -- "-$suite_pgid" 2>/dev/null || break
		sleep 0.1
	done
	kill -KILL -- "-$suite_pgid" 2>/dev/null
	suite_pgid=
}

print_summary() {
	if ((${#summary[@]})); then
		echo
		echo "# ---- summary (Kafka: ${KP_KAFKA_MODE:-?})"
		printf '%-32s %6s %6s %7s %7s\n' suite passed failed skipped time
		printf '%s\n' "${summary[@]}"
	fi
	if ((${#failures[@]})); then
		echo
		echo "failures:"
		printf '  %s\n' "${failures[@]}"
	fi
}

# A sanitizer report in any log of this run is a failure, even when the test that
# started the program passed (it may only have checked the program's output).
# run.log is left out: it repeats what the suites printed, which have their own .tap.
# A reused harness is not scanned: its logs also hold the runs before this one.
scan_sanitizers() {
	local line n=0
	while IFS= read -r line; do
		[[ -n $line ]] || continue
		((n++, failed++))
		failures+=("sanitizer report in $line")
	done < <("$KP_ROOT/tests/sanscan.sh" --exclude run.log "$KP_OUT")
	((n)) || return 0
	echo "run.sh: $n sanitizer report(s) in the logs of this run, each counted as a failed test"
	summary+=("$(printf '%-32s %6d %6d %7d %6ds' "(sanitizer reports in logs)" 0 "$n" 0 0)")
}

finish() {
	local rc=$1
	trap - EXIT INT TERM
	stop_suite
	sweep_bg
	if ((own_harness)); then
		kp_h_down
		# after the shutdown, so that the logs include it (and any sanitizer report)
		mkdir -p "$KP_OUT/harness"
		cp "$KP_HARNESS_DIR/pg/log" "$KP_OUT/harness/postgresql.log" 2>/dev/null
		cp "$KP_HARNESS_DIR"/kafka/*.log "$KP_OUT/harness/" 2>/dev/null
		local b
		for b in "$KP_HARNESS_DIR"/kafka/b*/; do
			[[ -d $b ]] || continue
			mkdir -p "$KP_OUT/harness/kafka-$(basename "$b")"
			cp "$b"*.log "$KP_OUT/harness/kafka-$(basename "$b")/" 2>/dev/null
		done
		rm -rf "$KP_HARNESS_DIR"
	fi
	scan_sanitizers
	((failed && rc == 0)) && rc=1
	print_summary
	echo
	echo "logs: $KP_OUT (run.log, one .tap per suite, program logs)"
	echo "wall time: $(($(date +%s) - t_start)) s"
	local line="$passed passed, $failed failed"
	((skipped)) && line+=", $skipped skipped"
	echo "$line"
	exec 1>&3 2>&4
	wait "$tee_pid" 2>/dev/null
	exit "$rc"
}

# shellcheck disable=SC2329 # called from the INT/TERM traps
interrupted() {
	echo
	echo "run.sh: interrupted ($1); stopping the running suite and the servers"
	stop_suite
	# what the interrupted suite reported still counts, plus one failure for it
	if [[ -n $cur_name ]]; then
		wait "$pipe_pid" 2>/dev/null
		count_tap "$cur_name" "$KP_OUT/$cur_name.tap" 0 0
	fi
	((failed++))
	failures+=("${cur_name:-run}: interrupted by $1")
	finish 130
}
trap 'interrupted SIGINT' INT
trap 'interrupted SIGTERM' TERM
trap 'finish $?' EXIT

# ---------------------------------------------------------------- suites

selected() {
	local name=$1 is_fault=$2 f
	if ((${#filters[@]} == 0)); then
		((is_fault == 0 || faults)) && return 0
		return 1
	fi
	for f in "${filters[@]}"; do
		f=${f##*/} # tests/integration/x.bats or build/.../test_x name the same suite
		[[ $name == *"$f"* ]] || continue
		# `tests/run.sh faults_long` names a long suite; a broad filter alone does not
		((is_fault == 0 || faults)) && return 0
		[[ $f == *_long* ]] && return 0
	done
	return 1
}

suites=()
cluster_suites=()
# --cluster without FILTERs: the cluster suites alone
if ((cluster == 0 || ${#filters[@]})); then
	if [[ -d $KP_TBIN ]]; then
		for b in "$KP_TBIN"/test_*; do
			[[ -f $b && -x $b ]] || continue
			selected "$(basename "$b")" 0 && suites+=("cmocka:$b")
		done
	fi
	for f in "${KP_BATS_DIR:-tests/integration}"/*.bats; do
		[[ -f $f ]] || continue
		n=$(basename "$f")
		[[ $n == cluster*.bats ]] && continue
		is_fault=0
		# *_long.bats: the several-minute campaigns, too long for every run
		[[ $n == *_long.bats ]] && is_fault=1
		selected "$n" "$is_fault" && suites+=("bats:$f")
	done
fi
# A cluster suite runs with --cluster, or when FILTERs name it (then the run
# becomes a cluster run if they name nothing else).
for f in "${KP_BATS_DIR:-tests/integration}"/cluster*.bats; do
	[[ -f $f ]] || continue
	n=$(basename "$f")
	is_fault=0
	# cluster_*_long.bats: the long cluster campaign, with --faults or named only
	[[ $n == *_long.bats ]] && is_fault=1
	if { ((cluster && ${#filters[@]} == 0)) && ((is_fault == 0 || faults)); } ||
		{ ((${#filters[@]})) && selected "$n" "$is_fault"; }; then
		cluster_suites+=("bats:$f")
	fi
done
if ((${#cluster_suites[@]})); then
	if ((cluster == 0 && ${#suites[@]})); then
		echo "run.sh: the cluster suites (${cluster_suites[*]#bats:}) need --cluster; not run with the others"
	else
		cluster=1
		suites+=("${cluster_suites[@]}")
	fi
fi

if ((${#suites[@]} == 0)); then
	echo "run.sh: no test suite matched (KP_TBIN=$KP_TBIN, filters: ${filters[*]:-none})"
	finish 1
fi

# ---------------------------------------------------------------- harness

banner() {
	echo "================================================================"
	echo "  $*"
	echo "================================================================"
}

if [[ -n ${KP_HARNESS_DIR:-} && -r $KP_HARNESS_DIR/env ]]; then
	# shellcheck disable=SC1091
	. "$KP_HARNESS_DIR/env"
	echo "run.sh: using the running harness in $KP_HARNESS_DIR"
	if ((cluster && ${KP_KAFKA_NODES:-1} < 3)); then
		echo "run.sh: --cluster (or a cluster suite) needs a 3-node harness; $KP_HARNESS_DIR has ${KP_KAFKA_NODES:-1} Kafka node(s)"
		((failed++))
		finish 1
	fi
else
	if [[ $(id -u) != 0 ]]; then
		echo "run.sh: must run as root (the harness runs PostgreSQL as user postgres)"
		((failed++))
		finish 1
	fi
	KP_HARNESS_DIR=$(mktemp -d "${TMPDIR:-/tmp}/kp-harness.XXXXXX")
	export KP_HARNESS_DIR
	((cluster)) && export KP_KAFKA_CLUSTER=3
	own_harness=1
	kp_h_watchdog $$ 1
	if ! kp_h_up; then
		echo "run.sh: the test harness did not start (see messages above)"
		failures+=("harness start-up")
		((failed++))
		finish 1
	fi
	# shellcheck disable=SC1091
	. "$KP_HARNESS_DIR/env"
fi
export KP_HARNESS_DIR DATABASE_URL KAFKA_BROKERS KP_PG_PORT KP_KAFKA_MODE KP_KAFKA_NODES

case ${KP_KAFKA_MODE:-} in
real) banner "Kafka broker: REAL $(kp_h_kafka_version) at $KAFKA_BROKERS" ;;
mock) banner "Kafka broker: librdkafka MOCK cluster (NOT a real broker: Kafka jars unavailable or KP_KAFKA=mock) at $KAFKA_BROKERS" ;;
*) banner "Kafka broker: unknown mode '${KP_KAFKA_MODE:-}' at ${KAFKA_BROKERS:-?}" ;;
esac
echo "PostgreSQL: $(kp_h_pg_version) at $DATABASE_URL"
echo "KP_BIN=$KP_BIN KP_TBIN=$KP_TBIN KP_OUT=$KP_OUT"

# Counts one suite's TAP file into the totals.
count_tap() {
	local name=$1 tap=$2 rc=$3 secs=$4
	local p=0 f=0 s=0 plan=0 line
	while IFS= read -r line; do
		case $line in
		"not ok "*)
			if [[ ${line,,} == *"# todo"* || ${line,,} == *"# skip"* ]]; then
				((s++))
			else
				((f++))
				failures+=("$name: ${line#not ok }")
			fi
			;;
		"ok "*)
			if [[ ${line,,} == *"# skip"* ]]; then ((s++)); else ((p++)); fi
			;;
		1..[0-9]*)
			line=${line#1..}
			line=${line%%[!0-9]*}
			((plan += line))
			;;
		esac
	done <"$tap"
	local results=$((p + f + s))
	if ((f == 0 && rc != 0)); then
		f=1
		if ((rc == 124 || rc == 137)); then
			failures+=("$name: timed out after ${suite_timeout}s")
		else
			failures+=("$name: exited with status $rc without a failing TAP line (crash?)")
		fi
	elif ((f == 0 && results < plan)); then
		f=1
		failures+=("$name: only $results of $plan planned tests reported")
	elif ((results == 0 && f == 0)); then
		f=1
		failures+=("$name: no TAP result at all")
	fi
	((passed += p, failed += f, skipped += s))
	summary+=("$(printf '%-32s %6d %6d %7d %6ds' "$name" "$p" "$f" "$s" "$secs")")
}

for s in "${suites[@]}"; do
	kind=${s%%:*}
	path=${s#*:}
	name=$(basename "$path")
	tap=$KP_OUT/$name.tap
	rcfile=$KP_OUT/.$name.rc
	pidfile=$KP_OUT/.$name.pid
	rm -f "$rcfile" "$pidfile"
	cur_name=$name
	echo
	echo "# ---- $name ($kind)"
	if [[ $kind == cmocka ]]; then
		cmd=(env CMOCKA_MESSAGE_OUTPUT=TAP "$path")
	else
		cmd=(bats --tap ${KP_BATS_FILTER:+--filter "$KP_BATS_FILTER"} "$path")
	fi
	t0=$(date +%s)
	# Each suite runs in its own process group (setsid) so that Ctrl-C and the
	# timeout end it and everything it started, without touching run.sh.
	# shellcheck disable=SC2016
	setsid bash -c 'echo $$ >"$0"; rcf=$1; shift
		timeout --foreground -k 10 "$@"; echo $? >"$rcf"' \
		"$pidfile" "$rcfile" "$suite_timeout" "${cmd[@]}" </dev/null 2>&1 | tee "$tap" &
	pipe_pid=$!
	for ((i = 0; i < 100; i++)); do [[ -s $pidfile ]] && break; sleep 0.02; done
	suite_pgid=$(cat "$pidfile" 2>/dev/null)
	# for the watchdog, should run.sh itself be killed
	((own_harness)) && echo "$suite_pgid" >"$KP_HARNESS_DIR/suite_pgid"
	wait "$pipe_pid"
	rc=$(cat "$rcfile" 2>/dev/null || echo 255)
	# anything the suite left running in its group goes now
	kill -KILL -- "-$suite_pgid" 2>/dev/null
	suite_pgid=
	sweep_bg
	rm -f "$rcfile" "$pidfile"
	cur_name=
	count_tap "$name" "$tap" "$rc" $(($(date +%s) - t0))
done

if ((failed == 0 && passed > 0)); then
	finish 0
else
	finish 1
fi
}

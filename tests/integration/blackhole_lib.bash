# shellcheck shell=bash
# PostgreSQL behind tests/harness/blackhole (load after helpers): a proxy that can stop
# answering while still accepting connections, as a hung server or a network that
# drops packets looks to a client.

# bh_start → the proxy in front of the harness PostgreSQL, forwarding. Sets BH_PID,
# BH_PORT, BH_STATE (the file the proxy writes its mode to).
bh_start() {
	local dir
	dir=$(mktemp -d "$BATS_TEST_TMPDIR/bh.XXXX")
	kp_bg blackhole "$KP_ROOT/tests/harness/blackhole" --upstream "127.0.0.1:$KP_PG_PORT" \
		--port-file "$dir/port" --state-file "$dir/state"
	BH_PID=$BG_PID
	BH_STATE=$dir/state
	kp_wait_for 10 test -s "$dir/port"
	BH_PORT=$(cat "$dir/port")
}

# bh_url URL → the same database URL through the proxy.
bh_url() { sed "s/127\.0\.0\.1:$KP_PG_PORT/127.0.0.1:$BH_PORT/" <<<"$1"; }

bh_mode_is() { [[ $(cat "$BH_STATE" 2>/dev/null) == "$1" ]]; }
bh_hole() { kill -USR1 "$BH_PID" && kp_wait_for 5 bh_mode_is hole; }
bh_forward() { kill -USR2 "$BH_PID" && kp_wait_for 5 bh_mode_is forward; }

# bh_stop_within SECONDS PID → SIGTERM, then fails unless PID exits within SECONDS
# (it is killed then). Prints the time it took to fd 3.
bh_stop_within() {
	local limit=$1 pid=$2 t0 ms rc=0
	t0=$(date +%s%3N)
	kill -TERM "$pid"
	while kp__alive "$pid" && (($(date +%s%3N) - t0 < limit * 1000)); do sleep 0.05; done
	ms=$(($(date +%s%3N) - t0))
	if kp__alive "$pid"; then
		echo "# pid $pid still running ${ms} ms after SIGTERM" >&3
		kill -KILL "$pid" 2>/dev/null || true
		wait "$pid" 2>/dev/null || true
		return 1
	fi
	wait "$pid" 2>/dev/null || rc=$?
	echo "# exited ${ms} ms after SIGTERM (status $rc)" >&3
	return 0
}

#!/usr/bin/env bats
# The system proof (issue 8): all four programs as separate processes, real Kafka,
# real PostgreSQL, kline-sim as the exchange, under a seeded random sequence of faults
# (kill -9 of each program, Kafka killed and SIGSTOPped, PostgreSQL stopped and
# SIGSTOPped, every exchange fault knob), then everything compared with the exchange's
# truth. Driver: tests/faults/campaign.py; docs/faults.md.
#
# Short by default (~4 min: 3 real minutes of exchange time, 20 symbols, each fault
# once). The full run: KP_FAULTS_MINUTES=10 make test-faults (50 symbols, every
# program killed 3 times, ~12 min). KP_FAULTS_SEED=N replays a schedule.

load helpers

setup_file() {
	[[ $KP_KAFKA_MODE == real ]] || skip "needs the real Kafka broker (KP_KAFKA_MODE=$KP_KAFKA_MODE)"
}

@test "faults: the pipeline loses, doubles and corrupts nothing under a fault campaign" {
	[[ $KP_KAFKA_MODE == real ]] || skip "needs the real Kafka broker"
	local minutes=${KP_FAULTS_MINUTES:-3} out rc=0
	local rounds symbols
	rounds=$(awk -v m="$minutes" 'BEGIN { r = int(m / 3); print (r < 1 ? 1 : r) }')
	symbols=$(awk -v m="$minutes" 'BEGIN { print (m >= 8 ? 50 : 20) }')
	out=$KP_OUT/faults-campaign
	python3 "$KP_ROOT/tests/faults/campaign.py" --minutes "$minutes" --symbols "$symbols" \
		--rounds "$rounds" --out "$out" >"$KP_OUT/faults-campaign.log" 2>&1 || rc=$?
	# the table (and the schedule) go to the TAP stream as comments, pass or fail
	sed 's/^/# /' "$KP_OUT/faults-campaign.log" >&3
	[[ -s $out/result.json ]] || { echo "campaign produced no result (exit $rc)"; tail -30 "$KP_OUT/faults-campaign.log"; return 1; }
	local r=$out/result.json
	# every fault kind was actually injected (a fault that failed to inject is not a pass)
	run jq -r '.injected | length' "$r"
	[ "$output" -eq 18 ]
	run jq -r '.skipped | length' "$r"
	[ "$output" -eq 0 ]
	for cell in missing doubled wrong extra bars_missing bars_wrong bars_extra kafka_missing streamer_stale final_lag agg_once_rc; do
		run jq -r ".$cell" "$r"
		echo "$cell = $output"
		[ "$output" = 0 ]
	done
	run jq -r '.expected' "$r"
	[ "$output" -gt 0 ]
	run jq -r '.in_db == .expected and .bars_written == .bars_expected' "$r"
	[ "$output" = true ]
	# every bad message the exchange sent is in `rejected`, once
	run jq -r '.rejected_rows == (.malformed_sent + .oversized_sent)' "$r"
	[ "$output" = true ]
	run jq -r '.crashes | length' "$r"
	[ "$output" -eq 0 ]
	# SIGTERM at the end: every program flushed and exited 0
	run jq -c '.exit_codes' "$r"
	echo "exit codes: $output"
	run jq -r '[.exit_codes[] | select(. != 0)] | length' "$r"
	[ "$output" -eq 0 ]
	[ "$rc" -eq 0 ]
}

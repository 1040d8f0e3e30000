# shellcheck shell=bash
# Shared by faults.bats (short campaign, every `make test`) and faults_long.bats (the
# 2,000-symbol campaigns of `make test-faults`): run tests/faults/campaign.py and assert
# every cell of its truth table.

# faults_campaign NAME MINUTES SYMBOLS SPEED ROUNDS [EXTRA CAMPAIGN ARGS...]
faults_campaign() {
	local name=$1 minutes=$2 symbols=$3 speed=$4 rounds=$5
	shift 5
	# the table (and the schedule) go to the TAP stream as comments, pass or fail
	faults_run "$name" "$minutes" "$symbols" "$speed" "$rounds" "$@"
	faults_assert "$RESULT" "$rounds" "${FAULTS_KINDS:-18}"
	[ "$FAULTS_RC" -eq 0 ]
}

# faults_tables_ok RESULT_JSON → kline_1s and kline_1m equal the truth (0 missing, 0
# doubled, 0 wrong, 0 extra), Kafka holds every kline, the streamer ends at the last second.
faults_tables_ok() {
	local r=$1 cell v
	for cell in missing doubled wrong extra bars_missing bars_wrong bars_extra kafka_missing streamer_stale final_lag agg_once_rc; do
		v=$(jq -r ".$cell" "$r")
		echo "$cell = $v"
		[ "$v" = 0 ]
	done
	[ "$(jq -r '.expected' "$r")" -gt 0 ]
	[ "$(jq -r '.in_db == .expected and .bars_written == .bars_expected' "$r")" = true ]
}

# faults_run NAME MINUTES SYMBOLS SPEED ROUNDS [CAMPAIGN ARGS...] → runs the campaign,
# its table to the TAP stream; RESULT is its result.json. Fails if it wrote none.
faults_run() {
	local name=$1 minutes=$2 symbols=$3 speed=$4 rounds=$5
	shift 5
	local out=$KP_OUT/$name
	FAULTS_RC=0
	python3 "$KP_ROOT/tests/faults/campaign.py" --minutes "$minutes" --symbols "$symbols" \
		--speed "$speed" --rounds "$rounds" --out "$out" "$@" >"$KP_OUT/$name.log" 2>&1 || FAULTS_RC=$?
	sed 's/^/# /' "$KP_OUT/$name.log" >&3
	RESULT=$out/result.json
	[[ -s $RESULT ]] || { echo "campaign produced no result (exit $FAULTS_RC)"; tail -30 "$KP_OUT/$name.log"; return 1; }
}

# faults_assert RESULT_JSON ROUNDS [KINDS] → every fault kind (18; 9 with --cluster)
# injected, none skipped, every cell 0. FAULTS_KINDS sets KINDS for faults_campaign.
faults_assert() {
	local r=$1 rounds=$2 want=${3:-18} kinds
	# every fault kind was actually injected (a fault that failed to inject is not a pass)
	kinds=$(jq -r '.injected | length' "$r")
	echo "fault kinds injected: $kinds ($(jq -c .injected "$r"))"
	[ "$kinds" -eq "$want" ]
	# nothing skipped: every planned fault (ROUNDS times each) went in
	[ "$(jq -r '.skipped | length' "$r")" -eq 0 ]
	faults_tables_ok "$r"
	# every bad message the exchange sent is in `rejected`, once
	[ "$(jq -r '.rejected_rows == (.malformed_sent + .oversized_sent)' "$r")" = true ]
	[ "$(jq -r '.crashes | length' "$r")" -eq 0 ]
	# SIGTERM at the end: every program flushed and exited 0
	echo "exit codes: $(jq -c '.exit_codes' "$r")"
	[ "$(jq -r '[.exit_codes[] | select(. != 0)] | length' "$r")" -eq 0 ]
	# the run drained, and said how long it took
	[ "$(jq -r '.drain_secs != null' "$r")" = true ]
}

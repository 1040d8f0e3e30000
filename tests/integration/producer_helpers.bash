# shellcheck shell=bash
# Shared by tests/integration/producer*.bats: start the producer against kline-sim and
# compare what reached Kafka (or stdout) with the exchange's truth.

# Fields that must match the exchange exactly. source/event_time differ by origin, and
# REST /api/v3/klines rows carry no trade ids (-1 in backfilled klines), so trade ids are
# compared separately, for the klines that came over the WebSocket (P_PROJ_IDS).
P_PROJ='[.symbol,.open_time,.close_time,.open,.high,.low,.close,.volume,.quote_volume,.trades,.taker_buy_volume,.taker_buy_quote_volume,.closed]'
P_PROJ_IDS='[.symbol,.open_time,.first_trade_id,.last_trade_id]'

# p_producer NAME ARGS... → kline-producer in the background against the sim.
p_producer() {
	local name=$1
	shift
	kp_bg "$name" "$KP_BIN/kline-producer" --ws-url "$SIM_WS_URL" --rest-url "$SIM_URL" \
		--stats-interval 5 "$@"
	PROD_PID=$BG_PID
}

p_sim_start_ms() { curl -fsS "$SIM_URL/control/stats" | jq -r .start_ms; }
p_sim_stat() { curl -fsS "$SIM_URL/control/stats" | jq -r ".$1"; }

# p_count_ge TOPIC N → succeeds once the topic holds at least N messages.
p_count_ge() { local n; n=$(kp_topic_count "$1") && ((n >= $2)); }

# p_sim_done → succeeds once the sim generated all of --duration.
p_sim_done() {
	local st
	st=$(curl -fsS "$SIM_URL/control/stats") || return 1
	[[ $(jq -r '.latest_open_time - .start_ms' <<<"$st") -ge $((($1 - 1) * 1000)) ]]
}

# p_truth → the exchange's klines, projected and sorted, into $BATS_TEST_TMPDIR/truth.
p_truth() {
	curl -fsS "$SIM_URL/truth" | jq -c "$P_PROJ" | LC_ALL=C sort >"$BATS_TEST_TMPDIR/truth"
}

# p_check_values FILE → FILE (one record per line) equals the truth: nothing missing,
# nothing invented, nothing twice. Prints a diff excerpt on failure.
p_check_values() {
	local f=$1 d=$BATS_TEST_TMPDIR
	p_truth
	jq -c "$P_PROJ" <"$f" | LC_ALL=C sort >"$d/got"
	local dups
	dups=$(uniq -d "$d/got" | wc -l)
	if ((dups > 0)); then
		echo "$dups klines published twice, e.g.:"
		uniq -d "$d/got" | head -3
		return 1
	fi
	if ! diff -q "$d/truth" "$d/got" >/dev/null; then
		echo "topic differs from the truth: $(wc -l <"$d/truth") expected, $(wc -l <"$d/got") got"
		echo "missing (first 5):"
		LC_ALL=C comm -23 "$d/truth" "$d/got" | head -5
		echo "not in the truth (first 5):"
		LC_ALL=C comm -13 "$d/truth" "$d/got" | head -5
		return 1
	fi
	# klines from the stream keep their trade ids
	curl -fsS "$SIM_URL/truth" | jq -c "$P_PROJ_IDS" | LC_ALL=C sort >"$d/truth_ids"
	jq -c "select(.source == \"ws\") | $P_PROJ_IDS" <"$f" | LC_ALL=C sort >"$d/got_ids"
	if [[ -n $(LC_ALL=C comm -13 "$d/truth_ids" "$d/got_ids") ]]; then
		echo "ws klines with wrong trade ids:"
		LC_ALL=C comm -13 "$d/truth_ids" "$d/got_ids" | head -3
		return 1
	fi
}

# p_check_topic TOPIC → keys are the symbols, values equal the truth.
p_check_topic() {
	local topic=$1 d=$BATS_TEST_TMPDIR
	kcat -C -b "$KAFKA_BROKERS" -t "$topic" -e -q -f '%k\t%s\n' >"$d/raw"
	cut -f1 "$d/raw" >"$d/keys"
	cut -f2- "$d/raw" >"$d/values"
	jq -r .symbol <"$d/values" >"$d/syms"
	diff -q "$d/keys" "$d/syms" >/dev/null || { echo "a message key is not its symbol"; return 1; }
	p_check_values "$d/values"
}

# p_order_ok TOPIC → within each symbol, open_time strictly increases in topic order.
p_order_ok() {
	kcat -C -b "$KAFKA_BROKERS" -t "$1" -e -q -f '%s\n' |
		jq -r '[.symbol, .open_time] | @tsv' |
		awk -F'\t' '($1 in last) && $2 <= last[$1] { print "out of order: " $0 " after " last[$1]; bad=1 } { last[$1]=$2 } END { exit bad }'
}

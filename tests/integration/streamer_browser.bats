#!/usr/bin/env bats
# The page kline-streamer serves, in Debian's chromium (playwright-core, no browser
# download): simulated exchange → kline-producer -o - → kline-streamer -i - → browser.

bats_require_minimum_version 1.5.0
load helpers
load streamer_helpers

setup() {
	st_node_ready
	[[ -x /usr/bin/chromium ]] || skip "chromium is not installed"
	[[ -f $KP_ROOT/web/dist/index.html ]] || skip "web/dist missing: run make web"
}

# page URL SYMBOL PRICE SHOT → runs tests/browser/page.js
page() {
	NODE_PATH=$ST_NODE_MODULES node "$KP_ROOT/tests/browser/page.js" "$@"
}

@test "streamer browser: sim → producer → streamer → page shows the exchange's last price, candles, badge" {
	kp_sim_start --symbols BTCUSDT,ETHUSDT,BNBUSDT --duration 40
	ST_PORT=$(kp_free_port)
	ST_URL=http://127.0.0.1:$ST_PORT
	tap=$BATS_TEST_TMPDIR/pipe.ndjson
	kp_bg pipeline bash -c "'$KP_BIN/kline-producer' -s BTCUSDT,ETHUSDT,BNBUSDT -o - \
		--ws-url '$SIM_WS_URL' --rest-url '$SIM_URL' --stats-interval 0 2>>'$KP_OUT/kline-producer.log' \
		| tee '$tap' | '$KP_BIN/kline-streamer' -i - --listen 127.0.0.1:$ST_PORT --badge 'simulated market' \
		--stats-interval 0"
	kp_wait_for 15 curl -fsS -o /dev/null "$ST_URL/healthz"
	# the exchange stops after 40 simulated seconds; then its last klines drain through the pipe
	truth_url="$SIM_URL/truth?symbol=BTCUSDT&from=0&to=9999999999999"
	kp_wait_for 90 bash -c "[ \"\$(curl -fsS '$truth_url' | wc -l)\" -ge 40 ]"
	kp_wait_for 20 bash -c "[ \"\$(grep -c '\"symbol\":\"BTCUSDT\"' '$tap')\" -ge 35 ]"
	sleep 3
	n=$(grep -c '"symbol":"BTCUSDT"' "$tap")
	lastrec=$(grep '"symbol":"BTCUSDT"' "$tap" | tail -1)
	last=$(jq -r .close <<<"$lastrec")
	# that is the exchange's own kline for that second (its truth)
	truth=$(curl -fsS "$truth_url" | jq -r --argjson t "$(jq .open_time <<<"$lastrec")" 'select(.open_time == $t) | .close')
	[ "$last" = "$truth" ]
	KP_EXPECT_BADGE="simulated market" run page "$ST_URL/" BTCUSDT "$last" "$KP_OUT/streamer-page.png"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ $output == *"ok - sidebar shows the last price"* ]]
	[[ $output == *"ok - screenshot saved"* ]]
	[[ $output != *"not ok"* ]]
	[ -s "$KP_OUT/streamer-page.png" ]
	[ "$n" -ge 35 ]
}

@test "streamer browser: history from /api/klines with the SMA, live candles on top" {
	db=$(kp_db_new)
	st_schema "$db"
	hist=$BATS_TEST_TMPDIR/hist.ndjson
	"$KP_TBIN/kp-klinegen" --symbols 8 --seconds 7200 >"$hist"
	st_history "$db" "$hist"
	fifo=$(st_fifo)
	live=$BATS_TEST_TMPDIR/live.ndjson
	KP_SIMULATED=1 st_start -i "$fifo" -d "$db"
	st_feed "$fifo" "'$KP_TBIN/kp-klinegen' --symbols 8 --realtime --skip 7200 --duration 12 | tee '$live'"
	kp_wait_for 30 bash -c "[ \"\$(grep -c '\"symbol\":\"ETHUSDT\"' '$live')\" -ge 12 ]"
	sleep 1
	run page "$ST_URL/" ETHUSDT "$(st_last_close "$live" ETHUSDT)" "$KP_OUT/streamer-page-history.png"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ $output != *"not ok"* ]]
	# 2 hours of 1m history
	[[ $output =~ has\ (1[0-9][0-9])\ candles\ \(1m\) ]]
}

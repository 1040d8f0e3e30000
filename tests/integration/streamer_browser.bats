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

# The whole pipeline behind the page, on stdin pipes: 6 h of history from a second
# simulated exchange with the same seed (its prices join the live ones without a jump),
# backfilled through the producer into the inserter; the live exchange → producer →
# inserter (database) and → streamer; the aggregator writes every interval.
@test "streamer browser: every interval with volume, no hole after a WebSocket drop, URL state, keyboard, moving prices" {
	syms=BTCUSDT,ETHUSDT,SOLUSDT
	hist_secs=21600
	db=$(kp_db_new)
	st_schema "$db"
	live0=$(($(date +%s) * 1000))
	kp_sim_start --symbols $syms --seed 42 --start-time $((live0 - hist_secs * 1000)) --duration $hist_secs --speed 100000
	hist_url=$SIM_URL
	kp_sim_start --symbols $syms --seed 42 --start-time $live0
	kp_wait_for 20 bash -c "curl -fsS '$hist_url/control/stats' | jq -e '.generated_seconds == $hist_secs'"
	"$KP_BIN/kline-producer" -s $syms --rest-url "$hist_url" --backfill "$((live0 - hist_secs * 1000))..$((live0 - 1000))" \
		-o - --stats-interval 0 2>"$KP_OUT/producer-backfill.log" |
		"$KP_BIN/kline-inserter" -i - -d "$db" --stats-interval 0 2>"$KP_OUT/inserter-backfill.log"
	[ "$(kp_psql "$db" "select count(*) from kline_1s")" -eq $((3 * hist_secs)) ]
	kp_bg aggregator "$KP_BIN/kline-aggregator" -d "$db" --every 2 -i 1m,5m,15m,1h,4h,1d --stats-interval 0
	mkfifo "$BATS_TEST_TMPDIR/ins.fifo"
	kp_bg inserter "$KP_BIN/kline-inserter" -i "$BATS_TEST_TMPDIR/ins.fifo" -d "$db" --flush-ms 100 --stats-interval 0
	ST_PORT=$(kp_free_port)
	ST_URL=http://127.0.0.1:$ST_PORT
	kp_bg pipeline bash -c "'$KP_BIN/kline-producer' -s $syms -o - --since $live0 \
		--ws-url '$SIM_WS_URL' --rest-url '$SIM_URL' --stats-interval 0 2>>'$KP_OUT/kline-producer.log' \
		| tee '$BATS_TEST_TMPDIR/ins.fifo' | '$KP_BIN/kline-streamer' -i - -d '$db' --listen 127.0.0.1:$ST_PORT \
		--badge 'simulated market' --stats-interval 0"
	kp_wait_for 15 curl -fsS -o /dev/null "$ST_URL/healthz"
	# history is rolled up (the aggregator's first pass) and live seconds reach the database
	kp_wait_for 60 bash -c "[ \"\$(curl -fsS '$ST_URL/api/klines?symbol=BTCUSDT&interval=1h' | jq length)\" -ge 5 ]"
	kp_wait_for 30 bash -c "curl -fsS '$ST_URL/api/klines?symbol=BTCUSDT&interval=1s&limit=1' | jq -e '.[0].open_time >= $live0 + 5000'"
	KP_EXPECT_BADGE="simulated market" run page "$ST_URL/" BTCUSDT - "$KP_OUT/streamer-page-full.png" --full
	echo "$output"
	[ "$status" -eq 0 ]
	[[ $output != *"not ok"* ]]
	for iv in 1s 1m 5m 15m 1h 4h 1d; do [[ $output == *"ok - $iv: "* ]]; done
	[[ $output == *"ok - volume histogram"* && $output == *"ok - reconnect: "* && $output == *"ok - keyboard: "* ]]
	[[ $output == *"ok - 1m % is nonzero"* && $output == *"opens ETHUSDT 15m"* && $output == *"Back returns to 15m"* ]]
	[ -s "$KP_OUT/streamer-page-full.png" ]
	# no price jump where the history ends and the live exchange begins (equal prices when
	# the last history second traded; else a second's move apart, far below 0.2 %)
	run -0 kp_psql "$db" "select count(*), count(*) filter (where abs(b.open - a.close) > a.close * 0.002
		or (a.trades > 0 and b.open <> a.close)) from kline_1s a
		join kline_1s b on a.symbol = b.symbol and b.open_time = a.open_time + interval '1 s'
		where a.open_time = 'epoch'::timestamptz + $((live0 - 1000)) * interval '1 ms'"
	[ "$output" = "3|0" ]
}

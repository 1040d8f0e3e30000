#!/usr/bin/env bats
# kline-streamer /api/klines against a real PostgreSQL: results, parameters, hostile input,
# database down, and the service loop staying responsive while a query hangs.

bats_require_minimum_version 1.5.0
load helpers
load streamer_helpers

setup() {
	GEN=$KP_TBIN/kp-klinegen
	DB=$(kp_db_new)
	st_schema "$DB"
	HIST=$BATS_TEST_TMPDIR/hist.ndjson
	# 3 symbols, 10 whole minutes of 1s klines starting at a minute boundary
	T0=$(( ($(date +%s) / 60 - 30) * 60000 ))
	"$GEN" --symbols 3 --seconds 600 --start "$T0" >"$HIST"
	st_history "$DB" "$HIST"
	"$GEN" --symbols 1 --seconds 1 >"$BATS_TEST_TMPDIR/feed.ndjson"
}

api() { curl -sS -w '\n%{http_code}' "$ST_URL/api/klines?$1"; }

@test "streamer api: 1m bars in time order, canonical records, from/to/limit" {
	st_start -i "$BATS_TEST_TMPDIR/feed.ndjson" -d "$DB"
	run -0 curl -fsS "$ST_URL/api/klines?symbol=BTCUSDT&interval=1m"
	[ "$(jq length <<<"$output")" -eq 10 ]
	jq -e --argjson t0 "$T0" '.[0].open_time == $t0 and .[0].close_time == $t0 + 59999 and .[0].interval == "1m"
		and .[0].row_count == 60 and .[0].symbol == "BTCUSDT" and (.[0].open | type) == "string"' <<<"$output"
	jq -e '[.[].open_time] == ([.[].open_time] | sort)' <<<"$output"
	# the first bar's open and last bar's close are the 1s data's, exactly (numeric scale kept)
	[ "$(jq -r '.[0].open' <<<"$output")" = "$(grep '"symbol":"BTCUSDT"' "$HIST" | head -1 | jq -r .open)" ]
	[ "$(jq -r '.[9].close' <<<"$output")" = "$(st_last_close "$HIST" BTCUSDT)" ]
	# lower case symbol accepted; default interval is 1m; limit gives the newest N
	run -0 curl -fsS "$ST_URL/api/klines?symbol=btcusdt&limit=3"
	jq -e --argjson t0 "$T0" 'length == 3 and .[2].open_time == $t0 + 540000 and .[0].open_time == $t0 + 420000' <<<"$output"
	# from: the first N from there; to: inclusive upper bound
	run -0 curl -fsS "$ST_URL/api/klines?symbol=ETHUSDT&interval=1m&from=$((T0 + 60000))&limit=2"
	jq -e --argjson t0 "$T0" 'length == 2 and .[0].open_time == $t0 + 60000 and .[1].open_time == $t0 + 120000' <<<"$output"
	run -0 curl -fsS "$ST_URL/api/klines?symbol=ETHUSDT&interval=1m&from=$T0&to=$((T0 + 120000))"
	[ "$(jq length <<<"$output")" -eq 3 ]
	# 1s rows are the canonical records the feed had, field for field
	run -0 curl -fsS "$ST_URL/api/klines?symbol=BNBUSDT&interval=1s&from=$T0&limit=5"
	[ "$(jq -c '.[4]' <<<"$output")" = "$(grep '"symbol":"BNBUSDT"' "$HIST" | sed -n 5p)" ]
	# coarser tables exist but are empty here; unknown symbol → empty array
	run -0 curl -fsS "$ST_URL/api/klines?symbol=BTCUSDT&interval=1h"
	[ "$output" = "[]" ]
	run -0 curl -fsS "$ST_URL/api/klines?symbol=NOPE&interval=1m"
	[ "$output" = "[]" ]
	# huge limits are capped at 5000
	run -0 curl -fsS "$ST_URL/api/klines?symbol=BTCUSDT&interval=1s&limit=100000"
	[ "$(jq length <<<"$output")" -eq 600 ]
}

@test "streamer api: hostile and bad parameters → 400 with a JSON error, tables intact" {
	st_start -i "$BATS_TEST_TMPDIR/feed.ndjson" -d "$DB"
	for q in \
		"symbol=BTCUSDT'%3B%20DROP%20TABLE%20kline_1m%3B--" \
		"symbol=BTCUSDT%27%20OR%20%271%27%3D%271" \
		"symbol=BTCUSDT&interval=kline_1m" \
		"symbol=BTCUSDT&interval=1m%3B%20DELETE%20FROM%20kline_1s" \
		"symbol=BTCUSDT&interval=2m" \
		"symbol=BTCUSDT&interval=" \
		"symbol=BTCUSDT&limit=99999999999999999999" \
		"symbol=BTCUSDT&limit=0" \
		"symbol=BTCUSDT&limit=-5" \
		"symbol=BTCUSDT&limit=10abc" \
		"symbol=BTCUSDT&from=yesterday" \
		"symbol=BTCUSDT&from=1e12" \
		"symbol=BTCUSDT&to=-1" \
		"symbol=BTCUSDT&from=2000&to=1000" \
		"symbol=BTCUSDT&symbol=ETHUSDT" \
		"symbol=BTCUSDT&evil=1" \
		"symbol=" \
		"symbol=ABCDEFGHIJKLMNOPQRSTUVWXYZ" \
		"interval=1m" \
		"" \
		"symbol=BTCUSDT&from=$(printf '9%.0s' {1..300})"; do
		run -0 api "$q"
		code=$(tail -1 <<<"$output")
		body=$(head -1 <<<"$output")
		[ "$code" = 400 ] || { echo "$q → $code $body"; false; }
		jq -e '.error | type == "string" and length > 5' <<<"$body" >/dev/null || { echo "$q → $body"; false; }
	done
	[ "$(kp_psql "$DB" 'select count(*) from kline_1m')" -eq 30 ]
	[ "$(kp_psql "$DB" 'select count(*) from kline_1s')" -eq 1800 ]
	# and a good request still works on the same server
	run -0 curl -fsS "$ST_URL/api/klines?symbol=BTCUSDT"
	[ "$(jq length <<<"$output")" -eq 10 ]
}

@test "streamer api: no database → 503 with a JSON error; the rest keeps working" {
	port=$(kp_free_port)
	st_start -i "$BATS_TEST_TMPDIR/feed.ndjson" -d "postgresql://postgres@127.0.0.1:$port/none?connect_timeout=2"
	run -0 api "symbol=BTCUSDT"
	[ "$(tail -1 <<<"$output")" = 503 ]
	head -1 <<<"$output" | jq -e '.error == "database unavailable"'
	run -0 curl -fsS "$ST_URL/healthz"
	# migrations not applied: a clear 503 too
	empty=$(kp_db_new)
	kp_stop "$ST_PID"
	st_start -i "$BATS_TEST_TMPDIR/feed.ndjson" -d "$empty"
	run -0 api "symbol=BTCUSDT"
	[ "$(tail -1 <<<"$output")" = 503 ]
	[[ $output == *"does not exist"* ]]
}

@test "streamer api: a hung database does not stall WebSocket clients or other endpoints" {
	st_start -i "$BATS_TEST_TMPDIR/feed.ndjson" -d "$DB"
	run -0 curl -fsS "$ST_URL/api/klines?symbol=BTCUSDT" # the worker is connected now
	kp_pg_pause
	curl -sS -m 30 "$ST_URL/api/klines?symbol=BTCUSDT" >"$BATS_TEST_TMPDIR/hung.out" 2>&1 &
	hung=$!
	sleep 0.5
	t0=$(date +%s%3N)
	run -0 curl -fsS -m 5 "$ST_URL/healthz"
	run -0 st_ws --send '{"op":"ping"}' --until pong --duration 5
	t1=$(date +%s%3N)
	kp_pg_resume
	wait "$hung" || true
	((t1 - t0 < 5000))
	# once the database is back the hung query completes
	jq -e 'length == 10' "$BATS_TEST_TMPDIR/hung.out"
}

@test "streamer api: the SMA of a new symbol is seeded from kline_1m, so it is there at once" {
	# live klines for the minute right after the history's 10 minutes
	live=$BATS_TEST_TMPDIR/live.ndjson
	"$GEN" --symbols 3 --seconds 5 --start $((T0 + 600000)) >"$live"
	st_start -i "$live" -d "$DB" --sma 4
	want=$(kp_psql "$DB" "select avg(close::float8) from (select close from kline_1m where symbol = 'ETHUSDT' order by open_time desc limit 4) x")
	kp_wait_for 10 bash -c "NODE_PATH='$ST_NODE_MODULES' node '$KP_ROOT/tests/browser/wsclient.js' $ST_PORT \
		--send '{\"op\":\"subscribe\",\"symbols\":[\"ETHUSDT\"]}' --until snapshot --duration 5 \
		| grep '^{\"type\":\"snapshot\"' | jq -e --argjson w '$want' '.updates[0].sma_n == 4 and ((.updates[0].sma - \$w) | fabs) < 1e-6'"
}

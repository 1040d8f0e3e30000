#!/usr/bin/env bats
# kline-streamer: CLI, HTTP endpoints, WebSocket protocol, slow and abusive clients,
# /api/klines against PostgreSQL, Kafka feed, shutdown.

bats_require_minimum_version 1.5.0
load helpers
load streamer_helpers

setup() {
	st_node_ready
	GEN=$KP_TBIN/kp-klinegen
}

@test "streamer: --help on stdout exits 0; usage errors exit 2; --version" {
	run -0 "$KP_BIN/kline-streamer" --help
	[[ $output == *"--listen HOST:PORT"* && $output == *"--slow-client-ms"* ]]
	run -2 "$KP_BIN/kline-streamer" --no-such-flag
	[[ $output == *"usage:"* ]]
	run -2 "$KP_BIN/kline-streamer" --sma 0
	run -2 "$KP_BIN/kline-streamer" --listen nonsense:port
	run -2 "$KP_BIN/kline-streamer" --tls-cert /nonexistent
	# the query deadline is an option now, its environment variable still works
	run -0 "$KP_BIN/kline-streamer" --help
	[[ $output == *"--db-timeout-ms MS"*"[STREAMER_DB_TIMEOUT_MS; default 10000]"* ]]
	run -2 "$KP_BIN/kline-streamer" --db-timeout-ms 99
	[[ $output == *"--db-timeout-ms 99: expected an integer in [100, 3600000]"* ]]
	STREAMER_DB_TIMEOUT_MS=99 run -2 "$KP_BIN/kline-streamer"
	[[ $output == *"STREAMER_DB_TIMEOUT_MS=99"* ]]
	run -2 "$KP_BIN/kline-streamer" --event-loop epoll
	[[ $output == *"uv|poll"* ]]
	run -0 "$KP_BIN/kline-streamer" --version
	[[ $output == *libwebsockets* ]]
}

@test "streamer: /healthz, /api/info with the simulated badge, /metrics, 404 and 426" {
	"$GEN" --symbols 3 --seconds 5 >"$BATS_TEST_TMPDIR/feed.ndjson"
	KP_SIMULATED=1 st_start -i "$BATS_TEST_TMPDIR/feed.ndjson"
	kp_wait_for 10 bash -c "curl -fsS '$ST_URL/api/info' | jq -e '.symbols | length == 3'"
	run -0 curl -fsS "$ST_URL/api/info"
	[ "$(jq -r .badge <<<"$output")" = "simulated market" ]
	[ "$(jq -r .simulated <<<"$output")" = true ]
	run -0 curl -fsS "$ST_URL/healthz"
	[ "$(jq -r .status <<<"$output")" = ok ]
	[ "$(jq -r .feed <<<"$output")" = stdin ]
	run -0 curl -fsS "$ST_URL/metrics"
	[[ $output == *"kline_streamer_klines_total 15"* ]]
	[[ $output == *"kline_streamer_latest_kline_age_seconds"* && $output == *"kline_streamer_kafka_lag -1"* ]]
	run -0 curl -sS -o /dev/null -w '%{http_code}' "$ST_URL/api/nothing"
	[ "$output" = 404 ]
	run -0 curl -sS -w ' %{http_code}' "$ST_URL/ws"
	[[ $output == *'"error"'*" 426" ]]
	run -0 curl -sS -o /dev/null -w '%{http_code}' -X POST "$ST_URL/api/info"
	[ "$output" = 405 ]
	# without --badge / KP_SIMULATED there is no badge
	kp_stop "$ST_PID"
	st_start -i "$BATS_TEST_TMPDIR/feed.ndjson"
	run -0 curl -fsS "$ST_URL/api/info"
	[ "$(jq -r .badge <<<"$output")" = null ]
}

@test "streamer: static page: MIME types, ETag and 304, no directory traversal" {
	root=$BATS_TEST_TMPDIR/www
	mkdir -p "$root/sub"
	echo '<!doctype html><p>hello' >"$root/index.html"
	echo 'console.log(1)' >"$root/app.js"
	echo 'body{}' >"$root/sub/s.css"
	echo secret >"$BATS_TEST_TMPDIR/secret.txt"
	ln -s "$BATS_TEST_TMPDIR/secret.txt" "$root/link.txt"
	"$GEN" --symbols 1 --seconds 1 >"$BATS_TEST_TMPDIR/feed.ndjson"
	st_start -i "$BATS_TEST_TMPDIR/feed.ndjson" --web-root "$root"
	run -0 curl -fsS -D - "$ST_URL/"
	[[ $output == *"content-type: text/html; charset=utf-8"* && $output == *"<p>hello"* ]]
	etag=$(curl -fsS -D - -o /dev/null "$ST_URL/index.html" | tr -d '\r' | awk -F': ' 'tolower($1)=="etag"{print $2}')
	[ -n "$etag" ]
	run -0 curl -sS -o /dev/null -w '%{http_code}' -H "If-None-Match: $etag" "$ST_URL/index.html"
	[ "$output" = 304 ]
	run -0 curl -sS -o /dev/null -w '%{http_code}' -H 'If-None-Match: "other"' "$ST_URL/index.html"
	[ "$output" = 200 ]
	run -0 curl -fsS -D - -o /dev/null "$ST_URL/app.js"
	[[ $output == *"text/javascript"* && $output == *"no-cache"* ]]
	run -0 curl -fsS -D - -o /dev/null "$ST_URL/sub/s.css"
	[[ $output == *"text/css"* ]]
	for p in /../secret.txt /sub/../../secret.txt /%2e%2e/secret.txt /link.txt /nonexistent /sub; do
		run -0 curl -sS --path-as-is -o "$BATS_TEST_TMPDIR/body" -w '%{http_code}' "$ST_URL$p"
		[[ $output == 404 || $output == 400 || $output == 403 ]] || { echo "$p → $output"; false; }
		! grep -q secret "$BATS_TEST_TMPDIR/body"
	done
}

@test "streamer: subscribe replies, then a snapshot of exactly the subscribed symbols with the latest prices" {
	feed=$BATS_TEST_TMPDIR/feed.ndjson
	"$GEN" --symbols 5 --seconds 90 >"$feed"
	st_start -i "$feed" --sma 1
	kp_wait_for 10 bash -c "[ \"\$(curl -fsS '$ST_URL/metrics' | awk '\$1==\"kline_streamer_klines_total\"{print \$2}')\" = 450 ]"
	out=$BATS_TEST_TMPDIR/ws.out
	st_ws --send '{"op":"subscribe","symbols":["btcusdt","ETHUSDT"]}' --until snapshot --duration 10 >"$out"
	sed -n 1p "$out" | jq -e '.type == "subscribed" and .count == 2 and (.symbols | sort) == ["BTCUSDT","ETHUSDT"]'
	snap=$(grep '^{"type":"snapshot"' "$out")
	[ "$(jq -r '[.updates[].symbol] | sort | join(",")' <<<"$snap")" = BTCUSDT,ETHUSDT ]
	for s in BTCUSDT ETHUSDT; do
		[ "$(jq -r --arg s $s '.updates[] | select(.symbol == $s) | .kline.close' <<<"$snap")" = "$(st_last_close "$feed" $s)" ]
	done
	# the live 1m bar and the SMA (over 1 closed bar: the previous minute's close) come along
	jq -e '.updates[0].bar.open_time % 60000 == 0 and .updates[0].sma != null and .updates[0].sma_n == 1' <<<"$snap"
	# the same kline record as the feed, byte for byte
	last=$(grep '"symbol":"BTCUSDT"' "$feed" | tail -1)
	[ "$(jq -c '.updates[] | select(.symbol == "BTCUSDT") | .kline' <<<"$snap")" = "$last" ]
}

@test "streamer: a symbol without updates for --stale-secs is announced stale once and left out of snapshots" {
	feed=$BATS_TEST_TMPDIR/feed.ndjson
	"$GEN" --symbols 2 --seconds 3 >"$feed"
	st_start -i "$feed" --stale-secs 4
	kp_wait_for 10 bash -c "[ \"\$(curl -fsS '$ST_URL/metrics' | awk '\$1==\"kline_streamer_klines_total\"{print \$2}')\" = 6 ]"
	out=$BATS_TEST_TMPDIR/ws.out
	# the feed has ended: within 4 s + one walk of the symbols (once a second) both go stale
	st_ws --send '{"op":"subscribe","symbols":["*"]}' --duration 7 >"$out"
	grep '^{"type":"snapshot"' "$out" | jq -e '(.updates | length) == 2'
	[ "$(grep -c '^{"type":"stale"' "$out")" = 2 ]
	[ "$(grep '^{"type":"stale"' "$out" | jq -r .symbol | sort | paste -sd,)" = BTCUSDT,ETHUSDT ]
	st_ws --send '{"op":"subscribe","symbols":["*"]}' --until snapshot --duration 5 >"$out"
	grep '^{"type":"snapshot"' "$out" | jq -e '(.updates | length) == 0'
}

@test "streamer: only subscribed symbols arrive; unsubscribe stops them; \"*\" means all" {
	fifo=$(st_fifo)
	st_start -i "$fifo"
	st_feed "$fifo" "'$GEN' --realtime --symbols 4 --duration 60"
	kp_wait_for 10 bash -c "curl -fsS '$ST_URL/api/info' | jq -e '.symbols | length == 4'"
	out=$BATS_TEST_TMPDIR/one.out
	st_ws --send '{"op":"subscribe","symbols":["ETHUSDT"]}' --duration 4 >"$out"
	n=$(st_klines "$out" | wc -l)
	((n >= 2))
	[ "$(st_klines "$out" | jq -r .symbol | sort -u)" = ETHUSDT ]
	# wildcard: every symbol
	st_ws --send '{"op":"subscribe","symbols":["*"]}' --duration 3.5 >"$out"
	sed -n 1p "$out" | jq -e '.type == "subscribed" and .wildcard == true'
	[ "$(st_klines "$out" | jq -r .symbol | sort -u | wc -l)" -eq 4 ]
	# unsubscribe: nothing after the reply
	st_ws --send '{"op":"subscribe","symbols":["BTCUSDT","ETHUSDT"]}' \
		--send '{"op":"unsubscribe","symbols":["btcusdt"]}' --duration 3.5 >"$out"
	after=$(sed -n '/^{"type":"unsubscribed"/,$p' "$out")
	jq -e '.count == 1 and .symbols == ["ETHUSDT"]' <<<"$(head -1 <<<"$after")"
	! grep -q '"symbol":"BTCUSDT"' <<<"$(tail -n +2 <<<"$after")"
	grep -q '^{"type":"kline","symbol":"ETHUSDT"' <<<"$after"
	st_ws --send '{"op":"subscribe","symbols":["*"]}' --send '{"op":"unsubscribe","symbols":["*"]}' --duration 3 >"$out"
	after=$(sed -n '/^{"type":"unsubscribed"/,$p' "$out")
	jq -e '.count == 0 and .wildcard == false' <<<"$(head -1 <<<"$after")"
	! grep -q '^{"type":"kline"' <<<"$after"
	# a symbol nobody trades yet: subscribed, empty snapshot, no error
	st_ws --send '{"op":"subscribe","symbols":["NEWCOIN"]}' --until snapshot --duration 5 >"$out"
	grep '^{"type":"snapshot"' "$out" | jq -e '.updates == []'
	run -0 curl -fsS "$ST_URL/metrics"
	[[ $output == *'kline_streamer_messages_sent_total'* ]]
}

@test "streamer: malformed, binary, oversized and fragmented client messages" {
	"$GEN" --symbols 2 --seconds 3 >"$BATS_TEST_TMPDIR/feed.ndjson"
	st_start -i "$BATS_TEST_TMPDIR/feed.ndjson" --max-msg 1024 --max-rate 1000
	out=$BATS_TEST_TMPDIR/ws.out
	# nine bad messages: one short of the ten that close a connection
	st_ws --send 'garbage{' --send '[1,2]' --send '{"op":"dance"}' \
		--send '{"op":"subscribe","symbols":"BTCUSDT"}' --send '{"op":"subscribe","symbols":["BTC-USD"]}' \
		--send '{"op":"subscribe","symbols":[42]}' --send '{"op":"subscribe","symbols":["ABCDEFGHIJKLMNOPQRSTU"]}' \
		--send-binary 'hello' --send-big 5000 \
		--send-frag '{"op":"subscribe","symbols":["ETHUSDT"]}' \
		--send '{"op":"ping","id":42}' --until pong --duration 10 >"$out"
	[ "$(grep -c '^{"type":"error"' "$out")" -eq 9 ]
	grep -q 'binary frames are not accepted' "$out"
	grep -q 'message too large' "$out"
	# every error is valid JSON with a message, and the connection still works afterwards
	grep '^{"type":"error"' "$out" | jq -e '.error | length > 5' >/dev/null
	grep '^{"type":"subscribed"' "$out" | jq -e '.symbols == ["ETHUSDT"]'
	grep '^{"type":"pong"' "$out" | jq -e '.id == 42'
	tail -1 "$out" | jq -e '._end == "until"'
	kill -0 "$ST_PID"
}

@test "streamer: repeated abuse closes with 1008; flooding is rate limited" {
	"$GEN" --symbols 2 --seconds 3 >"$BATS_TEST_TMPDIR/feed.ndjson"
	st_start -i "$BATS_TEST_TMPDIR/feed.ndjson" --max-rate 5
	out=$BATS_TEST_TMPDIR/ws.out
	# exactly ten bad messages: the tenth closes (sending more could leave unread bytes,
	# and a close with unread input is a TCP reset, not a close frame)
	st_ws --send-burst '10:not json' --duration 10 >"$out"
	tail -1 "$out" | jq -e '._end == "close" and .code == 1008 and .reason == "too many bad messages"'
	# pings beyond 5/s are refused with an error (the bucket starts full)
	st_ws --send-burst '8:{"op":"ping"}' --count 8 --duration 10 >"$out"
	[ "$(grep -c '^{"type":"pong"' "$out")" -eq 5 ]
	[ "$(grep -c 'rate limit exceeded' "$out")" -eq 3 ]
	[ "$(st_metric kline_streamer_abusive_clients_closed_total)" -eq 1 ]
	# a normal client is fine afterwards
	st_ws --send '{"op":"ping"}' --until pong --duration 5 >"$out"
	tail -1 "$out" | jq -e '._end == "until"'
}

# slow_client_scenario [STREAMER ARGS...]: one client stalls, one reads, on the loop chosen.
slow_client_scenario() {
	fifo=$(st_fifo)
	bulk=$BATS_TEST_TMPDIR/bulk.ndjson
	"$GEN" --symbols 200 --seconds 300 >"$bulk"
	st_start -i "$fifo" --slow-client-ms 1000 "$@"
	slow=$BATS_TEST_TMPDIR/slow.out good=$BATS_TEST_TMPDIR/good.out
	st_ws --send '{"op":"subscribe","symbols":["*"]}' --pause-after-open --resume-after 12 --duration 30 >"$slow" &
	slow_pid=$!
	st_ws --send '{"op":"subscribe","symbols":["*"]}' --duration 40 >"$good" &
	good_pid=$!
	kp_wait_for 10 bash -c "[ \"\$(curl -fsS '$ST_URL/metrics' | awk '\$1==\"kline_streamer_connections\"{print \$2}')\" = 2 ]"
	# ~60,000 klines, one second of all 200 symbols every 10 ms (100x real time), then live
	# ones, one per second for each of 3 symbols. Paced, because the streamer conflates what
	# arrives in one pass (latest wins): the whole bulk at once would be ~200 messages per
	# client, too few to fill the stalled client's socket buffers and make it slow at all.
	st_feed "$fifo" "awk '{ print } NR % 200 == 0 { fflush(); system(\"sleep 0.01\") }' '$bulk'; '$GEN' --realtime --symbols LIVEA,LIVEB,LIVEC --duration 60"
	kp_wait_for 30 bash -c "[ \"\$(curl -fsS '$ST_URL/metrics' | awk '\$1==\"kline_streamer_slow_clients_closed_total\"{print \$2}')\" -ge 1 ]"
	kp_wait_for 10 bash -c "[ \"\$(curl -fsS '$ST_URL/metrics' | awk '\$1==\"kline_streamer_connections\"{print \$2}')\" = 1 ]"
	# the reading client got the last bulk price of every symbol it was sent (latest wins),
	# and then live klines within a few seconds of their event time
	kp_wait_for 20 bash -c "grep -c '\"symbol\":\"LIVEA\"' '$good' | awk '{exit !(\$1 >= 3)}'"
	last=$(st_last_close "$bulk" BTCUSDT)
	grep '^{"type":"kline","symbol":"BTCUSDT"' "$good" | tail -1 | jq -e --arg p "$last" '.kline.close == $p'
	grep '^{"type":"kline","symbol":"LIVE' "$good" | tail -3 | while read -r line; do
		recv_lag=$(jq '.ingest_time - .kline.event_time' <<<"$line")
		((recv_lag < 5000))
	done
	# the stalled one, once it reads again, finds its connection closed: 4008 "too slow" if
	# the close frame got through, or an abnormal end if it was killed
	wait "$slow_pid"
	tail -1 "$slow" | jq -e '._end == "close" and (.code == 4008 or .code == 1006)'
	[ "$(st_metric kline_streamer_conflated_total)" -gt 0 ]
	kill "$good_pid" 2>/dev/null || true
	wait "$good_pid" || true
	kill -0 "$ST_PID"
}

@test "streamer: a client that never reads is cut off (4008) while a reading client keeps up" {
	slow_client_scenario
}

@test "streamer: the same on --event-loop uv (libuv): the stalled client is cut, the reader keeps up" {
	slow_client_scenario --event-loop uv
	st_last_log | grep -q "event loop: uv,"
}

@test "streamer: SIGTERM closes clients with 1001 going away and exits 0" {
	fifo=$(st_fifo)
	st_start -i "$fifo"
	out=$BATS_TEST_TMPDIR/ws.out
	st_ws --send '{"op":"subscribe","symbols":["*"]}' --duration 20 >"$out" &
	cpid=$!
	kp_wait_for 10 bash -c "curl -fsS '$ST_URL/metrics' | grep -q '^kline_streamer_connections 1'"
	rc=0
	kp_stop "$ST_PID" || rc=$?
	[ "$rc" -eq 0 ]
	wait "$cpid"
	tail -1 "$out" | jq -e '._end == "close" and .code == 1001 and .reason == "going away"'
	grep -q "stopped" "$KP_OUT/kline-streamer.log"
}

@test "streamer: --max-clients refuses connections beyond the cap; --allow-origin checks Origin" {
	"$GEN" --symbols 1 --seconds 1 >"$BATS_TEST_TMPDIR/feed.ndjson"
	st_start -i "$BATS_TEST_TMPDIR/feed.ndjson" --max-clients 1 --allow-origin http://good.example
	st_ws --origin http://good.example --duration 6 >"$BATS_TEST_TMPDIR/a.out" &
	a=$!
	kp_wait_for 10 bash -c "curl -fsS '$ST_URL/metrics' | grep -q '^kline_streamer_connections 1'"
	run -1 st_ws --origin http://good.example --duration 3
	[[ $output == *'"_end":"error"'* ]]
	wait "$a"
	run -1 st_ws --origin http://evil.example --duration 3
	[[ $output == *'"_end":"error"'* ]]
	run -0 st_ws --origin http://good.example --send '{"op":"ping"}' --until pong --duration 3
}

# st_last_log → this test's last kline-streamer start in its log (kp_bg heads each with ===)
st_last_log() {
	tac "$KP_OUT/kline-streamer.log" | sed '/^=== /q'
}

@test "streamer: the ev loop by default with records applied at once; poll batches them every 5 ms" {
	fifo=$(st_fifo)
	st_start -i "$fifo"
	st_last_log | grep -q "event loop: ev, --coalesce-ms 0"
	kp_stop "$ST_PID"
	st_start -i "$fifo" --event-loop poll
	st_last_log | grep -q "event loop: poll, --coalesce-ms 5"
	kp_stop "$ST_PID"
	STREAMER_EVENT_LOOP=poll STREAMER_COALESCE_MS=0 st_start -i "$fifo"
	st_last_log | grep -q "event loop: poll, --coalesce-ms 0"
	kp_stop "$ST_PID"
	st_start -i "$fifo" --coalesce-ms 20
	st_last_log | grep -q "event loop: ev, --coalesce-ms 20"
	kp_stop "$ST_PID"
	st_start -i "$fifo" --event-loop uv
	st_last_log | grep -q "event loop: uv, --coalesce-ms 0"
	kp_stop "$ST_PID"
}

@test "streamer: --event-loop poll (lws's own loop) serves the same protocol and stops cleanly" {
	fifo=$(st_fifo)
	st_start -i "$fifo" --event-loop poll
	st_feed "$fifo" "'$GEN' --realtime --symbols 3 --duration 30"
	kp_wait_for 10 bash -c "curl -fsS '$ST_URL/api/info' | jq -e '.symbols | length == 3'"
	out=$BATS_TEST_TMPDIR/ws.out
	st_ws --send '{"op":"subscribe","symbols":["ETHUSDT"]}' --duration 3 >"$out"
	grep -q '^{"type":"snapshot"' "$out"
	(($(st_klines "$out" | wc -l) >= 2))
	[ "$(st_klines "$out" | jq -r .symbol | sort -u)" = ETHUSDT ]
	run -0 curl -fsS "$ST_URL/metrics"
	[[ $output == *"kline_streamer_connections 0"* ]]
	rc=0
	kp_stop "$ST_PID" || rc=$?
	[ "$rc" -eq 0 ]
	run -2 "$KP_BIN/kline-streamer" --event-loop epoll
}

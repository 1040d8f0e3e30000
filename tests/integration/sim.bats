#!/usr/bin/env bats
# The simulated exchange (tests/sim, $KP_TBIN/kline-sim) behaves like Binance and
# agrees with itself: stream = REST = truth, and its fault knobs do what they say.

bats_require_minimum_version 1.5.0
load helpers

WSDUMP() { "$KP_TBIN/kp-wsdump" "$@"; }

# Conditions for a control request sent from the background while WSDUMP runs in the
# foreground: wait for the client to be there (not a fixed sleep), then act. They read
# the sim's counters (kp-wsdump's output file is only flushed when it exits).
s_stat() { curl -fsS "$SIM_URL/control/stats" | jq -r ".$1"; }
s_stat_ge() { (($(s_stat "$1") >= $2)); } # COUNTER N
# s_control_when CONDITION... -- CONTROL...: in the background, once CONDITION holds
# (at most 10 s), GET /control/<each CONTROL>. Sets S_BG (wait for it).
s_control_when() {
    local cond=() k
    while [[ $1 != -- ]]; do cond+=("$1"); shift; done
    shift
    (kp_wait_for 10 "${cond[@]}" || exit 1
     for k in "$@"; do curl -fsS "$SIM_URL/control/$k" >/dev/null || exit 1; done) &
    S_BG=$!
}

# WS kline event (raw or combined) → the canonical fields both sides have.
ws_proj='(.data // .) | .k | {symbol:.s, open_time:.t, close_time:.T, open:.o, high:.h, low:.l, close:.c,
  volume:.v, quote_volume:.q, trades:.n, taker_buy_volume:.V, taker_buy_quote_volume:.Q,
  first_trade_id:.f, last_trade_id:.L, closed:.x}'
truth_proj='{symbol, open_time, close_time, open, high, low, close, volume, quote_volume, trades,
  taker_buy_volume, taker_buy_quote_volume, first_trade_id, last_trade_id, closed}'
# REST rows carry no trade ids and no "closed".
rest_proj='.[] | {symbol:$s, open_time:.[0], close_time:.[6], open:.[1], high:.[2], low:.[3], close:.[4],
  volume:.[5], quote_volume:.[7], trades:.[8], taker_buy_volume:.[9], taker_buy_quote_volume:.[10]}'
truth_rest_proj='{symbol, open_time, close_time, open, high, low, close, volume, quote_volume, trades,
  taker_buy_volume, taker_buy_quote_volume}'

START=1700000000000

@test "kline-sim: --help on stdout exit 0; a bad option is a usage error (exit 2)" {
    run --separate-stderr "$KP_TBIN/kline-sim" --help
    [ "$status" -eq 0 ]
    [[ $output == *"--speed"* && -z $stderr ]]
    run --separate-stderr "$KP_TBIN/kline-sim" --speed fast
    [ "$status" -eq 2 ]
    [[ -z $output && $stderr == *usage* ]]
}

@test "kline-sim: combined stream of 2 symbols x 20 s at --speed 20 equals /truth, every second, in order" {
    kp_sim_start --symbols BTCUSDT,ETHUSDT --speed 20 --seed 7
    WSDUMP -n 40 -t 15 "$SIM_WS_URL/stream?streams=btcusdt@kline_1s/ethusdt@kline_1s" >"$BATS_TEST_TMPDIR/ws"
    [ "$(wc -l <"$BATS_TEST_TMPDIR/ws")" -eq 40 ]
    # wrapper shape: stream name matches the payload, x=true, T = t + 999, E is wall clock
    now=$(date +%s%3N)
    jq -e --argjson now "$now" '(.stream == ((.data.s|ascii_downcase) + "@kline_1s")) and .data.e == "kline"
        and .data.k.x == true and .data.k.T == .data.k.t + 999 and .data.k.i == "1s"
        and (.data.E > $now - 60000) and (.data.E <= $now + 1000)' "$BATS_TEST_TMPDIR/ws" >/dev/null
    for sym in BTCUSDT ETHUSDT; do
        jq -c "select(.data.s == \"$sym\") | $ws_proj" "$BATS_TEST_TMPDIR/ws" >"$BATS_TEST_TMPDIR/s.$sym"
        n=$(wc -l <"$BATS_TEST_TMPDIR/s.$sym")
        [ "$n" -ge 19 ]
        from=$(head -1 "$BATS_TEST_TMPDIR/s.$sym" | jq .open_time)
        to=$(tail -1 "$BATS_TEST_TMPDIR/s.$sym" | jq .open_time)
        # consecutive seconds, nothing missing or repeated
        [ $(((to - from) / 1000 + 1)) -eq "$n" ]
        curl -fsS "$SIM_URL/truth?symbol=$sym&from=$from&to=$to" | jq -c "$truth_proj" >"$BATS_TEST_TMPDIR/t.$sym"
        diff "$BATS_TEST_TMPDIR/s.$sym" "$BATS_TEST_TMPDIR/t.$sym"
    done
}

@test "kline-sim: generated klines are valid (low <= open,close <= high; taker <= total; trade ids continue; zero-trade seconds)" {
    kp_sim_start --symbols BTCUSDT,ETHUSDT,SOLUSDT --speed 1000 --duration 600 --start-time $START
    kp_wait_for 10 bash -c "curl -fsS '$SIM_URL/control/stats' | jq -e '.generated_seconds == 600'"
    curl -fsS "$SIM_URL/truth" >"$BATS_TEST_TMPDIR/truth"
    [ "$(wc -l <"$BATS_TEST_TMPDIR/truth")" -eq 1800 ]
    # decimals with 8 places; ordering by symbol then open_time
    jq -e '[.open,.high,.low,.close,.volume,.quote_volume,.taker_buy_volume,.taker_buy_quote_volume]
        | all(test("^[0-9]+\\.[0-9]{8}$"))' "$BATS_TEST_TMPDIR/truth" >/dev/null
    jq -s -e 'map(.symbol + ":" + (.open_time|tostring)) as $k | $k == ($k | sort)' "$BATS_TEST_TMPDIR/truth" >/dev/null
    # numeric checks (doubles are fine for a test's sanity bounds)
    jq -s -e 'all(.[]; (.low|tonumber) <= (.open|tonumber) and (.open|tonumber) <= (.high|tonumber)
                 and (.low|tonumber) <= (.close|tonumber) and (.close|tonumber) <= (.high|tonumber)
                 and (.taker_buy_volume|tonumber) <= (.volume|tonumber)
                 and (.taker_buy_quote_volume|tonumber) <= (.quote_volume|tonumber)
                 and (if .trades == 0 then .first_trade_id == -1 and .last_trade_id == -1
                        and .open == .close and .high == .low and .volume == "0.00000000"
                      else .last_trade_id - .first_trade_id + 1 == .trades end))' "$BATS_TEST_TMPDIR/truth" >/dev/null
    zero=$(jq -s '[.[] | select(.trades == 0)] | length' "$BATS_TEST_TMPDIR/truth")
    [ "$zero" -ge 60 ]   # ~10% of 1800
    [ "$zero" -le 300 ]
    # zero-trade seconds repeat the previous close; trade ids continue across seconds
    jq -s -e 'group_by(.symbol) | all(.[]; . as $g | [range(1; length)] | all(. as $i |
        ($g[$i].open == $g[$i-1].close) and
        (if $g[$i].trades > 0 then $g[$i].first_trade_id > ([$g[0:$i][] | .last_trade_id] | max) else true end)))' \
        "$BATS_TEST_TMPDIR/truth" >/dev/null
}

@test "kline-sim: /truth?interval=1m is the bars of its seconds by the aggregator's rules, a part minute too" {
    # 400 s from second 30 of a minute (START is second 20): a 30 s minute, six whole
    # ones, a 10 s one
    local m0=$((START - 20000))
    kp_sim_start --symbols BTCUSDT,ETHUSDT --speed 1000 --duration 400 --start-time $((m0 + 30000))
    kp_wait_for 10 bash -c "curl -fsS '$SIM_URL/control/stats' | jq -e '.generated_seconds == 400'"
    curl -fsS "$SIM_URL/truth" >"$BATS_TEST_TMPDIR/s"
    curl -fsS "$SIM_URL/truth?interval=1m" >"$BATS_TEST_TMPDIR/m"
    [ "$(wc -l <"$BATS_TEST_TMPDIR/m")" -eq 16 ]
    [ "$(jq -s -c 'map(.row_count) | .[0:8]' "$BATS_TEST_TMPDIR/m")" = "[30,60,60,60,60,60,60,10]" ]
    [ "$(jq -s '[.[] | select(.trades == 0)] | length' "$BATS_TEST_TMPDIR/s")" -gt 0 ]
    # the same bars as the fault campaign makes from the seconds (tests/faults/campaign.py)
    python3 "$BATS_TEST_DIRNAME/../faults/bars_check.py" "$BATS_TEST_TMPDIR/s" "$BATS_TEST_TMPDIR/m"
    # a range of one symbol: the bar of just those seconds; an interval it has not is a 400
    curl -fsS "$SIM_URL/truth?symbol=ETHUSDT&from=$((m0 + 120000))&to=$((m0 + 179999))&interval=1m" \
        >"$BATS_TEST_TMPDIR/one"
    [ "$(wc -l <"$BATS_TEST_TMPDIR/one")" -eq 1 ]
    jq -c "select(.symbol == \"ETHUSDT\" and .open_time == $((m0 + 120000)))" "$BATS_TEST_TMPDIR/m" |
        cmp - "$BATS_TEST_TMPDIR/one"
    run curl -sS -o /dev/null -w '%{http_code}' "$SIM_URL/truth?interval=5m"
    [ "$output" = 400 ]
}

@test "kline-sim: REST /api/v3/klines pages equal the truth; Binance limit/startTime/endTime semantics" {
    kp_sim_start --symbols BTCUSDT,ETHUSDT --speed 2000 --duration 2500 --start-time $START
    kp_wait_for 10 bash -c "curl -fsS '$SIM_URL/control/stats' | jq -e '.generated_seconds == 2500'"
    : >"$BATS_TEST_TMPDIR/rest"
    st=$START
    for page in 1 2 3 4; do
        curl -fsS "$SIM_URL/api/v3/klines?symbol=ETHUSDT&interval=1s&startTime=$st&limit=1000" >"$BATS_TEST_TMPDIR/page"
        n=$(jq length "$BATS_TEST_TMPDIR/page")
        ((n == 0)) && break
        jq -c --arg s ETHUSDT "$rest_proj" "$BATS_TEST_TMPDIR/page" >>"$BATS_TEST_TMPDIR/rest"
        st=$(($(jq '.[-1][0]' "$BATS_TEST_TMPDIR/page") + 1))
    done
    [ "$(wc -l <"$BATS_TEST_TMPDIR/rest")" -eq 2500 ]
    curl -fsS "$SIM_URL/truth?symbol=ETHUSDT" | jq -c "$truth_rest_proj" >"$BATS_TEST_TMPDIR/truth"
    diff "$BATS_TEST_TMPDIR/rest" "$BATS_TEST_TMPDIR/truth"
    # default limit 500; limit above 1000 is capped
    [ "$(curl -fsS "$SIM_URL/api/v3/klines?symbol=ETHUSDT&interval=1s&startTime=$START" | jq length)" -eq 500 ]
    [ "$(curl -fsS "$SIM_URL/api/v3/klines?symbol=ETHUSDT&interval=1s&startTime=$START&limit=5000" | jq length)" -eq 1000 ]
    # startTime inside a second starts at the next open_time; endTime is inclusive
    run -0 curl -fsS "$SIM_URL/api/v3/klines?symbol=ETHUSDT&interval=1s&startTime=$((START + 1))&endTime=$((START + 3000))"
    [ "$(jq -c '[.[][0]]' <<<"$output")" = "[$((START + 1000)),$((START + 2000)),$((START + 3000))]" ]
    # only endTime: the newest `limit` klines up to it
    run -0 curl -fsS "$SIM_URL/api/v3/klines?symbol=ETHUSDT&interval=1s&endTime=$((START + 9000))&limit=2"
    [ "$(jq -c '[.[][0]]' <<<"$output")" = "[$((START + 8000)),$((START + 9000))]" ]
    # nothing after the last generated second; the 12th field is "0"
    [ "$(curl -fsS "$SIM_URL/api/v3/klines?symbol=ETHUSDT&interval=1s&startTime=$((START + 2500000))" | jq length)" -eq 0 ]
    curl -fsS "$SIM_URL/api/v3/klines?symbol=ETHUSDT&interval=1s&limit=1" | jq -e '.[0] | length == 12 and .[11] == "0"'
}

@test "kline-sim: REST errors look like Binance's; exchangeInfo lists TRADING and BREAK symbols" {
    kp_sim_start --symbols BTCUSDT,ETHBTC --speed 10
    run -0 curl -sS -w '\n%{http_code}' "$SIM_URL/api/v3/klines?symbol=NOPEUSDT&interval=1s"
    [ "${lines[0]}" = '{"code":-1121,"msg":"Invalid symbol."}' ]
    [ "${lines[1]}" = 400 ]
    run -0 curl -sS -w '\n%{http_code}' "$SIM_URL/api/v3/klines?symbol=BTCUSDT&interval=1m"
    [ "${lines[0]}" = '{"code":-1120,"msg":"Invalid interval."}' ]
    [ "${lines[1]}" = 400 ]
    run -0 curl -sS "$SIM_URL/api/v3/klines?interval=1s"
    jq -e '.code == -1102' <<<"$output"
    run -0 curl -fsS "$SIM_URL/api/v3/ping"
    [ "$output" = "{}" ]
    run -0 curl -fsS "$SIM_URL/api/v3/exchangeInfo"
    jq -e '[.symbols[] | select(.status == "TRADING") | .symbol] == ["BTCUSDT","ETHBTC"]' <<<"$output"
    jq -e '[.symbols[] | select(.status == "BREAK")] | length >= 2' <<<"$output"
    jq -e '.symbols[] | select(.symbol == "ETHBTC") | .baseAsset == "ETH" and .quoteAsset == "BTC"' <<<"$output"
}

@test "kline-sim: rest429/rest418 knobs and the weight limit answer with Retry-After; weight header counts 2 per klines call" {
    kp_sim_start --symbols BTCUSDT --speed 10 --rest-weight-limit 10
    q="$SIM_URL/api/v3/klines?symbol=BTCUSDT&interval=1s&limit=1"
    w() { curl -sS -D - -o /dev/null "$q" | tr -d '\r' | awk -F': ' '$1 == "x-mbx-used-weight-1m" { print $2 }'; }
    w1=$(w)
    w2=$(w)
    [ $((w2 - w1)) -eq 2 ]
    curl -fsS "$SIM_URL/control/rest429?n=2" >/dev/null
    for i in 1 2; do
        run -0 curl -sS -D - "$q"
        [[ ${lines[0]} == "HTTP/1.1 429"* ]]
        [[ $output == *"retry-after: 1"* ]]
        [[ $output == *'"code":-1003'* ]]
    done
    curl -fsS "$SIM_URL/control/rest418?n=1" >/dev/null
    run -0 curl -sS -o /dev/null -D - "$q"
    [[ ${lines[0]} == "HTTP/1.1 418"* && $output == *"retry-after:"* ]]
    # knobs are used up: 200 again; then the weight limit (10 = 5 calls) trips a real 429
    [ "$(curl -sS -o /dev/null -w '%{http_code}' "$q")" = 200 ]
    codes=""
    for i in 1 2 3 4 5; do codes+="$(curl -sS -o /dev/null -w '%{http_code}' "$q") "; done
    [[ $codes == *429* ]]
    run -0 curl -sS -D - -o /dev/null "$q"
    [[ ${lines[0]} == "HTTP/1.1 429"* && $output == *"retry-after: "* ]]
    curl -fsS "$SIM_URL/control/stats" | jq -e '.rest_429 >= 3 and .rest_418 == 1'
}

@test "kline-sim: SUBSCRIBE / LIST_SUBSCRIPTIONS / UNSUBSCRIBE replies and Binance-style errors" {
    kp_sim_start --symbols BTCUSDT,ETHUSDT --speed 10
    WSDUMP -t 3 --send-delay-ms 250 \
        -s '{"method":"SUBSCRIBE","params":["btcusdt@kline_1s","ethusdt@kline_1s"],"id":1}' \
        -s '{"method":"LIST_SUBSCRIPTIONS","id":2}' \
        -s '{"method":"UNSUBSCRIBE","params":["ethusdt@kline_1s"],"id":3}' \
        -s '{"method":"LIST_SUBSCRIPTIONS","id":4}' \
        -s 'not json' \
        -s '{"method":"NOPE","id":6}' \
        -s '{"params":[],"id":7}' \
        -s '{"method":"SUBSCRIBE","params":["btcusdt@depth"],"id":8}' \
        "$SIM_WS_URL/ws" >"$BATS_TEST_TMPDIR/out"
    grep -v '"e":"kline"' "$BATS_TEST_TMPDIR/out" >"$BATS_TEST_TMPDIR/replies"
    run -0 cat "$BATS_TEST_TMPDIR/replies"
    [ "${lines[0]}" = '{"result":null,"id":1}' ]
    [ "${lines[1]}" = '{"result":["btcusdt@kline_1s","ethusdt@kline_1s"],"id":2}' ]
    [ "${lines[2]}" = '{"result":null,"id":3}' ]
    [ "${lines[3]}" = '{"result":["btcusdt@kline_1s"],"id":4}' ]
    jq -e '.error.code == 3 and (.error.msg | startswith("Invalid JSON"))' <<<"${lines[4]}"
    jq -e '.error.code == 2 and (.error.msg | startswith("Invalid request: unknown variant")) and .id == 6' <<<"${lines[5]}"
    jq -e '.error.code == 2 and .id == 7' <<<"${lines[6]}"
    jq -e '.error.code == 2 and .id == 8' <<<"${lines[7]}"
    # raw connection (/ws): klines arrive unwrapped
    grep -q '^{"e":"kline"' "$BATS_TEST_TMPDIR/out"
    # too many streams in the URL is refused at the upgrade
    run WSDUMP -t 2 "$SIM_WS_URL/stream?streams=$(printf 'a%d@kline_1s/' $(seq 1 1100))"
    [[ $output == *"400"* ]]
}

@test "kline-sim: serverShutdown event (combined and raw form), then the server closes" {
    kp_sim_start --symbols BTCUSDT --speed 10 --shutdown-grace-ms 300
    k=$(s_stat klines_sent)
    s_control_when s_stat_ge klines_sent $((k + 1)) -- shutdown
    WSDUMP -t 5 "$SIM_WS_URL/stream?streams=btcusdt@kline_1s" >"$BATS_TEST_TMPDIR/c" 2>"$BATS_TEST_TMPDIR/c.err"
    wait "$S_BG"
    run -0 grep -c serverShutdown "$BATS_TEST_TMPDIR/c"
    [ "$output" -eq 1 ]
    grep serverShutdown "$BATS_TEST_TMPDIR/c" | jq -e 'keys == ["data","stream"] and .stream == "!serverShutdown"
        and .data.e == "serverShutdown" and (.data.E | type) == "number"'
    grep -q 'close=1001' "$BATS_TEST_TMPDIR/c.err"   # closed by the server well before -t 5
    k=$(s_stat klines_sent)
    s_control_when s_stat_ge klines_sent $((k + 1)) -- shutdown
    WSDUMP -t 5 "$SIM_WS_URL/ws/btcusdt@kline_1s" >"$BATS_TEST_TMPDIR/r" 2>"$BATS_TEST_TMPDIR/r.err"
    wait "$S_BG"
    grep serverShutdown "$BATS_TEST_TMPDIR/r" | jq -e 'keys == ["E","e"] and .e == "serverShutdown"'
    grep -q 'close=1001' "$BATS_TEST_TMPDIR/r.err"
}

@test "kline-sim: stall skips the stalled seconds on the stream, REST still has them" {
    kp_sim_start --symbols BTCUSDT --speed 10
    # a few seconds before the stall, so that the gap has klines on both sides
    k=$(s_stat klines_sent)
    s_control_when s_stat_ge klines_sent $((k + 5)) -- "stall?secs=1.5"
    WSDUMP -t 4.5 "$SIM_WS_URL/ws/btcusdt@kline_1s" >"$BATS_TEST_TMPDIR/ws" 2>"$BATS_TEST_TMPDIR/ws.err"
    wait "$S_BG"
    grep -q 'close=-1' "$BATS_TEST_TMPDIR/ws.err"          # the socket stayed open
    jq '.k.t' "$BATS_TEST_TMPDIR/ws" >"$BATS_TEST_TMPDIR/t"
    # exactly one gap, of about 15 seconds (1.5 s at speed 10; loose bounds for a busy box)
    run -0 awk 'NR > 1 && $1 - p != 1000 { print ($1 - p) / 1000 - 1 } { p = $1 }' "$BATS_TEST_TMPDIR/t"
    [ "${#lines[@]}" -eq 1 ]
    [ "${lines[0]}" -ge 10 ]
    [ "${lines[0]}" -le 20 ]
    from=$(head -1 "$BATS_TEST_TMPDIR/t")
    to=$(tail -1 "$BATS_TEST_TMPDIR/t")
    n=$(curl -fsS "$SIM_URL/api/v3/klines?symbol=BTCUSDT&interval=1s&startTime=$from&endTime=$to&limit=1000" | jq length)
    [ "$n" -eq $(((to - from) / 1000 + 1)) ]
}

@test "kline-sim: server pings every --ping-interval; no pong within --pong-timeout closes the connection" {
    kp_sim_start --symbols BTCUSDT --speed 1 --ping-interval 1 --pong-timeout 3
    run -0 WSDUMP -q -t 3.6 --count-pings "$SIM_WS_URL/ws/btcusdt@kline_1s"
    [[ $output =~ pings=([0-9]+) ]]
    [ "${BASH_REMATCH[1]}" -ge 3 ]
    [[ $output == *close=-1* ]]                    # answering pings keeps it open
    run -0 WSDUMP -q -t 8 --no-pong "$SIM_WS_URL/ws/btcusdt@kline_1s"
    [[ $output == *close=1008* ]]
    [[ $output =~ secs=([0-9]+) ]]
    [ "${BASH_REMATCH[1]}" -ge 3 ]
    [ "${BASH_REMATCH[1]}" -le 5 ]
    curl -fsS "$SIM_URL/control/stats" | jq -e '.pong_timeouts == 1 and .pongs_received >= 3'
}

@test "kline-sim: duplicate, malformed, reorder, oversized and close knobs" {
    kp_sim_start --symbols BTCUSDT,ETHUSDT --speed 20
    u="$SIM_WS_URL/stream?streams=btcusdt@kline_1s/ethusdt@kline_1s"
    k=$(s_stat klines_sent)
    s_control_when s_stat_ge klines_sent $((k + 1)) -- "duplicate?n=3" "malformed?n=6" "reorder?n=1" "oversized?n=1"
    WSDUMP -t 2.5 "$u" >"$BATS_TEST_TMPDIR/ws"
    wait "$S_BG"
    # the real klines are all there (exactly once each, after removing the duplicates)...
    jq -Rc 'fromjson? | select(.data.e == "kline" and (.data.k.o | test("^[0-9]+\\.[0-9]{8}$")?) and (.data.k.t|type) == "number" and has("data") and (.data.pad == null)) | [.data.s, .data.k.t]' \
        "$BATS_TEST_TMPDIR/ws" | sort >"$BATS_TEST_TMPDIR/keys"
    [ "$(uniq -d "$BATS_TEST_TMPDIR/keys" | wc -l)" -eq 3 ]
    # ...plus 6 malformed messages (one of them is not JSON at all) and one frame over 1 MB
    [ "$(awk 'length($0) > 1048576' "$BATS_TEST_TMPDIR/ws" | wc -l)" -eq 1 ]
    [ "$(jq -R 'fromjson? // "bad"' "$BATS_TEST_TMPDIR/ws" | grep -c '^"bad"$')" -ge 2 ]
    curl -fsS "$SIM_URL/control/stats" | jq -e '.duplicates_sent == 3 and .malformed_sent == 6 and .reordered == 1 and .oversized_sent == 1'
    # reorder: somewhere one symbol's seconds go backwards
    run -0 bash -c "jq -r 'select(.data.s == \"BTCUSDT\" and (.data.k.o|test(\"^[0-9]\"))?) | .data.k.t' <(jq -Rc 'fromjson? | select(.data.e == \"kline\")' '$BATS_TEST_TMPDIR/ws') | awk 'NR > 1 && \$1 < p { n++ } { p = \$1 } END { print n + 0 }'"
    [ "$output" -eq 1 ]
    # close: every connection is cut now
    n=$(s_stat connections_total)
    s_control_when s_stat_ge connections_total $((n + 1)) -- close
    run -0 WSDUMP -q -t 5 "$u"
    wait "$S_BG"
    [[ $output == *close=1001* ]]
    # refuse: new connections get 503 for a while
    curl -fsS "$SIM_URL/control/refuse?secs=1" >/dev/null
    run WSDUMP -q -t 1 "$u"
    [[ $output == *503* ]]
}

@test "kline-sim: same seed and start = same klines; --dump-truth on exit equals /truth" {
    kp_sim_start --symbols BTCUSDT,ETHUSDT --speed 1000 --duration 300 --start-time $START --seed 42 \
        --dump-truth "$BATS_TEST_TMPDIR/dump.ndjson"
    kp_wait_for 10 bash -c "curl -fsS '$SIM_URL/control/stats' | jq -e '.generated_seconds == 300'"
    curl -fsS "$SIM_URL/truth" >"$BATS_TEST_TMPDIR/a"
    kp_stop "$SIM_PID"
    cmp "$BATS_TEST_TMPDIR/a" "$BATS_TEST_TMPDIR/dump.ndjson"
    [ "$(wc -l <"$BATS_TEST_TMPDIR/a")" -eq 600 ]
    jq -e '.source == "ws" and .closed == true and .interval == "1s"' "$BATS_TEST_TMPDIR/a" >/dev/null
    kp_sim_start --symbols BTCUSDT,ETHUSDT --speed 1000 --duration 300 --start-time $START --seed 42
    kp_wait_for 10 bash -c "curl -fsS '$SIM_URL/control/stats' | jq -e '.generated_seconds == 300'"
    curl -fsS "$SIM_URL/truth" | cmp - "$BATS_TEST_TMPDIR/a"
    kp_stop "$SIM_PID"
    kp_sim_start --symbols BTCUSDT,ETHUSDT --speed 1000 --duration 300 --start-time $START --seed 43
    kp_wait_for 10 bash -c "curl -fsS '$SIM_URL/control/stats' | jq -e '.generated_seconds == 300'"
    ! curl -fsS "$SIM_URL/truth" | cmp -s - "$BATS_TEST_TMPDIR/a"
}

@test "kline-sim: --replay of a data.binance.vision CSV serves exactly those rows over REST" {
    csv=$KP_ROOT/tests/data/binance/ADABTC-1m-2021-11-27.csv
    [ -r "$csv" ]
    # 1m rows 60 s apart: replayed as 1s klines at their own open times
    kp_sim_start --replay "$csv" --symbols ADABTC --speed 1000
    kp_wait_for 10 bash -c "curl -fsS '$SIM_URL/control/stats' | jq -e '.generated_seconds == 541'"
    run -0 curl -fsS "$SIM_URL/api/v3/klines?symbol=ADABTC&interval=1s&startTime=0&limit=1000"
    [ "$(jq length <<<"$output")" -eq "$(wc -l <"$csv")" ]
    # every CSV field except close time (1s here) is reproduced exactly
    jq -r '.[] | [.[0], .[1], .[2], .[3], .[4], .[5], .[7], .[8], .[9], .[10]] | join(",")' <<<"$output" >"$BATS_TEST_TMPDIR/rest"
    cut -d, -f1-6,8-11 "$csv" | tr -d '\r' >"$BATS_TEST_TMPDIR/csv"
    diff "$BATS_TEST_TMPDIR/rest" "$BATS_TEST_TMPDIR/csv"
}

@test "kline-sim: --provisional sends an x=false update before each closed kline" {
    kp_sim_start --symbols BTCUSDT --speed 5 --provisional
    WSDUMP -n 8 -t 6 "$SIM_WS_URL/ws/btcusdt@kline_1s" >"$BATS_TEST_TMPDIR/ws"
    jq -r '"\(.k.t) \(.k.x)"' "$BATS_TEST_TMPDIR/ws" >"$BATS_TEST_TMPDIR/seq"
    grep -q ' false$' "$BATS_TEST_TMPDIR/seq"
    # each provisional is followed by the closed kline of the same second
    run -0 awk '$2 == "false" { want = $1; next } want != "" { if ($1 != want || $2 != "true") bad++; want = "" } END { print bad + 0 }' "$BATS_TEST_TMPDIR/seq"
    [ "$output" -eq 0 ]
}

@test "kline-sim: a consumer more than --queue-secs behind is cut; memory stays bounded" {
    kp_sim_start --num-symbols 200 --speed 200 --queue-secs 8
    streams=$(seq -f 'sym%04gusdt@kline_1s' 1 200 | paste -sd/)
    # the client reads nothing for 8 s: it is cut while it is still silent
    WSDUMP -q -t 9 --read-delay 8 "$SIM_WS_URL/stream?streams=$streams" 2>/dev/null &
    kp_wait_for 7 bash -c "curl -fsS '$SIM_URL/control/stats' | jq -e '.overflow_closes == 1 and .connections == 0'"
    wait $!
    rss=$(awk '/VmRSS/ { print $2 }' "/proc/$SIM_PID/status")
    [ "$rss" -lt 200000 ]   # kB; the ring is 200 x 8 x 88 bytes, the rest is lws and libc
}

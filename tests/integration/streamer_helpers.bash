# shellcheck shell=bash
# Helpers of tests/integration/streamer*.bats (after `load helpers`).

ST_NODE_MODULES=$KP_ROOT/tests/browser/node_modules

# st_schema URL → applies schema/*.sql (what the inserter/aggregator would) to a test database.
st_schema() {
	# as every program applies it (recorded in schema_migrations, so a program started
	# later finds nothing to do; some migrations must not run twice)
	"$KP_BIN/kline-inserter" -i /dev/null -d "$1" --stats-interval 0 2>/dev/null
}

# st_history URL FILE → loads canonical 1s klines (NDJSON FILE) into kline_1s and rolls
# them up into kline_1m (OHLC from seconds with trades; row_count = seconds used).
st_history() {
	psql "$1" -XAtq -v ON_ERROR_STOP=1 >/dev/null <<SQL
CREATE TEMP TABLE st_raw (j jsonb);
\copy st_raw FROM '$2'
INSERT INTO kline_1s (symbol, open_time, open, high, low, close, volume, quote_volume,
                      trades, taker_buy_volume, taker_buy_quote_volume, first_trade_id, last_trade_id,
                      closed, event_time, source)
SELECT j->>'symbol', 'epoch'::timestamptz + (j->>'open_time')::bigint * interval '1 ms',
       (j->>'open')::numeric, (j->>'high')::numeric, (j->>'low')::numeric, (j->>'close')::numeric,
       (j->>'volume')::numeric, (j->>'quote_volume')::numeric, (j->>'trades')::bigint,
       (j->>'taker_buy_volume')::numeric, (j->>'taker_buy_quote_volume')::numeric,
       (j->>'first_trade_id')::bigint, (j->>'last_trade_id')::bigint, (j->>'closed')::boolean,
       'epoch'::timestamptz + (j->>'event_time')::bigint * interval '1 ms', j->>'source'
FROM st_raw ON CONFLICT DO NOTHING;
INSERT INTO kline_1m (symbol, open_time, close_time, open, high, low, close, volume, quote_volume,
                      trades, taker_buy_volume, taker_buy_quote_volume, first_trade_id, last_trade_id,
                      closed, event_time, source, row_count)
SELECT symbol, date_trunc('minute', open_time), date_trunc('minute', open_time) + interval '59.999 s',
       (array_agg(open ORDER BY open_time))[1], max(high), min(low),
       (array_agg(close ORDER BY open_time DESC))[1], sum(volume), sum(quote_volume), sum(trades),
       sum(taker_buy_volume), sum(taker_buy_quote_volume), min(first_trade_id), max(last_trade_id),
       true, max(event_time), 'ws', count(*)
FROM kline_1s GROUP BY symbol, date_trunc('minute', open_time)
ON CONFLICT DO NOTHING;
SQL
}

# st_start ARGS... → kline-streamer on a free port (ST_PORT, ST_PID, ST_URL), waits for /healthz.
st_start() {
	ST_PORT=$(kp_free_port)
	kp_bg kline-streamer "$KP_BIN/kline-streamer" --listen "127.0.0.1:$ST_PORT" --stats-interval 0 "$@"
	ST_PID=$BG_PID
	ST_URL=http://127.0.0.1:$ST_PORT
	kp_wait_for 15 curl -fsS -o /dev/null "$ST_URL/healthz"
}

# st_ws SCRIPT ARGS... → runs tests/browser/wsclient.js (Node + ws) against the streamer.
st_ws() {
	st_node_ready
	NODE_PATH=$ST_NODE_MODULES node "$KP_ROOT/tests/browser/wsclient.js" "$ST_PORT" "$@"
}

# st_metric NAME → the value of a metric line (first match) from /metrics.
st_metric() {
	curl -fsS "$ST_URL/metrics" | awk -v n="$1" '$1 == n { print $2; exit }'
}

# st_node_ready → installs tests/browser's Node packages if they are not there yet (npm ci,
# offline from the cache): every suite that runs st_ws may be the first to need them.
st_node_ready() {
	[[ -d $ST_NODE_MODULES/ws ]] || (cd "$KP_ROOT/tests/browser" && npm ci --no-audit --no-fund --prefer-offline --loglevel=error >&2)
}

# st_fifo → creates $BATS_TEST_TMPDIR/feed.fifo and prints its path (the streamer's -i).
st_fifo() {
	local f=$BATS_TEST_TMPDIR/feed.fifo
	[[ -p $f ]] || mkfifo "$f"
	echo "$f"
}

# st_feed FIFO CMD → runs CMD in the background with stdout into FIFO, then holds the
# FIFO open (no EOF) until the test ends. Sets FEED_PID.
st_feed() {
	local fifo=$1
	shift
	kp_bg feeder bash -c "exec >'$fifo'; $*; exec sleep 3600"
	FEED_PID=$BG_PID
}

# st_last_close FILE SYMBOL → the close of SYMBOL's newest kline in an NDJSON file.
st_last_close() {
	grep "\"symbol\":\"$2\"" "$1" | tail -1 | jq -r .close
}

# st_klines FILE → the kline messages of a wsclient.js transcript, one per line.
st_klines() {
	grep '^{"type":"kline"' "$1" || true
}

# st_snapshot_check NDJSON [SECS] → waits up to SECS (default 20) until a ["*"] snapshot
# of the streamer on ST_PORT holds every symbol of the NDJSON file at its newest
# open_time; prints how many are missing or behind when it gives up (status 1).
st_snapshot_check() {
	KP_ROOT=$KP_ROOT python3 - "$ST_PORT" "$1" "${2:-20}" <<'PY'
import json, sys, time
import os
sys.path.insert(0, os.environ["KP_ROOT"] + "/tests/faults")
import kpws
port, path, secs = int(sys.argv[1]), sys.argv[2], float(sys.argv[3])
want = {}
for line in open(path):
    k = json.loads(line)
    want[k["symbol"]] = max(want.get(k["symbol"], 0), k["open_time"])
deadline, bad = time.monotonic() + secs, None
while time.monotonic() < deadline:
    try:
        ws = kpws.WS("127.0.0.1", port, "/ws", timeout=10)
        ws.send_json({"op": "subscribe", "symbols": ["*"]})
        while True:
            m = ws.recv_json()
            if m.get("type") == "snapshot":
                break
        ws.close()
    except (OSError, kpws.WsError, ValueError) as e:
        bad = f"error {e}"
        time.sleep(0.5)
        continue
    have = {u["symbol"]: u["kline"]["open_time"] for u in m["updates"]}
    missing = [s for s in want if s not in have]
    behind = [s for s in want if s in have and have[s] < want[s]]
    if not missing and not behind:
        print(f"snapshot: all {len(want)} symbols at their newest open_time")
        sys.exit(0)
    bad = (f"{len(missing)} of {len(want)} symbols missing (e.g. {missing[:3]}), "
           f"{len(behind)} behind (e.g. {behind[:3]})")
    time.sleep(0.5)
print(f"snapshot: {bad}")
sys.exit(1)
PY
}

#!/usr/bin/env bats
# kline-streamer limits that one client must not be able to turn against the others:
# placeholder names (subscribed before they trade) leave the table when nobody follows
# them and are capped per connection; a client's pending bytes are bounded
# (--max-pending-bytes, 4009) and repeated "*" snapshots replace each other; a repeated
# ["*"] after an unsubscribe brings the symbol back.

bats_require_minimum_version 1.5.0
load helpers
load streamer_helpers

setup() {
	GEN=$KP_TBIN/kp-klinegen
}

# st_py SCRIPT ARGS... → python3 with kpws importable and the streamer's port as PORT.
st_py() {
	local script=$1
	shift
	KP_ROOT=$KP_ROOT PORT=$ST_PORT python3 -c "
import json, os, socket, sys, time
sys.path.insert(0, os.environ['KP_ROOT'] + '/tests/faults')
import kpws
PORT = int(os.environ['PORT'])
def ws():
    return kpws.WS('127.0.0.1', PORT, '/ws', timeout=10)
def reply(w, want=('subscribed', 'unsubscribed', 'error')):
    while True:
        m = w.recv_json()
        if m.get('type') in want:
            return m
$script" "$@"
}

@test "streamer limits: churned names leave the table; another client can still subscribe a name that has not traded" {
	fifo=$(st_fifo)
	st_start -i "$fifo" --max-symbols 50 --max-rate 400
	st_feed "$fifo" "'$GEN' --symbols 5 --seconds 2"
	kp_wait_for 10 bash -c "[ \"\$(curl -fsS '$ST_URL/metrics' | awk '\$1==\"kline_streamer_symbols\"{print \$2}')\" = 5 ]"
	# one connection churns 200 made-up names (4 x --max-symbols), within its rate limit
	run -0 st_py '
w = ws()
errors = 0
for i in range(200):
    name = "FAKE%dUSDT" % i
    w.send_json({"op": "subscribe", "symbols": [name]})
    errors += reply(w)["type"] == "error"
    w.send_json({"op": "unsubscribe", "symbols": [name]})
    reply(w)
    time.sleep(0.003)
print("churn errors", errors)
w.close()
sys.exit(1 if errors else 0)'
	echo "$output"
	# nothing of it is left, and a newcomer can follow a symbol that has not traded yet
	kp_wait_for 5 bash -c "[ \"\$(curl -fsS '$ST_URL/metrics' | awk '\$1==\"kline_streamer_symbols\"{print \$2}')\" = 5 ]"
	[ "$(st_metric kline_streamer_placeholder_symbols)" = 0 ]
	[ "$(st_metric kline_streamer_placeholders_freed_total)" -ge 200 ]
	run -0 st_py '
w = ws()
w.send_json({"op": "subscribe", "symbols": ["NEWCOINUSDT"]})
m = reply(w)
print(m)
sys.exit(0 if m["type"] == "subscribed" else 1)'
	kill -0 "$ST_PID"
}

@test "streamer limits: one connection holds at most --max-placeholders untraded names; names that trade stop counting" {
	fifo=$(st_fifo)
	st_start -i "$fifo" --max-symbols 50 --max-placeholders 8
	run -0 st_py '
w = ws()
w.send_json({"op": "subscribe", "symbols": ["P%dUSDT" % i for i in range(8)]})
assert reply(w)["type"] == "subscribed"
w.send_json({"op": "subscribe", "symbols": ["P8USDT"]})
m = reply(w)
print(m)
assert m["type"] == "error" and "not traded" in m["error"], m
# the first name trades (the test feeds it now): it no longer counts, one more fits
open(sys.argv[1], "w").write("go")
deadline = time.time() + 10
while time.time() < deadline:
    w.send_json({"op": "subscribe", "symbols": ["P8USDT"]})
    if reply(w)["type"] == "subscribed":
        print("ok after P0USDT traded")
        sys.exit(0)
    time.sleep(0.3)
sys.exit(1)' "$BATS_TEST_TMPDIR/trade.req" &
	py=$!
	kp_wait_for 10 test -s "$BATS_TEST_TMPDIR/trade.req"
	st_feed "$fifo" "'$GEN' --symbols P0USDT --seconds 2"
	wait "$py"
	# another connection is not affected by the first one's cap
	run -0 st_py '
w = ws()
w.send_json({"op": "subscribe", "symbols": ["Q%dUSDT" % i for i in range(8)]})
sys.exit(0 if reply(w)["type"] == "subscribed" else 1)'
}

@test "streamer limits: clients that ask for more than they read stay bounded: a newer \"*\" snapshot replaces the unsent ones" {
	fifo=$(st_fifo)
	st_start -i "$fifo" --slow-client-ms 20000
	st_feed "$fifo" "'$GEN' --symbols 2000 --seconds 2"
	kp_wait_for 20 bash -c "[ \"\$(curl -fsS '$ST_URL/metrics' | awk '\$1==\"kline_streamer_klines_total\"{print \$2}')\" = 4000 ]"
	rss0=$(awk '/^VmRSS/ {print $2}' "/proc/$ST_PID/status")
	# 20 clients that never read each ask for 20 "*" snapshots (~1.6 MB each at 2,000
	# symbols): 640 MB if every snapshot waited, a few MB each when a newer one replaces it
	KP_ROOT=$KP_ROOT PORT=$ST_PORT python3 -c '
import os, socket, sys, time
sys.path.insert(0, os.environ["KP_ROOT"] + "/tests/faults")
import kpws
socks = []
for i in range(20):
    s = socket.socket()
    s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
    s.connect(("127.0.0.1", int(os.environ["PORT"])))
    w = kpws.WS.__new__(kpws.WS)
    w.sock, w.buf, w.closed = s, b"", False
    s.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
              b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
    w._read_until(b"\r\n\r\n")
    for _ in range(20):
        w.send_json({"op": "subscribe", "symbols": ["*"]})
    socks.append(s)
open(sys.argv[1], "w").close()
time.sleep(30)' "$BATS_TEST_TMPDIR/sent" &
	py=$!
	kp_wait_for 30 test -e "$BATS_TEST_TMPDIR/sent"
	kp_wait_for 10 bash -c "[ \"\$(curl -fsS '$ST_URL/metrics' | awk '\$1==\"kline_streamer_snapshots_superseded_total\"{print \$2}')\" -ge 300 ]"
	rss=$(awk '/^VmRSS/ {print $2}' "/proc/$ST_PID/status")
	echo "# non-reading clients: RSS ${rss0} kB before, ${rss} kB with 20 x 20 \"*\" requests pending" >&3
	bound=$((rss0 + 150 * 1024))
	if ldd "$KP_BIN/kline-streamer" | grep -q libasan; then bound=$((bound * 3)); fi
	[ "$rss" -lt "$bound" ]
	kill "$py" 2>/dev/null || true
	wait "$py" || true
	kill -0 "$ST_PID"
}

@test "streamer limits: a \"*\" client whose pending updates pass --max-pending-bytes is closed with 4009 and counted" {
	fifo=$(st_fifo)
	st_start -i "$fifo" --max-pending-bytes 1048576 --queue-max 100000 --slow-client-ms 60000
	bulk=$BATS_TEST_TMPDIR/bulk.ndjson
	"$GEN" --symbols 2000 --seconds 30 >"$bulk"
	# subscribes to "*" and never reads again; the feed then updates 2,000 symbols (~1.6 MB
	# of distinct pending updates, over the 1 MiB bound)
	st_py '
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
s.connect(("127.0.0.1", PORT))
w = kpws.WS.__new__(kpws.WS)
w.sock, w.buf, w.closed = s, b"", False
s.sendall(b"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
          b"Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n")
w._read_until(b"\r\n\r\n")
w.send_json({"op": "subscribe", "symbols": ["*"]})
os.dup2(s.fileno(), 9)  # keep the connection open after this script ends
os.set_inheritable(9, True)
os.execvp("sleep", ["sleep", "60"])' >/dev/null 3>&- &
	sleeper=$!
	kp_wait_for 10 bash -c "[ \"\$(curl -fsS '$ST_URL/metrics' | awk '\$1==\"kline_streamer_connections\"{print \$2}')\" = 1 ]"
	st_feed "$fifo" "cat '$bulk'"
	kp_wait_for 20 bash -c "[ \"\$(curl -fsS '$ST_URL/metrics' | awk '\$1==\"kline_streamer_pending_bytes_closed_total\"{print \$2}')\" = 1 ]"
	grep -q "bytes pending (max 1048576), closing" "$KP_OUT/kline-streamer.log"
	kp_wait_for 10 bash -c "[ \"\$(curl -fsS '$ST_URL/metrics' | awk '\$1==\"kline_streamer_connections\"{print \$2}')\" = 0 ]"
	[ "$(st_metric kline_streamer_slow_clients_closed_total)" = 0 ]
	kill "$sleeper" 2>/dev/null || true
}

@test "streamer limits: a repeated [\"*\"] after unsubscribing one symbol follows it again; names subscribed before they trade reach \"*\" clients once they trade" {
	fifo=$(st_fifo)
	st_start -i "$fifo"
	st_feed "$fifo" "'$GEN' --symbols 20 --seconds 2"
	kp_wait_for 10 bash -c "[ \"\$(curl -fsS '$ST_URL/metrics' | awk '\$1==\"kline_streamer_symbols\"{print \$2}')\" = 20 ]"
	run -0 st_py '
w = ws()
w.send_json({"op": "subscribe", "symbols": ["*"]})
assert reply(w, ("subscribed",))["count"] == 20
w.send_json({"op": "subscribe", "symbols": ["*"]})
assert reply(w, ("subscribed",))["count"] == 20
w.send_json({"op": "unsubscribe", "symbols": ["BTCUSDT"]})
assert reply(w, ("unsubscribed",))["count"] == 19
w.send_json({"op": "subscribe", "symbols": ["*"]})
m = reply(w, ("subscribed",))
snap = reply(w, ("snapshot",))
assert m["count"] == 20 and "BTCUSDT" in [u["symbol"] for u in snap["updates"]], m
# a name nobody traded yet is not part of "*" (no placeholder for it)
v = ws()
v.send_json({"op": "subscribe", "symbols": ["LATEUSDT"]})
assert reply(v)["type"] == "subscribed"
w.send_json({"op": "subscribe", "symbols": ["*"]})
assert reply(w, ("subscribed",))["count"] == 20
print("ok")'
}

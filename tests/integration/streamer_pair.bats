#!/usr/bin/env bats
# Two kline-streamers behind one address (HAProxy with deploy/haproxy/haproxy.cfg, the file
# docker-compose.cluster.yml mounts): each reads every partition, so either can serve any
# browser. kill -9 of the one serving a client: the client's socket closes, it reconnects
# to the same address, lands on the other and gets a fresh snapshot.

bats_require_minimum_version 1.5.0
load helpers
load streamer_helpers

setup() {
	command -v haproxy >/dev/null || { echo "haproxy is not installed (make deps)"; false; }
	GEN=$KP_TBIN/kp-klinegen
	TOPIC=$(kp_topic_new 3)
}

produce() { # FILE → the topic, keyed by symbol
	jq -r '.symbol + "\t" + (. | tojson)' "$1" | kcat -P -b "$KAFKA_BROKERS" -t "$TOPIC" -K '\t' -z none
}

lb_start() { # → LB_PORT; HAProxy in front of streamers on ports $1 and $2
	LB_PORT=$(kp_free_port)
	LB_BIND=127.0.0.1:$LB_PORT STREAMER_A=127.0.0.1:$1 STREAMER_B=127.0.0.1:$2 \
		kp_bg haproxy haproxy -db -f "$KP_ROOT/deploy/haproxy/haproxy.cfg"
	kp_wait_for 15 curl -fsS -o /dev/null "http://127.0.0.1:$LB_PORT/healthz"
}

@test "streamer pair behind HAProxy: kill -9 the instance serving a client; it reconnects to the other and gets a fresh snapshot" {
	f=$BATS_TEST_TMPDIR/k.ndjson
	"$GEN" --symbols 50 --seconds 3 >"$f"
	produce "$f"
	st_start -t "$TOPIC" -b "$KAFKA_BROKERS"
	a_port=$ST_PORT a_pid=$ST_PID
	st_start -t "$TOPIC" -b "$KAFKA_BROKERS"
	b_port=$ST_PORT b_pid=$ST_PID
	lb_start "$a_port" "$b_port"
	# newer seconds, produced while the client is away: the fresh snapshot must have them
	"$GEN" --symbols 50 --seconds 6 >"$BATS_TEST_TMPDIR/all.ndjson"
	tail -n +151 "$BATS_TEST_TMPDIR/all.ndjson" >"$BATS_TEST_TMPDIR/later.ndjson"
	run python3 - "$LB_PORT" "$a_port:$a_pid" "$b_port:$b_pid" "$BATS_TEST_TMPDIR/later.ndjson" \
		"$KAFKA_BROKERS" "$TOPIC" <<'PY'
import json, os, signal, subprocess, sys, time, urllib.request
sys.path.insert(0, os.environ["KP_ROOT"] + "/tests/faults")
import kpws
lb = int(sys.argv[1])
inst = {int(p): int(pid) for p, pid in (a.split(":") for a in sys.argv[2:4])}
later, brokers, topic = sys.argv[4], sys.argv[5], sys.argv[6]

def connections(port):
    body = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5).read().decode()
    return next(int(float(l.split()[1])) for l in body.splitlines() if l.startswith("kline_streamer_connections "))

def snapshot(ws):
    ws.send_json({"op": "subscribe", "symbols": ["*"]})
    while True:
        m = ws.recv_json()
        if m.get("type") == "snapshot":
            return {k["symbol"]: k["kline"]["open_time"] for k in kpws.updates(m)}

ws = kpws.WS("127.0.0.1", lb, "/ws", timeout=10)
first = snapshot(ws)
assert len(first) == 50, f"first snapshot has {len(first)} symbols"
serving = [p for p in inst if connections(p) == 1]
assert len(serving) == 1, {p: connections(p) for p in inst}
dead, alive = serving[0], next(p for p in inst if p != serving[0])
os.kill(inst[dead], signal.SIGKILL)
t0 = time.monotonic()
try:  # the socket to the dead instance closes (HAProxy shuts the session down)
    while True:
        ws.recv()
except (OSError, kpws.WsError, ValueError):
    pass
closed_after = time.monotonic() - t0
with open(later) as f:  # the market moved on while the client was away
    subprocess.run(["kcat", "-P", "-b", brokers, "-t", topic, "-K", "\t", "-z", "none"], check=True,
                   input="".join(json.loads(l)["symbol"] + "\t" + l for l in f), text=True)
want = {}
for l in open(later):
    k = json.loads(l)
    want[k["symbol"]] = max(want.get(k["symbol"], 0), k["open_time"])
deadline, got, tries = time.monotonic() + 20, {}, 0
while time.monotonic() < deadline:  # reconnect with a short backoff, as the page does
    tries += 1
    try:
        ws = kpws.WS("127.0.0.1", lb, "/ws", timeout=5)
        got = snapshot(ws)
        if all(got.get(s) == t for s, t in want.items()):
            break
        ws.close()
    except (OSError, kpws.WsError, ValueError):
        pass
    time.sleep(0.3)
behind = [s for s, t in want.items() if got.get(s) != t]
assert not behind, f"{len(behind)} symbols not at their newest second after reconnecting, e.g. {behind[:3]}"
assert connections(alive) >= 1, "the survivor serves the reconnected client"
print(f"killed :{dead}; socket closed after {closed_after:.1f} s; fresh snapshot from :{alive} after {tries} connect(s)")
PY
	echo "$output"
	[ "$status" -eq 0 ]
	# the survivor is healthy, and the dead one leaves the LB's rotation within its health
	# checks (fall 2 x inter 1 s; the client above may have reconnected sooner): then five
	# requests in a row all succeed
	kp_wait_for 10 bash -c "for _ in 1 2 3 4 5; do curl -fsS -o /dev/null 'http://127.0.0.1:$LB_PORT/healthz' || exit 1; done"
}

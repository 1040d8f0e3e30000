#!/usr/bin/env python3
"""tests/attack/attack.py — a scripted attack on a running kline-streamer.

    attack.py --port PORT --pid PID --symbol SYM[,SYM...] [--secs S] [--conns N] [--json FILE]

While one well-behaved client (subscribed to the --symbol list) measures how late its
updates arrive (receive clock - kline event_time), the script runs, at the same
time and for --secs seconds:

  oversized   text frames far above --max-msg (1 MiB), and frames announcing 2^62 bytes
  binary      binary frames, unmasked frames, reserved opcodes
  utf8        text frames of invalid UTF-8, and a fragmented message never finished
  flood       thousands of subscribe/unsubscribe messages per second
  churn       --conns connections opened (WebSocket handshake) and dropped at once,
              plus half-open TCP connections that never send a byte
  slow        clients subscribed to everything that never read (tiny receive buffer),
              each asking for --slow-repeat "*" snapshots
  names       one connection churning made-up names (subscribe, unsubscribe) within the
              rate limit, the way one client could fill the symbol table
  traversal   path traversal and odd paths on the static file server
  sql         SQL injection in every /api/klines parameter

and samples the streamer's VmRSS every 0.2 s. At the end a newcomer subscribes a
name that never traded (it must get "subscribed", not "too many symbols"). Prints
one JSON object (also to --json) and, on stderr, the attack table: whether the
server stayed up, RSS before / max / after, the normal client's latency before
and during the attack, the HTTP status of every
traversal/SQL attempt and whether any response leaked file or table contents.
Exit 0 iff alive, nothing leaked, and the normal client got updates during the
attack. python3 stdlib only.
"""

import argparse
import json
import multiprocessing
import os
import socket
import struct
import sys
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "faults"))
import kpws  # noqa: E402

HOST = "127.0.0.1"


def rss_kb(pid):
    try:
        for line in open(f"/proc/{pid}/status"):
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    except OSError:
        return None
    return None


def cpu_secs(pid):
    """utime + stime of the process, in seconds."""
    try:
        f = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()
        return (int(f[11]) + int(f[12])) / os.sysconf("SC_CLK_TCK")
    except (OSError, IndexError, ValueError):
        return None


def alive(pid):
    try:
        st = open(f"/proc/{pid}/stat").read().rsplit(")", 1)[1].split()[0]
        return st != "Z"
    except OSError:
        return False


def pct(xs, p):
    if not xs:
        return None
    xs = sorted(xs)
    return round(xs[min(len(xs) - 1, int(p / 100 * len(xs)))], 1)


PHASES = ("before", "during", "after")


class Normal(multiprocessing.Process):
    """The well-behaved client: latency of every update of its symbols, by phase. A
    process of its own: in this one, the attack threads would hold the GIL and the
    measurement would be of Python, not of the streamer."""

    def __init__(self, port, symbols):
        super().__init__(daemon=True)
        self.port, self.symbols = port, set(symbols)
        self._phase = multiprocessing.Value("i", 0)
        self._stop = multiprocessing.Event()
        self._rx, self._tx = multiprocessing.Pipe(False)

    def set_phase(self, name):
        self._phase.value = PHASES.index(name)

    def finish(self, timeout=15):
        """Stops the client; returns (latencies by phase, errors)."""
        self._stop.set()
        if self._rx.poll(timeout):
            return self._rx.recv()
        return {ph: [] for ph in PHASES}, ["normal client did not report"]

    def run(self):
        lat, errors, worst = {ph: [] for ph in PHASES}, [], {}
        while not self._stop.is_set():
            try:
                ws = kpws.WS(HOST, self.port, "/ws", timeout=5)
                ws.send_json({"op": "subscribe", "symbols": sorted(self.symbols)})
                while not self._stop.is_set():
                    msg = ws.recv_json()
                    now = time.time() * 1000
                    if msg.get("type") == "snapshot":
                        continue  # the snapshot replays an old update: not a latency sample
                    ph = PHASES[self._phase.value]
                    for u in kpws.updates(msg):
                        k = u.get("kline") or {}
                        if k.get("symbol") in self.symbols and k.get("event_time"):
                            lat[ph].append(now - k["event_time"])
                            sec = int(now // 1000)
                            worst[sec] = max(worst.get(sec, 0), now - k["event_time"])
                ws.close()
            except (OSError, kpws.WsError, ValueError) as e:
                errors.append(f"{PHASES[self._phase.value]}: {e}")
                time.sleep(0.2)
        lat["worst_by_second"] = [[s, round(v, 1)] for s, v in sorted(worst.items())]
        self._tx.send((lat, errors))


def http(port, raw, timeout=5):
    """Sends a raw request; returns (status, body bytes)."""
    s = socket.create_connection((HOST, port), timeout=timeout)
    try:
        s.sendall(raw)
        data = b""
        while True:
            try:
                c = s.recv(65536)
            except socket.timeout:
                break
            if not c:
                break
            data += c
            if len(data) > 4 << 20:
                break
            # stop at the end of a Content-Length body
            if b"\r\n\r\n" in data:
                head, body = data.split(b"\r\n\r\n", 1)
                cl = [l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")]
                if cl and len(body) >= int(cl[0].split(b":")[1]):
                    break
    finally:
        s.close()
    try:
        status = int(data.split(b" ", 2)[1])
    except (IndexError, ValueError):
        status = 0
    body = data.split(b"\r\n\r\n", 1)[1] if b"\r\n\r\n" in data else b""
    return status, body


def get(port, path):
    return http(port, f"GET {path} HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n".encode())


TRAVERSAL = [
    "/../../../../etc/passwd", "/..%2f..%2f..%2f..%2fetc%2fpasswd", "/%2e%2e/%2e%2e/%2e%2e/etc/passwd",
    "/%252e%252e/%252e%252e/etc/passwd", "/....//....//....//etc/passwd", "/..\\..\\..\\etc\\passwd",
    "/index.html/../../../../etc/passwd", "/./././../../../proc/self/environ", "/%00/etc/passwd",
    "/index.html%00.js", "//etc/passwd", "/static/../../../../../../etc/shadow",
    "/" + "a" * 5000, "/..", "/.git/config", "/../schema/001_init.sql",
]
# markers of leaked content: /etc/passwd, environment, SQL files, git config
LEAKS = [b"root:x:", b"root:*:", b"PATH=", b"CREATE TABLE", b"[core]", b"DATABASE_URL", b"postgresql://"]

SQL = [
    "symbol=BTCUSDT%27%3B%20DROP%20TABLE%20kline_1s%3B--", "symbol=%27%20OR%20%271%27%3D%271",
    "symbol=BTCUSDT&interval=1m%3Bselect%20pg_sleep(5)", "symbol=BTCUSDT&from=1%20or%201%3D1",
    "symbol=BTCUSDT&to=0%29%20union%20select%20*%20from%20pg_shadow--", "symbol=BTCUSDT&limit=1%3Bdelete%20from%20kline_1s",
    "symbol=BTCUSDT&interval=kline_1s%20--", "symbol=BTC%00USDT", "symbol=" + "A" * 300,
    "symbol=BTCUSDT&symbol=ETHUSDT", "symbol=%E2%80%AE%27--", "symbol=BTCUSDT&from=-1",
    "symbol=BTCUSDT&limit=99999999999999999999", "symbol=BTCUSDT&interval=1m&to=1e99",
]


class Attack:
    def __init__(self, a):
        self.a = a
        self.stop = threading.Event()
        self.counts = {}
        self.lock = threading.Lock()

    def count(self, k, n=1):
        with self.lock:
            self.counts[k] = self.counts.get(k, 0) + n

    def loop(self, name, fn):
        def run():
            while not self.stop.is_set():
                try:
                    fn()
                    self.count(name)
                except (OSError, kpws.WsError, ValueError):
                    self.count(name + "_refused")
                    time.sleep(0.01)
        t = threading.Thread(target=run, daemon=True)
        t.start()
        return t

    def ws(self):
        return kpws.WS(HOST, self.a.port, "/ws", timeout=5)

    def oversized(self):
        w = self.ws()
        try:
            w.send_frame(kpws.OP_TEXT, b"[" * (1 << 20))
            w.recv()  # the server closes
        finally:
            w.close()
        w = self.ws()
        try:
            # announce 2^62 bytes and send a few: the server must not allocate it
            w.sock.sendall(struct.pack("!BBQ", 0x81, 0xFF, 1 << 62) + os.urandom(4) + b"x" * 100)
            w.sock.settimeout(3)
            w.sock.recv(100)
        finally:
            w.close()

    def binary(self):
        w = self.ws()
        try:
            w.send_frame(kpws.OP_BIN, os.urandom(512))
            w.send_frame(kpws.OP_TEXT, '{"op":"subscribe","symbols":["*"]}', mask=False)
            w.send_frame(0x3, b"reserved opcode")
            w.recv()
        finally:
            w.close()

    def utf8(self):
        w = self.ws()
        try:
            w.send_frame(kpws.OP_TEXT, b'{"op":"subscribe","symbols":["\xff\xfe\xc0\xaf"]}')
            w.send_frame(kpws.OP_TEXT, b"\xed\xa0\x80" * 100)
            # a fragmented message that never ends
            w.send_frame(kpws.OP_TEXT, b'{"op":"subs', fin=False)
            for _ in range(50):
                w.send_frame(kpws.OP_CONT, b"x" * 100, fin=False)
            w.recv()
        finally:
            w.close()

    def flood(self):
        w = self.ws()
        try:
            msgs = [json.dumps({"op": "subscribe", "symbols": [f"FLOOD{j}USDT"]}) for j in range(20)]
            msgs += [
                    json.dumps({"op": "unsubscribe", "symbols": ["*"]}), "{}", "[]", "null",
                    json.dumps({"op": "subscribe", "symbols": ["*"] * 1000})]
            batch = b""
            for i in range(2000):
                m = msgs[i % len(msgs)].encode()
                key = os.urandom(4)
                batch += struct.pack("!BB", 0x81, 0x80 | 126 if len(m) >= 126 else 0x80 | len(m))
                if len(m) >= 126:
                    batch += struct.pack("!H", len(m))
                batch += key + kpws._xor(m, key)
            w.sock.sendall(batch)
            self.count("flood_msgs", 2000)
            w.sock.settimeout(2)
            try:
                while w.sock.recv(65536):
                    pass
            except socket.timeout:
                pass
        finally:
            w.close()

    def churn(self):
        # a WebSocket handshake, then drop without a close frame (RST when possible)
        w = self.ws()
        w.sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        w.sock.close()

    def halfopen(self, n):
        socks = []
        for _ in range(n):
            try:
                socks.append(socket.create_connection((HOST, self.a.port), timeout=2))
            except OSError:
                self.count("halfopen_refused")
        self.count("halfopen", len(socks))
        return socks

    def slow(self, n):
        socks = []
        for _ in range(n):
            try:
                s = socket.socket()
                s.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1024)
                s.settimeout(5)
                s.connect((HOST, self.a.port))
                w = kpws.WS.__new__(kpws.WS)
                w.sock, w.buf, w.closed = s, b"", False
                key = "dGhlIHNhbXBsZSBub25jZQ=="
                s.sendall((f"GET /ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                           f"Sec-WebSocket-Key: {key}\r\nSec-WebSocket-Version: 13\r\n\r\n").encode())
                w._read_until(b"\r\n\r\n")
                for _ in range(self.a.slow_repeat):
                    w.send_json({"op": "subscribe", "symbols": ["*"]})
                socks.append(s)  # never read again
            except (OSError, kpws.WsError):
                self.count("slow_refused")
        self.count("slow", len(socks))
        return socks

    def names(self):
        """Made-up names subscribed and unsubscribed at ~18 messages/s (limit 20)."""
        w = self.ws()
        i = 0
        try:
            while not self.stop.is_set():
                name = f"CHURN{os.getpid()}X{i}USDT"
                i += 1
                for op in ("subscribe", "unsubscribe"):
                    w.send_json({"op": op, "symbols": [name]})
                    while True:
                        m = w.recv_json()
                        if m.get("type") in ("subscribed", "unsubscribed", "error"):
                            break
                    if m.get("type") == "error":
                        self.count("names_error")
                self.count("names_churned")
                time.sleep(0.11)
        finally:
            w.close()


def newcomer(port):
    """A client subscribing a name that never traded: the reply's type."""
    w = kpws.WS(HOST, port, "/ws", timeout=5)
    try:
        w.send_json({"op": "subscribe", "symbols": ["NEVERTRADEDUSDT"]})
        while True:
            m = w.recv_json()
            if m.get("type") in ("subscribed", "error"):
                return m.get("type") if m.get("type") == "subscribed" else m.get("error")
    finally:
        w.close()


def table(res):
    """The attack table (stderr and --json): the normal client's latency, RSS."""
    rows = ["phase    updates   p50 ms   p99 ms   max ms"]
    for ph in ("before", "during", "after"):
        n = res[f"normal_{ph}"]
        rows.append(f"{ph:<8} {n['updates']:>7} {n['p50_ms'] or '-':>8} {n['p99_ms'] or '-':>8} "
                    f"{n['max_ms'] or '-':>8}")
    rows.append(f"RSS kB: before {res['rss_kb_before']}, max {res['rss_kb_max']}, after {res['rss_kb_after']}")
    rows.append(f"streamer CPU: before {res['cpu_pct_before']} %, during {res['cpu_pct_during']} %")
    return "\n".join(rows)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--pid", type=int, required=True, help="the streamer's pid (RSS, liveness)")
    ap.add_argument("--symbol", required=True, help="symbols the normal client follows (A,B,...)")
    ap.add_argument("--secs", type=float, default=20, help="attack duration (default 20)")
    ap.add_argument("--baseline-secs", type=float, default=8, help="normal client alone first (default 8)")
    ap.add_argument("--conns", type=int, default=10000, help="connections opened and dropped (default 10000)")
    ap.add_argument("--slow", type=int, default=50, help="slow (never reading) clients (default 50)")
    ap.add_argument("--slow-repeat", type=int, default=5,
                    help='"*" subscribes each slow client sends (default 5)')
    ap.add_argument("--json", help="write the result here too")
    a = ap.parse_args()

    res = {"rss_kb_start": rss_kb(a.pid)}
    normal = Normal(a.port, a.symbol.split(","))
    normal.start()
    c0, w0 = cpu_secs(a.pid), time.monotonic()
    time.sleep(a.baseline_secs)
    res["rss_kb_before"] = rss_kb(a.pid)
    c1, w1 = cpu_secs(a.pid), time.monotonic()
    res["cpu_pct_before"] = round(100 * (c1 - c0) / (w1 - w0), 1) if c0 is not None and c1 is not None else None

    at = Attack(a)
    rss_max = [res["rss_kb_before"] or 0]

    def sampler():
        while not at.stop.is_set():
            r = rss_kb(a.pid)
            if r:
                rss_max[0] = max(rss_max[0], r)
            time.sleep(0.2)
    threading.Thread(target=sampler, daemon=True).start()

    normal.set_phase("during")
    t0, t_wall0 = time.monotonic(), time.time()
    workers = [at.loop("oversized", at.oversized), at.loop("binary", at.binary), at.loop("utf8", at.utf8)]
    workers += [at.loop("flood", at.flood) for _ in range(2)]
    workers += [at.loop("names", at.names)]
    slow_socks = at.slow(a.slow)
    half = at.halfopen(200)

    # churn: --conns handshakes-and-drops from 8 threads
    left = [a.conns]

    def churner():
        while not at.stop.is_set():
            with at.lock:
                if left[0] <= 0:
                    return
                left[0] -= 1
            try:
                at.churn()
                at.count("churn")
            except (OSError, kpws.WsError):
                at.count("churn_refused")
    churners = [threading.Thread(target=churner, daemon=True) for _ in range(8)]
    for t in churners:
        t.start()

    # HTTP probes, repeated through the attack window
    http_res = {"traversal": {}, "sql": {}}
    index_like = {}
    leaks = []
    while time.monotonic() - t0 < a.secs:
        for p in TRAVERSAL:
            try:
                st, body = get(a.port, p)
            except OSError as e:
                st, body = f"error {e}", b""
            http_res["traversal"][p[:60]] = st
            index_like[p[:60]] = body.lstrip().lower().startswith(b"<!doctype html")
            leaks += [f"{p[:60]}: {m.decode()}" for m in LEAKS if m in body]
        for q in SQL:
            try:
                st, body = get(a.port, "/api/klines?" + q)
            except OSError as e:
                st, body = f"error {e}", b""
            http_res["sql"][q[:60]] = st
            leaks += [f"sql {q[:60]}: {m.decode()}" for m in LEAKS if m in body]
        time.sleep(0.5)
    churn_secs = None
    for t in churners:
        t.join(max(0.1, 120 - (time.monotonic() - t0)))
    churn_secs = round(time.monotonic() - t0, 1)
    c2 = cpu_secs(a.pid)
    res["cpu_pct_during"] = round(100 * (c2 - c1) / (time.monotonic() - w1), 1) if c1 is not None and c2 is not None else None
    at.stop.set()
    for t in workers:
        t.join(5)
    for s in slow_socks + half:
        s.close()
    res["rss_kb_max"] = rss_max[0]
    normal.set_phase("after")
    time.sleep(3)
    res["rss_kb_after"] = rss_kb(a.pid)
    lat, normal_errors = normal.finish()
    res["alive"] = alive(a.pid)
    try:
        res["newcomer_subscribe"] = newcomer(a.port)
    except (OSError, kpws.WsError, ValueError) as e:
        res["newcomer_subscribe"] = f"error {e}"
    # the server still answers normally
    try:
        res["healthz_after"] = get(a.port, "/healthz")[0]
    except OSError as e:
        res["healthz_after"] = f"error {e}"
    res["attack_secs"] = round(a.secs, 1)
    res["churn_done_secs"] = churn_secs
    res["counts"] = at.counts
    for ph in ("before", "during", "after"):
        xs = lat[ph]
        res[f"normal_{ph}"] = {"updates": len(xs), "p50_ms": pct(xs, 50), "p99_ms": pct(xs, 99),
                               "max_ms": round(max(xs), 1) if xs else None}
    res["normal_errors"] = normal_errors[:10]
    # the normal client's worst latency in each wall-clock second (where spikes are)
    res["normal_worst_by_second"] = lat.get("worst_by_second", [])
    res["attack_started_s"] = int(t_wall0)
    res["http"] = http_res
    # refused = a 4xx, or the connection dropped without a response (0: lws does that for
    # URIs it will not parse); a traversal answered 200 must be the page itself (the path
    # was normalised to "/"), which index_like records
    refused = (0, 400, 403, 404, 405, 414, 431)
    bad_status = {k: v for k, v in http_res["sql"].items() if v not in refused}
    bad_status.update({k: v for k, v in http_res["traversal"].items()
                       if v not in refused and not (v == 200 and index_like.get(k))})
    res["http_not_rejected"] = bad_status
    res["leaks"] = sorted(set(leaks))
    res["table"] = table(res)
    print(json.dumps(res, indent=1))
    print(res["table"], file=sys.stderr)
    if a.json:
        with open(a.json, "w") as f:
            json.dump(res, f, indent=1)
    ok = res["alive"] and not res["leaks"] and res["normal_during"]["updates"] > 0 and not bad_status
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

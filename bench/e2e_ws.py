#!/usr/bin/env python3
"""bench/e2e_ws.py — one WebSocket client of kline-streamer that records, for every
kline update it receives, receive wall clock − the kline's event_time (the exchange's
E, its wall-clock send time), as "b <ms>" lines on stdout, for bench_e2e.sh's plot;
plus the split at the update's ingest_time, which in Kafka mode is the Kafka message
timestamp = the producer's receive time: "bk <ms>" (exchange → producer: the exchange's
WebSocket hop) and "bw <ms>" (producer → client: publish, Kafka, streamer, fan-out).

    e2e_ws.py --port P --symbols A,B,... --secs S

The snapshot sent on subscribe replays old updates and is not sampled. The figures in
the table come from kp-wsload (C, 1,000 clients); this sampler gives the distribution.
"""
import argparse
import os
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "tests", "faults"))
import kpws  # noqa: E402


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--port", type=int, required=True)
    ap.add_argument("--symbols", required=True)
    ap.add_argument("--secs", type=float, required=True)
    a = ap.parse_args()
    syms = a.symbols.split(",")[:256]
    ws = kpws.WS("127.0.0.1", a.port, "/ws", timeout=5)
    ws.send_json({"op": "subscribe", "symbols": syms})
    end = time.monotonic() + a.secs
    out = sys.stdout
    n = 0
    while time.monotonic() < end:
        try:
            msg = ws.recv_json()
        except TimeoutError:
            continue
        now = time.time() * 1000.0
        if msg.get("type") == "snapshot":
            continue
        for u in kpws.updates(msg):
            ev = (u.get("kline") or {}).get("event_time")
            if ev:
                out.write(f"b {now - ev:.3f}\n")
                ing = u.get("ingest_time")
                if ing:
                    # where the time goes: ingest_time is the Kafka timestamp, i.e. when
                    # the producer received it: exchange → producer, producer → client
                    out.write(f"bk {ing - ev:.3f}\nbw {now - ing:.3f}\n")
                n += 1
    ws.close()
    print(f"e2e_ws: {n} samples", file=sys.stderr)


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Deterministic canonical 1s klines for tests and benchmarks (kline-inserter).

  gen_klines.py [--symbols S] [--seconds N] [--start MS] [--seed K] [--keyed]
                [--provisional] [--format json|expect|csv]

Prints S symbols x N seconds, ordered by second then symbol (as a live feed would be).
Prices and volumes are exact decimal strings (8 decimals), computed with integers only.

  --format json     canonical NDJSON records (default); with --keyed each line is
                    "SYMBOL<TAB>record", for kcat -P -K$'\\t'
  --format expect   the rows kline_1s must hold, as psql -A -F'|' prints
                    ins_expect_sql (see inserter.bats): symbol|open_ms|close_ms|open|...|closed
  --format csv      the same rows as CSV for COPY into a table shaped like kline_1s
                    (timestamps as timestamptz text), columns as expect plus
                    event_time, source: the benchmark's ceiling
  --csv-out FILE    with --format json: also write the rows as csv to FILE (one pass)
  --live            one second of records per wall-clock second, for the last
                    completed second, --seconds times (a paced feed; json only)
  --provisional     before every closed record, a provisional one (closed=false) with
                    different values, as the exchange sends mid-second updates
"""
import argparse
import datetime
import json
import random
import sys
import time


def dec(units):
    """integer count of 1e-8 → exact decimal string with 8 places"""
    return "%d.%08d" % divmod(units, 100000000)


def kline(rng, sym, t, closed, base):
    o = base + rng.randrange(-50000, 50000)
    c = o + rng.randrange(-30000, 30000)
    trades = rng.randrange(0, 120)
    if trades == 0:
        o = c = h = l = base
        vol = qv = tbv = tbq = 0
        first = last = -1
    else:
        h = max(o, c) + rng.randrange(0, 20000)
        l = min(o, c) - rng.randrange(0, 20000)
        vol = rng.randrange(1, 10**9)
        qv = vol * (l // 100000000 + 1)
        tbv = vol // 2
        tbq = qv // 2
        first = 1000000 + t // 1000 * 200
        last = first + trades - 1
    return {
        "symbol": sym, "interval": "1s", "open_time": t, "close_time": t + 999,
        "open": dec(o), "high": dec(h), "low": dec(l), "close": dec(c),
        "volume": dec(vol), "quote_volume": dec(qv), "trades": trades,
        "taker_buy_volume": dec(tbv), "taker_buy_quote_volume": dec(tbq),
        "first_trade_id": first, "last_trade_id": last, "closed": closed,
        "event_time": t + 1000 + rng.randrange(0, 50), "source": "ws",
    }


def ts(ms):
    d = datetime.datetime.fromtimestamp(ms / 1000, datetime.timezone.utc)
    return d.strftime("%Y-%m-%d %H:%M:%S.") + "%03d+00" % (ms % 1000)


def csv_row(k):
    vals = [str(k[f]) for f in FIELDS]
    vals[1], vals[2] = ts(k["open_time"]), ts(k["close_time"])
    vals[14] = "t" if k["closed"] else "f"
    vals += [ts(k["event_time"]), k["source"]]
    return ",".join(vals) + "\n"


FIELDS = ["symbol", "open_time", "close_time", "open", "high", "low", "close", "volume",
          "quote_volume", "trades", "taker_buy_volume", "taker_buy_quote_volume",
          "first_trade_id", "last_trade_id", "closed"]


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--symbols", type=int, default=3)
    ap.add_argument("--seconds", type=int, default=10)
    ap.add_argument("--start", type=int, default=1789499996000)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--keyed", action="store_true")
    ap.add_argument("--provisional", action="store_true")
    ap.add_argument("--format", choices=["json", "expect", "csv"], default="json")
    ap.add_argument("--live", action="store_true")
    ap.add_argument("--csv-out")
    a = ap.parse_args()
    if a.live:
        a.start = (int(time.time()) - 1) * 1000
    rng = random.Random(a.seed)
    syms = ["T%04dUSDT" % i for i in range(a.symbols)]
    bases = [rng.randrange(10**8, 10**13) for _ in syms]
    out = sys.stdout
    w = out.write
    csv = open(a.csv_out, "w") if a.csv_out else None
    for s in range(a.seconds):
        t = a.start + s * 1000
        if a.live:  # wait until second t is over, as the exchange closes it
            time.sleep(max(0.0, (t + 1000) / 1000 - time.time()))
        for i, sym in enumerate(syms):
            if a.provisional and a.format == "json":
                p = kline(random.Random(t * 7 + i), sym, t, False, bases[i])
                line = json.dumps(p, separators=(",", ":"))
                w(sym + "\t" + line + "\n" if a.keyed else line + "\n")
            k = kline(rng, sym, t, True, bases[i])
            if a.format == "json":
                line = json.dumps(k, separators=(",", ":"))
                w(sym + "\t" + line + "\n" if a.keyed else line + "\n")
                if csv:
                    csv.write(csv_row(k))
            elif a.format == "expect":
                w("|".join(str(k[f]).lower() if f == "closed" else str(k[f]) for f in FIELDS) + "\n")
            else:
                w(csv_row(k))
        if a.live:
            out.flush()
    if csv:
        csv.close()


if __name__ == "__main__":
    main()

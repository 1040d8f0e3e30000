#!/usr/bin/env python3
"""Test data and an independent reference for kline-aggregator (standard library only).

  agg_ref.py gen --start-ms MS --minutes N [--symbols A,B] [--seed S] [--tail-seconds T]
                 [--cp-seconds K] --rows OUT.csv --checkpoints OUT.csv
      1s rows (CSV, kline_1s column order below) with the awkward cases the tests need,
      and checkpoint rows (symbol, first, last, row_count) of K consecutive rows each.
  agg_ref.py check --rows 1s.csv --bars bars.csv --interval SECONDS [--watermark-ms W]
                   [--grace SECONDS] [--incomplete inc.csv]
      Computes every bar of the given length from the 1s rows, by the rules written out
      in bar() below (NOT by the aggregator's SQL), and compares with bars.csv (as dumped
      by BAR_QUERY). Prints "ok N bars" or the differences (exit 1). With --grace, a
      bucket with missing seconds has no bar until the watermark is SECONDS past its end
      (docs/aggregator.md, "Incomplete bars"); --incomplete also compares the unresolved
      reports (symbol,open_ms,row_count,expected as dumped from incomplete_bar) with the
      buckets that are final and incomplete.
  agg_ref.py ndjson --rows 1s.csv
      The same rows as canonical kline NDJSON (input for kline-inserter -i -).
  agg_ref.py binance5m FILE.csv
      Binance 1m dump rows → 5m rows in the same 12-column format (for the ADABTC check).
"""
import argparse
import csv
import random
import sys
from datetime import datetime, timezone
from decimal import Decimal

ROW_COLS = ("symbol,open_time,close_time,open,high,low,close,volume,quote_volume,trades,"
            "taker_buy_volume,taker_buy_quote_volume,first_trade_id,last_trade_id,event_time,source")
# What the bats file selects from kline_<interval>, as CSV:
BAR_COLS = ["symbol", "open_ms", "close_ms", "open", "high", "low", "close", "volume",
            "quote_volume", "trades", "taker_buy_volume", "taker_buy_quote_volume",
            "first_trade_id", "last_trade_id", "row_count", "closed", "source"]


def ts(ms):
    return datetime.fromtimestamp(ms / 1000, tz=timezone.utc).strftime("%Y-%m-%d %H:%M:%S.%f")[:-3] + "+00"


def q8(x):
    return Decimal(x).quantize(Decimal("0.00000001"))


def gen(args):
    rnd = random.Random(args.seed)
    symbols = args.symbols.split(",")
    rows = []
    for sym in symbols:
        price = Decimal("100.00000000") + rnd.randint(0, 5000)
        tid = 1000
        total = args.minutes * 60 + args.tail_seconds
        for s in range(total):
            minute, sec = divmod(s, 60)
            # Scenario per minute (cycles): 0 normal, 1 zero-trade start, 2 zero-trade
            # middle, 3 zero-trade end, 4 no trade at all, 5 missing seconds incl. the
            # first and the last, 6 scattered zero-trade seconds.
            kind = minute % 7
            if kind == 5 and (sec in (0, 59) or 20 <= sec < 31):
                continue
            zero = ((kind == 1 and sec < 7) or (kind == 2 and 25 <= sec < 40) or
                    (kind == 3 and sec >= 50) or kind == 4 or (kind == 6 and rnd.random() < 0.3))
            ot = args.start_ms + s * 1000
            if zero:
                o = h = l = c = price
                vol = qv = tbv = tbq = Decimal("0.00000000")
                n, ftid, ltid = 0, -1, -1
            else:
                o = price
                c = q8(price + Decimal(rnd.randint(-300, 300)) / 100)
                h = q8(max(o, c) + Decimal(rnd.randint(0, 200)) / 100)
                l = q8(min(o, c) - Decimal(rnd.randint(0, 200)) / 100)
                vol = q8(Decimal(rnd.randint(1, 10 ** 9)) / 10 ** 8)
                qv = q8(vol * c)
                tbv = q8(vol * Decimal(rnd.randint(0, 100)) / 100)
                tbq = q8(tbv * c)
                n = rnd.randint(1, 50)
                ftid, ltid = tid, tid + n - 1
                tid += n
                price = c
            f8 = lambda d: format(q8(d), ".8f")  # noqa: E731 -- never "0E-8"
            rows.append([sym, ts(ot), ts(ot + 999), f8(o), f8(h), f8(l), f8(c), f8(vol), f8(qv), n,
                         f8(tbv), f8(tbq), ftid, ltid, ts(ot + 1000 + rnd.randint(0, 400)), "ws"])
    with open(args.rows, "w", newline="") as f:
        csv.writer(f).writerows(rows)
    # Checkpoints: per symbol, runs of cp_seconds rows (so minutes split across batches).
    cps = []
    by_sym = {}
    for r in rows:
        by_sym.setdefault(r[0], []).append(r)
    for sym, rs in by_sym.items():
        for i in range(0, len(rs), args.cp_seconds):
            chunk = rs[i:i + args.cp_seconds]
            cps.append((chunk[0][1], [sym, chunk[0][1], chunk[-1][1], len(chunk)]))
    cps.sort(key=lambda x: x[0])
    with open(args.checkpoints, "w", newline="") as f:
        csv.writer(f).writerows(c for _, c in cps)


def parse_ms(s):
    # psql prints timestamptz like 2023-11-14 22:13:20+00 or with .123
    s = s.strip()
    if s.endswith("+00"):
        s = s[:-3]
    fmt = "%Y-%m-%d %H:%M:%S.%f" if "." in s else "%Y-%m-%d %H:%M:%S"
    return int(datetime.strptime(s, fmt).replace(tzinfo=timezone.utc).timestamp() * 1000 + 0.5)


def load_rows(path):
    out = {}
    with open(path, newline="") as f:
        for r in csv.reader(f):
            sym = r[0]
            out.setdefault(sym, []).append({
                "t": parse_ms(r[1]), "open": Decimal(r[3]), "high": Decimal(r[4]),
                "low": Decimal(r[5]), "close": Decimal(r[6]), "volume": Decimal(r[7]),
                "quote_volume": Decimal(r[8]), "trades": int(r[9]),
                "taker_buy_volume": Decimal(r[10]), "taker_buy_quote_volume": Decimal(r[11]),
                "first_trade_id": int(r[12]), "last_trade_id": int(r[13]),
            })
    for rs in out.values():
        rs.sort(key=lambda x: x["t"])
    return out


def bar(rows, before):
    """One bar from the 1s rows of its bucket (sorted by time). `before` is the last 1s row
    of the symbol before the bucket (or None). Binance's rules: prices and trade ids from
    seconds that had trades; a bucket without trades repeats the previous close."""
    traded = [r for r in rows if r["trades"] > 0]
    b = {}
    if traded:
        b["open"] = traded[0]["open"]
        b["close"] = traded[-1]["close"]
        b["high"] = max(r["high"] for r in traded)
        b["low"] = min(r["low"] for r in traded)
        b["first_trade_id"] = traded[0]["first_trade_id"]
        b["last_trade_id"] = traded[-1]["last_trade_id"]
    else:
        prev = before["close"] if before else rows[0]["open"]
        b["open"] = b["high"] = b["low"] = b["close"] = prev
        b["first_trade_id"] = b["last_trade_id"] = -1
    for k in ("volume", "quote_volume", "taker_buy_volume", "taker_buy_quote_volume"):
        b[k] = sum((r[k] for r in rows), Decimal(0))
    b["trades"] = sum(r["trades"] for r in rows)
    b["row_count"] = len(rows)
    return b


def expected_secs(start, interval_ms, first):
    """Seconds a bucket should have: all of them, or from the symbol's first second on."""
    return (start + interval_ms - max(start, first)) // 1000


def judge(groups, start, interval_ms, first, wm, grace_ms, n_rows=None):
    """(final, incomplete) of a bucket by the hold rule: incomplete = fewer rows than
    expected seconds; final = ready and (complete or the grace is over)."""
    n = len(groups.get(start, ())) if n_rows is None else n_rows
    if wm < start + interval_ms - 1000:
        return False, False
    incomplete = n < expected_secs(start, interval_ms, first)
    return (not incomplete) or wm >= start + interval_ms - 1000 + grace_ms, incomplete


def reference(rows_by_sym, interval_ms, watermark_ms, grace_ms=0):
    """Bars that must exist, and the buckets that must be reported incomplete:
    {(sym, start): bar}, {(sym, start): (row_count, expected)}. Every bucket from the
    symbol's first row to its watermark is pending (checkpoints cover the data and the
    gaps between them). A coarse bucket waits until each 1m bucket in it is final."""
    ref, inc = {}, {}
    for sym, rows in rows_by_sym.items():
        wm = watermark_ms if watermark_ms is not None else rows[-1]["t"]
        first = rows[0]["t"]
        groups, g1m = {}, {}
        for r in rows:
            groups.setdefault(r["t"] - r["t"] % interval_ms, []).append(r)
            g1m.setdefault(r["t"] - r["t"] % 60000, []).append(r)
        prev = None
        b0 = first - first % interval_ms
        for start in range(b0, wm + 1, interval_ms):
            m0 = max(start, first - first % 60000)
            if interval_ms > 60000 and not all(judge(g1m, m, 60000, first, wm, grace_ms)[0]
                                               for m in range(m0, start + interval_ms, 60000)):
                final = False
            else:
                n = len(groups.get(start, ()))
                final, incomplete = judge(groups, start, interval_ms, first, wm, grace_ms, n)
                if final and incomplete:
                    inc[(sym, start)] = (n, expected_secs(start, interval_ms, first))
            g = groups.get(start)
            if final and g:
                b = bar(g, prev)
                b["close_ms"] = start + interval_ms - 1
                ref[(sym, start)] = b
            if g:
                prev = g[-1]
    return ref, inc


def check(args):
    ref, inc = reference(load_rows(args.rows), args.interval * 1000, args.watermark_ms,
                         args.grace * 1000)
    got = {}
    with open(args.bars, newline="") as f:
        for r in csv.DictReader(f, fieldnames=BAR_COLS):
            got[(r["symbol"], int(r["open_ms"]))] = r
    errors = []
    for key in sorted(set(ref) | set(got)):
        if key not in got:
            errors.append(f"missing bar {key}")
            continue
        if key not in ref:
            errors.append(f"unexpected bar {key}")
            continue
        e, g = ref[key], got[key]
        for k in ("open", "high", "low", "close", "volume", "quote_volume", "taker_buy_volume",
                  "taker_buy_quote_volume"):
            if Decimal(g[k]) != e[k]:
                errors.append(f"{key} {k}: got {g[k]} want {e[k]}")
        for k in ("trades", "first_trade_id", "last_trade_id", "row_count", "close_ms"):
            if int(g[k]) != int(e[k]):
                errors.append(f"{key} {k}: got {g[k]} want {e[k]}")
        if g["closed"] != "t" or g["source"] != "agg":
            errors.append(f"{key} closed/source: got {g['closed']}/{g['source']}")
    if args.incomplete is not None:
        got_inc = {}
        with open(args.incomplete, newline="") as f:
            for r in csv.reader(f):
                got_inc[(r[0], int(r[1]))] = (int(r[2]), int(r[3]))
        for key in sorted(set(inc) | set(got_inc)):
            if inc.get(key) != got_inc.get(key):
                errors.append(f"incomplete {key}: reported {got_inc.get(key)} want {inc.get(key)}")
    if errors:
        print("\n".join(errors[:50]))
        print(f"{len(errors)} differences over {len(ref)} reference bars")
        return 1
    print(f"ok {len(ref)} bars" + (f", {len(inc)} incomplete" if args.incomplete is not None else ""))
    return 0


def binance5m(args):
    rows = []
    with open(args.file, newline="") as f:
        for r in csv.reader(f):
            rows.append(r)
    groups = {}
    for r in rows:
        t = int(r[0])
        groups.setdefault(t - t % 300000, []).append(r)
    for start in sorted(groups):
        g = groups[start]
        traded = [r for r in g if int(r[8]) > 0]
        src = traded or g
        out = [str(start), src[0][1], max((r[2] for r in src), key=Decimal),
               min((r[3] for r in src), key=Decimal), src[-1][4],
               str(sum((Decimal(r[5]) for r in g), Decimal(0))), str(start + 300000 - 1),
               str(sum((Decimal(r[7]) for r in g), Decimal(0))), str(sum(int(r[8]) for r in g)),
               str(sum((Decimal(r[9]) for r in g), Decimal(0))),
               str(sum((Decimal(r[10]) for r in g), Decimal(0))), "0"]
        print(",".join(out))
    return 0


def ndjson(args):
    """1s rows CSV (as written by gen) → canonical kline records, one JSON per line."""
    import json
    with open(args.rows, newline="") as f:
        for r in csv.reader(f):
            ot = parse_ms(r[1])
            print(json.dumps({
                "symbol": r[0], "interval": "1s", "open_time": ot, "close_time": ot + 999,
                "open": r[3], "high": r[4], "low": r[5], "close": r[6], "volume": r[7],
                "quote_volume": r[8], "trades": int(r[9]), "taker_buy_volume": r[10],
                "taker_buy_quote_volume": r[11], "first_trade_id": int(r[12]),
                "last_trade_id": int(r[13]), "closed": True, "event_time": parse_ms(r[14]),
                "source": r[15]}, separators=(",", ":")))
    return 0


def main():
    ap = argparse.ArgumentParser()
    sub = ap.add_subparsers(dest="cmd", required=True)
    g = sub.add_parser("gen")
    g.add_argument("--start-ms", type=int, required=True)
    g.add_argument("--minutes", type=int, required=True)
    g.add_argument("--tail-seconds", type=int, default=0)
    g.add_argument("--symbols", default="AAAUSDT,BBBUSDT")
    g.add_argument("--seed", type=int, default=1)
    g.add_argument("--cp-seconds", type=int, default=7)
    g.add_argument("--rows", required=True)
    g.add_argument("--checkpoints", required=True)
    c = sub.add_parser("check")
    c.add_argument("--rows", required=True)
    c.add_argument("--bars", required=True)
    c.add_argument("--interval", type=int, required=True)
    c.add_argument("--watermark-ms", type=int)
    c.add_argument("--grace", type=int, default=0)
    c.add_argument("--incomplete")
    b = sub.add_parser("binance5m")
    b.add_argument("file")
    n = sub.add_parser("ndjson")
    n.add_argument("--rows", required=True)
    args = ap.parse_args()
    if args.cmd == "gen":
        gen(args)
        return 0
    if args.cmd == "check":
        return check(args)
    if args.cmd == "ndjson":
        return ndjson(args)
    return binance5m(args)


if __name__ == "__main__":
    sys.exit(main())

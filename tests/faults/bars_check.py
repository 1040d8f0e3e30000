#!/usr/bin/env python3
"""bars_check.py SECONDS.ndjson BARS.ndjson: the 1m bars (kline-sim's /truth?interval=1m)
are the ones campaign.expected_bars makes from the seconds (/truth): the same symbols and
minutes, every field equal. Prints "ok N bars", or the first difference (exit 1)."""
import json
import os
import sys
from itertools import groupby

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from campaign import expected_bars, sim_bar  # noqa: E402


def main():
    with open(sys.argv[1]) as f:
        secs = [json.loads(line) for line in f if line.strip()]
    with open(sys.argv[2]) as f:
        got = {(b["symbol"], b["open_time"]): sim_bar(b) for b in map(json.loads, f)}
    want = {(sym, m): e for sym, g in groupby(secs, key=lambda r: r["symbol"])
            for m, e in expected_bars(list(g), set()).items()}
    if set(got) != set(want):
        sys.exit(f"bars_check: bars {sorted(set(got) ^ set(want))[:5]} on one side only")
    for key, e in want.items():
        bad = [k for k in e if got[key].get(k) != e[k]]
        if bad or set(got[key]) != set(e):
            sys.exit(f"bars_check: {key}: {bad or 'keys'} differ: {got[key]} against {e}")
    print(f"ok {len(want)} bars")


if __name__ == "__main__":
    main()

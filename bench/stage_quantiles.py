#!/usr/bin/env python3
"""stage_quantiles.py — p50/p90/p99 per stage of the *_stage_seconds histograms between two
scrapes (kline-streamer --stage-stamps /metrics, kp-peer-feed --ack-stats), as one JSON
object {"stage": {"n": N, "p50_ms": .., "p90_ms": .., "p99_ms": ..}, ...}.

    stage_quantiles.py BEFORE AFTER [BEFORE AFTER ...]

Quantiles are interpolated linearly inside the bucket they fall in (the buckets are 1 ms
wide below 6 ms, 10-50 ms wide up to 300 ms), like Prometheus' histogram_quantile."""
import json
import re
import sys

LINE = re.compile(r'^\w+_stage_seconds_bucket\{stage="(\w+)",le="([^"]+)"\} (\d+)$')


def buckets(path):
    out = {}
    try:
        with open(path) as f:
            for line in f:
                m = LINE.match(line.strip())
                if m:
                    le = float("inf") if m.group(2) == "+Inf" else float(m.group(2)) * 1000.0
                    out.setdefault(m.group(1), []).append((le, int(m.group(3))))
    except OSError:
        pass
    return out


def quantile(rows, q):
    total = rows[-1][1]
    if total <= 0:
        return None
    want = q * total
    lo, prev = 0.0, 0
    for le, cum in rows:
        if cum >= want:
            if le == float("inf"):
                return lo
            inside = cum - prev
            return lo + (le - lo) * ((want - prev) / inside if inside else 1.0)
        lo, prev = le, cum
    return lo


def main(argv):
    res = {}
    for before_path, after_path in zip(argv[0::2], argv[1::2]):
        before, after = buckets(before_path), buckets(after_path)
        for stage, rows in after.items():
            base = dict(before.get(stage, []))
            diff = [(le, cum - base.get(le, 0)) for le, cum in rows]
            n = diff[-1][1] if diff else 0
            r = {"n": n}
            for q in (0.5, 0.9, 0.99):
                v = quantile(diff, q) if n else None
                r["p%d_ms" % round(q * 100)] = round(v, 1) if v is not None else None
            res[stage] = r
    print(json.dumps(res, separators=(",", ":")))


if __name__ == "__main__":
    if len(sys.argv) < 3 or len(sys.argv) % 2 == 0:
        sys.exit(__doc__)
    main(sys.argv[1:])

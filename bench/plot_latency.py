#!/usr/bin/env python3
"""bench/plot_latency.py — latency distributions of bench_e2e.sh as an SVG (no
matplotlib needed: the SVG is written by hand).

    plot_latency.py --out FILE.svg [--title T] LABEL=SAMPLES [LABEL=SAMPLES...]

SAMPLES files hold lines "<kind> <ms>" with kind a (exchange send → row committed),
b (exchange send → WebSocket client) or c (minute end → 1m bar committed). One panel
per kind (--kinds "k=title|k=title" names other kinds, e.g. bench_peers.sh's workloads): the
cumulative distribution (x: milliseconds, log scale; y: fraction of
samples at or below x), one curve per LABEL, with p50/p99 in the legend.
"""
import argparse
import math
import sys

KINDS = [("a", "exchange send → 1s row committed"), ("b", "exchange send → WebSocket client"),
         ("c", "minute end → 1m bar committed")]
COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd"]
W, H = 420, 320          # one panel
ML, MR, MT, MB = 55, 15, 40, 45


def load(path, kinds):
    d = {k: [] for k, _ in kinds}
    with open(path) as f:
        for line in f:
            p = line.split()
            if len(p) == 2 and p[0] in d:
                try:
                    d[p[0]].append(float(p[1]))
                except ValueError:
                    pass
    for k in d:
        d[k].sort()
    return d


def pct(xs, p):
    if not xs:
        return None
    # nearest rank (the same definition as bench_e2e.sh's table)
    return xs[min(len(xs) - 1, max(0, math.ceil(p / 100 * len(xs)) - 1))]


def esc(s):
    return s.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def panel(ox, kind, title, series):
    global MT
    MT = 44 + 13 * len(series)
    out = [f'<g transform="translate({ox},0)">',
           f'<text x="{W / 2}" y="22" text-anchor="middle" font-size="13" font-weight="bold">{esc(title)}</text>']
    vals = [v for _, d in series for v in d[kind] if v > 0]
    if not vals:
        out.append(f'<text x="{W / 2}" y="{H / 2}" text-anchor="middle" font-size="12">no samples</text></g>')
        return out
    lo = 10 ** math.floor(math.log10(max(min(vals), 0.01)))
    hi = 10 ** math.ceil(math.log10(max(vals)))
    if hi <= lo:
        hi = lo * 10
    pw, ph = W - ML - MR, H - MT - MB

    def x(v):
        v = max(v, lo)
        return ML + (math.log10(v) - math.log10(lo)) / (math.log10(hi) - math.log10(lo)) * pw

    def y(f):
        return MT + (1 - f) * ph
    out.append(f'<rect x="{ML}" y="{MT}" width="{pw}" height="{ph}" fill="none" stroke="#444"/>')
    e = math.log10(lo)
    while 10 ** e <= hi * 1.0001:
        xv = x(10 ** e)
        lab = f"{10 ** e:g}"
        out.append(f'<line x1="{xv:.1f}" y1="{MT}" x2="{xv:.1f}" y2="{MT + ph}" stroke="#ddd"/>')
        out.append(f'<text x="{xv:.1f}" y="{MT + ph + 15}" text-anchor="middle" font-size="10">{lab}</text>')
        e += 1
    for f in (0, 0.25, 0.5, 0.75, 0.9, 1):
        out.append(f'<line x1="{ML}" y1="{y(f):.1f}" x2="{ML + pw}" y2="{y(f):.1f}" stroke="#eee"/>')
        out.append(f'<text x="{ML - 4}" y="{y(f) + 3:.1f}" text-anchor="end" font-size="10">{f:g}</text>')
    out.append(f'<text x="{ML + pw / 2}" y="{H - 8}" text-anchor="middle" font-size="11">milliseconds (log)</text>')
    for i, (label, d) in enumerate(series):
        xs = d[kind]
        if not xs:
            continue
        c = COLORS[i % len(COLORS)]
        n = len(xs)
        step = max(1, n // 400)  # at most ~400 points per curve
        pts = [(x(xs[j]), y((j + 1) / n)) for j in range(0, n, step)] + [(x(xs[-1]), y(1.0))]
        out.append(f'<polyline fill="none" stroke="{c}" stroke-width="1.8" points="' +
                   " ".join(f"{a:.1f},{b:.1f}" for a, b in pts) + '"/>')
        ly = 38 + 13 * i  # legend between the title and the plot: never over a curve
        out.append(f'<text x="{ML}" y="{ly:.1f}" font-size="10" fill="{c}">{esc(label)}: n={n} '
                   f'p50={pct(xs, 50):.1f} p99={pct(xs, 99):.1f} ms</text>')
    out.append("</g>")
    return out


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", required=True)
    ap.add_argument("--title", default="latency")
    ap.add_argument("--kinds", help='panels: "k=title|k=title" (default: a, b, c of bench_e2e.sh)')
    ap.add_argument("series", nargs="+", help="LABEL=FILE")
    a = ap.parse_args()
    kinds = [tuple(k.split("=", 1)) for k in a.kinds.split("|")] if a.kinds else KINDS
    series = []
    for s in a.series:
        label, _, path = s.partition("=")
        try:
            series.append((label, load(path, kinds)))
        except OSError as e:
            print(f"plot_latency: {e}", file=sys.stderr)
    tw, th = W * len(kinds), H + 30
    svg = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{tw}" height="{th}" font-family="sans-serif">',
           f'<rect width="{tw}" height="{th}" fill="white"/>',
           f'<text x="{tw / 2}" y="{th - 6}" text-anchor="middle" font-size="12">{esc(a.title)}</text>']
    for i, (k, title) in enumerate(kinds):
        svg += panel(i * W, k, title, series)
    svg.append("</svg>")
    with open(a.out, "w") as f:
        f.write("\n".join(svg) + "\n")


if __name__ == "__main__":
    main()

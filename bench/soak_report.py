#!/usr/bin/env python3
"""bench/soak_report.py — the soak's table and plot from a campaign's output.

    bench/soak_report.py RUN_DIR OUT_DIR

RUN_DIR is what tests/faults/campaign.py wrote (samples.csv, result.json, result.md);
OUT_DIR gets soak.md (summary: RSS of every program at warm-up / end / max, database
size, partitions, dead tuples, consumer lag, the truth table, the watchers), soak.csv
(the samples) and soak.svg (RSS per program, database size and lag over simulated time;
hand-written SVG, python3 stdlib only). Warm-up: the first 10 % of the samples (at
least 3). Exit 0 iff the truth table is clean, every watcher stayed connected and got
updates, and no program's RSS grew by more than 10 % (and 2 MB) over the second half of
the run (half-time to the end): a leak grows all along, while a buffer's high-water mark
(the largest batch of the run) is one step.
"""

import csv
import json
import os
import shutil
import sys
import time

sys.dont_write_bytecode = True

COLORS = ["#1f77b4", "#d62728", "#2ca02c", "#9467bd", "#ff7f0e", "#8c564b", "#e377c2"]


def load(run):
    with open(os.path.join(run, "samples.csv")) as f:
        rows = list(csv.DictReader(f))
    with open(os.path.join(run, "result.json")) as f:
        res = json.load(f)
    return rows, res


def num(v):
    return float(v) if v not in ("", None) else None


def series(rows, key):
    return [(int(r["sim_ms"]), num(r[key])) for r in rows if num(r[key]) is not None]


def rss_table(rows, progs):
    """{program: (warm-up MB, half-time MB, end MB, max MB)}; end = the last sample while it ran."""
    warm = max(3, len(rows) // 10)
    out = {}
    for p in progs:
        s = [v for _, v in series(rows, f"rss_kb_{p}")]
        if not s:
            continue
        w = s[min(warm, len(s) - 1)]
        out[p] = (w / 1024, s[len(s) // 2] / 1024, s[-1] / 1024, max(s) / 1024)
    return out


def hours(ms, t0):
    return (ms - t0) / 3600000


def summary(rows, res, progs):
    db = [v for _, v in series(rows, "db_bytes")]
    parts = [v for _, v in series(rows, "partitions")]
    dead = [v for _, v in series(rows, "dead_tup_1s")]
    lag = [v for _, v in series(rows, "lag")]
    return {
        "rss": rss_table(rows, progs),
        "db_max": max(db) / 1e9 if db else None, "db_end": db[-1] / 1e9 if db else None,
        "parts_max": int(max(parts)) if parts else None, "parts_end": int(parts[-1]) if parts else None,
        "dead_max": int(max(dead)) if dead else None,
        "lag_max": int(max(lag)) if lag else None, "lag_end": int(lag[-1]) if lag else None,
        "compacted": int(num(rows[-1]["compacted"]) or 0) if rows else 0,
    }


def md(rows, res, s, run):
    sim_h = res["sim_secs"] / 3600
    lines = [f"# Soak: {res['symbols']} symbols, {sim_h:g} simulated hours at speed {res['speed']:g}",
             "",
             f"Run of {time.strftime('%Y-%m-%d %H:%M UTC', time.gmtime())}: kline-sim → kline-producer → Kafka → "
             f"kline-inserter → PostgreSQL, kline-aggregator --every 5 --retain {res['retain']} "
             f"--compact-after {res['compact_after']}, kline-streamer; the aggregator and the inserter on the "
             f"sim's clock (KP_TEST_CLOCK). {len(rows)} samples, one every {res['sample_secs']:g} real s "
             f"({os.cpu_count()} cores). Warm-up: the first 10 % of the samples.",
             "",
             "| program | RSS warm-up MB | RSS half-time MB | RSS end MB | RSS max MB | warm-up → end | half-time → end |",
             "|---|---:|---:|---:|---:|---:|---:|"]
    for p, (w, h, e, m) in s["rss"].items():
        lines.append(f"| {p} | {w:.1f} | {h:.1f} | {e:.1f} | {m:.1f} | {100 * (e - w) / w:+.1f} % | "
                     f"{100 * (e - h) / h:+.1f} % |")
    lines += ["",
              "| what | value |", "|---|---:|",
              f"| database size max / end | {s['db_max']:.2f} / {s['db_end']:.2f} GB |",
              f"| kline_1s hourly partitions max present / at the end | {s['parts_max']} / {s['parts_end']} |",
              f"| partitions dropped by retention | {res.get('partitions_dropped')} |",
              f"| partitions compacted (--compact-after) | {s['compacted']} |",
              f"| n_dead_tup of kline_1s, max | {s['dead_max']} |",
              f"| consumer lag (messages) max / after the drain | {s['lag_max']} / {res.get('final_lag')} |",
              f"| drain after the exchange's end | {res.get('drain_after_end') or 0:.0f} s |",
              ""]
    with open(os.path.join(run, "result.md")) as f:
        truth = [l for l in f.read().splitlines() if l.startswith("|")][:6]
    lines += ["Against the exchange's truth (tests/faults/campaign.py):", ""] + truth
    lines += ["",
              f"- expired: {res['expired']} rows of the partitions that end before the final retention "
              f"cut-off ({res.get('cut')}), {res['expired_left']} of them left in kline_1s",
              f"- kline_1s kept: {res['in_db']} / {res['expected']}, {res['missing']} missing, "
              f"{res['doubled']} doubled, {res['wrong']} wrong, {res['extra']} extra",
              f"- kline_1m: {res['bars_written']} / {res['bars_expected']}, {res['bars_missing']} missing, "
              f"{res['bars_wrong']} wrong"
              + (f" (the expected bars of the hours dropped are the sim's own, /truth?interval=1m; where "
                 f"both exist they and the ones made from its seconds disagree {res['truth_disagree']} times)"
                 if res.get("bars_from_sim") else ""),
              f"- streamer behind at the end: {res['streamer_stale']} symbols; unexpected exits: "
              f"{res['crashes'] or 'none'}",
              ] + watchers_lines(res) + ["", "![soak](soak.svg)", ""]
    return "\n".join(lines)


def watchers(res):
    """campaign.py's account of the clients left on the streamer all run (with "clean"), or None."""
    return res.get("watchers")


def watchers_clean(w):
    return w is None or bool(w.get("clean"))


def watchers_lines(res):
    w = watchers(res)
    if w is None:
        return ["- watchers: none (KP_SOAK_WATCHERS=0)"]
    return [f"- watchers (browsers left open all run, kp-wsload): {w.get('connected')} of {w.get('clients')} "
            f"connected, {w.get('failed')} failed, {w.get('closed')} closed by the streamer, "
            f"{w.get('messages')} messages carrying {w.get('klines')} klines"
            f"{'' if watchers_clean(w) else ' — NOT clean'}"]


def svg(rows, res, progs):
    """Three panels over simulated hours: RSS per program, database size, consumer lag."""
    W, PH, L, R, T = 760, 170, 70, 150, 30
    t0 = res["sim_start"]
    xs = [hours(int(r["sim_ms"]), t0) for r in rows]
    x_max = max(xs) if xs and max(xs) > 0 else 1
    panels = [("RSS MB", [(p, [(hours(t, t0), v / 1024) for t, v in series(rows, f"rss_kb_{p}")])
                          for p in progs]),
              ("database GB", [("pg_database_size", [(hours(t, t0), v / 1e9)
                                                      for t, v in series(rows, "db_bytes")])]),
              ("consumer lag", [("messages", [(hours(t, t0), v) for t, v in series(rows, "lag")])])]
    H = T + len(panels) * (PH + 40) + 20
    out = [f'<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" font-family="sans-serif" '
           f'font-size="11"><rect width="{W}" height="{H}" fill="white"/>',
           f'<text x="{L}" y="18" font-size="14">soak: {res["symbols"]} symbols, speed {res["speed"]:g}, '
           f'--retain {res["retain"]}, --compact-after {res["compact_after"]}</text>']
    pw = W - L - R
    for i, (title, lines) in enumerate(panels):
        y0 = T + i * (PH + 40)
        vals = [v for _, pts in lines for _, v in pts]
        y_max = (max(vals) if vals else 1) * 1.1 or 1
        out.append(f'<rect x="{L}" y="{y0}" width="{pw}" height="{PH}" fill="none" stroke="#999"/>')
        out.append(f'<text x="8" y="{y0 + PH / 2}" transform="rotate(-90 14 {y0 + PH / 2})">{title}</text>')
        for k in range(5):
            yv = y_max * k / 4
            yy = y0 + PH - PH * k / 4
            out.append(f'<text x="{L - 4}" y="{yy + 4:.1f}" text-anchor="end">{yv:.3g}</text>')
            out.append(f'<line x1="{L}" x2="{L + pw}" y1="{yy:.1f}" y2="{yy:.1f}" stroke="#eee"/>')
        for k in range(6):
            xv = x_max * k / 5
            out.append(f'<text x="{L + pw * k / 5:.1f}" y="{y0 + PH + 14}" text-anchor="middle">{xv:.2f} h</text>')
        for j, (name, pts) in enumerate(lines):
            if not pts:
                continue
            c = COLORS[j % len(COLORS)]
            d = " ".join(f"{L + pw * x / x_max:.1f},{y0 + PH - PH * v / y_max:.1f}" for x, v in pts)
            out.append(f'<polyline points="{d}" fill="none" stroke="{c}" stroke-width="1.5"/>')
            out.append(f'<text x="{L + pw + 8}" y="{y0 + 12 + 14 * j}" fill="{c}">{name}</text>')
    out.append(f'<text x="{L + pw / 2}" y="{H - 6}" text-anchor="middle">simulated time since the start</text>')
    out.append("</svg>")
    return "\n".join(out) + "\n"


def main():
    if len(sys.argv) != 3:
        print(__doc__.split("\n\n")[1], file=sys.stderr)
        sys.exit(2)
    run, dest = sys.argv[1:]
    rows, res = load(run)
    if not rows:
        print(f"soak_report: no samples in {run}/samples.csv", file=sys.stderr)
        sys.exit(2)
    progs = [k[len("rss_kb_"):] for k in rows[0] if k.startswith("rss_kb_")]
    s = summary(rows, res, progs)
    os.makedirs(dest, exist_ok=True)
    text = md(rows, res, s, run)
    with open(os.path.join(dest, "soak.md"), "w") as f:
        f.write(text)
    with open(os.path.join(dest, "soak.svg"), "w") as f:
        f.write(svg(rows, res, progs))
    shutil.copyfile(os.path.join(run, "samples.csv"), os.path.join(dest, "soak.csv"))
    print(text)
    grew = [p for p, (_, h, e, _) in s["rss"].items() if e - h > max(2.0, 0.1 * h)]
    clean = all(res[k] == 0 for k in ("missing", "doubled", "wrong", "extra", "bars_missing", "bars_wrong",
                                      "expired_left", "streamer_stale")) and res.get("final_lag") == 0
    clean = clean and not res.get("truth_disagree")
    clean = clean and watchers_clean(watchers(res))
    if grew:
        print(f"soak_report: RSS grew over the second half: {', '.join(grew)}", file=sys.stderr)
    sys.exit(0 if clean and not grew else 1)


if __name__ == "__main__":
    main()

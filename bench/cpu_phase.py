#!/usr/bin/env python3
"""cpu_phase.py — which process has the CPUs when, within the second: every symbol's
kline closes at the top of the second, so the whole pipeline (simulator, producer,
broker, streamer, clients) works in one burst, and a latency there is a wait for a core.

    cpu_phase.py [--seconds 5] [--bin-ms 10] [--top 9] [--until-ms 200]

Records the scheduler's context switches on every CPU for --seconds (`perf record -e
sched:sched_switch -a`, root), then prints, for each --bin-ms slice of the second (wall
clock, averaged over the seconds recorded), the milliseconds of CPU each process had
(threads summed under their process's name; "idle" is the idle task, so a 10 ms bin on
2 cores adds up to 20). Slices after --until-ms are summed into one row.
Needs perf (Debian linux-perf); bench only, nothing in make test uses it."""
import argparse
import collections
import os
import re
import subprocess
import sys
import tempfile
import time

SWITCH = re.compile(r"\[(\d+)\]\s+([\d.]+):.*next_comm=(.*?) next_pid=(\d+)")


def process_names():
    """tid -> the name of its process, for every thread alive now."""
    names = {}
    for pid in os.listdir("/proc"):
        if not pid.isdigit():
            continue
        try:
            with open(f"/proc/{pid}/comm") as f:
                name = f.read().strip()
            for tid in os.listdir(f"/proc/{pid}/task"):
                names[int(tid)] = name
        except OSError:
            continue
    return names


def record(seconds, path):
    subprocess.run(["perf", "record", "-q", "-k", "mono", "-e", "sched:sched_switch", "-a",
                    "-o", path, "--", "sleep", str(seconds)],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    # perf's clock is CLOCK_MONOTONIC: its offset to the wall clock, taken now, less the
    # whole seconds (times stay small, so float steps of a microsecond do not vanish)
    offset = (time.time() - time.clock_gettime(time.CLOCK_MONOTONIC)) % 1.0
    names = process_names()
    out = subprocess.run(["perf", "script", "-i", path, "-F", "cpu,time,trace"], check=True,
                         capture_output=True, text=True).stdout
    return out, offset, names


def accumulate(script, offset, names, bin_ms):
    """(bin, process) -> ms on CPU, over all seconds; and the seconds covered."""
    acc = collections.defaultdict(float)
    running = {}  # cpu -> (since, name)
    first = last = None
    for line in script.splitlines():
        m = SWITCH.search(line)
        if not m:
            continue
        cpu, t = int(m.group(1)), float(m.group(2))
        first = t if first is None else first
        last = t
        if cpu in running:
            since, name = running[cpu]
            spread(acc, since + offset, t + offset, name, bin_ms)
        tid = int(m.group(4))
        running[cpu] = (t, "idle" if tid == 0 else names.get(tid, m.group(3).split("/")[0]))
    return acc, (last - first) if first is not None else 0.0


def spread(acc, a, b, name, bin_ms):
    """Adds the interval [a, b) (wall-clock seconds) to the bins it covers."""
    while a < b:
        phase_ms = (a % 1.0) * 1000.0
        k = int(phase_ms // bin_ms)
        step = min(b - a, ((k + 1) * bin_ms - phase_ms) / 1000.0)
        acc[(k, name)] += step * 1000.0
        a += max(step, 1e-7)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--seconds", type=int, default=5)
    ap.add_argument("--bin-ms", type=float, default=10.0)
    ap.add_argument("--top", type=int, default=9)
    ap.add_argument("--until-ms", type=float, default=200.0)
    a = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        script, offset, names = record(a.seconds, os.path.join(d, "perf.data"))
    acc, secs = accumulate(script, offset, names, a.bin_ms)
    if secs <= 0:
        sys.exit("cpu_phase: no context switches recorded")
    total = collections.Counter()
    for (_, name), ms in acc.items():
        total[name] += ms
    cols = ["idle"] + [n for n, _ in total.most_common() if n != "idle"][:a.top]
    print("| ms of the second | " + " | ".join(cols) + " | other |")
    print("|---" * (len(cols) + 2) + "|")
    nbins = int(1000 // a.bin_ms)
    cut = int(a.until_ms // a.bin_ms)

    def row(label, bins):
        vals = [sum(acc.get((k, c), 0.0) for k in bins) / secs for c in cols]
        other = sum(ms for (k, n), ms in acc.items() if k in bins and n not in cols) / secs
        print(f"| {label} | " + " | ".join(f"{v:.1f}" for v in vals) + f" | {other:.1f} |")

    for k in range(min(cut, nbins)):
        row(f"{k * a.bin_ms:g}–{(k + 1) * a.bin_ms:g}", {k})
    if cut < nbins:
        row(f"{cut * a.bin_ms:g}–1000", set(range(cut, nbins)))
    row("whole second", set(range(nbins)))


if __name__ == "__main__":
    main()

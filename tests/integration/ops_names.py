#!/usr/bin/env python3
"""Metric and label names: those the dashboard and the alert rules use, against those
the running programs export (tests/integration/ops.bats).

  ops_names.py exprs DASHBOARD.json RULES.yml...   every PromQL expression, one a line
  ops_names.py check EXPORTED.txt DASHBOARD.json RULES.yml...
      EXPORTED.txt: the /metrics texts of the programs, concatenated. Prints each name
      (or name{label}) used but not exported, exits 1 if there is one.
  --pending NAME,...: names known not to be exported yet (reported, not failed)
"""
import json
import re
import sys

import yaml

OURS = re.compile(r"\b((?:kline|process)_[a-z0-9_]+)\b(\{[^}]*\})?")
MATCHER = re.compile(r"([a-zA-Z_][a-zA-Z0-9_]*)\s*(?:=~|!~|!=|=)")
GROUPING = re.compile(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)")
# labels Prometheus adds to every scraped series, and the bucket bound of histograms
TARGET_LABELS = {"job", "instance", "le"}


def dashboard_exprs(path):
    with open(path) as f:
        doc = json.load(f)
    out = []

    def walk(panels):
        for p in panels:
            for t in p.get("targets", []):
                if t.get("expr"):
                    out.append(t["expr"])
            walk(p.get("panels", []))

    walk(doc.get("panels", []))
    return out


def rule_exprs(path):
    with open(path) as f:
        doc = yaml.safe_load(f)
    return [r["expr"] for g in doc["groups"] for r in g["rules"]]


def exprs(paths):
    out = []
    for p in paths:
        out += dashboard_exprs(p) if p.endswith(".json") else rule_exprs(p)
    return out


def exported(path):
    """name → set of label names, from Prometheus text format."""
    names = {}
    sample = re.compile(r"^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{([^}]*)\})?\s")
    with open(path) as f:
        for line in f:
            m = sample.match(line)
            if not m or line.startswith("#"):
                continue
            labels = names.setdefault(m.group(1), set())
            for lm in re.finditer(r'([a-zA-Z_][a-zA-Z0-9_]*)="', m.group(3) or ""):
                labels.add(lm.group(1))
    return names


def check(exported_path, paths, pending):
    have = exported(exported_path)
    missing, waiting = set(), set()
    for e in exprs(paths):
        used = list(OURS.finditer(e))
        for m in used:
            name, sel = m.group(1), m.group(2) or ""
            if name not in have:
                (waiting if name in pending else missing).add(name)
                continue
            for lab in MATCHER.findall(sel):
                if lab not in have[name] and lab not in TARGET_LABELS:
                    missing.add(f"{name}{{{lab}}}")
        # by (x) / on (x): some metric of the expression must carry x
        for grp in GROUPING.findall(e):
            for lab in filter(None, (s.strip() for s in grp.split(","))):
                if lab in TARGET_LABELS:
                    continue
                if not any(lab in have.get(m.group(1), set()) for m in used):
                    missing.add(f"by ({lab}) in: {e}")
    for w in sorted(waiting):
        print(f"pending (not exported yet): {w}")
    for m in sorted(missing):
        print(f"not exported: {m}")
    return 1 if missing else 0


def main(argv):
    pending = set()
    if "--pending" in argv:
        i = argv.index("--pending")
        pending = set(filter(None, argv[i + 1].split(",")))
        del argv[i : i + 2]
    if len(argv) >= 3 and argv[1] == "exprs":
        for e in exprs(argv[2:]):
            print(" ".join(e.split()))
        return 0
    if len(argv) >= 4 and argv[1] == "check":
        return check(argv[2], argv[3:], pending)
    print(__doc__, file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))

#!/usr/bin/env python3
"""Lists C functions by length (lines from the opening to the closing brace).

    scripts/funcs.py [--max N] [--top K] DIR...

The tree's style puts a function's braces in column 0, which is what this reads.
With --max N it prints the functions longer than N lines and exits 1 if there are any
(tree.bats holds program code to 60)."""
import argparse, pathlib, re, sys

def functions(path):
    lines = path.read_text(errors="replace").splitlines()
    out, start, name = [], None, None
    for i, line in enumerate(lines):
        if line.startswith("{") and i > 0:
            j = i - 1  # the signature: back to the line that names the function
            while j > 0 and "(" not in lines[j] and lines[j - 1].strip() and not lines[j - 1].rstrip().endswith(("*/", ";", "}")):
                j -= 1
            while j > 0 and not re.match(r"^[A-Za-z_]", lines[j]) and lines[j - 1].strip():
                j -= 1
            head = " ".join(l.strip() for l in lines[j:i])
            m = re.findall(r"([A-Za-z_][A-Za-z0-9_]*)\s*\(", head)
            if m and not re.search(r"=\s*$|\b(struct|enum|union)\b[^()]*$", lines[i - 1]):
                start, name = i, m[0] if not m[0] in ("__attribute__",) else m[-1]
        elif line.startswith("}") and start is not None:
            out.append((i - start + 1, f"{path}:{start}", name))
            start = None
    return out

def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--max", type=int)
    ap.add_argument("--top", type=int, default=10)
    ap.add_argument("dirs", nargs="+")
    a = ap.parse_args()
    fs = []
    for d in a.dirs:
        for p in sorted(pathlib.Path(d).rglob("*.c")):
            # a program's tests and tools are not program code
            if any(part.startswith("test") or part == "tools" for part in p.relative_to(d).parts[:-1]):
                continue
            fs += functions(p)
    fs.sort(reverse=True)
    if a.max is not None:
        over = [f for f in fs if f[0] > a.max]
        for n, where, name in over:
            print(f"{n:5d}  {name}  {where}")
        return 1 if over else 0
    for n, where, name in fs[: a.top]:
        print(f"{n:5d}  {name}  {where}")
    return 0

sys.exit(main())

#!/usr/bin/env python3
"""image-libs.py DOCKERFILE PROGRAM... — does the Dockerfile's runtime stage install every
shared library the programs need?

Offline, from this machine's dpkg database (make image-check proves the same in a real
Debian root, but needs minutes and the mirror): the packages the last stage's
`apt-get install` names, closed over their Depends, must own every library `ldd` shows
for each program, and, for kline-streamer, the libwebsockets event-loop plugin of every
`--event-loop` choice but lws's own poll (lws dlopens those, so ldd cannot see them).
Prints what is missing and exits 1; exits 0 when nothing is."""
import os
import re
import subprocess
import sys


def runtime_packages(dockerfile):
    """Packages of the first `apt-get install` after the last FROM."""
    text = open(dockerfile).read().replace("\\\n", " ")
    last = text.split("\nFROM ")[-1]
    m = re.search(r"apt-get install ([^&\n]*)", last)
    if not m:
        sys.exit(f"image-libs: no apt-get install in the last stage of {dockerfile}")
    return {w for w in m.group(1).split() if not w.startswith("-")}


def installed_depends():
    """{package: the names its Pre-Depends and Depends mention (every alternative)}."""
    out = subprocess.run(["dpkg-query", "-W", "-f=${Package}\t${Pre-Depends}, ${Depends}\n"],
                         capture_output=True, text=True, check=True).stdout
    deps = {}
    for line in out.splitlines():
        pkg, _, rel = line.partition("\t")
        names = {c.strip().split(" ")[0].split(":")[0] for a in rel.split(",") for c in a.split("|")}
        deps[pkg] = names - {""}
    return deps


def closure(pkgs):
    deps, seen, todo = installed_depends(), set(), list(pkgs)
    while todo:
        p = todo.pop()
        if p not in seen:
            seen.add(p)
            todo.extend(deps.get(p, set()) - seen)
    return seen


def owners(paths):
    """{path: the package that owns it}, one dpkg call; dpkg may know a library by its
    merged-/usr name."""
    names = {p: {p, os.path.realpath(p), "/usr" + p, p.removeprefix("/usr")} for p in paths}
    every = sorted(set().union(*names.values())) if names else []
    out = subprocess.run(["dpkg", "-S"] + every, capture_output=True, text=True).stdout
    pkg_of = {}
    for line in out.splitlines():
        pkg, _, path = line.partition(": ")
        pkg_of[path.strip()] = pkg.split(":")[0].strip()
    return {p: next((pkg_of[n] for n in alts if n in pkg_of), None) for p, alts in names.items()}


def libraries(program):
    out = subprocess.run(["ldd", program], capture_output=True, text=True, check=True).stdout
    return re.findall(r"=> (/\S+)", out)


def plugins(program):
    """libwebsockets-evlib-X for every --event-loop choice X that lws serves by a plugin."""
    out = subprocess.run([program, "--help"], capture_output=True, text=True).stdout
    m = re.search(r"--event-loop\s+(\S+)", out)
    return {f"libwebsockets-evlib-{x}" for x in m.group(1).split("|") if x != "poll"} if m else set()


def main():
    if len(sys.argv) < 3:
        sys.exit(__doc__)
    have = closure(runtime_packages(sys.argv[1]))
    progs = {prog: libraries(prog) for prog in sys.argv[2:]}
    pkg_of = owners({lib for libs in progs.values() for lib in libs})
    missing = []
    for prog, libs in progs.items():
        name = os.path.basename(prog)
        for lib in libs:
            if pkg_of[lib] is None:
                missing.append(f"{name}: {lib} belongs to no package")
            elif pkg_of[lib] not in have:
                missing.append(f"{name}: {lib} (package {pkg_of[lib]})")
        missing += [f"{name}: lws plugin (package {p})" for p in sorted(plugins(prog) - have)]
    for m in missing:
        print(f"image-libs: not in the runtime stage: {m}")
    sys.exit(1 if missing else 0)


if __name__ == "__main__":
    main()

#!/usr/bin/env bats
# docker compose cannot run here (no engine): validate the file with the docker-compose
# client and check that everything it asks of our programs exists.

load helpers

setup_file() {
    command -v docker-compose >/dev/null || skip "docker-compose client not installed"
}

@test "docker-compose.yml is valid (docker-compose config -q)" {
    run docker-compose -f docker-compose.yml config -q
    [ "$status" -eq 0 ]
}

@test "every command in docker-compose.yml is one of our programs with options it accepts" {
    cfg=$(docker-compose -f docker-compose.yml config)
    cmds=$(python3 - "$cfg" <<'PY'
import sys, yaml
doc = yaml.safe_load(sys.argv[1])
for name, svc in doc["services"].items():
    if svc.get("image", "").startswith("klinepipe"):
        print(" ".join(svc["command"]))
PY
)
    [ -n "$cmds" ]
    while read -r prog args; do
        [ -x "$KP_BIN/$prog" ] || { echo "no program $prog"; false; }
        help=$("$KP_BIN/$prog" --help)
        for a in $args; do
            [[ $a == --* ]] || continue
            [[ $help == *"$a"* ]] || { echo "$prog --help does not list $a"; false; }
        done
    done <<<"$cmds"
}

@test "every environment variable given to a program is one it documents" {
    cfg=$(docker-compose -f docker-compose.yml config)
    pairs=$(python3 - "$cfg" <<'PY'
import sys, yaml
doc = yaml.safe_load(sys.argv[1])
for name, svc in doc["services"].items():
    if svc.get("image", "").startswith("klinepipe"):
        for var in (svc.get("environment") or {}):
            print(svc["command"][0], var)
PY
)
    [ -n "$pairs" ]
    while read -r prog var; do
        # Read by the image (Dockerfile HEALTHCHECK, web root), not by the programs.
        [[ $var == HEALTH_PORT ]] && continue
        "$KP_BIN/$prog" --help | grep -qw "$var" || { echo "$prog --help does not document $var"; false; }
    done <<<"$pairs"
}

@test "the Dockerfile builds the four programs in a build stage and runs as a non-root user" {
    grep -q '^FROM .* AS build' Dockerfile
    grep -q 'COPY --from=build' Dockerfile
    grep -q '^USER ' Dockerfile
    grep -q '^HEALTHCHECK' Dockerfile
    ! grep -q -- '-dev' <(sed -n '/^FROM debian:12-slim$/,$p' Dockerfile)
}

@test "the monitoring profile is valid (docker-compose --profile monitoring config -q)" {
    run docker-compose -f docker-compose.yml --profile monitoring config -q
    echo "$output"
    [ "$status" -eq 0 ]
}

@test "monitoring: Prometheus and Grafana only in the monitoring profile, official images, mounts that exist" {
    cfg=$(docker-compose -f docker-compose.yml --profile monitoring config)
    run python3 - "$cfg" "$KP_ROOT" <<'PY'
import os, sys, yaml
doc, root = yaml.safe_load(sys.argv[1]), sys.argv[2]
svcs = doc["services"]
for name, image in (("prometheus", "prom/prometheus:"), ("grafana", "grafana/grafana:")):
    s = svcs[name]
    assert s.get("profiles") == ["monitoring"], (name, s.get("profiles"))
    assert s["image"].startswith(image), s["image"]
    for v in s.get("volumes", []):
        src = v["source"] if isinstance(v, dict) else v.split(":")[0]
        if src.startswith("/") or src.startswith("."):
            assert os.path.exists(os.path.join(root, src)), f"{name}: {src} does not exist"
# the services `docker compose up` starts are unchanged: no profile
for name, s in svcs.items():
    if name not in ("prometheus", "grafana"):
        assert not s.get("profiles"), (name, s.get("profiles"))
PY
    echo "$output"
    [ "$status" -eq 0 ]
}

@test "monitoring: Prometheus scrapes every program at the port compose gives it, and nothing else" {
    cfg=$(docker-compose -f docker-compose.yml --profile monitoring config)
    run python3 - "$cfg" "$KP_ROOT/deploy/prometheus/prometheus.yml" <<'PY'
import sys, yaml
doc = yaml.safe_load(sys.argv[1])
prom = yaml.safe_load(open(sys.argv[2]))
want = set()
for name, svc in doc["services"].items():
    if not svc.get("image", "").startswith("klinepipe"):
        continue
    env, cmd = svc.get("environment") or {}, svc["command"]
    if "--listen" in cmd:  # the streamer: /metrics on its HTTP port
        port = cmd[cmd.index("--listen") + 1].rsplit(":", 1)[1]
    else:
        port = env.get("METRICS_PORT")
    assert port, f"{name}: no metrics port"
    want.add((cmd[0], f"{name}:{port}"))
got = {(j["job_name"], t) for j in prom["scrape_configs"] for c in j["static_configs"] for t in c["targets"]}
assert got == want, f"scraped {sorted(got)}, compose has {sorted(want)}"
PY
    echo "$output"
    [ "$status" -eq 0 ]
}

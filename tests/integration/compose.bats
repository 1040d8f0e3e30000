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

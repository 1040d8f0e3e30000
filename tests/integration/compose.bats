#!/usr/bin/env bats
# docker compose cannot run here (no engine): validate the file with the docker-compose
# client and check that everything it asks of our programs exists.

load helpers

setup_file() {
    command -v docker-compose >/dev/null || skip "docker-compose client not installed"
}

# The commands ("prog --opt ...") of the klinepipe services of compose file $1.
compose_cmds() {
    docker-compose -f "$1" config | python3 -c '
import sys, yaml
doc = yaml.safe_load(sys.stdin)
for name, svc in doc["services"].items():
    if svc.get("image", "").startswith("klinepipe"):
        print(" ".join(svc["command"]))'
}

# "prog VAR" for every environment variable compose file $1 gives a klinepipe program.
compose_env() {
    docker-compose -f "$1" config | python3 -c '
import sys, yaml
doc = yaml.safe_load(sys.stdin)
for name, svc in doc["services"].items():
    if svc.get("image", "").startswith("klinepipe"):
        for var in (svc.get("environment") or {}):
            print(svc["command"][0], var)'
}

check_commands() {
    local cmds prog args a help
    cmds=$(compose_cmds "$1")
    [ -n "$cmds" ] || return 1
    while read -r prog args; do
        [ -x "$KP_BIN/$prog" ] || { echo "no program $prog"; return 1; }
        help=$("$KP_BIN/$prog" --help)
        for a in $args; do
            [[ $a == --* ]] || continue
            [[ $help == *"$a"* ]] || { echo "$prog --help does not list $a"; return 1; }
        done
    done <<<"$cmds"
}

check_env() {
    local pairs prog var
    pairs=$(compose_env "$1")
    [ -n "$pairs" ] || return 1
    while read -r prog var; do
        # Read by the image (Dockerfile HEALTHCHECK, web root), not by the programs.
        [[ $var == HEALTH_PORT ]] && continue
        "$KP_BIN/$prog" --help | grep -qw "$var" || { echo "$prog --help does not document $var"; return 1; }
    done <<<"$pairs"
}

@test "docker-compose.yml is valid (docker-compose config -q)" {
    run docker-compose -f docker-compose.yml config -q
    [ "$status" -eq 0 ]
}

@test "every command in docker-compose.yml is one of our programs with options it accepts" {
    check_commands docker-compose.yml
}

@test "every environment variable given to a program is one it documents" {
    check_env docker-compose.yml
}

@test "the check can fail: a compose command with an option the program does not have" {
    sed 's/"--every", "10"/"--every", "10", "--no-such-option"/' docker-compose.yml >"$BATS_TEST_TMPDIR/bad.yml"
    run check_commands "$BATS_TEST_TMPDIR/bad.yml"
    [ "$status" -ne 0 ]
    [[ $output == *"does not list --no-such-option"* ]]
}

@test "docker-compose.cluster.yml is valid, and its commands and variables are ones the programs accept" {
    run docker-compose -f docker-compose.cluster.yml config -q
    echo "$output"
    [ "$status" -eq 0 ]
    check_commands docker-compose.cluster.yml
    check_env docker-compose.cluster.yml
}

@test "cluster: three KRaft voters, RF 3 / min.insync 2, two producers, two inserters in one group, two streamers behind the LB" {
    cfg=$(docker-compose -f docker-compose.cluster.yml config)
    run python3 - "$cfg" <<'PY'
import sys, yaml
svcs = yaml.safe_load(sys.argv[1])["services"]
kafka = {n: s for n, s in svcs.items() if s.get("image", "").startswith("apache/kafka")}
assert len(kafka) == 3, sorted(kafka)
ids = sorted(str(s["environment"]["KAFKA_NODE_ID"]) for s in kafka.values())
assert ids == ["1", "2", "3"], ids
for n, s in kafka.items():
    e = s["environment"]
    voters = sorted(v.split("@")[1].split(":")[0] for v in e["KAFKA_CONTROLLER_QUORUM_VOTERS"].split(","))
    assert voters == sorted(kafka), (n, voters)
    assert e["KAFKA_ADVERTISED_LISTENERS"] == f"PLAINTEXT://{n}:9092", (n, e["KAFKA_ADVERTISED_LISTENERS"])
    assert str(e["KAFKA_DEFAULT_REPLICATION_FACTOR"]) == "3" and str(e["KAFKA_MIN_INSYNC_REPLICAS"]) == "2", n
    assert str(e["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"]) == "3", n
    assert e["CLUSTER_ID"] == kafka["kafka1"]["environment"]["CLUSTER_ID"], n
vols = [str(s["volumes"][0]) for s in kafka.values()]
assert len(set(vols)) == 3, f"each broker its own log dir: {vols}"
def progs(p):
    return {n: s for n, s in svcs.items() if s.get("command", [None])[0] == p}
prod, ins, st = progs("kline-producer"), progs("kline-inserter"), progs("kline-streamer")
assert len(prod) == 2 and len(ins) == 2 and len(st) == 2, (sorted(prod), sorted(ins), sorted(st))
for s in prod.values():
    assert s["command"][s["command"].index("--replication") + 1] == "3"
    assert s["environment"]["KAFKA_BROKERS"].count(",") == 2
assert len({s["environment"]["SYMBOLS"] for s in prod.values()}) == 1, "the pair follows the same symbols"
assert len({s["environment"]["KAFKA_GROUP"] for s in ins.values()}) == 1, "one consumer group"
lb = svcs["lb"]
assert lb["image"].startswith("haproxy:"), lb["image"]
assert sorted(lb["environment"][k].split(":")[0] for k in ("STREAMER_A", "STREAMER_B")) == sorted(st)
assert not any(s.get("ports") for s in st.values()), "browsers reach the streamers through the LB only"
PY
    echo "$output"
    [ "$status" -eq 0 ]
}

@test "cluster: the HAProxy configuration is valid with the addresses compose gives it" {
    command -v haproxy >/dev/null || { echo "haproxy is not installed (make deps)"; false; }
    run env LB_BIND=:8080 STREAMER_A=127.0.0.1:8081 STREAMER_B=127.0.0.1:8082 haproxy -c -f deploy/haproxy/haproxy.cfg
    echo "$output"
    [ "$status" -eq 0 ]
    grep -q 'deploy/haproxy/haproxy.cfg:/usr/local/etc/haproxy/haproxy.cfg' docker-compose.cluster.yml
}

@test "the Dockerfile builds the four programs in a build stage and runs as a non-root user" {
    grep -q '^FROM .* AS build' Dockerfile
    grep -q 'COPY --from=build' Dockerfile
    grep -q '^USER ' Dockerfile
    grep -q '^HEALTHCHECK' Dockerfile
    ! grep -q -- '-dev' <(sed -n '/^FROM debian:12-slim$/,$p' Dockerfile)
}

@test "the image's runtime stage installs every library the programs link, and the streamer's lws loop plugins" {
    run python3 "$KP_ROOT/scripts/image-libs.py" "$KP_ROOT/Dockerfile" "$KP_BIN"/kline-{producer,inserter,aggregator,streamer}
    echo "$output"
    [ "$status" -eq 0 ]
}

@test "the library check can fail: a runtime stage without libev4 and the ev plugin" {
    sed -e 's/ libev4 / /' -e 's/ libwebsockets-evlib-ev / /' "$KP_ROOT/Dockerfile" >"$BATS_TEST_TMPDIR/Dockerfile"
    run cmp -s "$KP_ROOT/Dockerfile" "$BATS_TEST_TMPDIR/Dockerfile"
    [ "$status" -eq 1 ] # the sed took them out
    run python3 "$KP_ROOT/scripts/image-libs.py" "$BATS_TEST_TMPDIR/Dockerfile" "$KP_BIN/kline-streamer"
    echo "$output"
    [ "$status" -eq 1 ]
    [[ $output == *"libev.so.4 (package libev4)"* ]]
    [[ $output == *"lws plugin (package libwebsockets-evlib-ev)"* ]]
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

#!/usr/bin/env bats
# `make demo` offline: it must fall back to the simulated exchange, serve live prices
# through the page's API, and stop cleanly on Ctrl-C (SIGINT to its group) and on a
# SIGTERM to its top process alone, so that a second run starts again.
bats_require_minimum_version 1.5.0
load helpers

setup() {
    DEMO_DIR=$(mktemp -d "${TMPDIR:-/tmp}/kp-demo.XXXXXX")
    chmod 755 "$DEMO_DIR" # the servers run as user postgres
    DEMO_PORT=$(kp_free_port)
    export DEMO_DIR DEMO_PORT DEMO_OFFLINE=1
}

teardown() {
    if [[ -n ${demo_pid:-} ]]; then # a test that failed half-way: stop its demo, then check
        kill -TERM "$demo_pid" 2>/dev/null || true
        kp_wait_for 150 exited "$demo_pid" || true
    fi
    if ! kp_wait_for 30 demo_gone; then
        # what is left was started by this test (its command line names DEMO_DIR)
        pgrep -f "$DEMO_DIR" | xargs -r kill -KILL 2>/dev/null || true
    fi
    cp -r "$DEMO_DIR/logs" "$KP_OUT/demo-logs" 2>/dev/null || true
    rm -rf "$DEMO_DIR"
}

start_demo() { # `make demo` in its own session, SIGINT restored (bash ignores it for `&` jobs),
               # so the test can press Ctrl-C on the whole group as a terminal would
    # The harness inside refuses to reuse our DATABASE_URL/KAFKA_BROKERS: it starts its own.
    env -u DATABASE_URL -u KAFKA_BROKERS -u KP_HARNESS_DIR \
        setsid env --default-signal=INT make --no-print-directory demo >"$KP_OUT/demo-$1.log" 2>&1 &
    demo_pid=$!
}

# Nothing of a stopped demo may survive it (the harness watchdog takes a second to notice).
demo_gone() {
    ! pgrep -af "$DEMO_DIR"
}

price_in_api() {
    curl -fsS "http://127.0.0.1:$DEMO_PORT/api/klines?symbol=BTCUSDT&interval=1s&limit=5" |
        python3 -c 'import json,sys; r=json.load(sys.stdin); assert len(r) > 0 and float(r[-1]["close"]) > 0'
}

@test "make demo offline: simulated badge, live price in the API, clean stop, clean restart" {
    start_demo 1
    kp_wait_for 240 price_in_api
    grep -q "SIMULATED" "$KP_OUT/demo-1.log"
    curl -fsS "http://127.0.0.1:$DEMO_PORT/api/info" | grep -qi simulated
    kill -INT -- -"$demo_pid"
    wait "$demo_pid" || true
    grep -q "demo: stopped" "$KP_OUT/demo-1.log"
    kp_wait_for 15 demo_gone

    start_demo 2
    kp_wait_for 240 price_in_api
    kill -INT -- -"$demo_pid"
    wait "$demo_pid" || true
    demo_pid=
    kp_wait_for 15 demo_gone
}

# The ports a running demo listens on: the page, PostgreSQL, Kafka (from the harness env).
demo_ports() {
    local env
    env=$(cat "$DEMO_DIR"/servers/env /var/tmp/klinepipe-demo-*/env 2>/dev/null | grep -E 'KP_PG_PORT|KAFKA_BROKERS' || true)
    echo "$DEMO_PORT"
    sed -nE 's/.*KP_PG_PORT=["'\'']?([0-9]+).*/\1/p; s/.*KAFKA_BROKERS=["'\'']?[^:]*:([0-9]+).*/\1/p' <<<"$env"
}

# Succeeds once PID has exited (a zombie counts: bats reaps it later).
exited() {
    local st
    st=$(ps -o stat= -p "$1" 2>/dev/null) || return 0
    [[ $st == Z* ]]
}

ports_closed() {
    local p
    for p in "$@"; do
        ! ss -Htln "sport = :$p" | grep -q . || { echo "port $p still has a listener"; return 1; }
    done
}

@test "make demo stops the whole tree when only its top process gets SIGTERM (docker stop, systemd, timeout)" {
    start_demo term
    kp_wait_for 240 price_in_api
    mapfile -t ports < <(demo_ports)
    [ "${#ports[@]}" -ge 3 ] || { echo "ports: ${ports[*]}"; false; }
    kill -TERM "$demo_pid" # make only: not its group
    kp_wait_for 90 exited "$demo_pid"
    demo_pid=
    kp_wait_for 30 demo_gone
    kp_wait_for 10 ports_closed "${ports[@]}"
    grep -q "demo: stopped" "$KP_OUT/demo-term.log"

    # the same for scripts/demo.sh as the top process (a container's PID 1)
    env -u DATABASE_URL -u KAFKA_BROKERS -u KP_HARNESS_DIR KP_BIN="$KP_BIN" KP_TBIN="$KP_TBIN" \
        setsid "$KP_ROOT/scripts/demo.sh" >"$KP_OUT/demo-term2.log" 2>&1 &
    demo_pid=$!
    kp_wait_for 240 price_in_api
    kill -TERM "$demo_pid"
    kp_wait_for 90 exited "$demo_pid"
    demo_pid=
    kp_wait_for 30 demo_gone
    kp_wait_for 10 ports_closed "${ports[@]}"
}

#!/usr/bin/env bats
# `make demo` offline: it must fall back to the simulated exchange, serve live prices
# through the page's API, and stop cleanly on Ctrl-C so a second run starts again.
bats_require_minimum_version 1.5.0
load helpers

setup() {
    DEMO_DIR=$(mktemp -d "${TMPDIR:-/tmp}/kp-demo.XXXXXX")
    chmod 755 "$DEMO_DIR" # the servers run as user postgres
    DEMO_PORT=$(kp_free_port)
    export DEMO_DIR DEMO_PORT DEMO_OFFLINE=1
}

teardown() {
    [[ -n ${demo_pid:-} ]] && kill -INT "$demo_pid" 2>/dev/null || true
    sleep 1
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

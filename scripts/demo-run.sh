#!/usr/bin/env bash
# Runs inside tests/harness/up (DATABASE_URL and KAFKA_BROKERS are set): starts the
# exchange feed and the four programs, waits for SIGINT/SIGTERM (scripts/demo.sh sends
# SIGTERM here on Ctrl-C or its own SIGTERM), stops them in order.
set -euo pipefail
[[ -n ${DEMO_RUN_PIDFILE:-} ]] && echo $$ >"$DEMO_RUN_PIDFILE"
root=$(pwd)
bin=${KP_BIN:-$root/bin}
tbin=${KP_TBIN:-$root/build/release/tbin}
logs=$DEMO_DIR/logs
port=${DEMO_PORT:-8080}
symbols=${SYMBOLS:-btcusdt,ethusdt,bnbusdt,solusdt,xrpusdt,adausdt}
export LOG_LEVEL=${LOG_LEVEL:-info}
pids=()

stop_all() {
    trap - INT TERM EXIT
    echo "demo: stopping..."
    # Reverse start order: the feed stops first so nothing is left half-delivered.
    for ((i = ${#pids[@]} - 1; i >= 0; i--)); do
        kill -TERM "${pids[i]}" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "${pids[i]}" 2>/dev/null || break; sleep 0.1; done
        kill -KILL "${pids[i]}" 2>/dev/null || true
    done
    wait 2>/dev/null || true
    echo "demo: stopped"
}
trap stop_all EXIT
trap 'exit 0' INT TERM

names=()
start() { # start NAME CMD... — background, log to $logs/NAME.log
    local name=$1; shift
    "$@" >"$logs/$name.log" 2>&1 &
    pids+=($!)
    names+=("$name")
}

rest=${BINANCE_REST_URL:-https://api.binance.com}
if [[ -z ${DEMO_OFFLINE:-} ]] && curl -fsS -m 5 "$rest/api/v3/ping" >/dev/null 2>&1; then
    echo "demo: Binance answers at $rest — using the real market"
    export BINANCE_WS_URL=${BINANCE_WS_URL:-wss://stream.binance.com:9443}
    export BINANCE_REST_URL=$rest
    unset KP_SIMULATED
else
    echo "demo: Binance cannot be reached from this machine — using the SIMULATED exchange"
    echo "demo: (the page shows a 'simulated market' badge)"
    simport=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
    start sim "$tbin/kline-sim" --listen "127.0.0.1:$simport" --symbols "${symbols^^}" --speed 1
    for _ in $(seq 100); do curl -fs "http://127.0.0.1:$simport/api/v3/ping" >/dev/null 2>&1 && break; sleep 0.1; done
    export BINANCE_WS_URL=ws://127.0.0.1:$simport BINANCE_REST_URL=http://127.0.0.1:$simport
    export KP_SIMULATED=1
fi

export SYMBOLS=$symbols
start producer   "$bin/kline-producer"
start inserter   "$bin/kline-inserter"
start aggregator "$bin/kline-aggregator" --every 10 --intervals 1m,5m,15m,1h,1d
start streamer   "$bin/kline-streamer" --listen "0.0.0.0:$port"

for _ in $(seq 100); do curl -fs "http://127.0.0.1:$port/healthz" >/dev/null 2>&1 && break; sleep 0.1; done
echo
echo "demo: open http://localhost:$port   (logs in $logs; Ctrl-C or SIGTERM stops)"
echo

# Exit (and stop everything) if any program dies.
while :; do
    for i in "${!pids[@]}"; do
        if ! kill -0 "${pids[i]}" 2>/dev/null; then
            rc=0
            wait "${pids[i]}" || rc=$?
            echo "demo: ${names[i]} exited unexpectedly (status $rc); the end of $logs/${names[i]}.log:" >&2
            tail -n 20 "$logs/${names[i]}.log" >&2
            exit 1
        fi
    done
    sleep 1
done

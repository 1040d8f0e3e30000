#!/usr/bin/env bash
# make demo — the whole pipeline on this machine: a local PostgreSQL and Kafka broker
# (data kept in $DEMO_DIR, reused next time), the four programs, and the page's URL.
# Uses the real Binance stream when it answers; otherwise the simulated exchange, and
# the page shows a "simulated market" badge. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."

export DEMO_DIR=$(readlink -f "${DEMO_DIR:-.demo}")
mkdir -p "$DEMO_DIR/logs"
exec tests/harness/up --data-dir "$DEMO_DIR/servers" -- scripts/demo-run.sh

#!/usr/bin/env bash
# make demo — the whole pipeline on this machine: a local PostgreSQL and Kafka broker
# (data kept in $DEMO_DIR, reused next time), the four programs, and the page's URL.
# Uses the real Binance stream when it answers; otherwise the simulated exchange, and
# the page shows a "simulated market" badge. Ctrl-C stops everything.
set -euo pipefail
cd "$(dirname "$(readlink -f "$0")")/.."

DEMO_DIR=$(readlink -f "${DEMO_DIR:-.demo}")
export DEMO_DIR
mkdir -p "$DEMO_DIR/logs"
servers=$DEMO_DIR/servers
# PostgreSQL runs as user postgres, which cannot enter a private home such as /root:
# keep the servers' data where it can, still one fixed place per checkout so it is reused.
if ! setpriv --reuid=postgres --regid=postgres --init-groups -- test -x "$DEMO_DIR"; then
    servers=/var/tmp/klinepipe-demo-$(printf %s "$DEMO_DIR" | md5sum | cut -c1-12)
    echo "demo: $DEMO_DIR is private to $(id -un); server data goes to $servers"
fi
exec tests/harness/up --data-dir "$servers" -- scripts/demo-run.sh

#!/usr/bin/env bash
# make demo — the whole pipeline on this machine: a local PostgreSQL and Kafka broker
# (data kept in $DEMO_DIR, reused next time), the four programs, and the page's URL.
# Uses the real Binance stream when it answers; otherwise the simulated exchange, and
# the page shows a "simulated market" badge.
#
# Ctrl-C, or SIGTERM/SIGHUP to this script alone (docker stop, systemd, timeout, kill),
# stops everything it started and exits 0; a second signal kills what is left at once.
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

# The harness and everything under it run in a process group of their own (setsid;
# a background job of this non-interactive shell is no group leader, so setsid does
# not fork and $! is the harness). A signal then reaches the tree only through
# demo_stop, in order: demo-run.sh stops the programs (feed first), then the harness
# stops Kafka and PostgreSQL. Without this, a SIGTERM to this script alone left the
# whole tree running, and one to the group stopped the servers under the programs.
export DEMO_RUN_PIDFILE=$DEMO_DIR/run.pid
rm -f "$DEMO_RUN_PIDFILE"
setsid tests/harness/up --data-dir "$servers" -- scripts/demo-run.sh &
tree=$!

# Waits for the harness to exit (at most $1 s, if given), then kills whatever is left
# in its group.
demo_reap() {
    local timer= rc=0
    if [[ -n ${1:-} ]]; then
        (sleep "$1"; kill -KILL -- "-$tree" 2>/dev/null) &
        timer=$!
    fi
    wait "$tree" || rc=$?
    if [[ -n $timer ]]; then
        kill "$timer" 2>/dev/null || true
        wait "$timer" 2>/dev/null || true
    fi
    kill -KILL -- "-$tree" 2>/dev/null || true
    return "$rc"
}

demo_stop() {
    trap 'echo "demo: killing what is left"; kill -KILL -- "-$tree" 2>/dev/null' INT TERM HUP
    echo "demo: $1: stopping the programs, then the servers..."
    local run
    run=$(cat "$DEMO_RUN_PIDFILE" 2>/dev/null || true)
    # before demo-run.sh started, the harness itself is told (it is still starting the servers)
    if [[ -n $run ]] && kill -0 "$run" 2>/dev/null; then
        kill -TERM "$run"
    else
        kill -TERM "$tree" 2>/dev/null || true
    fi
    demo_reap 120 || true
    exit 0
}
trap 'demo_stop SIGINT' INT
trap 'demo_stop SIGTERM' TERM
trap 'demo_stop SIGHUP' HUP

# The tree ended on its own (a program died, the harness failed): its status is ours.
rc=0
demo_reap || rc=$?
exit "$rc"

#!/usr/bin/env bats
# docs/ARCHITECTURE.md §6 conventions, for every program: --help, --version, usage errors.

bats_require_minimum_version 1.5.0
load helpers

programs=(kline-producer kline-inserter kline-aggregator kline-streamer)

@test "every program answers --help on stdout with exit 0 and names itself" {
    for p in "${programs[@]}"; do
        run --separate-stderr "$KP_BIN/$p" --help
        [ "$status" -eq 0 ] || { echo "$p --help exit $status"; false; }
        [[ $output == *"$p"* ]] || { echo "$p --help does not name the program"; false; }
        [[ -z $stderr ]] || { echo "$p --help wrote to stderr: $stderr"; false; }
    done
}

@test "every program's --version prints the five linked library versions" {
    for p in "${programs[@]}"; do
        run "$KP_BIN/$p" --version
        [ "$status" -eq 0 ]
        for lib in librdkafka libwebsockets libpq jansson libcurl; do
            [[ $output == *"$lib"* ]] || { echo "$p --version lacks $lib"; false; }
        done
        [[ $output == *"$(pkg-config --modversion rdkafka)"* ]]
        [[ $output == *"$(pkg-config --modversion jansson)"* ]]
    done
}

@test "an unknown option is a usage error: reason and synopsis on stderr, exit 2, nothing on stdout" {
    for p in "${programs[@]}"; do
        run --separate-stderr "$KP_BIN/$p" --no-such-option
        [ "$status" -eq 2 ] || { echo "$p exit $status"; false; }
        [[ -z $output ]] || { echo "$p wrote to stdout: $output"; false; }
        [[ $stderr == *[Uu]sage* ]] || { echo "$p stderr lacks the synopsis: $stderr"; false; }
    done
}

@test "a bad LOG_LEVEL is a configuration error: exit 2 before connecting anywhere" {
    for p in "${programs[@]}"; do
        LOG_LEVEL=loud run --separate-stderr timeout 20 "$KP_BIN/$p"
        [ "$status" -eq 2 ] || { echo "$p with LOG_LEVEL=loud exit $status"; false; }
        [[ $stderr == *loud* ]] || { echo "$p does not name the bad value: $stderr"; false; }
    done
}

@test "make install PREFIX=... installs the four programs and the page the installed streamer serves" {
    prefix=$(mktemp -d)
    make --no-print-directory install PREFIX="$prefix" >/dev/null
    make --no-print-directory install PREFIX="$prefix" >/dev/null # twice: idempotent
    for p in "${programs[@]}"; do
        "$prefix/bin/$p" --version >/dev/null
    done
    [ -f "$prefix/share/klinepipe/web/index.html" ]
    [ ! -e "$prefix/share/klinepipe/web/dist" ]
    port=$(kp_free_port)
    kp_bg installed-streamer "$prefix/bin/kline-streamer" --listen "127.0.0.1:$port" -i /dev/null
    kp_wait_for 20 curl -fs "http://127.0.0.1:$port/healthz"
    curl -fs "http://127.0.0.1:$port/index.html" | grep -qi "klinepipe"
    kp_stop "$BG_PID"
    rm -rf "$prefix"
}

# ---- times and durations (docs/ARCHITECTURE.md §6): epoch seconds are not milliseconds

@test "producer: a bare --since/--backfill number that looks like seconds is refused with exit 2" {
    s=1789499996
    for args in "--since $s" "--backfill $s..$((s + 9))" "--backfill ${s}000..$((s + 9))" "--since 0"; do
        # shellcheck disable=SC2086 # word splitting wanted
        run --separate-stderr timeout 10 "$KP_BIN/kline-producer" -s BTCUSDT -o - \
            --ws-url ws://127.0.0.1:9 --rest-url http://127.0.0.1:9 $args
        [ "$status" -eq 2 ] || { echo "$args: exit $status, stderr: $stderr"; false; }
        [[ -z $output ]]
        [[ $stderr == *"looks like seconds"* ]] || { echo "$args: $stderr"; false; }
    done
    run --separate-stderr "$KP_BIN/kline-producer" -s BTCUSDT -o - --since "$s"
    [[ $stderr == *"--since $s: looks like seconds; write ${s}s or ${s}000 (ms)"* ]] || { echo "$stderr"; false; }
    for bad in 1789499996x 12ms3 -5s s ms 1e12 " 1789499996000" 4102444800001; do
        run --separate-stderr "$KP_BIN/kline-producer" -s BTCUSDT -o - --since "$bad"
        [ "$status" -eq 2 ] || { echo "--since '$bad': exit $status"; false; }
    done
}

@test "producer: --backfill in seconds (s suffix), in ms (bare or ms suffix) and ISO 8601 fetch the same klines" {
    kp_sim_start --symbols BTCUSDT --speed 1000 --duration 60
    kp_wait_for 30 bash -c "curl -fsS '$SIM_URL/control/stats' | jq -e '.generated_seconds >= 60' >/dev/null"
    start=$(curl -fsS "$SIM_URL/control/stats" | jq -r .start_ms)
    s=$((start / 1000))
    iso=$(date -u -d "@$s" +%Y-%m-%dT%H:%M:%SZ)
    iso9=$(date -u -d "@$((s + 9))" +%Y-%m-%dT%H:%M:%SZ)
    nr=0
    for range in "$start..$((start + 9000))" "${start}ms..$((start + 9000))ms" "${s}s..$((s + 9))s" "$iso..$iso9"; do
        run --separate-stderr timeout 30 "$KP_BIN/kline-producer" -s BTCUSDT -o - --rest-url "$SIM_URL" --backfill "$range"
        [ "$status" -eq 0 ] || { echo "$range: exit $status: $stderr"; false; }
        [ "${#lines[@]}" -eq 10 ] || { echo "$range: ${#lines[@]} klines"; false; }
        printf '%s\n' "${lines[@]}" | jq -r .open_time >"$BATS_TEST_TMPDIR/r$nr"
        nr=$((nr + 1)) # not $i: bats' run uses that name
    done
    [ "$(head -1 "$BATS_TEST_TMPDIR/r0")" -eq "$start" ]
    cmp "$BATS_TEST_TMPDIR/r0" "$BATS_TEST_TMPDIR/r1"
    cmp "$BATS_TEST_TMPDIR/r0" "$BATS_TEST_TMPDIR/r2"
    cmp "$BATS_TEST_TMPDIR/r0" "$BATS_TEST_TMPDIR/r3"
}

@test "nan, inf and overflowing numbers are not durations or speeds: exit 2 with the reason" {
    for v in nan NaN -nan inf infinity -inf 1e400 0x10 1e3 " 1" "2 " ""; do
        run --separate-stderr timeout 10 "$KP_BIN/kline-producer" --replay /dev/null --replay-speed "$v" -o -
        [ "$status" -eq 2 ] || { echo "--replay-speed '$v': exit $status"; false; }
        [[ $stderr == *"--replay-speed"* ]] || { echo "$stderr"; false; }
    done
    for v in nan inf infh nanms 1e300h 99999999999999999999 1e3s -1s 10x; do
        run --separate-stderr timeout 10 "$KP_BIN/kline-producer" -s BTCUSDT -o - --max-conn-age "$v"
        [ "$status" -eq 2 ] || { echo "--max-conn-age '$v': exit $status"; false; }
        [[ $stderr == *"--max-conn-age $v: "* ]] || { echo "$stderr"; false; }
    done
    for v in nan inf -1h 1e3h; do
        run --separate-stderr timeout 10 "$KP_BIN/kline-producer" -s BTCUSDT -o - --resume-horizon "$v"
        [ "$status" -eq 2 ] || { echo "--resume-horizon '$v': exit $status"; false; }
    done
    # a value too large for the clock is refused, not wrapped
    run --separate-stderr timeout 10 "$KP_BIN/kline-producer" -s BTCUSDT -o - --max-conn-age 106751991167d
    [ "$status" -eq 2 ]
    [[ $stderr == *"too large"* ]] || { echo "$stderr"; false; }
    for v in nan inf 1e3h infh nanw 0.5h; do
        run --separate-stderr timeout 10 "$KP_BIN/kline-aggregator" --once --retain "1s=$v" -d postgresql://127.0.0.1:9/x
        [ "$status" -eq 2 ] || { echo "--retain 1s=$v: exit $status"; false; }
        [[ $stderr == *"bad duration"* ]] || { echo "$stderr"; false; }
    done
    for v in nan inf 1e3; do
        run --separate-stderr timeout 10 "$KP_BIN/kline-aggregator" --every "$v" -d postgresql://127.0.0.1:9/x
        [ "$status" -eq 2 ]
        AGG_EVERY=$v run --separate-stderr timeout 10 "$KP_BIN/kline-aggregator" -d postgresql://127.0.0.1:9/x
        [ "$status" -eq 2 ] || { echo "AGG_EVERY=$v: exit $status"; false; }
    done
}

# ---- signals (docs/ARCHITECTURE.md §6): only the main thread takes SIGINT/SIGTERM

# Lists each thread of PID other than the main one whose mask lets SIGINT (bit 1) or
# SIGTERM (bit 14) through; fails if there is one, or no other thread at all.
cli_threads_block_stop() {
    local pid=$1 t blk n=0 bad=0
    for t in /proc/"$pid"/task/*; do
        t=${t##*/}
        [[ $t == "$pid" ]] && continue
        blk=$(awk '/^SigBlk:/ { print $2 }' "/proc/$pid/task/$t/status" 2>/dev/null)
        [[ -n $blk ]] || continue # the thread just ended
        n=$((n + 1))
        if (((0x$blk & 0x4002) != 0x4002)); then
            echo "$(cat "/proc/$pid/task/$t/comm" 2>/dev/null) (tid $t): SigBlk $blk"
            bad=1
        fi
    done
    ((n > 0)) || { echo "pid $pid has no thread but the main one"; return 1; }
    return "$bad"
}

@test "every program's threads but the main one block SIGINT/SIGTERM; SIGTERM still stops each with exit 0" {
    db=$(kp_db_new)
    topic=$(kp_topic_new 1)
    kp_sim_start --symbols BTCUSDT,ETHUSDT --speed 1
    mport=$(kp_free_port)
    # Kafka mode: the delivery-report poller, REST backfill workers and the metrics thread
    kp_bg prod "$KP_BIN/kline-producer" -s BTCUSDT,ETHUSDT -t "$topic" --ws-url "$SIM_WS_URL" \
        --rest-url "$SIM_URL" --rest-workers 2 --metrics-port "$mport"
    prod=$BG_PID
    kp_wait_for 30 bash -c "[ \"\$('$KP_TBIN/kp-topic' -b '$KAFKA_BROKERS' count '$topic')\" -gt 0 ]"
    run cli_threads_block_stop "$prod"
    echo "producer: $output"
    [ "$status" -eq 0 ]

    iport=$(kp_free_port)
    kp_bg ins "$KP_BIN/kline-inserter" -t "$topic" -d "$db" -g "g$topic" --metrics-port "$iport"
    ins=$BG_PID
    kp_wait_for 30 bash -c "[ \"\$(psql '$db' -XAtc 'select count(*) from kline_1s')\" -gt 0 ]"
    run cli_threads_block_stop "$ins"
    echo "inserter: $output"
    [ "$status" -eq 0 ]

    aport=$(kp_free_port)
    kp_bg agg "$KP_BIN/kline-aggregator" --every 60 -d "$db" --metrics-port "$aport" --metrics-host 127.0.0.1
    agg=$BG_PID
    kp_wait_for 20 curl -fsS -o /dev/null "http://127.0.0.1:$aport/metrics"
    run cli_threads_block_stop "$agg"
    echo "aggregator: $output"
    [ "$status" -eq 0 ]

    sport=$(kp_free_port)
    kp_bg str "$KP_BIN/kline-streamer" --listen "127.0.0.1:$sport" -t "$topic" -d "$db"
    str=$BG_PID
    kp_wait_for 20 curl -fsS -o /dev/null "http://127.0.0.1:$sport/healthz"
    run cli_threads_block_stop "$str"
    echo "streamer: $output"
    [ "$status" -eq 0 ]

    for p in "$str" "$agg" "$ins" "$prod"; do
        rc=0
        kp_stop "$p" || rc=$?
        [ "$rc" -eq 0 ] || { echo "pid $p: exit $rc after SIGTERM"; false; }
    done
}

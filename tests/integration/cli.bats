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

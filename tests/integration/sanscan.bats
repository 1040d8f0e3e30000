#!/usr/bin/env bats
# tests/run.sh counts a sanitizer report in any log of the run as a failed test
# (tests/sanscan.sh), even when the test that started the program passed.
# The fake reports are assembled from pieces at run time, so that neither this file
# nor a passing run's output contains one.

bats_require_minimum_version 1.5.0
load helpers

# tests/run.sh as a user runs it: without this bats run's BATS_* variables, which
# would make the inner bats count and filter for the outer one.
nested_run() {
    local unset=() v
    for v in $(compgen -e); do [[ $v == BATS_* ]] && unset+=(-u "$v"); done
    env "${unset[@]}" KP_BATS_DIR="$suites" KP_TBIN="$empty" "$KP_ROOT/tests/run.sh" planted
}

asan() { printf '==%d==ERROR: %s: heap-use-after-free on address 0x602000000010\n' 4242 "Address""Sanitizer"; }
lsan() { printf '==%d==ERROR: %s: detected memory leaks\n' 4243 "Leak""Sanitizer"; }
ubsan() { printf 'common/kline.c:120:9: %s: signed integer overflow\n' "runtime"" error"; }

@test "sanscan.sh finds ASan, LSan and UBSan reports at any depth and names file and line" {
    d=$BATS_TEST_TMPDIR/logs
    mkdir -p "$d/harness" "$d/demo-logs/x"
    printf 'starting\nall good\n' >"$d/clean.log"
    { echo a; asan; echo '    #0 0x4f in main'; } >"$d/prog.log"
    lsan >"$d/harness/kafka.log"
    { echo x; echo y; ubsan; } >"$d/demo-logs/x/inserter.log"
    asan >"$d/run.log"
    printf '\0binary %s\n' "$(asan)" >"$d/core.bin"
    run tests/sanscan.sh --exclude run.log "$d"
    echo "$output"
    [ "$status" -eq 1 ]
    [ "${#lines[@]}" -eq 3 ]
    [[ $output == *"$d/prog.log:2:==4242==ERROR: Address"* ]]
    [[ $output == *"$d/harness/kafka.log:1:==4243==ERROR: Leak"* ]]
    [[ $output == *"$d/demo-logs/x/inserter.log:3:common/kline.c:120:9: runtime"* ]]
    run tests/sanscan.sh "$d/clean.log"
    [ "$status" -eq 0 ]
    [ -z "$output" ]
}

@test "run.sh: a passing suite whose program log holds a sanitizer report makes the run fail, naming the log" {
    [ -n "${KP_HARNESS_DIR:-}" ] # reuse this run's harness: no second PostgreSQL/Kafka
    suites=$BATS_TEST_TMPDIR/suites
    mkdir -p "$suites"
    # a suite that passes but leaves a report in a program log, as a helper process would
    # (printf, not a heredoc: bats would take a line starting with @test for its own)
    printf '%s\n' '@test "passes, but a background program reported" {' \
        "    printf '%s\\n' up '$(ubsan)' start '$(asan)' >\"\$KP_OUT/fake-prog.log\"" \
        '}' '@test "clean" { true; }' >"$suites/planted.bats"
    empty=$BATS_TEST_TMPDIR/no-tbin
    mkdir -p "$empty"
    run nested_run
    echo "$output"
    out=$(sed -n 's/^logs: \([^ ]*\) .*/\1/p' <<<"$output")
    if [ -n "$out" ]; then rm -rf "$out"; fi
    [ "$status" -eq 1 ]
    [ "${lines[-1]}" = "2 passed, 2 failed" ]
    [[ $output == *"sanitizer report in $out/fake-prog.log:2:"* ]]
    [[ $output == *"sanitizer report in $out/fake-prog.log:4:"* ]]
    # the same suite without the planted report passes
    printf '%s\n' '@test "passes" { true; }' >"$suites/planted.bats"
    run nested_run
    out=$(sed -n 's/^logs: \([^ ]*\) .*/\1/p' <<<"$output")
    if [ -n "$out" ]; then rm -rf "$out"; fi
    [ "$status" -eq 0 ]
    [ "${lines[-1]}" = "1 passed, 0 failed" ]
}

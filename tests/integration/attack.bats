#!/usr/bin/env bats
# Hostile input against kline-streamer (tests/attack/attack.py): oversized, binary and
# invalid UTF-8 frames, subscribe floods, 10,000 connections opened and dropped,
# never-reading clients, path traversal on the static files, SQL in /api/klines —
# while a normal client keeps measuring its update latency. Short version for CI
# (~1 min); the same script with longer --secs is the manual soak.

load helpers

RSS_BOUND_KB=${KP_ATTACK_RSS_KB:-262144} # 256 MiB: the streamer idles at ~10-40 MB
# AddressSanitizer (make check) keeps freed memory in quarantine and adds shadow memory:
# the release build proves the real bound, the sanitizer build only a loose one.
if ldd "$KP_BIN/kline-streamer" | grep -q libasan; then
	RSS_BOUND_KB=$((RSS_BOUND_KB * 4))
fi

setup() {
	command -v python3 >/dev/null || skip "python3 missing"
	ulimit -n 65536 2>/dev/null || true
	DB=$(kp_db_new)
	# migrations (the schema /api/klines reads): an inserter with empty input applies them
	"$KP_BIN/kline-inserter" -d "$DB" -i - </dev/null 2>>"$KP_OUT/attack-inserter.log"
	FEED=$BATS_TEST_TMPDIR/feed
	mkfifo "$FEED"
	PORT=$(kp_free_port)
	kp_bg attack-streamer "$KP_BIN/kline-streamer" -i "$FEED" --listen "127.0.0.1:$PORT" -d "$DB" \
		--stats-interval 5 --max-clients 20000
	ST_PID=$BG_PID
	kp_bg attack-klinegen "$KP_TBIN/kp-klinegen" --realtime --spread --symbols 20 >"$FEED"
	kp_wait_for 20 curl -fsS -o /dev/null "http://127.0.0.1:$PORT/healthz"
	SYM=$("$KP_TBIN/kp-klinegen" --symbols 20 --seconds 1 | jq -r .symbol | head -10 | paste -sd, -)
}

@test "attack: the streamer survives hostile clients, stays bounded, keeps serving a normal client" {
	local out=$KP_OUT/attack.json rc=0
	python3 "$KP_ROOT/tests/attack/attack.py" --port "$PORT" --pid "$ST_PID" --symbol "$SYM" \
		--secs "${KP_ATTACK_SECS:-15}" --conns 10000 --json "$out" >"$KP_OUT/attack.log" 2>&1 || rc=$?
	jq -c '{alive, rss_kb_before, rss_kb_max, rss_kb_after, normal_before, normal_during, counts}' "$out" | sed 's/^/# /' >&3
	[ -s "$out" ]
	# the server is up and answers
	[ "$(jq -r .alive "$out")" = true ]
	[ "$(jq -r .healthz_after "$out")" = 200 ]
	# memory stayed bounded
	run jq -r .rss_kb_max "$out"
	echo "rss max $output kB (bound $RSS_BOUND_KB)"
	[ "$output" -lt "$RSS_BOUND_KB" ]
	# the normal client kept receiving during the attack (10 symbols, ~10 updates/s)
	run jq -r .normal_during.updates "$out"
	[ "$output" -ge "$(( ${KP_ATTACK_SECS:-15} * 10 / 3 ))" ]
	# all 10,000 connections were made and dropped
	run jq -r '.counts.churn // 0' "$out"
	[ "$output" -ge 9000 ]
	# traversal and SQL attempts were refused (400/404...) and leaked nothing
	run jq -r '.http_not_rejected | length' "$out"
	echo "not rejected: $(jq -c .http_not_rejected "$out")"
	[ "$output" -eq 0 ]
	run jq -r '.leaks | length' "$out"
	[ "$output" -eq 0 ]
	# the tables are still there
	run kp_psql "$DB" "select count(*) from kline_1s"
	[ "$status" -eq 0 ]
	[ "$rc" -eq 0 ]
	kp_stop "$ST_PID"
}

#!/usr/bin/env bats
# kline-producer: happy path into real Kafka, -o -, CLI, ping/pong, resume, batch modes.

bats_require_minimum_version 1.5.0
load helpers
load producer_helpers

@test "producer: happy path — the topic holds exactly the klines the exchange sent, keyed by symbol" {
	kp_sim_start --symbols BTCUSDT,ETHUSDT,BNBUSDT --speed 20 --duration 60
	start=$(p_sim_start_ms)
	topic=$(kp_topic_new 3)
	p_producer prod -s btcusdt,ETHUSDT,BnbUsdt -t "$topic" --since "$start"
	kp_wait_for 60 p_count_ge "$topic" 180
	kp_wait_for 30 p_sim_done 60
	rc=0
	kp_stop "$PROD_PID" || rc=$?
	[ "$rc" -eq 0 ]
	p_check_topic "$topic"
	p_order_ok "$topic"
	# nothing was dead-lettered
	[ "$(kp_topic_count "$topic.rejected")" -eq 0 ]
	# the message timestamp is the receive time (CreateTime), close to now
	ts=$(kcat -C -b "$KAFKA_BROKERS" -t "$topic" -e -q -c 1 -f '%T')
	now=$(date +%s%3N)
	((ts > now - 600000 && ts <= now))
}

@test "producer: --shard 1/2 and 2/2 split the symbols between two producers: every kline once, each symbol from one of them" {
	kp_sim_start --num-symbols 20 --speed 20 --duration 20
	start=$(p_sim_start_ms)
	topic=$(kp_topic_new 3)
	syms=$(seq -f 'SYM%04gUSDT' 1 20 | paste -sd,)
	p_producer prodA -s "$syms" -t "$topic" --since "$start" --shard 1/2
	a=$PROD_PID
	p_producer prodB -s "$syms" -t "$topic" --since "$start" --shard 2/2
	b=$PROD_PID
	kp_wait_for 60 p_count_ge "$topic" 400
	kp_wait_for 30 p_sim_done 20
	kp_stop "$a"
	kp_stop "$b"
	p_check_topic "$topic"
	na=$(sed -n 's/.*--shard 1\/2: \([0-9]*\) of 20 symbols.*/\1/p' "$KP_OUT/prodA.log" | tail -1)
	nb=$(sed -n 's/.*--shard 2\/2: \([0-9]*\) of 20 symbols.*/\1/p' "$KP_OUT/prodB.log" | tail -1)
	echo "shard 1/2: $na symbols, shard 2/2: $nb"
	((na > 0 && nb > 0 && na + nb == 20))
	run -2 "$KP_BIN/kline-producer" -s BTCUSDT --shard 0/2 -o -
	[[ $output == *"--shard 0/2: expected K/N with 1 <= K <= N <= 1024"* ]]
}

@test "producer: -o - writes NDJSON only, one record per line, and exits 0 on SIGTERM" {
	kp_sim_start --symbols BTCUSDT,ETHUSDT --speed 20 --duration 40
	start=$(p_sim_start_ms)
	out=$BATS_TEST_TMPDIR/out.ndjson
	p_producer prod -s BTCUSDT,ETHUSDT -o - --since "$start" >"$out"
	kp_wait_for 60 bash -c "[ \$(wc -l <'$out') -ge 80 ]"
	rc=0
	kp_stop "$PROD_PID" || rc=$?
	[ "$rc" -eq 0 ]
	# every line is one JSON object (jq -c reproduces the line: no pretty printing, no junk)
	while IFS= read -r line; do
		[[ $(jq -c . <<<"$line") == "$line" ]] || { echo "not a compact JSON line: $line"; false; }
	done <"$out"
	p_check_values "$out"
	grep -q '"source":"ws"' "$out"
}

@test "producer: an exchange clock behind ours loses nothing — the start-up catch-up stops where REST's data ends" {
	# Regression: the catch-up used to run to "now - 2 s" by our clock and then skip the
	# seconds REST did not have, so every live kline of an exchange one day behind was
	# dropped as a duplicate.
	day_ago=$((($(date +%s) - 86400) * 1000 / 60000 * 60000))
	kp_sim_start --symbols BTCUSDT,ETHUSDT --speed 10 --duration 120 --start-time "$day_ago"
	start=$(p_sim_start_ms)
	[ "$start" -eq "$day_ago" ]
	out=$BATS_TEST_TMPDIR/out.ndjson
	p_producer prod -s BTCUSDT,ETHUSDT -o - --since "$start" >"$out"
	kp_wait_for 60 p_sim_done 120
	kp_wait_for 30 bash -c "[ \$(wc -l <'$out') -ge 240 ]"
	kp_stop "$PROD_PID"
	p_check_values "$out"
	grep -q '"source":"ws"' "$out"
}

@test "producer: -o - into a closed pipe exits 1 (EPIPE is an error, not silence)" {
	kp_sim_start --symbols BTCUSDT --speed 20
	run --separate-stderr bash -c "set -o pipefail; timeout 60 '$KP_BIN/kline-producer' -s BTCUSDT -o - \
		--ws-url '$SIM_WS_URL' --rest-url '$SIM_URL' | head -n 1 >/dev/null"
	[ "$status" -eq 1 ]
	[[ $stderr == *"writing output"* ]]
}

@test "producer: --help, --version, usage errors" {
	run --separate-stderr "$KP_BIN/kline-producer" --help
	[ "$status" -eq 0 ]
	for opt in --symbols --all-symbols --quote-asset --interval --output --topic --dlq-topic --partitions \
		--replication --retention-ms --streams-per-conn --max-conn-age --watchdog-secs --dead-after \
		--max-frame --provisional --since --backfill --replay --replay-speed --rest-weight-limit \
		--flush-timeout-ms --metrics-port --stats-interval -X KAFKA_BROKERS KAFKA_TOPIC SYMBOLS \
		BINANCE_WS_URL BINANCE_REST_URL LOG_LEVEL METRICS_PORT; do
		[[ $output == *"$opt"* ]] || { echo "--help does not mention $opt"; false; }
	done
	[[ -z $stderr ]]
	run "$KP_BIN/kline-producer" --version
	[ "$status" -eq 0 ]
	[[ $output == *kline-producer* && $output == *libwebsockets* ]]
	for bad in "" "-s" "-s BTCUSDT --since yesterday" "-s BTCUSDT --backfill 5..1" "-s BTCUSDT --streams-per-conn 2000" \
		"-s BTC-USDT" "-s BTCUSDT -i 7x" "-s BTCUSDT --max-conn-age soon" "-s BTCUSDT extra" \
		"-s BTCUSDT --replay x --backfill 1..2" "-s BTCUSDT -X novalue"; do
		# shellcheck disable=SC2086
		run --separate-stderr env -u SYMBOLS "$KP_BIN/kline-producer" $bad
		[ "$status" -eq 2 ] || { echo "'$bad' → exit $status"; false; }
		[[ -z $output ]] || { echo "'$bad' wrote to stdout"; false; }
		[[ $stderr == *usage:* ]] || { echo "'$bad' printed no synopsis: $stderr"; false; }
	done
}

@test "producer: answers the server's pings, so the connection outlives the pong timeout" {
	kp_sim_start --symbols BTCUSDT --speed 1 --ping-interval 1 --pong-timeout 3
	topic=$(kp_topic_new 1)
	p_producer prod -s BTCUSDT -t "$topic"
	kp_wait_for 30 bash -c "[ \$(curl -fsS '$SIM_URL/control/stats' | jq .pongs_received) -ge 7 ]"
	[ "$(p_sim_stat pong_timeouts)" -eq 0 ]
	[ "$(p_sim_stat connections_total)" -eq 1 ]
	[ "$(p_sim_stat connections)" -eq 1 ]
	kp_stop "$PROD_PID"
}

@test "producer: restart resumes from the last kline in Kafka — no gap, nothing twice" {
	kp_sim_start --symbols BTCUSDT,ETHUSDT --speed 10 --duration 80
	start=$(p_sim_start_ms)
	topic=$(kp_topic_new 2)
	p_producer prod1 -s BTCUSDT,ETHUSDT -t "$topic" --since "$start"
	kp_wait_for 60 p_count_ge "$topic" 30
	kp_stop "$PROD_PID"
	n1=$(kp_topic_count "$topic")
	# the exchange moves on while no producer runs
	kp_wait_for 30 bash -c "[ \$(curl -fsS '$SIM_URL/control/stats' | jq '(.latest_open_time - .start_ms) / 1000') -ge $((n1 / 2 + 20)) ]"
	p_producer prod2 -s BTCUSDT,ETHUSDT -t "$topic"
	kp_wait_for 60 p_count_ge "$topic" 160
	kp_wait_for 30 p_sim_done 80
	kp_stop "$PROD_PID"
	p_check_topic "$topic"
	p_order_ok "$topic"
	grep -q "resuming 2 of 2 symbols" "$KP_OUT/prod2.log"
	# the second run filled the pause from REST
	kcat -C -b "$KAFKA_BROKERS" -t "$topic" -e -q -f '%s\n' | grep -q '"source":"rest"'
}

@test "producer: --backfill FROM..TO publishes exactly that range from REST and exits 0" {
	kp_sim_start --symbols BTCUSDT,ETHUSDT --speed 1000 --duration 2500
	kp_wait_for 30 p_sim_done 2500
	start=$(p_sim_start_ms)
	from=$((start + 100000))
	to=$((start + 2299000))
	run --separate-stderr timeout 60 "$KP_BIN/kline-producer" -s BTCUSDT,ETHUSDT -o - \
		--rest-url "$SIM_URL" --backfill "$from..$to"
	[ "$status" -eq 0 ]
	printf '%s\n' "$output" >"$BATS_TEST_TMPDIR/bf"
	[ "$(wc -l <"$BATS_TEST_TMPDIR/bf")" -eq 4400 ]
	curl -fsS "$SIM_URL/truth?from=$from&to=$to" | jq -c "$P_PROJ" | LC_ALL=C sort >"$BATS_TEST_TMPDIR/want"
	jq -c "$P_PROJ" <"$BATS_TEST_TMPDIR/bf" | LC_ALL=C sort >"$BATS_TEST_TMPDIR/got"
	diff -q "$BATS_TEST_TMPDIR/want" "$BATS_TEST_TMPDIR/got"
	[ "$(jq -r .source <"$BATS_TEST_TMPDIR/bf" | sort -u)" = rest ]
	# paged: 2200 seconds per symbol need 3 requests each
	[ "$(curl -fsS "$SIM_URL/control/stats" | jq .rest_requests)" -ge 6 ]
}

@test "producer: --replay of canonical NDJSON and of a data.binance.vision CSV" {
	kp_sim_start --symbols BTCUSDT --speed 1000 --duration 50
	kp_wait_for 30 p_sim_done 50
	curl -fsS "$SIM_URL/truth" >"$BATS_TEST_TMPDIR/truth.ndjson"
	run --separate-stderr "$KP_BIN/kline-producer" --replay "$BATS_TEST_TMPDIR/truth.ndjson" -o -
	[ "$status" -eq 0 ]
	printf '%s\n' "$output" >"$BATS_TEST_TMPDIR/r"
	[ "$(jq -r .source <"$BATS_TEST_TMPDIR/r" | sort -u)" = replay ]
	p_check_values "$BATS_TEST_TMPDIR/r"
	csv=$KP_ROOT/tests/data/binance/ADABTC-1m-2021-11-27.csv
	[ -r "$csv" ]
	run --separate-stderr "$KP_BIN/kline-producer" --replay "$csv" -s ADABTC -i 1m -o -
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq "$(grep -c . "$csv")" ]
	[[ ${lines[0]} == *'"symbol":"ADABTC","interval":"1m"'* ]]
	# without -s the symbol comes from the file name, whose interval must be -i's
	run --separate-stderr "$KP_BIN/kline-producer" --replay "$csv" -i 1m -o -
	[ "$status" -eq 0 ]
	[[ ${lines[0]} == *'"symbol":"ADABTC","interval":"1m"'* ]]
	run --separate-stderr "$KP_BIN/kline-producer" --replay "$csv" -o -
	[ "$status" -eq 2 ]
	[[ $stderr == *"the file name says interval 1m, -i is 1s"* ]]
	# CSV without a symbol (not in -s, not in its name) is a usage error
	cp "$csv" "$BATS_TEST_TMPDIR/rows.csv"
	run --separate-stderr "$KP_BIN/kline-producer" --replay "$BATS_TEST_TMPDIR/rows.csv" -o -
	[ "$status" -eq 2 ]
	[[ $stderr == *"CSV input needs exactly one -s SYMBOL"* ]]
}

@test "producer: --replay holds a line to 64 KiB (a longer one is dead-lettered with its true length); /metrics on --metrics-host" {
	csv=$KP_ROOT/tests/data/binance/ADABTC-1m-2021-11-27.csv
	in=$BATS_TEST_TMPDIR/in.csv
	{ head -n 2 "$csv"; head -c 70000 /dev/zero | tr '\0' 1; echo; sed -n 3p "$csv"; } >"$in"
	port=$(kp_free_port)
	# a pipe that stays open a while: the replay waits on it, serving /metrics meanwhile
	{ cat "$in"; sleep 4; } | "$KP_BIN/kline-producer" --replay - -s ADABTC -i 1m -o - --stats-interval 0 \
		--metrics-host 127.0.0.1 --metrics-port "$port" >"$BATS_TEST_TMPDIR/out" 2>"$BATS_TEST_TMPDIR/err" &
	pid=$!
	kp_wait_for 10 bash -c "curl -fsS 'http://127.0.0.1:$port/metrics' | grep -qx 'kline_producer_replayed_total 3'"
	curl -fsS "http://127.0.0.1:$port/metrics" | grep -qx 'kline_producer_rejected_total 1'
	wait "$pid"
	[ "$(wc -l <"$BATS_TEST_TMPDIR/out")" -eq 3 ]
	grep -q 'rejected message #1 from replay: input of 70000 bytes exceeds 65536' "$BATS_TEST_TMPDIR/err"
	# -X has a long name, and a bad value names the option as typed
	run --separate-stderr "$KP_BIN/kline-producer" --replay /dev/null -o - --kafka novalue
	[ "$status" -eq 2 ]
	[[ $stderr == *"--kafka novalue: expected KEY=VALUE"* ]]
}

@test "producer: wss:// uses TLS and verifies the server against the CA store" {
	kp_sim_start --symbols BTCUSDT,ETHUSDT --speed 2 --duration 60
	start=$(p_sim_start_ms)
	d=$BATS_TEST_TMPDIR
	openssl req -x509 -newkey rsa:2048 -nodes -keyout "$d/key.pem" -out "$d/cert.pem" -days 1 \
		-subj /CN=127.0.0.1 -addext "subjectAltName=DNS:127.0.0.1,IP:127.0.0.1" 2>/dev/null
	tport=$(kp_free_port)
	kp_bg tlsproxy python3 "$KP_ROOT/tests/integration/producer_tlsproxy.py" "$tport" "$SIM_PORT" "$d/cert.pem" "$d/key.pem"
	kp_wait_for 10 bash -c "echo | openssl s_client -connect 127.0.0.1:$tport >/dev/null 2>&1"
	# not trusted: the handshake fails, nothing is published
	run --separate-stderr timeout 5 "$KP_BIN/kline-producer" -s BTCUSDT -o - --ws-url "wss://127.0.0.1:$tport" \
		--rest-url "$SIM_URL"
	[ -z "$output" ]
	[[ $stderr == *"connection failed"* ]]
	# trusted through the OpenSSL CA store (SSL_CERT_FILE): every kline arrives
	out=$d/out.ndjson
	SSL_CERT_FILE=$d/cert.pem p_producer prod -s BTCUSDT,ETHUSDT -o - --ws-url "wss://127.0.0.1:$tport" --since "$start" >"$out"
	kp_wait_for 60 p_sim_done 60
	kp_wait_for 60 bash -c "[ \$(wc -l <'$out') -ge 120 ]"
	kp_stop "$PROD_PID"
	p_check_values "$out"
	grep -q 'wss://127.0.0.1' "$KP_OUT/prod.log"
}

@test "producer: x=false klines are skipped by default and published with --provisional" {
	kp_sim_start --symbols BTCUSDT --speed 5 --duration 30 --provisional
	start=$(p_sim_start_ms)
	out=$BATS_TEST_TMPDIR/prov.ndjson
	p_producer prod -s BTCUSDT -o - --since "$start" --provisional >"$out"
	kp_wait_for 60 p_sim_done 30
	kp_wait_for 60 bash -c "[ \$(jq -c 'select(.closed)' <'$out' | wc -l) -ge 30 ]"
	kp_stop "$PROD_PID"
	# every closed second once, plus provisional updates before their closed kline
	jq -c 'select(.closed)' <"$out" >"$BATS_TEST_TMPDIR/closed"
	p_check_values "$BATS_TEST_TMPDIR/closed"
	[ "$(jq -c 'select(.closed | not)' <"$out" | wc -l)" -ge 10 ]
	jq -r '[.open_time, .closed] | @tsv' <"$out" |
		awk -F'\t' '$2 == "false" && closed[$1] { print "provisional after closed: " $1; bad = 1 } $2 == "true" { closed[$1] = 1 } END { exit bad }'
	# without --provisional: closed klines only
	run --separate-stderr timeout 5 "$KP_BIN/kline-producer" -s BTCUSDT -o - --ws-url "$SIM_WS_URL" --rest-url "$SIM_URL" \
		--since "$start" --backfill "$start..$((start + 9000))"
	[ "$status" -eq 0 ]
	[ "$(printf '%s\n' "$output" | jq -c 'select(.closed | not)' | wc -l)" -eq 0 ]
}

@test "producer: -o FILE appends NDJSON to a file" {
	kp_sim_start --symbols BTCUSDT --speed 1000 --duration 100
	kp_wait_for 30 p_sim_done 100
	start=$(p_sim_start_ms)
	f=$BATS_TEST_TMPDIR/klines.ndjson
	echo '{"existing":"line"}' >"$f"
	run --separate-stderr "$KP_BIN/kline-producer" -s BTCUSDT -o "$f" --rest-url "$SIM_URL" --backfill "$start..$((start + 49000))"
	[ "$status" -eq 0 ]
	[ -z "$output" ]
	[ "$(wc -l <"$f")" -eq 51 ]
	head -1 "$f" | grep -q existing
}

@test "producer: --backfill gives up on a range the exchange refuses (4xx), finishes the rest, exits 1" {
	kp_sim_start --symbols BTCUSDT --speed 1000 --duration 100
	kp_wait_for 30 p_sim_done 100
	start=$(p_sim_start_ms)
	run --separate-stderr timeout 60 "$KP_BIN/kline-producer" -s BTCUSDT,NOSUCHUSDT -o - --rest-url "$SIM_URL" \
		--backfill "$start..$((start + 49000))"
	[ "$status" -eq 1 ]
	[ "${#lines[@]}" -eq 50 ]
	[[ $stderr == *"NOSUCHUSDT"*"giving up"* ]]
}

@test "producer: --replay-speed paces the replay by open_time" {
	kp_sim_start --symbols BTCUSDT --speed 1000 --duration 41
	kp_wait_for 30 p_sim_done 41
	curl -fsS "$SIM_URL/truth" >"$BATS_TEST_TMPDIR/h.ndjson"
	t0=$(date +%s%3N)
	run --separate-stderr "$KP_BIN/kline-producer" --replay "$BATS_TEST_TMPDIR/h.ndjson" --replay-speed 10 -o -
	t1=$(date +%s%3N)
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq 41 ]
	# 40 s of history at 10x: at least 4 s (an upper bound would be a timing assertion)
	((t1 - t0 >= 4000))
}

@test "producer: --all-symbols --quote-asset keeps only TRADING symbols of that quote asset" {
	# the sim lists each symbol with its quote asset, plus HALTAUSDT/HALTBBTC in BREAK
	kp_sim_start --symbols BTCUSDT,ETHBTC,BNBBTC,SOLUSDT --speed 20 --duration 30
	start=$(p_sim_start_ms)
	curl -fsS "$SIM_URL/api/v3/exchangeInfo" | jq -e '[.symbols[] | select(.quoteAsset == "BTC" and .status == "BREAK")] | length == 1'
	out=$BATS_TEST_TMPDIR/out.ndjson
	p_producer prod --all-symbols --quote-asset btc -o - --since "$start" >"$out"
	kp_wait_for 60 p_sim_done 30
	kp_wait_for 30 bash -c "[ \$(wc -l <'$out') -ge 60 ]"
	kp_stop "$PROD_PID"
	grep -q "exchangeInfo: 2 trading symbols quoted in btc" "$KP_OUT/prod.log"
	[ "$(jq -r .symbol <"$out" | sort -u | paste -sd,)" = BNBBTC,ETHBTC ]
	# exactly the exchange's klines of those two
	for s in BNBBTC ETHBTC; do
		curl -fsS "$SIM_URL/truth?symbol=$s" | jq -c "$P_PROJ" | LC_ALL=C sort >"$BATS_TEST_TMPDIR/want_$s"
		jq -c "select(.symbol == \"$s\") | $P_PROJ" <"$out" | LC_ALL=C sort >"$BATS_TEST_TMPDIR/got_$s"
		diff -q "$BATS_TEST_TMPDIR/want_$s" "$BATS_TEST_TMPDIR/got_$s"
	done
}

@test "producer: creates a missing topic with --retention-ms" {
	[[ $KP_KAFKA_MODE != mock ]] || skip "the mock cluster has no topic configs"
	[[ -r $KP_ROOT/build/kafka.classpath ]] || skip "no Kafka jars"
	# the exchange keeps streaming while the producer creates its three topics (a 1-second
	# stream could end before the first connection, leaving only a clock-bounded catch-up)
	kp_sim_start --symbols BTCUSDT --speed 4 --duration 120
	start=$(p_sim_start_ms)
	topic=kp-ret-$$-$RANDOM
	p_producer prod -s BTCUSDT -t "$topic" --since "$start" --retention-ms 3600000 --partitions 2
	kp_wait_for 60 p_count_ge "$topic" 10
	kp_stop "$PROD_PID"
	run --separate-stderr java -cp "$(cat "$KP_ROOT/build/kafka.classpath")" kafka.admin.ConfigCommand \
		--bootstrap-server "$KAFKA_BROKERS" --describe --entity-type topics --entity-name "$topic"
	[ "$status" -eq 0 ]
	echo "$output"
	[[ $output == *"retention.ms=3600000"* ]]
	[ "$(kcat -L -b "$KAFKA_BROKERS" -t "$topic" | grep -c 'partition [0-9]')" -eq 2 ]
}

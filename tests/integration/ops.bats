#!/usr/bin/env bats
# The operations kit (docs/operations.md): Prometheus configuration and alert rules
# (promtool), the Grafana dashboard, the systemd units (systemd-analyze) and the man
# pages. Metric names are checked against the four programs running for real.

bats_require_minimum_version 1.5.0
load helpers

PROM=$KP_ROOT/deploy/prometheus
DASH=$KP_ROOT/deploy/grafana/dashboards/klinepipe.json
RULES=$PROM/rules/klinepipe.yml
NAMES=$KP_ROOT/tests/integration/ops_names.py
PROGS=(kline-producer kline-inserter kline-aggregator kline-streamer)
# Used by the dashboard's RSS panel, not exported by the programs yet.
PENDING=

need() { command -v "$1" >/dev/null || skip "$1 not installed (scripts/deps.sh installs it)"; }

@test "ops: promtool check config accepts both Prometheus configurations (and their rule files)" {
	need promtool
	for f in prometheus.yml prometheus-host.yml; do
		run promtool check config "$PROM/$f"
		echo "$output"
		[ "$status" -eq 0 ]
		[[ $output == *"SUCCESS: 1 rule files found"* ]]
		[[ $output == *"is valid prometheus config file syntax"* ]]
	done
}

@test "ops: promtool check rules accepts the alert rules" {
	need promtool
	run promtool check rules "$RULES"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ $output =~ SUCCESS:\ ([0-9]+)\ rules\ found ]]
	((BASH_REMATCH[1] >= 10))
}

@test "ops: every alert fires on its synthetic series and not on healthy ones (promtool test rules)" {
	need promtool
	run promtool test rules "$PROM/tests/klinepipe.test.yml"
	echo "$output"
	[ "$status" -eq 0 ]
	# each kind the issue asks for has an alert
	for a in KlinepipeProgramDown KlinepipeNoKlinesPublished KlinepipeInserterLagGrowing \
		KlinepipeProducerBehind KlinepipeSecondsMissingAtExchange; do
		grep -q "alert: $a\$" "$RULES"
		grep -q "alertname: $a\$" "$PROM/tests/klinepipe.test.yml"
	done
}

@test "ops: the dashboard is valid JSON, uses the provisioned datasource, and every query parses" {
	need promtool
	python3 - "$DASH" "$KP_ROOT/deploy/grafana/provisioning/datasources/prometheus.yml" <<'PY'
import json, sys, yaml
dash = json.load(open(sys.argv[1]))
uid = yaml.safe_load(open(sys.argv[2]))["datasources"][0]["uid"]
panels = [p for p in dash["panels"] if p["type"] != "row"]
assert len(panels) >= 12, len(panels)
for p in panels:
    assert p["datasource"]["uid"] == uid, p["title"]
    assert p["targets"], p["title"]
PY
	# promtool parses PromQL only in rule files: every query becomes a recording rule
	python3 "$NAMES" exprs "$DASH" | python3 -c '
import json, sys
rules = [{"record": "dashboard:q%d" % i, "expr": l.strip()} for i, l in enumerate(sys.stdin)]
print(json.dumps({"groups": [{"name": "dashboard", "rules": rules}]}))' >"$BATS_TEST_TMPDIR/dash-rules.yml"
	run promtool check rules "$BATS_TEST_TMPDIR/dash-rules.yml"
	echo "$output"
	[ "$status" -eq 0 ]
}

# /metrics of one program, once it shows that klines went through it.
scrape_when() { # PORT GREP-PATTERN OUT
	curl -fsS --max-time 2 "http://127.0.0.1:$1/metrics" >"$3.tmp" && grep -Eq "$2" "$3.tmp" && mv "$3.tmp" "$3"
}

@test "ops: every metric name in the dashboard and the alert rules is exported by the running programs" {
	kp_sim_start --symbols BTCUSDT,ETHUSDT --speed 5
	db=$(kp_db_new)
	topic=$(kp_topic_new 2)
	pp=$(kp_free_port) ip=$(kp_free_port) ap=$(kp_free_port) sp=$(kp_free_port)
	kp_bg ops-prod "$KP_BIN/kline-producer" --ws-url "$SIM_WS_URL" --rest-url "$SIM_URL" \
		-s btcusdt,ethusdt -t "$topic" --metrics-port "$pp" --stats-interval 0
	kp_bg ops-ins "$KP_BIN/kline-inserter" -t "$topic" -g "g-$topic" -d "$db" --metrics-port "$ip" --stats-interval 0
	kp_bg ops-agg "$KP_BIN/kline-aggregator" --every 1 -d "$db" -i 1m,5m \
		--metrics-host 127.0.0.1 --metrics-port "$ap" --stats-interval 0
	kp_bg ops-str "$KP_BIN/kline-streamer" --listen "127.0.0.1:$sp" -t "$topic" -d "$db" --stats-interval 0
	d=$BATS_TEST_TMPDIR
	kp_wait_for 60 scrape_when "$pp" '^kline_producer_published_total [1-9]' "$d/producer.txt"
	kp_wait_for 60 scrape_when "$ip" '^kline_inserter_rows_total\{result="inserted"\} [1-9]' "$d/inserter.txt"
	kp_wait_for 60 scrape_when "$ap" '^kline_aggregator_runs_total [1-9]' "$d/aggregator.txt"
	kp_wait_for 60 scrape_when "$sp" '^kline_streamer_klines_total [1-9]' "$d/streamer.txt"
	cat "$d"/{producer,inserter,aggregator,streamer}.txt >"$d/exported.txt"
	run python3 "$NAMES" check "$d/exported.txt" --pending "$PENDING" "$DASH" "$RULES"
	echo "$output"
	[ "$status" -eq 0 ]
	# the check itself: a name that does not exist is caught
	sed 's/kline_inserter_consumer_lag/kline_inserter_consumer_lagg/' "$RULES" >"$d/bad.yml"
	run python3 "$NAMES" check "$d/exported.txt" "$d/bad.yml"
	[ "$status" -eq 1 ]
	[[ $output == *"not exported: kline_inserter_consumer_lagg"* ]]
	cp "$d/exported.txt" "$KP_OUT/ops-exported-metrics.txt"
}

@test "ops: RSS panel — process_resident_memory_bytes and process_cpu_seconds_total from every program" {
	f=$KP_OUT/ops-exported-metrics.txt
	[ -s "$f" ] # written by the metric-name test above
	[ "$(grep -c '^process_resident_memory_bytes [1-9]' "$f")" -eq 4 ]
	[ "$(grep -c '^process_cpu_seconds_total [0-9]' "$f")" -eq 4 ]
}

# Installs units, man pages and the programs under one prefix, as `make install` does,
# but with the binaries under test: systemd-analyze verify needs each ExecStart= to exist.
install_prefix() {
	P=$BATS_TEST_TMPDIR/prefix
	make -s -C "$KP_ROOT" --no-print-directory install-systemd PREFIX="$P" >/dev/null
	mkdir -p "$P/bin" "$P/share/man/man1"
	for p in "${PROGS[@]}"; do
		install -m 0755 "$KP_BIN/$p" "$P/bin/"
		"$KP_ROOT/scripts/gen-man.sh" "$KP_BIN/$p" >"$P/share/man/man1/$p.1"
	done
}

@test "ops: systemd units pass systemd-analyze verify, hardened (exposure below 2.0)" {
	need systemd-analyze
	install_prefix
	cd "$P/lib/systemd/system"
	ls
	[ -f kline-aggregator-once.timer ] && [ -f "$P/lib/sysusers.d/klinepipe.conf" ]
	for p in producer inserter aggregator streamer; do [ -f "$P/share/klinepipe/env/$p.env" ]; done
	# the man pages are found too: Documentation=man:... is checked by running man
	run env MANPATH="$P/share/man" systemd-analyze verify ./*.service ./*.timer
	echo "$output"
	[ "$status" -eq 0 ]
	[ -z "$output" ] # warnings (an unknown setting, a bad value) are printed, not failed
	for u in ./*.service; do
		grep -q "^ExecStart=$P/bin/kline-" "$u"
		grep -q '^User=klinepipe$' "$u"
		grep -q "^EnvironmentFile=/etc/klinepipe/[a-z]*.env$" "$u"
		for k in ProtectSystem=strict NoNewPrivileges=yes PrivateTmp=yes; do grep -qx "$k" "$u"; done
		run systemd-analyze security --offline=yes --threshold=20 "$u"
		echo "$output" | tail -1
		[ "$status" -eq 0 ]
	done
	# and verify can fail: a unit whose program is missing
	rm "$P/bin/kline-inserter"
	run env MANPATH="$P/share/man" systemd-analyze verify ./kline-inserter.service
	[ "$status" -ne 0 ]
}

# A page as a reader sees it: ASCII (\- is "-"), no hyphenation, long lines.
render() { groff -man -Tascii -rLL=250n -P-cbou "$1"; }

@test "ops: every option and environment variable in --help is in the man page, which renders cleanly" {
	need groff
	d=$BATS_TEST_TMPDIR
	for p in "${PROGS[@]}"; do
		"$KP_ROOT/scripts/gen-man.sh" "$KP_BIN/$p" >"$d/$p.1"
		run groff -man -Tascii -ww -z "$d/$p.1"
		[ "$status" -eq 0 ]
		[ -z "$output" ] || { echo "$p.1: $output"; false; }
		render "$d/$p.1" >"$d/$p.txt"
		grep -q "^NAME" "$d/$p.txt" && grep -q "^OPTIONS" "$d/$p.txt"
		help=$("$KP_BIN/$p" --help)
		# every option the help names, long and short
		opts=$(grep -oE '(^|[][ ,(|`])--?[A-Za-z][A-Za-z0-9-]*' <<<"$help" | sed -E 's/^[][ ,(|`]//' | sort -u)
		[ "$(wc -l <<<"$opts")" -ge 10 ]
		# an option line in the help is a tagged paragraph in OPTIONS
		tags=$(sed -n '/^OPTIONS/,/^[A-Z]/p' "$d/$p.txt" | grep -E '^ {7}-' | sed -E 's/^ +//')
		while read -r o; do
			grep -qwe "$o" "$d/$p.txt" || { echo "$p: $o is not in the man page"; false; }
		done <<<"$opts"
		while read -r o; do
			grep -qe "$o" <<<"$tags" || { echo "$p: option line '$o' is not an entry of OPTIONS"; false; }
		done < <(grep -E '^ {1,8}-' <<<"$help" | grep -oE '^ +-[A-Za-z0-9-]+(, --[a-z0-9-]+)?' | sed -E 's/^ +//')
		# every environment variable the help names, in ENVIRONMENT
		env_sec=$(sed -n '/^ENVIRONMENT/,/^EXIT STATUS/p' "$d/$p.txt")
		for v in $(grep -v '^usage:' <<<"$help" | grep -oE '\[[A-Z][A-Z0-9_]+[],;]|\([A-Z]+_[A-Z0-9_]+,' | tr -d '[](,;' | sort -u); do
			grep -qw "$v" <<<"$env_sec" || { echo "$p: $v is not in ENVIRONMENT"; false; }
		done
	done
	# the check can fail: a page that lost an option
	grep -v 'metrics\\-port' "$d/kline-producer.1" >"$d/lost.1"
	render "$d/lost.1" >"$d/lost.txt"
	! grep -qwe --metrics-port "$d/lost.txt"
}

@test "ops: make install puts units, man pages and env examples under PREFIX and DESTDIR" {
	d=$BATS_TEST_TMPDIR/destdir
	# install-man makes the pages from $(BIN): the binaries under test, which make must
	# not rebuild (-o), whichever build (release, sanitizers) they come from
	local old=() p
	for p in "${PROGS[@]}"; do old+=(-o "$KP_BIN/$p"); done
	make -s -C "$KP_ROOT" --no-print-directory "${old[@]}" install-systemd install-man \
		DESTDIR="$d" PREFIX=/usr/local BIN="$KP_BIN" BUILD="$BATS_TEST_TMPDIR/build" >/dev/null
	for p in "${PROGS[@]}"; do [ -s "$d/usr/local/share/man/man1/$p.1" ]; done
	[ -f "$d/usr/local/lib/systemd/system/kline-producer.service" ]
	# without DESTDIR in the unit: it names where the program will be
	grep -qx 'ExecStart=/usr/local/bin/kline-producer $PRODUCER_ARGS' "$d/usr/local/lib/systemd/system/kline-producer.service"
	! grep -rq '@[A-Z]*@' "$d/usr/local/lib/systemd/system"
}

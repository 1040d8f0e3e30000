#!/usr/bin/env bats
# The cold archive: kline-aggregator --archive writes the 1s rows retention is about to
# delete as data.binance.vision daily files (DIR/SYMBOL/SYMBOL-1s-YYYY-MM-DD.csv.gz), and
# kline-producer --replay reads them back (producer -> Kafka -> inserter), real programs
# against the harness's PostgreSQL and Kafka.
#
# Data: the simulated exchange's klines (prices and volumes like a market) for 3 symbols
# over 8 hours across a UTC midnight, three days ago: day 1 = the last 4 hours of D0, day 2
# = the first 4 hours of D0 + 1 d. With --retain 1s=2d the retention bound falls inside
# day D0 + 1 d, so exactly day 1 is archived and deleted. The tests run in order and
# share the database and the archive directory (setup_file).

bats_require_minimum_version 1.5.0

load helpers

A_SYMS="BTCUSDT DOGEUSDT ETHUSDT"
A_HALF=14400 # seconds of each day, per symbol

# The archived columns, in the files' column order (symbol first, for one sorted list).
A_EXPORT="select symbol, (extract(epoch from open_time)*1000)::bigint, open, high, low, close,
	volume, (extract(epoch from open_time)*1000)::bigint + 999, quote_volume, trades,
	taker_buy_volume, taker_buy_quote_volume, 0 from kline_1s"

# a_export DB WHERE OUT — the archived columns of the rows matching WHERE, sorted.
a_export() {
	psql "$1" -XAtq -F, -v ON_ERROR_STOP=1 -c "$A_EXPORT where $2 order by 1, 2" >"$3"
}

# a_files DIR OUT — every archive file's rows, symbol prepended, in path order.
a_files() {
	local f sym
	: >"$2"
	for f in "$1"/*/*-1s-*.csv.gz; do
		sym=$(basename "$(dirname "$f")")
		zcat "$f" | sed "s/^/$sym,/" >>"$2"
	done
}

setup_file() {
	local now d0 truth
	now=$(date +%s)
	d0=$(((now / 86400 - 3) * 86400))
	export A_D0=$d0 A_D1=$((d0 + 86400)) # day 1 ends at A_D1 (epoch seconds)
	export A_DATE=$(date -u -d "@$d0" +%F)
	export A_DB=$(kp_db_new) A_DIR=$BATS_FILE_TMPDIR/archive
	truth=$BATS_FILE_TMPDIR/truth.ndjson
	export A_TRUTH=$truth
	kp_sim_start --symbols "${A_SYMS// /,}" --start-time "$(((d0 + 72000) * 1000))" --speed 100000 \
		--duration 28800
	kp_wait_for 60 bash -c "curl -fsS '$SIM_URL/control/stats' | jq -e '.generated_seconds >= 28800' >/dev/null"
	curl -fsS "$SIM_URL/truth" >"$truth"
	kp_stop "$SIM_PID"
	[ "$(wc -l <"$truth")" -eq $((3 * 2 * A_HALF)) ]
	# The original table: stored by the real inserter, rolled up (retention keeps rows
	# that are not), the day-1 rows saved for the comparisons.
	"$KP_BIN/kline-inserter" -d "$A_DB" -i "$truth" --stats-interval 0 2>>"$KP_OUT/archive-fill.log"
	"$KP_BIN/kline-aggregator" --once -d "$A_DB" 2>>"$KP_OUT/archive-fill.log"
	a_export "$A_DB" "open_time < to_timestamp($A_D1)" "$BATS_FILE_TMPDIR/day1.csv"
	[ "$(wc -l <"$BATS_FILE_TMPDIR/day1.csv")" -eq $((3 * A_HALF)) ]
}

agg_archive() {
	"$KP_BIN/kline-aggregator" --once -d "$A_DB" --retain 1s=2d --archive "$A_DIR" "$@"
}

day1_rows() { kp_psql "$A_DB" "select count(*) from kline_1s where open_time < to_timestamp($A_D1)"; }

@test "archive: --archive needs --retain with a 1s entry; --help lists it" {
	run "$KP_BIN/kline-aggregator" --once -d "$A_DB" --archive "$A_DIR"
	[ "$status" -eq 2 ]
	[[ $output == *"--archive needs --retain with a 1s entry"* ]]
	run "$KP_BIN/kline-aggregator" --once -d "$A_DB" --retain 1m=30d --archive "$A_DIR"
	[ "$status" -eq 2 ]
	run "$KP_BIN/kline-aggregator" --once -d "$A_DB" --retain 1s=2d --archive ""
	[ "$status" -eq 2 ]
	[[ $output == *"--archive: empty directory name"* ]]
	run "$KP_BIN/kline-aggregator" --help
	[[ $output == *"--archive DIR"*"AGG_ARCHIVE"* ]]
	[ ! -e "$A_DIR" ]
}

@test "archive: a failed archive stops retention with a clear error and deletes nothing" {
	mkdir -p "$A_DIR"
	echo "not a directory" >"$A_DIR/BTCUSDT" # where BTCUSDT's directory would go
	run agg_archive
	echo "$output"
	[ "$status" -eq 1 ]
	[[ $output == *"archive: $A_DIR/BTCUSDT exists and is not a directory"* ]]
	[ "$(kp_psql "$A_DB" "select count(*) from kline_1s")" -eq $((3 * 2 * A_HALF)) ]
	rm "$A_DIR/BTCUSDT"
	[ -z "$(find "$A_DIR" -name '*.csv.gz')" ]
}

@test "archive: kill -9 in the middle leaves only whole files and deletes only archived rows; a rerun completes" {
	kp_bg archive-kill "$KP_BIN/kline-aggregator" --once -d "$A_DB" --retain 1s=2d --archive "$A_DIR" \
		--retain-batch 500 --log-level debug
	pid=$BG_PID
	kp_wait_for 60 grep -q "archive: $A_DIR/BTCUSDT/BTCUSDT-1s-$A_DATE.csv.gz" "$KP_OUT/archive-kill.log"
	kill -KILL "$pid"
	wait "$pid" || true
	for s in $A_SYMS; do
		f=$A_DIR/$s/$s-1s-$A_DATE.csv.gz
		left=$(kp_psql "$A_DB" "select count(*) from kline_1s where symbol = '$s' and open_time < to_timestamp($A_D1)")
		if [ -e "$f" ]; then
			gzip -t "$f"
			[ "$(zcat "$f" | wc -l)" -eq "$A_HALF" ]
		else
			[ "$left" -eq "$A_HALF" ] # not archived: nothing of it deleted
		fi
	done
	# The rerun: everything of day 1 archived and deleted, day 2 untouched, no temp file.
	run agg_archive
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(day1_rows)" -eq 0 ]
	[ "$(kp_psql "$A_DB" "select count(*) from kline_1s")" -eq $((3 * A_HALF)) ]
	[ -z "$(find "$A_DIR" -name '*.tmp')" ]
}

@test "archive: the files are data.binance.vision's format and hold exactly the deleted rows" {
	[ "$(find "$A_DIR" -type f | sort | tr '\n' ' ')" = \
		"$A_DIR/BTCUSDT/BTCUSDT-1s-$A_DATE.csv.gz $A_DIR/DOGEUSDT/DOGEUSDT-1s-$A_DATE.csv.gz $A_DIR/ETHUSDT/ETHUSDT-1s-$A_DATE.csv.gz " ]
	bytes=0
	for s in $A_SYMS; do
		f=$A_DIR/$s/$s-1s-$A_DATE.csv.gz
		gzip -t "$f"
		bytes=$((bytes + $(stat -c %s "$f")))
		# 12 columns, no header, ms open times ascending one second apart, close_time =
		# open_time + 999, ignore = 0
		zcat "$f" | awk -F, -v n="$A_HALF" 'NF != 12 || $7 != $1 + 999 || $12 != "0" ||
			(NR > 1 && $1 != prev + 1000) { print "bad line " NR ": " $0; bad = 1; exit 1 }
			{ prev = $1 } END { if (!bad && NR != n) { print NR " lines, not " n; exit 1 } }'
	done
	a_files "$A_DIR" "$BATS_TEST_TMPDIR/files.csv"
	diff "$BATS_FILE_TMPDIR/day1.csv" "$BATS_TEST_TMPDIR/files.csv" | head -20
	cmp -s "$BATS_FILE_TMPDIR/day1.csv" "$BATS_TEST_TMPDIR/files.csv"
	echo "# archive: $bytes bytes for $((3 * A_HALF)) klines = $((bytes / (3 * A_HALF))) B/kline" >&3
}

@test "archive: every file replayed (kline-producer --replay DIR -> Kafka -> kline-inserter) equals the original rows" {
	[[ $KP_KAFKA_MODE == real ]] || skip "needs the real Kafka broker (KP_KAFKA_MODE=$KP_KAFKA_MODE)"
	db=$(kp_db_new)
	topic=$(kp_topic_new 3)
	run --separate-stderr "$KP_BIN/kline-producer" --replay "$A_DIR" -t "$topic" --stats-interval 0
	echo "$stderr"
	[ "$status" -eq 0 ]
	[[ $stderr == *"replay of $A_DIR: 3 files, $((3 * A_HALF)) klines published"* ]]
	kp_bg archive-ins "$KP_BIN/kline-inserter" -t "$topic" -g "g$topic" -d "$db" --stats-interval 0
	ipid=$BG_PID
	kp_wait_for 300 bash -c "[ \"\$(psql '$db' -XAtqc 'select count(*) from kline_1s' 2>/dev/null)\" = $((3 * A_HALF)) ]"
	kp_stop "$ipid"
	# 0 missing, 0 doubled (the key), 0 wrong: the archived columns equal the original's.
	a_export "$db" true "$BATS_TEST_TMPDIR/replayed.csv"
	diff "$BATS_FILE_TMPDIR/day1.csv" "$BATS_TEST_TMPDIR/replayed.csv" | head -20
	cmp -s "$BATS_FILE_TMPDIR/day1.csv" "$BATS_TEST_TMPDIR/replayed.csv"
	# What the CSV format does not carry: trade ids -1, no event_time; source says replay.
	[ "$(kp_psql "$db" "select count(*) from kline_1s where first_trade_id = -1 and last_trade_id = -1
		and event_time is null and source = 'replay' and closed")" -eq $((3 * A_HALF)) ]
}

@test "archive: --replay of one .csv.gz or .csv takes the symbol from the file name; -s wins; a wrong -i is refused" {
	f=$A_DIR/ETHUSDT/ETHUSDT-1s-$A_DATE.csv.gz
	run --separate-stderr "$KP_BIN/kline-producer" --replay "$f" -o -
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq "$A_HALF" ]
	printf '%s\n' "${lines[@]}" | jq -r .symbol | sort -u >"$BATS_TEST_TMPDIR/syms"
	[ "$(cat "$BATS_TEST_TMPDIR/syms")" = ETHUSDT ]
	printf '%s\n' "${lines[@]}" >"$BATS_TEST_TMPDIR/from-gz"
	# the same rows from a plain CSV of the same name
	plain=$BATS_TEST_TMPDIR/ETHUSDT-1s-$A_DATE.csv
	zcat "$f" >"$plain"
	run --separate-stderr "$KP_BIN/kline-producer" --replay "$plain" -o -
	[ "$status" -eq 0 ]
	[ "$(printf '%s\n' "${lines[@]}" | cmp - "$BATS_TEST_TMPDIR/from-gz" && echo same)" = same ]
	run --separate-stderr "$KP_BIN/kline-producer" --replay "$f" -s XRPUSDT -o -
	[ "$status" -eq 0 ]
	[[ ${lines[0]} == *'"symbol":"XRPUSDT"'* ]]
	run --separate-stderr "$KP_BIN/kline-producer" --replay "$f" -i 1m -o -
	[ "$status" -eq 2 ]
	[[ $stderr == *"the file name says interval 1s, -i is 1m"* ]]
	# -s with a directory keeps those symbols' files
	run --separate-stderr "$KP_BIN/kline-producer" --replay "$A_DIR" -s dogeusdt -o -
	[ "$status" -eq 0 ]
	[ "${#lines[@]}" -eq "$A_HALF" ]
	[[ $stderr == *"replay of $A_DIR: 1 files"* ]]
	# a gzip file cut short is an error, not a quiet end
	head -c 100000 "$f" >"$BATS_TEST_TMPDIR/ETHUSDT-1s-$A_DATE.csv.gz"
	run --separate-stderr "$KP_BIN/kline-producer" --replay "$BATS_TEST_TMPDIR/ETHUSDT-1s-$A_DATE.csv.gz" -o -
	[ "$status" -eq 1 ]
}

@test "archive: late rows for an archived day are merged into its file (a new second added, a changed one replaced, none lost)" {
	f=$A_DIR/ETHUSDT/ETHUSDT-1s-$A_DATE.csv.gz
	ta=$(((A_D1 - A_HALF + 100) * 1000)) tb=$(((A_D1 - A_HALF + 200) * 1000))
	# The file lacks second ta (as if it had arrived after the first archive)...
	zcat "$f" | grep -v "^$ta," | gzip >"$f.new"
	mv "$f.new" "$f"
	[ "$(zcat "$f" | wc -l)" -eq $((A_HALF - 1)) ]
	# ...then ta arrives late, and tb again with one more trade (a correction).
	jq -c "select(.symbol == \"ETHUSDT\" and (.open_time == $ta or .open_time == $tb))
		| if .open_time == $tb then .trades += 1 | .last_trade_id += (if .first_trade_id >= 0 then 1 else 0 end)
		  else . end" "$A_TRUTH" >"$BATS_TEST_TMPDIR/late.ndjson"
	[ "$(wc -l <"$BATS_TEST_TMPDIR/late.ndjson")" -eq 2 ]
	"$KP_BIN/kline-inserter" -d "$A_DB" -i "$BATS_TEST_TMPDIR/late.ndjson" --stats-interval 0
	[ "$(day1_rows)" -eq 2 ]
	mtime=$(stat -c %Y "$A_DIR/BTCUSDT/BTCUSDT-1s-$A_DATE.csv.gz")
	run agg_archive --log-level debug
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(day1_rows)" -eq 0 ]
	[[ $output == *"ETHUSDT-1s-$A_DATE.csv.gz: $A_HALF rows (2 from kline_1s, $((A_HALF - 2)) kept from the old file)"* ]]
	# the file: every original row, tb with its new trade count
	awk -F, -v OFS=, -v tb="$tb" '$1 == "ETHUSDT" { if ($2 == tb) $10 += 1; print }' \
		"$BATS_FILE_TMPDIR/day1.csv" >"$BATS_TEST_TMPDIR/want"
	zcat "$f" | sed 's/^/ETHUSDT,/' >"$BATS_TEST_TMPDIR/got"
	diff "$BATS_TEST_TMPDIR/want" "$BATS_TEST_TMPDIR/got"
	# the other symbols' files were not touched
	[ "$(stat -c %Y "$A_DIR/BTCUSDT/BTCUSDT-1s-$A_DATE.csv.gz")" = "$mtime" ]
}

@test "archive: an old file that is cut short is not overwritten; the run fails and deletes nothing" {
	f=$A_DIR/DOGEUSDT/DOGEUSDT-1s-$A_DATE.csv.gz
	head -c 200000 "$f" >"$BATS_TEST_TMPDIR/cut.gz"
	cp "$BATS_TEST_TMPDIR/cut.gz" "$f"
	t=$(((A_D1 - A_HALF + 300) * 1000))
	jq -c "select(.symbol == \"DOGEUSDT\" and .open_time == $t)" "$A_TRUTH" >"$BATS_TEST_TMPDIR/late.ndjson"
	"$KP_BIN/kline-inserter" -d "$A_DB" -i "$BATS_TEST_TMPDIR/late.ndjson" --stats-interval 0
	[ "$(day1_rows)" -eq 1 ]
	run agg_archive
	echo "$output"
	[ "$status" -eq 1 ]
	[[ $output == *"archive: reading $f: "*"; not overwritten"* ]]
	cmp "$BATS_TEST_TMPDIR/cut.gz" "$f"
	[ "$(day1_rows)" -eq 1 ]
	[ -z "$(find "$A_DIR" -name '*.tmp')" ]
}

#!/usr/bin/env bats
# kline-aggregator against a real PostgreSQL: bars are compared with an independent
# reference (tests/integration/agg_ref.py, Python Decimal, not the aggregator's SQL).
# Input is written the way the inserter writes it: kline_1s rows + checkpoint rows.

load helpers

AGG_REF=$BATS_TEST_DIRNAME/agg_ref.py
T0=1700000040000 # 2023-11-14 22:14:00 UTC, a minute boundary

setup() {
	DB=$(kp_db_new)
	W=$BATS_TEST_TMPDIR
	# kp_bg appends to $KP_OUT/NAME.log: unique names, so a wait never matches an older run.
	u=$BATS_TEST_NUMBER-$$-$RANDOM
	AGG_NOTIFY=agg-notify-$u AGG_LOCK1=agg-lock1-$u AGG_LOCK2=agg-lock2-$u
	AGG_RESTART=agg-restart-$u AGG_TERM=agg-term-$u
	# An idle first run applies the migrations.
	"$KP_BIN/kline-aggregator" --once -d "$DB" 2>"$W/migrate.log"
}

agg() { "$KP_BIN/kline-aggregator" -d "$DB" "$@"; }

# agg_load ROWS.csv CHECKPOINTS.csv — as one inserter transaction would.
agg_load() {
	psql "$DB" -XAtq -v ON_ERROR_STOP=1 <<EOF
begin;
create temp table agg_in (like kline_1s including defaults, close_time timestamptz);
\copy agg_in (symbol,open_time,close_time,open,high,low,close,volume,quote_volume,trades,taker_buy_volume,taker_buy_quote_volume,first_trade_id,last_trade_id,event_time,source) from '$1' csv
insert into kline_1s (symbol,open_time,open,high,low,close,volume,quote_volume,trades,taker_buy_volume,taker_buy_quote_volume,first_trade_id,last_trade_id,event_time,source)
	select symbol,open_time,open,high,low,close,volume,quote_volume,trades,taker_buy_volume,taker_buy_quote_volume,first_trade_id,last_trade_id,event_time,source from agg_in;
\copy checkpoint (symbol, first_open_time, last_open_time, row_count) from '$2' csv
notify kline_checkpoint;
commit;
EOF
}

# agg_bars TABLE OUT.csv — the columns agg_ref.py check expects.
agg_bars() {
	psql "$DB" -XAtq -v ON_ERROR_STOP=1 -c "\\copy (select symbol, (extract(epoch from open_time)*1000)::bigint,
		(extract(epoch from close_time)*1000)::bigint, open, high, low, close, volume, quote_volume,
		trades, taker_buy_volume, taker_buy_quote_volume, first_trade_id, last_trade_id, row_count,
		closed, source from $1 order by 1, 2) to '$2' csv"
}

# agg_check TABLE SECONDS ROWS.csv [GRACE_S] — bars in TABLE equal the reference from
# ROWS, which holds incomplete buckets for GRACE_S (default 120 = --incomplete-grace's),
# and so do the unresolved reports in incomplete_bar.
agg_check() {
	agg_bars "$1" "$W/$1.csv"
	agg_incomplete "$2" "$W/$1.inc.csv"
	python3 "$AGG_REF" check --rows "$3" --bars "$W/$1.csv" --interval "$2" --grace "${4:-120}" \
		--incomplete "$W/$1.inc.csv"
}

# agg_incomplete SECONDS OUT.csv — unresolved incomplete_bar rows of that interval.
agg_incomplete() {
	psql "$DB" -XAtq -v ON_ERROR_STOP=1 -c "\\copy (select symbol, (extract(epoch from open_time)*1000)::bigint,
		row_count, expected from incomplete_bar where interval_s = $1 and resolved_at is null order by 1, 2) to '$2' csv"
}

# agg_cp ROWS.csv OUT.csv — one checkpoint per symbol covering its rows in ROWS (as one
# inserter batch writes them).
agg_cp() {
	python3 - "$1" "$2" <<'EOF'
import csv, sys
by = {}
for r in csv.reader(open(sys.argv[1])):
    by.setdefault(r[0], []).append(r)
csv.writer(open(sys.argv[2], "w", newline="")).writerows(
    [s, rs[0][1], rs[-1][1], len(rs)] for s, rs in by.items())
EOF
}

# agg_split ROWS.csv COND KEPT.csv HELD.csv — rows for which the Python expression COND
# is true (s = seconds since T0, r = the CSV fields) go to HELD.csv, the others to KEPT.csv.
agg_split() {
	python3 - "$@" "$T0" <<'EOF'
import csv, sys
from datetime import datetime, timezone
src, cond, kept, held, t0 = sys.argv[1:6]
k, h = [], []
for r in csv.reader(open(src)):
    d = datetime.strptime(r[1][:19], "%Y-%m-%d %H:%M:%S").replace(tzinfo=timezone.utc)
    s = int(d.timestamp()) - int(t0) // 1000
    (h if eval(cond) else k).append(r)
csv.writer(open(kept, "w", newline="")).writerows(k)
csv.writer(open(held, "w", newline="")).writerows(h)
EOF
}

# Whole table including ingested_at: shows whether a run rewrote anything.
agg_digest() {
	kp_psql "$DB" "select md5(string_agg(t::text, '|' order by symbol, open_time)) from $1 t"
}

agg_gen() { # MINUTES TAIL_SECONDS [extra gen args]
	local m=$1 tail=$2
	shift 2
	python3 "$AGG_REF" gen --start-ms "$T0" --minutes "$m" --tail-seconds "$tail" \
		--rows "$W/rows.csv" --checkpoints "$W/cps.csv" "$@"
}

@test "aggregator: --help, --version and usage errors" {
	run "$KP_BIN/kline-aggregator" --help
	[ "$status" -eq 0 ]
	[[ $output == *"--once"* && $output == *"--every SECONDS"* && $output == *"--retain"* ]]
	run "$KP_BIN/kline-aggregator" --version
	[ "$status" -eq 0 ]
	[[ $output == *libpq* ]]
	run "$KP_BIN/kline-aggregator"
	[ "$status" -eq 2 ]
	[[ $output == *"give --once"* && $output == *usage:* ]]
	run "$KP_BIN/kline-aggregator" --once -i 5m
	[ "$status" -eq 2 ]
	[[ $output == *"must include 1m"* ]]
	run "$KP_BIN/kline-aggregator" --once -i 1m,7m
	[ "$status" -eq 2 ]
	run "$KP_BIN/kline-aggregator" --once --retain 1s=forever
	[ "$status" -eq 2 ]
	run "$KP_BIN/kline-aggregator" --every 0
	[ "$status" -eq 2 ]
}

@test "aggregator: --once with nothing to do exits 0 and says so" {
	run agg --once
	[ "$status" -eq 0 ]
	[[ $output == *"nothing to do"* ]]
}

@test "aggregator: 1m and 5m bars equal the reference (zero-trade seconds, no-trade minute, missing seconds, split batches)" {
	# 21 minutes = 3 cycles of the 7 scenarios in agg_ref.py, + 30 s of an unfinished minute.
	agg_gen 21 30 --cp-seconds 7
	agg_load "$W/rows.csv" "$W/cps.csv"
	# --incomplete-grace 0: minutes with missing seconds are written at once (and
	# reported), so all 42 minutes are there; the hold has tests of its own below.
	run agg --once -i 1m,5m --incomplete-grace 0
	[ "$status" -eq 0 ]
	run agg_check kline_1m 60 "$W/rows.csv" 0
	echo "$output"
	[ "$status" -eq 0 ]
	[[ $output == "ok 42 bars, 6 incomplete" ]]
	# 5m bars are built from the 1m bars; the reference builds them from the 1s rows.
	run agg_check kline_5m 300 "$W/rows.csv" 0
	echo "$output"
	[ "$status" -eq 0 ]
	[[ $output == "ok 10 bars, 6 incomplete" ]]
	# The unfinished minute is pending, not written: per symbol the 22nd 1m bucket and
	# the 5th 5m bucket.
	[ "$(kp_psql "$DB" "select interval_s, count(*) from aggregator_pending group by 1 order by 1" | tr '\n' ' ')" = "60|2 300|2 " ]
	# A whole minute without trades carries the previous close with trade ids -1.
	[ "$(kp_psql "$DB" "select count(*) from kline_1m where trades = 0 and first_trade_id = -1 and open = close and high = low and volume = 0")" = 6 ]
	# Missing seconds: row_count says how many 1s rows a bar was built from.
	[ "$(kp_psql "$DB" "select count(*) from kline_1m where row_count = 47")" = 6 ]
}

@test "aggregator: end to end behind the real kline-inserter (NDJSON on stdin)" {
	[ -x "$KP_BIN/kline-inserter" ] || skip "kline-inserter not built"
	agg_gen 14 20
	python3 "$AGG_REF" ndjson --rows "$W/rows.csv" >"$W/rows.ndjson"
	# Small batches: minutes split over several inserter transactions and checkpoints.
	"$KP_BIN/kline-inserter" -d "$DB" -i - --batch-rows 50 --stats-interval 0 <"$W/rows.ndjson"
	[ "$(kp_psql "$DB" "select count(*) > 10 from checkpoint")" = t ]
	[ "$(kp_psql "$DB" "select count(*) from rejected")" = 0 ]
	run agg --once -i 1m,5m
	echo "$output"
	[ "$status" -eq 0 ]
	[[ $output != *"bad state"* ]]
	run agg_check kline_1m 60 "$W/rows.csv"
	echo "$output"
	[ "$status" -eq 0 ]
	# 28 minutes, less minute 12 (13 seconds missing, data only 80 s past its end: held).
	[[ $output == "ok 26 bars, 2 incomplete" ]]
	run agg_check kline_5m 300 "$W/rows.csv"
	echo "$output"
	[ "$status" -eq 0 ]
}

@test "aggregator: the rest of a minute arriving later completes it (watermark)" {
	agg_gen 2 30 --cp-seconds 10 --symbols ONEUSDT
	# First batch: minute 0 complete, minute 1 up to second 59 missing → not ready.
	head -n 119 "$W/rows.csv" >"$W/a.csv"
	tail -n +120 "$W/rows.csv" >"$W/b.csv"
	python3 - "$W/a.csv" "$W/b.csv" "$W/ca.csv" "$W/cb.csv" <<'EOF'
import csv, sys
for src, dst in ((sys.argv[1], sys.argv[3]), (sys.argv[2], sys.argv[4])):
    rows = list(csv.reader(open(src)))
    csv.writer(open(dst, "w", newline="")).writerow([rows[0][0], rows[0][1], rows[-1][1], len(rows)])
EOF
	agg_load "$W/a.csv" "$W/ca.csv"
	agg --once
	[ "$(kp_psql "$DB" "select count(*) from kline_1m")" = 1 ]
	agg_load "$W/b.csv" "$W/cb.csv"
	agg --once
	[ "$(kp_psql "$DB" "select count(*) from kline_1m")" = 2 ]
	run agg_check kline_1m 60 "$W/rows.csv"
	echo "$output"
	[ "$status" -eq 0 ]
}

@test "aggregator: running --once twice changes nothing" {
	agg_gen 14 0 --cp-seconds 13
	agg_load "$W/rows.csv" "$W/cps.csv"
	agg --once -i 1m,5m,15m
	d1=$(agg_digest kline_1m) d5=$(agg_digest kline_5m) d15=$(agg_digest kline_15m)
	run agg --once -i 1m,5m,15m
	[ "$status" -eq 0 ]
	[[ $output == *"nothing to do"* ]]
	[ "$(agg_digest kline_1m)" = "$d1" ]
	[ "$(agg_digest kline_5m)" = "$d5" ]
	[ "$(agg_digest kline_15m)" = "$d15" ]
	# Re-consuming everything from scratch rewrites no bar either (same values →
	# the upsert's WHERE skips them; ingested_at is part of the digest).
	kp_psql "$DB" "update aggregator_progress set last_checkpoint_id = 0"
	agg --once -i 1m,5m,15m
	[ "$(agg_digest kline_1m)" = "$d1" ]
	[ "$(agg_digest kline_15m)" = "$d15" ]
}

@test "aggregator: late data re-aggregates exactly the buckets it touches" {
	agg_gen 14 0 --cp-seconds 60
	# Hold back 5 seconds with trades in minute 3 (they arrive later as a backfill).
	python3 - "$W/rows.csv" "$W/early.csv" "$W/late.csv" <<'EOF'
import csv, sys
rows = list(csv.reader(open(sys.argv[1])))
late = [r for r in rows if r[0] == "AAAUSDT" and r[1].startswith("2023-11-14 22:17:") and int(r[9]) > 0][:5]
late_ids = {id(r) for r in late}
csv.writer(open(sys.argv[2], "w", newline="")).writerows(r for r in rows if id(r) not in late_ids)
csv.writer(open(sys.argv[3], "w", newline="")).writerows(late)
EOF
	[ "$(wc -l <"$W/late.csv")" -eq 5 ]
	python3 - "$W/early.csv" "$W/cps_early.csv" <<'EOF'
import csv, sys
rows = list(csv.reader(open(sys.argv[1])))
by = {}
for r in rows:
    by.setdefault(r[0], []).append(r)
out = [[s, rs[0][1], rs[-1][1], len(rs)] for s, rs in by.items()]
csv.writer(open(sys.argv[2], "w", newline="")).writerows(out)
EOF
	agg_load "$W/early.csv" "$W/cps_early.csv"
	agg --once -i 1m,5m
	run agg_check kline_1m 60 "$W/early.csv"
	[ "$status" -eq 0 ]
	before=$(kp_psql "$DB" "select symbol, open_time, ingested_at from kline_1m order by 1, 2")
	before5=$(kp_psql "$DB" "select symbol, open_time, ingested_at from kline_5m order by 1, 2")
	python3 - "$W/late.csv" "$W/cps_late.csv" <<'EOF'
import csv, sys
rows = list(csv.reader(open(sys.argv[1])))
csv.writer(open(sys.argv[2], "w", newline="")).writerow([rows[0][0], rows[0][1], rows[-1][1], len(rows)])
EOF
	agg_load "$W/late.csv" "$W/cps_late.csv"
	run agg --once -i 1m,5m
	[ "$status" -eq 0 ]
	run agg_check kline_1m 60 "$W/rows.csv"
	echo "$output"
	[ "$status" -eq 0 ]
	run agg_check kline_5m 300 "$W/rows.csv"
	echo "$output"
	[ "$status" -eq 0 ]
	after=$(kp_psql "$DB" "select symbol, open_time, ingested_at from kline_1m order by 1, 2")
	after5=$(kp_psql "$DB" "select symbol, open_time, ingested_at from kline_5m order by 1, 2")
	# Exactly one 1m bar (AAAUSDT 22:17) and one 5m bar (AAAUSDT 22:15) were rewritten.
	[ "$(diff <(echo "$before") <(echo "$after") | grep -c '^>')" -eq 1 ]
	[ "$(diff <(echo "$before5") <(echo "$after5") | grep -c '^>')" -eq 1 ]
	diff <(echo "$before") <(echo "$after") | grep -q '^> AAAUSDT|2023-11-14 22:17:00+00'
}

@test "aggregator: two --once at the same time do the work once" {
	agg_gen 60 0 --cp-seconds 5
	agg_load "$W/rows.csv" "$W/cps.csv"
	agg --once --batch-buckets 10 -i 1m,5m 2>"$W/a.log" &
	a=$!
	agg --once --batch-buckets 10 -i 1m,5m 2>"$W/b.log" &
	b=$!
	wait "$a"
	wait "$b"
	cat "$W/a.log" "$W/b.log"
	# Whichever came second either found the lock held or nothing left to do.
	grep -Eq "another aggregator is running|nothing to do" "$W/a.log" "$W/b.log"
	run agg_check kline_1m 60 "$W/rows.csv"
	echo "$output"
	[ "$status" -eq 0 ]
	run agg_check kline_5m 300 "$W/rows.csv"
	[ "$status" -eq 0 ]
	[ "$(kp_psql "$DB" "select count(*) from rejected")" = 0 ]
}

@test "aggregator: kill -9 in the middle, the next run completes with nothing doubled" {
	# 1 day x 4 symbols of 1s rows (345,600), generated in SQL; checkpoints of 1000 rows.
	psql "$DB" -XAtq -v ON_ERROR_STOP=1 -v nsym=4 -v secs=86400 -v t0=1699920000 -v cpsz=1000 \
		-f "$BATS_TEST_DIRNAME/agg_gen.sql"
	# Small transactions (~150 of them) so that the kill lands between and inside them.
	"$KP_BIN/kline-aggregator" -d "$DB" --once -i 1m,5m,1h --batch-buckets 50 --batch-checkpoints 20 \
		2>"$W/killed.log" &
	pid=$!
	kp_wait_for 30 bash -c "[ \"\$(psql '$DB' -XAtqc 'select count(*) > 0 from kline_1m')\" = t ]"
	sleep "0.$((RANDOM % 5))"
	kill -9 "$pid"
	wait "$pid" || true
	partial=$(kp_psql "$DB" "select count(*) from kline_1m")
	echo "1m bars committed before the kill: $partial"
	[ "$partial" -lt 5760 ]
	# The killed client's backend may still finish its statement (and hold the lock) for
	# a moment; until it notices, a new --once says "another aggregator is running".
	kp_wait_for 30 bash -c "! '$KP_BIN/kline-aggregator' -d '$DB' --once -i 1m,5m,1h 2>&1 | tee -a '$W/rerun.log' | grep -q 'another aggregator'"
	cat "$W/rerun.log"
	grep -q "done: " "$W/rerun.log"
	# Every minute exactly once, each from its 60 rows (the data ends on a day boundary).
	[ "$(kp_psql "$DB" "select count(*), count(distinct (symbol, open_time)) from kline_1m")" = "5760|5760" ]
	[ "$(kp_psql "$DB" "select count(*) from kline_1m where row_count <> 60")" = 0 ]
	[ "$(kp_psql "$DB" "select count(*), sum(row_count) from kline_1h")" = "96|345600" ]
	[ "$(kp_psql "$DB" "select count(*) from aggregator_pending")" = 0 ]
	# Same sums as a plain GROUP BY over kline_1s (not the aggregator's statement).
	[ "$(kp_psql "$DB" "select count(*) from kline_1m m join (select symbol, date_bin('1 min', open_time, 'epoch') b,
		sum(volume) v, sum(trades) n, max(high) filter (where trades > 0) h from kline_1s group by 1, 2) s
		on s.symbol = m.symbol and s.b = m.open_time where s.v = m.volume and s.n = m.trades and s.h = m.high")" = 5760 ]
}

@test "aggregator: a checkpoint that does not match kline_1s is reported (--strict exits 1)" {
	agg_gen 2 0 --symbols ONEUSDT --cp-seconds 60
	agg_load "$W/rows.csv" "$W/cps.csv"
	# A checkpoint claiming 60 rows where there are none.
	kp_psql "$DB" "insert into checkpoint (symbol, first_open_time, last_open_time, row_count)
		values ('GHOST', to_timestamp(1700000040), to_timestamp(1700000099), 60)"
	run agg --once
	echo "$output"
	[ "$status" -eq 0 ]
	[[ $output == *"bad state: checkpoint"*"GHOST"*"row_count 60 but only 0 rows"* ]]
	[ "$(kp_psql "$DB" "select count(*) from rejected where origin like 'checkpoint:%' and program = 'kline-aggregator'")" = 1 ]
	[ "$(kp_psql "$DB" "select count(*) from kline_1m")" = 2 ]
	kp_psql "$DB" "insert into checkpoint (symbol, first_open_time, last_open_time, row_count)
		values ('ONEUSDT', to_timestamp(1700000100), to_timestamp(1700000040), 1)"
	run agg --once --strict
	echo "$output"
	[ "$status" -eq 1 ]
	[[ $output == *"first_open_time is after last_open_time"* ]]
}

@test "aggregator: Binance ADABTC 1m rows roll up into 5m bars in Binance's own format" {
	# Real 1m rows (no 1s data exists for them): load them as kline_1m bars, point a
	# checkpoint at their range, and let the aggregator build the 5m bars.
	csv=$KP_ROOT/tests/data/binance/ADABTC-1m-2021-11-27.csv
	[ -r "$csv" ]
	psql "$DB" -XAtq -v ON_ERROR_STOP=1 <<EOF
create temp table raw (ot bigint, o numeric, h numeric, l numeric, c numeric, v numeric, ct bigint,
	qv numeric, n bigint, tbv numeric, tbq numeric, ignore text);
\copy raw from '$csv' csv
insert into kline_1m (symbol, open_time, close_time, open, high, low, close, volume, quote_volume,
	trades, taker_buy_volume, taker_buy_quote_volume, source, row_count)
select 'ADABTC', to_timestamp(ot / 1000.0), to_timestamp(ct / 1000.0), o, h, l, c, v, qv, n, tbv, tbq, 'rest', 60 from raw;
insert into checkpoint (symbol, first_open_time, last_open_time, row_count)
select 'ADABTC', to_timestamp(min(ot) / 1000.0), to_timestamp(max(ot) / 1000.0) + interval '59 s', 0 from raw;
EOF
	run agg --once -i 1m,5m
	[ "$status" -eq 0 ]
	# No 1s rows: the 1m bars are left as they are.
	[ "$(kp_psql "$DB" "select count(*) from kline_1m where source = 'rest'")" = 10 ]
	kp_psql "$DB" "select (extract(epoch from open_time)*1000)::bigint, open, high, low, close, volume,
		(extract(epoch from close_time)*1000)::bigint, quote_volume, trades, taker_buy_volume,
		taker_buy_quote_volume, 0 from kline_5m order by open_time" | tr '|' , >"$W/got5m.csv"
	python3 "$AGG_REF" binance5m "$csv" >"$W/want5m.csv"
	cat "$W/got5m.csv"
	diff "$W/want5m.csv" "$W/got5m.csv"
	[ "$(wc -l <"$W/got5m.csv")" -eq 2 ]
}

@test "aggregator: --every wakes on NOTIFY kline_checkpoint and writes the bar within 5 s" {
	agg_gen 1 1 --symbols ONEUSDT --cp-seconds 100
	head -n 59 "$W/rows.csv" >"$W/a.csv"
	sed -n 60,61p "$W/rows.csv" >"$W/b.csv"
	python3 - "$W/a.csv" "$W/b.csv" "$W/ca.csv" "$W/cb.csv" <<'EOF'
import csv, sys
for src, dst in ((sys.argv[1], sys.argv[3]), (sys.argv[2], sys.argv[4])):
    rows = list(csv.reader(open(src)))
    csv.writer(open(dst, "w", newline="")).writerow([rows[0][0], rows[0][1], rows[-1][1], len(rows)])
EOF
	# A long period: only a notification can make it run again in time.
	mport=$(kp_free_port)
	kp_bg "$AGG_NOTIFY" "$KP_BIN/kline-aggregator" -d "$DB" --every 600 --stats-interval 0 --log-level debug \
		--metrics-host 127.0.0.1 --metrics-port "$mport"
	apid=$BG_PID
	kp_wait_for 20 grep -q "looping every 600" "$KP_OUT/$AGG_NOTIFY.log"
	kp_wait_for 20 bash -c "[ \"\$(psql '$DB' -XAtqc 'select count(*) from aggregator_progress')\" = 1 ]"
	agg_load "$W/a.csv" "$W/ca.csv"
	kp_wait_for 10 bash -c "[ \"\$(psql '$DB' -XAtqc 'select last_checkpoint_id from aggregator_progress')\" = 1 ]"
	[ "$(kp_psql "$DB" "select count(*) from kline_1m")" = 0 ]
	agg_load "$W/b.csv" "$W/cb.csv"
	kp_wait_for 5 bash -c "[ \"\$(psql '$DB' -XAtqc 'select count(*) from kline_1m')\" = 1 ]"
	kp_wait_for 5 bash -c "curl -sf http://127.0.0.1:$mport/metrics | grep -qx 'kline_aggregator_bars_written_total{interval=\"1m\"} 1'"
	curl -sf "http://127.0.0.1:$mport/metrics" >"$W/metrics.txt"
	grep -qx 'kline_aggregator_checkpoints_total 2' "$W/metrics.txt"
	grep -qx 'kline_aggregator_buckets_pending 1' "$W/metrics.txt" # minute 1 has begun
	grep -q '^kline_aggregator_run_duration_seconds ' "$W/metrics.txt"
	rc=0
	kp_stop "$apid" || rc=$?
	[ "$rc" -eq 0 ]
	run agg_check kline_1m 60 "$W/rows.csv"
	[ "$status" -eq 0 ]
}

@test "aggregator: --once while a loop holds the lock exits 0; a second loop waits and takes over" {
	kp_bg "$AGG_LOCK1" "$KP_BIN/kline-aggregator" -d "$DB" --every 1 --stats-interval 0
	p1=$BG_PID
	# PGX_LOCK_AGGREGATOR = 0x6b6c6e0003: classid 0x6b, objid 0x6c6e0003, in this database.
	kp_wait_for 20 bash -c "[ \"\$(psql '$DB' -XAtqc \"select count(*) from pg_locks where locktype = 'advisory'
		and granted and classid = 107 and objid = 1819148291 and database = (select oid from pg_database
		where datname = current_database())\")\" = 1 ]"
	run agg --once
	[ "$status" -eq 0 ]
	[[ $output == *"another aggregator is running"* ]]
	kp_bg "$AGG_LOCK2" "$KP_BIN/kline-aggregator" -d "$DB" --every 1 --stats-interval 0
	p2=$BG_PID
	kp_wait_for 20 grep -q "another aggregator is running; waiting" "$KP_OUT/$AGG_LOCK2.log"
	kp_stop "$p1"
	kp_wait_for 20 grep -q "took over the aggregator lock" "$KP_OUT/$AGG_LOCK2.log"
	agg_gen 2 1 --symbols ONEUSDT
	agg_load "$W/rows.csv" "$W/cps.csv"
	kp_wait_for 20 bash -c "[ \"\$(psql '$DB' -XAtqc 'select count(*) from kline_1m')\" = 2 ]"
	kp_stop "$p2"
}

@test "aggregator: loop mode survives a PostgreSQL restart" {
	[ -n "${KP_HARNESS_DIR:-}" ] || skip "needs the harness (KP_HARNESS_DIR) to restart PostgreSQL"
	agg_gen 4 1 --symbols ONEUSDT --cp-seconds 60
	head -n 121 "$W/rows.csv" >"$W/a.csv"
	tail -n +122 "$W/rows.csv" >"$W/b.csv"
	python3 - "$W/a.csv" "$W/b.csv" "$W/ca.csv" "$W/cb.csv" <<'EOF'
import csv, sys
for src, dst in ((sys.argv[1], sys.argv[3]), (sys.argv[2], sys.argv[4])):
    rows = list(csv.reader(open(src)))
    csv.writer(open(dst, "w", newline="")).writerow([rows[0][0], rows[0][1], rows[-1][1], len(rows)])
EOF
	kp_bg "$AGG_RESTART" "$KP_BIN/kline-aggregator" -d "$DB" --every 1 --stats-interval 0
	apid=$BG_PID
	agg_load "$W/a.csv" "$W/ca.csv"
	kp_wait_for 20 bash -c "[ \"\$(psql '$DB' -XAtqc 'select count(*) from kline_1m')\" = 2 ]"
	kp_pg_stop
	sleep 2
	kp__alive "$apid"
	kp_pg_start
	agg_load "$W/b.csv" "$W/cb.csv"
	kp_wait_for 30 bash -c "[ \"\$(psql '$DB' -XAtqc 'select count(*) from kline_1m')\" = 4 ]"
	grep -q "connection lost; reconnecting" "$KP_OUT/$AGG_RESTART.log"
	rc=0
	kp_stop "$apid" || rc=$?
	[ "$rc" -eq 0 ]
	run agg_check kline_1m 60 "$W/rows.csv"
	[ "$status" -eq 0 ]
}

@test "aggregator: --retain drops old hours but never 1s rows not rolled up yet" {
	now=$(date +%s)
	start=$(((now / 3600 - 4) * 3600)) # the start of the hour 4 hours ago
	psql "$DB" -XAtq -v ON_ERROR_STOP=1 -v nsym=2 -v secs=10800 -v t0="$start" -v cpsz=600 \
		-f "$BATS_TEST_DIRNAME/agg_gen.sql"
	# S00002 stops 30 s into minute 70 (in the second hour): that minute has not reached
	# its end, it stays pending, and the hour that holds it must stay whole.
	cut=$((start + 70 * 60 + 30))
	kp_psql "$DB" "delete from kline_1s where symbol = 'S00002' and open_time >= to_timestamp($cut);
		delete from checkpoint where symbol = 'S00002' and first_open_time >= to_timestamp($cut);
		update checkpoint set last_open_time = to_timestamp($cut - 1), row_count = row_count - 570
		where symbol = 'S00002' and last_open_time >= to_timestamp($cut)"
	run agg --once --retain 1s=2h,1m=140m --retain-batch 1000
	echo "$output"
	[ "$status" -eq 0 ]
	# The first hour is gone as a whole (dropped; storage.bats checks it leaves no dead
	# tuples, this test's own deletes make some); the second, which holds
	# the pending minute, and the third (newer than 2 h in part) stay, for both symbols.
	[ "$(kp_psql "$DB" "select count(*) from kline_1s where open_time < to_timestamp($start + 3600)")" = 0 ]
	[ "$(kp_psql "$DB" "select count(*) from kline_1s where symbol = 'S00001'")" = 7200 ]
	[ "$(kp_psql "$DB" "select count(*) from kline_1s where symbol = 'S00002'")" = 630 ]
	[[ $output == *"dropped partition kline_1s_p"* ]]
	[ "$(kp_psql "$DB" "select count(*) from aggregator_pending where symbol = 'S00002' and interval_s = 60")" = 1 ]
	# 1m bars older than 140 min are gone (row by row), the rest is there.
	[ "$(kp_psql "$DB" "select count(*) from kline_1m where open_time < now() - interval '140 min' - interval '5 s'")" = 0 ]
	[ "$(kp_psql "$DB" "select count(*) > 0 from kline_1m where symbol = 'S00001'")" = t ]
	# Consumed checkpoints ending before the 1s horizon are pruned.
	[ "$(kp_psql "$DB" "select count(*) from checkpoint where last_open_time < now() - interval '2 h' - interval '5 s'")" = 0 ]
	[ "$(kp_psql "$DB" "select count(*) > 0 from checkpoint")" = t ]
}

@test "aggregator: SIGTERM in loop mode exits 0" {
	kp_bg "$AGG_TERM" "$KP_BIN/kline-aggregator" -d "$DB" --every 5 --stats-interval 0
	pid=$BG_PID
	kp_wait_for 20 grep -q "looping every 5" "$KP_OUT/$AGG_TERM.log"
	rc=0
	kp_stop "$pid" || rc=$?
	[ "$rc" -eq 0 ]
}

# ---- incomplete minutes (issue "Zero loss at 2,000 symbols"): a bucket with fewer 1s rows
# than seconds is held for --incomplete-grace (data time), then written and reported.

@test "aggregator: --incomplete-grace usage errors" {
	run "$KP_BIN/kline-aggregator" --once --incomplete-grace soon
	[ "$status" -eq 2 ]
	[[ $output == *"--incomplete-grace"* ]]
	run "$KP_BIN/kline-aggregator" --once --incomplete-grace 8d
	[ "$status" -eq 2 ]
	run "$KP_BIN/kline-aggregator" --help
	[[ $output == *"--incomplete-grace DUR"* ]]
}

@test "aggregator: a minute with 59 of 60 seconds is not written while the grace lasts (--once exits 0)" {
	agg_gen 3 0 --symbols ONEUSDT --cp-seconds 10
	# Second 30 of minute 0 is lost; the data reaches 22:16:29: 90 s past minute 0's end,
	# less than the default grace (2 minutes).
	agg_split "$W/rows.csv" "s == 30 or s >= 150" "$W/a.csv" "$W/rest.csv"
	agg_cp "$W/a.csv" "$W/ca.csv"
	agg_load "$W/a.csv" "$W/ca.csv"
	run agg --once -i 1m,5m
	echo "$output"
	[ "$status" -eq 0 ]
	[[ $output != *"incomplete bar:"* ]]
	# Minute 0 is held (pending, no bar); minute 1 is complete and written at once.
	[ "$(kp_psql "$DB" "select to_char(open_time at time zone 'UTC', 'HH24:MI'), row_count from kline_1m order by 1" | tr '\n' ' ')" = "22:15|60 " ]
	[ "$(kp_psql "$DB" "select to_char(bucket at time zone 'UTC', 'HH24:MI'), held from aggregator_pending where interval_s = 60 order by 1" | tr '\n' ' ')" = "22:14|t 22:16|f " ]
	[ "$(kp_psql "$DB" "select count(*) from incomplete_bar")" = 0 ]
	# Running again before the watermark moves changes nothing (the held bucket is not
	# even read again).
	run agg --once -i 1m,5m
	[ "$status" -eq 0 ]
	[[ $output == *"nothing to do"* ]]
	[ "$(kp_psql "$DB" "select count(*) from kline_1m")" = 1 ]
	run agg_check kline_1m 60 "$W/a.csv"
	echo "$output"
	[ "$status" -eq 0 ]
}

@test "aggregator: the missing second arriving within the grace completes the held minute (never written incomplete, not reported)" {
	agg_gen 3 0 --symbols ONEUSDT --cp-seconds 10
	agg_split "$W/rows.csv" "s == 30 or s >= 150" "$W/a.csv" "$W/b0.csv"
	agg_split "$W/b0.csv" "s >= 150" "$W/late.csv" "$W/b.csv"
	agg_cp "$W/a.csv" "$W/ca.csv"
	agg_cp "$W/late.csv" "$W/cl.csv"
	agg_load "$W/a.csv" "$W/ca.csv"
	agg --once -i 1m,5m
	[ "$(kp_psql "$DB" "select count(*) from aggregator_pending where held")" = 1 ]
	# The lost second turns up (a reconnect backfill) before the data is 2 minutes on.
	agg_load "$W/late.csv" "$W/cl.csv"
	run agg --once -i 1m,5m
	echo "$output"
	[ "$status" -eq 0 ]
	[[ $output != *"incomplete bar:"* ]]
	[ "$(kp_psql "$DB" "select to_char(open_time at time zone 'UTC', 'HH24:MI'), row_count from kline_1m order by 1" | tr '\n' ' ')" = "22:14|60 22:15|60 " ]
	[ "$(kp_psql "$DB" "select count(*) from incomplete_bar")" = 0 ]
	[ "$(kp_psql "$DB" "select count(*) from aggregator_pending where held")" = 0 ]
	cat "$W/a.csv" "$W/late.csv" >"$W/got.csv"
	run agg_check kline_1m 60 "$W/got.csv"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ $output == "ok 2 bars, 0 incomplete" ]]
}

@test "aggregator: after the grace the incomplete minute is written with row_count 59 and reported (table, metric, log)" {
	agg_gen 3 0 --symbols ONEUSDT --cp-seconds 10
	agg_split "$W/rows.csv" "s == 30 or s >= 150" "$W/a.csv" "$W/b0.csv"
	agg_split "$W/b0.csv" "s == 30" "$W/b.csv" "$W/lost.csv"
	agg_cp "$W/a.csv" "$W/ca.csv"
	agg_cp "$W/b.csv" "$W/cb.csv"
	mport=$(kp_free_port)
	log=agg-grace-$u
	kp_bg "$log" "$KP_BIN/kline-aggregator" -d "$DB" --every 600 --stats-interval 0 \
		--metrics-host 127.0.0.1 --metrics-port "$mport"
	apid=$BG_PID
	kp_wait_for 20 bash -c "[ \"\$(psql '$DB' -XAtqc 'select count(*) from aggregator_progress')\" = 1 ]"
	agg_load "$W/a.csv" "$W/ca.csv"
	kp_wait_for 10 bash -c "[ \"\$(psql '$DB' -XAtqc 'select count(*) from kline_1m')\" = 1 ]"
	kp_wait_for 5 bash -c "curl -sf http://127.0.0.1:$mport/metrics | grep -qx 'kline_aggregator_buckets_held 1'"
	# The data reaches 22:16:59: 2 minutes past minute 0's last second.
	agg_load "$W/b.csv" "$W/cb.csv"
	kp_wait_for 10 bash -c "[ \"\$(psql '$DB' -XAtqc 'select count(*) from kline_1m')\" = 3 ]"
	[ "$(kp_psql "$DB" "select row_count from kline_1m where open_time = to_timestamp($T0 / 1000)")" = 59 ]
	[ "$(kp_psql "$DB" "select interval_s, symbol, to_char(open_time at time zone 'UTC', 'HH24:MI:SS'), row_count, expected,
		first_seen is not null, resolved_at is null from incomplete_bar")" = "60|ONEUSDT|22:14:00|59|60|t|t" ]
	kp_wait_for 5 bash -c "curl -sf http://127.0.0.1:$mport/metrics | grep -qx 'kline_aggregator_incomplete_bars_total{interval=\"1m\"} 1'"
	curl -sf "http://127.0.0.1:$mport/metrics" | grep -qx 'kline_aggregator_buckets_held 0'
	grep -q "incomplete bar: ONEUSDT 1m 2023-11-14T22:14:00Z has 59 of 60 seconds (1 missing); written with row_count 59" \
		"$KP_OUT/$log.log"
	rc=0
	kp_stop "$apid" || rc=$?
	[ "$rc" -eq 0 ]
	cat "$W/a.csv" "$W/b.csv" >"$W/got.csv"
	run agg_check kline_1m 60 "$W/got.csv"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ $output == "ok 3 bars, 1 incomplete" ]]
}

@test "aggregator: the missing second arriving later rewrites the 1m and 5m bars and resolves the reports" {
	# From 22:15 (a 5m boundary), 7 minutes: minute 2 loses second 30; the data reaches
	# 2 minutes past the first 5m bucket, so both the 1m bar (22:17) and the 5m bar
	# (22:15) are written incomplete. (Minute 5 is agg_ref.py's "missing seconds" minute,
	# in the next 5m bucket and still within its grace.)
	T0=1700000100000
	agg_gen 7 0 --symbols ONEUSDT --cp-seconds 13
	agg_split "$W/rows.csv" "s == 150" "$W/a.csv" "$W/late.csv"
	agg_cp "$W/a.csv" "$W/ca.csv"
	agg_cp "$W/late.csv" "$W/cl.csv"
	agg_load "$W/a.csv" "$W/ca.csv"
	run agg --once -i 1m,5m
	echo "$output"
	[ "$status" -eq 0 ]
	[[ $output == *"incomplete bar: ONEUSDT 1m 2023-11-14T22:17:00Z has 59 of 60 seconds (1 missing)"* ]]
	[[ $output == *"incomplete bar: ONEUSDT 5m 2023-11-14T22:15:00Z has 299 of 300 seconds (1 missing)"* ]]
	run agg_check kline_1m 60 "$W/a.csv"
	echo "$output"
	[ "$status" -eq 0 ]
	run agg_check kline_5m 300 "$W/a.csv"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ $output == "ok 1 bars, 1 incomplete" ]]
	[ "$(kp_psql "$DB" "select interval_s, row_count from incomplete_bar where resolved_at is null order by 1" | tr '\n' ' ')" = "60|59 300|299 " ]
	# The lost second arrives with its own checkpoint (a backfill).
	agg_load "$W/late.csv" "$W/cl.csv"
	run agg --once -i 1m,5m
	echo "$output"
	[ "$status" -eq 0 ]
	[[ $output == *"1 incomplete 1m bars are complete now"* && $output == *"1 incomplete 5m bars are complete now"* ]]
	[ "$(kp_psql "$DB" "select row_count from kline_1m where open_time = to_timestamp($T0 / 1000 + 120)")" = 60 ]
	[ "$(kp_psql "$DB" "select row_count from kline_5m where open_time = to_timestamp($T0 / 1000)")" = 300 ]
	[ "$(kp_psql "$DB" "select interval_s, row_count, resolved_at is not null from incomplete_bar order by 1" | tr '\n' ' ')" = "60|60|t 300|300|t " ]
	run agg_check kline_1m 60 "$W/rows.csv"
	echo "$output"
	[ "$status" -eq 0 ]
	run agg_check kline_5m 300 "$W/rows.csv"
	echo "$output"
	[ "$status" -eq 0 ]
	[[ $output == "ok 1 bars, 0 incomplete" ]]
}

@test "aggregator: a complete minute is written at once while an incomplete one beside it is held" {
	# Two symbols, one minute each; BBBUSDT lost second 10. The data ends exactly at the
	# minute's last second: AAAUSDT's bar is due at once (as before), BBBUSDT's is not.
	agg_gen 1 0 --cp-seconds 100
	python3 - "$W/rows.csv" "$W/a.csv" <<'EOF'
import csv, sys
rows = [r for r in csv.reader(open(sys.argv[1])) if not (r[0] == "BBBUSDT" and r[1].startswith("2023-11-14 22:14:10"))]
csv.writer(open(sys.argv[2], "w", newline="")).writerows(rows)
EOF
	agg_cp "$W/a.csv" "$W/ca.csv"
	mport=$(kp_free_port)
	log=agg-atonce-$u
	kp_bg "$log" "$KP_BIN/kline-aggregator" -d "$DB" --every 600 --stats-interval 0 \
		--metrics-host 127.0.0.1 --metrics-port "$mport"
	apid=$BG_PID
	kp_wait_for 20 bash -c "[ \"\$(psql '$DB' -XAtqc 'select count(*) from aggregator_progress')\" = 1 ]"
	agg_load "$W/a.csv" "$W/ca.csv"
	# Woken by NOTIFY: the complete minute lands within seconds.
	kp_wait_for 5 bash -c "[ \"\$(psql '$DB' -XAtqc 'select count(*) from kline_1m')\" = 1 ]"
	kp_wait_for 5 bash -c "curl -sf http://127.0.0.1:$mport/metrics | grep -qx 'kline_aggregator_buckets_held 1'"
	[ "$(kp_psql "$DB" "select symbol, row_count from kline_1m")" = "AAAUSDT|60" ]
	[ "$(kp_psql "$DB" "select symbol from aggregator_pending where held")" = BBBUSDT ]
	[ "$(kp_psql "$DB" "select count(*) from incomplete_bar")" = 0 ]
	curl -sf "http://127.0.0.1:$mport/metrics" | grep -qx 'kline_aggregator_incomplete_bars_total{interval="1m"} 0'
	kp_stop "$apid"
}

@test "aggregator: a symbol's first minute is judged from its first second; a minute lost whole between checkpoints is reported" {
	# ONEUSDT starts at second 37 of its first minute (listing, or the first minute of a
	# run): 23 rows are all that minute can have, so it is complete and written at once.
	# Then 70 s (22:16:00-22:17:09) are lost between two inserter batches: minute 2 has
	# no row at all, and no checkpoint covers it; minute 3 has 50 of its seconds.
	agg_gen 7 0 --symbols ONEUSDT --cp-seconds 100
	agg_split "$W/rows.csv" "s >= 37" "$W/pre.csv" "$W/all.csv"
	agg_split "$W/all.csv" "s >= 120" "$W/a.csv" "$W/r.csv"
	agg_split "$W/r.csv" "s >= 190" "$W/gap.csv" "$W/b.csv"
	agg_cp "$W/a.csv" "$W/ca.csv"
	agg_cp "$W/b.csv" "$W/cb.csv"
	agg_load "$W/a.csv" "$W/ca.csv"
	run agg --once
	[ "$status" -eq 0 ]
	[ "$(kp_psql "$DB" "select to_char(open_time at time zone 'UTC', 'HH24:MI'), row_count from kline_1m order by 1" | tr '\n' ' ')" = "22:14|23 22:15|60 " ]
	agg_load "$W/b.csv" "$W/cb.csv"
	run agg --once
	echo "$output"
	[ "$status" -eq 0 ]
	[[ $output == *"incomplete bar: ONEUSDT 1m 2023-11-14T22:16:00Z has none of its 60 seconds; no bar written"* ]]
	[[ $output == *"incomplete bar: ONEUSDT 1m 2023-11-14T22:17:00Z has 50 of 60 seconds (10 missing)"* ]]
	cat "$W/a.csv" "$W/b.csv" >"$W/got.csv"
	run agg_check kline_1m 60 "$W/got.csv"
	echo "$output"
	[ "$status" -eq 0 ]
	[ "$(kp_psql "$DB" "select to_char(open_time at time zone 'UTC', 'HH24:MI'), row_count, expected from incomplete_bar order by 1" | tr '\n' ' ')" = "22:16|0|60 22:17|50|60 " ]
}

@test "aggregator: 2,000 symbols x 3 minutes with 1% of seconds lost: exactly those minutes reported, all bars right" {
	# 3.5 minutes of 2,000 symbols (420,000 rows, made by the server), then ~1% of the
	# seconds deleted at random (fixed seed) and the checkpoints made to match, as the
	# inserter would have written them for the rows that arrived. With a 30 s grace the
	# watermark (22:17:29) is past every grace of minutes 0-2; minute 3 is not ready.
	t0s=$((T0 / 1000))
	psql "$DB" -XAtq -v ON_ERROR_STOP=1 -v nsym=2000 -v secs=210 -v t0="$t0s" -v cpsz=7 \
		-f "$BATS_TEST_DIRNAME/agg_gen.sql"
	# Not the symbols' first seconds (a symbol's first minute is judged from its first
	# second, see the test above) nor minute 3 (the watermark must reach 22:17:29).
	kp_psql "$DB" "select setseed(0.42); delete from kline_1s where open_time > to_timestamp($t0s)
			and open_time < to_timestamp($t0s + 180) and random() < 0.01;
		delete from checkpoint c where not exists (select 1 from kline_1s k where k.symbol = c.symbol
			and k.open_time between c.first_open_time and c.last_open_time);
		update checkpoint c set row_count = n.n, first_open_time = n.f, last_open_time = n.l
		from (select c2.id, c2.symbol, count(*) n, min(k.open_time) f, max(k.open_time) l from checkpoint c2
			join kline_1s k on k.symbol = c2.symbol and k.open_time between c2.first_open_time and c2.last_open_time
			group by c2.id, c2.symbol) n where n.id = c.id and n.symbol = c.symbol
			and (c.row_count, c.first_open_time, c.last_open_time) is distinct from (n.n, n.f, n.l)" >/dev/null
	lost=$(kp_psql "$DB" "select 2000 * 210 - count(*) from kline_1s")
	echo "seconds lost: $lost"
	[ "$lost" -gt 3000 ] && [ "$lost" -lt 4200 ]
	run agg --once -i 1m,5m --incomplete-grace 30s
	[ "$status" -eq 0 ]
	echo "${output:0:2000}"
	[[ $output == *"more incomplete 1m bars in this transaction"* ]]
	[[ $output != *"bad state"* ]]
	psql "$DB" -XAtq -v ON_ERROR_STOP=1 -c "\\copy (select symbol, to_char(open_time at time zone 'UTC', 'YYYY-MM-DD HH24:MI:SS+00'),
		open_time + interval '999 ms', open, high, low, close, volume, quote_volume, trades, taker_buy_volume, taker_buy_quote_volume,
		first_trade_id, last_trade_id, event_time, source from kline_1s order by 1, 2) to '$W/rows.csv' csv"
	run agg_check kline_1m 60 "$W/rows.csv" 30
	echo "$output"
	[ "$status" -eq 0 ]
	# The same minutes by a plain GROUP BY over kline_1s (minutes 0-2).
	want=$(kp_psql "$DB" "select count(*) from (select symbol, date_bin('1 min', open_time, 'epoch') from kline_1s
		where open_time < to_timestamp($t0s + 180) group by 1, 2 having count(*) < 60) x")
	echo "incomplete minutes: $want"
	[ "$want" -gt 1000 ]
	[ "$(kp_psql "$DB" "select count(*) from incomplete_bar where interval_s = 60 and resolved_at is null")" = "$want" ]
	[[ $output == "ok 6000 bars, $want incomplete" ]]
	[ "$(kp_psql "$DB" "select count(*) from kline_1m where row_count < 60")" = "$want" ]
	# 5m: the bucket 22:10 holds only minute 22:14 (the data begins there), and is
	# incomplete exactly when that minute is; 22:15 waits for minute 22:17 to end.
	run agg_check kline_5m 300 "$W/rows.csv" 30
	echo "$output"
	[ "$status" -eq 0 ]
	want5=$(kp_psql "$DB" "select count(*) from incomplete_bar where interval_s = 60 and open_time = to_timestamp($t0s)")
	[[ $output == "ok 2000 bars, $want5 incomplete" ]]
	[ "$(kp_psql "$DB" "select count(*) from aggregator_pending where interval_s = 60")" = 2000 ]
}

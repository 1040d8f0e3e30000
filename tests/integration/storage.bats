#!/usr/bin/env bats
# Storage (schema 007-012): hourly partitions of kline_1s made by the programs, rows for
# an hour with no partition, retention by dropping partitions (no dead tuples, nothing
# not yet rolled up), compact checkpoints, the lean row types and the inserter's symbol ids,
# and the in-place upgrades of databases made by earlier releases.

bats_require_minimum_version 1.5.0
load helpers
load inserter_lib

INS=$KP_BIN/kline-inserter
AGG=$KP_BIN/kline-aggregator

# Epoch ms of the start of the UTC hour H hours before now.
hour_ago() { echo $(( ($(date +%s) / 3600 - $1) * 3600 * 1000 )); }

@test "storage: the inserter makes the hourly partitions it needs, the next hour's too, and checkpoints are compact" {
	db=$(kp_db_new)
	t0=$(hour_ago 3)
	# 20 symbols x 2 h 10 min, in batches of one second each (as live)
	"$INS_GEN" --symbols 20 --seconds 7800 --start "$t0" --seed 3 >"$BATS_TEST_TMPDIR/in"
	run --separate-stderr "$INS" -i - -d "$db" --batch-rows 20 <"$BATS_TEST_TMPDIR/in"
	[ "$status" -eq 0 ]
	[ "$(ins_count "$db")" = 156000 ]
	diff <(ins_dump_rows "$db") <(ins_expect --symbols 20 --seconds 7800 --start "$t0" --seed 3)
	# three hours of data (the third partly) and the hour after now, nothing in the default
	parts=$(kp_psql "$db" "select count(*) from kline_1s_partitions")
	[ "$parts" -ge 4 ]
	[ "$(kp_psql "$db" "select count(*) from kline_1s_default")" = 0 ]
	next=$(date -u -d "@$(( ($(date +%s) / 3600 + 1) * 3600 ))" +%Y%m%d%H)
	[ "$(kp_psql "$db" "select count(*) from kline_1s_partitions where name = 'kline_1s_p$next'")" = 1 ]
	# every row is in the partition of its hour
	[ "$(kp_psql "$db" "select count(*) from kline_1s_lean k join pg_class c on c.oid = k.tableoid
		where c.relname <> 'kline_1s_p' || to_char(k.open_time at time zone 'UTC', 'YYYYMMDDHH24')")" = 0 ]
	# one compact checkpoint per batch (one Kafka partition: stdin), every row covered
	nb=$(kp_psql "$db" "select count(*) from checkpoint_batch")
	echo "compact checkpoints: $nb"
	[ "$nb" -ge 7800 ] && [ "$nb" -le 8000 ]
	[ "$(kp_psql "$db" "select count(*), sum(row_count) from checkpoint")" = "156000|156000" ]
	[ "$(kp_psql "$db" "select count(*) from kline_1s k where not exists (select 1 from checkpoint c
		where c.symbol = k.symbol and k.open_time between c.first_open_time and c.last_open_time)")" = 0 ]
	# and they cost little next to the rows
	ratio=$(kp_psql "$db" "select round(100.0 * pg_total_relation_size('checkpoint_batch')
		/ (select sum(pg_total_relation_size(name::regclass)) from kline_1s_partitions), 2)")
	echo "checkpoint / kline_1s: $ratio %"
	awk -v r="$ratio" 'BEGIN { exit !(r < 5) }'
}

@test "storage: a row for an hour with no partition lands, and the programs move it into its own" {
	db=$(kp_db_new)
	"$INS" -i /dev/null -d "$db" 2>/dev/null
	# by hand, a year ago: no partition for that hour, the default partition takes it
	kp_psql "$db" "insert into kline_1s (symbol, open_time, open, high, low, close, volume, quote_volume,
		trades, taker_buy_volume, taker_buy_quote_volume) values
		('OLD', '2025-12-01 10:00:05+00', 1, 1, 1, 1, 0, 0, 0, 0, 0)"
	[ "$(kp_psql "$db" "select count(*) from kline_1s_default")" = 1 ]
	# a backfill of that hour through the inserter: the partition is made, the waiting row moved
	"$INS_GEN" --symbols 2 --seconds 10 --start 1764583200000 >"$BATS_TEST_TMPDIR/in"
	run --separate-stderr "$INS" -i - -d "$db" <"$BATS_TEST_TMPDIR/in"
	[ "$status" -eq 0 ]
	[ "$(kp_psql "$db" "select count(*) from kline_1s_default")" = 0 ]
	[ "$(kp_psql "$db" "select count(*) from kline_1s_p2025120110")" = 21 ]
	[ "$(kp_psql "$db" "select count(*) from kline_1s where symbol = 'OLD'")" = 1 ]
	# a 1s record whose close_time is not open_time + 999 cannot be stored as it came
	head -1 "$BATS_TEST_TMPDIR/in" | jq -c '.open_time += 100000 | .close_time += 100005' >"$BATS_TEST_TMPDIR/bad"
	run --separate-stderr "$INS" -i - -d "$db" <"$BATS_TEST_TMPDIR/bad"
	[ "$status" -eq 0 ]
	[ "$(kp_psql "$db" "select count(*) from rejected where reason like 'close_time %open_time + 999 ms'")" = 1 ]
}

@test "storage: retention drops whole partitions, leaves no dead tuples and keeps what is not rolled up" {
	db=$(kp_db_new)
	t0=$(hour_ago 12)
	"$INS_GEN" --symbols 10 --seconds 10800 --start "$t0" --seed 5 >"$BATS_TEST_TMPDIR/all"
	# minute 30 of the second hour loses its seconds 10-19: an incomplete bar the aggregator
	# holds (pending) for its --incomplete-grace
	hole_lo=$((t0 + 3600000 + 30 * 60000 + 10000)) hole_hi=$((t0 + 3600000 + 30 * 60000 + 19000))
	jq -c --argjson lo "$hole_lo" --argjson hi "$hole_hi" \
		'select(.symbol != "T0000USDT" or .open_time < $lo or .open_time > $hi)' "$BATS_TEST_TMPDIR/all" >"$BATS_TEST_TMPDIR/in"
	run --separate-stderr "$INS" -i - -d "$db" --batch-rows 1000 <"$BATS_TEST_TMPDIR/in"
	[ "$status" -eq 0 ]
	n=$(ins_count "$db")
	[ "$n" = $((108000 - 10)) ]
	run --separate-stderr "$AGG" --once -d "$db" -i 1m --incomplete-grace 7d --retain 1s=1h
	echo "$stderr" | tail -5
	[ "$status" -eq 0 ]
	# hour 1 dropped as a whole; hour 2 (the held minute) and hour 3 kept, untouched
	first=$(date -u -d "@$((t0 / 1000))" +%Y%m%d%H)
	[ "$(kp_psql "$db" "select count(*) from kline_1s_partitions where name = 'kline_1s_p$first'")" = 0 ]
	[ "$(kp_psql "$db" "select count(*) from kline_1s where open_time < to_timestamp($t0 / 1000.0 + 3600)")" = 0 ]
	[ "$(ins_count "$db")" = $((72000 - 10)) ]
	[ "$(kp_psql "$db" "select coalesce(sum(n_dead_tup), 0) from pg_stat_user_tables where relname like 'kline_1s%'")" = 0 ]
	[ "$(kp_psql "$db" "select count(*) from aggregator_pending where held")" = 1 ]
	# the consumed checkpoints went too (all end before the 1s horizon); the rows of the
	# hours kept stay covered by the pending bucket, not by checkpoints
	[ "$(kp_psql "$db" "select count(*) from checkpoint")" = 0 ]
	# the missing seconds arrive: the bar completes, and the rest may go
	jq -c --argjson lo "$hole_lo" --argjson hi "$hole_hi" \
		'select(.symbol == "T0000USDT" and .open_time >= $lo and .open_time <= $hi)' "$BATS_TEST_TMPDIR/all" |
		"$INS" -i - -d "$db" 2>/dev/null
	run --separate-stderr "$AGG" --once -d "$db" -i 1m --incomplete-grace 7d --retain 1s=1h
	[ "$status" -eq 0 ]
	[ "$(kp_psql "$db" "select count(*) from aggregator_pending")" = 0 ]
	[ "$(kp_psql "$db" "select count(*) from kline_1m")" = 1800 ]
	[ "$(kp_psql "$db" "select count(*) from kline_1s where open_time < to_timestamp($t0 / 1000.0 + 3 * 3600)")" = 0 ]
}

@test "storage: retention deletes old rows of kline_1s_default one by one, each symbol up to what it still needs" {
	db=$(kp_db_new)
	"$INS" -i /dev/null -d "$db" 2>/dev/null
	# a table in the way of the hour's partition: the inserter's rows land in the default
	kp_psql "$db" "create table kline_1s_p2025120110 (x int)" >/dev/null
	# 3 symbols x 3 minutes a year ago; T0002USDT misses seconds 10-19 of the second minute
	lo=$((1764583200000 + 60000 + 10000)) hi=$((1764583200000 + 60000 + 19000))
	"$INS_GEN" --symbols 3 --seconds 180 --start 1764583200000 |
		jq -c --argjson lo "$lo" --argjson hi "$hi" \
			'select(.symbol != "T0002USDT" or .open_time < $lo or .open_time > $hi)' >"$BATS_TEST_TMPDIR/in"
	run --separate-stderr "$INS" -i - -d "$db" <"$BATS_TEST_TMPDIR/in"
	[ "$status" -eq 0 ]
	[ "$(kp_psql "$db" "select count(*) from kline_1s_default")" = 530 ]
	run --separate-stderr "$AGG" --once -d "$db" -i 1m --incomplete-grace 7d --retain 1s=1h
	echo "$stderr" | tail -5
	[ "$status" -eq 0 ]
	# rolled up and gone, by symbol id; T0002USDT keeps its held minute and what follows it
	[ "$(kp_psql "$db" "select count(*) from kline_1m")" = 8 ]
	[ "$(kp_psql "$db" "select count(*) from aggregator_pending where held")" = 1 ]
	[ "$(kp_psql "$db" "select y.symbol, count(*), min(d.open_time) = '2025-12-01 10:01:00+00'
		from kline_1s_default d join kline_symbol y on y.id = d.symbol_id group by 1")" = "T0002USDT|110|t" ]
	[ "$(kp_psql "$db" "select count(*) from kline_1s")" = 110 ]
}

@test "storage: retention detaches a partition before dropping it; one left detached by a stopped run goes next time" {
	db=$(kp_db_new)
	t0=$(hour_ago 6)
	"$INS_GEN" --symbols 4 --seconds 10800 --start "$t0" --seed 8 | "$INS" -i - -d "$db" --batch-rows 400 2>/dev/null
	[ "$(ins_count "$db")" = 43200 ]
	run --separate-stderr "$AGG" --once -d "$db" -i 1m
	[ "$status" -eq 0 ]
	# the state a run leaves when it stops between DETACH and DROP: hour 1 detached, still
	# on disk; and a table an operator detached by hand, for an hour that is not expired
	first=$(date -u -d "@$((t0 / 1000))" +%Y%m%d%H)
	next=$(date -u -d "@$(( ($(date +%s) / 3600 + 1) * 3600 ))" +%Y%m%d%H)
	kp_psql "$db" "alter table kline_1s_lean detach partition kline_1s_p$first;
		alter table kline_1s_lean detach partition kline_1s_p$next" >/dev/null
	[ "$(ins_count "$db")" = 28800 ]
	run --separate-stderr "$AGG" --once -d "$db" -i 1m --retain 1s=1h
	echo "$stderr" | grep retention
	[ "$status" -eq 0 ]
	[[ $stderr == *"dropping kline_1s_p$first, detached by an earlier run"* ]]
	[[ $stderr == *"2 partitions detached in "*" ms (rows gone), 3 dropped in "*" ms (files released)"* ]]
	[ "$(kp_psql "$db" "select count(*) from pg_class where relname = 'kline_1s_p$first'")" = 0 ]
	[ "$(ins_count "$db")" = 0 ]
	[ "$(kp_psql "$db" "select count(*) from kline_1m")" = 720 ]
	# the operator's table is not retention's to drop
	[ "$(kp_psql "$db" "select relispartition from pg_class where relname = 'kline_1s_p$next'")" = f ]
}

@test "storage: compaction is decided by the aggregator's clock (KP_TEST_CLOCK), once per partition" {
	db=$(kp_db_new)
	# 2 h of 10 symbols two days ahead of the wall clock, as an accelerated sim makes them;
	# the inserter on the same simulated clock, so its next-hour partition is the data's
	# second hour, not the real next hour (which a clock two days ahead would compact too)
	t0=$(( ($(date +%s) / 3600 + 48) * 3600 * 1000 ))
	"$INS_GEN" --symbols 10 --seconds 7200 --start "$t0" --seed 9 >"$BATS_TEST_TMPDIR/in"
	KP_TEST_CLOCK="$t0@now:0" run --separate-stderr "$INS" -i - -d "$db" --batch-rows 1000 <"$BATS_TEST_TMPDIR/in"
	[ "$status" -eq 0 ]
	[[ $stderr == *"KP_TEST_CLOCK=$t0@now:0: the clock is simulated"* ]]
	[ "$(kp_psql "$db" "select count(*) from kline_1s_partitions")" = 2 ]
	p0=kline_1s_p$(date -u -d "@$((t0 / 1000))" +%Y%m%d%H)
	p1=kline_1s_p$(date -u -d "@$((t0 / 1000 + 3600))" +%Y%m%d%H)
	compacted() { kp_psql "$db" "select coalesce(string_agg(name, ',' order by name), '-') from kline_1s_compacted"; }
	agg_at() { KP_TEST_CLOCK="$1@now:0" run --separate-stderr "$AGG" --once -d "$db" --compact-after 10m; }
	# the real clock: both hours are in the future, nothing is compacted
	run --separate-stderr "$AGG" --once -d "$db" --compact-after 10m
	[ "$status" -eq 0 ]
	[ "$(compacted)" = - ]
	# 9 minutes after the first hour's end: not yet; 10 minutes after: that hour, once
	agg_at $((t0 + 3600000 + 540000))
	[ "$status" -eq 0 ]
	[ "$(compacted)" = - ]
	# each hour once: a second run with the same clock leaves it as the first did (the
	# same time, the same index file)
	state() { kp_psql "$db" "select string_agg(concat(k.name, ' ', k.compacted_at, ' ', c.relfilenode), ','
		order by k.name) from kline_1s_compacted k join pg_class c on c.relname = k.name || '_pkey'"; }
	agg_at $((t0 + 3600000 + 600000))
	[ "$status" -eq 0 ]
	[ "$(compacted)" = "$p0" ]
	one=$(state)
	agg_at $((t0 + 3600000 + 600000))
	[ "$status" -eq 0 ]
	[ "$(state)" = "$one" ]
	# a bad clock is refused before anything is done
	KP_TEST_CLOCK="tomorrow" run --separate-stderr "$AGG" --once -d "$db" --compact-after 10m
	[ "$status" -eq 2 ]
	[[ $stderr == *"KP_TEST_CLOCK: 'tomorrow': expected SIM_MS[@REAL_MS]:SPEED"* ]]
	# the second hour when its time comes, once, and the first not again
	agg_at $((t0 + 7200000 + 600000))
	[ "$status" -eq 0 ]
	[ "$(compacted)" = "$p0,$p1" ]
	two=$(state)
	[[ $two == "$one,"* ]]
	agg_at $((t0 + 7200000 + 600000))
	[ "$(state)" = "$two" ]
	[ "$(ins_count "$db")" = 72000 ]
	diff <(ins_dump_rows "$db") <(ins_expect --symbols 10 --seconds 7200 --start "$t0" --seed 9)
}

# old_schema DB LAST: the schema of an earlier release (migrations 001 to LAST), applied
# as it applied them.
old_schema() {
	local f n
	for f in "$KP_ROOT"/schema/[0-9][0-9][0-9]_*.sql; do
		n=$(basename "$f")
		((10#${n:0:3} <= 10#$2)) || break
		{ echo "begin;"; cat "$f"; echo "insert into schema_migrations (version) values ('$(basename "$f" .sql)'); commit;"; } |
			psql "$1" -XAtq -v ON_ERROR_STOP=1 >/dev/null
	done
}

# The digest of every kline_1s row as readers see it.
digest() {
	kp_psql "$1" "select count(*), md5(string_agg(concat_ws(',', symbol, open_time, open, high, low,
		close, volume, quote_volume, trades, taker_buy_volume, taker_buy_quote_volume, first_trade_id,
		last_trade_id, closed, event_time, source), '|' order by symbol, open_time)) from kline_1s"
}

# rolls_up_all DB BARS: one aggregator run rolls every minute up, old rows and new, with
# no bad checkpoint: BARS 1m bars, each of 60 seconds.
rolls_up_all() {
	run --separate-stderr "$AGG" --once -d "$1" -i 1m
	[ "$status" -eq 0 ]
	[[ $stderr != *"bad state"* ]]
	[ "$(kp_psql "$1" "select count(*) from kline_1m")" = "$2" ]
	[ "$(kp_psql "$1" "select count(*) from kline_1m where row_count <> 60")" = 0 ]
}

@test "storage: the inserter's table of symbol ids empties itself when full, and a failed registration leaves no wrong id" {
	db=$(kp_db_new)
	"$INS" -i /dev/null -d "$db" 2>/dev/null
	# the registration of one symbol fails once (a sequence is not rolled back with it)
	kp_psql "$db" "create sequence fail_once;
		create function fail_once() returns trigger language plpgsql as \$\$ begin
			if new.symbol = 'T0017USDT' and nextval('fail_once') = 1 then
				raise exception 'registration refused on purpose'; end if;
			return new; end \$\$;
		create trigger fail_once before insert on kline_symbol for each row execute function fail_once()" >/dev/null
	# 30 symbols through a table of 8 ids (KP_TEST_SYMBOL_IDS), 5 records a batch
	"$INS_GEN" --symbols 30 --seconds 20 --seed 4 >"$BATS_TEST_TMPDIR/in"
	KP_TEST_SYMBOL_IDS=8 run --separate-stderr timeout 120 "$INS" -i - -d "$db" --batch-rows 5 <"$BATS_TEST_TMPDIR/in"
	[ "$status" -eq 0 ]
	[[ $stderr == *"registration refused on purpose"* ]]
	clears=$(grep -c "symbol ids: all 8 slots taken, forgetting them" <<<"$stderr")
	echo "table emptied $clears times"
	[ "$clears" -ge 20 ]
	# every row under its own symbol: an id kept from a failed registration or a stale
	# table would put rows under another symbol or reject them
	[ "$(ins_count "$db")" = 600 ]
	diff <(ins_dump_rows "$db") <(ins_expect --symbols 30 --seconds 20 --seed 4)
	[ "$(kp_psql "$db" "select count(*), count(distinct id) from kline_symbol")" = "30|30" ]
	[ "$(kp_psql "$db" "select count(*) from rejected")" = 0 ]
}

@test "storage: a database of the previous release is upgraded in place, no row lost or doubled" {
	db=$(kp_db_new)
	kp_psql "$db" "create table schema_migrations (version text primary key, applied_at timestamptz not null default now())"
	old_schema "$db" 006
	[ "$(kp_psql "$db" "select relkind from pg_class where relname = 'kline_1s'")" = r ]
	# 2 h of 30 symbols written the old way: rows with close_time and ingested_at, one
	# checkpoint per symbol per minute, the first hour already consumed by the aggregator
	t0=$(hour_ago 30)
	kp_psql "$db" "insert into kline_1s (symbol, open_time, close_time, open, high, low, close, volume,
		quote_volume, trades, taker_buy_volume, taker_buy_quote_volume, first_trade_id, last_trade_id)
		select 'U' || s, to_timestamp($t0 / 1000 + e), to_timestamp($t0 / 1000 + e) + interval '999 ms',
		       100 + e % 7, 101 + e % 7, 99, 100.5, 1.25, 125.5, 3, 0.5, 50.25, e * 10, e * 10 + 2
		from generate_series(1, 30) s, generate_series(0, 7199) e;
		insert into checkpoint (symbol, first_open_time, last_open_time, row_count)
		select 'U' || s, to_timestamp($t0 / 1000 + m * 60), to_timestamp($t0 / 1000 + m * 60 + 59), 60
		from generate_series(0, 119) m, generate_series(1, 30) s order by m, s"
	before=$(digest "$db")
	cps=$(kp_psql "$db" "select count(*), sum(row_count), max(id) from checkpoint")
	# the new release's first start migrates
	run --separate-stderr "$INS" -i /dev/null -d "$db"
	[ "$status" -eq 0 ]
	echo "$stderr" | grep 'applied schema migration'
	[ "$(kp_psql "$db" "select relkind from pg_class where relname = 'kline_1s'")" = v ]
	[ "$(kp_psql "$db" "select count(*) from pg_inherits where inhrelid = 'kline_1s_legacy'::regclass
		and inhparent = 'kline_1s_wide'::regclass")" = 1 ]
	[ "$(digest "$db")" = "$before" ]
	[ "$(kp_psql "$db" "select count(*), sum(row_count), max(id) from checkpoint")" = "$cps" ]
	# new rows after the old ones, through the new inserter; the aggregator then rolls up
	# all of it, the legacy checkpoints and the compact ones alike
	"$INS_GEN" --symbols 3 --seconds 120 --start $((t0 + 7200000)) >"$BATS_TEST_TMPDIR/new"
	run --separate-stderr "$INS" -i - -d "$db" <"$BATS_TEST_TMPDIR/new"
	[ "$status" -eq 0 ]
	[ "$(ins_count "$db")" = $((216000 + 360)) ]
	rolls_up_all "$db" $((30 * 120 + 3 * 2))
	# and retention still works on the legacy rows (row by row there) and its checkpoints
	run --separate-stderr "$AGG" --once -d "$db" --retain 1s=1h
	[ "$status" -eq 0 ]
	[ "$(ins_count "$db")" = 0 ]
	[ "$(kp_psql "$db" "select count(*) from checkpoint")" = 0 ]
}

@test "storage: a database of release 011 (wide types) is upgraded to the lean types in place" {
	db=$(kp_db_new)
	kp_psql "$db" "create table schema_migrations (version text primary key, applied_at timestamptz not null default now())"
	old_schema "$db" 011
	[ "$(kp_psql "$db" "select count(*) from schema_migrations")" = 11 ]
	# 3 h of 10 symbols as release 011 stored them (hourly partitions of the wide table),
	# the next hour's partition made ahead and empty, one stray row in the default; all of
	# it on one UTC day three days ago, which --archive writes out whole at the end
	t0=$(( ($(date +%s) / 86400 - 3) * 86400 * 1000 + 5 * 3600 * 1000 ))
	kp_psql "$db" "select kline_1s_ensure(array(select generate_series($t0 / 1000, $t0 / 1000 + 4 * 3600, 3600)::bigint));
		insert into kline_1s (symbol, open_time, open, high, low, close, volume, quote_volume, trades,
		  taker_buy_volume, taker_buy_quote_volume, first_trade_id, last_trade_id, event_time, source)
		select 'W' || s, to_timestamp($t0 / 1000 + e), 100 + e % 7, 101 + e % 7, 99, 100.5, 1.25, 125.5, 3,
		       0.5, 50.25, e * 10, e * 10 + 2, to_timestamp($t0 / 1000 + e + 1.5), 'ws'
		from generate_series(1, 10) s, generate_series(0, 10799) e;
		insert into checkpoint (symbol, first_open_time, last_open_time, row_count)
		select 'W' || s, to_timestamp($t0 / 1000 + m * 60), to_timestamp($t0 / 1000 + m * 60 + 59), 60
		from generate_series(0, 179) m, generate_series(1, 10) s order by m, s" >/dev/null
	before=$(digest "$db")
	run --separate-stderr "$INS" -i /dev/null -d "$db"
	[ "$status" -eq 0 ]
	[[ $stderr == *"applied schema migration 012_lean_types"* ]]
	# no row copied: the old table is kline_1s_wide, its empty hour ahead gone, cut-off at
	# the end of its newest hour; the view gives the same rows
	[ "$(kp_psql "$db" "select relkind from pg_class where relname = 'kline_1s'")" = v ]
	[ "$(kp_psql "$db" "select count(*) from kline_1s_partitions where parent = 'kline_1s_wide'")" = 3 ]
	[ "$(kp_psql "$db" "select extract(epoch from cut)::bigint from kline_1s_wide_bound")" = $((t0 / 1000 + 3 * 3600)) ]
	[ "$(digest "$db")" = "$before" ]
	# new seconds go to the lean table; a late correction of an old second to the wide one,
	# updated in place (not doubled); a redelivered old second changes nothing
	"$INS_GEN" --symbols 3 --seconds 120 --start $((t0 + 3 * 3600 * 1000)) >"$BATS_TEST_TMPDIR/new"
	old=$(kp_psql "$db" "select json_build_object('symbol', symbol, 'interval', '1s',
		'open_time', (extract(epoch from open_time) * 1000)::bigint, 'close_time', (extract(epoch from open_time) * 1000)::bigint + 999,
		'open', open::text, 'high', '200', 'low', low::text, 'close', close::text, 'volume', volume::text,
		'quote_volume', quote_volume::text, 'trades', trades, 'taker_buy_volume', taker_buy_volume::text,
		'taker_buy_quote_volume', taker_buy_quote_volume::text, 'first_trade_id', first_trade_id,
		'last_trade_id', last_trade_id, 'closed', true, 'source', 'ws')
		from kline_1s where symbol = 'W1' order by open_time limit 1")
	{ echo "$old"; cat "$BATS_TEST_TMPDIR/new"; echo "$old"; } >"$BATS_TEST_TMPDIR/mixed"
	run --separate-stderr "$INS" -i - -d "$db" --batch-rows 100 <"$BATS_TEST_TMPDIR/mixed"
	[ "$status" -eq 0 ]
	[ "$(ins_count "$db")" = $((108000 + 360)) ]
	[ "$(kp_psql "$db" "select count(*) from kline_1s_lean")" = 360 ]
	[ "$(kp_psql "$db" "select count(*) from kline_1s_wide")" = 108000 ]
	[ "$(kp_psql "$db" "select high from kline_1s where symbol = 'W1' order by open_time limit 1")" = 200 ]
	# the aggregator rolls up old and new alike, retention drops both kinds of hours and
	# --archive writes out both first (the files' columns: archive.bats)
	rolls_up_all "$db" $((10 * 180 + 3 * 2))
	psql "$db" -XAtq -F, -v ON_ERROR_STOP=1 -c "select symbol, (extract(epoch from open_time)*1000)::bigint,
		open, high, low, close, volume, (extract(epoch from open_time)*1000)::bigint + 999, quote_volume,
		trades, taker_buy_volume, taker_buy_quote_volume, 0 from kline_1s" | LC_ALL=C sort >"$BATS_TEST_TMPDIR/rows"
	run --separate-stderr "$AGG" --once -d "$db" --retain 1s=1m --archive "$BATS_TEST_TMPDIR/arch"
	[ "$status" -eq 0 ]
	[ "$(ins_count "$db")" = 0 ]
	[ "$(kp_psql "$db" "select count(*) from kline_1s_partitions where parent = 'kline_1s_wide'")" = 0 ]
	for f in "$BATS_TEST_TMPDIR"/arch/*/*-1s-*.csv.gz; do
		zcat "$f" | sed "s/^/$(basename "$(dirname "$f")"),/"
	done | LC_ALL=C sort >"$BATS_TEST_TMPDIR/files"
	[ "$(wc -l <"$BATS_TEST_TMPDIR/files")" = $((108000 + 360)) ]
	cmp "$BATS_TEST_TMPDIR/rows" "$BATS_TEST_TMPDIR/files"
}

@test "storage: the lean row gives back every field exactly, and a record it could not is rejected" {
	db=$(kp_db_new)
	t0=$(hour_ago 1)
	"$INS_GEN" --symbols 5 --seconds 60 --start "$t0" --provisional >"$BATS_TEST_TMPDIR/in"
	run --separate-stderr "$INS" -i - -d "$db" <"$BATS_TEST_TMPDIR/in"
	[ "$status" -eq 0 ]
	diff <(ins_dump_rows "$db") <(ins_expect --symbols 5 --seconds 60 --start "$t0")
	# and what ins_dump_rows leaves out: the event time (an offset in the row) and the source
	diff <(kp_psql "$db" "select symbol, (extract(epoch from open_time) * 1000)::bigint,
		(extract(epoch from event_time) * 1000)::bigint, source from kline_1s" | LC_ALL=C sort) \
		<(jq -r 'select(.closed) | "\(.symbol)|\(.open_time)|\(.event_time)|\(.source)"' "$BATS_TEST_TMPDIR/in" | LC_ALL=C sort)
	# decimals at the edges of what a record may carry (COPY binary: base-10,000 digits and
	# the scale as written) read back as numeric_in reads their text
	one=$(head -1 "$BATS_TEST_TMPDIR/in")
	decs=(0 0.00000000 1.5 0001.50 9999.9999 10000 10000.0001 0.000000000000000001
		12345678901234567890.123456789012345678 99999999999999999999.999999999999999999 7.1234567)
	for i in "${!decs[@]}"; do
		jq -c --arg d "${decs[$i]}" --argjson t $((t0 + 7200000 + i * 1000)) \
			'.open_time = $t | .close_time = $t + 999 | .event_time = $t + 1000 | .closed = true
			| .open = $d | .high = $d | .low = $d | .close = $d | .volume = $d | .quote_volume = $d
			| .taker_buy_volume = $d | .taker_buy_quote_volume = $d' <<<"$one"
	done >"$BATS_TEST_TMPDIR/edges"
	run --separate-stderr "$INS" -i - -d "$db" <"$BATS_TEST_TMPDIR/edges"
	[ "$status" -eq 0 ]
	[ "$(kp_psql "$db" "select count(*) from rejected")" = 0 ]
	diff <(kp_psql "$db" "select open::text || ' ' || close::text || ' ' || quote_volume::text || ' '
		|| taker_buy_quote_volume::text from kline_1s where open_time >= to_timestamp($((t0 + 7200000)) / 1000.0)
		order by open_time") \
		<(for d in "${decs[@]}"; do kp_psql "$db" "select repeat('$d'::numeric::text || ' ', 3) || '$d'::numeric::text"; done)
	kp_psql "$db" "delete from kline_1s where open_time >= to_timestamp($((t0 + 7200000)) / 1000.0)" >/dev/null
	# last_trade_id that is not first + trades - 1, and an event time 30 days late: rejected
	{ jq -c '.open_time += 3600000 | .close_time += 3600000 | .last_trade_id += 1 | .closed = true' <<<"$one"
	  jq -c '.open_time += 3601000 | .close_time += 3601000 | .event_time += 2592000000 | .closed = true' <<<"$one"; } >"$BATS_TEST_TMPDIR/bad"
	run --separate-stderr "$INS" -i - -d "$db" <"$BATS_TEST_TMPDIR/bad"
	[ "$status" -eq 0 ]
	[ "$(ins_count "$db")" = 300 ]
	[ "$(kp_psql "$db" "select count(*) from rejected where reason like 'last_trade_id %: not first_trade_id + trades - 1%'")" = 1 ]
	[ "$(kp_psql "$db" "select count(*) from rejected where reason like 'event_time %: more than 24 days from open_time'")" = 1 ]
	# the same through the view, for a psql writer
	run kp_psql "$db" "insert into kline_1s (symbol, open_time, open, high, low, close, volume, quote_volume,
		trades, taker_buy_volume, taker_buy_quote_volume, first_trade_id, last_trade_id)
		values ('X', now(), 1, 1, 1, 1, 1, 1, 3, 1, 1, 10, 99)"
	[ "$status" -ne 0 ]
	[[ $output == *"last_trade_id 99 is not first_trade_id + trades - 1"* ]]
}

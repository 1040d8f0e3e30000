#!/usr/bin/env bash
# bench_storage_scale.sh — do the costs stay flat as kline_1s grows? (make bench BENCH=storage_scale)
#
# For each size (hours of 2,000 symbols of history: 1 h = 7.2 M rows, 7 h = 50.4 M,
# 24 h = 172.8 M, about the issue's 10 M / 50 M / 170 M), a fresh database is filled by
# SQL: hourly partitions, kline_1m for a whole day, compact checkpoints already consumed.
# Then, with the real programs, it measures:
#   - the inserter: one minute of 2,000 symbols, one batch per second (rows/s);
#   - the aggregator: rolling up that new minute x 2,000 symbols (--once, ms);
#   - GET /api/klines on kline-streamer: a 1-day 1m range and a 1-hour 1s range, p50/p99
#     over BENCH_SCALE_REQUESTS requests (default 200), each for another symbol;
#   - retention: dropping the oldest hour (ms), and at the largest size the whole day.
# The first size is the baseline; the table gives every figure as a ratio to it.
#
# BENCH_SCALE_HOURS (default "1 7 24") sets the sizes. Disk: ~30 GB at 24 h, freed at the
# end of each size. Needs DATABASE_URL.
set -euo pipefail
shopt -s inherit_errexit
root=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
BIN=${KP_BIN:-$root/bin}
HOURS=${BENCH_SCALE_HOURS:-1 7 24}
REQ=${BENCH_SCALE_REQUESTS:-200}
WARM=${BENCH_SCALE_WARMUP:-20}
S=2000
START=1780002000 # 2026-05-28 21:00 UTC, a whole hour in the past: history ends here
[[ -n ${DATABASE_URL:-} && $DATABASE_URL == postgres*://*/* ]] ||
	{ echo "bench_storage_scale: DATABASE_URL must be a postgresql:// URI" >&2; exit 2; }
work=$(mktemp -d "${TMPDIR:-/tmp}/bench_scale.XXXXXX")
db= st_pid=
cleanup() {
	[[ -n $st_pid ]] && { kill "$st_pid" 2>/dev/null; wait "$st_pid" 2>/dev/null; }
	[[ -n $db ]] && psql "$DATABASE_URL" -XAtqc "drop database if exists $db" >/dev/null 2>&1
	rm -rf "$work"
}
trap cleanup EXIT
log() { echo "bench_storage_scale: $*" >&2; }
now_ms() { date +%s%3N; }

# History for hours [START - H h, START): the gen_klines.py symbol names, agg_gen.sql's
# price pattern; the partitions first, hour by hour (each INSERT one hour: bounded WAL).
fill() { # DB HOURS
	local d=$1 h=$2 t
	psql "$d" -XAtq -v ON_ERROR_STOP=1 -c "select kline_1s_ensure(array(select generate_series($START - $h * 3600, $START - 1, 3600)::bigint))" >/dev/null
	psql "$d" -XAtq -v ON_ERROR_STOP=1 -c "select count(*) from kp_symbol_ids(array(select 'T' || lpad((s - 1)::text, 4, '0') || 'USDT' from generate_series(1, $S) s))" >/dev/null
	# straight into kline_1s_lean (schema/012), as the inserter writes: the view's trigger
	# would take a row at a time
	for ((t = START - h * 3600; t < START; t += 3600)); do
		psql "$d" -XAtq -v ON_ERROR_STOP=1 -c "insert into kline_1s_lean (symbol_id, open_time, open, high, low, close, volume,
			quote_volume, trades, taker_buy_volume, taker_buy_quote_volume, first_trade_id, flags, event_ms)
			select y.id, to_timestamp(e), p, p + 0.5, p - 0.5, p + 0.125,
			       1.25 + s % 10, 125.5 + e % 1000, e % 13 + 1, 0.5, 50.25, e * 20, 1, 1000
			from generate_series($t::bigint, $t + 3599) e, generate_series(1, $S) s
			     join kline_symbol y on y.symbol = 'T' || lpad((s - 1)::text, 4, '0') || 'USDT',
			     lateral (select 100 + (e % 1000) / 100.0 + s AS p) v" >/dev/null
	done
	# a whole day of 1m bars (constant across sizes: the 1m query reads the same amount)
	psql "$d" -XAtq -v ON_ERROR_STOP=1 -c "insert into kline_1m (symbol, open_time, close_time, open, high, low,
		close, volume, quote_volume, trades, taker_buy_volume, taker_buy_quote_volume, first_trade_id,
		last_trade_id, closed, event_time, source, ingested_at, row_count)
		select 'T' || lpad((s - 1)::text, 4, '0') || 'USDT', to_timestamp(m), to_timestamp(m + 59.999), 100, 101, 99,
		       100.5, 75, 7530, 420, 30, 3015, m * 20, m * 20 + 419, true, to_timestamp(m + 60), 'agg', now(), 60
		from generate_series($START::bigint - 86400, $START - 60, 60) m, generate_series(1, $S) s;
		insert into checkpoint_batch (first_open_time, last_open_time, row_count, symbols)
		select to_timestamp(e), to_timestamp(e), 1, (select kp_symbol_bits(array_agg(id)) from kline_symbol)
		from generate_series($START - $h * 3600, $START - 1) e order by e;
		insert into aggregator_progress (name, last_checkpoint_id) select 'default', max(id) from checkpoint_batch;
		insert into aggregator_watermark (name, symbol, watermark, first_open_time)
		select 'default', symbol, to_timestamp($START - 1), '-infinity' from kline_symbol" >/dev/null
	psql "$d" -XAtq -c "vacuum analyze" >/dev/null
}

# p50 and p99 (ms) of curl's time_total for REQ requests of URL_PREFIX&symbol=...
api_get() { # PORT INTERVAL FROM_MS TO_MS SYMBOL_NO [CURL_ARGS...]
	local port=$1 iv=$2 from=$3 to=$4 sym; sym=T$(printf %04d "$5")USDT
	shift 5
	curl -fsS -o /dev/null "$@" "http://127.0.0.1:$port/api/klines?symbol=$sym&interval=$iv&from=$from&to=$to&limit=5000"
}
api_p() { # PORT INTERVAL FROM_MS TO_MS
	local i
	# Warm-up, not counted: the streamer's connections and PostgreSQL's plans and caches.
	for ((i = 0; i < WARM; i++)); do api_get "$@" $((i * 13 % S)); done
	for ((i = 0; i < REQ; i++)); do api_get "$@" $((i * 7 % S)) -w '%{time_total}\n'; done | sort -n | awk '{ v[NR] = $1 * 1000 } END { printf "%.1f %.1f", v[int(NR * 0.5)], v[int(NR * 0.99)] }'
}

# From the aggregator's retention line: ms the partitions took to detach (the rows are
# gone, a catalogue change under a lock on kline_1s) and to drop (their files released).
detach_ms() { sed -n 's/.* detached in \([0-9]*\) ms (rows gone).*/\1/p' "$1" | tail -1; }
release_ms() { sed -n 's/.* dropped in \([0-9]*\) ms (files released).*/\1/p' "$1" | tail -1; }

measure() { # HOURS → one line: rows ins_rps agg_ms m1_p50 m1_p99 s1_p50 s1_p99 drop_ms
	local h=$1 d t0 t1 port rows
	db=kp_scale_$$_$h
	psql "$DATABASE_URL" -XAtqc "create database $db" >/dev/null
	d=${DATABASE_URL%/*}/$db
	"$BIN/kline-inserter" -i /dev/null -d "$d" 2>/dev/null
	log "$h h: filling $((h * 3600 * S)) rows"
	t0=$(now_ms); fill "$d" "$h"; log "$h h: filled in $(( ($(now_ms) - t0) / 1000 )) s"
	rows=$(psql "$d" -XAtqc "select count(*) from kline_1s")
	t0=$(now_ms)
	"$BIN/kline-inserter" -i "$work/minute.ndjson" -d "$d" --batch-rows $S --flush-ms 3600000 --stats-interval 0 2>"$work/ins.log"
	t1=$(now_ms); local ins_rps=$((60 * S * 1000 / (t1 - t0)))
	t0=$(now_ms)
	"$BIN/kline-aggregator" --once -d "$d" -i 1m --compact-after 0 2>"$work/agg.log"
	local agg_ms=$(($(now_ms) - t0))
	[[ $(psql "$d" -XAtqc "select count(*) from kline_1m where open_time >= to_timestamp($START)") == "$S" ]] ||
		{ log "the new minute was not rolled up"; cat "$work/agg.log" >&2; exit 1; }
	# Under a running inserter the newest hour and the day of 1m bars are in the page cache;
	# after the fill they may not be: at 24 h the table is larger than this machine's RAM,
	# and the fill's VACUUM read all of it last. Read them back into the OS cache.
	local newest; newest=kline_1s_p$(date -u -d "@$((START - 3600))" +%Y%m%d%H)
	psql "$d" -XAtq -v ON_ERROR_STOP=1 -c "create extension if not exists pg_prewarm" \
		-c "select sum(pg_prewarm(oid, 'read')) from pg_class where relkind in ('r', 'i')
		    and (relname like '${newest}%' or relname like 'kline_1m%')" >/dev/null
	port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
	"$BIN/kline-streamer" -i /dev/null -d "$d" --listen "127.0.0.1:$port" --stats-interval 0 --log-level warn 2>"$work/st.log" &
	st_pid=$!
	for _ in $(seq 100); do curl -fsS -o /dev/null "http://127.0.0.1:$port/metrics" 2>/dev/null && break; sleep 0.1; done
	local m1 s1
	m1=$(api_p "$port" 1m $(((START - 86400) * 1000)) $((START * 1000 - 1)))
	s1=$(api_p "$port" 1s $(((START - 3600) * 1000)) $((START * 1000 - 1)))
	kill "$st_pid"; wait "$st_pid" 2>/dev/null || true; st_pid=
	# retention of the oldest hour: the cut-off one hour after the history began
	local keep=$(( $(date +%s) - (START - h * 3600 + 3600) ))
	local before; before=$(psql "$d" -XAtqc "select count(*) from kline_1s_partitions")
	t0=$(now_ms)
	"$BIN/kline-aggregator" --once -d "$d" --retain "1s=${keep}s" --compact-after 0 2>"$work/ret.log"
	local drop_ms=$(($(now_ms) - t0))
	local left; left=$(psql "$d" -XAtqc "select count(*) from kline_1s_partitions")
	[[ $left -eq $((before - 1)) ]] || { log "retention did not drop exactly the oldest hour"; cat "$work/ret.log" >&2; exit 1; }
	local day=-
	if [[ $h -ge 24 ]]; then
		t0=$(now_ms)
		"$BIN/kline-aggregator" --once -d "$d" --retain 1s=60s 2>"$work/ret2.log"
		day="$(detach_ms "$work/ret2.log")/$(release_ms "$work/ret2.log")/$(($(now_ms) - t0))"
	fi
	echo "$rows $ins_rps $agg_ms $m1 $s1 $drop_ms $day"
	psql "$DATABASE_URL" -XAtqc "drop database $db" >/dev/null; db=
}

python3 "$root/tests/integration/gen_klines.py" --symbols $S --seconds 60 --start $((START * 1000)) >"$work/minute.ndjson"
declare -a res
for h in $HOURS; do res+=("$h $(measure "$h")"); done
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b == "-" || a == "-" || b == 0) print "-"; else printf "%.2f", a / b }'; }
{
	echo "kline_1s filled to each size (2,000 symbols), then the real programs; ratio = to the first size."
	echo
	echo "Each /api figure follows $WARM warm-up requests. Retention: the aggregator run's wall time"
	echo "for the oldest hour; for a day, rows gone (DETACH of every partition, the only part that"
	echo "locks kline_1s) / files released (DROP of the detached tables: the file system's work) /"
	echo "the whole --once run."
	echo
	echo "| history | rows | inserter rows/s | aggregator, 1 new minute (ms) | /api 1m × 1 day p50 / p99 (ms) | /api 1s × 1 h p50 / p99 (ms) | drop oldest hour (ms) | drop a day: rows gone / files released / run (ms) |"
	echo "|---|---|---|---|---|---|---|---|"
	read -r _ b_rows b_ins b_agg b_m50 b_m99 b_s50 b_s99 b_drop _ <<<"${res[0]}"
	for r in "${res[@]}"; do
		read -r h rows ins agg m50 m99 s50 s99 drop day <<<"$r"
		echo "| $h h | $rows | $ins ($(ratio "$ins" "$b_ins")) | $agg ($(ratio "$agg" "$b_agg")) | $m50 / $m99 ($(ratio "$m99" "$b_m99")) | $s50 / $s99 ($(ratio "$s99" "$b_s99")) | $drop ($(ratio "$drop" "$b_drop")) | $day |"
	done
	echo
	echo "load average at the end: $(cut -d' ' -f1-3 /proc/loadavg)"
	pgdata=$(psql "$DATABASE_URL" -XAtqc "show data_directory" 2>/dev/null || true)
	[[ -n $pgdata ]] && echo "database file system: $(findmnt -no FSTYPE,OPTIONS -T "$pgdata" 2>/dev/null)"
} | tee -a "${KP_BENCH_OUT:-/dev/null}"

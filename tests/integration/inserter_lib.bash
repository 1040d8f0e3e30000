# shellcheck shell=bash
# Shared by tests/integration/inserter*.bats (load after helpers).

INS_GEN=$KP_ROOT/tests/integration/gen_klines.py

# kline_1s as "symbol|open_ms|close_ms|open|...|last_trade_id|true/false", sorted: the
# format gen_klines.py --format expect prints, so the two compare with diff.
ins_dump_rows() {
	psql "$1" -XAtq -F'|' -v ON_ERROR_STOP=1 -c "
		SELECT symbol, (extract(epoch FROM open_time) * 1000)::bigint,
		       (extract(epoch FROM open_time) * 1000)::bigint + 999, open, high, low, close,
		       volume, quote_volume, trades, taker_buy_volume, taker_buy_quote_volume,
		       first_trade_id, last_trade_id, closed
		FROM kline_1s" | sed 's/|t$/|true/; s/|f$/|false/' | LC_ALL=C sort
}

# ins_expect ARGS... → the expected dump for gen_klines.py ARGS.
ins_expect() {
	"$INS_GEN" --format expect "$@" | LC_ALL=C sort
}

ins_count() { kp_psql "$1" "select count(*) from kline_1s"; }
ins_sql_is() { [ "$(kp_psql "$1" "$2")" = "$3" ]; }
ins_count_is() { [ "$(ins_count "$1")" = "$2" ]; }

# Produces gen_klines.py ARGS... to TOPIC, key = symbol.
ins_produce() {
	local topic=$1
	shift
	"$INS_GEN" --keyed "$@" | kcat -P -b "$KAFKA_BROKERS" -t "$topic" -K$'\t' 2>>"$KP_OUT/kcat.log"
}

# Produces FILE (keyed lines) to TOPIC in chunks of LINES every SLEEP seconds, in the
# background (sets PRODUCER_PID): a steady feed for fault tests.
ins_produce_paced() {
	local topic=$1 file=$2 lines=$3 pause=$4 dir
	dir=$(mktemp -d "$BATS_TEST_TMPDIR/chunks.XXXX")
	split -l "$lines" "$file" "$dir/c."
	(
		for c in "$dir"/c.*; do
			kcat -P -b "$KAFKA_BROKERS" -t "$topic" -K$'\t' -l "$c" 2>>"$KP_OUT/kcat.log"
			sleep "$pause"
		done
	) &
	PRODUCER_PID=$!
}

# Checkpoint invariants: ranges ordered, every checkpoint's rows exist, and no two
# checkpoints of one (topic, partition, symbol) cover the same offsets. Prints what broke.
ins_check_checkpoints() {
	local url=$1 bad
	bad=$(kp_psql "$url" "
		SELECT 'overlap ' || a.id || ' ' || b.id FROM checkpoint a JOIN checkpoint b
		  ON a.id < b.id AND a.symbol = b.symbol AND a.kafka_topic = b.kafka_topic
		 AND a.kafka_partition = b.kafka_partition
		 AND a.first_offset <= b.last_offset AND b.first_offset <= a.last_offset
		UNION ALL
		SELECT 'order ' || id FROM checkpoint
		 WHERE first_open_time > last_open_time OR first_offset > last_offset OR row_count < 1
		UNION ALL
		SELECT 'rows ' || c.id FROM checkpoint c
		 WHERE (SELECT count(*) FROM kline_1s k WHERE k.symbol = c.symbol
		          AND k.open_time BETWEEN c.first_open_time AND c.last_open_time) < c.row_count
		    OR NOT EXISTS (SELECT 1 FROM kline_1s k WHERE k.symbol = c.symbol AND k.open_time = c.first_open_time)
		    OR NOT EXISTS (SELECT 1 FROM kline_1s k WHERE k.symbol = c.symbol AND k.open_time = c.last_open_time)")
	[[ -z $bad ]] || { echo "checkpoint invariants broken: $bad" | head -20; return 1; }
}

# The metrics line NAME{labels} as a number, from the inserter's --metrics-port.
ins_metric() {
	curl -fs "http://127.0.0.1:$1/metrics" | awk -v m="$2" '$1 == m { print $2 }'
}
ins_metric_is() { [ "$(ins_metric "$1" "$2")" = "$3" ]; }

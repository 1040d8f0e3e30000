# shellcheck shell=bash
# Throwaway databases and topics for the benchmarks that use the harness's PostgreSQL and
# Kafka (sourced; needs DATABASE_URL, KAFKA_BROKERS, INS = kline-inserter, TBIN). What
# they create is listed in dbs/topics, the background processes in pids, and
# bench_cleanup (the EXIT trap) removes all of it and $work.
dbs=() topics=() pids=()
bench_cleanup() {
	local p d t
	for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; wait "$p" 2>/dev/null || true; done
	for d in "${dbs[@]}"; do psql "$DATABASE_URL" -XAtqc "drop database if exists $d" >/dev/null 2>&1 || true; done
	for t in "${topics[@]}"; do "$TBIN/kp-topic" -b "$KAFKA_BROKERS" delete "$t" >/dev/null 2>&1 || true; done
	rm -rf "$work"
}
# bench_mkdb PREFIX NAME → sets DB (a URI), the schema applied by the inserter
bench_mkdb() {
	local name=$1_$2_$$
	psql "$DATABASE_URL" -XAtqc "create database $name" >/dev/null
	dbs+=("$name")
	DB=${DATABASE_URL%/*}/$name
	"$INS" -i /dev/null -d "$DB" 2>/dev/null
}
# bench_mktopic PREFIX NAME PARTITIONS [RF] → sets TOPIC
bench_mktopic() {
	TOPIC=$1-$2-$$
	"$TBIN/kp-topic" -b "$KAFKA_BROKERS" create "$TOPIC" "$3" ${4:+"$4"} >/dev/null
	topics+=("$TOPIC")
}
metric() { curl -fs "http://127.0.0.1:$1/metrics" | awk -v m="$2" '$1 == m { print $2 }'; }
free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

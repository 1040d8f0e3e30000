#!/usr/bin/env bats
# kline-producer resume at scale: every symbol resumes from its OWN last kline in the
# topic, however far back it lies, not from the newest seconds of the others.

load helpers
load producer_helpers

# p_syms N [SKIP] → SYM0001USDT,...,SYMnnnnUSDT without SKIP.
p_syms() {
	local i out=()
	for ((i = 1; i <= $1; i++)); do
		printf -v s 'SYM%04dUSDT' "$i"
		[[ $s == "${2:-}" ]] || out+=("$s")
	done
	local IFS=,
	echo "${out[*]}"
}

# p_sim_at SECS → succeeds once the sim generated SECS seconds.
p_sim_at() { p_sim_done "$1"; }

@test "producer resume: a symbol left out of the list for 40 s is backfilled from its own last kline" {
	kp_sim_start --num-symbols 200 --speed 4 --duration 100
	start=$(p_sim_start_ms)
	topic=$(kp_topic_new 1)
	all=$(p_syms 200)
	p_producer resume-a1 -s "$all" -t "$topic" --since "$start"
	kp_wait_for 60 p_sim_at 15
	kp_stop "$PROD_PID"
	# 40 exchange seconds without SYM0001USDT: 8,000 klines of the others go on top of its last one
	p_producer resume-a2 -s "$(p_syms 200 SYM0001USDT)" -t "$topic"
	kp_wait_for 60 p_sim_at 60
	kp_stop "$PROD_PID"
	p_producer resume-a3 -s "$all" -t "$topic"
	kp_wait_for 60 p_sim_done 100
	kp_wait_for 60 p_count_ge "$topic" 20000
	kp_stop "$PROD_PID"
	grep -q "resuming 200 of 200 symbols" "$KP_OUT/resume-a3.log"
	p_check_topic "$topic"
	p_order_ok "$topic"
}

@test "producer resume: kill -9 mid-backfill at 2,000 symbols × 6 partitions loses nothing, doubles nothing" {
	kp_sim_start --num-symbols 2000 --speed 2 --duration 120
	start=$(p_sim_start_ms)
	topic=$(kp_topic_new 6)
	all=$(p_syms 2000)
	# 40 exchange seconds of history before the producer starts: 80,000 klines from REST
	kp_wait_for 60 p_sim_at 40
	p_producer resume-k1 -s "$all" -t "$topic" --since "$start" --rest-workers 2
	# killed while the backfill is under way: many symbols still far behind
	kp_wait_for 90 p_count_ge "$topic" 30000
	kill -9 "$PROD_PID"
	wait "$PROD_PID" 2>/dev/null || true
	n1=$(kp_topic_count "$topic")
	# the kill must land mid-backfill, or the test proves nothing
	echo "killed with $n1 klines in the topic"
	[ "$n1" -lt $((2000 * 40)) ]
	t0=$(date +%s%N)
	p_producer resume-k2 -s "$all" -t "$topic"
	kp_wait_for 60 grep -q "resuming .* symbols" "$KP_OUT/resume-k2.log"
	echo "# resume took $((($(date +%s%N) - t0) / 1000000)) ms: $(grep -o 'resume: read .*' "$KP_OUT/resume-k2.log" | tail -1)" >&3
	kp_wait_for 120 p_sim_done 120
	kp_wait_for 180 p_count_ge "$topic" 240000
	kp_stop "$PROD_PID"
	grep -q "resuming 2000 of 2000 symbols" "$KP_OUT/resume-k2.log"
	p_check_topic "$topic"
}

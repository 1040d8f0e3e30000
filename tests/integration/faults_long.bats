#!/usr/bin/env bats
# The fault campaign at the users' scale (issue 20), `make test-faults` only: the whole
# Binance universe, 2,000 symbols, at Binance's own rate for 10 minutes, then at 5× real
# time (10,000 klines/s on a 2-core machine: the pipeline falls behind and must catch
# up, not give up). Each run ends with the truth table; every cell must be 0.

load helpers
load faults_helpers

setup_file() {
	[[ $KP_KAFKA_MODE == real ]] || skip "needs the real Kafka broker (KP_KAFKA_MODE=$KP_KAFKA_MODE)"
}

@test "faults long: 2,000 symbols × 10 minutes at speed 1, each fault once — every cell 0" {
	faults_campaign faults-2000-speed1 10 2000 1 1 --partitions 6 --seed "${KP_FAULTS_SEED:-7}" \
		--drain-timeout 900 --settle-secs 180
}

@test "faults long: 2,000 symbols × 4 minutes at speed 5, each fault once — every cell 0" {
	faults_campaign faults-2000-speed5 4 2000 5 1 --partitions 6 --seed "${KP_FAULTS_SEED:-7}" \
		--drain-timeout 1200 --settle-secs 240
}

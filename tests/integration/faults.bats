#!/usr/bin/env bats
# The system proof (issues 8 and 20): all four programs as separate processes, real
# Kafka, real PostgreSQL, kline-sim as the exchange, under a seeded random sequence of
# faults (kill -9 of each program, Kafka killed and SIGSTOPped, PostgreSQL stopped and
# SIGSTOPped, every exchange fault knob), then everything compared with the exchange's
# truth. Driver: tests/faults/campaign.py; docs/faults.md.
#
# The short version of every `make test`: 500 symbols × 3 real minutes at 5× real time
# (2,500 klines/s, each fault once). The 2,000-symbol campaigns are in
# faults_long.bats (`make test-faults`). KP_FAULTS_SEED=N replays a schedule;
# KP_FAULTS_MINUTES / KP_FAULTS_SYMBOLS / KP_FAULTS_SPEED change the size.

load helpers
load faults_helpers

setup_file() {
	[[ $KP_KAFKA_MODE == real ]] || skip "needs the real Kafka broker (KP_KAFKA_MODE=$KP_KAFKA_MODE)"
}

@test "faults: 500 symbols — the pipeline loses, doubles and corrupts nothing under a fault campaign" {
	[[ $KP_KAFKA_MODE == real ]] || skip "needs the real Kafka broker"
	faults_campaign faults-campaign "${KP_FAULTS_MINUTES:-3}" "${KP_FAULTS_SYMBOLS:-500}" \
		"${KP_FAULTS_SPEED:-5}" 1 --partitions 6 --drain-timeout 600 --settle-secs 150
}

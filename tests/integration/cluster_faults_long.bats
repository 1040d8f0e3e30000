#!/usr/bin/env bats
# The cluster fault campaign at length (`make test-faults-cluster`; not in `make test`):
# tests/faults/campaign.py --cluster against the 3-node KRaft harness, 200 symbols ×
# 15 real minutes at 5× (1,000 klines/s),
# a hot-standby producer pair, 3 inserters in one group, a streamer pair, every fault
# ROUNDS (2) times: kill -9 of one instance of each program, of the partition leader
# and of the active controller, a rolling restart of all three nodes, a node SIGSTOPped
# and a node isolated for 30 s. Ends with the single-broker campaign's truth table.
# KP_CFAULTS_{MINUTES,SYMBOLS,SPEED,ROUNDS,SEED} change it.

load helpers
load faults_helpers

setup_file() {
	[[ ${KP_KAFKA_NODES:-1} == 3 && $KP_KAFKA_MODE == real ]] || {
		echo "cluster_faults_long.bats needs the real 3-node cluster harness (tests/run.sh --cluster)" >&3
		return 1
	}
}

teardown() {
	"$KP_CTL" kafka-heal || echo "teardown: heal failed" >&2
}

@test "cluster faults long: every cluster fault and program kill several times — every cell 0" {
	FAULTS_KINDS=9 faults_campaign cluster-faults-long "${KP_CFAULTS_MINUTES:-15}" "${KP_CFAULTS_SYMBOLS:-200}" \
		"${KP_CFAULTS_SPEED:-5}" "${KP_CFAULTS_ROUNDS:-2}" --cluster --partitions 6 --inserters 3 \
		--pause-secs 30 --seed "${KP_CFAULTS_SEED:-18}" --drain-timeout 900 --settle-secs 180
}

#!/usr/bin/env bash
# make test: every suite against the single-broker harness (tests/run.sh), then the
# cluster suites against a 3-node Kafka cluster (tests/run.sh --cluster), one total line
# at the end. With FILTERs, only tests/run.sh FILTER... (it picks the harness itself).
set -uo pipefail
here=$(dirname "$(readlink -f "$0")")
if (($#)); then
	exec "$here/run.sh" "$@"
fi
passed=0 failed=0 rc=0
for mode in single cluster; do
	log=$(mktemp)
	args=()
	[[ $mode == cluster ]] && args=(--cluster)
	"$here/run.sh" "${args[@]}" | tee "$log"
	((rc |= PIPESTATUS[0]))
	if read -r p _ f _ < <(grep -E '^[0-9]+ passed, [0-9]+ failed$' "$log" | tail -1); then
		passed=$((passed + p)) failed=$((failed + f))
	else
		echo "run-all.sh: the $mode run printed no total"
		failed=$((failed + 1)) rc=1
	fi
	rm -f "$log"
done
echo
echo "single broker and cluster runs together:"
echo "$passed passed, $failed failed"
((rc == 0 && failed == 0))

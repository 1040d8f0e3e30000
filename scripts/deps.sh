#!/usr/bin/env bash
# Installs what building and testing klinepipe needs on Debian 12, then
# resolves the jars of a real Apache Kafka broker for the test harness.
#
#   scripts/deps.sh        (make deps; make test runs it first)
#
# A no-op in well under a second when everything is there. As root it installs
# missing packages with apt-get; otherwise it prints the command and exits 2.
# If Maven Central cannot serve the Kafka jars it says so loudly and exits 0:
# the tests then run against librdkafka's mock cluster instead.
set -euo pipefail

ROOT=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)

# One word per need; "a|b" = either package will do; "cmd:X" = a command X on
# PATH will do (nodejs builds that bundle npm conflict with Debian's npm).
PACKAGES=(
	build-essential pkg-config
	librdkafka-dev libwebsockets-dev libpq-dev libjansson-dev libcurl4-openssl-dev zlib1g-dev
	libcmocka-dev bats clang libclang-rt-14-dev
	kcat postgresql-15 postgresql-client-15 iptables
	"openjdk-17-jre-headless|default-jre-headless" maven
	chromium nodejs "npm|cmd:npm" docker-compose valgrind
	curl jq python3 procps util-linux linux-perf
	prometheus systemd groff-base mmdebstrap haproxy
)

say() { printf 'deps: %s\n' "$*" >&2; }

missing_packages() {
	local -A installed=()
	local name status p alt ok
	local all=()
	for p in "${PACKAGES[@]}"; do
		IFS='|' read -ra alts <<<"$p"
		for alt in "${alts[@]}"; do
			[[ $alt == cmd:* ]] || all+=("$alt")
		done
	done
	# one dpkg-query for everything; unknown names are simply not installed
	while read -r name status; do
		[[ $status == ii ]] && installed[$name]=1
	done < <(dpkg-query -W -f='${Package} ${db:Status-Abbrev}\n' "${all[@]}" 2>/dev/null || true)
	for p in "${PACKAGES[@]}"; do
		IFS='|' read -ra alts <<<"$p"
		ok=0
		for alt in "${alts[@]}"; do
			if [[ $alt == cmd:* ]]; then
				command -v "${alt#cmd:}" >/dev/null && ok=1
			elif [[ -n ${installed[$alt]:-} ]]; then
				ok=1
			fi
		done
		((ok)) || echo "${alts[0]}"
	done
}

install_packages() {
	local missing=()
	mapfile -t missing < <(missing_packages)
	((${#missing[@]} == 0)) && return 0
	if [[ $(id -u) != 0 ]]; then
		say "missing Debian packages: ${missing[*]}"
		say "run:  sudo apt-get update && sudo DEBIAN_FRONTEND=noninteractive apt-get install -y ${missing[*]}"
		exit 2
	fi
	say "installing: ${missing[*]}"
	export DEBIAN_FRONTEND=noninteractive
	apt-get update -q
	apt-get install -y -q "${missing[@]}"
	# the check again: a package apt silently skipped is still an error
	mapfile -t missing < <(missing_packages)
	if ((${#missing[@]})); then
		say "still missing after apt-get: ${missing[*]}"
		exit 1
	fi
}

# The broker's jars: tests/kafka/pom.xml → build/kafka.classpath
resolve_kafka() {
	local pom=$ROOT/tests/kafka/pom.xml out=$ROOT/build/kafka.classpath jar ok=1
	if [[ -s $out && $out -nt $pom ]]; then
		local jars=()
		IFS=: read -ra jars <"$out" || true # no newline at the end: read says EOF
		for jar in "${jars[@]}"; do [[ -f $jar ]] || ok=0; done
		((ok)) && return 0
		say "a jar listed in $out is gone from ~/.m2; resolving again"
	fi
	mkdir -p "$ROOT/build"
	rm -f "$out"
	say "resolving Apache Kafka 3.9.1 broker jars with Maven (first time: ~60 MB from Maven Central)"
	if mvn -q -B -f "$pom" dependency:build-classpath -Dmdep.outputFile="$out.tmp" >"$ROOT/build/kafka-mvn.log" 2>&1 &&
		[[ -s $out.tmp ]]; then
		mv "$out.tmp" "$out"
		say "Kafka classpath: $out ($(tr ':' '\n' <"$out" | wc -l) jars)"
		return 0
	fi
	rm -f "$out.tmp"
	cat >&2 <<EOF
deps: ################################################################
deps: # COULD NOT RESOLVE THE APACHE KAFKA JARS (see build/kafka-mvn.log)
deps: # Tests will run against librdkafka's MOCK cluster, NOT a real
deps: # Kafka broker. Fix Maven access and run scripts/deps.sh again.
deps: ################################################################
EOF
	tail -5 "$ROOT/build/kafka-mvn.log" >&2 || true
	return 0
}

install_packages
resolve_kafka

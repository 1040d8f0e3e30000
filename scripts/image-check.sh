#!/usr/bin/env bash
# Proves the Dockerfile without a Docker engine (make image-check):
#   1. builds each stage in a throwaway Debian 12 root (mmdebstrap --variant=minbase,
#      close to debian:12-slim) and runs its instructions there: RUN in a chroot,
#      COPY (the build context as .dockerignore leaves it, or --from a stage), WORKDIR,
#      ENV, USER, HEALTHCHECK, CMD;
#   2. in the runtime root: no -dev package, every program's libraries resolve,
#      `--version` of every program as the image's USER;
#   3. against a throwaway PostgreSQL + Kafka (tests/harness/up) and the simulated
#      exchange: starts each program in the runtime root as compose does, and runs the
#      image's HEALTHCHECK command there (it must pass, and fail on a dead port).
# Needs root, mmdebstrap and the Debian mirror (apt's as configured here; KP_DEBIAN_MIRROR
# and KP_DEBIAN_SECURITY override it). The roots live in KP_IMAGE_DIR (default
# build/image-check) and are removed at the end (KP_IMAGE_KEEP=1 keeps them). Every
# mount is made in a private mount namespace, so nothing stays mounted.
set -euo pipefail
ROOT=$(cd "$(dirname "$(readlink -f "$0")")/.." && pwd)
WORK=${KP_IMAGE_DIR:-$ROOT/build/image-check}
: "${KP_TBIN:=$ROOT/build/release/tbin}"
SUITE=bookworm
t0=${KP_IMAGE_T0:-$(date +%s)}
export KP_IMAGE_T0=$t0 # the live half, under tests/harness/up, counts from the same start

say() { printf 'image-check: [%4ss] %s\n' "$(($(date +%s) - t0))" "$*" >&2; }
die() { say "FAILED: $*"; exit 1; }

[[ $(id -u) == 0 ]] || die "must run as root (chroot, mounts)"
command -v mmdebstrap >/dev/null || die "mmdebstrap is not installed (apt-get install mmdebstrap; make deps does)"
[[ -x $KP_TBIN/kline-sim ]] || die "$KP_TBIN/kline-sim is not built (make testbins)"

# The mirror apt uses here (first deb.debian.org-style URI of the main archive).
host_mirror() {
	local u
	u=$(grep -rhoE 'https?://[^ ]+/debian/?$|https?://[^ ]+/debian ' /etc/apt/sources.list /etc/apt/sources.list.d/ 2>/dev/null |
		grep -v security | head -1 | tr -d ' ') || true
	echo "${u:-http://deb.debian.org/debian}"
}
MIRROR=${KP_DEBIAN_MIRROR:-$(host_mirror)}
SECURITY=${KP_DEBIAN_SECURITY:-${MIRROR%/debian*}/debian-security}
HOST_CA=${KP_IMAGE_HOST_CA-/etc/ssl/certs/ca-certificates.crt}
[[ -z $HOST_CA || -r $HOST_CA ]] || HOST_CA=

cleanup() {
	local rc=$?
	trap - EXIT INT TERM
	if [[ ${KP_IMAGE_KEEP:-0} == 1 ]]; then
		say "kept $WORK"
	else
		rm -rf "$WORK"
	fi
	say "total $(($(date +%s) - t0)) s, exit $rc"
	exit "$rc"
}

# ---- run a command in a root: a private mount namespace with /proc and /dev for it.
# The *_argv forms fill ARGV, for `nice` and for background jobs (whose $! is then the
# program itself: every layer execs the next).
# shellcheck disable=SC2016
INROOT_SH='r=$1; shift; mount -t proc proc "$r/proc" && mount --bind /dev "$r/dev" || exit 125
if [ -n "${KP_CA:-}" ]; then : >"$r/run/kp-host-ca.pem" && mount --bind "$KP_CA" "$r/run/kp-host-ca.pem" || exit 125; fi
exec chroot "$r" "$@"'
ARGV=()
in_root_argv() { ARGV=(unshare --mount --propagation private -- sh -c "$INROOT_SH" sh "$@"); } # ROOT CMD...
in_root() { in_root_argv "$@"; "${ARGV[@]}"; }

# ---- 1. the stages
build_stages() {
	rm -rf "$WORK"
	mkdir -p "$WORK"
	# The Dockerfile as a list of steps: the parser only knows what our Dockerfile uses.
	python3 - "$ROOT/Dockerfile" >"$WORK/plan.json" <<'PY'
import json, re, sys
text = open(sys.argv[1]).read()
lines, cur = [], ""
for raw in text.splitlines():
    if not cur and (raw.lstrip().startswith("#") or not raw.strip()):
        continue
    if raw.rstrip().endswith("\\"):
        cur += raw.rstrip()[:-1] + " "
        continue
    cur += raw
    lines.append(cur.strip())
    cur = ""
stages = []
for l in lines:
    op, _, arg = l.partition(" ")
    op = op.upper()
    if op == "FROM":
        m = re.match(r"(\S+)(?:\s+AS\s+(\S+))?$", arg, re.I)
        stages.append({"from": m.group(1), "name": m.group(2) or str(len(stages)), "steps": []})
        continue
    if op not in ("RUN", "COPY", "WORKDIR", "ENV", "USER", "HEALTHCHECK", "CMD"):
        sys.exit(f"image-check: Dockerfile instruction {op} is not supported here")
    stages[-1]["steps"].append([op, arg])
print(json.dumps(stages))
PY
	local n i
	n=$(jq length "$WORK/plan.json")
	for ((i = 0; i < n; i++)); do
		build_stage "$i"
	done
}

# Docker's ENV/PATH semantics, as far as our Dockerfile needs them: KEY=VALUE pairs,
# $VAR and ${VAR} expanded from the environment built so far.
env_apply() { # ENVFILE "K=V K2=V2"
	python3 - "$1" "$2" <<'PY'
import json, os, re, shlex, sys
path, arg = sys.argv[1], sys.argv[2]
env = json.load(open(path))
for kv in shlex.split(arg):
    k, _, v = kv.partition("=")
    v = re.sub(r"\$\{?([A-Za-z_][A-Za-z0-9_]*)\}?", lambda m: env.get(m.group(1), ""), v)
    env[k] = v
json.dump(env, open(path, "w"))
PY
}

# The build context: what `docker build .` sends, less .dockerignore.
copy_context() { # DEST
	python3 - "$ROOT" "$1" <<'PY'
import fnmatch, os, shutil, sys
src, dst = sys.argv[1], sys.argv[2]
pats = []
ign = os.path.join(src, ".dockerignore")
if os.path.exists(ign):
    pats = [l.strip() for l in open(ign) if l.strip() and not l.startswith("#")]
def ignored(rel):
    parts = rel.split("/")
    for p in pats:
        p = p.rstrip("/")
        if p.startswith("**/"):
            if any(fnmatch.fnmatch(x, p[3:]) for x in parts):
                return True
        elif any(fnmatch.fnmatch("/".join(parts[:i]), p) for i in range(1, len(parts) + 1)):
            return True
    return False
n = 0
for d, dirs, files in os.walk(src):
    reld = os.path.relpath(d, src)
    reld = "" if reld == "." else reld + "/"
    dirs[:] = [x for x in dirs if not ignored(reld + x)]
    for f in files:
        rel = reld + f
        if ignored(rel):
            continue
        os.makedirs(os.path.join(dst, reld), exist_ok=True)
        shutil.copy2(os.path.join(src, rel), os.path.join(dst, rel), follow_symlinks=False)
        n += 1
print(n)
PY
}

build_stage() {
	local i=$1 st from name r envf cwd=/ user=root op arg nsteps j
	st=$(jq -c ".[$i]" "$WORK/plan.json")
	from=$(jq -r .from <<<"$st")
	name=$(jq -r .name <<<"$st")
	[[ $from == debian:12* ]] || die "stage $name: FROM $from (only debian:12 images can be made here)"
	r=$WORK/stage-$name
	say "stage $name: mmdebstrap $SUITE minbase from $MIRROR"
	# minbase, without docs, man pages and locales, and no service starts: as debian:12-slim
	mmdebstrap --quiet --mode=root --variant=minbase \
		--dpkgopt='path-exclude=/usr/share/doc/*' --dpkgopt='path-include=/usr/share/doc/*/copyright' \
		--dpkgopt='path-exclude=/usr/share/man/*' --dpkgopt='path-exclude=/usr/share/locale/*' \
		--dpkgopt='path-exclude=/usr/share/info/*' \
		--customize-hook='printf "#!/bin/sh\nexit 101\n" >"$1/usr/sbin/policy-rc.d"; chmod 755 "$1/usr/sbin/policy-rc.d"' \
		--customize-hook='rm -rf "$1"/var/lib/apt/lists/*' \
		"$SUITE" "$r" "deb $MIRROR $SUITE main" "deb $MIRROR $SUITE-updates main" \
		"deb $SECURITY $SUITE-security main" >"$WORK/mmdebstrap-$name.log" 2>&1 ||
		{ tail -20 "$WORK/mmdebstrap-$name.log" >&2; die "mmdebstrap for stage $name"; }
	cp -L /etc/resolv.conf "$r/etc/resolv.conf"
	envf=$WORK/env-$name.json
	echo '{"PATH":"/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin","HOME":"/root"}' >"$envf"
	say "stage $name: base root $(du -sh "$r" | cut -f1)"
	nsteps=$(jq '.steps | length' <<<"$st")
	for ((j = 0; j < nsteps; j++)); do
		op=$(jq -r ".steps[$j][0]" <<<"$st")
		arg=$(jq -r ".steps[$j][1]" <<<"$st")
		case $op in
		ENV) env_apply "$envf" "$arg" ;;
		WORKDIR) cwd=$arg; mkdir -p "$r$cwd" ;;
		USER) user=$arg ;;
		COPY)
			if [[ $arg =~ ^--from=([^ ]+)\ +([^ ]+)\ +([^ ]+)$ ]]; then
				say "stage $name: COPY ${BASH_REMATCH[2]} from stage ${BASH_REMATCH[1]}"
				mkdir -p "$r${BASH_REMATCH[3]}"
				cp -a "$WORK/stage-${BASH_REMATCH[1]}${BASH_REMATCH[2]}/." "$r${BASH_REMATCH[3]}/"
			elif [[ $arg == ". ." ]]; then
				say "stage $name: COPY . . ($(copy_context "$r$cwd") files of the context)"
			else
				die "COPY $arg: not supported here"
			fi
			;;
		RUN)
			say "stage $name: RUN ${arg:0:100}"
			local envs=()
			mapfile -t envs < <(jq -r 'to_entries[] | "\(.key)=\(.value)"' "$envf")
			# shellcheck disable=SC2016
			# The host's CA certificates, for RUN only (bind-mounted, not in the image): where
			# the registries are reached through a TLS-inspecting proxy, npm needs them, as
			# `docker build` would. KP_IMAGE_HOST_CA= turns it off.
			in_root_argv "$r" /usr/bin/env -i "${envs[@]}" ${HOST_CA:+NODE_EXTRA_CA_CERTS=/run/kp-host-ca.pem} \
				/bin/sh -c 'cd "$0" && eval "$1"' "$cwd" "$arg"
			KP_CA=$HOST_CA nice -n 5 "${ARGV[@]}" \
				>>"$WORK/run-$name.log" 2>&1 ||
				{ tail -30 "$WORK/run-$name.log" >&2; die "stage $name: RUN failed (log: $WORK/run-$name.log)"; }
			;;
		HEALTHCHECK) jq -n --arg c "${arg#*CMD }" '$c' >"$WORK/healthcheck-$name.json" ;;
		CMD) ;;
		esac
	done
	rm -f "$r/run/kp-host-ca.pem"
	echo "$user" >"$WORK/user-$name"
	say "stage $name: done, root $(du -sh "$r" | cut -f1)"
	echo "$name" >"$WORK/last-stage"
}

# ---- 2 and 3. the runtime root
RT= RT_ENV=() RT_UID= HC=
runtime_setup() {
	local name user
	name=$(cat "$WORK/last-stage")
	RT=$WORK/stage-$name
	mapfile -t RT_ENV < <(jq -r 'to_entries[] | "\(.key)=\(.value)"' "$WORK/env-$name.json")
	user=$(cat "$WORK/user-$name")
	RT_UID=$(awk -F: -v u="$user" '$1 == u { print $3 ":" $4 }' "$RT/etc/passwd")
	[[ -n $RT_UID ]] || die "USER $user is not in the runtime root's /etc/passwd"
	HC=$(jq -r . "$WORK/healthcheck-$name.json")
	[[ -n $HC ]] || die "the Dockerfile has no HEALTHCHECK"
}

# as the image's user, with the image's environment plus VAR=VALUE arguments
as_user_argv() { # [VAR=VALUE...] CMD...
	in_root_argv "$RT" setpriv --reuid="${RT_UID%:*}" --regid="${RT_UID#*:}" --clear-groups -- \
		/usr/bin/env -i "${RT_ENV[@]}" "$@"
}
as_user() { as_user_argv "$@"; "${ARGV[@]}"; }
# as_user in the background; its pid is added to PIDS and left in LAST_PID
LAST_PID=
as_user_bg() { # LOG [VAR=VALUE...] CMD...
	local log=$1
	shift
	as_user_argv "$@"
	"${ARGV[@]}" 2>"$log" &
	LAST_PID=$!
	PIDS+=("$LAST_PID")
}

static_checks() {
	local dev p out
	dev=$(in_root "$RT" dpkg-query -W -f '${Package}\n' | grep -- '-dev$' || true)
	[[ -z $dev ]] || die "the runtime root has -dev packages: $dev"
	for p in kline-producer kline-inserter kline-aggregator kline-streamer; do
		out=$(in_root "$RT" ldd "/opt/klinepipe/bin/$p") || die "ldd $p"
		! grep -q 'not found' <<<"$out" || die "$p: $(grep 'not found' <<<"$out")"
		out=$(as_user "$p" --version 2>&1) || die "$p --version: $out"
		say "$p --version: $(tr '\n' ' ' <<<"$out")"
	done
	say "runtime root: $(du -sh "$RT" | cut -f1), $(in_root "$RT" dpkg-query -W -f '.\n' | wc -l) packages, as user ${RT_UID}"
}

PIDS=()
stop_programs() {
	local p
	for p in "${PIDS[@]}"; do kill -TERM "$p" 2>/dev/null || true; done
	for p in "${PIDS[@]}"; do wait "$p" 2>/dev/null || true; done
	PIDS=()
}

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }

# The HEALTHCHECK command in the runtime root, HEALTH_PORT as the program's compose service sets it.
healthcheck() { # PORT
	as_user HEALTH_PORT="$1" /bin/sh -c "$HC"
}

wait_healthy() { # NAME PORT PID
	local i
	for ((i = 0; i < 150; i++)); do
		kill -0 "$3" 2>/dev/null || die "$1 exited in the runtime root: $(tail -5 "$WORK/$1.log")"
		healthcheck "$2" >/dev/null 2>&1 && { say "$1: HEALTHCHECK passed (port $2)"; return 0; }
		sleep 0.2
	done
	die "$1: HEALTHCHECK did not pass within 30 s: $(tail -5 "$WORK/$1.log")"
}

live_checks() {
	# runs inside tests/harness/up: DATABASE_URL, KAFKA_BROKERS set
	trap 'stop_programs' EXIT
	local sp pp ip ap hp topic=image-check
	sp=$(free_port)
	"$KP_TBIN/kline-sim" --listen "127.0.0.1:$sp" --symbols BTCUSDT,ETHUSDT --speed 1 >/dev/null 2>"$WORK/sim.log" &
	PIDS+=($!)
	pp=$(free_port) ip=$(free_port) ap=$(free_port) hp=$(free_port)
	# as the compose services run them (docker-compose.yml), on loopback ports
	as_user_bg "$WORK/producer.log" KAFKA_BROKERS="$KAFKA_BROKERS" KAFKA_TOPIC=$topic SYMBOLS=btcusdt,ethusdt \
		BINANCE_WS_URL="ws://127.0.0.1:$sp" BINANCE_REST_URL="http://127.0.0.1:$sp" METRICS_PORT="$pp" \
		kline-producer --retention-ms 3600000
	wait_healthy producer "$pp" "$LAST_PID"
	as_user_bg "$WORK/inserter.log" KAFKA_BROKERS="$KAFKA_BROKERS" KAFKA_TOPIC=$topic \
		DATABASE_URL="$DATABASE_URL" METRICS_PORT="$ip" kline-inserter
	wait_healthy inserter "$ip" "$LAST_PID"
	as_user_bg "$WORK/aggregator.log" DATABASE_URL="$DATABASE_URL" AGG_INTERVALS=1m,5m METRICS_PORT="$ap" \
		kline-aggregator --every 10
	wait_healthy aggregator "$ap" "$LAST_PID"
	as_user_bg "$WORK/streamer.log" KAFKA_BROKERS="$KAFKA_BROKERS" KAFKA_TOPIC=$topic \
		DATABASE_URL="$DATABASE_URL" kline-streamer --listen "127.0.0.1:$hp"
	wait_healthy streamer "$hp" "$LAST_PID"
	# the page is served from the image's STREAMER_WEB_ROOT, and klines flow end to end
	curl -fsS "http://127.0.0.1:$hp/" | grep -qi '<html' || die "streamer: no page at /"
	local i rows=0
	for ((i = 0; i < 100; i++)); do
		rows=$(psql "$DATABASE_URL" -XAtqc 'select count(*) from kline_1s' 2>/dev/null || echo 0)
		((rows > 0)) && break
		sleep 0.3
	done
	((rows > 0)) || die "no kline reached kline_1s through the programs of the runtime root"
	say "klines flowed: exchange → producer → Kafka → inserter → kline_1s ($rows rows)"
	# the check can fail: a port nothing listens on
	if healthcheck "$(free_port)" >/dev/null 2>&1; then die "HEALTHCHECK passed on a dead port"; fi
	say "HEALTHCHECK fails on a dead port, as it should"
	stop_programs
}

if [[ ${1:-} == --live ]]; then
	# second half, under tests/harness/up
	WORK=$2
	runtime_setup
	live_checks
	exit 0
fi

trap cleanup EXIT
trap 'exit 130' INT
trap 'exit 143' TERM
say "Dockerfile: $ROOT/Dockerfile; roots in $WORK"
build_stages
runtime_setup
static_checks
say "starting PostgreSQL + Kafka (tests/harness/up) for the HEALTHCHECK runs"
"$ROOT/tests/harness/up" -- "$0" --live "$WORK" >"$WORK/harness.log" 2>&1 ||
	{ tail -15 "$WORK/harness.log" >&2; die "live checks"; }
grep 'image-check:' "$WORK/harness.log" >&2 || true
say "PASSED: both stages built, --version and HEALTHCHECK of every program in the runtime root"

# shellcheck shell=bash
# Test harness: a throwaway PostgreSQL 15 cluster and a real Apache Kafka broker
# (KRaft, one JVM), or librdkafka's mock cluster when the Kafka jars are missing.
#
# Sourced by tests/harness/{up,ctl} and tests/run.sh. Every function works from
# any process given KP_HARNESS_DIR, because the state lives in files there:
#
#   $KP_HARNESS_DIR/env                 export lines for DATABASE_URL, KAFKA_BROKERS, ...
#   $KP_HARNESS_DIR/pg/{data,log,port,pid}   the cluster; unix socket in pg/
#   $KP_HARNESS_DIR/kafka/{mode,port,cport,pid,server.properties,log4j.properties,data,*.log}
#
# Servers are started with `setsid -f`: each is the leader of its own process
# group (so stop/pause reach every child) and is not our child (so a caller that
# exits early leaves no zombie, and the next `ctl` can still find it by pid file).

KP_H_ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
KP_H_PGBIN=${KP_PGBIN:-/usr/lib/postgresql/15/bin}
KP_H_CLASSPATH_FILE=${KP_KAFKA_CLASSPATH_FILE:-$KP_H_ROOT/build/kafka.classpath}

kp_h_log() { printf 'harness: %s\n' "$*" >&2; }
kp_h_die() { kp_h_log "ERROR: $*"; return 1; }

# Milliseconds since the epoch (for start-up timings).
kp_h_now_ms() { date +%s%3N; }

kp_h_free_port() {
	python3 -c 'import socket
s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1]); s.close()'
}

# True while PID exists and is not a zombie.
kp_h_alive() {
	local pid=$1 st
	[[ -n $pid && -r /proc/$pid/stat ]] || return 1
	st=$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null) || return 1
	[[ -n $st && $st != Z ]]
}

kp_h_port_open() { (exec 3<>"/dev/tcp/127.0.0.1/$1") 2>/dev/null; }

# Wait up to $1 seconds for PID $2 to go away.
kp_h_wait_gone() {
	local deadline=$(($(date +%s) + $1)) pid=$2
	while kp_h_alive "$pid"; do
		(($(date +%s) >= deadline)) && return 1
		sleep 0.1
	done
}

# Runs "$@" detached in a new session; writes the pid (= process group id) to
# $1. All inherited descriptors are closed so bats and pipes never wait on it.
kp_h_spawn() {
	local pidfile=$1 logfile=$2
	shift 2
	rm -f "$pidfile"
	# shellcheck disable=SC2016
	setsid -f sh -c 'echo $$ >"$0.tmp" && mv "$0.tmp" "$0"; exec "$@"' "$pidfile" "$@" \
		</dev/null >>"$logfile" 2>&1 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&-
	local i
	for ((i = 0; i < 100; i++)); do
		[[ -s $pidfile ]] && return 0
		sleep 0.02
	done
	kp_h_die "no pid file $pidfile"
}

# Prints the pid of a server, or nothing; always succeeds so that `pid=$(...)`
# is safe in callers running under `set -e` (up, ctl).
kp_h_pidof() { cat "$KP_HARNESS_DIR/$1/pid" 2>/dev/null || true; }

# Signal a whole process group (the server and every child it forked).
kp_h_signal_group() {
	local sig=$1 pid=$2
	[[ -n $pid ]] || return 0
	kill -s "$sig" -- "-$pid" 2>/dev/null || kill -s "$sig" "$pid" 2>/dev/null || true
}

kp_h_require_dir() {
	[[ -n ${KP_HARNESS_DIR:-} && -d $KP_HARNESS_DIR ]] ||
		kp_h_die "KP_HARNESS_DIR is not set or not a directory (start tests/harness/up first)"
}

# ---------------------------------------------------------------- PostgreSQL

kp_h_pg_as() { setpriv --reuid=postgres --regid=postgres --init-groups -- "$@"; }

kp_h_pg_version() { "$KP_H_PGBIN/postgres" --version; }

# Creates the cluster once; a data dir that already holds one is reused (--data-dir).
kp_h_pg_init() {
	local d=$KP_HARNESS_DIR/pg port
	mkdir -p "$d"
	chown postgres: "$d"
	chmod 0700 "$d"
	if [[ -s $d/data/PG_VERSION ]]; then
		return 0
	fi
	port=$(kp_h_free_port)
	echo "$port" >"$d/port"
	kp_h_pg_as "$KP_H_PGBIN/initdb" -D "$d/data" -U postgres -A trust -E UTF8 \
		--locale=C.UTF-8 --no-sync >"$d/initdb.log" 2>&1 ||
		{ cat "$d/initdb.log" >&2; kp_h_die "initdb failed"; return 1; }
	# Durability is not what tests measure; these make every commit cheap.
	cat >>"$d/data/postgresql.conf" <<EOF

# --- klinepipe test harness ---
port = $port
listen_addresses = '127.0.0.1'
unix_socket_directories = '$d'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 200
shared_buffers = 64MB
log_min_messages = warning
log_line_prefix = '%m [%p] %d '
EOF
}

kp_h_pg_port() { cat "$KP_HARNESS_DIR/pg/port"; }

kp_h_pg_ready() {
	"$KP_H_PGBIN/pg_isready" -q -h 127.0.0.1 -p "$(kp_h_pg_port)" -U postgres -d postgres -t 1
}

kp_h_pg_start() {
	kp_h_require_dir || return 1
	local d=$KP_HARNESS_DIR/pg pid t0 i
	pid=$(kp_h_pidof pg)
	if kp_h_alive "$pid"; then
		kp_h_signal_group CONT "$pid"
		kp_h_pg_ready && return 0
	fi
	t0=$(kp_h_now_ms)
	# A postmaster killed by kill -9 leaves its pid file; the port check in
	# postgres itself refuses a live one, so removing a stale one is safe.
	[[ -f $d/data/postmaster.pid ]] && ! kp_h_alive "$(head -1 "$d/data/postmaster.pid")" &&
		rm -f "$d/data/postmaster.pid"
	touch "$d/log" && chown postgres: "$d/log"
	kp_h_spawn "$d/pid" "$d/log" setpriv --reuid=postgres --regid=postgres --init-groups -- \
		"$KP_H_PGBIN/postgres" -D "$d/data" || return 1
	pid=$(kp_h_pidof pg)
	for ((i = 0; i < 600; i++)); do
		kp_h_pg_ready && break
		if ! kp_h_alive "$pid"; then
			tail -20 "$d/log" >&2
			kp_h_die "postgres exited during start-up (log: $d/log)"
			return 1
		fi
		sleep 0.05
	done
	kp_h_pg_ready || { kp_h_die "postgres not ready after 30 s (log: $d/log)"; return 1; }
	KP_H_PG_START_MS=$(($(kp_h_now_ms) - t0))
	echo "$KP_H_PG_START_MS" >"$d/start_ms"
}

kp_h_pg_createdb() {
	local port
	port=$(kp_h_pg_port)
	if [[ -z $(psql -h 127.0.0.1 -p "$port" -U postgres -d postgres -XAtqc \
		"select 1 from pg_database where datname = 'klinepipe'" 2>/dev/null) ]]; then
		psql -h 127.0.0.1 -p "$port" -U postgres -d postgres -XAtqc 'create database klinepipe' >/dev/null
	fi
}

# Fast shutdown: clients are disconnected, data on disk is kept for pg-start.
kp_h_pg_stop() {
	kp_h_require_dir || return 1
	local pid
	pid=$(kp_h_pidof pg)
	kp_h_alive "$pid" || return 0
	kp_h_signal_group CONT "$pid" # a paused server cannot shut down
	kill -INT "$pid" 2>/dev/null
	if ! kp_h_wait_gone 30 "$pid"; then
		kp_h_log "postgres did not stop in 30 s; killing it"
		kp_h_signal_group KILL "$pid"
		kp_h_wait_gone 5 "$pid"
	fi
}

# Backends are the postmaster's children but not in its process group: signal them too,
# so open sessions freeze as well (a paused server, not just a paused listener).
kp_h_pg_pause() {
	local pid
	pid=$(kp_h_pidof pg)
	kp_h_signal_group STOP "$pid"
	[[ -z $pid ]] || pkill -STOP -P "$pid" 2>/dev/null || true
}
kp_h_pg_resume() {
	local pid
	pid=$(kp_h_pidof pg)
	[[ -z $pid ]] || pkill -CONT -P "$pid" 2>/dev/null || true
	kp_h_signal_group CONT "$pid"
}

# ---------------------------------------------------------------- Kafka

kp_h_kafka_mode() { cat "$KP_HARNESS_DIR/kafka/mode" 2>/dev/null || echo none; }

kp_h_kafka_classpath() {
	[[ -s $KP_H_CLASSPATH_FILE ]] || return 1
	local cp
	cp=$(cat "$KP_H_CLASSPATH_FILE")
	# Every jar must still be in ~/.m2 (a cleaned repository makes the file stale).
	local IFS=:
	local j
	for j in $cp; do [[ -f $j ]] || return 1; done
	printf '%s' "$cp"
}

kp_h_kafka_jar_version() {
	tr ':' '\n' <"$KP_H_CLASSPATH_FILE" | sed -n 's,.*/kafka_2\.[0-9]*-\([0-9.]*\)\.jar$,\1,p' | head -1
}

# The application class-data archive for this classpath and this JDK: a new
# Kafka version or JDK gets a new archive instead of a rejected one.
kp_h_kafka_cds_path() {
	local key
	key=$({ cat "$KP_H_CLASSPATH_FILE"; readlink -f "$(command -v java)"; } 2>/dev/null | md5sum | cut -c1-12)
	echo "$KP_H_ROOT/build/kafka-cds-$key.jsa"
}

# JVM flags chosen for start-up time on 2 small cores (measured: C1 only +
# serial GC + AppCDS brings process start to ready from ~1.7 s to ~1.2 s).
# The JDK's default CDS archive plus an application archive of Kafka's classes
# dumped when the first broker exits, reused by every later start.
kp_h_kafka_jvm_opts() {
	local jsa
	jsa=$(kp_h_kafka_cds_path)
	KP_H_JVM_OPTS=(-Xms256m -Xmx512m -XX:+UseSerialGC -XX:TieredStopAtLevel=1
		-XX:-UsePerfData -Xss512k -Djava.awt.headless=true -Xshare:auto)
	if [[ -n ${KP_KAFKA_JVM_OPTS:-} ]]; then
		# for measuring other flags: replaces the tuned ones (split on spaces)
		read -ra KP_H_JVM_OPTS <<<"$KP_KAFKA_JVM_OPTS"
	fi
	if [[ ${KP_KAFKA_CDS:-1} == 1 ]]; then
		if [[ -s $jsa ]]; then
			KP_H_JVM_OPTS+=("-XX:SharedArchiveFile=$jsa")
		elif mkdir "$jsa.lock" 2>/dev/null; then
			# Only one broker at a time dumps (several harnesses may run);
			# the dump is renamed into place after a clean exit.
			KP_H_JVM_OPTS+=("-XX:ArchiveClassesAtExit=$jsa.tmp")
			echo "$jsa" >"$KP_HARNESS_DIR/kafka/cds_pending"
		fi
	fi
}

# A short-lived Kafka tool JVM (StorageTool); reuses the broker's class archive.
kp_h_kafka_java() {
	local cp jsa cds=()
	cp=$(kp_h_kafka_classpath) || return 1
	jsa=$(kp_h_kafka_cds_path)
	[[ -s $jsa ]] && cds=("-XX:SharedArchiveFile=$jsa")
	java -Xshare:auto "${cds[@]}" -XX:TieredStopAtLevel=1 -XX:+UseSerialGC -XX:-UsePerfData -cp "$cp" "$@"
}

# What `StorageTool random-uuid` prints (Kafka's Uuid: 16 random bytes,
# URL-safe base64 without padding, never starting with '-'), without paying
# for a JVM start.
kp_h_kafka_cluster_id() {
	python3 -c 'import base64, os
while True:
    u = base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")
    if not u.startswith("-"):
        print(u); break'
}

kp_h_kafka_init_real() {
	local d=$KP_HARNESS_DIR/kafka port cport uuid
	mkdir -p "$d"
	echo real >"$d/mode"
	if [[ -s $d/data/meta.properties ]]; then
		return 0
	fi
	port=$(kp_h_free_port)
	cport=$(kp_h_free_port)
	while [[ $cport == "$port" ]]; do cport=$(kp_h_free_port); done
	echo "$port" >"$d/port"
	echo "$cport" >"$d/cport"
	cat >"$d/server.properties" <<EOF
# klinepipe test harness: one KRaft node that is both broker and controller.
process.roles=broker,controller
node.id=1
listeners=PLAINTEXT://127.0.0.1:$port,CONTROLLER://127.0.0.1:$cport
advertised.listeners=PLAINTEXT://127.0.0.1:$port
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
controller.quorum.voters=1@127.0.0.1:$cport
log.dirs=$d/data
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=4
group.initial.rebalance.delay.ms=0
num.network.threads=2
num.io.threads=4
num.recovery.threads.per.data.dir=1
log.retention.hours=-1
log.retention.bytes=-1
# After kill -9 the restarted controller keeps the dead broker's registration
# until its session expires (default 9 s, measured 16 s restarts); a short
# session makes a crash restart take about as long as a clean one.
broker.session.timeout.ms=3000
broker.heartbeat.interval.ms=500
EOF
	cat >"$d/log4j.properties" <<EOF
log4j.rootLogger=WARN, file
log4j.appender.file=org.apache.log4j.FileAppender
log4j.appender.file.File=$d/server.log
log4j.appender.file.layout=org.apache.log4j.PatternLayout
log4j.appender.file.layout.ConversionPattern=[%d] %p %m (%c)%n
# the version line and "started" line are what the harness prints and waits on
log4j.logger.org.apache.kafka.common.utils.AppInfoParser=INFO
log4j.logger.kafka.server.KafkaRaftServer=INFO
log4j.logger.kafka.server.BrokerServer=INFO
EOF
	uuid=$(kp_h_kafka_cluster_id)
	echo "$uuid" >"$d/cluster_id"
	kp_h_kafka_java -Dlog4j.configuration="file:$d/log4j.properties" \
		kafka.tools.StorageTool format -t "$uuid" -c "$d/server.properties" >>"$d/format.log" 2>&1 ||
		{ cat "$d/format.log" >&2; kp_h_die "StorageTool format failed"; return 1; }
}

kp_h_kafka_init_mock() {
	local d=$KP_HARNESS_DIR/kafka
	mkdir -p "$d"
	echo mock >"$d/mode"
}

kp_h_kafka_brokers() {
	case $(kp_h_kafka_mode) in
	real) echo "127.0.0.1:$(cat "$KP_HARNESS_DIR/kafka/port")" ;;
	mock) cat "$KP_HARNESS_DIR/kafka/brokers" ;;
	*) return 1 ;;
	esac
}

kp_h_kafka_ready() {
	local b
	b=$(kp_h_kafka_brokers) || return 1
	kp_h_port_open "${b##*:}" || return 1
	# The port opens before the broker has registered with its controller;
	# metadata listing a broker is what clients actually need.
	kcat -L -b "$b" -m 2 -J 2>/dev/null | grep -q '"brokers":\[{'
}

kp_h_kafka_mock_bin() {
	local b
	for b in "${KP_TBIN:-}/kp-mock-cluster" "$KP_H_ROOT/build/release/tbin/kp-mock-cluster"; do
		[[ -x $b ]] && { echo "$b"; return 0; }
	done
	return 1
}

kp_h_kafka_start() {
	kp_h_require_dir || return 1
	local d=$KP_HARNESS_DIR/kafka pid t0 i cp
	pid=$(kp_h_pidof kafka)
	if kp_h_alive "$pid"; then
		kp_h_signal_group CONT "$pid"
		if [[ $(kp_h_kafka_mode) == mock && -e $d/mock_down ]]; then
			kill -USR2 "$pid" # brokers up again
			rm -f "$d/mock_down"
		fi
		return 0
	fi
	t0=$(kp_h_now_ms)
	case $(kp_h_kafka_mode) in
	real)
		cp=$(kp_h_kafka_classpath) || { kp_h_die "Kafka classpath missing (run scripts/deps.sh)"; return 1; }
		kp_h_kafka_jvm_opts
		kp_h_spawn "$d/pid" "$d/stdout.log" java "${KP_H_JVM_OPTS[@]}" \
			-Dlog4j.configuration="file:$d/log4j.properties" -Dkafka.logs.dir="$d" \
			-cp "$cp" kafka.Kafka "$d/server.properties" || return 1
		;;
	mock)
		local bin
		bin=$(kp_h_kafka_mock_bin) || { kp_h_die "kp-mock-cluster not built (make testbins)"; return 1; }
		rm -f "$d/brokers"
		mkdir -p "$d/topic-requests"
		kp_h_spawn "$d/pid" "$d/stdout.log" "$bin" --brokers 3 --out "$d/brokers" \
			--topic-dir "$d/topic-requests" || return 1
		;;
	*) kp_h_die "Kafka not initialised in $d"; return 1 ;;
	esac
	pid=$(kp_h_pidof kafka)
	for ((i = 0; i < 1200; i++)); do
		kp_h_kafka_ready && break
		if ! kp_h_alive "$pid"; then
			tail -30 "$d/stdout.log" "$d/server.log" 2>/dev/null >&2
			kp_h_die "Kafka exited during start-up (logs in $d)"
			return 1
		fi
		sleep 0.05
	done
	kp_h_kafka_ready || { kp_h_die "Kafka not ready after 60 s (logs in $d)"; return 1; }
	KP_H_KAFKA_START_MS=$(($(kp_h_now_ms) - t0))
	echo "$KP_H_KAFKA_START_MS" >"$d/start_ms"
}

# Controlled shutdown (SIGTERM); the log dir is kept for kafka-start.
kp_h_kafka_stop() {
	kp_h_require_dir || return 1
	local pid
	pid=$(kp_h_pidof kafka)
	kp_h_alive "$pid" || return 0
	kp_h_signal_group CONT "$pid"
	if [[ $(kp_h_kafka_mode) == mock ]]; then
		# The mock cluster keeps its data only in memory: "stop" takes its
		# brokers down instead of ending the process.
		kill -USR1 "$pid"
		touch "$KP_HARNESS_DIR/kafka/mock_down"
		return 0
	fi
	kill -TERM "$pid" 2>/dev/null
	if ! kp_h_wait_gone 60 "$pid"; then
		kp_h_log "Kafka did not stop in 60 s; killing it"
		kp_h_signal_group KILL "$pid"
		kp_h_wait_gone 5 "$pid"
	fi
	kp_h_kafka_cds_done
}

kp_h_kafka_kill() {
	kp_h_require_dir || return 1
	local pid
	pid=$(kp_h_pidof kafka)
	kp_h_alive "$pid" || return 0
	if [[ $(kp_h_kafka_mode) == mock ]]; then
		kp_h_signal_group CONT "$pid"
		kill -USR1 "$pid"
		touch "$KP_HARNESS_DIR/kafka/mock_down"
		return 0
	fi
	kp_h_signal_group KILL "$pid"
	kp_h_wait_gone 10 "$pid"
	kp_h_kafka_cds_done
}

# After the broker exits: keep a complete archive, or let a later start retry.
kp_h_kafka_cds_done() {
	local jsa
	jsa=$(cat "$KP_HARNESS_DIR/kafka/cds_pending" 2>/dev/null) || return 0
	rm -f "$KP_HARNESS_DIR/kafka/cds_pending"
	# -Xshare:on refuses an archive it cannot map (e.g. a JVM killed mid-dump)
	if [[ -s $jsa.tmp ]] && java -Xshare:on -XX:SharedArchiveFile="$jsa.tmp" \
		-cp "$(kp_h_kafka_classpath)" -version >/dev/null 2>&1; then
		mv -f "$jsa.tmp" "$jsa"
	else
		rm -f "$jsa.tmp"
	fi
	rmdir "$jsa.lock" 2>/dev/null || true
}

kp_h_kafka_pause() { kp_h_signal_group STOP "$(kp_h_pidof kafka)"; }
kp_h_kafka_resume() { kp_h_signal_group CONT "$(kp_h_pidof kafka)"; }

kp_h_kafka_version() {
	case $(kp_h_kafka_mode) in
	real)
		local v
		v=$(sed -n 's/.*Kafka version: \([^ ]*\).*/\1/p' "$KP_HARNESS_DIR/kafka/server.log" 2>/dev/null | tail -1)
		echo "Apache Kafka ${v:-$(kp_h_kafka_jar_version)} (KRaft, broker+controller, real JVM broker)"
		;;
	mock)
		echo "librdkafka $(sed -n 's/.*librdkafka \([^ ]*\).*/\1/p' "$KP_HARNESS_DIR/kafka/stdout.log" | head -1) MOCK cluster (not a real broker)"
		;;
	esac
}

# ---------------------------------------------------------------- both

kp_h_write_env() {
	local f=$KP_HARNESS_DIR/env
	{
		echo "export KP_HARNESS_DIR='$KP_HARNESS_DIR'"
		echo "export DATABASE_URL='postgresql://postgres@127.0.0.1:$(kp_h_pg_port)/klinepipe'"
		echo "export KP_PG_PORT='$(kp_h_pg_port)'"
		echo "export KAFKA_BROKERS='$(kp_h_kafka_brokers)'"
		echo "export KP_KAFKA_MODE='$(kp_h_kafka_mode)'"
	} >"$f.tmp" && mv "$f.tmp" "$f"
}

# Chooses the broker: KP_KAFKA=real|mock|auto (default auto: real when the jars
# resolved and java exists).
kp_h_kafka_choose() {
	local want=${KP_KAFKA:-auto} have_real=0
	if [[ -s $KP_HARNESS_DIR/kafka/mode ]]; then
		return 0 # an existing --data-dir keeps its broker kind
	fi
	command -v java >/dev/null && kp_h_kafka_classpath >/dev/null && have_real=1
	case $want in
	real)
		((have_real)) || { kp_h_die "KP_KAFKA=real but the Kafka jars or java are missing (run scripts/deps.sh)"; return 1; }
		;;
	mock) have_real=0 ;;
	auto) ;;
	*) kp_h_die "KP_KAFKA must be real, mock or auto"; return 1 ;;
	esac
	if ((have_real)); then kp_h_kafka_init_real; else kp_h_kafka_init_mock; fi
}

# Starts both servers; prints versions and start-up times to stderr.
kp_h_up() {
	kp_h_require_dir || return 1
	chmod 0755 "$KP_HARNESS_DIR"
	# PostgreSQL runs as user postgres: every parent directory must let it through.
	kp_h_pg_as test -x "$KP_HARNESS_DIR" ||
		{ kp_h_die "user postgres cannot reach $KP_HARNESS_DIR (a parent directory is private, e.g. /root): choose a data directory under /var/tmp"; return 1; }
	local t0 pg_ms k_ms
	t0=$(kp_h_now_ms)
	# Format Kafka's storage (a JVM) while initdb runs; starting the broker
	# JVM alongside PostgreSQL too was measured slower on 2 cores.
	mkdir -p "$KP_HARNESS_DIR/kafka"
	(kp_h_kafka_choose) >"$KP_HARNESS_DIR/kafka/init.log" 2>&1 &
	local kinit=$!
	kp_h_pg_init || { wait "$kinit"; return 1; }
	kp_h_pg_start || { wait "$kinit"; return 1; }
	kp_h_pg_createdb || { wait "$kinit"; return 1; }
	pg_ms=$(($(kp_h_now_ms) - t0))
	if ! wait "$kinit"; then
		cat "$KP_HARNESS_DIR/kafka/init.log" >&2
		kp_h_die "Kafka set-up failed (see above)"
		return 1
	fi
	kp_h_kafka_start || return 1
	k_ms=$(($(kp_h_now_ms) - t0))
	kp_h_write_env
	kp_h_log "PostgreSQL: $(kp_h_pg_version) on 127.0.0.1:$(kp_h_pg_port): ready in ${pg_ms} ms (initdb + start + createdb; postmaster start alone $(cat "$KP_HARNESS_DIR/pg/start_ms") ms)"
	kp_h_log "Kafka:      $(kp_h_kafka_version) on $(kp_h_kafka_brokers): ready at ${k_ms} ms (format in parallel with PostgreSQL; broker process start to ready $(cat "$KP_HARNESS_DIR/kafka/start_ms") ms)"
	kp_h_log "total harness start-up: $(($(kp_h_now_ms) - t0)) ms; state in $KP_HARNESS_DIR"
}

kp_h_down() {
	[[ -n ${KP_HARNESS_DIR:-} && -d $KP_HARNESS_DIR ]] || return 0
	local pid
	rm -f "$KP_HARNESS_DIR/owner"
	# Kafka first: a broker shutting down does not need the database, and the
	# controlled shutdown is the slow one.
	if [[ $(kp_h_kafka_mode) == mock ]]; then
		pid=$(kp_h_pidof kafka)
		if kp_h_alive "$pid"; then
			kp_h_signal_group CONT "$pid"
			kill -TERM "$pid"
			kp_h_wait_gone 10 "$pid" || kp_h_signal_group KILL "$pid"
		fi
	else
		kp_h_kafka_stop
	fi
	kp_h_pg_stop
	# Anything left in either group (a stuck child) goes too.
	for pid in "$(kp_h_pidof kafka)" "$(kp_h_pidof pg)"; do
		[[ -n $pid ]] && kp_h_signal_group KILL "$pid"
	done
	return 0
}

# Ends the servers if OWNER dies without cleaning up (kill -9 of run.sh or
# up): first whatever process group is named in $KP_HARNESS_DIR/suite_pgid
# (a test suite could otherwise start the servers again), then the servers;
# REMOVE=1 also deletes the directory (a throwaway harness).
kp_h_watchdog() {
	local owner=$1 remove=${2:-0}
	# The owner file tells a stale watchdog (of an earlier `up --data-dir` on
	# the same directory) that the harness is no longer its business.
	echo "$owner" >"$KP_HARNESS_DIR/owner"
	# shellcheck disable=SC2016 # expanded by the watchdog's own bash
	setsid -f bash -c '
		while kill -0 "$0" 2>/dev/null; do sleep 1; done
		[[ -d $1 && $(cat "$1/owner" 2>/dev/null) == "$0" ]] || exit 0
		pg=$(cat "$1/suite_pgid" 2>/dev/null) && [[ -n $pg ]] && kill -KILL -- "-$pg" 2>/dev/null
		KP_HARNESS_DIR=$1 "$2" down
		[[ $3 == 1 ]] && rm -rf "$1"' "$owner" "$KP_HARNESS_DIR" "$KP_H_ROOT/tests/harness/ctl" "$remove" \
		</dev/null >/dev/null 2>&1 3>&- 4>&- 5>&- 6>&- 7>&- 8>&- 9>&-
}

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

# kp_h_port_open HOST PORT
kp_h_port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

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
	# KP_H_SPAWN_CGROUP: a cgroup.procs file to enter first (cluster nodes).
	KP_H_CG=${KP_H_SPAWN_CGROUP:-} setsid -f sh -c '{ [ -z "$KP_H_CG" ] || echo $$ >"$KP_H_CG"; } &&
		echo $$ >"$0.tmp" && mv "$0.tmp" "$0"; exec "$@"' "$pidfile" "$@" \
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
#
# One broker (the default) or a KRaft cluster of N nodes (KP_KAFKA_CLUSTER=N,
# `up --kafka-cluster N`). A node's files live in its directory: the single
# broker in kafka/ itself (the layout from before clusters), cluster node I in
# kafka/bI, which listens on 127.0.0.(I+1) so that it can be cut off alone
# (see kp_h_kafka_isolate). Every cluster node is broker and controller: with 3
# voters the metadata quorum survives any one node's fault, and 3 JVMs are
# what 2 cores can afford (a separate controller would be a 4th JVM and a
# single point of failure for leader elections).

kp_h_kafka_mode() { cat "$KP_HARNESS_DIR/kafka/mode" 2>/dev/null || echo none; }

# Number of Kafka nodes: 1 unless the harness was started as a cluster.
kp_h_kafka_count() { cat "$KP_HARNESS_DIR/kafka/nodes" 2>/dev/null || echo 1; }
kp_h_kafka_is_cluster() { [[ -s $KP_HARNESS_DIR/kafka/nodes ]]; }

# kp_h_kafka_node_dir [I] → the directory of node I (1-based; the single broker's for 1).
kp_h_kafka_node_dir() {
	local i=${1:-1} n
	n=$(kp_h_kafka_count)
	[[ $i =~ ^[0-9]+$ ]] && ((i >= 1 && i <= n)) ||
		{ kp_h_die "no Kafka node '$i' (nodes: 1..$n)"; return 1; }
	if kp_h_kafka_is_cluster; then
		echo "$KP_HARNESS_DIR/kafka/b$i"
	else
		echo "$KP_HARNESS_DIR/kafka"
	fi
}

# kp_h_kafka_nodes [I] → node numbers: I alone (checked) or all of them.
kp_h_kafka_nodes() {
	if [[ -n ${1:-} ]]; then
		kp_h_kafka_node_dir "$1" >/dev/null || return 1
		echo "$1"
	else
		seq 1 "$(kp_h_kafka_count)"
	fi
}

kp_h_kafka_node_host() { cat "$1/host" 2>/dev/null || echo 127.0.0.1; }
kp_h_kafka_node_addr() { echo "$(kp_h_kafka_node_host "$1"):$(cat "$1/port")"; }

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

# kp_h_kafka_jvm_opts NODE_DIR → KP_H_JVM_OPTS.
# JVM flags chosen for start-up time on 2 small cores (measured: C1 only +
# serial GC + AppCDS brings process start to ready from ~1.7 s to ~1.2 s).
# The JDK's default CDS archive plus an application archive of Kafka's classes
# dumped when the first broker exits, reused by every later start. Cluster
# nodes get a smaller heap: three of them share the machine.
kp_h_kafka_jvm_opts() {
	local d=$1 jsa heap=(-Xms256m -Xmx512m)
	jsa=$(kp_h_kafka_cds_path)
	kp_h_kafka_is_cluster && heap=(-Xms128m -Xmx384m)
	KP_H_JVM_OPTS=("${heap[@]}" -XX:+UseSerialGC -XX:TieredStopAtLevel=1
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
			echo "$jsa" >"$d/cds_pending"
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

# kp_h_kafka_write_config DIR ID HOST PORT CPORT VOTERS RF
# server.properties and log4j.properties of one node.
kp_h_kafka_write_config() {
	local d=$1 id=$2 host=$3 port=$4 cport=$5 voters=$6 rf=$7 misr=1 what
	what="one KRaft node that is both broker and controller"
	if ((rf > 1)); then
		what="node $id of a ${rf}-node KRaft cluster, each node broker and controller"
		misr=$((rf - 1))
	fi
	cat >"$d/server.properties" <<EOF
# klinepipe test harness: $what.
process.roles=broker,controller
node.id=$id
listeners=PLAINTEXT://$host:$port,CONTROLLER://$host:$cport
advertised.listeners=PLAINTEXT://$host:$port
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
controller.quorum.voters=$voters
log.dirs=$d/data
num.partitions=1
default.replication.factor=$rf
min.insync.replicas=$misr
auto.create.topics.enable=false
offsets.topic.replication.factor=$rf
offsets.topic.num.partitions=4
transaction.state.log.replication.factor=$rf
transaction.state.log.min.isr=$misr
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
	if ((rf > 1)); then
		cat >>"$d/server.properties" <<EOF
# A follower that stops fetching leaves the ISR after 5 s instead of 30 s, so
# that short tests see ISR shrink and expand (a fenced broker leaves at once).
replica.lag.time.max.ms=5000
EOF
	fi
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
}

kp_h_kafka_format() {
	local d=$1 uuid=$2
	kp_h_kafka_java -Dlog4j.configuration="file:$d/log4j.properties" \
		kafka.tools.StorageTool format -t "$uuid" -c "$d/server.properties" >>"$d/format.log" 2>&1 ||
		{ cat "$d/format.log" >&2; kp_h_die "StorageTool format failed ($d)"; return 1; }
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
	kp_h_kafka_write_config "$d" 1 127.0.0.1 "$port" "$cport" "1@127.0.0.1:$cport" 1
	uuid=$(kp_h_kafka_cluster_id)
	echo "$uuid" >"$d/cluster_id"
	kp_h_kafka_format "$d" "$uuid"
}

# kp_h_free_port_on HOST → a TCP port free on HOST (a loopback address).
kp_h_free_port_on() {
	python3 -c 'import socket, sys
s = socket.socket(); s.bind((sys.argv[1], 0)); print(s.getsockname()[1]); s.close()' "$1"
}

# N nodes; node I on 127.0.0.(I+1) with its own broker and controller port.
kp_h_kafka_init_cluster() {
	local n=$1 k=$KP_HARNESS_DIR/kafka d i host port cport voters="" uuid
	mkdir -p "$k"
	echo real >"$k/mode"
	echo "$n" >"$k/nodes"
	[[ -s $k/b1/data/meta.properties ]] && return 0
	for ((i = 1; i <= n; i++)); do
		d=$k/b$i host=127.0.0.$((i + 1))
		mkdir -p "$d"
		port=$(kp_h_free_port_on "$host")
		cport=$(kp_h_free_port_on "$host")
		while [[ $cport == "$port" ]]; do cport=$(kp_h_free_port_on "$host"); done
		echo "$host" >"$d/host"
		echo "$port" >"$d/port"
		echo "$cport" >"$d/cport"
		voters+=${voters:+,}$i@$host:$cport
	done
	uuid=$(kp_h_kafka_cluster_id)
	echo "$uuid" >"$k/cluster_id"
	for ((i = 1; i <= n; i++)); do
		d=$k/b$i
		kp_h_kafka_write_config "$d" "$i" "$(cat "$d/host")" "$(cat "$d/port")" "$(cat "$d/cport")" "$voters" "$n"
	done
	# StorageTool writes meta.properties (the only node-specific file: node.id
	# and a random directory.id) and bootstrap.checkpoint (the metadata.version
	# record; two formats differ only in its timestamps). So StorageTool runs
	# once per Kafka version and JDK, for node 1, its checkpoint is kept in
	# build/, and every node gets a copy and its own meta.properties: no JVM
	# start at all in the usual cluster start, on 2 busy cores.
	local ckpt
	ckpt=$(kp_h_kafka_cds_path)
	ckpt=${ckpt%.jsa}
	ckpt=${ckpt/kafka-cds-/kafka-bootstrap-}.checkpoint
	if [[ ! -s $ckpt ]]; then
		kp_h_kafka_format "$k/b1" "$uuid" || return 1
		cp "$k/b1/data/bootstrap.checkpoint" "$ckpt.$$" && mv -f "$ckpt.$$" "$ckpt"
	fi
	for ((i = 1; i <= n; i++)); do
		d=$k/b$i
		[[ -s $d/data/meta.properties ]] && continue # node 1, formatted just now
		mkdir -p "$d/data"
		cp "$ckpt" "$d/data/bootstrap.checkpoint" || return 1
		printf '#\n#written by the klinepipe test harness (what StorageTool format writes)\nnode.id=%s\ndirectory.id=%s\nversion=1\ncluster.id=%s\n' \
			"$i" "$(kp_h_kafka_cluster_id)" "$uuid" >"$d/data/meta.properties"
	done
}

kp_h_kafka_init_mock() {
	local d=$KP_HARNESS_DIR/kafka
	mkdir -p "$d"
	echo mock >"$d/mode"
}

kp_h_kafka_brokers() {
	case $(kp_h_kafka_mode) in
	real)
		local i out=""
		for i in $(kp_h_kafka_nodes); do
			out+=${out:+,}$(kp_h_kafka_node_addr "$(kp_h_kafka_node_dir "$i")")
		done
		echo "$out"
		;;
	mock) cat "$KP_HARNESS_DIR/kafka/brokers" ;;
	*) return 1 ;;
	esac
}

# kp_h_kafka_node_ready I → node I serves metadata that lists itself (the
# port opens before the broker has registered with its controller, and a
# fenced broker is not in the list; listed is what clients need).
kp_h_kafka_node_ready() {
	local i=$1 d addr
	if [[ $(kp_h_kafka_mode) == mock ]]; then
		addr=$(kp_h_kafka_brokers) || return 1
		addr=${addr%%,*}
		kp_h_port_open 127.0.0.1 "${addr##*:}" || return 1
		kcat -L -b "$addr" -m 2 -J 2>/dev/null | grep -q '"brokers":\[{'
		return
	fi
	d=$(kp_h_kafka_node_dir "$i") || return 1
	addr=$(kp_h_kafka_node_addr "$d")
	kp_h_port_open "${addr%:*}" "${addr##*:}" || return 1
	kcat -L -b "$addr" -m 2 -J 2>/dev/null | jq -e --argjson id "$i" 'any(.brokers[]; .id == $id)' >/dev/null 2>&1
}

kp_h_kafka_ready() {
	local i
	for i in $(kp_h_kafka_nodes); do kp_h_kafka_node_ready "$i" || return 1; done
}

kp_h_kafka_mock_bin() {
	local b
	for b in "${KP_TBIN:-}/kp-mock-cluster" "$KP_H_ROOT/build/release/tbin/kp-mock-cluster"; do
		[[ -x $b ]] && { echo "$b"; return 0; }
	done
	return 1
}

# The cgroup v2 directory of cluster node I ("" when cgroup v2 is not
# writable): its sockets are what kp_h_kafka_isolate matches, since a broker's
# own connections to the others leave from 127.0.0.1, not from its address.
kp_h_cgroup_root() { awk '$3 == "cgroup2" { print $2; exit }' /proc/mounts; }
kp_h_kafka_cgroup_rel() {
	echo "kp-harness-$(printf %s "$KP_HARNESS_DIR" | md5sum | cut -c1-10)/b$1"
}
kp_h_kafka_cgroup_make() {
	local i=$1 root rel
	root=$(kp_h_cgroup_root)
	[[ -n $root && -w $root ]] || return 0
	rel=$(kp_h_kafka_cgroup_rel "$i")
	mkdir -p "$root/$rel" 2>/dev/null && [[ -w $root/$rel/cgroup.procs ]] || return 0
	echo "$root/$rel/cgroup.procs"
}

# kp_h_kafka_spawn I → starts node I's JVM (or the mock) unless it runs; no wait.
kp_h_kafka_spawn() {
	local i=$1 d pid cp procs=""
	d=$(kp_h_kafka_node_dir "$i") || return 1
	pid=$(cat "$d/pid" 2>/dev/null || true)
	if kp_h_alive "$pid"; then
		kp_h_signal_group CONT "$pid"
		if [[ $(kp_h_kafka_mode) == mock && -e $d/mock_down ]]; then
			kill -USR2 "$pid" # brokers up again
			rm -f "$d/mock_down"
		fi
		return 0
	fi
	case $(kp_h_kafka_mode) in
	real)
		cp=$(kp_h_kafka_classpath) || { kp_h_die "Kafka classpath missing (run scripts/deps.sh)"; return 1; }
		kp_h_kafka_jvm_opts "$d"
		if kp_h_kafka_is_cluster; then
			procs=$(kp_h_kafka_cgroup_make "$i")
			[[ -n $procs ]] && kp_h_kafka_cgroup_rel "$i" >"$d/cgroup"
		fi
		KP_H_SPAWN_CGROUP=$procs kp_h_spawn "$d/pid" "$d/stdout.log" java "${KP_H_JVM_OPTS[@]}" \
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
	date +%s%3N >"$d/spawned_ms"
}

# kp_h_kafka_wait I → waits up to 60 s for node I; writes its start_ms.
kp_h_kafka_wait() {
	local i=$1 d pid t
	d=$(kp_h_kafka_node_dir "$i") || return 1
	pid=$(cat "$d/pid" 2>/dev/null || true)
	for ((t = 0; t < 1200; t++)); do
		kp_h_kafka_node_ready "$i" && break
		if ! kp_h_alive "$pid"; then
			tail -30 "$d/stdout.log" "$d/server.log" 2>/dev/null >&2
			kp_h_die "Kafka exited during start-up (logs in $d)"
			return 1
		fi
		sleep 0.05
	done
	kp_h_kafka_node_ready "$i" || { kp_h_die "Kafka not ready after 60 s (logs in $d)"; return 1; }
	[[ -s $d/spawned_ms ]] || return 0 # it was running already
	echo $(($(kp_h_now_ms) - $(cat "$d/spawned_ms"))) >"$d/start_ms"
	rm -f "$d/spawned_ms"
	# CPU time to ready does not depend on what else runs (wall time does)
	awk -v hz="$(getconf CLK_TCK)" '{ printf "%d\n", ($14 + $15) * 1000 / hz }' "/proc/$pid/stat" \
		>"$d/start_cpu_ms" 2>/dev/null || true
}

# kp_h_kafka_start [I] → node I, or every node (all JVMs at once, then the waits).
kp_h_kafka_start() {
	kp_h_require_dir || return 1
	local i nodes t0
	nodes=$(kp_h_kafka_nodes "${1:-}") || return 1
	t0=$(kp_h_now_ms)
	for i in $nodes; do kp_h_kafka_spawn "$i" || return 1; done
	for i in $nodes; do kp_h_kafka_wait "$i" || return 1; done
	KP_H_KAFKA_START_MS=$(($(kp_h_now_ms) - t0))
	[[ -z ${1:-} ]] && echo "$KP_H_KAFKA_START_MS" >"$KP_HARNESS_DIR/kafka/start_ms"
	return 0
}

# kp_h_kafka_stop [I] → controlled shutdown (SIGTERM) of node I or of every
# node at once; the log dirs are kept for kafka-start.
kp_h_kafka_stop() {
	kp_h_require_dir || return 1
	local i d pid nodes left=()
	nodes=$(kp_h_kafka_nodes "${1:-}") || return 1
	for i in $nodes; do
		d=$(kp_h_kafka_node_dir "$i")
		pid=$(cat "$d/pid" 2>/dev/null || true)
		kp_h_alive "$pid" || continue
		kp_h_signal_group CONT "$pid"
		if [[ $(kp_h_kafka_mode) == mock ]]; then
			# The mock cluster keeps its data only in memory: "stop" takes its
			# brokers down instead of ending the process.
			kill -USR1 "$pid"
			touch "$d/mock_down"
			continue
		fi
		kill -TERM "$pid" 2>/dev/null
		left+=("$i:$pid")
	done
	local e
	for e in "${left[@]}"; do
		i=${e%%:*} pid=${e#*:}
		if ! kp_h_wait_gone 60 "$pid"; then
			kp_h_log "Kafka node $i did not stop in 60 s; killing it"
			kp_h_signal_group KILL "$pid"
			kp_h_wait_gone 5 "$pid"
		fi
		kp_h_kafka_cds_done "$(kp_h_kafka_node_dir "$i")"
	done
	return 0
}

kp_h_kafka_kill() {
	kp_h_require_dir || return 1
	local i d pid nodes
	nodes=$(kp_h_kafka_nodes "${1:-}") || return 1
	for i in $nodes; do
		d=$(kp_h_kafka_node_dir "$i")
		pid=$(cat "$d/pid" 2>/dev/null || true)
		kp_h_alive "$pid" || continue
		if [[ $(kp_h_kafka_mode) == mock ]]; then
			kp_h_signal_group CONT "$pid"
			kill -USR1 "$pid"
			touch "$d/mock_down"
			continue
		fi
		kp_h_signal_group KILL "$pid"
		kp_h_wait_gone 10 "$pid"
		kp_h_kafka_cds_done "$d"
	done
	return 0
}

# After a broker exits: keep a complete archive, or let a later start retry.
kp_h_kafka_cds_done() {
	local jsa
	jsa=$(cat "$1/cds_pending" 2>/dev/null) || return 0
	rm -f "$1/cds_pending"
	# -Xshare:on refuses an archive it cannot map (e.g. a JVM killed mid-dump)
	if [[ -s $jsa.tmp ]] && java -Xshare:on -XX:SharedArchiveFile="$jsa.tmp" \
		-cp "$(kp_h_kafka_classpath)" -version >/dev/null 2>&1; then
		mv -f "$jsa.tmp" "$jsa"
	else
		rm -f "$jsa.tmp"
	fi
	rmdir "$jsa.lock" 2>/dev/null || true
}

# kp_h_kafka_signal SIG [I] → SIGSTOP/SIGCONT node I or every node.
kp_h_kafka_signal() {
	local sig=$1 i nodes
	nodes=$(kp_h_kafka_nodes "${2:-}") || return 1
	for i in $nodes; do
		kp_h_signal_group "$sig" "$(cat "$(kp_h_kafka_node_dir "$i")/pid" 2>/dev/null || true)"
	done
}
kp_h_kafka_pause() { kp_h_kafka_signal STOP "${1:-}"; }
kp_h_kafka_resume() { kp_h_kafka_signal CONT "${1:-}"; }

# ------------------------------------------------ cutting a cluster node off
#
# iptables (nf_tables backend) rules in a chain of this harness, jumped to
# from OUTPUT (loopback traffic passes OUTPUT once per packet): one drops
# what is sent to the node's ports on its address (clients and the other
# nodes reaching it), one drops what the node's own sockets send (its cgroup:
# replies, and its connections to the others, which leave from 127.0.0.1).
# Rules name this harness's addresses, ports and cgroup only, so other
# harnesses on the machine are not touched.

kp_h_net_chain() { echo "KPH-$(printf %s "$KP_HARNESS_DIR" | md5sum | cut -c1-10)"; }

kp_h_net_rules() {
	local i=$1 d
	d=$(kp_h_kafka_node_dir "$i") || return 1
	[[ -s $d/cgroup ]] || { kp_h_die "node $i runs in no cgroup of its own (cgroup v2 not writable?): it cannot be cut off"; return 1; }
	KP_H_NET_RULES=("-d $(kp_h_kafka_node_host "$d")/32 -p tcp -m multiport --dports $(cat "$d/port"),$(cat "$d/cport") -j DROP"
		"-m cgroup --path $(cat "$d/cgroup") -j DROP")
}

kp_h_kafka_isolate() {
	kp_h_require_dir || return 1
	kp_h_kafka_is_cluster || { kp_h_die "isolate needs a cluster harness (--kafka-cluster N)"; return 1; }
	command -v iptables >/dev/null || { kp_h_die "iptables is missing (scripts/deps.sh)"; return 1; }
	local i=$1 chain r
	kp_h_net_rules "$i" || return 1
	chain=$(kp_h_net_chain)
	iptables -w -N "$chain" 2>/dev/null || true
	iptables -w -C OUTPUT -j "$chain" 2>/dev/null || iptables -w -I OUTPUT 1 -j "$chain" || return 1
	for r in "${KP_H_NET_RULES[@]}"; do
		# shellcheck disable=SC2086 # a rule is words
		iptables -w -C "$chain" $r 2>/dev/null || iptables -w -A "$chain" $r || return 1
	done
	touch "$(kp_h_kafka_node_dir "$i")/isolated"
}

kp_h_kafka_heal() {
	kp_h_require_dir || return 1
	kp_h_kafka_is_cluster || return 0
	local i nodes chain r
	nodes=$(kp_h_kafka_nodes "${1:-}") || return 1
	chain=$(kp_h_net_chain)
	for i in $nodes; do
		[[ -e $(kp_h_kafka_node_dir "$i")/isolated ]] || continue
		kp_h_net_rules "$i" || return 1
		for r in "${KP_H_NET_RULES[@]}"; do
			# shellcheck disable=SC2086
			while iptables -w -D "$chain" $r 2>/dev/null; do :; done
		done
		rm -f "$(kp_h_kafka_node_dir "$i")/isolated"
	done
}

# Removes this harness's chain and cgroups (at `down`).
kp_h_kafka_net_down() {
	kp_h_kafka_is_cluster || return 0
	local chain root i
	chain=$(kp_h_net_chain)
	if command -v iptables >/dev/null && iptables -w -n -L "$chain" >/dev/null 2>&1; then
		while iptables -w -D OUTPUT -j "$chain" 2>/dev/null; do :; done
		iptables -w -F "$chain" && iptables -w -X "$chain"
	fi
	rm -f "$KP_HARNESS_DIR"/kafka/b*/isolated
	root=$(kp_h_cgroup_root)
	[[ -n $root ]] || return 0
	for i in $(kp_h_kafka_nodes); do
		rmdir "$root/$(kp_h_kafka_cgroup_rel "$i")" 2>/dev/null || true
	done
	rmdir "$root/$(dirname "$(kp_h_kafka_cgroup_rel 1)")" 2>/dev/null || true
}

# ------------------------------------------------ who leads what

# kp_h_kafka_partition TOPIC [PARTITION] → "leader=L replicas=a,b,c isr=a,b"
# from the metadata a broker gives at this moment (-1: no leader).
kp_h_kafka_partition() {
	local topic=$1 part=${2:-0}
	kcat -L -b "$(kp_h_kafka_brokers)" -t "$topic" -m 5 -J 2>/dev/null |
		jq -er --arg t "$topic" --argjson p "$part" '
			.topics[] | select(.topic == $t) | .partitions[] | select(.partition == $p) |
			"leader=\(.leader) replicas=\([.replicas[].id] | sort | join(",")) isr=\([.isrs[].id] | sort | join(","))"' ||
		{ kp_h_die "no metadata for $topic[$part]"; return 1; }
}

# kp_h_kafka_controller [quorum.py options] → the active controller (the KRaft
# quorum leader), asked of every controller listener (tests/harness/quorum.py).
kp_h_kafka_controller() {
	local i d addrs=()
	for i in $(kp_h_kafka_nodes); do
		d=$(kp_h_kafka_node_dir "$i")
		addrs+=("$(kp_h_kafka_node_host "$d"):$(cat "$d/cport")")
	done
	python3 "$KP_H_ROOT/tests/harness/quorum.py" "$@" "${addrs[@]}"
}

# kp_h_kafka_node_lists I → the broker ids node I's own metadata lists ("1,2,3"; a
# fenced or stopped node is not listed)
kp_h_kafka_node_lists() {
	local d
	d=$(kp_h_kafka_node_dir "$1") || return 1
	kcat -L -b "$(kp_h_kafka_node_addr "$d")" -m 3 -J 2>/dev/null |
		jq -r '[.brokers[].id] | sort | join(",")' 2>/dev/null
}

# kp_h_kafka_node_sees_all I → node I lists every node as a broker (a node just back
# from an isolation still lists everyone from its stale view, so only all nodes'
# answers together count)
kp_h_kafka_node_sees_all() {
	[[ $(kp_h_kafka_node_lists "$1") == "$(kp_h_kafka_nodes | paste -sd,)" ]]
}

# kp_h_kafka_whole → a quorum leader with every voter caught up, and every node
# listing every node as a broker
kp_h_kafka_whole() {
	local i
	kp_h_kafka_controller --whole >/dev/null 2>&1 || return 1
	for i in $(kp_h_kafka_nodes); do kp_h_kafka_node_sees_all "$i" || return 1; done
}

# kp_h_kafka_settled [SECS] → waits up to SECS (default 90) until the cluster is
# whole again (kp_h_kafka_whole). What is still missing is printed when it gives up.
kp_h_kafka_settled() {
	kp_h_require_dir || return 1
	kp_h_kafka_is_cluster || return 0
	local secs=${1:-90} t0 i
	t0=$(kp_h_now_ms)
	until kp_h_kafka_whole; do
		if (($(kp_h_now_ms) - t0 >= secs * 1000)); then
			kp_h_log "Kafka cluster not whole after $secs s: $(kp_h_kafka_controller --verbose --whole 2>&1)"
			for i in $(kp_h_kafka_nodes); do
				kp_h_log "  node $i lists brokers: $(kp_h_kafka_node_lists "$i")"
			done
			return 1
		fi
		sleep 0.5
	done
}

kp_h_kafka_version() {
	case $(kp_h_kafka_mode) in
	real)
		local v d
		d=$(kp_h_kafka_node_dir 1)
		v=$(sed -n 's/.*Kafka version: \([^ ]*\).*/\1/p' "$d/server.log" 2>/dev/null | tail -1)
		if kp_h_kafka_is_cluster; then
			echo "Apache Kafka ${v:-$(kp_h_kafka_jar_version)} (KRaft cluster of $(kp_h_kafka_count) nodes, each broker+controller, real JVM brokers)"
		else
			echo "Apache Kafka ${v:-$(kp_h_kafka_jar_version)} (KRaft, broker+controller, real JVM broker)"
		fi
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
		echo "export KP_KAFKA_NODES='$(kp_h_kafka_count)'"
	} >"$f.tmp" && mv "$f.tmp" "$f"
}

# Chooses the broker: KP_KAFKA=real|mock|auto (default auto: real when the jars
# resolved and java exists); KP_KAFKA_CLUSTER=N (N >= 2, real brokers only)
# makes it a cluster of N nodes instead of one broker.
kp_h_kafka_choose() {
	local want=${KP_KAFKA:-auto} have_real=0 nodes=${KP_KAFKA_CLUSTER:-1}
	if [[ -s $KP_HARNESS_DIR/kafka/mode ]]; then
		# an existing --data-dir keeps its broker kind and size
		[[ $(kp_h_kafka_count) == "$nodes" ]] ||
			{ kp_h_die "$KP_HARNESS_DIR holds $(kp_h_kafka_count) Kafka node(s), not $nodes"; return 1; }
		return 0
	fi
	[[ $nodes =~ ^[1-9]$ ]] || { kp_h_die "KP_KAFKA_CLUSTER must be a node count 1..9"; return 1; }
	command -v java >/dev/null && kp_h_kafka_classpath >/dev/null && have_real=1
	case $want in
	real)
		((have_real)) || { kp_h_die "KP_KAFKA=real but the Kafka jars or java are missing (run scripts/deps.sh)"; return 1; }
		;;
	mock) have_real=0 ;;
	auto) ;;
	*) kp_h_die "KP_KAFKA must be real, mock or auto"; return 1 ;;
	esac
	if ((nodes > 1)); then
		((have_real)) || { kp_h_die "a Kafka cluster needs the real broker (jars + java; run scripts/deps.sh)"; return 1; }
		kp_h_kafka_init_cluster "$nodes"
	elif ((have_real)); then
		kp_h_kafka_init_real
	else
		kp_h_kafka_init_mock
	fi
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
	if kp_h_kafka_is_cluster; then
		local i per=""
		for i in $(kp_h_kafka_nodes); do
			per+=" node $i $(cat "$KP_HARNESS_DIR/kafka/b$i/start_ms") ms (JVM CPU $(cat "$KP_HARNESS_DIR/kafka/b$i/start_cpu_ms" 2>/dev/null) ms);"
		done
		kp_h_log "Kafka cluster: every node started at once; process start to listed in its own metadata:${per%;}"
	fi
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
		# a node cut off could not finish its controlled shutdown
		kp_h_kafka_heal
		kp_h_kafka_stop
	fi
	kp_h_pg_stop
	# Anything left in any group (a stuck child) goes too.
	local i
	for i in $(kp_h_kafka_nodes); do
		pid=$(cat "$(kp_h_kafka_node_dir "$i")/pid" 2>/dev/null || true)
		[[ -n $pid ]] && kp_h_signal_group KILL "$pid"
	done
	pid=$(kp_h_pidof pg)
	[[ -n $pid ]] && kp_h_signal_group KILL "$pid"
	kp_h_kafka_net_down
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

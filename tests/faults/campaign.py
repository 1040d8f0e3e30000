#!/usr/bin/env python3
"""tests/faults/campaign.py — the system proof: the whole pipeline under faults.

Runs the four programs as separate processes (kline-producer, kline-inserter,
kline-aggregator --every, kline-streamer) against the simulated exchange
(kline-sim, accelerated), a real Kafka broker and a real PostgreSQL (the test
harness), injects a seeded random sequence of faults, lets the pipeline drain,
and compares everything with the exchange's truth (GET /truth). Prints one
table and one summary line per table, e.g.

    klines: 72000 expected, 72000 in kline_1s, 0 missing, 0 doubled, 0 wrong

Exit 0 iff every missing/doubled/wrong/extra cell is 0 (and nothing crashed on
its own); 1 otherwise; 2 on a usage or environment error.

Needs a running harness: KP_HARNESS_DIR (tests/harness/up or tests/run.sh),
DATABASE_URL, KAFKA_BROKERS, KP_PG_PORT; KP_BIN and KP_TBIN for the binaries.
python3 stdlib only. See docs/faults.md.

The soak (bench/soak.sh, docs/storage.md "Soak"): --retain and --compact-after go to the
aggregator, which (and the inserter) then run on the sim's clock (KP_TEST_CLOCK), so that
retention and compaction follow the accelerated time; --sample-secs writes samples.csv
(RSS of every program, database size, partitions, dead tuples, consumer lag); the truth
becomes retention-aware: rows of the partitions retention may drop by the end ("expired")
must be gone, every other row equal to the truth. --no-kafka-check skips re-reading the
topic at the end.

--cluster: against the 3-node KRaft harness (tests/harness/up --kafka-cluster 3), a
topic of RF 3, several instances of the programs that can run several times (a
hot-standby producer pair, --inserters in one group, a streamer pair) and the
cluster's faults instead of the single broker's (leader and controller kill -9, a
rolling restart, a node paused or isolated); the same truth table.
"""

import argparse
import json
import os
import random
import re
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections import Counter, defaultdict
from itertools import groupby
from decimal import Decimal

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import kpws  # noqa: E402

ROOT = os.path.abspath(os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", ".."))
T_START = time.monotonic()

# Numeric fields compared as decimals; integer fields compared exactly.
DEC_FIELDS = ("open", "high", "low", "close", "volume", "quote_volume",
              "taker_buy_volume", "taker_buy_quote_volume")
INT_FIELDS = ("close_time", "trades")
SUM_FIELDS = ("volume", "quote_volume", "taker_buy_volume", "taker_buy_quote_volume")


def die(msg):
    """Environment/usage problem: exit 2, as every program here."""
    print(f"campaign: {msg}", file=sys.stderr)
    sys.exit(2)


def log(msg):
    print(f"[{time.monotonic() - T_START:7.1f}s] {msg}", flush=True)


class Env:
    """Addresses and binaries of the running harness."""

    def __init__(self):
        hd = os.environ.get("KP_HARNESS_DIR")
        if hd and (not os.environ.get("DATABASE_URL") or not os.environ.get("KAFKA_BROKERS")):
            for line in open(os.path.join(hd, "env")):
                m = re.match(r"export (\w+)='(.*)'", line.strip())
                if m:
                    os.environ.setdefault(m.group(1), m.group(2))
        missing = [v for v in ("KP_HARNESS_DIR", "DATABASE_URL", "KAFKA_BROKERS", "KP_PG_PORT")
                   if not os.environ.get(v)]
        if missing:
            die(f"needs a running harness ({', '.join(missing)} unset); "
                "start tests/harness/up or run through tests/run.sh")
        self.harness = os.environ["KP_HARNESS_DIR"]
        self.brokers = os.environ["KAFKA_BROKERS"]
        self.pg_port = os.environ["KP_PG_PORT"]
        self.bin = os.environ.get("KP_BIN", os.path.join(ROOT, "bin"))
        self.tbin = os.environ.get("KP_TBIN", os.path.join(ROOT, "build/release/tbin"))
        self.ctl = os.path.join(ROOT, "tests/harness/ctl")
        self.nodes = int(os.environ.get("KP_KAFKA_NODES") or 1)
        for p in ("kline-producer", "kline-inserter", "kline-aggregator", "kline-streamer"):
            if not os.access(os.path.join(self.bin, p), os.X_OK):
                die(f"{self.bin}/{p} missing (make -j2)")
        if not os.access(os.path.join(self.tbin, "kline-sim"), os.X_OK):
            die(f"{self.tbin}/kline-sim missing (make testbins)")

    def admin_url(self):
        return f"postgresql://postgres@127.0.0.1:{self.pg_port}/postgres"

    def harness_ctl(self, *cmd):
        """tests/harness/ctl CMD [ARGS]; returns its stdout, stripped."""
        r = subprocess.run([self.ctl, *cmd], capture_output=True, text=True,
                           env=dict(os.environ, KP_HARNESS_DIR=self.harness), timeout=180)
        if r.returncode != 0:
            raise RuntimeError(f"ctl {' '.join(cmd)} failed: {r.stderr.strip()[-300:]}")
        return r.stdout.strip()


def psql(url, sql, timeout=120):
    r = subprocess.run(["psql", url, "-XAtq", "-v", "ON_ERROR_STOP=1", "-F", "\t", "-c", sql],
                       capture_output=True, text=True, timeout=timeout)
    if r.returncode != 0:
        raise RuntimeError(f"psql: {r.stderr.strip()[:300]}")
    return r.stdout


def psql_try(url, sql, timeout=20):
    try:
        return psql(url, sql, timeout)
    except (RuntimeError, subprocess.TimeoutExpired):
        return None


def free_port(env):
    return int(subprocess.run([env.ctl, "free-port"], capture_output=True, text=True).stdout)


def http_get(url, timeout=30):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read()


class Proc:
    """One program of the pipeline: start, kill -9, restart, stop; logs appended to a file.

    Each runs in its own session so that kill -9 reaches only it (and its threads)."""

    def __init__(self, name, argv, logdir, env=None):
        self.name, self.argv, self.env = name, argv, env
        self.logpath = os.path.join(logdir, f"{name}.log")
        self.p = None
        self.starts = 0
        self.crashes = []  # (time, exit code) of exits we did not cause
        self.fatal_restarts = []  # (time, reason): exit 1 on a librdkafka fatal error
        self.log_pos = 0      # where the running instance's log starts
        self.stopping = False
        self.cpu_done = 0.0   # CPU seconds of the instances that ended
        self.cpu_cur = 0.0    # of the running one, at the last sample
        self.rss_max = 0      # kB, any instance
        self.rss_now = 0      # kB, at the last sample
        self.rss_samples = []

    def sample(self):
        """CPU seconds and RSS of the running instance, from /proc (Linux)."""
        if not self.alive():
            return
        try:
            with open(f"/proc/{self.p.pid}/stat") as f:
                fields = f.read().rsplit(")", 1)[1].split()
            self.cpu_cur = (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
            with open(f"/proc/{self.p.pid}/status") as f:
                for line in f:
                    if line.startswith("VmRSS:"):
                        rss = self.rss_now = int(line.split()[1])
                        self.rss_max = max(self.rss_max, rss)
                        self.rss_samples.append(rss)
        except (OSError, IndexError, ValueError):
            pass

    def cpu_total(self):
        return self.cpu_done + self.cpu_cur

    def _ended(self):
        self.cpu_done += self.cpu_cur
        self.cpu_cur = 0.0

    def start(self):
        if self.cpu_cur:
            self._ended()
        # Retried: the binary may be being rebuilt (ETXTBSY/EACCES for a moment) by a
        # concurrent `make` on a shared tree.
        for attempt in range(60):
            try:
                with open(self.logpath, "ab") as lf:
                    self.log_pos = lf.tell()
                    lf.write(f"=== start #{self.starts + 1} at +{time.monotonic() - T_START:.1f}s: "
                             f"{' '.join(self.argv)}\n".encode())
                    lf.flush()
                    self.p = subprocess.Popen(self.argv, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                              stderr=lf, start_new_session=True, env=self.env)
                break
            except OSError as e:
                if attempt == 59:
                    raise
                log(f"{self.name}: cannot start ({e}); retrying")
                time.sleep(0.5)
        self.starts += 1

    def alive(self):
        return self.p is not None and self.p.poll() is None

    def kafka_fatal(self):
        """The librdkafka fatal error this instance logged ("kafka fatal error: ..."), or None."""
        try:
            with open(self.logpath, "rb") as f:
                f.seek(self.log_pos)
                text = f.read().decode(errors="replace")
        except OSError:
            return None
        m = re.search(r"kafka fatal error: (.{0,160})", text)
        return m.group(1) if m else None

    def kill9(self):
        """Leaves the program down (p = None) until start(): not a crash."""
        if self.alive():
            self.sample()
            os.kill(self.p.pid, signal.SIGKILL)
            self.p.wait()
        self._ended()
        self.p = None

    def stop(self, timeout=30):
        """SIGTERM, wait; returns the exit code (None if it had to be killed)."""
        if self.p is None:
            return None
        if self.p.poll() is not None:
            return self.p.returncode
        self.stopping = True
        self.sample()
        os.kill(self.p.pid, signal.SIGTERM)
        try:
            return self.p.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(self.p.pid, signal.SIGKILL)
            self.p.wait()
            return None

    def check_crash(self):
        """A program that exited while we did not stop it is a finding: record and restart."""
        if self.p is not None and self.p.poll() is not None and not self.stopping:
            rc = self.p.returncode
            fatal = self.kafka_fatal() if rc == 1 else None
            if fatal:
                # librdkafka 2.0.2's idempotent producer can raise a fatal "out of order
                # sequence number" on a leader change (librdkafka #4438, fixed in 2.3.0);
                # the producer then exits 1 as documented (docs/producer.md, exit codes)
                # and its supervisor (systemd Restart=, compose restart:) starts it again,
                # resuming from the topic. Counted and reported apart, not as a crash.
                self.fatal_restarts.append((round(time.monotonic() - T_START, 1), fatal))
                log(f"!! {self.name} exited 1 on a Kafka fatal error ({fatal}); restarting, as its "
                    "supervisor would")
                self.start()
                return
            self.crashes.append((round(time.monotonic() - T_START, 1), rc))
            log(f"!! {self.name} exited on its own with status {rc} (see {self.logpath}); restarting")
            if len(self.crashes) > 10:
                raise RuntimeError(f"{self.name} keeps exiting; giving up")
            self.start()


# ---------------------------------------------------------------- faults

# name -> (estimated seconds it takes, kind counted in the table)
FAULTS = {
    "kill9-producer": 4, "kill9-producer2": 4, "kill9-inserter": 4, "kill9-aggregator": 4, "kill9-streamer": 4,
    "kafka-kill": 20, "kafka-pause": None, "pg-stop": 10, "pg-pause": None,
    "ex-close": 1, "ex-close-abrupt": 1, "ex-shutdown": 2, "ex-stall": 7, "ex-refuse": 7,
    "ex-malformed": 1, "ex-oversized": 1, "ex-duplicate": 1, "ex-reorder": 1, "ex-rest429": 4,
}


# The cluster's own faults (--cluster); None: --pause-secs plus the time to rejoin.
# Each waits first until every partition has its 3 replicas in sync, so that two
# faults never overlap into two nodes down (no quorum: a stop, not a fault).
CLUSTER_FAULTS = {
    "kafka-kill-leader": 40, "kafka-kill-controller": 40, "kafka-rolling": 120,
    "kafka-pause-node": None, "kafka-isolate": None,
}
FAULTS.update(CLUSTER_FAULTS)


def fault_plan(args, rng):
    """The list of faults of this campaign (before random timing)."""
    k = args.rounds
    if args.faults is not None:
        # a chosen list, in its order (e.g. alternating kills of a producer pair)
        return [f for f in args.faults.split(",") if f and f != "none"] * k
    plan = []
    if args.cluster:
        # kill -9 of one instance of each program (of a pair / group: a random one) and
        # every cluster fault, k rounds; the exchange's faults are the single-broker
        # campaign's subject and are left out. Each round holds every kind once (shuffled
        # within the round), so a run that overruns its window loses faults of the last
        # round, never every instance of a kind; the rolling restart, the longest by far
        # (1-3 minutes on a loaded 2-core machine), opens each round.
        for _ in range(k):
            rnd = ["kill9-producer", "kill9-inserter", "kill9-aggregator", "kill9-streamer"]
            rnd += [f for f in CLUSTER_FAULTS if f != "kafka-rolling"]
            rng.shuffle(rnd)
            plan += ["kafka-rolling"] + rnd
        return plan
    for _ in range(k):
        plan += ["kill9-producer", "kill9-inserter", "kill9-aggregator", "kill9-streamer"]
    plan += ["kafka-kill", "pg-stop"] * max(1, k - 1)
    plan += ["kafka-pause", "pg-pause"]
    ex = ["ex-close", "ex-close-abrupt", "ex-shutdown", "ex-stall", "ex-refuse", "ex-malformed",
          "ex-oversized", "ex-duplicate", "ex-reorder", "ex-rest429"]
    plan += ex * max(1, k - 1)
    rng.shuffle(plan)
    return plan


def estimate(name, args):
    e = FAULTS[name]
    if e is None:
        return args.pause_secs + (15 if name in CLUSTER_FAULTS else 1)
    return e


class PageWatch:
    """A browser's view for the whole run: subscribed to every symbol, it counts live
    updates that repeat the bar it showed last (same open_time, closed, values)."""

    FIELDS = ("open_time", "close_time", "closed", "open", "high", "low", "close", "volume",
              "quote_volume", "trades", "taker_buy_volume", "taker_buy_quote_volume")

    def __init__(self, host, port, symbols):
        self.host, self.port, self.symbols = host, port, symbols
        self.updates = self.repeats = 0
        self.examples = []
        self.err = None
        self.run = True
        self.t = threading.Thread(target=self.loop, daemon=True)
        self.t.start()

    def loop(self):
        last = {}
        try:
            ws = self.connect()
            ws.send_json({"op": "subscribe", "symbols": self.symbols if len(self.symbols) <= 100 else ["*"]})
            while self.run:
                try:
                    msg = ws.recv_json()
                except OSError:  # a timeout: no update in 2 s
                    continue
                live = msg.get("type") != "snapshot"
                for u in kpws.updates(msg):
                    k = u.get("kline") or {}
                    key = tuple(k.get(f) for f in self.FIELDS)
                    sym = k.get("symbol")
                    if live:
                        self.updates += 1
                        if last.get(sym) == key:
                            self.repeats += 1
                            if len(self.examples) < 5:
                                self.examples.append(f"{sym} {k.get('open_time')}")
                    last[sym] = key
            ws.close()
        except (OSError, kpws.WsError, ValueError) as e:
            self.err = str(e)

    def connect(self):
        """The streamer was started a moment ago: wait for it to listen (30 s)."""
        for _ in range(150):
            try:
                return kpws.WS(self.host, self.port, "/ws", timeout=2)
            except ConnectionRefusedError:
                time.sleep(0.2)
        return kpws.WS(self.host, self.port, "/ws", timeout=2)

    def stop(self):
        self.run = False
        self.t.join(10)
        if self.err:
            log(f"page watch: {self.err}")
        return {"page.updates": self.updates, "page.repeats": self.repeats, "page.error": self.err,
                "page.examples": self.examples}


class Watchers:
    """Browsers left open all run: kp-wsload clients on the streamer, each following a few
    symbols. None may be closed by the server or fail to connect, and they must keep
    getting updates. Their latency is not judged: event_time is the sim's clock."""

    def __init__(self, env, port, symbols, n, per_client, out):
        self.n = n
        self.result = {"clean": False}  # filled by stop()
        self.json_path = os.path.join(out, "watchers.json")
        argv = [os.path.join(env.tbin, "kp-wsload"), "--port", str(port), "-n", str(n),
                "--symbols", ",".join(symbols), "--per-client", str(per_client),
                "--engine", "lws", "--duration", str(20 * 86400)]  # lws answers the server's pings; until stop()
        with open(self.json_path, "wb") as so, open(os.path.join(out, "watchers.log"), "ab") as se:
            self.p = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=so, stderr=se,
                                      start_new_session=True)

    def stop(self):
        """{watchers.*: ...}: kp-wsload's summary line and whether it is clean."""
        rc = self.p.poll()
        left_early = rc is not None  # it ended before the run did: its clients were not there
        if rc is None:
            self.p.terminate()
            try:
                rc = self.p.wait(60)
            except subprocess.TimeoutExpired:
                self.p.kill()
                rc = self.p.wait()
        try:
            with open(self.json_path) as f:
                summary = json.loads(f.read().strip().splitlines()[-1])
        except (OSError, ValueError, IndexError) as e:
            log(f"watchers: no summary ({e}), exit {rc}")
            summary = {}
        w = {k: summary.get(k) for k in ("clients", "connected", "failed", "closed", "messages", "klines")}
        w.update(exit=rc, left_early=left_early)
        # every client stayed connected and got updates; the client itself exited 0
        w["clean"] = (rc == 0 and not left_early and w["connected"] == self.n and w["failed"] == 0
                      and w["closed"] == 0 and (w["klines"] or 0) > 0)
        self.result = w  # the report's line and result.json's "watchers" (soak_report.py)
        return {f"watchers.{k}": v for k, v in w.items()}


class Campaign:
    def __init__(self, args, env):
        self.a, self.env = args, env
        self.rng = random.Random(args.seed)
        self.injected = Counter()
        self.skipped = Counter()
        self.events = []
        self.procs = {}
        self.sim = None
        self.next_sample = 0.0
        self.backlog_peak = 0
        self.backlog_series = []   # (t, klines owed by the producer)
        self.t_last_fault = None
        self.drain_secs = None
        self.next_row = 0.0
        self.csv = None
        self.cut = None

    # ------------------------------------------------------------ set-up

    def setup(self):
        a, env = self.a, self.env
        self.out = a.out
        os.makedirs(self.out, exist_ok=True)
        tag = f"{os.getpid()}_{self.rng.randrange(1 << 30):x}"
        self.db = f"kpfaults_{tag}"
        psql(env.admin_url(), f'create database "{self.db}"')
        self.url = f"postgresql://postgres@127.0.0.1:{env.pg_port}/{self.db}"
        self.topic = f"kpfaults-{tag}".replace("_", "-")
        r = subprocess.run([os.path.join(env.tbin, "kp-topic"), "-b", env.brokers, "create", self.topic,
                            str(a.partitions)] + (["3"] if a.cluster else []), capture_output=True, text=True, timeout=60)
        if r.returncode != 0:
            raise RuntimeError(f"kp-topic create: {r.stderr.strip()}")
        self.group = f"kpfaults-ins-{tag}"
        # A minute-aligned start at the next minute: every minute of the run is whole,
        # and the accelerated sim clock stays AHEAD of the wall clock, as a real exchange's
        # clock is never far behind ours (the producer bounds its start-up REST catch-up by
        # the local clock; see docs/faults.md).
        now_ms = int(time.time() * 1000)
        self.t0 = (now_ms // 60000 + 1) * 60000
        self.secs = a.sim_seconds
        port_file = os.path.join(self.out, "sim.port")
        if os.path.exists(port_file):
            os.unlink(port_file)
        sim_argv = [os.path.join(env.tbin, "kline-sim"), "--listen", "127.0.0.1:0", "--port-file", port_file,
                    "--num-symbols", str(a.symbols), "--seed", str(a.seed), "--start-time", str(self.t0),
                    "--speed", str(a.speed), "--duration", str(self.secs), "--log-level", "warn"]
        self.sim = Proc("kline-sim", sim_argv, self.out)
        self.sim.start()
        for _ in range(100):
            if os.path.exists(port_file):
                break
            time.sleep(0.1)
        else:
            raise RuntimeError("kline-sim did not write its port file")
        self.sim_port = int(open(port_file).read().strip())
        self.sim_url = f"http://127.0.0.1:{self.sim_port}"
        # the programs that judge "now" by data time follow the sim's clock (--retain /
        # --compact-after): one anchor for all, the sim's own real start
        self.real0 = self.control("stats").get("real0_ms") or int(time.time() * 1000)
        self.clock_env = None
        if a.retain or a.compact_after:
            self.clock_env = dict(os.environ, KP_TEST_CLOCK=f"{self.t0}@{self.real0}:{a.speed:g}")
        info = json.loads(http_get(f"{self.sim_url}/api/v3/exchangeInfo"))
        self.symbols = sorted(s["symbol"] for s in info["symbols"] if s["status"] == "TRADING")
        if len(self.symbols) != a.symbols:
            raise RuntimeError(f"sim lists {len(self.symbols)} trading symbols, expected {a.symbols}")
        b = env.bin
        common = ["--stats-interval", "10", "--log-level", "info"]
        # --cluster: several instances where a deployment runs several (README "Running on
        # several machines"); the first of each keeps the single-broker campaign's name
        n_prod, n_ins, n_st = (2, a.inserters, 2) if a.cluster else (a.producers, 1, 1)
        self.instances = {k: [k if i == 0 else f"{k}{i + 1}" for i in range(n)]
                          for k, n in (("producer", n_prod), ("inserter", n_ins), ("aggregator", 1),
                                       ("streamer", n_st))}
        self.procs = {}
        self.ins_ports = {}
        for name in self.instances["inserter"]:
            # every inserter serves /metrics: its consumer lag decides the drain when doubles
            # (a producer pair, a re-sent take-back) leave no checkpoint behind
            port = self.ins_ports[name] = free_port(env)
            argv = [f"{b}/kline-inserter", "-b", env.brokers, "-t", self.topic, "-g", self.group, "-d", self.url,
                    "--metrics-port", str(port)]
            self.procs[name] = Proc(name, argv + common, self.out, self.clock_env)
        self.agg_extra = (["--retain", a.retain] if a.retain else []) + \
            (["--compact-after", a.compact_after] if a.compact_after else [])
        self.procs["aggregator"] = Proc("aggregator", [f"{b}/kline-aggregator", "--every", "5", "-d", self.url]
                                        + self.agg_extra + common, self.out, self.clock_env)
        self.st_ports = {}
        for name in self.instances["streamer"]:
            port = self.st_ports[name] = free_port(env)
            self.procs[name] = Proc(name, [f"{b}/kline-streamer", "-b", env.brokers, "-t", self.topic,
                                           "-d", self.url, "--listen", f"127.0.0.1:{port}",
                                           # the final check reads every symbol, after a drain
                                           # that can outlast the exchange by minutes: nothing
                                           # may be left out of its snapshot as stale
                                           "--stale-secs", "86400"]
                                    + common, self.out)
        self.st_port = self.st_ports["streamer"]
        self.ins_port = self.ins_ports["inserter"]
        # First start from the sim's first second; restarts resume from the topic (what we
        # test). A hot-standby pair: the same symbols and topic on both.
        penv = dict(os.environ, **dict(kv.split("=", 1) for kv in a.producer_env)) if a.producer_env else None
        self.prod_metrics_ports, self.first_argv = [], {}
        for name in self.instances["producer"]:
            port = free_port(env)
            self.prod_metrics_ports.append(port)
            prod = [f"{b}/kline-producer", "-s", ",".join(self.symbols), "-b", env.brokers, "-t", self.topic,
                    "--ws-url", f"ws://127.0.0.1:{self.sim_port}", "--rest-url", self.sim_url,
                    "--watchdog-secs", "3", "--metrics-port", str(port)] + common
            self.procs[name] = Proc(name, prod, self.out, penv)
            self.first_argv[name] = prod + ["--since", str(self.t0)]
        self.prod_ports = dict(zip(self.instances["producer"], self.prod_metrics_ports))
        self.prod_metrics_port = self.prod_metrics_ports[0]
        log(f"campaign seed {a.seed}: {a.symbols} symbols x {self.secs} sim s at speed {a.speed} "
            f"(~{self.secs / a.speed:.0f} s), start_time {self.t0}, db {self.db}, topic {self.topic}, "
            f"sim :{self.sim_port}, streamer :{self.st_port}, out {self.out}")
        if a.cluster:
            log(f"cluster of {env.nodes} Kafka nodes: {a.partitions} partitions, "
                f"{self.partition_line()}; instances {self.instances}")

    def start_pipeline(self):
        # The inserter first: migrations, then the rest (aggregator expects the schema).
        self.procs["inserter"].start()
        for name in self.instances["inserter"][1:]:
            self.procs[name].start()
        for _ in range(300):
            if psql_try(self.url, "select 1 from kline_1s limit 0") is not None:
                break
            time.sleep(0.1)
        self.procs["aggregator"].start()
        for name in self.instances["streamer"]:
            self.procs[name].start()
        for name in self.instances["producer"]:
            p = self.procs[name]
            saved, p.argv = p.argv, self.first_argv[name]
            p.start()
            p.argv = saved
        if self.a.watch_page:
            self.page = PageWatch("127.0.0.1", self.st_port, self.symbols)
        if self.a.watchers:
            self.wait_listening(self.st_port)
            self.watchers = Watchers(self.env, self.st_port, self.symbols, self.a.watchers,
                                     self.a.watcher_symbols, self.out)

    def wait_listening(self, port, secs=30):
        """A program started a moment ago answers on /metrics (its listener is up)."""
        for _ in range(int(secs * 5)):
            try:
                http_get(f"http://127.0.0.1:{port}/metrics", 2)
                return
            except (OSError, ValueError):
                time.sleep(0.2)
        raise RuntimeError(f"nothing answers on 127.0.0.1:{port} after {secs} s")

    # ------------------------------------------------------------ faults

    def control(self, q):
        return json.loads(http_get(f"{self.sim_url}/control/{q}"))

    def sleep(self, secs):
        end = time.monotonic() + secs
        while time.monotonic() < end:
            self.watch()
            time.sleep(min(0.5, max(0.0, end - time.monotonic())))

    def watch(self):
        for p in self.procs.values():
            p.check_crash()
        if time.monotonic() >= self.next_sample:
            self.next_sample = time.monotonic() + 2
            for p in list(self.procs.values()) + [self.sim]:
                p.sample()
            self.sample_backlog()
        if self.a.sample_secs and time.monotonic() >= self.next_row:
            self.next_row = time.monotonic() + self.a.sample_secs
            self.sample_row()

    SAMPLE_SQL = ("select pg_database_size(current_database()), "
                  "(select count(*) from kline_1s_partitions), "
                  "(select coalesce(sum(n_dead_tup), 0) from pg_stat_user_tables where relname like 'kline_1s%'), "
                  "(select count(*) from kline_1s_compacted)")

    def sim_now_ms(self):
        """The sim's clock (what KP_TEST_CLOCK gives the programs)."""
        return self.t0 + int((time.time() * 1000 - self.real0) * self.a.speed)

    def sample_row(self):
        """One line of samples.csv: RSS of every program (kB, as watch() sampled it at most
        2 s ago), the database, the lag."""
        db = psql_try(self.url, self.SAMPLE_SQL, 30)
        db = db.strip().split("\t") if db else ["", "", "", ""]
        lag = self.lag()
        row = [round(time.monotonic() - T_START, 1), self.sim_now_ms()]
        row += [p.rss_now if p.alive() else "" for p in self.procs.values()]
        row += db + ["" if lag is None else lag]
        if self.csv is None:
            self.csv = open(os.path.join(self.out, "samples.csv"), "w")
            self.csv.write(",".join(["real_s", "sim_ms"] + [f"rss_kb_{n}" for n in self.procs] +
                                    ["db_bytes", "partitions", "dead_tup_1s", "compacted", "lag"]) + "\n")
        self.csv.write(",".join(map(str, row)) + "\n")
        self.csv.flush()

    def sample_backlog(self):
        """The producer's own account of what it still owes (kline_producer_backlog_klines)."""
        vals = []
        for port in self.prod_metrics_ports:
            try:
                body = http_get(f"http://127.0.0.1:{port}/metrics", 2).decode()
            except (OSError, ValueError):
                continue
            m = re.search(r"^kline_producer_backlog_klines (\S+)", body, re.M)
            if m:
                vals.append(int(float(m.group(1))))
        if vals:
            # of a hot-standby pair, the one owing more (each owes every kline)
            v = max(vals)
            self.backlog_peak = max(self.backlog_peak, v)
            self.backlog_series.append((round(time.monotonic() - T_START, 1), v))

    def inject(self, name):
        a, env, rng = self.a, self.env, self.rng
        detail = ""
        if name.startswith("kill9-"):
            # --cluster: of a pair or group, one instance, the others run on through it;
            # otherwise the one named (kill9-producer2: the second of a --producers 2 pair)
            kind = name[6:]
            prog = rng.choice(self.instances[kind]) if a.cluster and kind in self.instances else kind
            self.procs[prog].kill9()
            down = round(rng.uniform(0.5, 3.0), 1)
            detail = f"{prog} down {down}s"
            self.sleep(down)
            self.procs[prog].start()
        elif name in CLUSTER_FAULTS:
            detail = self.inject_cluster(name)
        elif name == "kafka-kill":
            env.harness_ctl("kafka-kill")
            down = round(rng.uniform(3, 8), 1)
            self.sleep(down)
            t = time.monotonic()
            env.harness_ctl("kafka-start")
            detail = f"down {down}s, restart took {time.monotonic() - t:.1f}s"
        elif name == "pg-stop":
            env.harness_ctl("pg-stop")
            down = round(rng.uniform(3, 8), 1)
            self.sleep(down)
            env.harness_ctl("pg-start")
            detail = f"down {down}s"
        elif name in ("kafka-pause", "pg-pause"):
            srv = name.split("-")[0]
            env.harness_ctl(f"{srv}-pause")
            try:
                self.sleep(a.pause_secs)
            finally:
                env.harness_ctl(f"{srv}-resume")
            detail = f"SIGSTOP {a.pause_secs}s"
        elif name == "ex-close":
            self.control("close")
        elif name == "ex-close-abrupt":
            self.control("close?abrupt=1")
        elif name == "ex-shutdown":
            self.control("shutdown")
        elif name == "ex-stall":
            s = rng.randint(3, 6)
            self.control(f"stall?secs={s}")
            detail = f"{s}s"
            self.sleep(s)
        elif name == "ex-refuse":
            # refuse new connections, then cut the live ones so that reconnects hit the refusal
            s = rng.randint(3, 6)
            self.control(f"refuse?secs={s}")
            self.control("close")
            detail = f"{s}s + close"
            self.sleep(s)
        elif name == "ex-malformed":
            n = rng.randint(5, 20)
            c0 = self.dlq_count()
            self.control(f"malformed?n={n}")
            detail = f"n={n}" + self.wait_dlq(c0, n)
        elif name == "ex-oversized":
            n = rng.randint(1, 3)
            c0 = self.dlq_count()
            self.control(f"oversized?n={n}")
            detail = f"n={n}" + self.wait_dlq(c0, n)
        elif name == "ex-duplicate":
            n = rng.randint(20, 200)
            self.control(f"duplicate?n={n}")
            detail = f"n={n}"
        elif name == "ex-reorder":
            n = rng.randint(3, 10)
            self.control(f"reorder?n={n}")
            detail = f"n={n}"
        elif name == "ex-rest429":
            # 429s matter only when the producer needs REST: cause a gap right after
            n = rng.randint(2, 4)
            self.control(f"rest429?n={n}")
            self.control("stall?secs=2")
            detail = f"n={n} + stall 2s"
            self.sleep(3)
        else:
            raise ValueError(name)
        return detail

    # ------------------------------------------------------------ cluster faults

    def partitions_meta(self):
        """[(topic, partition, leader, [isr])] of our topic, from the metadata a broker gives
        now; None if no broker answered or a node is not a broker in it (fenced)."""
        r = subprocess.run(["kcat", "-L", "-b", self.env.brokers, "-m", "5", "-J", "-t", self.topic],
                           capture_output=True, text=True, timeout=30)
        try:
            j = json.loads(r.stdout)
        except ValueError:
            return None
        out = [(t["topic"], p["partition"], p["leader"], sorted(i["id"] for i in p.get("isrs", [])))
               for t in j.get("topics", []) for p in t.get("partitions", [])]
        if len(j.get("brokers", [])) != self.env.nodes:
            return None
        return out

    def partition_line(self):
        m = self.partitions_meta() or []
        return ", ".join(f"[{p}] leader {l} isr {','.join(map(str, i))}" for _, p, l, i in m)

    def wait_whole(self, secs=120):
        """Until every node is a broker in the metadata and every partition has all its
        replicas in sync: the state a fault starts from, and the end of a restart. Returns
        the seconds it took; raises if the cluster does not get there."""
        t0 = time.monotonic()
        while time.monotonic() - t0 < secs:
            m = self.partitions_meta()
            if m and len(m) == self.a.partitions and all(len(i) == self.env.nodes for *_, i in m):
                return time.monotonic() - t0
            self.sleep(1)
        raise RuntimeError(f"the cluster is not whole after {secs}s: {self.partition_line()}")

    def inject_cluster(self, name):
        a, env, rng = self.a, self.env, self.rng
        waited = self.wait_whole()
        pre = f"(waited {waited:.0f}s for the ISR) " if waited >= 1 else ""
        nodes = list(range(1, env.nodes + 1))
        if name in ("kafka-kill-leader", "kafka-kill-controller"):
            if name == "kafka-kill-leader":
                part = rng.randrange(a.partitions)
                # the leader at this moment, from the metadata (the schedule cannot know it)
                n = int(env.harness_ctl("kafka-leader", self.topic, str(part)))
                what = f"leader of [{part}]"
            else:
                n = int(env.harness_ctl("kafka-controller"))
                what = "active controller"
            if n not in nodes:
                raise RuntimeError(f"no {what} (ctl says {n})")
            env.harness_ctl("kafka-kill", str(n))
            down = round(rng.uniform(3, 8), 1)
            self.sleep(down)
            env.harness_ctl("kafka-start", str(n))
            back = self.wait_whole()
            return f"{pre}node {n} ({what}) kill -9, down {down}s, ISR whole {back:.0f}s after the start"
        if name == "kafka-rolling":
            order = nodes[:]
            rng.shuffle(order)
            steps = []
            for n in order:
                t = time.monotonic()
                env.harness_ctl("kafka-stop", str(n))
                env.harness_ctl("kafka-start", str(n))
                self.wait_whole()
                steps.append(f"{n} {time.monotonic() - t:.0f}s")
            return f"{pre}stop+start one at a time, ISR whole before the next: {', '.join(steps)}"
        n = rng.choice(nodes)
        on, off, verb = (("kafka-pause", "kafka-resume", "SIGSTOP") if name == "kafka-pause-node"
                         else ("kafka-isolate", "kafka-heal", "isolated"))
        env.harness_ctl(on, str(n))
        try:
            self.sleep(a.pause_secs)
        finally:
            env.harness_ctl(off, str(n))
        back = self.wait_whole()
        return f"{pre}node {n} {verb} {a.pause_secs}s, ISR whole {back:.0f}s after"

    def run_faults(self):
        a = self.a
        run_secs = self.secs / a.speed
        plan = fault_plan(a, self.rng)
        if not plan:
            self.t_last_fault = time.monotonic()
            return
        w0, w1 = run_secs * 0.12, run_secs - max(a.quiet_tail, run_secs * 0.12)
        budget = sum(estimate(f, a) for f in plan)
        slack = max(0.0, (w1 - w0) - budget)
        # random start times: split the slack into random gaps (seeded, so reproducible)
        cuts = sorted(self.rng.uniform(0, slack) for _ in plan)
        gaps = [cuts[0]] + [cuts[i] - cuts[i - 1] for i in range(1, len(cuts))]
        log(f"{len(plan)} faults in the window +{w0:.0f}s..+{w1:.0f}s of the run "
            f"(estimated {budget:.0f}s of faults, {slack:.0f}s of slack)")
        run0 = self.run0
        at = w0
        for name, gap in zip(plan, gaps):
            at += gap
            self.sleep(max(0.0, run0 + at - time.monotonic()))
            t = time.monotonic() - run0
            # w1 only shapes the schedule; a fault that runs late (a slow broker restart on a
            # loaded machine) is still injected while 15 s of live stream remain after it
            # --cluster: every fault ends by waiting for the full ISR, so one that starts
            # with 15 s of live stream left still tests the pipeline through it
            if t > run_secs - 15 - (0 if a.cluster else estimate(name, a)):
                self.skipped[name] += 1
                log(f"fault {name} skipped: the window closed (at +{t:.0f}s)")
                continue
            try:
                detail = self.inject(name)
                self.injected[name] += 1
                log(f"fault {name} at +{t:.1f}s of the run {detail}")
                self.events.append((round(t, 1), name, detail))
            except Exception as e:  # a fault that could not be injected is reported, not hidden
                self.skipped[name] += 1
                log(f"fault {name} at +{t:.1f}s FAILED to inject: {e}")
            at = time.monotonic() - run0
        self.t_last_fault = time.monotonic()

    # ------------------------------------------------------------ drain

    def dlq_count(self):
        """Messages in <topic>.rejected (sum of the partitions' end offsets)."""
        t = self.topic + ".rejected"
        r = subprocess.run(["kcat", "-Q", "-b", self.env.brokers] +
                           sum((["-t", f"{t}:{p}:-1"] for p in range(self.a.partitions)), []),
                           capture_output=True, text=True, timeout=60)
        return sum(int(m.group(1)) for m in re.finditer(r"\] offset (-?\d+)", r.stdout) if int(m.group(1)) > 0)

    def wait_dlq(self, c0, n, secs=30):
        """Until the n bad messages are dead letters in Kafka. Until Kafka acknowledges it, a
        dead letter exists only in the producer, and the exchange never sends it again: a
        kill -9 in that window loses it by nature (unlike a kline, which REST re-fetches).
        The next fault waits, so the rejected cell measures that every bad message is
        stored, not that window."""
        end = time.monotonic() + secs
        while time.monotonic() < end:
            if self.dlq_count() >= c0 + n:
                return ""
            self.sleep(0.5)
        return f" (not all in {self.topic}.rejected after {secs}s)"

    def count_1s(self, since_ms=None):
        where = f" where open_time >= to_timestamp({since_ms} / 1000.0)" if since_ms else ""
        r = psql_try(self.url, "select count(*) from kline_1s" + where)
        return int(r) if r else None

    def kafka_end_offsets(self):
        r = subprocess.run(["kcat", "-Q", "-b", self.env.brokers] +
                           sum((["-t", f"{self.topic}:{p}:-1"] for p in range(self.a.partitions)), []),
                           capture_output=True, text=True, timeout=60)
        ends = {}
        for m in re.finditer(r"\[(\d+)\] offset (-?\d+)", r.stdout):
            ends[int(m.group(1))] = int(m.group(2))
        return ends

    def lag(self):
        """Messages in the topic not yet in a committed inserter batch, per partition.

        The checkpoint rows (written in the batch's transaction) carry the last Kafka
        offset of each batch, so end offset - (max last_offset + 1) is the durable lag;
        the group's committed offsets trail this by design (commit after COMMIT).
        With a hot-standby producer pair (--cluster) every kline comes twice and the
        second copy changes no row, so it writes no checkpoint (docs/inserter.md): the
        checkpoints never reach the end of a partition whose last message is such a
        copy. There the lag is the inserters' own kline_inserter_consumer_lag gauges
        (high watermark - position + the batch in hand), summed over the group; None
        while an inserter does not answer."""
        if self.a.cluster or self.clock_env:
            # --retain deletes consumed checkpoints too: the inserters' own account then
            return self.lag_gauges()
        ends = self.kafka_end_offsets()
        r = psql_try(self.url, "select kafka_partition, max(last_offset) from checkpoint "
                               "where kafka_partition is not null group by 1")
        if r is None or len(ends) != self.a.partitions:
            return None
        done = {int(p): int(o) + 1 for p, o in (l.split("\t") for l in r.split("\n") if l)}
        lag = sum(max(0, e - done.get(p, 0)) for p, e in ends.items())
        if lag and (self.a.producers > 1 or self.a.producer_env):
            # Doubles in Kafka (a producer pair, a rebuilt client) change no row, and a
            # batch that changes nothing writes no checkpoint: the tail of the topic may be
            # doubles no checkpoint will ever cover. Then the inserter's own account decides:
            # consumed up to the end, nothing held back (kline_inserter_consumer_lag counts
            # both).
            try:
                body = http_get(f"http://127.0.0.1:{self.ins_port}/metrics", 2).decode()
                m = re.search(r"^kline_inserter_consumer_lag (\S+)", body, re.M)
                if m and float(m.group(1)) == 0:
                    return 0
            except (OSError, ValueError):
                pass
        return lag

    def lag_gauges(self):
        total = 0
        for name, port in self.ins_ports.items():
            try:
                body = http_get(f"http://127.0.0.1:{port}/metrics", 5).decode()
            except (OSError, ValueError):
                return None
            m = re.search(r"^kline_inserter_consumer_lag (\S+)", body, re.M)
            if not m:
                return None
            total += int(float(m.group(1)))
        return total

    def drain(self):
        a = self.a
        expected = len(self.symbols) * self.secs
        since = None
        if self.clock_env:
            # retention drops old hours meanwhile: count the last hour of the run (which no
            # cut-off reaches during the drain), from its start or the run's
            last = self.t0 + (self.secs - 1) * 1000
            since = max(self.t0, hour_start(last))
            expected = len(self.symbols) * ((last - since) // 1000 + 1)
        # the sim generates its last second at run0 + secs/speed
        while True:
            st = self.control("stats")
            if st.get("generated_seconds", 0) >= self.secs:
                break
            self.sleep(1)
        log(f"the exchange generated its {self.secs} seconds; draining")
        t0 = time.monotonic()
        last, last_change = None, time.monotonic()
        while True:
            self.sleep(2)
            n, lag = self.count_1s(since), self.lag()
            if n != last:
                last, last_change = n, time.monotonic()
            if n == expected and lag == 0:
                self.drain_secs = time.monotonic() - (self.t_last_fault or t0)
                self.drain_after_end = time.monotonic() - t0
                log(f"drained: {n} rows in kline_1s, consumer lag 0 ({time.monotonic() - t0:.0f}s after the "
                    f"exchange's end, {self.drain_secs:.0f}s after the last fault)")
                break
            if time.monotonic() - last_change > a.settle_secs and lag == 0:
                log(f"settled without reaching the expected count: {n} of {expected} rows, lag {lag}")
                break
            if time.monotonic() - t0 > a.drain_timeout:
                log(f"drain timeout after {a.drain_timeout}s: {n} of {expected} rows, lag {lag}")
                break
        self.final_lag = self.lag()
        if a.sample_secs:
            self.sample_row()
        # the aggregator loop has seen every checkpoint; stop it and run --once on top
        rc = self.agg_stop_rc = self.procs["aggregator"].stop()
        log(f"aggregator (--every) stopped, exit {rc}")
        once_env = None
        if self.clock_env:
            # the last run's clock frozen at this moment: its retention cut-off is known
            t_end = self.sim_now_ms()
            once_env = dict(os.environ, KP_TEST_CLOCK=f"{t_end}@now:0")
            window = retain_1s_ms(a.retain)
            self.cut = t_end - window if window else None
        r = subprocess.run([f"{self.env.bin}/kline-aggregator", "--once", "-d", self.url] + self.agg_extra,
                           capture_output=True, text=True, timeout=1800, env=once_env)
        with open(os.path.join(self.out, "aggregator-once.log"), "w") as f:
            f.write(r.stderr)
        log(f"kline-aggregator --once: exit {r.returncode}")
        dropped = 0
        for f in ("aggregator.log", "aggregator-once.log"):
            with open(os.path.join(self.out, f), errors="replace") as fh:
                dropped += sum(1 for line in fh if "retention: dropped partition" in line)
        self.partitions_dropped = dropped
        self.agg_once_rc = r.returncode

    def check_streamers(self):
        """{instance: {symbol: kline}} of every streamer (check_streamer)."""
        return {name: self.check_streamer(port) for name, port in self.st_ports.items()}

    def check_streamer(self, port):
        """After the drain the streamer must hold, for every symbol, the last second."""
        res = {}
        try:
            ws = kpws.WS("127.0.0.1", port, "/ws", timeout=10)
            # a list of thousands of names exceeds the streamer's --max-msg: "*" is what a
            # dashboard of the whole universe sends, and its snapshot holds every symbol
            ws.send_json({"op": "subscribe", "symbols": self.symbols if len(self.symbols) <= 100 else ["*"]})
            deadline = time.monotonic() + 30
            while len(res) < len(self.symbols) and time.monotonic() < deadline:
                for u in kpws.updates(ws.recv_json()):
                    k = u.get("kline") or {}
                    if k.get("symbol") in self.symbols:
                        res[k["symbol"]] = k
            ws.close()
        except (OSError, kpws.WsError, ValueError) as e:
            log(f"streamer check: {e} ({len(res)} of {len(self.symbols)} symbols seen)")
        return res

    def stop_all(self):
        self.exit_codes = {}
        self.counters = self.scrape_counters()
        for kind in ("producer", "streamer", "inserter"):
            for name in self.instances[kind]:
                self.exit_codes[name] = self.procs[name].stop()
        self.exit_codes["aggregator"] = self.agg_stop_rc

    def scrape_counters(self):
        """The counters a run is judged by besides the tables: each producer's Kafka client
        rebuilds, the streamer's dropped repeats, and what a page saw pushed twice."""
        out = {}
        want = {"producer": ("kline_producer_kafka_rebuilds_total", "kline_producer_kafka_taken_back_total"),
                "streamer": ("kline_streamer_klines_total", "kline_streamer_klines_repeated_total")}
        ports = dict(self.prod_ports, streamer=self.st_port)
        for name, port in ports.items():
            try:
                body = http_get(f"http://127.0.0.1:{port}/metrics", 5).decode()
            except (OSError, ValueError) as e:
                log(f"metrics of {name}: {e}")
                continue
            for k in want["streamer" if name == "streamer" else "producer"]:
                m = re.search(rf"^{k} (\S+)", body, re.M)
                out[f"{name}.{k}"] = int(float(m.group(1))) if m else None
        if getattr(self, "page", None):
            out.update(self.page.stop())
        if getattr(self, "watchers", None):
            out.update(self.watchers.stop())
        return out

    # ------------------------------------------------------------ truth

    def truth_all(self, lo=None):
        """(symbol, [truth rows]) in symbol order, one request per symbol (a single /truth of
        2,000 symbols would be hundreds of MB in one response); from lo (default the start)."""
        hi = self.t0 + (self.secs - 1) * 1000
        lo = self.t0 if lo is None else max(lo, self.t0)
        for sym in sorted(self.symbols):
            yield sym, self.truth_of(sym, lo, hi) if lo <= hi else []

    def truth_of(self, sym, lo, hi, interval="1s"):
        body = http_get(f"{self.sim_url}/truth?symbol={sym}&from={lo}&to={hi}&interval={interval}", 120)
        return [json.loads(line) for line in body.splitlines() if line.strip()]

    def kept_from(self):
        """--bars-from-sim: where the 1s truth is read from, the first hour retention keeps
        (the sim rolls up the hours before it)."""
        return None if self.cut is None else hour_start(self.cut)

    def sim_bars(self, sym):
        """The sim's own 1m bars of the whole run (/truth?interval=1m), as expected_bars
        gives them: {minute: bar}."""
        lines = self.truth_of(sym, self.t0, self.t0 + (self.secs - 1) * 1000, "1m")
        return {b["open_time"]: sim_bar(b) for b in lines}

    def bars_expected(self, sym, kept, rest_rows, res):
        """The 1m bars a symbol must have. Without --bars-from-sim, from every second of the
        truth; with it, the sim's bars, and for the hours kept, the bars of those seconds by
        expected_bars (REST rows have no trade ids), which must agree with the sim's where no
        second came by REST: two implementations of the bar rules checking each other."""
        if not self.a.bars_from_sim:
            return expected_bars(kept, rest_rows)
        bars = self.sim_bars(sym)
        rest_minutes = {t // 60000 * 60000 for t in rest_rows}
        for m, e in expected_bars(kept, rest_rows).items():
            if m not in rest_minutes and bars.get(m) != e:
                res["truth_disagree"] += 1
                log(f"truth: the sim's bar {sym} {m} is {bars.get(m)}, its seconds give {e}")
            bars[m] = e
        return bars

    def db_rows_all(self, table, extra=""):
        """(symbol, [rows]) of a table, streamed through a psql cursor (FETCH_COUNT)."""
        # kline_1s derives close_time (schema/011): the second's last millisecond
        close = "open_time + interval '999 ms'" if table == "kline_1s" else "close_time"
        cols = ("symbol, (extract(epoch from open_time)*1000)::bigint, "
                f"(extract(epoch from {close})*1000)::bigint, "
                "open, high, low, close, volume, quote_volume, trades, taker_buy_volume, "
                "taker_buy_quote_volume, first_trade_id, last_trade_id, closed, source" + extra)
        p = subprocess.Popen(["psql", self.url, "-XAtq", "-v", "ON_ERROR_STOP=1", "-v", "FETCH_COUNT=20000",
                              "-F", "\t", "-c", f"select {cols} from {table} order by symbol collate \"C\", open_time"],
                             stdout=subprocess.PIPE, text=True)

        def parse(line):
            f = line.rstrip("\n").split("\t")
            sym, f = f[0], f[1:]
            r = {"open_time": int(f[0]), "close_time": int(f[1])}
            for i, k in enumerate(DEC_FIELDS[:4]):
                r[k] = f[2 + i]
            r["volume"], r["quote_volume"], r["trades"] = f[6], f[7], int(f[8])
            r["taker_buy_volume"], r["taker_buy_quote_volume"] = f[9], f[10]
            r["first_trade_id"], r["last_trade_id"] = int(f[11]), int(f[12])
            r["closed"], r["source"] = f[13] == "t", f[14]
            if extra:
                r["row_count"] = int(f[15])
            return sym, r

        rows = (parse(line) for line in p.stdout if line.strip())
        for sym, grp in groupby(rows, key=lambda x: x[0]):
            yield sym, [r for _, r in grp]
        if p.wait() != 0:
            raise RuntimeError(f"psql: reading {table} failed")

    def compare(self):
        res = Counter()
        examples = defaultdict(list)
        kafka = None if self.a.no_kafka_check else self.kafka_counts()
        if kafka is None:
            kafka = Counter()
            log("--no-kafka-check: the topic is not read back")
        res["kafka_messages"] = sum(kafka.values())
        res["kafka_distinct"] = len(kafka)
        res["kafka_repeated"] = sum(c - 1 for c in kafka.values() if c > 1)
        stream_last = self.streamer_last
        db_1s = self.db_rows_all("kline_1s")
        db_1m = self.db_rows_all("kline_1m", ", row_count")
        next_1s, next_1m = next(db_1s, (None, [])), next(db_1m, (None, []))
        ours = set(self.symbols)
        # one symbol at a time, the three sorted streams side by side: memory stays flat
        # --bars-from-sim: the 1s truth of the hours kept only; the sim rolls up the rest
        for sym, full in self.truth_all(self.kept_from() if self.a.bars_from_sim else None):
            if sym not in ours:
                continue
            truth, expired = self.split_expired(full)
            res["expected"] += len(truth)
            res["expired"] += len(expired)
            # both streams are sorted by symbol: take this symbol's rows if they come next
            while next_1s[0] is not None and next_1s[0] < sym:
                next_1s = next(db_1s, (None, []))
            db = next_1s[1] if next_1s[0] == sym else []
            res["in_db"] += len(db)
            by_t = {}
            for r in db:
                if r["open_time"] in by_t:
                    res["doubled"] += 1
                by_t[r["open_time"]] = r
            tset = {t["open_time"] for t in truth}
            if self.a.bars_from_sim:  # no expired truth read: a row of an expired hour is left
                gone = {t for t in by_t if self.hour_expired(t)}
            else:
                gone = {t["open_time"] for t in expired}
            res["expired_left"] += sum(1 for t in by_t if t in gone)
            extra = [t for t in by_t if t not in tset and t not in gone]
            res["extra"] += len(extra)
            for t in extra[:3]:
                examples["extra"].append(f"{sym} {t}")
            rest_rows = set()
            for t in truth:
                ot = t["open_time"]
                if not self.a.no_kafka_check and (sym, ot) not in kafka:
                    res["kafka_missing"] += 1
                r = by_t.get(ot)
                if r is None:
                    res["missing"] += 1
                    if len(examples["missing"]) < 10:
                        examples["missing"].append(f"{sym} {ot}")
                    continue
                bad = [k for k in DEC_FIELDS if Decimal(r[k]) != Decimal(t[k])]
                bad += [k for k in INT_FIELDS if r[k] != t[k]]
                if not r["closed"]:
                    bad.append("closed")
                if r["source"] == "rest":
                    # Binance REST klines carry no trade ids: the producer stores -1 (documented)
                    rest_rows.add(ot)
                    res["from_rest"] += 1
                    if r["first_trade_id"] != -1 or r["last_trade_id"] != -1:
                        bad.append("trade_ids(rest)")
                else:
                    bad += [k for k in ("first_trade_id", "last_trade_id") if r[k] != t[k]]
                if bad:
                    res["wrong"] += 1
                    if len(examples["wrong"]) < 10:
                        examples["wrong"].append(f"{sym} {ot}: {','.join(bad)}")
            # 1m bars
            exp_bars = self.bars_expected(sym, full, rest_rows, res)
            if self.a.bars_from_sim:  # the expired seconds were not read: the sim's bars count them
                res["expired"] += sum(b["row_count"] for m, b in exp_bars.items() if self.hour_expired(m))
            res["bars_expected"] += len(exp_bars)
            while next_1m[0] is not None and next_1m[0] < sym:
                next_1m = next(db_1m, (None, []))
            bars = next_1m[1] if next_1m[0] == sym else []
            res["bars_written"] += len(bars)
            got = {b["open_time"]: b for b in bars}
            for m, e in exp_bars.items():
                b = got.get(m)
                if b is None:
                    res["bars_missing"] += 1
                    if len(examples["bars_missing"]) < 5:
                        examples["bars_missing"].append(f"{sym} {m}")
                    continue
                bad = [k for k in DEC_FIELDS if Decimal(b[k]) != e[k]]
                bad += [k for k in ("close_time", "trades", "first_trade_id", "last_trade_id", "row_count")
                        if b[k] != e[k] and not self.rest_unknown(k, m, b[k])]
                if bad:
                    res["bars_wrong"] += 1
                    if len(examples["bars_wrong"]) < 10:
                        examples["bars_wrong"].append(f"{sym} {m}: {','.join(bad)}")
            res["bars_extra"] += len([m for m in got if m not in exp_bars])
            # streamer: latest-wins must end at the last second, on every instance
            if not full:
                continue
            for st_name, last in stream_last.items():
                k = last.get(sym)
                if k is None or k.get("open_time") != full[-1]["open_time"] or \
                        Decimal(k.get("close", "0")) != Decimal(full[-1]["close"]):
                    res["streamer_stale"] += 1
                    if len(examples["streamer_stale"]) < 5:
                        examples["streamer_stale"].append(
                            f"{sym}: {st_name} has {k and k.get('open_time')}, last is {full[-1]['open_time']}")
        rej = psql(self.url, "select count(*) from rejected where program <> 'kline-aggregator'")
        res["rejected_rows"] = int(rej)
        st = self.control("stats")
        res["malformed_sent"] = st.get("malformed_sent", 0)
        res["oversized_sent"] = st.get("oversized_sent", 0)
        res["duplicates_sent"] = st.get("duplicates_sent", 0)
        self.sim_stats = st
        return res, examples

    def split_expired(self, truth):
        """(kept, expired): expired are the rows of the hourly partitions that end at or
        before the final retention cut-off (retention drops whole partitions); none
        without --retain 1s=..."""
        if self.cut is None:
            return truth, []
        kept, gone = [], []
        for t in truth:
            (gone if self.hour_expired(t["open_time"]) else kept).append(t)
        return kept, gone

    def hour_expired(self, ms):
        """Whether the hourly partition holding ms ends at or before the final cut-off."""
        return self.cut is not None and hour_start(ms) + HOUR_MS <= self.cut

    def rest_unknown(self, k, minute, v):
        """A bar's trade id of -1 where its seconds were dropped by retention: whether they
        came by REST (no trade ids) cannot be known any more."""
        return k in ("first_trade_id", "last_trade_id") and v == -1 and self.hour_expired(minute)

    def kafka_counts(self):
        """(symbol, open_time) -> number of messages in the topic."""
        c = Counter()
        p = subprocess.Popen(["kcat", "-C", "-b", self.env.brokers, "-t", self.topic, "-e", "-q",
                              "-f", "%s\n"], stdout=subprocess.PIPE, text=True)
        rx = re.compile(r'"symbol":"([A-Z0-9]+)".*?"open_time":(\d+)')
        for line in p.stdout:
            m = rx.search(line)
            if m:
                c[(m.group(1), int(m.group(2)))] += 1
        p.wait()
        return c


HOUR_MS = 3600000  # kline_1s is partitioned by the hour


def hour_start(ms):
    return ms // HOUR_MS * HOUR_MS


def retain_1s_ms(spec):
    """The 1s window of a --retain SPEC in ms ("1s=30m,1m=30d" -> 1800000), or None."""
    units = {"s": 1000, "m": 60000, "h": HOUR_MS, "d": 86400000, "w": 604800000}
    for part in (spec or "").split(","):
        m = re.fullmatch(r"\s*1s=(\d+(?:\.\d+)?)([smhdw])\s*", part)
        if m:
            return int(float(m.group(1)) * units[m.group(2)])
    return None


def sim_bar(line):
    """A bar of kline-sim's /truth?interval=1m in the shape expected_bars gives."""
    if "error" in line:
        raise RuntimeError(f"sim bar {line['symbol']} {line['open_time']}: {line['error']}")
    bar = {k: line[k] for k in ("close_time", "row_count", "trades", "first_trade_id", "last_trade_id")}
    bar.update({k: Decimal(line[k]) for k in DEC_FIELDS})
    return bar


def expected_bars(truth, rest_rows):
    """1m bars from the truth by the aggregator's documented bar rules (docs/aggregator.md)."""
    by_min = defaultdict(list)
    for t in truth:
        by_min[t["open_time"] // 60000 * 60000].append(t)
    bars = {}
    for m, rows in by_min.items():
        rows.sort(key=lambda t: t["open_time"])
        traded = [t for t in rows if t["trades"] > 0]
        b = {"close_time": m + 59999, "row_count": len(rows),
             "trades": sum(t["trades"] for t in rows)}
        for k in SUM_FIELDS:
            b[k] = sum((Decimal(t[k]) for t in rows), Decimal(0))
        if traded:
            b["open"] = Decimal(traded[0]["open"])
            b["close"] = Decimal(traded[-1]["close"])
            b["high"] = max(Decimal(t["high"]) for t in traded)
            b["low"] = min(Decimal(t["low"]) for t in traded)
            first, last = traded[0], traded[-1]
            b["first_trade_id"] = -1 if first["open_time"] in rest_rows else first["first_trade_id"]
            b["last_trade_id"] = -1 if last["open_time"] in rest_rows else last["last_trade_id"]
        else:
            # zero-trade rows carry the previous close as their OHLC
            b["open"] = b["high"] = b["low"] = b["close"] = Decimal(rows[0]["open"])
            b["first_trade_id"] = b["last_trade_id"] = -1
        bars[m] = b
    return bars


def report(c, res, ex):
    a = c.a
    inj = c.injected
    kinds = ", ".join(f"{k} {v}" for k, v in sorted(inj.items()))
    crashes = {n: p.crashes for n, p in c.procs.items() if p.crashes}
    lines = []
    lines.append("")
    lines.append(f"## fault campaign{' (cluster)' if a.cluster else ''} (seed {a.seed}, {a.symbols} symbols, "
                 f"{c.secs} sim s at speed {a.speed}, {a.partitions} partitions"
                 f"{f', 3 Kafka nodes, RF 3, instances {dict((k, len(v)) for k, v in c.instances.items())}' if a.cluster else ''})")
    lines.append("")
    lines.append("| table | expected | written | missing | doubled | wrong | extra |")
    lines.append("|---|---:|---:|---:|---:|---:|---:|")
    lines.append(f"| kline_1s | {res['expected']} | {res['in_db']} | {res['missing']} | {res['doubled']} | "
                 f"{res['wrong']} | {res['extra']} |")
    lines.append(f"| kline_1m | {res['bars_expected']} | {res['bars_written']} | {res['bars_missing']} | 0 | "
                 f"{res['bars_wrong']} | {res['bars_extra']} |")
    if a.no_kafka_check:
        lines.append("| Kafka topic | not read back (--no-kafka-check) | - | - | - | - | - |")
    else:
        lines.append(f"| Kafka topic | {res['expected']} | {res['kafka_messages']} msgs, {res['kafka_distinct']} distinct "
                     f"| {res['kafka_missing']} | {res['kafka_repeated']} (info) | - | - |")
    if c.cut is not None:
        lines.append(f"| kline_1s expired (retention, cut-off {c.cut}) | {res['expired']} gone | "
                     f"{res['expired_left']} left | - | - | - | - |")
    lines.append("")
    lines.append(f"- faults injected: {sum(inj.values())} ({kinds})")
    if a.cluster:
        lines.append("")
        lines.append("| fault | injected |")
        lines.append("|---|---:|")
        for k, v in sorted(inj.items()):
            lines.append(f"| {k} | {v} |")
        lines.append("")
    if c.skipped:
        lines.append(f"- faults NOT injected: {dict(c.skipped)}")
    lines.append(f"- exchange: {res['malformed_sent']} malformed + {res['oversized_sent']} oversized messages sent, "
                 f"{res['duplicates_sent']} duplicates, {c.sim_stats.get('reordered', 0)} reordered, "
                 f"{c.sim_stats.get('rest_429', 0)} REST 429s, {c.sim_stats.get('connections_total', 0)} connections")
    lines.append(f"- rejected table: {res['rejected_rows']} rows (exchange sent "
                 f"{res['malformed_sent'] + res['oversized_sent']} bad messages)")
    lines.append(f"- rows from REST backfill: {res['from_rest']} (trade ids -1: REST does not return them)")
    lines.append(f"- consumer lag at the end: {c.final_lag}; aggregator --once exit {c.agg_once_rc}; "
                 f"streamer behind at the end: {res['streamer_stale']} symbols")
    if getattr(c, "watchers", None):
        w = c.watchers.result
        lines.append(f"- watchers (kp-wsload, {a.watcher_symbols} symbols each): {w.get('connected')} of "
                     f"{w.get('clients')} connected, {w.get('failed')} failed, {w.get('closed')} closed by the "
                     f"server, {w.get('messages')} messages with {w.get('klines')} klines, exit {w.get('exit')}"
                     f" ({'clean' if w['clean'] else 'NOT clean'})")
    lines.append(f"- unexpected exits: {crashes if crashes else 'none'}; exit codes at stop: {c.exit_codes}")
    fatal = {n: p.fatal_restarts for n, p in c.procs.items() if p.fatal_restarts}
    lines.append(f"- exits 1 on a librdkafka fatal error, restarted as a supervisor would: "
                 f"{sum(len(v) for v in fatal.values())} {fatal if fatal else ''}")
    lines.append(f"- time to drain after the last fault: "
                 f"{'%.0f s' % c.drain_secs if c.drain_secs is not None else 'did not drain'}; "
                 f"peak producer backlog: {c.backlog_peak} klines owed")
    lines.append("")
    lines.append("| program | starts | CPU s | CPU % of the run | RSS max MB | RSS median MB |")
    lines.append("|---|---:|---:|---:|---:|---:|")
    wall = max(1.0, time.monotonic() - c.run0)
    for name, p in list(c.procs.items()) + [("kline-sim", c.sim)]:
        med = sorted(p.rss_samples)[len(p.rss_samples) // 2] if p.rss_samples else 0
        lines.append(f"| {name} | {p.starts} | {p.cpu_total():.1f} | {100 * p.cpu_total() / wall:.0f} | "
                     f"{p.rss_max / 1024:.1f} | {med / 1024:.1f} |")
    for k, v in ex.items():
        lines.append(f"- examples {k}: {'; '.join(v)}")
    lines.append("")
    lines.append(f"klines: {res['expected']} expected, {res['in_db']} in kline_1s, {res['missing']} missing, "
                 f"{res['doubled']} doubled, {res['wrong']} wrong")
    lines.append(f"bars_1m: {res['bars_expected']} expected, {res['bars_written']} in kline_1m, "
                 f"{res['bars_missing']} missing, 0 doubled, {res['bars_wrong']} wrong")
    lines.append(f"kafka: {res['expected']} expected, {res['kafka_distinct']} in topic, {res['kafka_missing']} missing, "
                 f"{res['kafka_repeated']} doubled, 0 wrong")
    bad_sent = res["malformed_sent"] + res["oversized_sent"]
    lines.append(f"rejected: {bad_sent} expected, {res['rejected_rows']} in rejected, "
                 f"{max(0, bad_sent - res['rejected_rows'])} missing, "
                 f"{max(0, res['rejected_rows'] - bad_sent)} doubled, 0 wrong")
    text = "\n".join(lines)
    print(text, flush=True)
    with open(os.path.join(c.out, "result.md"), "w") as f:
        f.write(text + "\n")
    keys = ["truth_disagree", "expired", "expired_left", "expected", "in_db", "missing", "doubled", "wrong", "extra", "from_rest", "bars_expected",
            "bars_written", "bars_missing", "bars_wrong", "bars_extra", "kafka_messages", "kafka_distinct",
            "kafka_missing", "kafka_repeated", "streamer_stale", "rejected_rows", "malformed_sent",
            "oversized_sent", "duplicates_sent"]
    summary = {k: res[k] for k in keys}  # a Counter omits zeros: name every cell
    summary.update(bars_from_sim=a.bars_from_sim, cut=c.cut, retain=a.retain, compact_after=a.compact_after, sample_secs=a.sample_secs,
                   sim_start=c.t0, sim_secs=c.secs, speed=a.speed, symbols=a.symbols,
                   partitions_dropped=getattr(c, "partitions_dropped", None),
                   drain_after_end=getattr(c, "drain_after_end", None))
    summary.update(drain_secs=c.drain_secs, backlog_peak=c.backlog_peak,
                   resources={n: {"cpu_s": round(p.cpu_total(), 1), "rss_max_kb": p.rss_max, "starts": p.starts}
                              for n, p in list(c.procs.items()) + [("kline-sim", c.sim)]},
                   backlog_series=c.backlog_series)
    summary.update(watchers=c.watchers.result if getattr(c, "watchers", None) else None)
    summary.update(kafka_fatal_restarts={n: p.fatal_restarts for n, p in c.procs.items() if p.fatal_restarts})
    summary.update(seed=a.seed, cluster=a.cluster, events=c.events, injected=dict(inj), skipped=dict(c.skipped), crashes=crashes,
                   counters=getattr(c, "counters", {}), final_lag=c.final_lag, agg_once_rc=c.agg_once_rc, exit_codes=c.exit_codes,
                   examples=dict(ex))
    with open(os.path.join(c.out, "result.json"), "w") as f:
        json.dump(summary, f, indent=1)
    zero = ["missing", "doubled", "wrong", "extra", "bars_missing", "bars_wrong", "bars_extra",
            "kafka_missing", "streamer_stale", "expired_left", "truth_disagree"]
    ok = all(res[k] == 0 for k in zero) and res["expected"] > 0 and not crashes and c.final_lag == 0
    ok = ok and res["rejected_rows"] == bad_sent
    if getattr(c, "watchers", None):
        ok = ok and c.watchers.result["clean"]
    return ok


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                 formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seed", type=int, default=int(os.environ.get("KP_FAULTS_SEED", "0")) or None,
                    help="seed of the sim and the fault schedule (default: random, printed) [KP_FAULTS_SEED]")
    ap.add_argument("--minutes", type=float, default=float(os.environ.get("KP_FAULTS_MINUTES", "3")),
                    help="real minutes the exchange runs (default 3) [KP_FAULTS_MINUTES]")
    ap.add_argument("--speed", type=float, default=20, help="sim seconds per real second (default 20)")
    ap.add_argument("--symbols", type=int, default=20, help="symbols (default 20)")
    ap.add_argument("--partitions", type=int, default=4, help="topic partitions (default 4)")
    ap.add_argument("--rounds", type=int, default=1,
                    help="each program is killed this many times; server and exchange faults scale too")
    ap.add_argument("--pause-secs", type=int, default=20, help="SIGSTOP duration of Kafka/PostgreSQL (20)")
    ap.add_argument("--quiet-tail", type=float, default=25,
                    help="real seconds without faults at the end of the run (default 25)")
    ap.add_argument("--settle-secs", type=float, default=60, help="drain: give up after this long without progress")
    ap.add_argument("--drain-timeout", type=float, default=300, help="drain: hard limit in seconds")
    ap.add_argument("--out", default=None, help="directory for logs and result.{md,json}")
    ap.add_argument("--keep", action="store_true", help="keep the database and topic")
    ap.add_argument("--faults", default=None,
                    help="only these faults, comma-separated, in this order, --rounds times ('none': no fault)")
    ap.add_argument("--producers", type=int, choices=(1, 2), default=1,
                    help="2: a hot-standby pair of producers (same symbols, same topic); kill9-producer2 kills the second")
    ap.add_argument("--producer-env", action="append", default=[], metavar="KEY=VALUE",
                    help="environment of the producers (e.g. the test hook KP_TEST_KAFKA_FATAL=N,M)")
    ap.add_argument("--watch-page", action="store_true",
                    help="a WebSocket client follows every symbol all run and counts bars pushed twice")
    ap.add_argument("--watchers", type=int, default=0, metavar="N",
                    help="N kp-wsload clients stay on the streamer all run (--faults none only): none may be "
                         "closed or fail, all must get updates")
    ap.add_argument("--watcher-symbols", type=int, default=5, metavar="K",
                    help="--watchers: symbols each client follows (default 5)")
    ap.add_argument("--cluster", action="store_true",
                    help="against the 3-node KRaft harness: RF 3, producer and streamer pairs, "
                         "--inserters in one group, the cluster faults [KP_FAULTS_CLUSTER=1]")
    ap.add_argument("--inserters", type=int, default=3, help="--cluster: inserters in the group (3)")
    ap.add_argument("--retain", default=None, metavar="SPEC",
                    help="the aggregator's --retain (e.g. 1s=30m); the aggregator and the inserter then run "
                         "on the sim's clock (KP_TEST_CLOCK) and the truth counts what retention dropped")
    ap.add_argument("--compact-after", default=None, metavar="DUR",
                    help="the aggregator's --compact-after (on the sim's clock)")
    ap.add_argument("--sample-secs", type=float, default=0,
                    help="every this many real seconds a line of samples.csv: RSS of every program, database "
                         "size, partitions, dead tuples of kline_1s, consumer lag (0 = off)")
    ap.add_argument("--bars-from-sim", action="store_true",
                    help="read the 1s truth of the hours retention keeps only, and check the 1m "
                         "bars against the sim's own (/truth?interval=1m): a day of 2,000 symbols "
                         "is 172.8 M seconds, too many to read back")
    ap.add_argument("--no-kafka-check", action="store_true",
                    help="do not read the topic back at the end (too big for a long soak)")
    a = ap.parse_args()
    if a.seed is None:
        a.seed = random.SystemRandom().randrange(1, 1 << 31)
    a.sim_seconds = int(a.minutes * 60 * a.speed) // 60 * 60
    if a.sim_seconds < 600:
        ap.error("the run is too short: --minutes x 60 x --speed must be at least 600 sim seconds")
    if a.out is None:
        a.out = os.path.join(os.environ.get("KP_OUT", "/tmp"),
                             f"faults-{a.seed}-{time.strftime('%H%M%S')}")
    a.cluster = a.cluster or os.environ.get("KP_FAULTS_CLUSTER") == "1"
    if a.watchers and a.faults != "none":
        ap.error("--watchers needs --faults none: a killed streamer closes every watcher")
    env = Env()
    if a.cluster and env.nodes != 3:
        die(f"--cluster needs the 3-node harness (KP_KAFKA_NODES={env.nodes}): "
            "tests/harness/up --kafka-cluster 3 or tests/run.sh --cluster")
    c = Campaign(a, env)
    ok = False
    try:
        c.setup()
        c.start_pipeline()
        c.run0 = time.monotonic()
        c.run_faults()
        c.drain()
        c.streamer_last = c.check_streamers()
        c.stop_all()
        res, ex = c.compare()
        ok = report(c, res, ex)
    except BaseException:
        a.keep = True  # the evidence stays for a post-mortem
        log(f"campaign aborted: keeping database {getattr(c, 'db', '?')} and topic {getattr(c, 'topic', '?')}")
        raise
    finally:
        for p in list(c.procs.values()) + ([c.sim] if c.sim else []):
            if p.alive():
                p.kill9()
        # leave the servers up and running whatever happened
        for cmd in ("pg-resume", "kafka-resume", "pg-start", "kafka-start") + \
                (("kafka-heal",) if a.cluster else ()):
            try:
                env.harness_ctl(cmd)
            except Exception as e:
                log(f"cleanup: {cmd}: {e}")
        if not a.keep and getattr(c, "db", None):
            psql_try(env.admin_url(), f'drop database if exists "{c.db}" with (force)', 60)
            subprocess.run([os.path.join(env.tbin, "kp-topic"), "-b", env.brokers, "delete", c.topic],
                           capture_output=True, timeout=60)
            for t in (".rejected", ".resume"):
                subprocess.run([os.path.join(env.tbin, "kp-topic"), "-b", env.brokers, "delete",
                                c.topic + t], capture_output=True, timeout=60)
    log("PASS: every missing/doubled/wrong cell is 0" if ok else "FAIL: see the table above")
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()

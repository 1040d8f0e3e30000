#!/usr/bin/env python3
"""Prints the active KRaft controller (the metadata quorum's leader) of a cluster.

    quorum.py [--verbose] [--wait SECS] [--whole] HOST:CONTROLLER_PORT...

Sends DescribeQuorum (API key 55, version 0) for __cluster_metadata-0 to every
controller listener given, as `kafka-metadata-quorum --bootstrap-controller
describe --status` does, but without a JVM start (~1-2 s here). Only the leader
answers it without an error (followers say NOT_LEADER_OR_FOLLOWER), so the
answer is the leader's own word at this moment. A node that does not answer
within 2 s (stopped, paused, cut off) is skipped.

Prints the leader's node id (with --verbose: "leader=ID epoch=E hw=H
voters=ID:LEO,..." too). Exit 0, or 1 when no node answered as leader (an
election is in progress or the quorum is lost).

--wait SECS asks again every 0.25 s for up to SECS while no leader answers: a
node that comes back from an isolation with a higher epoch (no pre-vote in
Kafka 3.9) makes the leader resign, and the election that follows takes a few
seconds, longer on a loaded machine. --whole asks for more: a leader, and every
voter's log end offset within CAUGHT_UP records of the high watermark (a voter
the leader has not heard from reports -1).
"""
import socket
import struct
import sys
import time

API_DESCRIBE_QUORUM = 55
TOPIC = b"__cluster_metadata"
# The leader appends a no-op record every 500 ms (metadata.max.idle.interval.ms), so a
# follower that fetches is a few records behind at any moment, never hundreds.
CAUGHT_UP = 50


def uvarint(n):
    out = b""
    while n >= 0x80:
        out += bytes([(n & 0x7F) | 0x80])
        n >>= 7
    return out + bytes([n])


class Reader:
    def __init__(self, b):
        self.b, self.i = b, 0

    def take(self, fmt):
        v = struct.unpack_from(fmt, self.b, self.i)
        self.i += struct.calcsize(fmt)
        return v[0]

    def uvarint(self):
        shift = n = 0
        while True:
            c = self.b[self.i]
            self.i += 1
            n |= (c & 0x7F) << shift
            if c < 0x80:
                return n
            shift += 7

    def tags(self):
        # tagged fields: count, then (tag, size, bytes) each; none are used here
        for _ in range(self.uvarint()):
            self.uvarint()
            self.i += self.uvarint()

    def cstring(self):
        n = self.uvarint() - 1
        s = self.b[self.i:self.i + max(n, 0)]
        self.i += max(n, 0)
        return s

    def carray(self, item):
        return [item() for _ in range(self.uvarint() - 1)]


def request(corr):
    client = b"kp-harness"
    # request header v2: api key, version, correlation id, client id, tags
    head = struct.pack(">hhih", API_DESCRIBE_QUORUM, 0, corr, len(client)) + client + b"\0"
    # body: topics [ name, partitions [ index, tags ], tags ], tags
    body = uvarint(2) + uvarint(len(TOPIC) + 1) + TOPIC + uvarint(2) + struct.pack(">i", 0) + b"\0" + b"\0" + b"\0"
    msg = head + body
    return struct.pack(">i", len(msg)) + msg


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        c = s.recv(n - len(buf))
        if not c:
            raise OSError("connection closed")
        buf += c
    return buf


def ask(addr):
    host, port = addr.rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=2) as s:
        s.settimeout(2)
        s.sendall(request(1))
        n = struct.unpack(">i", recv_exact(s, 4))[0]
        r = Reader(recv_exact(s, n))
    r.take(">i")  # correlation id
    r.tags()  # response header v1
    if r.take(">h") != 0:
        return None

    def voter():
        v = (r.take(">i"), r.take(">q"))
        r.tags()
        return v

    def partition():
        p = {"index": r.take(">i"), "error": r.take(">h"), "leader": r.take(">i"),
             "epoch": r.take(">i"), "hw": r.take(">q")}
        p["voters"] = r.carray(voter)
        p["observers"] = r.carray(voter)
        r.tags()
        return p

    def topic():
        t = (r.cstring(), r.carray(partition))
        r.tags()
        return t

    for name, parts in r.carray(topic):
        for p in parts:
            if name == TOPIC and p["index"] == 0 and p["error"] == 0:
                return p
    return None


def leader_of(addrs):
    """The answer of the quorum leader with the highest epoch, or None."""
    best = None
    for a in addrs:
        try:
            p = ask(a)
        except (OSError, struct.error, IndexError):
            continue
        if p and p["leader"] >= 0 and (best is None or p["epoch"] > best["epoch"]):
            best = p
    return best


def describe(p):
    voters = ",".join("%d:%d" % v for v in p["voters"])
    return "leader=%d epoch=%d hw=%d voters=%s" % (p["leader"], p["epoch"], p["hw"], voters)


def is_whole(p):
    return all(leo >= 0 and p["hw"] - leo <= CAUGHT_UP for _, leo in p["voters"])


def parse_args(argv):
    opts = {"verbose": False, "wait": 0.0, "whole": False, "addrs": []}
    it = iter(argv)
    for a in it:
        if a in ("--verbose", "--whole"):
            opts[a[2:]] = True
        elif a == "--wait":
            opts["wait"] = float(next(it, "x"))
        else:
            opts["addrs"].append(a)
    return opts


def main(argv):
    try:
        opts = parse_args(argv)
    except ValueError:
        opts = {"addrs": []}
    if not opts["addrs"]:
        print(__doc__.strip().splitlines()[2].strip(), file=sys.stderr)
        return 2
    deadline = time.monotonic() + opts["wait"]
    while True:
        best = leader_of(opts["addrs"])
        if best is not None and (not opts["whole"] or is_whole(best)):
            break
        if time.monotonic() >= deadline:
            if best is None:
                print("quorum.py: no controller answered as the quorum leader", file=sys.stderr)
            else:
                print("quorum.py: quorum not whole: " + describe(best), file=sys.stderr)
            return 1
        time.sleep(0.25)
    print(describe(best) if opts["verbose"] else best["leader"])
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))

"""kpws — a minimal WebSocket client on plain sockets (python3 stdlib only).

Used by the fault campaign (streamer check), the attack script and the
end-to-end benchmark. It is deliberately raw: the attack needs to send frames a
proper client library would refuse to build (oversized, binary, invalid UTF-8,
unmasked), so framing is done by hand here.
"""

import base64
import json
import os
import socket
import struct
import time

OP_CONT, OP_TEXT, OP_BIN, OP_CLOSE, OP_PING, OP_PONG = 0, 1, 2, 8, 9, 10


class WsError(Exception):
    pass


class WS:
    """One client connection. recv() answers pings and reassembles fragments."""

    def __init__(self, host, port, path="/ws", timeout=10.0, origin=None):
        self.sock = socket.create_connection((host, port), timeout=timeout)
        self.sock.settimeout(timeout)
        self.buf = b""
        self.closed = False
        self.close_code = None
        key = base64.b64encode(os.urandom(16)).decode()
        req = (f"GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nUpgrade: websocket\r\n"
               f"Connection: Upgrade\r\nSec-WebSocket-Key: {key}\r\n"
               "Sec-WebSocket-Version: 13\r\n")
        if origin:
            req += f"Origin: {origin}\r\n"
        self.sock.sendall((req + "\r\n").encode())
        head = self._read_until(b"\r\n\r\n")
        status = head.split(b"\r\n", 1)[0]
        if b" 101 " not in status + b" ":
            raise WsError(f"upgrade refused: {status.decode(errors='replace')}")

    def _read_until(self, marker):
        while marker not in self.buf:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise WsError("connection closed during handshake")
            self.buf += chunk
        head, self.buf = self.buf.split(marker, 1)
        return head

    def _need(self, n):
        while len(self.buf) < n:
            chunk = self.sock.recv(max(65536, n - len(self.buf)))
            if not chunk:
                self.closed = True
                raise WsError("connection closed by server")
            self.buf += chunk
        out, self.buf = self.buf[:n], self.buf[n:]
        return out

    def send_frame(self, opcode, payload, fin=True, mask=True):
        """Raw frame; the attack uses fin/mask/opcode freely."""
        if isinstance(payload, str):
            payload = payload.encode()
        b0 = (0x80 if fin else 0) | opcode
        n = len(payload)
        mbit = 0x80 if mask else 0
        if n < 126:
            hdr = struct.pack("!BB", b0, mbit | n)
        elif n < 65536:
            hdr = struct.pack("!BBH", b0, mbit | 126, n)
        else:
            hdr = struct.pack("!BBQ", b0, mbit | 127, n)
        if mask:
            key = os.urandom(4)
            payload = _xor(payload, key)
            hdr += key
        self.sock.sendall(hdr + payload)

    def send_text(self, text):
        self.send_frame(OP_TEXT, text)

    def send_json(self, obj):
        self.send_text(json.dumps(obj))

    def recv_frame(self):
        b0, b1 = self._need(2)
        op, n = b0 & 0x0F, b1 & 0x7F
        if n == 126:
            n = struct.unpack("!H", self._need(2))[0]
        elif n == 127:
            n = struct.unpack("!Q", self._need(8))[0]
        key = self._need(4) if b1 & 0x80 else None
        data = self._need(n)
        if key:
            data = _xor(data, key)
        return bool(b0 & 0x80), op, data

    def recv(self):
        """Next complete text/binary message as (opcode, bytes); (OP_CLOSE, b'') at close."""
        parts, first_op = [], None
        while True:
            fin, op, data = self.recv_frame()
            if op == OP_PING:
                self.send_frame(OP_PONG, data)
                continue
            if op == OP_PONG:
                continue
            if op == OP_CLOSE:
                self.closed = True
                self.close_code = struct.unpack("!H", data[:2])[0] if len(data) >= 2 else None
                return OP_CLOSE, data
            if op != OP_CONT:
                first_op = op
            parts.append(data)
            if fin:
                return first_op, b"".join(parts)

    def recv_json(self):
        op, data = self.recv()
        if op == OP_CLOSE:
            raise WsError(f"closed by server (code {self.close_code})")
        return json.loads(data)

    def close(self):
        try:
            if not self.closed:
                self.send_frame(OP_CLOSE, struct.pack("!H", 1000))
        except OSError:
            pass
        try:
            self.sock.close()
        except OSError:
            pass


def _xor(data, key):
    # int.from_bytes XOR is ~100x faster than a byte loop for large frames
    n = len(data)
    if n == 0:
        return data
    k = (key * (n // 4 + 1))[:n]
    return (int.from_bytes(data, "big") ^ int.from_bytes(k, "big")).to_bytes(n, "big")


def updates(msg):
    """The kline updates inside one streamer message (kline, batch or snapshot)."""
    t = msg.get("type")
    if t == "kline":
        return [msg]
    if t in ("batch", "snapshot"):
        return [u for u in msg.get("updates", []) if u.get("type", "kline") == "kline"]
    return []


def now_ms():
    return time.time() * 1000.0

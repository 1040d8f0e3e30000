# A TLS-terminating TCP proxy for producer.bats: wss:// to the plain-ws kline-sim.
#   python3 producer_tlsproxy.py LISTEN_PORT TARGET_PORT CERT KEY
import socket, ssl, sys, threading
lport, tport, cert, key = int(sys.argv[1]), int(sys.argv[2]), sys.argv[3], sys.argv[4]
ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
ctx.load_cert_chain(cert, key)
srv = socket.socket()
srv.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
srv.bind(("127.0.0.1", lport))
srv.listen(16)
def pump(a, b):
    try:
        while True:
            d = a.recv(65536)
            if not d:
                break
            b.sendall(d)
    except Exception:
        pass
    finally:
        for s in (a, b):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except Exception:
                pass
def handle(c):
    try:
        t = ctx.wrap_socket(c, server_side=True)
    except Exception:
        c.close()
        return
    u = socket.create_connection(("127.0.0.1", tport))
    threading.Thread(target=pump, args=(t, u), daemon=True).start()
    pump(u, t)
while True:
    c, _ = srv.accept()
    threading.Thread(target=handle, args=(c,), daemon=True).start()

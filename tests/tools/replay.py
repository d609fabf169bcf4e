#!/usr/bin/env python3
"""A replayer, for tests/keyconfirm.bats: what an attacker who recorded one
session (mitm.py -1 FILE) can do with its first handshake message.

usage: replay.py [-ga] [-n N] [-s FROM] PORT FILE

Opens N connections (default 1) to 127.0.0.1 PORT, from the local address
FROM when given; on each, with -g, first reads the server's greeting line
(the pool's), then sends FILE's bytes (the recorded first message, after
its length) and holds the connection, reading and dropping what comes.
Prints "sent N" on stderr once every connection has sent, then one line
per connection as the server ends it: "closed K after S.S s" (K: its
number from 1; S: seconds since it sent), or "refused K: LINE" when the
server's first answer was an ERR line (the pool's busy). Exits 0 once the
server has ended every connection, 1 on a connection that fails to open.
With -a a connection closes as soon as the server's answer (its handshake
message) begins to come, printing "answered K": the replayer gives up.
Nothing it sends completes a handshake: only the holder of the key could
make the first record that proves it.
"""
import socket
import sys
import threading
import time


def usage():
    sys.stderr.write("usage: replay.py [-ga] [-n N] [-s FROM] PORT FILE\n")
    sys.exit(2)


def main():
    args = sys.argv[1:]
    greet, answer, n, src = False, False, 1, None
    while args and args[0].startswith("-"):
        if args[0] == "-g":
            greet = True
            args = args[1:]
        elif args[0] == "-a":
            answer = True
            args = args[1:]
        elif args[0] == "-n" and len(args) > 1:
            n = int(args[1])
            args = args[2:]
        elif args[0] == "-s" and len(args) > 1:
            src = args[1]
            args = args[2:]
        else:
            usage()
    if len(args) != 2:
        usage()
    port, msg = int(args[0]), open(args[1], "rb").read()
    conns = []
    for k in range(n):
        s = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
        if src:
            s.bind((src, 0))
        try:
            s.connect(("127.0.0.1", port))
        except OSError as e:
            sys.stderr.write(f"connect {k + 1}: {e}\n")
            sys.exit(1)
        conns.append(s)
    lock = threading.Lock()

    def hold(k, s):
        f = s.makefile("rb")
        if greet:
            line = f.readline()
            if line.startswith(b"ERR"):
                with lock:
                    sys.stderr.write(f"refused {k}: {line.decode().strip()}\n")
                return
        try:
            s.sendall(msg)
        except OSError:
            pass
        sent[k - 1].set()
        t0 = time.monotonic()
        try:
            if answer and s.recv(1):
                s.close()
                with lock:
                    sys.stderr.write(f"answered {k}\n")
                return
            while s.recv(65536):
                pass
        except OSError:
            pass
        with lock:
            sys.stderr.write(f"closed {k} after {time.monotonic() - t0:.1f} s\n")
            sys.stderr.flush()

    sent = [threading.Event() for _ in conns]
    threads = [threading.Thread(target=hold, args=(k + 1, s)) for k, s in enumerate(conns)]
    for t in threads:
        t.start()
    # A refused connection sends nothing: it counts as done for "sent".
    while any(t.is_alive() and not e.is_set() for t, e in zip(threads, sent)):
        time.sleep(0.01)
    sys.stderr.write(f"sent {sum(e.is_set() for e in sent)}\n")
    sys.stderr.flush()
    for t in threads:
        t.join()


main()

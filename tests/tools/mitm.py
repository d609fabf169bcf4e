#!/usr/bin/env python3
"""A man in the middle for tests/channel.bats: takes one connection on
127.0.0.1 LPORT, connects to 127.0.0.1 TPORT, and relays both ways. It
knows the channel's framing (a 2-byte big-endian length, then the body:
the handshake message first, then records), not its keys. What it does to
the client's frames:

  pass      nothing (with -w FILE, a capture is all the use)
  flip N    flips one byte of record N (1: the first after the handshake,
            the client's key confirmation, an empty record)
  drop-end  drops every record of 17 bytes (an END: its type and tag) but
            record 1 (the key confirmation, as long), then passes the
            client's FIN on: a stream cut at its end
  stall S   passes the handshake message's 2-byte length at once, its
            first byte S seconds later and the rest half a second after
            that: a handshake that dribbles in
  flip-hold N  holds record N - 1 back (saying "held N-1" on stderr)
            until record N comes, flips a byte of N, sends both in one
            write (one TCP segment), then
            passes nothing more and never ends the stream: an error that
            arrives with good bytes, and then silence

-w FILE writes everything it relays, both ways, to FILE. -1 FILE writes
the client's first frame (the handshake's first message, after its
length) to FILE: what a replay sends (tests/tools/replay.py). Prints
"relaying" on stderr once connected both ways, and the frames it saw from
the client when the connection ends.
"""
import socket
import sys
import threading
import time

END_LEN = 17


def usage():
    sys.stderr.write(
        "usage: mitm.py LPORT TPORT pass|flip N|drop-end|stall S|flip-hold N [-w FILE] [-1 FILE]\n"
    )
    sys.exit(2)


def main():
    args = sys.argv[1:]
    cap = None
    if "-w" in args:
        i = args.index("-w")
        cap = open(args[i + 1], "wb")
        del args[i : i + 2]
    first = None
    if "-1" in args:
        i = args.index("-1")
        first = args[i + 1]
        del args[i : i + 2]
    if len(args) < 3:
        usage()
    lport, tport, mode = int(args[0]), int(args[1]), args[2]
    flip = int(args[3]) if mode in ("flip", "flip-hold") else None
    stall = float(args[3]) if mode == "stall" else None
    if mode not in ("pass", "flip", "drop-end", "stall", "flip-hold"):
        usage()
    lock = threading.Lock()

    def record(data):
        if cap:
            with lock:
                cap.write(data)
                cap.flush()

    ls = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    ls.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    ls.bind(("127.0.0.1", lport))
    ls.listen(1)
    c, _ = ls.accept()
    ls.close()
    u = socket.create_connection(("127.0.0.1", tport))
    sys.stderr.write("relaying\n")
    sys.stderr.flush()

    def down():
        """Server to client, as it comes; its end (or failure) is the client's FIN."""
        try:
            while True:
                data = u.recv(65536)
                if not data:
                    break
                record(data)
                c.sendall(data)
        except OSError:
            pass
        try:
            c.shutdown(socket.SHUT_WR)
        except OSError:
            pass

    t = threading.Thread(target=down)
    t.start()
    buf = b""
    frames = 0
    upstream_ok = True
    held = b""  # flip-hold: record N - 1, until N comes
    silent = False  # flip-hold: both went out; nothing more does
    try:
        while True:
            data = c.recv(65536)
            if not data:
                break
            buf += data
            while len(buf) >= 2:
                n = buf[0] << 8 | buf[1]
                if len(buf) < 2 + n:
                    break
                frame, buf = bytearray(buf[: 2 + n]), buf[2 + n :]
                rec = frames  # frame 0 is the handshake's first message
                frames += 1
                if rec == 0 and first:
                    with open(first, "wb") as f:
                        f.write(bytes(frame))
                if silent:
                    continue
                if mode == "flip-hold" and rec == flip - 1:
                    held = bytes(frame)
                    sys.stderr.write(f"held {rec}\n")
                    sys.stderr.flush()
                    continue
                if mode == "flip-hold" and rec == flip:
                    frame[2 + n // 2] ^= 0x01
                    frame = bytearray(held) + frame
                    silent = True
                if mode == "flip" and rec == flip:
                    frame[2 + n // 2] ^= 0x01
                if mode == "drop-end" and rec > 1 and n == END_LEN:
                    continue
                if upstream_ok:
                    record(bytes(frame))
                    try:
                        if mode == "stall" and rec == 0:
                            u.sendall(frame[:2])
                            time.sleep(stall)
                            u.sendall(frame[2:3])
                            time.sleep(0.5)
                            frame = frame[3:]
                        u.sendall(frame)
                    except OSError:
                        # The server refused the rest: read on and drop it, so the
                        # client hears the server's last words, not a reset.
                        upstream_ok = False
    except OSError:
        pass
    if upstream_ok and buf and not silent:
        record(buf)  # not framed: not a channel, passed as it is
        try:
            u.sendall(buf)
        except OSError:
            pass
    try:
        if not silent:  # flip-hold: the server hears nothing more, not even a FIN
            u.shutdown(socket.SHUT_WR)
    except OSError:
        pass
    t.join()
    sys.stderr.write(f"frames {frames}\n")
    c.close()
    u.close()


main()

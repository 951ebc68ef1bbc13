#!/usr/bin/python3
"""A UDP sequence flow that counts what a tunnel loses, both ways.

  udpflow.py echo PORT              answer every datagram on 0.0.0.0:PORT
                                    with the same bytes (the far side)
  udpflow.py send SRC DST PORT OUT  send a numbered datagram every 1/RATE s
                                    from SRC to DST:PORT and count echoes,
                                    until SIGTERM or SIGINT; then wait
                                    GRACE s for late echoes and write OUT

Options of send: --rate N (default 100 per second), --grace S (0.5).

A datagram counts as delivered only when its echo came back, so a packet
lost on the way there or on the way back is lost. OUT is JSON: sent,
received (distinct sequence numbers echoed), lost, longest_run (most
consecutive sequence numbers lost) and outage_ms (longest_run times the
interval: how long the flow saw nothing), tail_lost (lost among the last
second's packets: not 0 means the path was not healed when the flow
stopped), duplicates, late (echoes older than 2 s: they crossed a stalled
path), send_errors, runs (the 10 longest runs of lost packets, as [seconds
after the start, packets]). While running, OUT.live holds "SENT HIGHEST_ECHOED_SEQ". Exit 0 after SIGTERM; 1 on bad
usage or socket errors.
"""

import argparse
import json
import os
import select
import signal
import socket
import struct
import sys
import time

BUF = 4 << 20  # socket buffers: a guest starved for a while sends a burst


def udp_socket():
    """A UDP socket whose buffers hold the burst of catch-up datagrams a
    sender sends after its guest was starved of CPU for seconds (else the
    echo's or the sender's receive buffer overflows: a loss the tunnel did
    not cause). SO_*BUFFORCE as root, else what net.core.*mem_max allow."""
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    for force, plain in ((getattr(socket, "SO_RCVBUFFORCE", 33), socket.SO_RCVBUF),
                         (getattr(socket, "SO_SNDBUFFORCE", 32), socket.SO_SNDBUF)):
        try:
            s.setsockopt(socket.SOL_SOCKET, force, BUF)
        except OSError:
            s.setsockopt(socket.SOL_SOCKET, plain, BUF)
    return s


HDR = struct.Struct("!Qd")  # sequence number, send time (monotonic)
PAD = b"\0" * 36  # 52-byte payload: a small packet, like keep-alive traffic


def echo(port):
    s = udp_socket()
    s.bind(("0.0.0.0", port))
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    while True:
        data, peer = s.recvfrom(2048)
        try:
            s.sendto(data, peer)
        except OSError:
            pass  # no route / no SA for a moment: the sender counts it


def send(src, dst, port, out, rate, grace):
    s = udp_socket()
    s.bind((src, 0))
    s.setblocking(False)
    interval = 1.0 / rate
    stop = []
    signal.signal(signal.SIGTERM, lambda *_: stop.append(1))
    signal.signal(signal.SIGINT, lambda *_: stop.append(1))
    got = set()
    dups = late = send_errors = 0
    seq = 0
    t0 = time.monotonic()

    def drain():
        nonlocal dups, late
        while True:
            try:
                data = s.recv(2048)
            except (BlockingIOError, InterruptedError):
                return
            except OSError:
                return  # ICMP errors surface here: not an echo
            if len(data) < HDR.size:
                continue
            n, sent_at = HDR.unpack_from(data)
            if n in got:
                dups += 1
                continue
            got.add(n)
            if time.monotonic() - sent_at > 2.0:
                late += 1

    live = out + ".live"
    next_live = t0
    while not stop:
        now = time.monotonic()
        if now >= next_live:
            # Progress for a waiting test: sent, highest sequence echoed.
            with open(live + ".tmp", "w") as f:
                f.write("%d %d\n" % (seq, max(got) if got else -1))
            os.rename(live + ".tmp", live)
            next_live = now + 0.2
        due = t0 + seq * interval
        if now >= due:
            try:
                s.sendto(HDR.pack(seq, now) + PAD, (dst, port))
            except OSError:
                send_errors += 1  # e.g. EINVAL/ENOENT without an SA: lost
            seq += 1
            continue
        try:
            r, _, _ = select.select([s], [], [], due - now)
        except InterruptedError:
            continue
        if r:
            drain()
    end = time.monotonic() + grace
    while time.monotonic() < end:
        r, _, _ = select.select([s], [], [], max(0.0, end - time.monotonic()))
        if r:
            drain()
    longest = run = 0
    runs = []
    for n in range(seq):
        if n in got:
            run = 0
        else:
            run += 1
            longest = max(longest, run)
            if run == 1:
                runs.append([n, 0])
            runs[-1][1] = run
    tail = range(max(0, seq - int(rate)), seq)
    res = {
        "tail_lost": sum(1 for n in tail if n not in got),
        "sent": seq,
        "received": len(got),
        "lost": seq - len(got),
        "longest_run": longest,
        "outage_ms": round(longest * interval * 1000),
        "duplicates": dups,
        "late": late,
        "send_errors": send_errors,
        # The 10 longest runs of lost packets: [seconds after the start, packets].
        "runs": [[round(n * interval, 2), k] for n, k in sorted(runs, key=lambda r: -r[1])[:10]],
    }
    tmp = out + ".tmp"
    with open(tmp, "w") as f:
        json.dump(res, f)
    os.rename(tmp, out)


def main(argv):
    p = argparse.ArgumentParser(prog="udpflow.py", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    e = sub.add_parser("echo")
    e.add_argument("port", type=int)
    s = sub.add_parser("send")
    s.add_argument("src")
    s.add_argument("dst")
    s.add_argument("port", type=int)
    s.add_argument("out")
    s.add_argument("--rate", type=float, default=100.0)
    s.add_argument("--grace", type=float, default=0.5)
    a = p.parse_args(argv[1:])
    try:
        if a.cmd == "echo":
            echo(a.port)
        else:
            send(a.src, a.dst, a.port, a.out, a.rate, a.grace)
    except OSError as err:
        print("udpflow.py: %s" % err, file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))

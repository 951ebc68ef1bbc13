#!/usr/bin/python3 -S
"""Key-change hook of the scale benchmarks (tests/bench/scale-state.sh):
plays Cloudflare's edge taking a new PSK. The Cloudflare API emulator runs
it (--on-key-change) with the key on stdin and the tunnel id as the last
argument; it hands the key to the edge charon in one VICI load-shared
(unique id per tunnel, so a rotation replaces the old key), owned by the
edge's and the gateway's identities of that tunnel (scale_gen.py).

Per key one VICI round trip, nothing written to disk, nothing in argv or
the environment (tests/e2e/edge-hook.py instead rewrites a secrets file
and reloads them all: quadratic at 1,000 tunnels). With --batch (the
emulator's --on-key-change-batch) one process and one VICI connection take
every key of an API call: a bulk call of 100 keys costs one process, not
100.

Usage: edge_key_hook.py EDGE_VICI_SOCKET ACCOUNT TUNNEL_ID   (key on stdin)
       edge_key_hook.py --batch EDGE_VICI_SOCKET ACCOUNT
                        ({"keys": [{"id": ..., "psk": ...}, ...]} on stdin)
"""
import socket
import struct
import sys

# Inverse of scale_gen.py's tid() and edge(): tunnel i's id holds i in its
# low 100 bits.
TID_BASE = 0x5ca1e << 100


def kv(name, value):
    return bytes([3, len(name)]) + name + struct.pack(">H", len(value)) + value


def lst(name, items):
    out = bytes([4, len(name)]) + name
    for v in items:
        out += bytes([5]) + struct.pack(">H", len(v)) + v
    return out + bytes([6])


def recv_exact(s, n):
    buf = b""
    while len(buf) < n:
        chunk = s.recv(n - len(buf))
        if not chunk:
            raise OSError("VICI socket closed")
        buf += chunk
    return buf


def load_shared(s, account, tid, key):
    """One VICI load-shared of tunnel tid's key (a bytearray, wiped here)
    on the connected socket s; an error message, or None."""
    n = int(tid, 16)
    if n >> 100 != 0x5ca1e:
        return "%s is not a benchmark tunnel id" % tid
    i = n - TID_BASE
    edge = "198.51.100.%d" % (1 + i % 250)
    gw_id = "%s.%s.ipsec.cloudflare.com" % (tid, account)
    if not key:
        return "empty key for tunnel %s" % tid
    name = b"load-shared"
    msg = bytearray(bytes([0, len(name)]) + name + kv(b"id", ("ike-t%05d" % i).encode())
                    + kv(b"type", b"IKE") + kv(b"data", bytes(key))
                    + lst(b"owners", [edge.encode(), gw_id.encode()]))
    for k in range(len(key)):
        key[k] = 0
    s.sendall(struct.pack(">I", len(msg)) + msg)
    for k in range(len(msg)):
        msg[k] = 0
    (length,) = struct.unpack(">I", recv_exact(s, 4))
    answer = recv_exact(s, length)
    # CMD_RESPONSE with success=yes.
    if answer[:1] != b"\x01" or kv(b"success", b"yes") not in answer:
        return "load-shared failed for tunnel %s: %r" % (tid, answer[:200])
    return None


def main():
    batch = len(sys.argv) == 4 and sys.argv[1] == "--batch"
    if not batch and len(sys.argv) != 4:
        sys.stderr.write("usage: edge_key_hook.py EDGE_VICI ACCOUNT TUNNEL_ID (key on stdin)\n"
                         "       edge_key_hook.py --batch EDGE_VICI ACCOUNT "
                         "({\"keys\": [{\"id\", \"psk\"}]} on stdin)\n")
        return 64
    if batch:
        import json
        sock_path, account = sys.argv[2:]
        doc = json.loads(sys.stdin.buffer.read())
        keys = [(e["id"], bytearray(e["psk"].encode())) for e in doc["keys"]]
        del doc
    else:
        sock_path, account, tid = sys.argv[1:]
        key = bytearray(sys.stdin.buffer.read())
        if key.endswith(b"\n"):
            del key[-1]
        keys = [(tid, key)]
    s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    s.connect(sock_path)
    failed = 0
    for tid, key in keys:
        err = load_shared(s, account, tid, key)
        if err:
            sys.stderr.write("edge_key_hook.py: %s\n" % err)
            failed += 1
    s.close()
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())

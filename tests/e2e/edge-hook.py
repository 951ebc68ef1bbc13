#!/usr/bin/python3
"""Key-change hook of the end-to-end harness: plays Cloudflare's edge
pushing a new PSK to its IKE responder.

The Cloudflare API emulator runs it (--on-key-change) with the new key on
stdin and the tunnel id as last argument. It writes that tunnel's secret
into the edge's swanctl secrets folder (a 0600 file, key in hex so that no
character of it can break swanctl's syntax) and reloads the edge charon's
credentials with `swanctl --load-creds`. The key never appears in argv or
in the environment of a child.

Usage: edge-hook.py DIR TUNNEL_ID   (DIR: the harness directory; its
edge/tunnels.map lines are "TUNNEL_ID NAME EDGE_ADDRESS GATEWAY_IDENTITY")
"""
import os
import subprocess
import sys


def main():
    if len(sys.argv) != 3:
        sys.stderr.write("usage: edge-hook.py DIR TUNNEL_ID (key on stdin)\n")
        return 64
    base, tid = sys.argv[1], sys.argv[2]
    edge = os.path.join(base, "b")
    entry = None
    with open(os.path.join(base, "edge", "tunnels.map")) as f:
        for line in f:
            parts = line.split()
            if len(parts) == 4 and parts[0] == tid:
                entry = parts
    if entry is None:
        sys.stderr.write("edge-hook.py: tunnel %s is not on this edge\n" % tid)
        return 1
    _, name, addr, gw_id = entry
    key = bytearray(sys.stdin.buffer.read())
    if key.endswith(b"\n"):
        del key[-1]
    if not key:
        sys.stderr.write("edge-hook.py: empty key for tunnel %s\n" % tid)
        return 1
    secrets_dir = os.path.join(edge, "swanctl", "secrets.d")
    os.makedirs(secrets_dir, mode=0o700, exist_ok=True)
    path = os.path.join(secrets_dir, "%s.conf" % name)
    tmp = path + ".tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        text = ("ike-%s {\n  id-edge = %s\n  id-gw = %s\n  secret = 0x%s\n}\n"
                % (name, addr, gw_id, key.hex()))
        os.write(fd, text.encode())
        os.fsync(fd)
    finally:
        os.close(fd)
    for i in range(len(key)):
        key[i] = 0
    os.rename(tmp, path)
    env = dict(os.environ, STRONGSWAN_CONF=os.path.join(edge, "strongswan.conf"),
               SWANCTL_DIR=os.path.join(edge, "swanctl"))
    env.pop("CF_EMULATOR_TUNNEL_ID", None)
    r = subprocess.run(["swanctl", "--load-creds", "--uri",
                        "unix://" + os.path.join(edge, "charon.vici")],
                       env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    if r.returncode != 0:
        sys.stderr.write("edge-hook.py: swanctl --load-creds failed: %s\n"
                         % r.stderr.decode(errors="replace").strip())
        return 1
    with open(os.path.join(base, "edge", "hook.log"), "a") as log:
        log.write("key loaded for %s\n" % name)
    return 0


if __name__ == "__main__":
    sys.exit(main())

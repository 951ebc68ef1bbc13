#!/usr/bin/python3
"""Writes the declared and observed state of N tunnels for the scale
benchmarks (tests/bench/scale-state.sh, bench_config): the agent's config,
the Cloudflare API emulator's seed, the gateway charon's swanctl.conf and
the kernel policies (an `ip -batch` file).

Tunnel i: name t<i>, id = 32 hex digits of i (deterministic, so figures of
two runs compare), route-based with if_id 1000 + i, interface address the
i-th /31 of 10.0.0.0/8, redundancy groups of two, Cloudflare endpoints
cycling through 198.51.100.1-250, the gateway at 203.0.113.10. Only
documentation addresses reach a namespace; the interface addresses are
config data, never assigned.

  scale_gen.py config N OUT [--files K] [--vici PATH] [--state DIR]
                            [--api URL] [--token FILE] [--max-age S]
                            [--strongswan-conf FILE] [--no-kernel-xfrm]
                            [--dpd-delay S] [--child-lifetime S]
  scale_gen.py seed N OUT
  scale_gen.py swanctl N OUT
  scale_gen.py policies N OUT
  scale_gen.py edge N OUT     the edge charon's responder connections
                              (keys come from edge_key_hook.py)
"""
import argparse
import json
import os
import secrets

ACCOUNT = "023e105f4ecef8ad9ca31a8372d0c353"
GW = "203.0.113.10"
NODE = "bench-gw"


def name(i):
    return "t%05d" % i


def tid(i):
    return "%032x" % (0x5ca1e << 100 | i)


def edge(i):
    return "198.51.100.%d" % (1 + i % 250)


def ifaddr(i):
    n = (10 << 24) | (2 * i)
    return "%d.%d.%d.%d/31" % (n >> 24, (n >> 16) & 255, (n >> 8) & 255, n & 255)


def if_id(i):
    return 1000 + i


def tunnel(i, max_age, dpd_delay=0, child_lifetime=0):
    ike = {"local-identity": "fqdn"}
    if dpd_delay:
        ike["dpd-delay"] = dpd_delay
    if child_lifetime:
        ike["child-sa-lifetime-soft"] = {"time": child_lifetime}
    return {
        "name": name(i),
        "id": tid(i),
        "gateway": NODE,
        "redundancy-group": "g%05d" % (i // 2),
        "customer-endpoint": GW,
        "cloudflare-endpoint": edge(i),
        "interface-address": ifaddr(i),
        "ike": ike,
        "route-based": {"if-id": if_id(i)},
        "psk": {"source": "random", "max-age": max_age},
    }


def config(a):
    agent = {
        "node-name": NODE,
        "state-directory": a.state,
        "ike-backend": {"vici-socket": a.vici, "kernel-xfrm": not a.no_kernel_xfrm},
    }
    if a.strongswan_conf:
        agent["traffic"] = {"strongswan-conf": a.strongswan_conf}
    cf = {"account-id": ACCOUNT, "api-token-file": a.token}
    if a.api:
        cf["api-base-url"] = a.api
        cf["allow-plain-http-loopback"] = True
    files = max(1, a.files)
    os.makedirs(a.out, exist_ok=True) if files > 1 else None
    per = (a.n + files - 1) // files
    for k in range(files):
        body = {}
        if k == 0:
            body = {"agent": agent, "cloudflare": cf}
        lo, hi = k * per, min(a.n, (k + 1) * per)
        if lo < hi or files == 1:
            body["tunnels"] = {"tunnel": [tunnel(i, a.max_age, a.dpd_delay, a.child_lifetime)
                                            for i in range(lo, hi)]}
        path = a.out if files == 1 else os.path.join(a.out, "part-%05d.json" % k)
        with open(path, "w") as f:
            json.dump({"tunnelsync:tunnelsync": body}, f, indent=2)
            f.write("\n")


def seed(a):
    tunnels = [{
        "id": tid(i),
        "name": name(i),
        "customer_endpoint": GW,
        "cloudflare_endpoint": edge(i),
        "interface_address": ifaddr(i),
    } for i in range(a.n)]
    with open(a.out, "w") as f:
        json.dump({"tunnels": tunnels}, f)


def swanctl(a):
    """N connections and shared keys (random, never used) for the
    gateway charon: what list-conns and get-shared answer is of the size
    the agent reads, though not the agent's exact rendering (its plan then
    reloads them; the benchmark measures reading and planning)."""
    with open(a.out, "w") as f:
        f.write("connections {\n")
        for i in range(a.n):
            f.write(
                " ts-%s {\n  version = 2\n  local_addrs = %s\n  remote_addrs = %s\n"
                "  local { auth = psk\n   id = %s.%s.ipsec.cloudflare.com }\n"
                "  remote { auth = psk\n   id = %s }\n"
                "  children { ts-%s {\n   local_ts = 0.0.0.0/0\n   remote_ts = 0.0.0.0/0\n"
                "   if_id_in = %d\n   if_id_out = %d\n   start_action = none\n  } }\n }\n"
                % (name(i), GW, edge(i), tid(i), ACCOUNT, edge(i), name(i), if_id(i), if_id(i)))
        f.write("}\nsecrets {\n")
        for i in range(a.n):
            f.write(" ike-ts-%s {\n  id-gw = %s.%s.ipsec.cloudflare.com\n  id-edge = %s\n"
                    "  secret = 0x%s\n }\n"
                    % (name(i), tid(i), ACCOUNT, edge(i), secrets.token_hex(32)))
        f.write("}\n")


def policies(a):
    """Per tunnel the out/in/fwd policies charon installs for a
    route-based CHILD SA: 0.0.0.0/0 both ways, its if_id."""
    with open(a.out, "w") as f:
        for i in range(a.n):
            for d, (s, e) in (("out", (GW, edge(i))), ("in", (edge(i), GW)),
                              ("fwd", (edge(i), GW))):
                f.write("xfrm policy add src 0.0.0.0/0 dst 0.0.0.0/0 dir %s if_id %d "
                        "tmpl src %s dst %s proto esp reqid %d mode tunnel\n"
                        % (d, if_id(i), s, e, i + 1))


def edge_conf(a):
    """Cloudflare's side of each tunnel, for a responder charon holding
    198.51.100.1-250: the proposals of Cloudflare's documented set (as
    tests/e2e/lib.sh), the tunnel picked by the gateway's identity. No
    secrets: edge_key_hook.py loads each key as the emulator takes it."""
    with open(a.out, "w") as f:
        f.write("connections {\n")
        for i in range(a.n):
            f.write(
                " cf-%s {\n  version = 2\n  local_addrs = %s\n"
                "  proposals = aes256gcm16-aes128gcm16-prfsha512-prfsha384-prfsha256-ecp384-"
                "modp2048-modp1536, aes256-sha256-prfsha256-ecp384-modp2048\n"
                "  local { auth = psk\n   id = %s }\n"
                "  remote { auth = psk\n   id = %s.%s.ipsec.cloudflare.com }\n"
                "  children { cf-%s {\n   local_ts = 0.0.0.0/0\n   remote_ts = 0.0.0.0/0\n"
                "   esp_proposals = aes256gcm16-aes128gcm16-ecp384-noesn, "
                "aes256-sha256-ecp384-noesn\n   replay_window = 0\n  } }\n }\n"
                % (name(i), edge(i), edge(i), tid(i), ACCOUNT, name(i)))
        f.write("}\n")


def main():
    p = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    p.add_argument("what", choices=["config", "seed", "swanctl", "policies", "edge"])
    p.add_argument("n", type=int)
    p.add_argument("out")
    p.add_argument("--files", type=int, default=1, help="config split into this many files")
    p.add_argument("--vici", default="/var/run/charon.vici")
    p.add_argument("--state", default="/var/lib/tunnelsync")
    p.add_argument("--api", default="")
    p.add_argument("--token", default="/etc/tunnelsync/cloudflare-token")
    p.add_argument("--max-age", type=int, default=7776000)
    p.add_argument("--dpd-delay", type=int, default=0, help="ike/dpd-delay (0: the default)")
    p.add_argument("--child-lifetime", type=int, default=0,
                   help="ike/child-sa-lifetime-soft/time (0: the default)")
    p.add_argument("--strongswan-conf", default="", help="the gateway charon's strongswan.conf")
    p.add_argument("--no-kernel-xfrm", action="store_true",
                   help="kernel-xfrm false (charon doing ESP in userspace)")
    a = p.parse_args()
    {"config": config, "seed": seed, "swanctl": swanctl, "policies": policies,
     "edge": edge_conf}[a.what](a)


if __name__ == "__main__":
    main()

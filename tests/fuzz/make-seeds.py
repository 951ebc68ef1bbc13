#!/usr/bin/python3
"""Writes the hand-made seed inputs of the fuzz targets whose input format
is the harness's own (tests/fuzz/fuzz_<name>.c says what it is), built from
messages real peers sent: the kernel's recorded XFRM messages
(tests/data/xfrm) and charon 5.9.8's VICI frames (corpus/vici/charon-*).
Usage: make-seeds.py [TARGET...]; writes into corpus/<target>/seed-*."""
import os
import struct
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DATA = os.path.join(HERE, "..", "data", "xfrm")

NLMSG_ERROR, NLMSG_DONE = 2, 3
NLM_F_MULTI, NLM_F_DUMP_INTR = 2, 16


def rec(name):
    with open(os.path.join(DATA, name), "rb") as f:
        return f.read()


def nl_set(msg, seq=None, flags_or=0):
    ln, typ, flags, s, pid = struct.unpack_from("=IHHII", msg)
    return struct.pack("=IHHII", ln, typ, flags | flags_or, s if seq is None else seq, pid) + msg[16:]


def nl_done(seq=0):
    return struct.pack("=IHHIIi", 20, NLMSG_DONE, NLM_F_MULTI, seq, 0, 0)


def nl_error(err, seq=0):
    return struct.pack("=IHHIIi", 36, NLMSG_ERROR, 0, seq, 0, err) + bytes(16)


def dgram(payload, flags=0):
    return struct.pack("<HB", len(payload), flags) + payload


def write(target, name, data):
    d = os.path.join(HERE, "corpus", target)
    os.makedirs(d, exist_ok=True)
    with open(os.path.join(d, "seed-" + name), "wb") as f:
        f.write(data)


def xfrm_dump():
    sas = [rec(f"sa-dump-0{i}.bin") for i in range(5)]
    pols = [rec(f"policy-dump-0{i}.bin") for i in range(2)]
    events = [rec(f"event-0{i}-{n}.bin") for i, n in
              enumerate(["delsa", "newsa", "expire", "expire"])]
    t = "xfrm_dump"
    # Whole dumps, as the kernel sends them: several messages a datagram,
    # then DONE; sequence numbers rewritten by the harness (mode bit 1).
    write(t, "dump-whole", bytes([3]) + dgram(b"".join(sas)) + dgram(nl_done()) +
          dgram(b"".join(pols)) + dgram(nl_done()))
    # One message per datagram, DONE in the last one with the policies.
    write(t, "dump-split", bytes([3]) + b"".join(dgram(m) for m in sas) + dgram(nl_done()) +
          dgram(pols[0]) + dgram(pols[1] + nl_done()))
    # The input's own sequence numbers: a stale reply (seq 99) is skipped.
    write(t, "dump-stale-seq", bytes([1]) +
          dgram(nl_set(sas[0], 99) + nl_set(sas[1], 1)) + dgram(nl_done(1)) +
          dgram(nl_set(pols[0], 2)) + dgram(nl_done(2)))
    # Interrupted once (NLM_F_DUMP_INTR): the SA dump is repeated.
    write(t, "dump-intr", bytes([3]) + dgram(nl_set(sas[0], flags_or=NLM_F_DUMP_INTR)) +
          dgram(nl_done()) + dgram(b"".join(sas[:2])) + dgram(nl_done()) +
          dgram(pols[0]) + dgram(nl_done()))
    write(t, "dump-eperm", bytes([3]) + dgram(nl_error(-1)))
    write(t, "dump-trunc-eintr", bytes([3]) + dgram(sas[0], 8) + dgram(sas[1], 1))
    write(t, "dump-not-kernel", bytes([3]) + dgram(sas[0], 4) + dgram(sas[1]) +
          dgram(nl_done()) + dgram(nl_done()))
    # The watch: notifications one per datagram, an overflow, a forgery.
    write(t, "watch-events", bytes([0]) + b"".join(dgram(m) for m in events))
    write(t, "watch-overflow", bytes([0]) + dgram(events[1]) + dgram(b"", 2) +
          dgram(events[0], 4) + dgram(events[2] + events[3]))
    write(t, "watch-trailing", bytes([0]) + dgram(events[1] + b"\x01\x02\x03"))


# --- VICI (strongSwan's wire format) -------------------------------------

def vici_name(n):
    return bytes([len(n)]) + n.encode()


def vici_body(tree):
    """tree: list of (name, value); value str (key/value), list of str
    (list) or list of tuples (section)."""
    out = b""
    for name, v in tree:
        if isinstance(v, str):
            out += b"\x03" + vici_name(name) + struct.pack(">H", len(v)) + v.encode()
        elif v and isinstance(v[0], str):
            out += b"\x04" + vici_name(name)
            for item in v:
                out += b"\x05" + struct.pack(">H", len(item)) + item.encode()
            out += b"\x06"
        else:
            out += b"\x01" + vici_name(name) + vici_body(v) + b"\x02"
    return out


def vici_frame(ptype, name=None, tree=()):
    pkt = bytes([ptype]) + (vici_name(name) if name is not None else b"") + vici_body(tree)
    return struct.pack(">I", len(pkt)) + pkt


CONFIRM, RESPONSE, UNKNOWN_CMD, EVENT = 5, 1, 2, 7


def corpus_file(target, name):
    with open(os.path.join(HERE, "corpus", target, name), "rb") as f:
        return f.read()


def ike_conn(name, remote):
    return (name, [
        ("local_addrs", ["192.0.2.1"]), ("remote_addrs", [remote]), ("version", "IKEv2"),
        ("reauth_time", "0"), ("rekey_time", "77760"), ("unique", "UNIQUE_NO"),
        ("dpd_delay", "10"),
        ("local-1", [("class", "pre-shared key"), ("id", "gw.example")]),
        ("remote-1", [("class", "pre-shared key"), ("id", remote)]),
        ("children", [(name, [("mode", "TUNNEL"), ("rekey_time", "25920"),
                              ("dpd_action", "restart"), ("close_action", "none"),
                              ("local-ts", ["0.0.0.0/0"]), ("remote-ts", ["0.0.0.0/0"])])]),
    ])


def ike_sa(name, uid, state, child_state="INSTALLED"):
    return (name, [
        ("uniqueid", uid), ("version", "2"), ("state", state),
        ("local-host", "192.0.2.1"), ("remote-host", "192.0.2.2"),
        ("established", "12"), ("rekey-time", "13954"),
        ("child-sas", [(name + "-" + uid, [
            ("name", name), ("uniqueid", uid), ("reqid", "1"), ("state", child_state),
            ("mode", "TUNNEL"), ("protocol", "ESP"), ("spi-in", "c1a2b3c4"),
            ("spi-out", "0badf00d"), ("local-ts", ["0.0.0.0/0"]), ("remote-ts", ["0.0.0.0/0"]),
        ])]),
    ])


def ike_observe():
    t = "ike_observe"
    conf = vici_frame(CONFIRM)
    resp = vici_frame(RESPONSE)
    shared = vici_frame(RESPONSE, tree=[("keys", ["ts-t1", "ts-t2", "other"])])
    conns = [vici_frame(EVENT, "list-conn", [ike_conn("ts-t1", "192.0.2.2")]),
             vici_frame(EVENT, "list-conn", [ike_conn("ts-t2", "192.0.2.3")]),
             vici_frame(EVENT, "list-conn", [ike_conn("foreign", "198.51.100.1")])]
    sas = [vici_frame(EVENT, "list-sa", [ike_sa("ts-t1", "7", "ESTABLISHED")]),
           vici_frame(EVENT, "list-sa", [ike_sa("ts-t1", "9", "CONNECTING", "CREATED")]),
           vici_frame(EVENT, "list-sa", [ike_sa("ts-t2", "8", "REKEYING", "REKEYING")])]
    def streamed(*frames):  # a streamed command: registered, answered, unregistered
        return conf + b"".join(frames) + resp + conf

    # The harness observes two tunnels (charon asked about each by name:
    # list-conns, list-sas per tunnel, then get-shared), then five from the
    # rest of the input (the whole lists once, get-shared).
    by_name = (streamed(conns[0]) + streamed(sas[0], sas[1]) + streamed(conns[1]) +
               streamed(sas[2]) + shared)
    whole = streamed(*conns) + streamed(*sas) + shared
    # charon 5.9.8 as recorded: one connection, one SA, the shared keys.
    recorded = (streamed(corpus_file("vici", "charon-list-conn-event.bin")) +
                streamed(corpus_file("vici", "charon-list-sa-event.bin")))
    write(t, "recorded", recorded + streamed() + streamed() +
          corpus_file("vici", "charon-get-shared-response.bin") + recorded +
          corpus_file("vici", "charon-get-shared-response.bin"))
    write(t, "both-up", by_name + whole)
    # A charon that ignores the name filter and answers every query with
    # everything: each answer still goes to the tunnel asked about only.
    write(t, "filter-ignored", streamed(*conns) + streamed(*sas) + streamed(*conns) +
          streamed(*sas) + shared + whole)
    # Then the event connection: four registrations, charon's events as
    # recorded (an authentication failure, the SA coming up).
    write(t, "events", by_name + whole + conf * 4 +
          corpus_file("vici", "charon-ike-updown-auth-failed.bin") +
          corpus_file("vici", "charon-log-auth-failed.bin") +
          corpus_file("vici", "charon-ike-updown-up.bin") + sas[2][:30])
    # charon sends an event of a registered name before confirming the
    # next registration: the client queues it (the fake charon used to
    # answer with that one frame and leave the client waiting 5 s).
    write(t, "event-before-confirm", conf + resp + conf + conf + resp + conf + shared + conf +
          corpus_file("vici", "charon-ike-updown-up.bin") + conf * 3 +
          corpus_file("vici", "charon-ike-updown-auth-failed.bin"))
    write(t, "nothing-loaded", conf + resp + conf + conf + resp + conf + vici_frame(RESPONSE))
    # An older charon without list-sa events; a stream event of another name.
    write(t, "unknown-event", conf + conns[0] + resp + conf + vici_frame(6))
    write(t, "wrong-event", conf + vici_frame(EVENT, "list-sa", [ike_sa("ts-t1", "7", "X")]) +
          resp + conf)
    write(t, "unknown-command", conf + vici_frame(UNKNOWN_CMD))
    # The connection dies mid-stream: nothing was answered to list-sas.
    write(t, "cut-mid-stream", conf + conns[0] + resp + conf + conf + sas[0][:40])


def config_dir():
    import json
    t = "config_dir"
    with open(os.path.join(HERE, "..", "..", "models", "examples", "gateway.json")) as f:
        full = json.load(f)
    top = full["tunnelsync:tunnelsync"]
    tunnels = top["tunnels"]["tunnel"]

    def part(d):
        return json.dumps({"tunnelsync:tunnelsync": d}, indent=1).encode()

    base = {k: v for k, v in top.items() if k != "tunnels"}
    # One file per concern, one per tunnel: the layout of a git checkout.
    write(t, "split", b"\0".join([part(base)] + [part({"tunnels": {"tunnel": [x]}})
                                                for x in tunnels]))
    # The same tunnel in two files (merged, or refused), and an empty file.
    write(t, "duplicate", b"\0".join([part(top), part({"tunnels": {"tunnel": tunnels[:1]}}), b""]))
    # JSON next to XML.
    with open(os.path.join(HERE, "..", "..", "models", "examples", "gateway.xml"), "rb") as f:
        xml = f.read()
    write(t, "json-and-xml", part(base) + b"\0" + xml)
    write(t, "one-bad", part(base) + b"\0" + b'{"tunnelsync:tunnelsync": {"tunnels": 7}}')


def status():
    import json
    t = "status"
    tun = {"name": "t1", "id": "c4a7362d577a6c3019a474fd6f485821", "enabled": True,
           "managed_here": True, "psk_source": "random",
           "key_fingerprint": "sha256:0123456789abcdef", "key_generation": 3,
           "key_applied_at": "2026-12-01T21:00:00Z", "rotation_in_progress": None,
           "cloudflare_present": True,
           "cloudflare_last_generated_on": "2026-12-01T21:00:00.123456Z",
           "ike_state": "established", "child_up": True, "kernel_checked": True,
           "kernel_sa_pair": True, "auth_failures": 2,
           "last_auth_failure": "2026-12-01T20:59:00+01:00", "last_rotation": None,
           "last_error": "cloudflare: HTTP 500"}
    t2 = dict(tun, name="t2", key_fingerprint=None, key_generation=None, child_up=None,
              kernel_checked=False, auth_failures=4294967295, last_rotation="x")
    st = {"condition": "Reconciling", "reason": "ChangesPending", "time": "2026-12-01T21:00:01Z",
          "revision": {"applied": "sha256:ab", "attempted": "sha256:cd"},
          "make_before_break": {"state": "unknown", "reason": "charon not read"},
          "last_pass": {"actions": 3, "applied": 1, "pending": 2, "failed": 0},
          "tunnels": [tun, t2]}
    write(t, "full", json.dumps(st, indent=2).encode() + b"\n")
    write(t, "tunnels-not-list", json.dumps(dict(st, tunnels={"t1": tun})).encode())
    write(t, "truncated", json.dumps(st).encode()[:300])
    write(t, "array", b"[1, 2]")


def secret_file():
    t = "secret_file"
    for mode, name in ((0, "token"), (1, "api-key"), (2, "psk")):
        write(t, name, bytes([mode]) + b"O3bwKSjnaoCxDoUxjcq4Rk8ZKkezQUiy\n")
        write(t, name + "-crlf", bytes([mode]) + b"O3bwKSjnaoCxDoUxjcq4Rk8ZKkezQUiy\r\n")
    write(t, "token-header-injection", bytes([0]) + b"abc\r\nX-Evil: 1")
    write(t, "token-space", bytes([0]) + b"abc def")
    write(t, "psk-nul", bytes([2]) + b"abc\0def")
    write(t, "psk-two-lines", bytes([2]) + b"abc\ndef\n")
    write(t, "psk-newline-only", bytes([2]) + b"\n")


TARGETS = {"xfrm_dump": xfrm_dump, "ike_observe": ike_observe, "config_dir": config_dir,
           "status": status, "secret_file": secret_file}

if __name__ == "__main__":
    for name in sys.argv[1:] or TARGETS:
        TARGETS[name]()

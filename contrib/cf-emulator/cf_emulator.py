#!/usr/bin/python3
"""Local emulator of Cloudflare's Magic IPsec tunnels API.

Serves the eight endpoints of shared/cloudflare/magic-ipsec-openapi.json
under /client/v4/accounts/{account_id}/magic/ipsec_tunnels from an
in-memory store, with Cloudflare's envelope, authentication and error
codes, plus an admin interface for tests (fault injection, request log,
key fingerprints, seeding) under /__admin on the same port.

Secrets never travel in argv or the environment: the API token, the API
key and the admin token are read from files; a key-change hook receives
the new key on stdin. The request log and stderr never hold a PSK.

Python 3 standard library only.
"""

import argparse
import datetime
import hashlib
import http.server
import json
import os
import re
import secrets
import shlex
import signal
import socket
import socketserver
import ssl
import string
import subprocess
import sys
import threading
import time
import urllib.parse

API_PREFIX = "/client/v4/accounts/"
ALNUM = string.ascii_letters + string.digits
ID_RE = re.compile(r"^[A-Za-z0-9]{1,32}$")
# Cloudflare's text for its global limit (as users report it); the code
# 971 is what such answers are reported to carry, not verified here, and
# lies below the schema's minimum of 1000.
RATE_LIMIT_MESSAGE = ("More than %d requests per 300 seconds reached. Please wait and "
                      "consider throttling your request speed")


def now_rfc3339():
    return (datetime.datetime.now(datetime.timezone.utc)
            .isoformat(timespec="microseconds").replace("+00:00", "Z"))


def at_precision(stamp, digits, rounded=False):
    """An RFC 3339 time written with `digits` fractional digits (0: whole
    seconds), truncated, or rounded to the nearest unit."""
    t = parse_rfc3339(stamp)
    unit = 10 ** (6 - digits)
    us = t.microsecond
    if rounded:
        us += unit // 2
    t = t.replace(microsecond=0) + datetime.timedelta(microseconds=us - us % unit)
    text = t.strftime("%Y-%m-%dT%H:%M:%S")
    if digits:
        text += "." + ("%06d" % t.microsecond)[:digits]
    return text + "Z"


def answer_variant(result, fault):
    """An answer in a shape the schema allows but the emulator does not
    give by default (the change itself is made as usual): `missing_ids` left
    out of both maps of a bulk answer, `no_psk_metadata` (psk_generate: the
    optional object absent; bulk, where the object is required: without its
    optional last_generated_on), `precision` N (the times, created_on,
    modified_on and last_generated_on, written with N fractional digits,
    0-6; truncated, or rounded to the nearest unit with `round`; of a write
    answer or a list alike); `second_precision` is precision 0."""
    if not isinstance(result, dict):
        return result
    res = json.loads(json.dumps(result))
    entries = []
    bulk = isinstance(res.get("successfully_applied_psks"), dict)
    if bulk:
        for tid in fault.get("missing_ids", []):
            res["successfully_applied_psks"].pop(tid, None)
            if isinstance(res.get("unapplied_psks"), dict):
                res["unapplied_psks"].pop(tid, None)
        entries = list(res["successfully_applied_psks"].values())
    elif isinstance(res.get("ipsec_tunnels"), list):
        entries = res["ipsec_tunnels"]
    elif isinstance(res.get("modified_ipsec_tunnels"), list):
        entries = res["modified_ipsec_tunnels"]
    else:
        entries = [res.get(k) for k in ("ipsec_tunnel", "modified_ipsec_tunnel")
                   if isinstance(res.get(k), dict)] or [res]
    digits = 0 if fault.get("second_precision") else fault.get("precision")
    for e in entries:
        if not isinstance(e, dict):
            continue
        if fault.get("no_psk_metadata"):
            if bulk:
                e["psk_metadata"] = {}
            else:
                e.pop("psk_metadata", None)
        if digits is None:
            continue
        for obj, key in ((e, "created_on"), (e, "modified_on"),
                         (e.get("psk_metadata"), "last_generated_on")):
            if isinstance(obj, dict) and isinstance(obj.get(key), str):
                obj[key] = at_precision(obj[key], digits, bool(fault.get("round")))
    return res


def parse_rfc3339(s):
    return datetime.datetime.fromisoformat(s.replace("Z", "+00:00"))


def fingerprint(key):
    """Same as agent/core/secret.c ts_fingerprint_bytes()."""
    return "sha256:" + hashlib.sha256(key.encode()).hexdigest()[:16]


def log(msg):
    sys.stderr.write("cf-emulator: %s\n" % msg)
    sys.stderr.flush()


def write_atomic(path, data, mode=0o600):
    tmp = "%s.tmp.%d" % (path, os.getpid())
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
    with os.fdopen(fd, "w") as f:
        f.write(data)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def read_secret_file(path):
    with open(path, "r") as f:
        data = f.read()
    if data.endswith("\n"):
        data = data[:-1]
    if data.endswith("\r"):
        data = data[:-1]
    if not data:
        raise ValueError("%s is empty" % path)
    return data


class ApiError(Exception):
    def __init__(self, status, code, message, headers=None):
        super().__init__(message)
        self.status = status
        self.code = code
        self.message = message
        self.headers = headers or {}


HC_RATES = ("low", "mid", "high")
HC_TYPES = ("reply", "request")
HC_DIRECTIONS = ("unidirectional", "bidirectional")
TUNNEL_FIELDS = ("name", "description", "customer_endpoint", "cloudflare_endpoint",
                 "interface_address", "interface_address6", "replay_protection",
                 "allow_null_cipher", "health_check", "custom_remote_identities",
                 "automatic_return_routing", "bgp")

# The properties of magic_ipsec_tunnel_add_single_request, the body of the
# single-tunnel update (PUT .../ipsec_tunnels/{id}): anything else (the
# read-only id, created_on, modified_on, psk_metadata, allow_null_cipher of
# the tunnel read) is refused, naming it, so that a client sending back
# what it read is caught here (test_emulator_schema.py checks the set
# against the schema).
UPDATE_REQUEST_FIELDS = ("automatic_return_routing", "bgp", "cloudflare_endpoint",
                         "custom_remote_identities", "customer_endpoint", "description",
                         "health_check", "interface_address", "interface_address6", "name",
                         "psk", "replay_protection")


class Store:
    """Tunnels of one account. Each entry is the public tunnel object plus
    the private key under "_psk". Guarded by one lock."""

    def __init__(self, state_file=None, hook=None, batch_hook=None):
        self.lock = threading.RLock()
        self.tunnels = {}  # id -> dict (insertion ordered)
        self.state_file = state_file
        self.hook = hook
        self.batch_hook = batch_hook
        self.batch = None  # (tunnel id, key) changed by the API call in progress
        self.last_time = None

    # Timestamps strictly increase, so that "newer" is always visible.
    def stamp(self):
        t = now_rfc3339()
        if self.last_time is not None and t <= self.last_time:
            dt = parse_rfc3339(self.last_time) + datetime.timedelta(microseconds=1)
            t = dt.isoformat(timespec="microseconds").replace("+00:00", "Z")
        self.last_time = t
        return t

    def load(self, data, replace=True):
        with self.lock:
            if replace:
                self.tunnels = {}
            for t in data.get("tunnels", []):
                self.add(dict(t), validate=False)
            self.persist()

    def add(self, t, validate=True):
        if validate:
            self.validate_fields(t, creating=True)
        tid = t.pop("id", None) or secrets.token_hex(16)
        if not ID_RE.match(tid):
            raise ApiError(400, 1002, "invalid tunnel id")
        now = self.stamp()
        psk = t.pop("psk", None)
        tun = {"id": tid}
        for k in TUNNEL_FIELDS:
            if k in t:
                tun[k] = t[k]
        tun.setdefault("description", "")
        tun.setdefault("replay_protection", False)
        tun.setdefault("allow_null_cipher", False)
        tun.setdefault("health_check", {"enabled": True, "rate": "mid", "type": "reply",
                                        "direction": "unidirectional", "target": ""})
        tun["created_on"] = t.get("created_on", now)
        tun["modified_on"] = t.get("modified_on", now)
        meta = t.get("psk_metadata")
        tun["psk_metadata"] = dict(meta) if isinstance(meta, dict) else {}
        tun["_psk"] = psk
        if psk and "last_generated_on" not in tun["psk_metadata"]:
            tun["psk_metadata"]["last_generated_on"] = now
        self.tunnels[tid] = tun
        return tun

    @staticmethod
    def validate_fields(t, creating, new_hc_target=False):
        if not isinstance(t, dict):
            raise ApiError(400, 1002, "request body must be an object")
        if creating:
            for k in ("name", "cloudflare_endpoint", "interface_address"):
                if not isinstance(t.get(k), str) or not t.get(k):
                    raise ApiError(400, 1002, "%s is required" % k)
        for k in ("name", "description", "customer_endpoint", "cloudflare_endpoint",
                  "interface_address", "interface_address6", "psk"):
            if k in t and not isinstance(t[k], str):
                raise ApiError(400, 1002, "%s must be a string" % k)
        for k in ("replay_protection", "allow_null_cipher", "automatic_return_routing"):
            if k in t and not isinstance(t[k], bool):
                raise ApiError(400, 1002, "%s must be a boolean" % k)
        if "interface_address" in t and not t["interface_address"].endswith("/31"):
            raise ApiError(400, 1002, "interface_address must be a /31")
        hc = t.get("health_check")
        if hc is not None:
            if not isinstance(hc, dict):
                raise ApiError(400, 1002, "health_check must be an object")
            if "enabled" in hc and not isinstance(hc["enabled"], bool):
                raise ApiError(400, 1002, "health_check.enabled must be a boolean")
            for k, allowed in (("rate", HC_RATES), ("type", HC_TYPES),
                               ("direction", HC_DIRECTIONS)):
                if k in hc and hc[k] not in allowed:
                    raise ApiError(400, 1002, "health_check.%s must be one of %s"
                                   % (k, ", ".join(allowed)))
            target = hc.get("target")
            # String form unless x-magic-new-hc-target: true (then an object).
            if target is not None and not isinstance(target, (dict if new_hc_target else str)):
                raise ApiError(400, 1002, "health_check.target must be %s"
                               % ("an object" if new_hc_target else "a string"))

    def get(self, tid):
        t = self.tunnels.get(tid)
        if t is None:
            raise ApiError(404, 1032, "IPsec tunnel not found")
        return t

    def set_key(self, tid, key):
        t = self.tunnels[tid]
        t["_psk"] = key
        stamp = self.stamp()
        t["psk_metadata"] = {"last_generated_on": stamp}
        t["modified_on"] = stamp
        self.run_hook(tid, key)

    def begin_call(self):
        """An API call begins (under the lock): its key changes are
        collected for the batch hook."""
        self.batch = []

    def end_call(self):
        """The call's changes are made: the batch hook takes all its keys in
        one run, before the answer."""
        batch, self.batch = self.batch, None
        if not self.batch_hook or not batch:
            return
        doc = json.dumps({"keys": [{"id": tid, "psk": key} for tid, key in batch]})
        try:
            subprocess.run(shlex.split(self.batch_hook), input=doc.encode(), timeout=600,
                           check=True, stdout=subprocess.DEVNULL)
        except (OSError, subprocess.SubprocessError) as e:
            log("batch key-change hook failed for %d keys: %s" % (len(batch),
                                                                  type(e).__name__))

    def run_hook(self, tid, key):
        if self.batch_hook and self.batch is not None:
            self.batch.append((tid, key))
        if not self.hook:
            return
        argv = shlex.split(self.hook) + [tid]
        env = dict(os.environ, CF_EMULATOR_TUNNEL_ID=tid)
        try:
            subprocess.run(argv, input=key.encode(), env=env, timeout=30, check=True,
                           stdout=subprocess.DEVNULL)
        except (OSError, subprocess.SubprocessError) as e:
            log("key-change hook failed for tunnel %s: %s" % (tid, type(e).__name__))

    def persist(self):
        if not self.state_file:
            return
        data = {"tunnels": []}
        for t in self.tunnels.values():
            d = {k: v for k, v in t.items() if k != "_psk"}
            if t.get("_psk"):
                d["psk"] = t["_psk"]
            data["tunnels"].append(d)
        write_atomic(self.state_file, json.dumps(data, indent=1))

    @staticmethod
    def public(t, new_hc_target=False):
        d = {k: v for k, v in t.items() if not k.startswith("_")}
        hc = d.get("health_check")
        if isinstance(hc, dict):
            hc = dict(hc)
            target = hc.get("target", "")
            if new_hc_target:
                if isinstance(target, str):
                    hc["target"] = {"saved": target,
                                    "effective": target or d.get("customer_endpoint", "")}
            elif isinstance(target, dict):
                hc["target"] = target.get("saved", "")
            d["health_check"] = hc
        if not d.get("psk_metadata"):
            d["psk_metadata"] = {}
        return d


class Faults:
    """Rules: {method, path (regex, searched), count (-1 = forever), action
    fields}. The first matching rule with count left applies."""

    def __init__(self):
        self.lock = threading.Lock()
        self.rules = []

    def set(self, rules):
        with self.lock:
            self.rules = [dict(r) for r in rules]
            for r in self.rules:
                r.setdefault("count", 1)
                r.setdefault("method", "*")
                r.setdefault("path", ".*")
                re.compile(r["path"])
                digits = r.get("precision")
                if digits is not None and (isinstance(digits, bool) or
                                           not isinstance(digits, int) or
                                           not 0 <= digits <= 6):
                    raise ValueError("precision must be an integer 0..6")

    def take(self, method, path):
        with self.lock:
            for r in self.rules:
                if r["count"] == 0:
                    continue
                if r["method"] not in ("*", method):
                    continue
                if not re.search(r["path"], path):
                    continue
                if r["count"] > 0:
                    r["count"] -= 1
                return dict(r)
        return None


class Emulator:
    def __init__(self, args):
        self.args = args
        self.account_id = args.account_id
        self.token = read_secret_file(args.token_file) if args.token_file else None
        self.email = args.email
        self.api_key = read_secret_file(args.key_file) if args.key_file else None
        self.admin_token = (read_secret_file(args.admin_token_file)
                            if args.admin_token_file else None)
        self.store = Store(args.state, args.on_key_change, args.on_key_change_batch)
        self.faults = Faults()
        self.log_lock = threading.Lock()
        self.requests = []
        self.rate_limit = args.rate_limit
        self.rate_window = []  # monotonic times of API requests in the last 5 min
        if args.state and os.path.exists(args.state):
            with open(args.state) as f:
                self.store.load(json.load(f))
        elif args.seed:
            with open(args.seed) as f:
                self.store.load(json.load(f))

    def rate_limited(self):
        """Cloudflare's global limit: N requests per 5 minutes, then 429.
        Returns the seconds to wait, or 0 when the request may pass."""
        if not self.rate_limit:
            return 0
        now = time.monotonic()
        with self.log_lock:
            self.rate_window = [t for t in self.rate_window if now - t < 300]
            if len(self.rate_window) >= self.rate_limit:
                return max(1, int(300 - (now - self.rate_window[0]) + 0.999))
            self.rate_window.append(now)
        return 0

    def record(self, method, path, query, user_agent):
        entry = {"method": method, "path": path, "query": query, "status": None,
                 "time": now_rfc3339(), "fault": None, "user_agent": user_agent}
        with self.log_lock:
            self.requests.append(entry)
        return entry

    # -- authentication, as Cloudflare answers it --
    def authenticate(self, headers):
        auth = headers.get("Authorization")
        email = headers.get("X-Auth-Email")
        key = headers.get("X-Auth-Key")
        if auth is not None:
            m = re.match(r"^Bearer ([^\s]+)$", auth)
            if not m:
                raise ApiError(400, 6003, "Invalid request headers")
            if self.token is None or not secrets.compare_digest(m.group(1), self.token):
                raise ApiError(401, 1000, "Invalid API Token")
            return
        if email is not None or key is not None:
            if email is None or key is None:
                raise ApiError(400, 9106, "Missing X-Auth-Key, X-Auth-Email or "
                                          "Authorization headers")
            if (self.api_key is None or email != self.email
                    or not secrets.compare_digest(key, self.api_key)):
                raise ApiError(403, 9103, "Unknown X-Auth-Key or X-Auth-Email")
            return
        raise ApiError(400, 9106, "Missing X-Auth-Key, X-Auth-Email or Authorization headers")

    # -- the API --
    def dispatch(self, method, path, query, headers, body):
        """Returns (status, result) or raises ApiError."""
        rest = path[len(API_PREFIX):]
        m = re.match(r"^([^/]+)/magic/ipsec_tunnels(/psk|/[^/]+|/[^/]+/psk_generate)?/?$",
                     rest)
        if not m:
            raise ApiError(404, 7003, "No route for the URI")
        self.authenticate(headers)
        if m.group(1) != self.account_id:
            raise ApiError(403, 10000, "Authentication error")
        sub = m.group(2) or ""
        validate_only = query.get("validate_only", ["false"])[-1].lower() == "true"
        new_hc = headers.get("x-magic-new-hc-target", "").lower() == "true"
        pub = lambda t: Store.public(t, new_hc)
        st = self.store
        with st.lock:
            if sub == "":
                if method == "GET":
                    return {"ipsec_tunnels": [pub(t) for t in st.tunnels.values()]}
                if method == "POST":
                    req = self.json_body(body)
                    Store.validate_fields(req, creating=True)
                    if any(t["name"] == req["name"] for t in st.tunnels.values()):
                        raise ApiError(400, 1002, "a tunnel with this name exists")
                    if validate_only:
                        snapshot = dict(st.tunnels)
                        t = st.add(dict(req))
                        st.tunnels = snapshot
                        return pub(t)
                    psk = req.get("psk")
                    t = st.add(dict(req))
                    if psk:
                        st.run_hook(t["id"], psk)
                    st.persist()
                    return pub(t)
                if method == "PUT":
                    req = self.json_body(body)
                    items = req.get("ipsec_tunnels") if isinstance(req, dict) else None
                    if items is None:
                        items = [req]
                    if not isinstance(items, list):
                        raise ApiError(400, 1002, "ipsec_tunnels must be an array")
                    out = []
                    for item in items:
                        if not isinstance(item, dict) or not isinstance(item.get("id"), str):
                            raise ApiError(400, 1002, "every tunnel needs an id")
                        st.get(item["id"])
                        Store.validate_fields(item, creating=False)
                    for item in items:
                        t = st.get(item["id"])
                        out.append(pub(self.update(t, item, validate_only)))
                    if not validate_only:
                        st.persist()
                    return {"modified": not validate_only, "modified_ipsec_tunnels": out}
                raise ApiError(405, 10405, "Method not allowed")
            if sub == "/psk":
                if method != "POST":
                    raise ApiError(405, 10405, "Method not allowed")
                return self.psk_bulk(self.json_body(body), validate_only)
            if sub.endswith("/psk_generate"):
                if method != "POST":
                    raise ApiError(405, 10405, "Method not allowed")
                tid = sub[1:-len("/psk_generate")]
                t = st.get(tid)
                if validate_only:
                    return {"ipsec_tunnel_id": tid,
                            "psk_metadata": dict(t.get("psk_metadata") or {})}
                key = "".join(secrets.choice(ALNUM) for _ in range(32))
                st.set_key(tid, key)
                st.persist()
                return {"ipsec_tunnel_id": tid, "psk": key,
                        "psk_metadata": dict(t["psk_metadata"])}
            tid = sub[1:]
            t = st.get(tid)
            if method == "GET":
                return {"ipsec_tunnel": pub(t)}
            if method == "PUT":
                req = self.json_body(body)
                # magic_ipsec_tunnel_add_single_request: name,
                # cloudflare_endpoint and interface_address are required,
                # nothing outside its properties is taken.
                other = sorted(set(req) - set(UPDATE_REQUEST_FIELDS)) if isinstance(req, dict) \
                    else []
                if other:
                    raise ApiError(400, 1002, "not a property of the tunnel update request: %s"
                                   % ", ".join(other))
                Store.validate_fields(req, creating=True, new_hc_target=new_hc)
                t = self.update(t, req, validate_only)
                if not validate_only:
                    st.persist()
                return {"modified": not validate_only, "modified_ipsec_tunnel": pub(t)}
            if method == "DELETE":
                if not validate_only:
                    del st.tunnels[tid]
                    st.persist()
                return {"deleted": not validate_only, "deleted_ipsec_tunnel": pub(t)}
            raise ApiError(405, 10405, "Method not allowed")

    def update(self, t, req, validate_only):
        new = dict(t)
        for k in TUNNEL_FIELDS:
            if k in req:
                new[k] = req[k]
        hc = new.get("health_check")
        if isinstance(hc, dict) and isinstance(hc.get("target"), dict):
            # Stored in the string form; the object form is a view.
            hc = dict(hc)
            hc["target"] = hc["target"].get("saved", "")
            new["health_check"] = hc
        if validate_only:
            return new
        new["modified_on"] = self.store.stamp()
        self.store.tunnels[t["id"]] = new
        if isinstance(req.get("psk"), str) and req["psk"]:
            self.store.set_key(t["id"], req["psk"])
        return self.store.tunnels[t["id"]]

    def psk_bulk(self, req, validate_only, forced_unapplied=None):
        if not isinstance(req, dict) or not isinstance(req.get("psks"), list):
            raise ApiError(400, 1002, "psks must be an array")
        for e in req["psks"]:
            if (not isinstance(e, dict) or not isinstance(e.get("id"), str)
                    or not isinstance(e.get("psk"), str)):
                raise ApiError(400, 1002, "every entry needs an id and a psk string")
        forced = forced_unapplied or {}
        applied, unapplied = {}, {}
        st = self.store
        for e in req["psks"]:
            tid, key = e["id"], e["psk"]
            if tid in forced:
                unapplied[tid] = forced[tid]
            elif tid not in st.tunnels:
                unapplied[tid] = "IPsec tunnel not found"
            elif not key:
                unapplied[tid] = "PSK must not be empty"
            elif len(key) > 255:
                unapplied[tid] = "PSK is too long"
            else:
                if not validate_only:
                    st.set_key(tid, key)
                applied[tid] = {"ipsec_tunnel_id": tid, "ipsec_id": "%s_%s" % (
                    self.account_id, tid), "psk": key,
                    "psk_metadata": dict(st.tunnels[tid].get("psk_metadata") or {})}
        if applied and not validate_only:
            st.persist()
        return {"successfully_applied_psks": applied, "unapplied_psks": unapplied}

    @staticmethod
    def json_body(body):
        try:
            return json.loads(body.decode("utf-8") if body else "")
        except (ValueError, UnicodeDecodeError):
            raise ApiError(400, 1001, "Request body is not valid JSON") from None

    # -- admin --
    def admin(self, method, path, headers, body):
        if self.admin_token is not None:
            given = headers.get("X-Admin-Token", "")
            if not secrets.compare_digest(given, self.admin_token):
                return 403, {"error": "admin token required"}
        if path == "/__admin/faults":
            if method == "POST":
                req = json.loads(body or b"{}")
                self.faults.set(req.get("rules", []))
                return 200, {"rules": len(self.faults.rules)}
            if method == "DELETE":
                self.faults.set([])
                return 200, {"rules": 0}
            if method == "GET":
                with self.faults.lock:
                    return 200, {"rules": self.faults.rules}
        if path == "/__admin/requests":
            if method == "GET":
                with self.log_lock:
                    return 200, {"requests": list(self.requests)}
            if method == "DELETE":
                with self.log_lock:
                    self.requests = []
                return 200, {"requests": []}
        if path == "/__admin/tunnels":
            if method == "GET":
                with self.store.lock:
                    out = []
                    for t in self.store.tunnels.values():
                        out.append({"id": t["id"], "name": t.get("name"),
                                    "fingerprint": fingerprint(t["_psk"]) if t.get("_psk")
                                    else None,
                                    "last_generated_on": (t.get("psk_metadata") or {})
                                    .get("last_generated_on")})
                    return 200, {"tunnels": out}
            if method in ("POST", "PUT"):
                req = json.loads(body or b"{}")
                self.store.load(req, replace=(method == "PUT"))
                return 200, {"tunnels": len(self.store.tunnels)}
        return 404, {"error": "no such admin endpoint"}


def envelope_ok(result):
    return {"success": True, "errors": [], "messages": [], "result": result}


def envelope_error(code, message):
    return {"success": False, "errors": [{"code": code, "message": message}],
            "messages": [], "result": None}


class Handler(http.server.BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    server_version = "cf-emulator"
    sys_version = ""
    emu = None  # set by main()

    def log_message(self, fmt, *args):
        # The request line holds no secret (PSKs travel in bodies only).
        if self.emu.args.verbose:
            log("%s %s" % (self.address_string(), fmt % args))

    timeout = 60  # seconds a connection may sit idle

    def handle(self):
        try:
            if isinstance(self.connection, ssl.SSLSocket):
                self.connection.do_handshake()
            super().handle()
        except (ssl.SSLError, ConnectionError, socket.timeout, OSError):
            self.close_connection = True

    def read_body(self):
        n = int(self.headers.get("Content-Length") or 0)
        return self.rfile.read(n) if n > 0 else b""

    def send_json(self, status, obj, extra_headers=None, raw=None):
        data = raw if raw is not None else json.dumps(obj).encode()
        # The request log has the status before the client can see the
        # answer (a test reading the log right after must find it there).
        if getattr(self, "entry", None) is not None:
            self.entry["status"] = status
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (extra_headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        self.wfile.write(data)
        self.wfile.flush()

    def drop(self):
        """Closes the connection without a response (a lost response)."""
        if getattr(self, "entry", None) is not None:
            self.entry["status"] = 0
        self.close_connection = True
        try:
            self.connection.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass

    def do_any(self):
        url = urllib.parse.urlsplit(self.path)
        path, query = url.path, urllib.parse.parse_qs(url.query)
        body = self.read_body()
        self.entry = None
        if path.startswith("/__admin/"):
            try:
                status, obj = self.emu.admin(self.command, path, self.headers, body)
            except (ValueError, re.error) as e:
                status, obj = 400, {"error": str(e)}
            self.send_json(status, obj)
            return
        entry = self.emu.record(self.command, path, url.query, self.headers.get("User-Agent"))
        self.entry = entry
        fault = self.emu.faults.take(self.command, path)
        if fault:
            entry["fault"] = fault.get("action")
        status = self.serve_api(path, query, body, fault)
        entry["status"] = status

    def call_api(self, path, query, body, fault):
        if fault and fault.get("action") == "unapplied" and \
                path.endswith("/ipsec_tunnels/psk"):
            self.emu.authenticate(self.headers)
            reason = fault.get("reason", "failed to apply PSK")
            forced = {tid: reason for tid in fault.get("ids", [])}
            validate_only = query.get("validate_only", ["false"])[-1] == "true"
            return self.emu.psk_bulk(Emulator.json_body(body), validate_only, forced)
        return self.emu.dispatch(self.command, path, query, self.headers, body)

    def serve_api(self, path, query, body, fault):
        action = fault.get("action") if fault else None
        if fault and fault.get("delay"):
            time.sleep(float(fault["delay"]))
        wait = self.emu.rate_limited()
        if wait and action != "status":
            self.send_json(429, envelope_error(971, RATE_LIMIT_MESSAGE % self.emu.rate_limit),
                           {"Retry-After": str(wait)})
            return 429
        if action == "status":
            status = int(fault.get("status", 500))
            headers = {}
            if status == 429:
                headers["Retry-After"] = str(fault.get("retry_after", 1))
                env = envelope_error(971, RATE_LIMIT_MESSAGE % 1200)
            else:
                env = envelope_error(int(fault.get("code", 10002)),
                                     fault.get("message", "Internal server error"))
            self.send_json(status, env, headers)
            return status
        if action == "drop_before":
            self.drop()
            return 0
        try:
            if not path.startswith(API_PREFIX):
                raise ApiError(404, 7003, "No route for the URI")
            with self.emu.store.lock:
                self.emu.store.begin_call()
                try:
                    result = self.call_api(path, query, body, fault)
                finally:
                    self.emu.store.end_call()
            if action == "variant":
                result = answer_variant(result, fault)
            status, env, headers = 200, envelope_ok(result), {}
        except ApiError as e:
            status, env, headers = e.status, envelope_error(e.code, e.message), e.headers
        if action == "drop":
            # The change is made; the answer never arrives.
            self.drop()
            return 0
        if action == "huge_header":
            # The change is made; the answer carries one oversized header
            # (default 1 MiB), which no client should take for its memory.
            headers = dict(headers or {})
            headers["X-Padding"] = "x" * int(fault.get("size", 1 << 20))
        if action == "malformed":
            data = json.dumps(env).encode()
            raw = fault.get("body")
            raw = raw.encode() if isinstance(raw, str) else data[:len(data) // 2]
            self.send_json(status, None, headers, raw=raw)
            return status
        self.send_json(status, env, headers)
        return status

    do_GET = do_any
    do_POST = do_any
    do_PUT = do_any
    do_DELETE = do_any
    do_PATCH = do_any


class Server(socketserver.ThreadingMixIn, http.server.HTTPServer):
    daemon_threads = True
    allow_reuse_address = True

    def __init__(self, addr, handler, ssl_ctx):
        self.ssl_ctx = ssl_ctx
        self.address_family = socket.AF_INET6 if ":" in addr[0] else socket.AF_INET
        super().__init__(addr, handler)

    def get_request(self):
        sock, addr = self.socket.accept()
        if self.ssl_ctx:
            # The handshake happens in the handler's thread (setup()).
            sock = self.ssl_ctx.wrap_socket(sock, server_side=True,
                                            do_handshake_on_connect=False)
        return sock, addr


def main(argv=None):
    p = argparse.ArgumentParser(
        description="Emulator of Cloudflare's Magic IPsec tunnels API for tests. "
                    "Secrets are read from files, never from arguments.")
    p.add_argument("--listen", default="127.0.0.1", help="address (default 127.0.0.1)")
    p.add_argument("--port", type=int, default=0, help="port; 0 picks a free one")
    p.add_argument("--port-file", help="write the chosen port here once listening")
    p.add_argument("--pid-file", help="write the process id here")
    p.add_argument("--account-id", default="023e105f4ecef8ad9ca31a8372d0c353")
    p.add_argument("--token-file", help="file with the accepted API token (Bearer)")
    p.add_argument("--email", help="accepted X-Auth-Email (with --key-file)")
    p.add_argument("--key-file", help="file with the accepted X-Auth-Key")
    p.add_argument("--admin-token-file",
                   help="file with the token /__admin requires in X-Admin-Token "
                        "(default: admin open; the emulator is for loopback only)")
    p.add_argument("--cert", help="TLS certificate chain (PEM); without it: plain http")
    p.add_argument("--key", help="TLS private key (PEM)")
    p.add_argument("--seed", help="JSON file {\"tunnels\": [...]} to start from")
    p.add_argument("--state", help="JSON file the store is loaded from and saved to (0600)")
    p.add_argument("--on-key-change",
                   help="command run when a tunnel's key changes: key on stdin, "
                        "tunnel id as last argument and in CF_EMULATOR_TUNNEL_ID")
    p.add_argument("--on-key-change-batch",
                   help="command run once per API call that changed keys, after the "
                        "changes and before the answer: {\"keys\": [{\"id\", \"psk\"}, "
                        "...]} on stdin (every key of a bulk call in one run)")
    p.add_argument("--rate-limit", type=int, default=0, metavar="N",
                   help="answer 429 (with Retry-After) beyond N API requests per 5 minutes, "
                        "as Cloudflare does beyond 1200; default: no limit")
    p.add_argument("--verbose", action="store_true", help="log request lines to stderr")
    args = p.parse_args(argv)

    if bool(args.cert) != bool(args.key):
        p.error("--cert and --key go together")
    if args.key_file and not args.email:
        p.error("--key-file needs --email")
    if not ID_RE.match(args.account_id):
        p.error("--account-id must be 1..32 letters or digits")

    try:
        emu = Emulator(args)
    except (OSError, ValueError) as e:
        log("cannot start: %s" % e)
        return 1
    Handler.emu = emu
    ctx = None
    if args.cert:
        ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
        ctx.load_cert_chain(args.cert, args.key)
    server = Server((args.listen, args.port), Handler, ctx)
    port = server.server_address[1]

    def stop(signum, frame):
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, stop)
    signal.signal(signal.SIGINT, stop)
    if args.pid_file:
        write_atomic(args.pid_file, "%d\n" % os.getpid(), 0o644)
    if args.port_file:
        write_atomic(args.port_file, "%d\n" % port, 0o644)
    log("listening on %s port %d (%s)" % (args.listen, port, "https" if ctx else "http"))
    try:
        server.serve_forever(poll_interval=0.2)
    finally:
        server.server_close()
        if args.pid_file:
            try:
                os.unlink(args.pid_file)
            except OSError:
                pass
    log("stopped")
    return 0


if __name__ == "__main__":
    sys.exit(main())

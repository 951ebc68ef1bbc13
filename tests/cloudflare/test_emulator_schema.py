#!/usr/bin/python3
"""Checks the Cloudflare API emulator against the shared OpenAPI schema:
every endpoint's success and error responses are validated (jsonschema,
from Debian's python3-jsonschema) against the response schemas the
document declares for that operation, plus the emulator's own promises
(validate_only changes nothing, last_generated_on moves on every key
change, generated keys are 32 alphanumerics, --state survives a restart,
admin token, clean SIGTERM, the batch key hook once per call).

Usage: test_emulator_schema.py EMULATOR SCHEMA
"""

import copy
import datetime
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import urllib.error
import urllib.request

import jsonschema

EMULATOR = SCHEMA_PATH = None
ACCOUNT = "023e105f4ecef8ad9ca31a8372d0c353"
T1 = "c4a7362d577a6c3019a474fd6f485821"
T2 = "d4a7362d577a6c3019a474fd6f485822"
TOKEN = "schema-test-token-8Hk2"
ADMIN = "schema-admin-token-Q1"
BASE = "/client/v4/accounts/%s/magic/ipsec_tunnels" % ACCOUNT
SEED = {"tunnels": [
    {"id": T1, "name": "edge-a", "cloudflare_endpoint": "203.0.113.1",
     "customer_endpoint": "198.51.100.2", "interface_address": "10.0.0.0/31",
     "interface_address6": "2606:54c1:7:0:a9fe:12d2:1:200/127", "psk": "seedpsk-123456",
     "custom_remote_identities": {"fqdn_id": "a.%s.custom.ipsec.cloudflare.com" % ACCOUNT}},
    {"id": T2, "name": "edge-b", "cloudflare_endpoint": "203.0.113.2",
     "interface_address": "10.0.0.2/31"},
]}
RFC3339 = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-]\d\d:\d\d)$")


def to_json_schema(node):
    """OpenAPI 3.0 → JSON Schema: `nullable: true` becomes a null type."""
    if isinstance(node, list):
        return [to_json_schema(n) for n in node]
    if not isinstance(node, dict):
        return node
    out = {k: to_json_schema(v) for k, v in node.items()}
    if out.pop("nullable", False):
        if "type" in out:
            t = out["type"]
            out["type"] = (t if isinstance(t, list) else [t]) + ["null"]
        if "anyOf" in out:
            out["anyOf"] = out["anyOf"] + [{"type": "null"}]
    return out


def format_checker():
    fc = jsonschema.FormatChecker()

    @fc.checks("date-time")
    def is_datetime(value):
        if not isinstance(value, str):
            return True
        if not RFC3339.match(value):
            return False
        datetime.datetime.fromisoformat(value.replace("Z", "+00:00"))
        return True

    return fc


class Emulator:
    def __init__(self, tmp, extra=(), name="emu"):
        self.tmp = tmp
        self.port_file = os.path.join(tmp, name + ".port")
        if os.path.exists(self.port_file):
            os.unlink(self.port_file)
        self.stderr = open(os.path.join(tmp, name + ".stderr"), "w")
        self.proc = subprocess.Popen(
            ["/usr/bin/python3", EMULATOR, "--account-id", ACCOUNT,
             "--token-file", os.path.join(tmp, "token"),
             "--admin-token-file", os.path.join(tmp, "admin"),
             "--seed", os.path.join(tmp, "seed.json"), "--port-file", self.port_file,
             *extra], stderr=self.stderr, stdout=self.stderr)
        for _ in range(200):
            if os.path.exists(self.port_file):
                with open(self.port_file) as f:
                    self.port = int(f.read())
                break
            if self.proc.poll() is not None:
                raise RuntimeError("emulator exited")
            time.sleep(0.05)
        else:
            raise RuntimeError("emulator did not start")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=10)
        self.stderr.close()
        return rc

    def call(self, method, path, body=None, headers=None, raw=None):
        h = {"Authorization": "Bearer " + TOKEN}
        if headers is not None:
            h = headers
        data = raw if raw is not None else (json.dumps(body).encode() if body is not None
                                            else None)
        req = urllib.request.Request("http://127.0.0.1:%d%s" % (self.port, path), data=data,
                                     method=method, headers=h)
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status, json.loads(r.read())
        except urllib.error.HTTPError as e:
            return e.code, json.loads(e.read())

    def admin(self, method, path, body=None, token=ADMIN):
        return self.call(method, "/__admin" + path, body, {"X-Admin-Token": token})


class SchemaTest(unittest.TestCase):
    @classmethod
    def setUpClass(cls):
        with open(SCHEMA_PATH) as f:
            cls.doc = json.load(f)
        cls.js = to_json_schema(cls.doc)
        cls.fc = format_checker()
        cls.tmpdir = tempfile.TemporaryDirectory(prefix="ts-cf-schema-")
        tmp = cls.tmpdir.name
        for name, content in (("token", TOKEN + "\n"), ("admin", ADMIN + "\n"),
                              ("seed.json", json.dumps(SEED))):
            with open(os.path.join(tmp, name), "w") as f:
                f.write(content)
        cls.emu = Emulator(tmp)
        cls.validated = set()

    @classmethod
    def tearDownClass(cls):
        assert cls.emu.stop() == 0
        cls.tmpdir.cleanup()

    def setUp(self):
        self.assertEqual(self.emu.admin("PUT", "/tunnels", SEED)[0], 200)
        self.assertEqual(self.emu.admin("DELETE", "/faults")[0], 200)

    def schema_for(self, path, method, status):
        op = self.js["paths"]["/accounts/{account_id}/magic/ipsec_tunnels" + path][method]
        key = str(status) if str(status) in op["responses"] else "%dXX" % (status // 100)
        schema = op["responses"][key]["content"]["application/json"]["schema"]
        return dict(schema, components=self.js["components"])

    def validate(self, schema, doc):
        jsonschema.Draft7Validator(schema, format_checker=self.fc).validate(doc)

    def check(self, path, method, status, doc, expect_status):
        """Validates doc against the operation's declared response schema."""
        self.assertEqual(status, expect_status, doc)
        schema = self.schema_for(path, method, status)
        if status >= 400 and "allOf" in schema:
            # For 7 of the 8 operations the document declares the 4XX body
            # as allOf[<success schema>, failure], which no body satisfies
            # (success: enum [true] and enum [false]). Shown below on
            # Cloudflare's own example; the failure half is what holds.
            example = {"success": False, "errors": [{"code": 7003,
                                                     "message": "No route for the URI"}],
                       "messages": [], "result": None}
            with self.assertRaises(jsonschema.ValidationError):
                self.validate(schema, example)
            schema = dict(self.js["components"]["schemas"]["magic_api-response-common-failure"],
                          components=self.js["components"])
        self.validate(schema, doc)
        self.validated.add((path, method, status // 100))
        if status >= 400:
            self.assertFalse(doc["success"])
            self.assertIsNone(doc["result"])
            self.assertGreaterEqual(len(doc["errors"]), 1)
        return doc

    def fingerprints(self):
        st, doc = self.emu.admin("GET", "/tunnels")
        self.assertEqual(st, 200)
        return {t["id"]: (t["fingerprint"], t["last_generated_on"]) for t in doc["tunnels"]}

    def test_list(self):
        st, doc = self.emu.call("GET", BASE)
        self.check("", "get", st, doc, 200)
        self.assertEqual([t["id"] for t in doc["result"]["ipsec_tunnels"]], [T1, T2])
        for t in doc["result"]["ipsec_tunnels"]:
            self.assertNotIn("psk", t)  # write-only
        st, doc = self.emu.call("GET", BASE, headers={"Authorization": "Bearer nope"})
        self.check("", "get", st, doc, 401)
        self.assertEqual(doc["errors"][0]["code"], 1000)
        st, doc = self.emu.call("GET", BASE, headers={})
        self.check("", "get", st, doc, 400)
        st, doc = self.emu.call("GET", BASE.replace(ACCOUNT, "f" * 32))
        self.check("", "get", st, doc, 403)
        # The new health-check target format on request.
        st, doc = self.emu.call("GET", BASE, headers={"Authorization": "Bearer " + TOKEN,
                                                      "x-magic-new-hc-target": "true"})
        self.check("", "get", st, doc, 200)
        self.assertIsInstance(doc["result"]["ipsec_tunnels"][0]["health_check"]["target"],
                              dict)

    def test_get(self):
        st, doc = self.emu.call("GET", BASE + "/" + T1)
        self.check("/{ipsec_tunnel_id}", "get", st, doc, 200)
        self.assertEqual(doc["result"]["ipsec_tunnel"]["name"], "edge-a")
        st, doc = self.emu.call("GET", BASE + "/" + "0" * 32)
        self.check("/{ipsec_tunnel_id}", "get", st, doc, 404)
        self.assertEqual(doc["errors"][0]["code"], 1032)

    def test_create(self):
        body = {"name": "edge-c", "cloudflare_endpoint": "203.0.113.3",
                "interface_address": "10.0.0.4/31", "psk": "createdpsk-98765"}
        st, doc = self.emu.call("POST", BASE + "?validate_only=true", body)
        self.check("", "post", st, doc, 200)
        self.assertEqual(len(self.fingerprints()), 2)
        st, doc = self.emu.call("POST", BASE, body)
        self.check("", "post", st, doc, 200)
        new_id = doc["result"]["id"]
        self.assertRegex(new_id, r"^[0-9a-f]{32}$")
        self.assertIsNotNone(self.fingerprints()[new_id][0])
        st, doc = self.emu.call("POST", BASE, {"name": "x"})
        self.check("", "post", st, doc, 400)

    def test_bulk_update(self):
        before = self.emu.call("GET", BASE + "/" + T1)[1]["result"]["ipsec_tunnel"]
        body = {"ipsec_tunnels": [{"id": T1, "description": "changed"}]}
        st, doc = self.emu.call("PUT", BASE + "?validate_only=true", body)
        self.check("", "put", st, doc, 200)
        now = self.emu.call("GET", BASE + "/" + T1)[1]["result"]["ipsec_tunnel"]
        self.assertEqual(now, before)
        st, doc = self.emu.call("PUT", BASE, body)
        self.check("", "put", st, doc, 200)
        self.assertTrue(doc["result"]["modified"])
        self.assertEqual(doc["result"]["modified_ipsec_tunnels"][0]["description"], "changed")
        st, doc = self.emu.call("PUT", BASE, {"ipsec_tunnels": [{"id": "0" * 32}]})
        self.check("", "put", st, doc, 404)

    def test_update_and_delete(self):
        path = BASE + "/" + T2
        st, doc = self.emu.call("PUT", path, {"name": "edge-b", "cloudflare_endpoint": "203.0.113.2",
                                              "interface_address": "10.0.0.2/31",
                                              "description": "x", "psk": "updatedpsk-4242"})
        self.check("/{ipsec_tunnel_id}", "put", st, doc, 200)
        fp = self.fingerprints()
        self.assertIsNotNone(fp[T2][0])
        self.assertIsNotNone(fp[T2][1])
        st, doc = self.emu.call("PUT", BASE + "/" + "0" * 32, {})
        self.check("/{ipsec_tunnel_id}", "put", st, doc, 404)
        st, doc = self.emu.call("DELETE", path + "?validate_only=true", {})
        self.check("/{ipsec_tunnel_id}", "delete", st, doc, 200)
        self.assertIn(T2, self.fingerprints())
        st, doc = self.emu.call("DELETE", path, {})
        self.check("/{ipsec_tunnel_id}", "delete", st, doc, 200)
        self.assertTrue(doc["result"]["deleted"])
        self.assertNotIn(T2, self.fingerprints())
        st, doc = self.emu.call("DELETE", path, {})
        self.check("/{ipsec_tunnel_id}", "delete", st, doc, 404)

    def test_update_properties(self):
        """The tunnel update call as the agent makes it (every property the
        request allows, the declared ones changed, no psk): validate_only
        changes nothing; the real call changes the properties and neither
        the key nor last_generated_on; the schema's required fields and
        health check forms are enforced."""
        path = BASE + "/" + T1
        cur = self.emu.call("GET", path)[1]["result"]["ipsec_tunnel"]
        keys_before = self.fingerprints()
        body = {k: cur[k] for k in ("name", "cloudflare_endpoint", "customer_endpoint",
                                    "interface_address", "interface_address6", "description",
                                    "replay_protection", "health_check",
                                    "custom_remote_identities") if k in cur}
        body["interface_address"] = "10.0.9.0/31"
        body["health_check"] = dict(body["health_check"], rate="high", type="request",
                                    target="10.0.9.1")
        st, doc = self.emu.call("PUT", path + "?validate_only=true", body)
        self.check("/{ipsec_tunnel_id}", "put", st, doc, 200)
        self.assertFalse(doc["result"]["modified"])
        self.assertEqual(self.emu.call("GET", path)[1]["result"]["ipsec_tunnel"], cur)
        st, doc = self.emu.call("PUT", path, body)
        self.check("/{ipsec_tunnel_id}", "put", st, doc, 200)
        self.assertTrue(doc["result"]["modified"])
        got = self.emu.call("GET", path)[1]["result"]["ipsec_tunnel"]
        self.assertEqual(got["interface_address"], "10.0.9.0/31")
        self.assertEqual(got["health_check"]["rate"], "high")
        self.assertEqual(got["health_check"]["target"], "10.0.9.1")
        self.assertEqual(got["custom_remote_identities"], cur["custom_remote_identities"])
        self.assertEqual(got["psk_metadata"], cur["psk_metadata"])
        self.assertEqual(self.fingerprints(), keys_before)
        # The object form of the target only with x-magic-new-hc-target.
        st, doc = self.emu.call("PUT", path, dict(body, health_check={"target": {"saved": "x"}}))
        self.check("/{ipsec_tunnel_id}", "put", st, doc, 400)
        st, doc = self.emu.call("PUT", path, dict(body, health_check={"target": {"saved": "10.0.9.1"}}),
                                headers={"Authorization": "Bearer " + TOKEN,
                                         "x-magic-new-hc-target": "true"})
        self.check("/{ipsec_tunnel_id}", "put", st, doc, 200)
        self.assertEqual(doc["result"]["modified_ipsec_tunnel"]["health_check"]["target"]["saved"],
                         "10.0.9.1")
        # Required by the request schema; enumerations checked.
        st, doc = self.emu.call("PUT", path, {"description": "only"})
        self.check("/{ipsec_tunnel_id}", "put", st, doc, 400)
        st, doc = self.emu.call("PUT", path, dict(body, health_check={"rate": "fast"}))
        self.check("/{ipsec_tunnel_id}", "put", st, doc, 400)

    def test_update_takes_only_request_properties(self):
        """The single-tunnel update takes the properties of the schema's
        request (magic_ipsec_tunnel_add_single_request) and refuses, naming
        it, every other one the tunnel read carries (id, created_on,
        modified_on, psk_metadata, ...): the agent must not send back what
        it read. Both sets come from the schema document."""
        S = self.doc["components"]["schemas"]
        allowed = set(S["magic_ipsec_tunnel_add_single_request"]["properties"])
        path = BASE + "/" + T1
        cur = self.emu.call("GET", path)[1]["result"]["ipsec_tunnel"]
        read_only = sorted(set(cur) - allowed)
        self.assertTrue({"id", "created_on", "modified_on"} <= set(read_only), read_only)
        base = {k: cur[k] for k in cur if k in allowed}
        base["health_check"] = dict(base.get("health_check") or {})
        base["health_check"].pop("target", None)
        st, doc = self.emu.call("PUT", path + "?validate_only=true", base)
        self.check("/{ipsec_tunnel_id}", "put", st, doc, 200)
        for k in read_only:
            st, doc = self.emu.call("PUT", path + "?validate_only=true",
                                    dict(base, **{k: cur[k]}))
            self.check("/{ipsec_tunnel_id}", "put", st, doc, 400)
            self.assertIn(k, doc["errors"][0]["message"])
        self.assertEqual(self.emu.call("GET", path)[1]["result"]["ipsec_tunnel"], cur)

    def test_psk_bulk(self):
        before = self.fingerprints()
        body = {"psks": [{"id": T1, "psk": "bulkpsk-one-111"}, {"id": T2, "psk": "bulkpsk-two"},
                         {"id": "0" * 32, "psk": "whatever-123"}]}
        st, doc = self.emu.call("POST", BASE + "/psk?validate_only=true", body)
        self.check("/psk", "post", st, doc, 200)
        self.assertEqual(self.fingerprints(), before)
        st, doc = self.emu.call("POST", BASE + "/psk", body)
        self.check("/psk", "post", st, doc, 200)
        res = doc["result"]
        self.assertEqual(set(res["successfully_applied_psks"]), {T1, T2})
        self.assertEqual(res["unapplied_psks"], {"0" * 32: "IPsec tunnel not found"})
        self.assertEqual(res["successfully_applied_psks"][T1]["ipsec_id"], ACCOUNT + "_" + T1)
        after = self.fingerprints()
        self.assertNotEqual(after[T1][0], before[T1][0])
        self.assertGreater(after[T1][1], before[T1][1])
        st, doc = self.emu.call("POST", BASE + "/psk", {"psks": "no"})
        self.check("/psk", "post", st, doc, 400)
        st, doc = self.emu.call("POST", BASE + "/psk", raw=b"{not json")
        self.check("/psk", "post", st, doc, 400)

    def test_psk_generate(self):
        path = BASE + "/" + T1 + "/psk_generate"
        before = self.fingerprints()
        st, doc = self.emu.call("POST", path + "?validate_only=true", {})
        self.check("/{ipsec_tunnel_id}/psk_generate", "post", st, doc, 200)
        self.assertEqual(self.fingerprints(), before)
        stamps = []
        for _ in range(3):
            st, doc = self.emu.call("POST", path, {})
            self.check("/{ipsec_tunnel_id}/psk_generate", "post", st, doc, 200)
            self.assertRegex(doc["result"]["psk"], r"^[A-Za-z0-9]{32}$")
            stamps.append(doc["result"]["psk_metadata"]["last_generated_on"])
        self.assertEqual(stamps, sorted(set(stamps)))  # strictly increasing
        self.assertNotEqual(self.fingerprints()[T1], before[T1])
        st, doc = self.emu.call("POST", BASE + "/" + "0" * 32 + "/psk_generate", {})
        self.check("/{ipsec_tunnel_id}/psk_generate", "post", st, doc, 404)

    def test_answer_variants(self):
        """Issue 12: the shapes the schema allows that the client must take
        (the time absent from write answers, other precisions, rounded),
        each still valid against the operation's schema."""
        frac = re.compile(r"T\d\d:\d\d:\d\d(?:\.(\d+))?Z$")

        def digits(stamp):
            m = frac.search(stamp)
            self.assertIsNotNone(m, stamp)
            return len(m.group(1) or "")

        rules = [{"method": "POST", "path": "/psk$", "count": -1, "action": "variant",
                  "no_psk_metadata": True},
                 {"method": "POST", "path": "/psk_generate$", "count": -1,
                  "action": "variant", "precision": 3, "round": True},
                 {"method": "GET", "path": "ipsec_tunnels$", "count": -1, "action": "variant",
                  "precision": 0}]
        self.assertEqual(self.emu.admin("POST", "/faults", {"rules": rules})[0], 200)
        st, doc = self.emu.call("POST", BASE + "/psk", {"psks": [{"id": T1, "psk": "var-psk-1"}]})
        self.check("/psk", "post", st, doc, 200)
        self.assertEqual(doc["result"]["successfully_applied_psks"][T1]["psk_metadata"], {})
        st, doc = self.emu.call("POST", BASE + "/" + T1 + "/psk_generate", {})
        self.check("/{ipsec_tunnel_id}/psk_generate", "post", st, doc, 200)
        gen = doc["result"]["psk_metadata"]["last_generated_on"]
        self.assertEqual(digits(gen), 3)
        exact = self.fingerprints()[T1][1]
        self.assertEqual(digits(exact), 6)
        # Rounded to the nearest millisecond: at most half a unit away.
        delta = (datetime.datetime.fromisoformat(gen.replace("Z", "+00:00")) -
                 datetime.datetime.fromisoformat(exact.replace("Z", "+00:00")))
        self.assertLessEqual(abs(delta.total_seconds()), 0.0005)
        st, doc = self.emu.call("GET", BASE)
        self.check("", "get", st, doc, 200)
        for t in doc["result"]["ipsec_tunnels"]:
            self.assertEqual(digits(t["modified_on"]), 0)
            if t.get("psk_metadata", {}).get("last_generated_on"):
                self.assertEqual(digits(t["psk_metadata"]["last_generated_on"]), 0)
        bad = [{"action": "variant", "precision": 7}]
        self.assertEqual(self.emu.admin("POST", "/faults", {"rules": bad})[0], 400)

    def test_unknown_route_and_admin_token(self):
        st, doc = self.emu.call("GET", "/client/v4/accounts/%s/magic/gre_tunnels" % ACCOUNT)
        self.assertEqual((st, doc["errors"][0]["code"]), (404, 7003))
        self.validate(dict(self.js["components"]["schemas"]["magic_api-response-common-failure"],
                           components=self.js["components"]), doc)
        self.assertEqual(self.emu.admin("GET", "/tunnels", token="wrong")[0], 403)

    def test_request_log_has_no_keys(self):
        self.emu.admin("DELETE", "/requests")
        self.emu.call("POST", BASE + "/psk", {"psks": [{"id": T1, "psk": "logcheck-psk-777"}]})
        st, doc = self.emu.admin("GET", "/requests")
        self.assertEqual(len(doc["requests"]), 1)
        entry = doc["requests"][0]
        self.assertEqual((entry["method"], entry["status"]), ("POST", 200))
        self.assertNotIn("logcheck-psk-777", json.dumps(doc))

    def test_zz_coverage(self):
        # Runs last (alphabetical): every operation had a 2xx and a 4xx checked.
        ops = [(p[len("/accounts/{account_id}/magic/ipsec_tunnels"):], m)
               for p, v in self.js["paths"].items() for m in v]
        self.assertEqual(len(ops), 8)
        for p, m in ops:
            self.assertIn((p, m, 2), self.validated, (p, m))
            self.assertIn((p, m, 4), self.validated, (p, m))


def write_files(tmp):
    """The token, admin token and seed an emulator of these tests reads."""
    for name, content in (("token", TOKEN), ("admin", ADMIN), ("seed.json", json.dumps(SEED))):
        with open(os.path.join(tmp, name), "w") as f:
            f.write(content)


class RateLimitTest(unittest.TestCase):
    def test_rate_limit(self):
        with tempfile.TemporaryDirectory(prefix="ts-cf-rate-") as tmp:
            write_files(tmp)
            emu = Emulator(tmp, ["--rate-limit", "3"], "rl")
            try:
                for _ in range(3):
                    self.assertEqual(emu.call("GET", BASE)[0], 200)
                req = urllib.request.Request("http://127.0.0.1:%d%s" % (emu.port, BASE),
                                             headers={"Authorization": "Bearer " + TOKEN})
                with self.assertRaises(urllib.error.HTTPError) as cm:
                    urllib.request.urlopen(req, timeout=10)
                self.assertEqual(cm.exception.code, 429)
                self.assertGreaterEqual(int(cm.exception.headers["Retry-After"]), 290)
                doc = json.loads(cm.exception.read())
                self.assertEqual(doc["errors"][0]["code"], 971)
                self.assertFalse(doc["success"])
            finally:
                self.assertEqual(emu.stop(), 0)


class BatchHookTest(unittest.TestCase):
    def test_batch_hook_once_per_call(self):
        """--on-key-change-batch: one run per API call that changed keys,
        with all of them, before the answer; none for a call that changed
        none (validate_only, a list, an unapplied entry only)."""
        with tempfile.TemporaryDirectory(prefix="ts-cf-batch-") as tmp:
            write_files(tmp)
            runs = os.path.join(tmp, "runs")
            hook = os.path.join(tmp, "hook.py")
            with open(hook, "w") as f:
                f.write("import sys\nwith open(%r, 'a') as f:\n"
                        "    f.write(sys.stdin.read() + '\\n')\n" % runs)
            emu = Emulator(tmp, ["--on-key-change-batch", "/usr/bin/python3 " + hook], "bh")

            def taken():
                if not os.path.exists(runs):
                    return []
                with open(runs) as f:
                    return [[(k["id"], k["psk"]) for k in json.loads(line)["keys"]]
                            for line in f.read().splitlines()]
            try:
                body = {"psks": [{"id": T1, "psk": "batch-psk-one"},
                                 {"id": T2, "psk": "batch-psk-two"},
                                 {"id": "0" * 32, "psk": "nowhere-psk"}]}
                self.assertEqual(emu.call("POST", BASE + "/psk", body)[0], 200)
                self.assertEqual(taken(), [[(T1, "batch-psk-one"), (T2, "batch-psk-two")]])
                self.assertEqual(emu.call("POST", BASE + "/psk?validate_only=true", body)[0],
                                 200)
                self.assertEqual(emu.call("GET", BASE)[0], 200)
                self.assertEqual(emu.call("POST", BASE + "/psk", {
                    "psks": [{"id": "0" * 32, "psk": "nowhere-psk"}]})[0], 200)
                self.assertEqual(len(taken()), 1)
                st, doc = emu.call("POST", BASE + "/" + T2 + "/psk_generate", {})
                self.assertEqual(st, 200)
                self.assertEqual(taken()[1], [(T2, doc["result"]["psk"])])
            finally:
                self.assertEqual(emu.stop(), 0)


class StateTest(unittest.TestCase):
    def test_state_survives_restart(self):
        with tempfile.TemporaryDirectory(prefix="ts-cf-state-") as tmp:
            write_files(tmp)
            state = os.path.join(tmp, "state.json")
            emu = Emulator(tmp, ["--state", state], "s1")
            st, doc = emu.call("POST", BASE + "/" + T2 + "/psk_generate", {})
            self.assertEqual(st, 200)
            fp = emu.admin("GET", "/tunnels")[1]
            self.assertEqual(emu.stop(), 0)
            self.assertEqual(os.stat(state).st_mode & 0o777, 0o600)
            emu = Emulator(tmp, ["--state", state], "s2")
            try:
                self.assertEqual(emu.admin("GET", "/tunnels")[1], fp)
            finally:
                self.assertEqual(emu.stop(), 0)


if __name__ == "__main__":
    EMULATOR, SCHEMA_PATH = sys.argv[1], sys.argv[2]
    unittest.main(argv=[sys.argv[0], "-v"])

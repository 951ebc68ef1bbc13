#!/bin/sh
# `plan --json`: the document's shape (suspended, api_calls, actions with
# phase, kind, tunnel, plane, cause, source, apply, reason; names from the
# planner's tables), exit codes (2 pending, 0 in sync), and that plan is
# read-only: no API write, no state file, no IKE change.
# Usage: plan-json.sh TUNNELSYNC_BINARY
set -eu
E2E_TS=${1:?usage: plan-json.sh TUNNELSYNC_BINARY}
. "$(dirname "$0")/lib.sh"
e2e_require
e2e_require_commands once plan status
e2e_up

check_doc() {
	/usr/bin/python3 - "$1" "$2" <<'PY'
import json, sys
path, want = sys.argv[1], sys.argv[2]
doc = json.load(open(path))
KINDS = {"unload-conn", "unload-key", "delete-sa", "delete-policy", "resume", "load-conn",
         "load-key", "rotate", "initiate", "reauth", "report", "defer-rotation"}
PHASES = {"remove", "resume", "config", "rotate-bulk", "rotate-generate", "initiate", "report"}
CAUSES = {"stale", "journal", "conn-missing", "conn-differs", "key-missing", "key-differs",
          "forced", "bootstrap", "record-mismatch", "regenerated", "file-changed",
          "auth-failures", "max-age", "sa-down", "child-down", "kernel-sa-missing",
          "kernel-policy-missing", "hard-expired", "endpoints-differ", "cloudflare-missing",
          "incomplete", "store-corrupt", "file-unreadable", "file-key-aged", "group-busy",
          "group-peer-down", "rotation-cap", "budget"}
# "source" only where a key source matters (the agent omits it elsewhere).
FIELDS = {"phase", "kind", "tunnel", "plane", "cause", "apply", "reason"}
WITH_SOURCE = {"rotate", "resume", "defer-rotation"}
def fail(msg):
    sys.exit("plan --json: %s\n%s" % (msg, json.dumps(doc, indent=1)))
if not isinstance(doc, dict):
    fail("not an object")
for k, t in (("suspended", bool), ("api_calls", int), ("actions", list)):
    if not isinstance(doc.get(k), t) or (t is int and isinstance(doc.get(k), bool)):
        fail("%s missing or not %s" % (k, t.__name__))
if doc["suspended"]:
    fail("suspended although the config does not say so")
order = [p for p in ["remove", "resume", "config", "rotate-bulk", "rotate-generate",
                     "initiate", "report"]]
last = -1
for a in doc["actions"]:
    missing = FIELDS - set(a)
    if missing:
        fail("action lacks %s" % sorted(missing))
    if a["kind"] not in KINDS: fail("unknown kind %r" % a["kind"])
    if a["kind"] in WITH_SOURCE and a.get("source") not in ("random", "generate", "file"):
        fail("%s without a valid source" % a["kind"])
    if a["plane"] not in ("cloudflare", "ike", "kernel", "store"):
        fail("unknown plane %r" % a["plane"])
    if a["phase"] not in PHASES: fail("unknown phase %r" % a["phase"])
    if a["cause"] not in CAUSES: fail("unknown cause %r" % a["cause"])
    if not isinstance(a["apply"], bool): fail("apply not a boolean")
    if not isinstance(a["reason"], str) or not a["reason"]: fail("empty reason")
    if a["tunnel"] not in ("", "e2e-a", "e2e-b"): fail("unknown tunnel %r" % a["tunnel"])
    i = order.index(a["phase"])
    if i < last: fail("actions out of phase order")
    last = i
applied = [a for a in doc["actions"] if a["apply"]]
if want == "pending":
    rot = [a for a in doc["actions"] if a["kind"] == "rotate"]
    if not rot: fail("no rotation at bootstrap")
    for a in rot:
        if a["cause"] != "bootstrap": fail("rotation cause %r, expected bootstrap" % a["cause"])
        if a["source"] != "random": fail("source %r, expected random" % a["source"])
        if a["phase"] != "rotate-bulk": fail("random rotation not in rotate-bulk")
    named = {a["tunnel"] for a in doc["actions"] if a["kind"] in ("rotate", "defer-rotation")}
    if named != {"e2e-a", "e2e-b"}: fail("both tunnels must be rotated or deferred: %s" % named)
    if doc["api_calls"] < 1: fail("api_calls %d for a bootstrap" % doc["api_calls"])
else:
    if applied: fail("in sync but actions to apply")
    if doc["api_calls"] != 0: fail("in sync but api_calls %d" % doc["api_calls"])
PY
}

e2e_say "plan --json at bootstrap"
rc=0
e2e_ts plan-json plan --json || rc=$?
[ "$rc" -eq 2 ] || e2e_fail "plan --json exited $rc, expected 2"
check_doc "$E2E_LAST_OUT" pending || e2e_fail "bad plan document"
e2e_say "plan is read-only"
[ -z "$(e2e_emu_writes)" ] || e2e_fail "plan wrote to the API: $(e2e_emu_writes)"
[ -z "$(ls -A "$E2E_DIR/state/records" "$E2E_DIR/state/journal" 2>/dev/null | grep -v ':$' | grep .)" ] ||
	e2e_fail "plan wrote state files"
[ -z "$(e2e_swanctl a --list-conns 2>/dev/null)" ] || e2e_fail "plan loaded a connection"
[ -z "$(e2e_swanctl a --list-sas 2>/dev/null)" ] || e2e_fail "plan started an SA"

e2e_bootstrap
e2e_emu_clear_log
e2e_say "plan --json in sync"
rc=0
e2e_ts plan-json plan --json || rc=$?
[ "$rc" -eq 0 ] || e2e_fail "plan --json in sync exited $rc, expected 0"
check_doc "$E2E_LAST_OUT" sync || e2e_fail "bad plan document in sync"
[ -z "$(e2e_emu_writes)" ] || e2e_fail "plan wrote to the API"

e2e_say "plan (text) names the tunnel and the cause"
e2e_api POST "/$E2E_ID_B/psk_generate" '{}' >/dev/null
rc=0
e2e_ts plan plan || rc=$?
[ "$rc" -eq 2 ] || e2e_fail "plan exited $rc, expected 2"
grep -q 'e2e-b' "$E2E_LAST_OUT" && grep -q 'regenerated' "$E2E_LAST_OUT" ||
	e2e_fail "text plan does not show e2e-b regenerated"
e2e_say "plan-json OK"

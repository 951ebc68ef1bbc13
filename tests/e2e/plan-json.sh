#!/bin/sh
# `plan --json`: the document's shape (suspended, api_calls, actions with
# phase, kind, tunnel, plane, cause, source, apply, reason; names from the
# planner's tables), exit codes (2 pending, 0 in sync), and that plan is
# read-only: no API write, no state file, no IKE change. Then routes owned
# by the agent (protocol 182, through a veth interface in the gateway's
# namespace): plan lists the one to add, the one nobody declares, a metric
# moved by hand, in phase traffic with their fields, exit 2, and leaves the
# routing table and links byte for byte as they were; `once --dry-run`
# lists the same and changes nothing; `once` does it, and plan is in sync.
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
         "load-key", "rotate", "initiate", "reauth", "report", "defer-rotation",
         "delete-interface", "delete-route", "create-interface", "replace-interface",
         "fix-interface", "add-route", "set-route-metric"}
PHASES = {"remove", "traffic", "resume", "config", "rotate-bulk", "rotate-generate", "initiate",
          "report"}
CAUSES = {"stale", "journal", "conn-missing", "conn-differs", "key-missing", "key-differs",
          "forced", "bootstrap", "record-mismatch", "regenerated", "file-changed",
          "auth-failures", "max-age", "sa-down", "child-down", "kernel-sa-missing",
          "kernel-policy-missing", "hard-expired", "endpoints-differ", "cloudflare-missing",
          "incomplete", "store-corrupt", "file-unreadable", "file-key-aged", "group-busy",
          "group-peer-down", "rotation-cap", "budget", "interface-missing",
          "interface-differs", "interface-drift", "interface-foreign", "route-missing",
          "route-metric", "route-failover"}
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
order = [p for p in ["remove", "traffic", "resume", "config", "rotate-bulk", "rotate-generate",
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
elif want.startswith("traffic:"):
    # exactly these (kind, interface, route, old metric, new metric), to apply
    expected = sorted(tuple(e) for e in json.loads(want[len("traffic:"):]))
    got = []
    for a in doc["actions"]:
        if a["phase"] != "traffic":
            continue
        if not a["apply"]: fail("traffic action not to apply")
        ch = {c["field"]: c for c in a["changes"]}
        if set(ch) != {"metric"}: fail("route action changes %s" % sorted(ch))
        got.append((a["kind"], a.get("interface"), a.get("route"), ch["metric"]["old"],
                    ch["metric"]["new"]))
    if sorted(got) != expected: fail("traffic actions %s, expected %s" % (sorted(got), expected))
    if [a for a in applied if a["phase"] != "traffic"]: fail("more than traffic to apply")
    if doc["summary"].get("traffic") != len(expected): fail("summary traffic count")
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

e2e_say "plan lists the owned routes to add and to delete, changes nothing"
# Every IPv4 table and the links. Not IPv6: the kernel adds tsd0's
# link-local address (table local) by itself once its DAD is done, seen
# between two reads under load.
routes_state() {
	ip -n "$E2E_NS_GW" -4 -d route show table all
	ip -n "$E2E_NS_GW" -d link
}
ip -n "$E2E_NS_GW" link add tsd0 type veth peer name tsd1
ip -n "$E2E_NS_GW" link set tsd0 up
ip -n "$E2E_NS_GW" link set tsd1 up
ip -n "$E2E_NS_GW" route add 198.51.100.128/25 dev tsd0 proto 182 metric 50
/usr/bin/python3 - "$E2E_DIR/config.json" <<'PY'
import json, sys
c = json.load(open(sys.argv[1]))
t = c["tunnelsync:tunnelsync"]["tunnels"]["tunnel"][0]
t["routes"] = {"interface": "tsd0", "route": [{"prefix": "192.0.2.128/25", "metric": 100}]}
json.dump(c, open(sys.argv[1], "w"), indent=2)
PY
routes_state >"$E2E_DIR/routes.before"
rc=0
e2e_ts plan-routes plan --json || rc=$?
[ "$rc" -eq 2 ] || e2e_fail "plan --json with routes to set exited $rc, expected 2"
check_doc "$E2E_LAST_OUT" 'traffic:[["add-route", "tsd0", "192.0.2.128/25", "", "100"],
    ["delete-route", "tsd0", "198.51.100.128/25", "50", ""]]' || e2e_fail "bad traffic actions"
routes_state >"$E2E_DIR/routes.after"
cmp -s "$E2E_DIR/routes.after" "$E2E_DIR/routes.before" ||
	e2e_fail "plan changed routes or links: $(diff "$E2E_DIR/routes.before" "$E2E_DIR/routes.after")"
e2e_ts once-routes once || e2e_fail "once did not set the routes"
ip -n "$E2E_NS_GW" route show 192.0.2.128/25 | grep -q 'dev tsd0 proto 182 scope link metric 100' ||
	e2e_fail "route not added: $(ip -n "$E2E_NS_GW" route)"
[ -z "$(ip -n "$E2E_NS_GW" route show 198.51.100.128/25)" ] || e2e_fail "stale route kept"
rc=0
e2e_ts plan-routes-sync plan --json || rc=$?
[ "$rc" -eq 0 ] || e2e_fail "plan --json after once exited $rc, expected 0"
check_doc "$E2E_LAST_OUT" sync || e2e_fail "bad plan document with routes in sync"

e2e_say "a metric moved by hand: plan and once --dry-run list it, change nothing"
ip -n "$E2E_NS_GW" route del 192.0.2.128/25 dev tsd0 proto 182 metric 100
ip -n "$E2E_NS_GW" route add 192.0.2.128/25 dev tsd0 proto 182 metric 300
routes_state >"$E2E_DIR/routes.before"
rc=0
e2e_ts plan-metric plan || rc=$?
[ "$rc" -eq 2 ] || e2e_fail "plan with a metric moved exited $rc, expected 2"
grep -q '^traffic  *set-route-metric  *e2e-a .* route-metric  *route 192.0.2.128/25 via tsd0: metric 300 -> 100 (the declared metric)$' \
	"$E2E_LAST_OUT" || e2e_fail "plan does not list the metric move"
grep -qx '    metric: 300 -> 100' "$E2E_LAST_OUT" || e2e_fail "plan does not show metric old -> new"
cp "$E2E_LAST_OUT" "$E2E_DIR/plan-metric.txt"
rc=0
e2e_ts dry-run-metric once --dry-run || rc=$?
[ "$rc" -eq 2 ] || e2e_fail "once --dry-run exited $rc, expected 2"
grep -Fq "route 192.0.2.128/25 via tsd0: metric 300 -> 100" "$E2E_LAST_OUT" ||
	e2e_fail "once --dry-run does not list the metric move"
routes_state >"$E2E_DIR/routes.after"
cmp -s "$E2E_DIR/routes.after" "$E2E_DIR/routes.before" ||
	e2e_fail "plan or the dry run changed routes or links: $(diff "$E2E_DIR/routes.before" "$E2E_DIR/routes.after")"
e2e_ts once-metric once || e2e_fail "once did not move the metric back"
ip -n "$E2E_NS_GW" route show 192.0.2.128/25 | grep -q 'dev tsd0 proto 182 scope link metric 100' ||
	e2e_fail "metric not put back: $(ip -n "$E2E_NS_GW" route)"
[ "$(ip -n "$E2E_NS_GW" route show 192.0.2.128/25 | wc -l)" -eq 1 ] || e2e_fail "old metric kept"

e2e_say "plan (text) names the tunnel and the cause"
e2e_api POST "/$E2E_ID_B/psk_generate" '{}' >/dev/null
rc=0
e2e_ts plan plan || rc=$?
[ "$rc" -eq 2 ] || e2e_fail "plan exited $rc, expected 2"
grep -q 'e2e-b' "$E2E_LAST_OUT" && grep -q 'regenerated' "$E2E_LAST_OUT" ||
	e2e_fail "text plan does not show e2e-b regenerated"
e2e_say "plan-json OK"

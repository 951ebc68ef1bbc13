#!/bin/sh
# Declared changes reach charon, and Cloudflare-side drift is seen: one
# setup (tests/e2e/lib.sh), then one config change per family of leaves on
# tunnel e2e-a: CHILD proposal, CHILD lifetime, DPD delay, identity,
# if-id, replay window. Each: `plan --json` plans update-conn for e2e-a
# only, naming the leaves old -> new and no rotation; `once` applies it;
# charon then runs SAs made from the new config (what list-sas shows, or a
# new CHILD/IKE SA where it shows nothing); e2e-b's IKE SA is the same one
# (unique id unchanged); no key changed (emulator fingerprints, status
# generations); the next plan is in sync. Then interface_address changed on
# the emulator: reported old -> new (nothing changed), and with
# cloudflare/manage-tunnels set back through the tunnel update call, the
# key untouched.
# Usage: declared-diff.sh TUNNELSYNC_BINARY
set -eu
E2E_TS=${1:?usage: declared-diff.sh TUNNELSYNC_BINARY}
. "$(dirname "$0")/lib.sh"
e2e_require
e2e_require_commands once plan status
e2e_up
e2e_bootstrap

# e2e_edit 'PYTHON': runs PYTHON on the config with `a` = tunnel e2e-a's
# object and `cf` = the cloudflare container.
e2e_edit() {
	/usr/bin/python3 - "$E2E_DIR/config.json" "$1" <<'PY'
import json, sys
path, code = sys.argv[1], sys.argv[2]
doc = json.load(open(path))
root = doc["tunnelsync:tunnelsync"]
a = [t for t in root["tunnels"]["tunnel"] if t["name"] == "e2e-a"][0]
cf = root["cloudflare"]
exec(code)
json.dump(doc, open(path, "w"), indent=1)
PY
}

# "IKE_ID CHILD_ID" of a tunnel's installed SAs in the gateway's charon.
sa_ids() {
	e2e_swanctl a --list-sas --ike "ts-$1" 2>/dev/null |
		sed -n 's/^ts-[^:]*: #\([0-9]*\), ESTABLISHED.*/ike \1/p; s/^ *ts-[^:]*: #\([0-9]*\), reqid [0-9]*, INSTALLED.*/child \1/p' |
		awk '$1 == "ike" { i = $2 } $1 == "child" { c = $2 } END { print i " " c }'
}

generation() {
	e2e_ts status status --json >/dev/null || e2e_fail "status --json failed"
	/usr/bin/python3 -c '
import json, sys
for t in json.load(open(sys.argv[2]))["tunnels"]:
    if t.get("name") == sys.argv[1]:
        print(t.get("key_generation"))' "$1" "$E2E_LAST_OUT"
}

keys_now() {
	echo "$(e2e_emu_fp "$E2E_ID_A") $(e2e_emu_fp "$E2E_ID_B") $(generation e2e-a) $(generation e2e-b)"
}

# The plan's changes as "kind tunnel field old new" lines.
plan_changes() {
	/usr/bin/python3 -c '
import json, sys
doc = json.load(open(sys.argv[1]))
assert doc["version"] == 2, doc.get("version")
for a in doc["actions"]:
    for c in a["changes"]:
        print(a["kind"], a["tunnel"] or "-", c["field"], c["old"], c["new"])' "$1"
}

# family NAME EDIT FIELD LEVEL CHECK: one declared change end to end.
# LEVEL: child (a new CHILD SA in the same IKE SA) or ike (a new IKE SA).
family() {
	fam=$1 edit=$2 field=$3 level=$4 check=$5
	e2e_say "family $fam: $edit"
	keys=$(keys_now)
	set -- $(sa_ids e2e-a)
	a_ike=$1 a_child=$2
	set -- $(sa_ids e2e-b)
	b_ike=$1 b_child=$2
	[ -n "$a_child" ] && [ -n "$b_child" ] || e2e_fail "$fam: tunnels not up before the change"
	e2e_edit "$edit"

	rc=0
	e2e_ts plan-json plan --json || rc=$?
	[ "$rc" -eq 2 ] || e2e_fail "$fam: plan exited $rc, expected 2 (changes pending)"
	e2e_plan_actions "$E2E_LAST_OUT" >"$E2E_DIR/actions.txt"
	plan_changes "$E2E_LAST_OUT" >"$E2E_DIR/changes.txt"
	[ "$(cat "$E2E_DIR/actions.txt")" = "update-conn e2e-a conn-differs apply" ] ||
		e2e_fail "$fam: plan is not one update-conn of e2e-a: $(cat "$E2E_DIR/actions.txt")"
	grep -q "^update-conn e2e-a $field " "$E2E_DIR/changes.txt" ||
		e2e_fail "$fam: plan does not show $field: $(cat "$E2E_DIR/changes.txt")"
	e2e_ts plan plan || true
	grep -q "^    $field: .* -> " "$E2E_LAST_OUT" || e2e_fail "$fam: plan text lacks '$field: old -> new'"
	grep -q "^Plan: 1 to update\.$" "$E2E_LAST_OUT" || e2e_fail "$fam: plan summary: $(tail -1 "$E2E_LAST_OUT")"

	e2e_once_until_synced 4
	e2e_wait_ike_up e2e-a 30 || e2e_fail "$fam: e2e-a not up after the update"
	set -- $(sa_ids e2e-a)
	case $level in
	child)
		[ "$1" = "$a_ike" ] || e2e_fail "$fam: e2e-a got a new IKE SA ($a_ike -> $1) for a CHILD change"
		[ "$2" != "$a_child" ] || e2e_fail "$fam: e2e-a kept CHILD SA #$a_child"
		;;
	ike)
		[ "$1" != "$a_ike" ] || e2e_fail "$fam: e2e-a kept IKE SA #$a_ike"
		;;
	esac
	set -- $(sa_ids e2e-b)
	[ "$1 $2" = "$b_ike $b_child" ] || e2e_fail "$fam: e2e-b touched ($b_ike $b_child -> $1 $2)"
	[ "$(keys_now)" = "$keys" ] || e2e_fail "$fam: a key changed: $keys -> $(keys_now)"
	e2e_swanctl a --list-sas --ike ts-e2e-a >"$E2E_DIR/sas-a.txt"
	e2e_swanctl a --list-sas --ike ts-e2e-a --raw >"$E2E_DIR/sas-a.raw" 2>&1 || true
	cp "$E2E_DIR/sas-a.txt" "$E2E_DIR/sas-$fam.txt"
	eval "$check" || e2e_fail "$fam: charon does not show it: $(cat "$E2E_DIR/sas-a.txt")"
	rc=0
	e2e_ts plan plan || rc=$?
	[ "$rc" -eq 0 ] || e2e_fail "$fam: plan after the update exited $rc"
	e2e_say "family $fam OK"
}

family proposal \
	'a["ike"]["child-sa"] = {"encryption-algorithm": ["aes-128-gcm-16"]}' \
	child.esp_proposals child 'grep -q "AES_GCM_16-128" "$E2E_DIR/sas-a.txt"'
family lifetime \
	'a["ike"]["child-sa-lifetime-soft"] = {"time": 2400}' \
	child.life_time child \
	'/usr/bin/python3 -c "
import re, sys
m = re.search(r\"expires in (\d+)s\", open(sys.argv[1]).read())
sys.exit(not m or int(m.group(1)) > 2400)" "$E2E_DIR/sas-a.txt"'
family dpd \
	'a["ike"]["dpd-delay"] = 30' \
	dpd_delay ike 'e2e_swanctl a --list-conns --raw | grep -q "dpd_delay=30"'
family if-id \
	'a["route-based"] = {"if-id": 111}' \
	child.if_id_in child 'grep -q "in  .*(-|0x0000006f)" "$E2E_DIR/sas-a.txt"'
family replay-window \
	'a["ike"]["replay-window-size"] = 64' \
	child.replay_window child 'grep -q "^child.replay_window=64$" "$E2E_DIR/state/conns/e2e-a.conn"'

# The edge takes the new identity too (Cloudflare accepts every form).
new_id="ipsec@$(e2e_gw_identity "$E2E_ID_A")"
sed -i "s/id = $(e2e_gw_identity "$E2E_ID_A") }/id = $new_id }/" "$E2E_DIR/b/swanctl/swanctl.conf"
sed -i "s/^  id-gw = \(.*\)$/  id-gw = \1\n  id-gw2 = $new_id/" "$E2E_DIR/b/swanctl/secrets.d/e2e-a.conf"
e2e_swanctl b --load-all >/dev/null 2>&1 || e2e_fail "edge: cannot load the new identity"
family identity \
	'a["ike"]["local-identity"] = "user-fqdn"' \
	local.id ike 'grep -q "local  .$new_id. @" "$E2E_DIR/sas-a.txt"'

e2e_say "interface_address changed on Cloudflare's side"
keys=$(keys_now)
e2e_api PUT "/$E2E_ID_A" "{\"name\": \"e2e-a\", \"cloudflare_endpoint\": \"$E2E_EDGE_A\",
	\"customer_endpoint\": \"$E2E_GW_ADDR\", \"interface_address\": \"10.213.9.0/31\"}" >/dev/null
rc=0
e2e_ts plan-json plan --json || rc=$?
[ "$rc" -eq 0 ] || e2e_fail "plan exited $rc with only a report (manage-tunnels off)"
plan_changes "$E2E_LAST_OUT" >"$E2E_DIR/changes.txt"
grep -qx "report e2e-a interface_address 10.213.9.0/31 10.213.0.0/31" "$E2E_DIR/changes.txt" ||
	e2e_fail "drift not reported old -> new: $(cat "$E2E_DIR/changes.txt")"
e2e_emu_clear_log
e2e_once_until_synced 2
[ -z "$(e2e_emu_writes)" ] || e2e_fail "manage-tunnels off, yet writes: $(e2e_emu_writes)"

e2e_say "with cloudflare/manage-tunnels: set back through the update call"
e2e_edit 'cf["manage-tunnels"] = True'
rc=0
e2e_ts plan-json plan --json || rc=$?
[ "$rc" -eq 2 ] || e2e_fail "plan exited $rc, expected 2 (update-tunnel pending)"
e2e_plan_actions "$E2E_LAST_OUT" | grep -qx "update-tunnel e2e-a cloudflare-differs apply" ||
	e2e_fail "no update-tunnel planned: $(e2e_plan_actions "$E2E_LAST_OUT")"
e2e_emu_clear_log
e2e_ts dry-run once --dry-run || true
e2e_emu_writes | grep -q "^PUT .*/ipsec_tunnels/$E2E_ID_A?validate_only=true$" ||
	e2e_fail "once --dry-run did not validate the update: $(e2e_emu_writes)"
if e2e_emu_writes | grep -v "validate_only=true" | grep -q .; then
	e2e_fail "once --dry-run wrote: $(e2e_emu_writes)"
fi
grep -q "^    interface_address: 10.213.9.0/31 -> 10.213.0.0/31$" "$E2E_LAST_OUT" ||
	e2e_fail "once --dry-run does not print the plan"
[ "$(e2e_api GET "/$E2E_ID_A" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["result"]["ipsec_tunnel"]["interface_address"])')" = 10.213.9.0/31 ] ||
	e2e_fail "dry run changed Cloudflare"
e2e_emu_clear_log
e2e_once_until_synced 3
got=$(e2e_api GET "/$E2E_ID_A" | /usr/bin/python3 -c 'import json,sys; print(json.load(sys.stdin)["result"]["ipsec_tunnel"]["interface_address"])')
[ "$got" = 10.213.0.0/31 ] || e2e_fail "interface_address on Cloudflare is $got"
e2e_emu_writes | grep -q "^PUT .*/ipsec_tunnels/$E2E_ID_A$" || e2e_fail "no tunnel update call: $(e2e_emu_writes)"
if e2e_emu_writes | grep -q "psk"; then e2e_fail "a key call while updating the tunnel"; fi
[ "$(keys_now)" = "$keys" ] || e2e_fail "a key changed: $keys -> $(keys_now)"
e2e_assert_tunnel_ok e2e-a "$E2E_ID_A"
e2e_assert_tunnel_ok e2e-b "$E2E_ID_B"
e2e_say "declared-diff OK"

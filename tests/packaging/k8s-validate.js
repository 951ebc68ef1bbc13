// Validates Kubernetes documents (multi-document YAML on stdin, as
// `kubectl kustomize` renders them) offline against the Kubernetes schemas
// of npm's kubernetes-models, and rejects unknown fields, which those
// validators let pass: every object is wrapped in a Proxy that records the
// keys the schema's validator reads; a key present but never read is not
// in the schema. Objects the validator enumerates (maps such as labels or
// a ConfigMap's data) are taken whole.
//
// With CHECKS (base, gateway or fleet) and SNIPPET (the strongswan.conf
// snippet), it also checks what the manifests promise: host network; git-sync,
// charon and tunnelsync sharing the config and the VICI socket's directory;
// tunnelsync with only NET_ADMIN, a read-only root, no privilege escalation,
// the token from a Secret file where CREDENTIALS_DIRECTORY points, the state
// on a node volume, the metrics port, /healthz and /readyz probes; the
// snippet in charon; for the fleet the node name from the downward API.
// Usage: node k8s-validate.js NODE_MODULES_DIR [CHECKS SNIPPET] < rendered.yaml
"use strict";
const path = require("path");
const modules = process.argv[2];
const checks = process.argv[3];
const snippet = process.argv[4];
const YAML = require(path.join(modules, "yaml"));
const fs = require("fs");

function schemaName(apiVersion, kind) {
	// v1 -> IoK8sApiCoreV1Kind; apps/v1 -> IoK8sApiAppsV1Kind;
	// rbac.authorization.k8s.io/v1 -> IoK8sApiRbacV1Kind
	const [group, version] = apiVersion.includes("/") ? apiVersion.split("/") : ["core", apiVersion];
	const g = group.split(".")[0];
	const cap = (s) => s.charAt(0).toUpperCase() + s.slice(1);
	return "IoK8sApi" + cap(g) + cap(version) + kind;
}

function watch(value, at, seen) {
	if (value === null || typeof value !== "object")
		return value;
	const rec = { at, read: new Set(), enumerated: false, keys: Object.keys(value) };
	seen.push(rec);
	const cache = new Map();
	return new Proxy(value, {
		get(target, key, receiver) {
			if (typeof key === "string")
				rec.read.add(key);
			const v = Reflect.get(target, key, receiver);
			if (typeof key !== "string" || v === null || typeof v !== "object")
				return v;
			if (!cache.has(key))
				cache.set(key, watch(v, at + "/" + key, seen));
			return cache.get(key);
		},
		ownKeys(target) {
			rec.enumerated = true;
			return Reflect.ownKeys(target);
		},
		has(target, key) {
			if (typeof key === "string")
				rec.read.add(key);
			return Reflect.has(target, key);
		},
	});
}

const docs = YAML.parseAllDocuments(fs.readFileSync(0, "utf8"));
let failures = 0, n = 0;
const kinds = {};
for (const d of docs) {
	if (d.errors.length) {
		console.error("YAML: " + d.errors[0].message);
		failures++;
		continue;
	}
	const doc = d.toJSON();
	if (doc === null)
		continue;
	n++;
	const name = `${doc.kind}/${doc.metadata && doc.metadata.name}`;
	kinds[doc.kind] = (kinds[doc.kind] || 0) + 1;
	let validate;
	try {
		validate = require(path.join(modules, "kubernetes-models", "_schemas",
					    schemaName(doc.apiVersion, doc.kind) + ".js")).validate;
	} catch (e) {
		console.error(`${name}: no schema for ${doc.apiVersion} ${doc.kind}`);
		failures++;
		continue;
	}
	const seen = [];
	const ok = validate(watch(doc, "", seen));
	if (!ok) {
		for (const e of validate.errors.slice(0, 10))
			console.error(`${name}: ${e.instancePath || "/"}: ${e.message || e.keyword} ${JSON.stringify(e.params)}`);
		failures++;
	}
	for (const r of seen) {
		if (r.enumerated)
			continue;
		for (const k of r.keys) {
			if (/^\d+$/.test(k))
				continue; // array indices
			if (!r.read.has(k)) {
				console.error(`${name}: ${r.at}/${k}: unknown field`);
				failures++;
			}
		}
	}
}
function expect(what, cond) {
	if (!cond) {
		console.error("expected: " + what);
		failures++;
	}
}

function promises(all) {
	const ds = all.filter((d) => d.kind === "DaemonSet");
	expect("one DaemonSet", ds.length === 1);
	if (ds.length !== 1)
		return;
	const spec = ds[0].spec.template.spec;
	const c = Object.fromEntries(spec.containers.map((x) => [x.name, x]));
	const vol = Object.fromEntries(spec.volumes.map((v) => [v.name, v]));
	const mount = (ctr, name) => (ctr.volumeMounts || []).find((m) => m.name === name);
	expect("hostNetwork", spec.hostNetwork === true);
	expect("containers git-sync, charon, tunnelsync", c["git-sync"] && c.charon && c.tunnelsync);
	if (!(c["git-sync"] && c.charon && c.tunnelsync))
		return;
	const t = c.tunnelsync, sc = t.securityContext || {};
	expect("tunnelsync: capabilities drop ALL, add NET_ADMIN only",
	       sc.capabilities && Object.keys(sc.capabilities).sort().join() === "add,drop" &&
	       sc.capabilities.drop.join() === "ALL" && sc.capabilities.add.join() === "NET_ADMIN");
	expect("tunnelsync: read-only root", sc.readOnlyRootFilesystem === true);
	expect("tunnelsync: no privilege escalation", sc.allowPrivilegeEscalation === false);
	expect("tunnelsync: not privileged", sc.privileged !== true);
	expect("tunnelsync: liveness /healthz",
	       t.livenessProbe && t.livenessProbe.httpGet.path === "/healthz");
	expect("tunnelsync: readiness /readyz",
	       t.readinessProbe && t.readinessProbe.httpGet.path === "/readyz");
	expect("tunnelsync: metrics port 9470",
	       (t.ports || []).some((p) => p.containerPort === 9470 && p.name === "metrics") &&
	       t.livenessProbe.httpGet.port === 9470);
	// The config: git-sync's root, read-only in the agent, its link as -c.
	const gitRoot = (c["git-sync"].args.find((a) => a.startsWith("--root=")) || "").slice(7);
	const gitLink = (c["git-sync"].args.find((a) => a.startsWith("--link=")) || "").slice(7);
	const gm = mount(c["git-sync"], "config"), tm = mount(t, "config");
	expect("config volume shared by git-sync and tunnelsync (read-only)",
	       vol.config && gm && tm && tm.readOnly === true && gm.mountPath === gitRoot);
	const cfgArg = t.args[t.args.indexOf("-c") + 1];
	expect("tunnelsync -c is git-sync's link", tm && cfgArg === tm.mountPath + "/" + gitLink);
	// The VICI socket's directory, shared with charon.
	const cr = mount(c.charon, "charon-run"), trun = mount(t, "charon-run");
	expect("charon's /run (VICI socket) shared through an emptyDir",
	       vol["charon-run"] && vol["charon-run"].emptyDir && cr && trun &&
	       cr.mountPath === "/run" && trun.mountPath === "/run");
	// The snippet in charon.
	const sm = (c.charon.volumeMounts || []).find((m) => m.mountPath.startsWith("/etc/strongswan.d/"));
	const cm = sm && vol[sm.name] && all.find((d) => d.kind === "ConfigMap" &&
						     d.metadata.name === vol[sm.name].configMap.name);
	expect("the strongswan.conf snippet mounted in charon, as in contrib/strongswan",
	       cm && cm.data[sm.subPath] === fs.readFileSync(snippet, "utf8"));
	// The token: a Secret file in CREDENTIALS_DIRECTORY.
	const cred = (t.env || []).find((e) => e.name === "CREDENTIALS_DIRECTORY");
	const secretMount = (t.volumeMounts || []).find((m) => vol[m.name] && vol[m.name].secret);
	expect("the token from a Secret mounted where CREDENTIALS_DIRECTORY points",
	       cred && secretMount && cred.value === secretMount.mountPath && secretMount.readOnly &&
	       vol[secretMount.name].secret.items.some((i) => i.path === "cloudflare-api-token"));
	expect("no token in the environment",
	       !(t.env || []).some((e) => /TOKEN/.test(e.name)));
	// State on a node volume, the state directory inside it.
	const st = mount(t, "state");
	const stArg = t.args[t.args.indexOf("--state-dir") + 1];
	expect("state on a hostPath volume, --state-dir inside it",
	       vol.state && vol.state.hostPath && st && stArg && stArg.startsWith(st.mountPath + "/"));
	const env = (t.env || []).find((e) => e.name === "TUNNELSYNC_NODE_NAME");
	const sel = spec.nodeSelector || {};
	if (checks === "fleet") {
		expect("fleet: TUNNELSYNC_NODE_NAME from spec.nodeName",
		       env && env.valueFrom && env.valueFrom.fieldRef.fieldPath === "spec.nodeName");
		expect("fleet: runs on nodes labelled as gateways",
		       sel["tunnelsync.example.org/gateway"] === "true");
	} else {
		expect(checks + ": the config names the gateway (no TUNNELSYNC_NODE_NAME)", !env);
	}
	if (checks === "gateway")
		expect("gateway: pinned to one node", Object.keys(sel).join() === "kubernetes.io/hostname");
	if (checks === "base")
		expect("base: on no node until an overlay chooses",
		       sel["tunnelsync.example.org/gateway"] === "none");
}

if (checks)
	promises(docs.map((d) => d.toJSON()).filter((d) => d));
if (n === 0) {
	console.error("no documents");
	failures++;
}
if (failures)
	process.exit(1);
console.log(`k8s-validate: ${n} documents (${Object.entries(kinds).map(([k, c]) => c + " " + k).join(", ")}) valid, no unknown field`);

#!/usr/bin/python3
"""The man pages say what the code does.

- Both pages render without a groff warning.
- tunnelsync.yang(5), generated, lists every node of the module at its full
  data path with its type. The node list comes from libyang's tree output
  (yanglint -f tree), not from the generator's own reading of the module.
- tunnelsync(8) names every command and option of the binary's --help,
  and its TROUBLESHOOTING section explains every status reason
  (agent/reconcile/status.c), every plan cause (cause_names in
  agent/reconcile/plan.c) and every make-before-break state
  (agent/ike/swconf.c).

Usage: man-pages.py SOURCE_DIR GENERATED_MAN_DIR TUNNELSYNC_BINARY
"""
import json
import os
import re
import subprocess
import sys
import tempfile

src, mandir, binary = sys.argv[1:4]
failures = []


def fail(msg):
    failures.append(msg)


def roff_plain(path):
    """The page's source with roff escapes for '-' undone, for searching."""
    with open(path) as f:
        text = f.read()
    return (text.replace("\\-", "-").replace("\\:", "").replace("\\e", "\\")
            .replace("\\&", ""))


def groff_warnings(path):
    env = dict(os.environ, MANWIDTH="80", LC_ALL="C.UTF-8")
    p = subprocess.run(["man", "--warnings", "-l", path], capture_output=True, text=True,
                       env=env)
    if p.returncode != 0:
        fail("%s: man exit %d: %s" % (path, p.returncode, p.stderr.strip()))
    elif p.stderr.strip():
        fail("%s: groff warns:\n%s" % (path, p.stderr.strip()))


yang_page = os.path.join(mandir, "tunnelsync.yang.5")
tool_page = os.path.join(src, "man", "tunnelsync.8")
for page in (yang_page, tool_page):
    groff_warnings(page)

# --- tunnelsync.yang(5) against libyang's tree ----------------------------
tree = subprocess.run(["yanglint", "-f", "tree", os.path.join(src, "models", "tunnelsync.yang")],
                      check=True, capture_output=True, text=True).stdout
yang = roff_plain(yang_page)
stack = []  # (column, name or None for a choice/case)
n_nodes = 0
for line in tree.splitlines():
    m = re.match(r"^(\s*[| ]*)\+--(rw|ro|:)\s*(\S+)\s*(\S+)?", line)
    if not m:
        continue
    col = len(m.group(1))
    kind, raw, typ = m.group(2), m.group(3), m.group(4)
    while stack and stack[-1][0] >= col:
        stack.pop()
    if kind == ":" or raw.startswith("("):  # case or choice: no path step
        stack.append((col, None))
        continue
    name = re.sub(r"[?*!]$", "", raw)
    stack.append((col, name))
    path = "/" + "/".join(n for _, n in stack if n)
    n_nodes += 1
    is_leaf = typ is not None and not typ.startswith("[")  # a list shows [keys]
    entry = yang.find("\\fB" + path + "\\fR")
    if entry < 0 and ("\n.SS " + path + "\n") not in yang:
        fail("tunnelsync.yang(5) lacks %s" % path)
        continue
    if is_leaf:
        block = yang[entry:entry + 600]
        if ("type " + typ) not in block:
            fail("tunnelsync.yang(5): %s is not given its type %s" % (path, typ))
if n_nodes < 50:
    fail("only %d nodes read from yanglint's tree: the parser is broken" % n_nodes)

# Defaults: libyang fills them into a minimal config (yanglint -d all); each
# value it adds must be the default the page states for that leaf.
MINIMAL = {"tunnelsync:tunnelsync": {
    "cloudflare": {"account-id": "023e105f4ecef8ad9ca31a8372d0c353"},
    "tunnels": {"tunnel": [
        {"name": "a", "id": "0000000000000000000000000000000a",
         "cloudflare-endpoint": "198.51.100.1", "interface-address": "192.0.2.0/31",
         "route-based": {"if-id": 7}},
        {"name": "b", "id": "0000000000000000000000000000000b",
         "cloudflare-endpoint": "198.51.100.2", "interface-address": "192.0.2.2/31",
         "policy-based": {"traffic-selector": [
             {"local-prefix": "10.0.0.0/8", "remote-prefix": "0.0.0.0/0"}]}}]}}}


def leaves(node, path, out):
    if isinstance(node, dict):
        for k, v in node.items():
            leaves(v, path + "/" + k.split(":")[-1], out)
    elif isinstance(node, list) and node and isinstance(node[0], dict):
        for e in node:
            leaves(e, path, out)
    else:
        out.setdefault(path, set()).add(json.dumps(node))


with tempfile.NamedTemporaryFile("w", suffix=".json") as f:
    json.dump(MINIMAL, f)
    f.flush()
    filled = json.loads(subprocess.run(
        ["yanglint", "-d", "all", "-f", "json", os.path.join(src, "models", "tunnelsync.yang"),
         f.name], check=True, capture_output=True, text=True).stdout)
given, full = {}, {}
leaves(MINIMAL, "", given)
leaves(filled, "", full)
n_defaults = 0
for path, values in sorted(full.items()):
    if path in given:
        continue
    entry = yang.find("\\fB" + path + "\\fR")
    block = yang[entry:yang.find(".TP", entry + 4)] if entry >= 0 else ""
    for v in values:
        v = json.loads(v)
        v = ", ".join(str(x) for x in v) if isinstance(v, list) else v
        v = str(v).lower() if isinstance(v, bool) else str(v)
        n_defaults += 1
        if ("default " + v) not in block:
            fail("tunnelsync.yang(5): %s does not state its default %s" % (path, v))
if n_defaults < 20:
    fail("only %d defaults filled in by libyang: the check is broken" % n_defaults)

# --- tunnelsync(8) against the binary and the code --------------------------
man8 = roff_plain(tool_page)
top = subprocess.run([binary, "--help"], capture_output=True, text=True, check=True).stdout
commands = re.findall(r"^  ([a-z]+)\b", top.split("Commands:")[1], re.M)
if len(commands) < 7:
    fail("only %d commands in tunnelsync --help" % len(commands))
options = set()
for c in commands:
    if not re.search(r"^\.(TP\n\.BI?|B) %s\b" % c, man8, re.M) and \
            ("\n.B tunnelsync %s" % c) not in man8:
        fail("tunnelsync(8) does not describe the command %s" % c)
    h = subprocess.run([binary, c, "--help"], capture_output=True, text=True, check=True).stdout
    options.update(re.findall(r"(--[a-z][a-z-]+)", h.split("Options:")[1]))
opt_section = man8[man8.index(".SH OPTIONS"):man8.index(".SH EXIT STATUS")]
for o in sorted(options):
    if not re.search(r"^\.(B|BI|BR) .*%s\b" % re.escape(o), opt_section, re.M):
        fail("tunnelsync(8) OPTIONS does not describe %s" % o)

trouble = man8[man8.index(".SH TROUBLESHOOTING"):]
trouble = trouble[:trouble.index("\n.SH ", 1)]


def explained(word):
    return re.search(r"^\.(B|BR) (.*\s)?%s(\s|,|\"|$)" % re.escape(word), trouble, re.M)


def read(rel):
    with open(os.path.join(src, rel)) as f:
        return f.read()


reasons = set()
for rel in ("agent/reconcile/status.c", "agent/daemon/daemon.c"):
    if os.path.exists(os.path.join(src, rel)):
        reasons.update(re.findall(r"reason\s*=\s*\"([A-Z][A-Za-z]+)\"", read(rel)))
plan_c = read("agent/reconcile/plan.c")
causes = re.findall(r"\[TS_CAUSE_[A-Z_]+\]\s*=\s*\"([a-z-]+)\"", plan_c)
mbb = re.findall(r"\[TS_MBB_[A-Z_]+\]\s*=\s*\"([a-z-]+)\"", read("agent/ike/swconf.c"))
if len(reasons) < 5 or len(causes) < 20 or len(mbb) < 3:
    fail("too few reasons (%d), causes (%d) or mbb states (%d) found: the patterns are broken"
         % (len(reasons), len(causes), len(mbb)))
for what, words, where in (("status reason", reasons, "agent/reconcile/status.c"),
                           ("plan cause", causes, "agent/reconcile/plan.c"),
                           ("make-before-break state", mbb, "agent/ike/swconf.c")):
    for w in sorted(set(words)):
        if not explained(w):
            fail("%s %s (%s) is not explained in man/tunnelsync.8 TROUBLESHOOTING"
                 % (what, w, where))

for f in failures:
    print("man-pages: " + f, file=sys.stderr)
if failures:
    sys.exit(1)
print("man-pages: %d schema nodes, %d defaults, %d commands, %d options, %d reasons, %d causes, "
      "%d make-before-break states: all documented" %
      (n_nodes, n_defaults, len(commands), len(options), len(reasons), len(causes), len(mbb)))

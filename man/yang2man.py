#!/usr/bin/python3
"""Writes tunnelsync.yang(5), the configuration reference, from the YANG
module: every container, list, choice, leaf and leaf-list in schema order,
with its type (typedefs resolved to their base type and restrictions,
enumerations with each value's description), default, units, whether it is
mandatory or a key, its must/when rules and its description.

libyang reads the module (yanglint -f yin: the module as libyang parsed
it, so a module libyang refuses makes no page); this script only lays the
YIN out as a man page.

Usage: yang2man.py [--yanglint PATH] [--date YYYY-MM-DD] MODULE.yang OUT.5
"""
import argparse
import re
import subprocess
import sys
import xml.etree.ElementTree as ET

YIN = "{urn:ietf:params:xml:ns:yang:yin:1}"
DATA = ("container", "list", "leaf", "leaf-list", "choice", "case")


def tag(e):
    return e.tag[len(YIN):] if e.tag.startswith(YIN) else e.tag


def kids(e, name=None):
    return [c for c in e if name is None or tag(c) == name]


def kid(e, name):
    for c in e:
        if tag(c) == name:
            return c
    return None


def text_of(e, name):
    """The text of a description/reference/error-message-like child."""
    c = kid(e, name)
    if c is None:
        return None
    t = kid(c, "text")
    if t is None:
        t = kid(c, "value")
    return t.text if t is not None else c.get("value")


def attr_of(e, name, attr="value"):
    c = kid(e, name)
    return c.get(attr) if c is not None else None


def esc(s):
    """Escapes text for roff: backslashes, and lines starting with . or '."""
    s = s.replace("\\", "\\e").replace("-", "\\-")
    out = []
    for line in s.split("\n"):
        if line[:1] in (".", "'"):
            line = "\\&" + line
        out.append(line)
    return "\n".join(out)


def brk(s):
    """Escaped text with break points after each '/' and ',': long paths
    and XPath expressions may then wrap."""
    return esc(s).replace("/", "/\\:").replace(",", ",\\:").replace("|", "|\\:")


def para(s):
    """A description as roff: reflowed, blank lines kept as paragraph breaks."""
    s = (s or "").strip()
    paras = re.split(r"\n\s*\n", s)
    return "\n.sp\n".join(esc(" ".join(p.split())) for p in paras if p.strip())


class Module:
    def __init__(self, root):
        self.root = root
        self.prefix = attr_of(root, "prefix")
        self.typedefs = {t.get("name"): t for t in kids(root, "typedef")}

    def local_typedef(self, name):
        if ":" in name:
            pfx, base = name.split(":", 1)
            if pfx != self.prefix:
                return None
            name = base
        return self.typedefs.get(name)

    def restrictions(self, t):
        """Lines describing a type statement's own restrictions."""
        lines = []
        for what in ("range", "length"):
            r = kid(t, what)
            if r is not None:
                msg = text_of(r, "error-message")
                lines.append("%s %s%s" % (what, r.get("value"), " (%s)" % msg if msg else ""))
        for p in kids(t, "pattern"):
            msg = text_of(p, "error-message")
            lines.append("pattern '%s'%s" % (p.get("value"), " (%s)" % msg if msg else ""))
        fd = kid(t, "fraction-digits")
        if fd is not None:
            lines.append("fraction-digits %s" % fd.get("value"))
        for u in kids(t, "type"):  # union members
            lines.append("or " + self.type_line(u))
        return lines

    def base_of(self, name, seen=()):
        """Follows local typedefs down to a built-in or imported type."""
        td = self.local_typedef(name)
        if td is None or name in seen:
            return name, None
        t = kid(td, "type")
        base, _ = self.base_of(t.get("name"), seen + (name,))
        return base, td

    def type_line(self, t):
        name = t.get("name")
        base, td = self.base_of(name)
        s = name if base == name else "%s (%s)" % (name, base)
        return s

    def type_default(self, name, seen=()):
        td = self.local_typedef(name)
        if td is None or name in seen:
            return None
        d = attr_of(td, "default")
        if d is not None:
            return d
        return self.type_default(kid(td, "type").get("name"), seen + (name,))

    def enums(self, t):
        """(name, description) of an enumeration, directly or via typedefs."""
        seen = set()
        while t is not None:
            if t.get("name") == "enumeration":
                return [(e.get("name"), text_of(e, "description")) for e in kids(t, "enum")]
            td = self.local_typedef(t.get("name"))
            if td is None or t.get("name") in seen:
                return []
            seen.add(t.get("name"))
            t = kid(td, "type")
        return []


def leaf_block(m, e, path, out, keys):
    name = e.get("name")
    kind = tag(e)
    t = kid(e, "type")
    out.append(".TP")
    out.append("\\fB%s\\fR%s" % (brk(path), " (leaf\\-list)" if kind == "leaf-list" else ""))
    facts = ["type " + esc(m.type_line(t))]
    base, td = m.base_of(t.get("name"))
    for r in m.restrictions(t):
        facts.append(brk(r))
    if td is not None:
        for r in m.restrictions(kid(td, "type")):
            facts.append(brk(r))
    units = attr_of(e, "units") or (attr_of(td, "units") if td is not None else None)
    if units:
        facts.append("units " + esc(units))
    if kind == "leaf-list":
        dflts = [d.get("value") for d in kids(e, "default")]
        if dflts:
            facts.append("default " + esc(", ".join(dflts)))
    else:
        d = attr_of(e, "default")
        if d is None:
            d = m.type_default(t.get("name"))
        if d is not None:
            facts.append("default " + esc(d))
    if name in keys:
        facts.append("list key")
    if attr_of(e, "mandatory") == "true":
        facts.append("mandatory")
    for mm in ("min-elements", "max-elements"):
        v = attr_of(e, mm)
        if v is not None:
            facts.append("%s %s" % (mm, v))
    if attr_of(e, "ordered-by") == "user":
        facts.append("ordered by user")
    out.append(".br")
    out.append("; ".join(facts) + ".")
    desc = text_of(e, "description")
    if desc:
        out.append(".br")
        out.append(para(desc))
    enums = m.enums(t)
    if enums:
        out.append(".RS")
        for en, ed in enums:
            out.append(".TP")
            out.append("\\fI%s\\fR" % esc(en))
            out.append(para(ed) if ed else "\\&")
        out.append(".RE")
    rules(e, out)


def rules(e, out):
    for r in kids(e, "must"):
        msg = text_of(r, "error-message")
        out.append(".br")
        out.append("Must: \\f(CW%s\\fR%s" % (brk(" ".join(r.get("condition").split())),
                                            " \\(em %s" % esc(msg) if msg else ""))
    w = kid(e, "when")
    if w is not None:
        out.append(".br")
        out.append("Only when: \\f(CW%s\\fR" % brk(" ".join(w.get("condition").split())))


def walk(m, e, path, out, counts):
    """Schema order; choices and cases are named but add no path step."""
    for c in e:
        kind = tag(c)
        if kind not in DATA:
            continue
        name = c.get("name")
        if kind in ("leaf", "leaf-list"):
            keys = (attr_of(e, "key") or "").split() if tag(e) == "list" else []
            leaf_block(m, c, path + "/" + name, out, keys)
            counts[kind] += 1
            continue
        if kind in ("choice", "case"):
            out.append(".TP")
            out.append("\\fI%s %s\\fR (under %s)" % (kind, esc(name), esc(path)))
            facts = []
            if attr_of(c, "mandatory") == "true":
                facts.append("mandatory: exactly one case")
            elif kind == "choice":
                facts.append("at most one case")
            d = attr_of(c, "default")
            if d:
                facts.append("default case " + esc(d))
            if facts:
                out.append(".br")
                out.append("; ".join(facts) + ".")
            desc = text_of(c, "description")
            if desc:
                out.append(".br")
                out.append(para(desc))
            rules(c, out)
            walk(m, c, path, out, counts)
            continue
        sub = path + "/" + name
        out.append(".SS %s" % brk(sub))
        facts = []
        if kind == "list":
            facts.append("list, key: " + esc(attr_of(c, "key") or "none"))
            counts["list"] += 1
        elif kid(c, "presence") is not None:
            facts.append("presence container: " + esc(attr_of(c, "presence")))
        if facts:
            out.append("(" + "; ".join(facts) + ")")
            out.append(".br")
        out.append(para(text_of(c, "description") or ""))
        rules(c, out)
        walk(m, c, sub, out, counts)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--yanglint", default="yanglint")
    ap.add_argument("--date", default=None)
    ap.add_argument("module")
    ap.add_argument("out")
    a = ap.parse_args()
    yin = subprocess.run([a.yanglint, "-f", "yin", a.module], check=True,
                         capture_output=True, text=True).stdout
    root = ET.fromstring(yin)
    m = Module(root)
    rev = kid(root, "revision")
    date = a.date or (rev.get("date") if rev is not None else "")
    out = [
        '.\\" Generated by man/yang2man.py from %s; do not edit.' % a.module.split("/")[-1],
        '.TH TUNNELSYNC.YANG 5 "%s" "tunnelsync" "File Formats"' % date,
        ".ad l",
        ".SH NAME",
        "tunnelsync.yang \\- configuration reference of tunnelsync",
        ".SH SYNOPSIS",
        "/etc/tunnelsync/*.json, /etc/tunnelsync/*.xml",
        ".SH DESCRIPTION",
        "\\fBtunnelsync\\fR(8) reads its configuration as YANG instance data (JSON",
        "or XML) of the module \\fB%s\\fR (namespace \\fI%s\\fR), installed as"
        % (esc(root.get("name")), esc(attr_of(root, "namespace", "uri"))),
        "/usr/share/tunnelsync/models/%s.yang. CONFIG is one file or a" % esc(root.get("name")),
        "directory whose *.json and *.xml files are merged. Check it with",
        "\\fBtunnelsync validate\\fR CONFIG: an error names the file, the line and",
        "the path below.",
        ".PP",
        para(text_of(root, "description")),
        ".PP",
        "Paths below are data paths under the top container; a choice and its",
        "cases are named but take no step in a path. In JSON the top container",
        "is \\f(CW\"%s:%s\"\\fR." % (esc(root.get("name")), esc(root.get("name"))),
        ".SH NODES",
    ]
    counts = {"leaf": 0, "leaf-list": 0, "list": 0}
    walk(m, root, "", out, counts)
    out.append(".SH TYPES")
    out.append("Types defined by the module, with their restrictions.")
    for name, td in m.typedefs.items():
        t = kid(td, "type")
        out.append(".TP")
        out.append("\\fB%s\\fR" % esc(name))
        facts = ["base " + esc(m.type_line(t))] + [brk(r) for r in m.restrictions(t)]
        d = attr_of(td, "default")
        if d is not None:
            facts.append("default " + esc(d))
        out.append("; ".join(facts) + ".")
        desc = text_of(td, "description")
        if desc:
            out.append(".br")
            out.append(para(desc))
    out += [
        ".SH FILES",
        ".TP",
        "/usr/share/tunnelsync/models/",
        "The YANG modules.",
        ".TP",
        "/usr/share/doc/tunnelsync/examples/",
        "Example configurations (gateway.json, gateway.xml).",
        ".SH SEE ALSO",
        "\\fBtunnelsync\\fR(8), \\fByanglint\\fR(1)",
    ]
    with open(a.out, "w") as f:
        f.write("\n".join(out) + "\n")
    print("yang2man: %d leaves, %d leaf-lists, %d lists" %
          (counts["leaf"], counts["leaf-list"], counts["list"]), file=sys.stderr)


if __name__ == "__main__":
    main()

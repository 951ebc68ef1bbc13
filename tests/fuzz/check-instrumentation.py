#!/usr/bin/python3
"""Checks that a -DTUNNELSYNC_FUZZ=ON build instruments what it fuzzes.

A libFuzzer harness linked against uninstrumented libraries runs blind: it
sees only its own file's coverage and no ASan checks in the parsers. This
test fails unless
  - every agent/ source in compile_commands.json was compiled with
    -fsanitize=fuzzer-no-link (or fuzzer), address and undefined;
  - every object with code in every library the fuzz targets link calls the coverage
    and ASan runtime (nm: __sanitizer_cov_8bit_counters_init, __asan_init);
  - every fuzz binary contains the libFuzzer driver (LLVMFuzzerRunDriver).
"""
import argparse
import json
import shlex
import subprocess
import sys


def sanitizers_of(args):
    found = set()
    for a in args:
        if a.startswith("-fsanitize="):
            found.update(a[len("-fsanitize="):].split(","))
        elif a.startswith("-fno-sanitize="):
            found.difference_update(a[len("-fno-sanitize="):].split(","))
    return found


def check_compile_commands(path, source_dir):
    errors = []
    with open(path, encoding="utf-8") as f:
        entries = json.load(f)
    seen = 0
    for e in entries:
        src = e["file"]
        if not src.startswith(source_dir.rstrip("/") + "/"):
            continue
        seen += 1
        args = e.get("arguments") or shlex.split(e["command"])
        have = sanitizers_of(args)
        missing = [s for s in ("address", "undefined") if s not in have]
        if not have & {"fuzzer-no-link", "fuzzer"}:
            missing.append("fuzzer-no-link")
        if missing:
            errors.append(f"{src}: compiled without -fsanitize={','.join(missing)}")
    if seen == 0:
        errors.append(f"{path}: no source under {source_dir}")
    return seen, errors


def nm(path):
    out = subprocess.run(["nm", "-A", path], check=True, capture_output=True, text=True).stdout
    return out.splitlines()


def check_libs(libs):
    errors = []
    objects = 0
    for lib in libs:
        by_obj = {}
        for line in nm(lib):
            # "lib.a:obj.o:                 U sym" or "lib.a:obj.o:0000 T sym"
            parts = line.split(":", 2)
            if len(parts) < 3:
                continue
            fields = parts[2].split()
            entry = by_obj.setdefault(parts[1], [set(), False])
            entry[0].add(fields[-1])
            if len(fields) == 3 and fields[1] in "Tt" and "module_ctor" not in fields[2]:
                entry[1] = True
        if not by_obj:
            errors.append(f"{lib}: no object files")
        for obj, (syms, has_code) in sorted(by_obj.items()):
            # An object with no function (crashpoint.c without test hooks)
            # has nothing to instrument.
            if not has_code:
                continue
            objects += 1
            for need in ("__sanitizer_cov_8bit_counters_init", "__asan_init"):
                if need not in syms:
                    errors.append(f"{lib}({obj}): no {need}: not instrumented")
    return objects, errors


def check_fuzzers(bins):
    errors = []
    for b in bins:
        syms = {line.split()[-1] for line in nm(b) if line.split()}
        if not any(s.endswith("LLVMFuzzerRunDriver") for s in syms):
            errors.append(f"{b}: no libFuzzer driver linked")
        if "__sanitizer_cov_8bit_counters_init" not in syms:
            errors.append(f"{b}: no coverage runtime")
    return errors


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--compile-commands", required=True)
    ap.add_argument("--source-dir", required=True)
    ap.add_argument("--libs", nargs="+", required=True)
    ap.add_argument("--fuzzers", nargs="+", required=True)
    a = ap.parse_args()

    sources, errors = check_compile_commands(a.compile_commands, a.source_dir)
    objects, e2 = check_libs(a.libs)
    errors += e2 + check_fuzzers(a.fuzzers)
    for e in errors:
        print("FAIL:", e)
    print(f"{sources} sources, {len(a.libs)} libraries ({objects} objects), "
          f"{len(a.fuzzers)} fuzzers checked: {len(errors)} problems")
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())

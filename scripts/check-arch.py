#!/usr/bin/env python3
"""check-arch.py — docs/architecture.md matches the code.

Three checks, each printing what is wrong (exit 1), else exit 0:

1. Every C file of the daemon and the CLI (src/**/*.c) is named in a row
   of one of the document's file tables (| `name.c` | owns |), and every
   row names a file that exists (a glob such as `events/*.c` is allowed).
2. The dependency list between <!-- deps:begin --> and <!-- deps:end -->
   is the one the #include lines give (a module is a .c with its .h; it
   depends on the modules whose headers it or its header includes).
   `check-arch.py --write` rewrites that list from the code.
3. HTTP stays at the edge (DESIGN.md §8): only the files in EDGE include
   gateway.h.
"""
import fnmatch
import os
import re
import sys

ROOT = os.path.abspath(os.path.join(os.path.dirname(__file__), ".."))
DOC = os.path.join(ROOT, "docs", "architecture.md")
BEGIN, END = "<!-- deps:begin -->", "<!-- deps:end -->"
# The modules that know requests and answers: the gateway, the API and its
# doors (aws_*, stacks, openapi, ui), and main, which wires them.
EDGE = {"gateway", "gateway_conn", "api", "api_events", "api_parse", "api_versions", "api_internal", "aws_lambda",
        "aws_lambda_fn", "aws_invoke", "aws_internal", "stacks", "openapi", "ui", "main",
        "options"}


def sources():
    for d, _, names in os.walk(os.path.join(ROOT, "src")):
        for n in names:
            if n.endswith((".c", ".h")):
                yield os.path.relpath(os.path.join(d, n), os.path.join(ROOT, "src"))


def module_of(rel):
    """events/cron.c -> events/cron; cli/main.c -> cli/main."""
    return os.path.splitext(rel)[0]


def includes(rel):
    text = open(os.path.join(ROOT, "src", rel), encoding="utf-8", errors="replace").read()
    here = os.path.dirname(rel)
    for inc in re.findall(r'^\s*#\s*include\s+"([^"]+)"', text, re.M):
        for cand in (os.path.normpath(os.path.join(here, inc)), os.path.normpath(inc)):
            if os.path.exists(os.path.join(ROOT, "src", cand)):
                yield cand
                break


def dependencies():
    deps = {}
    for rel in sources():
        mod = module_of(rel)
        deps.setdefault(mod, set())
        for inc in includes(rel):
            other = module_of(inc)
            if other != mod:
                deps[mod].add(other)
    return deps


def deps_text(deps):
    lines = []
    for mod in sorted(deps):
        if not os.path.exists(os.path.join(ROOT, "src", mod + ".c")):
            continue  # a header alone (hearth.h, paths.h): shown where it is included
        ds = sorted(deps[mod])
        lines.append("- `%s` → %s" % (mod, ", ".join(ds) if ds else "(none)"))
    return "\n".join(lines)


def table_names(doc):
    names = []
    for line in doc.splitlines():
        m = re.match(r"^\|\s*`([^`]+\.[ch])`\s*\|", line)
        if m:
            names.append(m.group(1))
    return names


def main():
    doc = open(DOC, encoding="utf-8").read()
    bad = []
    rows = table_names(doc)
    cfiles = sorted(r for r in sources() if r.endswith(".c"))
    for f in cfiles:
        if not any(fnmatch.fnmatch(f, r) for r in rows):
            bad.append("docs/architecture.md: src/%s has no row in a file table" % f)
    every = set(sources())
    for r in rows:
        if not any(fnmatch.fnmatch(f, r) for f in every):
            bad.append("docs/architecture.md: the row `%s` names no file in src/" % r)
    deps = dependencies()
    want = deps_text(deps)
    if BEGIN not in doc or END not in doc:
        bad.append("docs/architecture.md: no %s … %s dependency list" % (BEGIN, END))
    else:
        head, rest = doc.split(BEGIN, 1)
        have, tail = rest.split(END, 1)
        if have.strip() != want:
            if "--write" in sys.argv:
                open(DOC, "w", encoding="utf-8").write(head + BEGIN + "\n" + want + "\n" + END + tail)
                print("check-arch: wrote the dependency list")
            else:
                bad.append("docs/architecture.md: the dependency list is not the code's: "
                           "run scripts/check-arch.py --write and read the diff")
    for mod, ds in sorted(deps.items()):
        if "gateway" in ds and mod not in EDGE:
            bad.append("src/%s includes gateway.h: HTTP stays at the edge (DESIGN.md §8)" % mod)
    for b in bad:
        print(b)
    if bad:
        return 1
    print("check-arch: clean")
    return 0


if __name__ == "__main__":
    sys.exit(main())

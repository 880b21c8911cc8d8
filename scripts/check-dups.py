#!/usr/bin/env python3
"""check-dups.py — no block of more than 10 lines repeated in src/.

Each C file (src/**/*.c, *.h) becomes its list of normalised lines: white
space collapsed, comments removed, and blank or comment-only lines
dropped. Two places that share MIN_LINES (11) or more such lines in a row
are a copy: the script prints each as `a.c:FIRST-LAST ~ b.c:FIRST-LAST
(N lines)` with the original line numbers and exits 1. Exit 0 when none.

A run made only of punctuation and keywords (a ladder of `}` and
`break;`) still counts: it is rare over 11 lines, and when it happens the
code wants a table. Usage: check-dups.py [ROOT] (default: the repo).
"""
import os
import re
import sys

MIN_LINES = 11


def normalise(text):
    """[(line number, normalised line)] without comments or blank lines."""
    out = []
    in_block = False
    for no, raw in enumerate(text.splitlines(), 1):
        line, code = raw, []
        i = 0
        while i < len(line):
            if in_block:
                end = line.find("*/", i)
                if end < 0:
                    i = len(line)
                else:
                    in_block, i = False, end + 2
                continue
            if line.startswith("/*", i):
                in_block, i = True, i + 2
                continue
            if line.startswith("//", i):
                break
            if line[i] == '"':  # a string: copy it whole, so "/*" in it is no comment
                j = i + 1
                while j < len(line) and line[j] != '"':
                    j += 2 if line[j] == "\\" else 1
                code.append(line[i:j + 1])
                i = j + 1
                continue
            code.append(line[i])
            i += 1
        norm = re.sub(r"\s+", " ", "".join(code)).strip()
        if norm:
            out.append((no, norm))
    return out


def files(root):
    src = os.path.join(root, "src")
    for d, _, names in sorted(os.walk(src)):
        for n in sorted(names):
            if n.endswith((".c", ".h")):
                yield os.path.relpath(os.path.join(d, n), root)


def find_runs(root):
    docs = {f: normalise(open(os.path.join(root, f), encoding="utf-8", errors="replace").read())
            for f in files(root)}
    where = {}  # window of MIN_LINES normalised lines -> [(file, index)]
    for f, lines in docs.items():
        texts = [t for _, t in lines]
        for i in range(len(texts) - MIN_LINES + 1):
            where.setdefault(tuple(texts[i:i + MIN_LINES]), []).append((f, i))
    seen, runs = set(), []
    for places in where.values():
        if len(places) < 2:
            continue
        for a in range(len(places)):
            for b in range(a + 1, len(places)):
                (fa, ia), (fb, ib) = places[a], places[b]
                if fa == fb and abs(ia - ib) < MIN_LINES:
                    continue  # a run overlapping itself (a repeated line)
                # Extend backwards to the run's start; skip if already reported.
                la, lb = docs[fa], docs[fb]
                while ia > 0 and ib > 0 and la[ia - 1][1] == lb[ib - 1][1] and \
                        (fa != fb or abs(ia - ib) >= MIN_LINES):
                    ia, ib = ia - 1, ib - 1
                if (fa, ia, fb, ib) in seen:
                    continue
                seen.add((fa, ia, fb, ib))
                n = 0
                while ia + n < len(la) and ib + n < len(lb) and la[ia + n][1] == lb[ib + n][1]:
                    n += 1
                runs.append((n, fa, la[ia][0], la[ia + n - 1][0], fb, lb[ib][0], lb[ib + n - 1][0]))
    return sorted(runs, key=lambda r: (-r[0], r[1], r[2]))


def main():
    root = sys.argv[1] if len(sys.argv) > 1 else os.path.join(os.path.dirname(__file__), "..")
    root = os.path.abspath(root)
    if not os.path.isdir(os.path.join(root, "src")):
        print("check-dups: no src/ in %s" % root, file=sys.stderr)
        return 2
    runs = find_runs(root)
    for n, fa, a1, a2, fb, b1, b2 in runs:
        print("%s:%d-%d ~ %s:%d-%d (%d lines)" % (fa, a1, a2, fb, b1, b2, n))
    if runs:
        print("check-dups: %d repeated block(s) of more than %d lines: give each one home"
              % (len(runs), MIN_LINES - 1))
        return 1
    print("check-dups: clean")
    return 0


if __name__ == "__main__":
    sys.exit(main())

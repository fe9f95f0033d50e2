#!/usr/bin/env python3
"""The house rules the redesign set, checked: no import circle between the modules of a crate
(a module's `use crate::…`/`super::…` paths, resolved to the module that defines them, and
re-exports followed to their source; a module importing from a module that contains it counts
as a circle, since the container owns it), and no source file over 600 lines.

    python3 scripts/check_layout.py        # prints the offenders, exit 1 if any
"""
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..")
CRATES = ["sim", "envs", "ncp", "agent", "cli", "build-support", "feature-pins", "bevy-facade",
          "examples/lander"]
MAX_LINES = 600


def modules(src):
    """module path (tuple) -> file, for every .rs file under src/ (lib.rs is the root)."""
    out = {}
    for dirpath, _, files in os.walk(src):
        for f in files:
            if not f.endswith(".rs"):
                continue
            rel = os.path.relpath(os.path.join(dirpath, f), src)
            parts = rel[:-3].split(os.sep)
            if parts[-1] in ("mod", "lib", "main"):
                parts = parts[:-1]
            out[tuple(parts)] = os.path.join(dirpath, f)
    return out


def strip_tests(text):
    """Drops `#[cfg(test)] mod tests { … }` blocks (tests may import what they like)."""
    i = text.find("#[cfg(test)]\nmod tests {")
    return text if i < 0 else text[:i]


def reexports(mods):
    """(module, name) -> defining module, for `pub use a::b::Name;` lines."""
    table = {}
    for mod, path in mods.items():
        text = open(path).read()
        for m in re.finditer(r"pub use ([\w:]+)::\{([^}]*)\};|pub use ([\w:]+)::(\w+)(?: as \w+)?;", text):
            if m.group(1):
                base, names = m.group(1), [n.strip().split(" as ")[0] for n in m.group(2).split(",")]
            else:
                base, names = m.group(3), [m.group(4)]
            for n in names:
                if n and n != "self":
                    table[(mod, n)] = resolve(mod, base.split("::"), mods)
    return table


def resolve(mod, path, mods):
    """The module a `use` path (split on ::) points into, from module `mod`."""
    if not path:
        return None
    if path[0] == "crate":
        cur, rest = (), path[1:]
    elif path[0] in ("super", "self"):
        cur, rest = mod, path
        while rest and rest[0] in ("super", "self"):
            if rest[0] == "super":
                cur = cur[:-1]
            rest = rest[1:]
    else:
        cur, rest = mod, path
        if tuple(list(mod) + [path[0]]) not in mods:
            return None  # an external crate or a local item
    best = cur
    for i, part in enumerate(rest):
        cand = tuple(list(cur) + list(rest[: i + 1]))
        if cand in mods:
            best = cand
        else:
            break
    return best


def edges(mods):
    table = reexports(mods)
    graph = {m: set() for m in mods}
    for mod, path in mods.items():
        if mod and mod[-1].endswith("tests"):
            continue  # test modules may import what they test
        text = strip_tests(open(path).read())
        text = "\n".join(line.split("//")[0] for line in text.split("\n"))
        for m in re.finditer(r"\b((?:crate|super|self)(?:::\w+)*)(?:::\{([^}]*)\})?", text):
            if m.group(0) in ("crate", "super", "self"):
                continue
            parts = m.group(1).split("::")
            target = resolve(mod, parts, mods)
            names = [n.strip().split("::")[0] for n in (m.group(2) or "").split(",") if n.strip()]
            targets = {target} if target is not None else set()
            for n in names or [parts[-1]]:
                src = table.get((target, n))
                if target is not None and tuple(list(target) + [n]) in mods:
                    src = tuple(list(target) + [n])  # a submodule named in braces
                if src is not None:
                    targets.discard(target)
                    targets.add(src)
            for t in targets:
                if t is not None and t != mod:
                    graph[mod].add(t)
    return graph


def cycles(graph):
    """Pairs that import each other, and modules that import from a module containing them
    (the container owns them: that is a circle too)."""
    found = []
    for a in graph:
        for b in graph[a]:
            if a < b and a in graph.get(b, ()):
                found.append((a, b))
            elif len(b) < len(a) and a[: len(b)] == b:
                found.append((a, b))
    return found


def main():
    bad = 0
    for crate in CRATES:
        src = os.path.join(ROOT, crate, "src")
        mods = modules(src)
        graph = edges(mods)
        for a, b in cycles(graph):
            print(f"{crate}: import circle {'::'.join(a) or 'crate'} <-> {'::'.join(b) or 'crate'}")
            bad += 1
        for path in mods.values():
            n = sum(1 for _ in open(path))
            if n > MAX_LINES:
                print(f"{os.path.relpath(path, ROOT)}: {n} lines (at most {MAX_LINES})")
                bad += 1
    for dirpath, _, files in os.walk(ROOT):
        if "/target" in dirpath or "/." in dirpath or "/src" in dirpath:
            continue
        for f in files:
            if f.endswith(".rs"):
                path = os.path.join(dirpath, f)
                n = sum(1 for _ in open(path))
                if n > MAX_LINES:
                    print(f"{os.path.relpath(path, ROOT)}: {n} lines (at most {MAX_LINES})")
                    bad += 1
    print("layout: ok" if not bad else f"layout: {bad} problem(s)")
    return 1 if bad else 0


if __name__ == "__main__":
    sys.exit(main())

#!/usr/bin/env python3
"""The house rules the redesign set, checked: no import circle between the modules of a crate
(a module's `use crate::…`/`super::…` paths, resolved to the module that defines them, and
re-exports followed to their source; a module importing from a module that contains it counts
as a circle, since the container owns it), no source file over 600 lines, and no function
outside the tests over 80 lines (from its `fn` line to its closing brace; `#[cfg(test)]`
modules, tests.rs files and tests/ folders are skipped).

    python3 scripts/dev/check_layout.py        # prints the offenders, exit 1 if any
"""
import os
import re
import sys

ROOT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..")
CRATES = ["sim", "envs", "ncp", "agent", "cli", "build", "feature-pins", "bevy",
          "examples/lander"]
MAX_LINES = 600
MAX_FN_LINES = 80


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


def code_only(text):
    """`text` with comments, strings and char literals blanked (newlines kept), so that the
    braces left are the code's."""
    out, i, n = [], 0, len(text)
    while i < n:
        c = text[i]
        if text.startswith("//", i):
            j = text.find("\n", i)
            j = n if j < 0 else j
            out.append(" " * (j - i))
            i = j
        elif text.startswith("/*", i):
            depth, j = 1, i + 2
            while j < n and depth:
                if text.startswith("/*", j):
                    depth, j = depth + 1, j + 2
                elif text.startswith("*/", j):
                    depth, j = depth - 1, j + 2
                else:
                    j += 1
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif re.match(r'b?r(#*)"', text[i:i + 260]) and (i == 0 or not (text[i - 1].isalnum() or text[i - 1] == "_")):
            m = re.match(r'b?r(#*)"', text[i:])
            end = text.find('"' + m.group(1), i + m.end())
            j = n if end < 0 else end + 1 + len(m.group(1))
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == '"':
            j = i + 1
            while j < n and text[j] != '"':
                j += 2 if text[j] == "\\" else 1
            j += 1
            out.append(re.sub(r"[^\n]", " ", text[i:j]))
            i = j
        elif c == "'":
            m = re.match(r"'(\\.[^']*|[^\\'\n])'", text[i:])
            if m:  # a char literal; else a lifetime
                out.append(" " * m.end())
                i += m.end()
            else:
                out.append(c)
                i += 1
        else:
            out.append(c)
            i += 1
    return "".join(out)


def without_test_modules(code):
    """`code` (from `code_only`) with every `#[cfg(test)] mod … { … }` block blanked."""
    for m in reversed(list(re.finditer(r"#\[cfg\(test\)\]\s*(pub(\([^)]*\))?\s+)?mod\s+\w+\s*\{", code))):
        end = matching_brace(code, m.end() - 1)
        code = code[: m.start()] + re.sub(r"[^\n]", " ", code[m.start():end + 1]) + code[end + 1:]
    return code


def matching_brace(code, i):
    """The index of the brace closing the one at `i` (the end of the text if none)."""
    depth = 0
    for j in range(i, len(code)):
        if code[j] == "{":
            depth += 1
        elif code[j] == "}":
            depth -= 1
            if depth == 0:
                return j
    return len(code) - 1


FN = re.compile(r"^[ \t]*(?:pub(?:\([^)]*\))?\s+)?(?:(?:const|async|unsafe|extern\s+\"\w*\"|default)\s+)*fn\s+(\w+)", re.M)


def long_functions(path):
    """(name, first line, lines) of each function outside the tests over `MAX_FN_LINES`."""
    code = without_test_modules(code_only(open(path).read()))
    found = []
    for m in FN.finditer(code):
        # The body's brace: the first `{` or `;` (a declaration without body) after the name
        # that is not inside the signature's parentheses or generics.
        depth, j = 0, m.end()
        while j < len(code):
            ch = code[j]
            if ch in "(<[":
                depth += 1
            elif ch in ")>]" and not (ch == ">" and code[j - 1] == "-"):
                depth -= 1
            elif ch in "{;" and depth <= 0:
                break
            j += 1
        if j >= len(code) or code[j] == ";":
            continue
        end = matching_brace(code, j)
        first = code.count("\n", 0, m.start()) + 1
        lines = code.count("\n", m.start(), end) + 1
        if lines > MAX_FN_LINES:
            found.append((m.group(1), first, lines))
    return found


def rust_files():
    """Every .rs file of the repository outside target/, hidden folders, tests/ folders and
    tests.rs files."""
    for dirpath, dirs, files in os.walk(ROOT):
        dirs[:] = sorted(d for d in dirs if not d.startswith(".") and d not in ("target", "tests"))
        for f in sorted(files):
            if f.endswith(".rs") and f != "tests.rs":
                yield os.path.join(dirpath, f)


def main():
    bad = 0
    for path in rust_files():
        for name, first, lines in long_functions(path):
            rel = os.path.relpath(path, ROOT)
            print(f"{rel}:{first}: fn {name} is {lines} lines (at most {MAX_FN_LINES})")
            bad += 1
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

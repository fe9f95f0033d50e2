#!/usr/bin/env python3
"""Checks the docs (README.md and docs/**/*.md) so they cannot rot.

    python3 scripts/dev/check_docs.py          every relative link and #anchor resolves (no build needed)
    python3 scripts/dev/check_docs.py --run    also: every `wormnet` flag in a shell block exists, and
                                               every block marked runnable runs (needs the built binary)

A runnable block is a ```sh fence right after a line `<!-- runnable -->`. The blocks of one page
run in order, in one fresh temporary directory holding copies of configs/ and sweeps/ and a
`scripts/wormnet` that runs the built binary (target/release/wormnet, or $WORMNET_BIN), each with
`bash -euo pipefail`. Keep their step counts small: the whole run should take a minute or two.
Python 3 standard library only.
"""

import argparse
import os
import re
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent.parent
MARKER = "<!-- runnable -->"
FENCE = re.compile(r"^(\s*)(```+|~~~+)\s*([\w+-]*)")
LINK = re.compile(r"!?\[(?:[^\[\]]|\[[^\]]*\])*\]\(\s*<?([^)\s>]+)>?(?:\s+\"[^\"]*\")?\s*\)")
HEADING = re.compile(r"^(#{1,6})\s+(.*?)\s*#*\s*$")
BLOCK_TIMEOUT_S = 600


def pages():
    """README.md and every Markdown page under docs/."""
    found = [ROOT / "README.md"]
    found += sorted((ROOT / "docs").rglob("*.md"))
    return [p for p in found if p.is_file()]


def blocks_and_text(lines):
    """Splits a page into prose lines (code fences blanked) and its fenced blocks as
    (first line number, info string, body, marked runnable)."""
    prose, blocks = [], []
    fence, start, info, body, runnable = None, 0, "", [], False
    previous = ""
    for n, line in enumerate(lines, 1):
        m = FENCE.match(line)
        if fence is None and m:
            fence, start, info, body = m.group(2), n, m.group(3), []
            runnable = previous.strip() == MARKER
            prose.append("")
        elif fence is not None and line.strip().startswith(fence[0] * len(fence)) and \
                line.strip().strip(fence[0]) == "":
            blocks.append((start, info, "\n".join(body) + "\n", runnable))
            fence = None
            prose.append("")
        elif fence is not None:
            body.append(line)
            prose.append("")
        else:
            prose.append(line)
        if line.strip():
            previous = line
    if fence is not None:
        blocks.append((start, info, "\n".join(body) + "\n", runnable))
    return prose, blocks


def slug(heading):
    """GitHub's anchor for a heading: inline markup dropped, lower case, punctuation other
    than '-' and '_' removed, spaces to '-'."""
    text = re.sub(r"!?\[([^\]]*)\]\([^)]*\)", r"\1", heading)
    text = re.sub(r"<[^>]+>", "", text)
    text = text.replace("`", "").replace("*", "")
    text = text.strip().lower()
    text = "".join(c for c in text if c.isalnum() or c in " -_")
    return text.replace(" ", "-")


def anchors(path, cache={}):
    """Every anchor a page has (duplicates numbered as GitHub numbers them)."""
    if path not in cache:
        prose, _ = blocks_and_text(path.read_text(encoding="utf-8").splitlines())
        seen, found = {}, set()
        for line in prose:
            m = HEADING.match(line)
            if not m:
                continue
            s = slug(m.group(2))
            count = seen.get(s, 0)
            seen[s] = count + 1
            found.add(s if count == 0 else f"{s}-{count}")
        for line in prose:
            for name in re.findall(r"<a\s+(?:name|id)=\"([^\"]+)\"", line):
                found.add(name)
        cache[path] = found
    return cache[path]


def check_links(page):
    """Problems with the page's relative links and anchors, as 'file:line: why'."""
    problems = []
    prose, _ = blocks_and_text(page.read_text(encoding="utf-8").splitlines())
    rel = page.relative_to(ROOT)
    for n, line in enumerate(prose, 1):
        line = re.sub(r"`[^`]*`", "", line)
        for target in LINK.findall(line):
            if re.match(r"^[a-z][a-z0-9+.-]*:", target):
                continue  # http:, https:, mailto:
            path_part, _, anchor = target.partition("#")
            dest = page if not path_part else (page.parent / path_part).resolve()
            if not dest.exists():
                problems.append(f"{rel}:{n}: link to {target}: {path_part} does not exist")
                continue
            if ROOT not in dest.parents and dest != ROOT:
                problems.append(f"{rel}:{n}: link to {target} leaves the repository")
                continue
            if anchor and dest.suffix == ".md" and anchor not in anchors(dest):
                problems.append(f"{rel}:{n}: link to {target}: no heading gives #{anchor} "
                                f"in {dest.relative_to(ROOT)}")
    return problems


def shell_blocks(page):
    """The page's sh/bash/console blocks: (line, body, runnable)."""
    _, blocks = blocks_and_text(page.read_text(encoding="utf-8").splitlines())
    return [(n, body, run) for n, info, body, run in blocks if info in ("sh", "bash", "shell")]


def check_markers(page):
    """A runnable marker must sit right above a sh block, and that block must parse."""
    problems = []
    lines = page.read_text(encoding="utf-8").splitlines()
    rel = page.relative_to(ROOT)
    runnable_lines = {n for n, _, run in shell_blocks(page) if run}
    for n, line in enumerate(lines, 1):
        if line.strip() != MARKER:
            continue
        nxt = next((k for k in range(n + 1, len(lines) + 1) if lines[k - 1].strip()), None)
        if nxt not in runnable_lines:
            problems.append(f"{rel}:{n}: {MARKER} is not followed by a ```sh block")
    for n, body, run in shell_blocks(page):
        if run:
            r = subprocess.run(["bash", "-n"], input=body, text=True, capture_output=True)
            if r.returncode != 0:
                problems.append(f"{rel}:{n}: runnable block does not parse: {r.stderr.strip()}")
    return problems


def wormnet_lines(body):
    """(subcommand words, flags) of each `wormnet …` / `scripts/wormnet …` command in a shell
    block or an inline code span."""
    text = re.sub(r"\\\n", " ", body)
    found = []
    for line in text.splitlines():
        for part in re.split(r"&&|;|\||\$\(", line.split(" #")[0]):
            words = [w.strip("\"'") for w in part.split()]
            while words and not (words[0] == "wormnet" or words[0].endswith("scripts/wormnet")):
                words = words[1:]
            if len(words) < 2 or not re.fullmatch(r"[a-z]+", words[1]):
                continue
            sub = [words[1]]
            if words[1] == "bench" and len(words) > 2 and re.fullmatch(r"[a-z]+", words[2]):
                sub.append(words[2])
            flags = [m.group(0) for w in words[2:] for m in [re.match(r"\[?(--[a-z][a-z0-9-]*)", w)]
                     if m]
            flags = [f.lstrip("[") for f in flags]
            found.append((tuple(sub), flags))
    return found


def commands(page):
    """(line, subcommand words, flags) of every wormnet command the page shows, in shell blocks
    and in inline code."""
    found = []
    for n, body, _ in shell_blocks(page):
        found += [(n, sub, flags) for sub, flags in wormnet_lines(body)]
    prose, _ = blocks_and_text(page.read_text(encoding="utf-8").splitlines())
    for n, line in enumerate(prose, 1):
        for span in re.findall(r"`([^`]+)`", line):
            found += [(n, sub, flags) for sub, flags in wormnet_lines(span)]
    return found


def check_flags(binary):
    """Every `wormnet SUB --flag` the docs show names a subcommand and a flag that
    `wormnet SUB --help` lists."""
    problems, helps = [], {}
    for page in pages():
        rel = page.relative_to(ROOT)
        for n, sub, flags in commands(page):
            if sub not in helps:
                r = subprocess.run([str(binary), *sub, "--help"], capture_output=True, text=True)
                helps[sub] = r.stdout if r.returncode == 0 else None
            if helps[sub] is None:
                problems.append(f"{rel}:{n}: `wormnet {' '.join(sub)}` is no subcommand")
                continue
            for flag in flags:
                if not re.search(re.escape(flag) + r"(?![a-z0-9-])", helps[sub]):
                    problems.append(f"{rel}:{n}: `wormnet {' '.join(sub)}` has no {flag}")
    return problems


def sandbox(binary):
    """A temporary directory laid out like a clone for the runnable blocks."""
    work = Path(tempfile.mkdtemp(prefix="wormnet-docs-"))
    for name in ("configs", "sweeps"):
        shutil.copytree(ROOT / name, work / name, ignore=shutil.ignore_patterns("runs"))
    (work / "scripts").mkdir()
    shim = work / "scripts" / "wormnet"
    shim.write_text(f'#!/usr/bin/env bash\nexec "{binary}" "$@"\n')
    shim.chmod(0o755)
    return work


def run_blocks(binary):
    """Runs every runnable block, page by page; problems as 'file:line: why'."""
    problems = []
    for page in pages():
        blocks = [(n, body) for n, body, run in shell_blocks(page) if run]
        if not blocks:
            continue
        rel = page.relative_to(ROOT)
        work = sandbox(binary)
        try:
            for n, body in blocks:
                print(f"check_docs: running {rel}:{n}", file=sys.stderr, flush=True)
                try:
                    r = subprocess.run(["bash", "-euo", "pipefail", "-c", body], cwd=work,
                                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                                       text=True, timeout=BLOCK_TIMEOUT_S)
                except subprocess.TimeoutExpired:
                    problems.append(f"{rel}:{n}: runnable block ran over {BLOCK_TIMEOUT_S} s")
                    break
                if r.returncode != 0:
                    tail = "\n    ".join(r.stdout.strip().splitlines()[-15:])
                    problems.append(f"{rel}:{n}: runnable block exited {r.returncode}:\n    {tail}")
                    break
        finally:
            shutil.rmtree(work, ignore_errors=True)
    return problems


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--run", action="store_true",
                        help="also check wormnet flags and run the runnable blocks (needs the binary)")
    args = parser.parse_args()
    problems = []
    for page in pages():
        problems += check_links(page)
        problems += check_markers(page)
    if args.run and not problems:
        binary = Path(os.environ.get("WORMNET_BIN", ROOT / "target/release/wormnet")).resolve()
        if not os.access(binary, os.X_OK):
            print(f"check_docs: no wormnet binary at {binary}: build it first "
                  "(scripts/wormnet info, or scripts/test), or set WORMNET_BIN", file=sys.stderr)
            return 1
        problems += check_flags(binary)
        if not problems:
            problems += run_blocks(binary)
    for p in problems:
        print(f"check_docs: {p}", file=sys.stderr)
    if not problems:
        what = "links, anchors, flags and runnable blocks" if args.run else "links and anchors"
        print(f"check_docs: {what} OK in {len(pages())} pages", file=sys.stderr)
    return 1 if problems else 0


if __name__ == "__main__":
    sys.exit(main())

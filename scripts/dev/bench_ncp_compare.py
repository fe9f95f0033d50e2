#!/usr/bin/env python3
"""Run `wormnet bench ncp` and scripts/dev/bench_ncps.py back to back and print one table.

    ~/.cache/wormnet/venv/bin/python scripts/dev/bench_ncp_compare.py [--seconds 1] [--threads 1]

Both sides use the same torch thread count. "speed-up" = ncps time / wormnet time on the path
wormnet picks automatically (the CPU kernels of the LTC and the wired CfC); for `step` it is against the faster of
ncps's module and bare-cell calls.
"""

import argparse
import json
import os
import subprocess
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def run(cmd):
    out = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
    return [json.loads(line) for line in out.splitlines() if line.startswith("{")]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--seconds", default="1.0")
    ap.add_argument("--threads", default="1")
    args = ap.parse_args()
    common = ["--json", "--seconds", args.seconds, "--threads", args.threads]
    rust = run([os.path.join(HERE, "..", "wormnet"), "bench", "ncp"] + common)
    py = run([sys.executable, os.path.join(HERE, "bench_ncps.py")] + common)
    keys = sorted({(r["model"], r["mode"], r["batch"]) for r in rust},
                  key=lambda k: (k[0] != "ltc", ["forward", "train", "step"].index(k[1]), k[2]))
    print(f"torch threads {args.threads}; ms per call (step: µs)")
    print(f"{'model':<5} {'mode':<8} {'batch':>5} | {'wormnet':>10} {'(path)':<8} {'wormnet tch':>11} | "
          f"{'ncps module':>11} {'ncps cell':>10} | {'speed-up':>8}")
    for model, mode, batch in keys:
        def pick(rows, path):
            for r in rows:
                if (r["model"], r["mode"], r["batch"], r["path"]) == (model, mode, batch, path):
                    return r["ms"]
            return None
        auto_path = "kernel"
        ours = pick(rust, auto_path)
        tch = pick(rust, "tch")
        mod = pick(py, "module")
        cell = pick(py, "cell")
        scale = 1e3 if mode == "step" else 1.0
        fmt = lambda v, w: f"{v * scale:>{w}.2f}" if v is not None else f"{'-':>{w}}"
        best = min(v for v in (mod, cell) if v is not None)
        print(f"{model:<5} {mode:<8} {batch:>5} | {fmt(ours, 10)} {auto_path:<8} {fmt(tch, 11)} | "
              f"{fmt(mod, 11)} {fmt(cell, 10)} | {best / ours:>7.1f}x")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Python ncps==1.0.1 companion of `wormnet bench ncp`: the same cases, measured the same way.

    ~/.cache/wormnet/venv/bin/python scripts/dev/bench_ncps.py [--json] [--threads 1] [--seconds 1]

Cases: LTC and CfC on AutoNCP(19, 4) with 8 inputs, sequence 100;
  forward  (no-grad sequence forward)             batch 1 / 32 / 256
  train    (forward + backward + Adam, MSE loss)  batch 1 / 32 / 256
  step     (one streaming no-grad step)           batch 1 / 16 / 32 / 256,
           path "module" = LTC/CfC module on (B, 1, F), path "cell" = rnn_cell(x, h, 1.0)
Median of repeats after two warm-up calls, like the Rust side.

To run both back to back and print the comparison table:

    python3 scripts/dev/bench_ncp_compare.py [--seconds 1]
"""

import argparse
import json
import sys
import time

import torch
from ncps.torch import CfC, LTC
from ncps.wirings import AutoNCP

INPUTS = 8


def time_ms(seconds, f):
    f()
    f()
    samples = []
    start = time.perf_counter()
    while len(samples) < 3 or (time.perf_counter() - start < seconds and len(samples) < 10000):
        t = time.perf_counter()
        f()
        samples.append((time.perf_counter() - t) * 1e3)
    samples.sort()
    return samples[len(samples) // 2], len(samples)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--json", action="store_true")
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--seconds", type=float, default=1.0)
    ap.add_argument("--seq", type=int, default=100)
    ap.add_argument("--batches", default="1,32,256")
    ap.add_argument("--step-batches", default="1,16,32,256")
    ap.add_argument("--models", default="ltc,cfc")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    batches = [int(b) for b in args.batches.split(",")]
    step_batches = [int(b) for b in args.step_batches.split(",")]
    if not args.json:
        print(f"ncps NCP bench, AutoNCP(19,4), 8 inputs, seq {args.seq}, {args.threads} torch thread(s)")

    def emit(model, mode, batch, path, t):
        ms, reps = t
        row = dict(implementation="ncps", model=model, batch=batch, mode=mode, ms=ms, path=path,
                   threads=args.threads, reps=reps)
        if args.json:
            print(json.dumps(row), flush=True)
        else:
            per = f"{ms * 1e3:9.1f} µs" if mode == "step" else f"{ms:9.2f} ms"
            print(f"{model:<4} {mode:<8} batch {batch:>4}  {per}  ({path}, {reps} reps)", flush=True)

    for model in args.models.split(","):
        torch.manual_seed(0)
        wiring = AutoNCP(19, 4)
        net = LTC(INPUTS, wiring) if model == "ltc" else CfC(INPUTS, wiring)
        opt = torch.optim.Adam(net.parameters(), lr=1e-3)
        for b in batches:
            x = torch.randn(b, args.seq, INPUTS)
            target = torch.randn(b, args.seq, 4)

            def fwd():
                with torch.no_grad():
                    net(x)

            def train():
                opt.zero_grad()
                y, _ = net(x)
                ((y - target) ** 2).mean().backward()
                opt.step()

            emit(model, "forward", b, "module", time_ms(args.seconds, fwd))
            emit(model, "train", b, "module", time_ms(args.seconds, train))
        for b in step_batches:
            x = torch.randn(b, 1, INPUTS)
            state = {"h": torch.zeros(b, 19)}

            def step_module():
                with torch.no_grad():
                    _, state["h"] = net(x, state["h"])

            def step_cell():
                with torch.no_grad():
                    _, state["h"] = net.rnn_cell(x[:, 0], state["h"], 1.0)

            emit(model, "step", b, "module", time_ms(args.seconds, step_module))
            emit(model, "step", b, "cell", time_ms(args.seconds, step_cell))


if __name__ == "__main__":
    sys.exit(main())

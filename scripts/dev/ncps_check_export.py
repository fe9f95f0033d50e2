#!/usr/bin/env python3
"""Check the reverse direction of the weight exchange: ncps loads what wormnet saved.

    WORMNET_EXPORT_DIR=/tmp/wormnet-export scripts/cargo test --release -p wormnet-ncp \
        --test ncps_parity our_files_have_ncps_keys
    ~/.cache/wormnet/venv/bin/python scripts/dev/ncps_check_export.py /tmp/wormnet-export

For every fixture case: build the same ncps model, `load_state_dict(..., strict=True)` from the
safetensors file wormnet wrote (its own freshly initialised weights), run the fixture input and
compare with the outputs and final states wormnet computed (max abs diff <= 1e-5).
"""

import json
import os
import sys

import torch
from safetensors.torch import load_file

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
import ncps_fixtures as fx  # noqa: E402


def main():
    export = sys.argv[1] if len(sys.argv) > 1 else "/tmp/wormnet-export"
    with open(os.path.join(fx.OUT, "cases.json")) as f:
        cases = json.load(f)["cases"]
    by_name = {c["name"]: c for c in fx.CASES}
    worst, failed = 0.0, []
    for meta in cases:
        name = meta["name"]
        m, n = fx.build_model(by_name[name], 0)
        sd = load_file(os.path.join(export, name + ".safetensors"))
        m.load_state_dict(sd, strict=True)
        m.eval()
        io = load_file(os.path.join(fx.OUT, name + ".io.safetensors"))
        ours = load_file(os.path.join(export, name + ".out.safetensors"))
        x, b = io["input"], io["input"].shape[0]
        mixed = meta["config"]["mixed_memory"]
        h0 = io.get("h0")
        c0 = io.get("c0")
        with torch.no_grad():
            if "timespans" in io:
                h = h0 if h0 is not None else torch.zeros(b, n)
                c = c0 if c0 is not None else torch.zeros(b, n)
                y, h, c = fx.per_sample_reference(m, by_name[name], x, h, c, io["timespans"])
                hx = (h, c) if mixed else h
            else:
                hx = None if h0 is None else ((h0, c0 if c0 is not None else torch.zeros(b, n)) if mixed else h0)
                y, hx = m(x, hx)
        h, c = (hx if mixed else (hx, None))
        out_dim = ours["output"].shape[-1]
        d = max((y[..., :out_dim] - ours["output"]).abs().max().item(),
                (h - ours["final_h"]).abs().max().item(),
                (c - ours["final_c"]).abs().max().item() if mixed else 0.0)
        worst = max(worst, d)
        status = "ok" if d <= 1e-5 else "FAIL"
        if d > 1e-5:
            failed.append(name)
        print(f"{name}: strict load ok, max abs diff {d:.2e} {status}")
    print(f"{len(cases)} cases, worst {worst:.2e}, failed {failed}")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()

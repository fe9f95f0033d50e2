#!/usr/bin/env python3
"""Generate the ncps==1.0.1 parity fixtures that wormnet-ncp's Rust tests read.

Run with the project venv (it has torch 2.13.0 and ncps 1.0.1 from PyPI):

    ~/.cache/wormnet/venv/bin/python scripts/dev/ncps_fixtures.py

Writes into ncp/tests/fixtures/ncps/:
  cases.json                 one entry per model: our config (the Rust `NcpConfig` schema),
                             input size, batch, sequence length, how timespans are given
  <case>.safetensors         the model's state_dict exactly as ncps names it
  <case>.io.safetensors      input, optional h0/c0/timespans, output sequence, final h (and c)
  wirings.safetensors        adjacency matrices of built wirings (bit-exact RNG checks)
  wirings.json               the wiring configs behind wirings.safetensors

The Rust tests need no Python; rerun this only to regenerate the fixtures.
"""

import json
import os
import sys

import numpy as np
import torch
from safetensors.torch import save_file

import ncps
from ncps.torch import CfC, LTC
from ncps.wirings import NCP, AutoNCP, FullyConnected, Random

HERE = os.path.dirname(os.path.abspath(__file__))
OUT = os.path.join(HERE, "..", "..", "ncp", "tests", "fixtures", "ncps")

INPUT_SIZE = 8
BATCH = 3
SEQ = 7


def make_wiring(cfg):
    kind = cfg["kind"]
    if kind == "auto_ncp":
        return AutoNCP(cfg["units"], cfg["output_size"], sparsity_level=cfg.get("sparsity_level", 0.5),
                       seed=cfg.get("seed", 22222))
    if kind == "ncp":
        return NCP(cfg["inter_neurons"], cfg["command_neurons"], cfg["motor_neurons"], cfg["sensory_fanout"],
                   cfg["inter_fanout"], cfg["recurrent_command_synapses"], cfg["motor_fanin"],
                   seed=cfg.get("seed", 22222))
    if kind == "fully_connected":
        return FullyConnected(cfg["units"], cfg.get("output_dim"), erev_init_seed=cfg.get("seed", 1111),
                              self_connections=cfg.get("self_connections", True))
    if kind == "random":
        return Random(cfg["units"], cfg.get("output_dim"), sparsity_level=cfg.get("sparsity_level", 0.0),
                      random_seed=cfg.get("seed", 1111))
    raise ValueError(kind)


AUTO = {"kind": "auto_ncp", "units": 19, "output_size": 4}
NCP_W = {"kind": "ncp", "inter_neurons": 6, "command_neurons": 5, "motor_neurons": 3, "sensory_fanout": 3,
         "inter_fanout": 2, "recurrent_command_synapses": 4, "motor_fanin": 2, "seed": 777}
FC_W = {"kind": "fully_connected", "units": 7, "output_dim": 3}
FC_FULL = {"kind": "fully_connected", "units": 6}
RND_W = {"kind": "random", "units": 10, "output_dim": 2, "sparsity_level": 0.5, "seed": 4321}
RND_FULL = {"kind": "random", "units": 9, "sparsity_level": 0.4, "seed": 99}


def ltc_case(name, wiring, implicit=True, inp="affine", outp="affine", unfolds=6, mixed=False, h0=False,
             timespans="none", batch=BATCH):
    return dict(name=name, config=dict(cell="ltc", wiring=wiring, input_mapping=inp, output_mapping=outp,
                                       ode_unfolds=unfolds, implicit_constraints=implicit, mixed_memory=mixed),
                h0=h0, timespans=timespans, batch=batch)


def cfc_case(name, mode="default", units=None, wiring=None, backbone_units=None, backbone_layers=None,
             backbone_dropout=None, activation="lecun_tanh", mixed=False, proj=None, h0=False, timespans="none",
             batch=BATCH):
    cfg = dict(cell="cfc", mode=mode, mixed_memory=mixed)
    if wiring is not None:
        cfg["wiring"] = wiring
    else:
        cfg["units"] = units
        cfg["activation"] = activation
        cfg["backbone_units"] = backbone_units
        cfg["backbone_layers"] = backbone_layers
        cfg["backbone_dropout"] = backbone_dropout
    if proj is not None:
        cfg["proj_size"] = proj
    return dict(name=name, config=cfg, h0=h0, timespans=timespans, batch=batch)


CASES = [
    # LTC: constraint modes x mappings x unfolds, over the four wiring kinds
    ltc_case("ltc_autoncp_implicit_affine_u6", AUTO),
    ltc_case("ltc_autoncp_explicit_affine_u6", AUTO, implicit=False, h0=True),
    ltc_case("ltc_autoncp_implicit_linear_u3", AUTO, inp="linear", outp="linear", unfolds=3),
    ltc_case("ltc_autoncp_explicit_none_u3", AUTO, implicit=False, inp="none", outp="none", unfolds=3),
    ltc_case("ltc_ncp_implicit_affine_u6", NCP_W, h0=True),
    ltc_case("ltc_ncp_explicit_linear_u6", NCP_W, implicit=False, inp="linear", outp="none"),
    ltc_case("ltc_fc_implicit_affine_u6", FC_W),
    ltc_case("ltc_fcfull_explicit_none_u3", FC_FULL, implicit=False, inp="none", outp="affine", unfolds=3),
    ltc_case("ltc_random_implicit_affine_u6", RND_W, h0=True),
    ltc_case("ltc_random_explicit_affine_u3", RND_FULL, implicit=False, unfolds=3),
    ltc_case("ltc_autoncp_mixed", AUTO, mixed=True, h0=True),
    ltc_case("ltc_random_mixed", RND_W, mixed=True),
    ltc_case("ltc_autoncp_timespans_b1", AUTO, timespans="sequence", batch=1),
    ltc_case("ltc_autoncp_timespans_per_sample", AUTO, timespans="per_sample", h0=True),
    # CfC (dense, with backbone)
    cfc_case("cfc_default_l1", "default", units=16, backbone_units=32, backbone_layers=1, backbone_dropout=0.0),
    cfc_case("cfc_pure_l1", "pure", units=16, backbone_units=32, backbone_layers=1, backbone_dropout=0.0,
             h0=True),
    cfc_case("cfc_nogate_l1", "no_gate", units=16, backbone_units=32, backbone_layers=1, backbone_dropout=0.0),
    cfc_case("cfc_default_l2", "default", units=12, backbone_units=24, backbone_layers=2, backbone_dropout=0.0,
             activation="silu"),
    cfc_case("cfc_pure_l2_dropout", "pure", units=12, backbone_units=24, backbone_layers=2,
             backbone_dropout=0.2, activation="gelu"),
    cfc_case("cfc_nogate_l2", "no_gate", units=12, backbone_units=24, backbone_layers=2, backbone_dropout=0.0,
             activation="relu", h0=True),
    cfc_case("cfc_default_l0_tanh", "default", units=10, backbone_units=16, backbone_layers=0,
             backbone_dropout=0.0, activation="tanh"),
    cfc_case("cfc_default_mixed_proj", "default", units=16, backbone_units=32, backbone_layers=1,
             backbone_dropout=0.0, mixed=True, proj=3, h0=True),
    cfc_case("cfc_default_timespans_per_sample", "default", units=16, backbone_units=32, backbone_layers=1,
             backbone_dropout=0.0, timespans="per_sample"),
    # wired CfC: all modes, four wiring kinds, mixed memory
    cfc_case("wcfc_autoncp_default", "default", wiring=AUTO, h0=True),
    cfc_case("wcfc_autoncp_pure", "pure", wiring=AUTO),
    cfc_case("wcfc_autoncp_nogate", "no_gate", wiring=AUTO),
    cfc_case("wcfc_ncp_default", "default", wiring=NCP_W),
    cfc_case("wcfc_ncp_pure", "pure", wiring=NCP_W, h0=True),
    cfc_case("wcfc_fcfull_nogate", "no_gate", wiring=FC_FULL),
    cfc_case("wcfc_fc_default", "default", wiring=FC_W),
    cfc_case("wcfc_random_pure", "pure", wiring=RND_W),
    cfc_case("wcfc_randomfull_default", "default", wiring=RND_FULL),
    cfc_case("wcfc_autoncp_mixed", "default", wiring=AUTO, mixed=True, h0=True),
    cfc_case("wcfc_autoncp_timespans_per_sample", "no_gate", wiring=AUTO, timespans="per_sample"),
    # wired CfC with an output projection: the CPU kernels must apply `fc` (they once did not)
    cfc_case("wcfc_autoncp_proj", "default", wiring={"kind": "auto_ncp", "units": 8, "output_size": 2,
                                                     "seed": 0}, proj=2, h0=True),
]


def build_model(case, seed):
    cfg = case["config"]
    torch.manual_seed(seed)
    if cfg["cell"] == "ltc":
        wiring = make_wiring(cfg["wiring"])
        m = LTC(INPUT_SIZE, wiring, mixed_memory=cfg["mixed_memory"],
                input_mapping=cfg["input_mapping"], output_mapping=cfg["output_mapping"],
                ode_unfolds=cfg["ode_unfolds"], implicit_param_constraints=cfg["implicit_constraints"])
        n = wiring.units
    else:
        if "wiring" in cfg:
            units = make_wiring(cfg["wiring"])
            m = CfC(INPUT_SIZE, units, mixed_memory=cfg["mixed_memory"], mode=cfg["mode"],
                    proj_size=cfg.get("proj_size"))
            n = units.units
        else:
            m = CfC(INPUT_SIZE, cfg["units"], mixed_memory=cfg["mixed_memory"], mode=cfg["mode"],
                    activation=cfg["activation"], backbone_units=cfg["backbone_units"],
                    backbone_layers=cfg["backbone_layers"], backbone_dropout=cfg["backbone_dropout"],
                    proj_size=cfg.get("proj_size"))
            n = cfg["units"]
    # Perturb the weights away from their init so that e.g. biases, erev and the mapping
    # parameters are not trivially 0/1 (masks stay as they are).
    with torch.no_grad():
        for name, p in m.named_parameters():
            if p.requires_grad:
                p.add_(0.1 * torch.randn_like(p))
    if cfg["cell"] == "ltc" and not cfg["implicit_constraints"]:
        m.rnn_cell.apply_weight_constraints()
    m.eval()
    return m, n


def per_sample_reference(m, case, x, h, c, ts):
    """Step the cell directly with (B, 1) elapsed times: the per-sample semantics the wrappers break."""
    outs = []
    for t in range(x.shape[1]):
        xt = x[:, t]
        if case["config"]["mixed_memory"]:
            h, c = m.lstm(xt, (h, c))
        out, h = m.rnn_cell(xt, h, ts[:, t:t + 1])
        if case["config"]["cell"] == "cfc":
            out = m.fc(out)
        outs.append(out)
    return torch.stack(outs, 1), h, c


def main():
    os.makedirs(OUT, exist_ok=True)
    manifest = []
    for k, case in enumerate(CASES):
        m, n = build_model(case, 1000 + k)
        gen = torch.Generator().manual_seed(5000 + k)
        b = case["batch"]
        x = torch.randn(b, SEQ, INPUT_SIZE, generator=gen)
        io = {"input": x}
        h0 = c0 = None
        if case["h0"]:
            h0 = 0.5 * torch.randn(b, n, generator=gen)
            io["h0"] = h0
            if case["config"]["mixed_memory"]:
                c0 = 0.5 * torch.randn(b, n, generator=gen)
                io["c0"] = c0
        with torch.no_grad():
            if case["timespans"] == "none":
                hx = None if h0 is None else ((h0, c0 if c0 is not None else torch.zeros(b, n))
                                               if case["config"]["mixed_memory"] else h0)
                y, hx = m(x, hx)
            elif case["timespans"] == "sequence":
                ts = 0.2 + 1.5 * torch.rand(b, SEQ, generator=gen)
                io["timespans"] = ts
                y, hx = m(x, h0, timespans=ts)
            else:
                ts = 0.2 + 1.5 * torch.rand(b, SEQ, generator=gen)
                io["timespans"] = ts
                h = h0 if h0 is not None else torch.zeros(b, n)
                c = c0 if c0 is not None else torch.zeros(b, n)
                y, h, c = per_sample_reference(m, case, x, h, c, ts)
                hx = (h, c) if case["config"]["mixed_memory"] else h
        if case["config"]["mixed_memory"]:
            io["final_h"], io["final_c"] = hx
        else:
            io["final_h"] = hx
        io["output"] = y
        sd = {k2: v.contiguous() for k2, v in m.state_dict().items()}
        save_file(sd, os.path.join(OUT, case["name"] + ".safetensors"))
        save_file({k2: v.contiguous() for k2, v in io.items()}, os.path.join(OUT, case["name"] + ".io.safetensors"))
        manifest.append(dict(name=case["name"], config=case["config"], input_size=INPUT_SIZE, batch=b, seq=SEQ,
                             timespans=case["timespans"], h0=case["h0"]))
        print(f"{case['name']}: output {tuple(y.shape)}, {len(sd)} tensors")
    with open(os.path.join(OUT, "cases.json"), "w") as f:
        json.dump({"ncps_version": "1.0.1", "torch_version": torch.__version__, "cases": manifest}, f, indent=1)

    # Wirings for the bit-exact RNG ports.
    wirings = [
        (AUTO, 8), (dict(AUTO, seed=1), 5), ({"kind": "auto_ncp", "units": 28, "output_size": 4, "seed": 7}, 12),
        ({"kind": "auto_ncp", "units": 16, "output_size": 4, "sparsity_level": 0.9}, 3),
        (NCP_W, 8), (dict(NCP_W, seed=0), 4), (FC_W, 8), (FC_FULL, 3),
        ({"kind": "fully_connected", "units": 5, "self_connections": False, "seed": 3}, 2),
        (RND_W, 8), (RND_FULL, 8), ({"kind": "random", "units": 30, "sparsity_level": 0.75, "seed": 5}, 6),
    ]
    tensors, wlist = {}, []
    for i, (cfg, s) in enumerate(wirings):
        w = make_wiring(cfg)
        w.build(s)
        tensors[f"w{i}.adjacency"] = torch.from_numpy(w.adjacency_matrix.astype(np.int32))
        tensors[f"w{i}.sensory_adjacency"] = torch.from_numpy(w.sensory_adjacency_matrix.astype(np.int32))
        wlist.append(dict(key=f"w{i}", config=cfg, input_dim=s))
    save_file(tensors, os.path.join(OUT, "wirings.safetensors"))
    with open(os.path.join(OUT, "wirings.json"), "w") as f:
        json.dump(wlist, f, indent=1)
    print("ok", ncps.__file__, file=sys.stderr)


if __name__ == "__main__":
    main()

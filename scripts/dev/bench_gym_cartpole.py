#!/usr/bin/env python3
"""Gymnasium's CartPole-v1 in a SyncVectorEnv with random actions: the reference figure that
`wormnet bench env cartpole` is compared with (same machine, same run).

    ~/.cache/wormnet/venv/bin/python scripts/dev/bench_gym_cartpole.py [--envs 16] [--seconds 5] [--json]
"""

import argparse
import json
import time

import gymnasium as gym
import numpy as np


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--envs", type=int, default=16, help="sub-environments in the SyncVectorEnv")
    parser.add_argument("--seconds", type=float, default=5.0, help="how long to measure")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()

    envs = gym.vector.SyncVectorEnv([lambda: gym.make("CartPole-v1") for _ in range(args.envs)])
    envs.reset(seed=0)
    envs.action_space.seed(0)
    for _ in range(100):  # warm up
        envs.step(envs.action_space.sample())
    steps = 0
    start = time.perf_counter()
    while time.perf_counter() - start < args.seconds:
        for _ in range(100):
            envs.step(envs.action_space.sample())
        steps += 100 * args.envs
    elapsed = time.perf_counter() - start
    sps = steps / elapsed
    if args.json:
        print(json.dumps({"env": "gymnasium/CartPole-v1", "envs": args.envs, "workers": 1,
                          "steps_per_sec": sps, "numpy": np.__version__, "gymnasium": gym.__version__}))
    else:
        print(f"gymnasium CartPole-v1 SyncVectorEnv({args.envs}): {sps:,.0f} env steps/s ({steps} steps in {elapsed:.2f} s)")


if __name__ == "__main__":
    main()

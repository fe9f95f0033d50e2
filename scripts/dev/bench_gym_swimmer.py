#!/usr/bin/env python3
"""Gymnasium's MuJoCo Swimmer-v5 (one env, random actions, one core): the reference figure that
`wormnet bench env worm --envs 1 --workers 0` (the worm stepped on one thread, no VecEnv) is
compared with (same machine, same run).

Swimmer-v5 acts every 0.04 s of simulated time (MuJoCo timestep 0.01 s, frame skip 4); the worm's
default `dt` is the same 0.04 s, so env steps per second compare simulated time per second too.

    ~/.cache/wormnet/venv/bin/python scripts/dev/bench_gym_swimmer.py [--seconds 5] [--json]
    ~/.cache/wormnet/venv/bin/python scripts/dev/bench_gym_swimmer.py --worm-bench "scripts/wormnet bench env worm --envs 1 --workers 0 --json"

With --worm-bench the given command (which must print the JSON of `wormnet bench env --json`)
runs right after Swimmer, and both figures are printed side by side with their ratio.
"""

import argparse
import json
import os
import shlex
import subprocess
import time

import gymnasium as gym
import numpy as np


def bench_swimmer(seconds):
    env = gym.make("Swimmer-v5")
    env.reset(seed=0)
    env.action_space.seed(0)
    dt = float(env.unwrapped.dt)  # timestep × frame_skip
    for _ in range(200):  # warm up
        _, _, terminated, truncated, _ = env.step(env.action_space.sample())
        if terminated or truncated:
            env.reset()
    steps = 0
    episodes = 0
    start = time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(100):
            _, _, terminated, truncated, _ = env.step(env.action_space.sample())
            if terminated or truncated:  # TimeLimit at 1000 steps
                env.reset()
                episodes += 1
        steps += 100
    elapsed = time.perf_counter() - start
    return {
        "env": "gymnasium/Swimmer-v5",
        "envs": 1,
        "workers": 1,
        "steps_per_sec": steps / elapsed,
        "steps": steps,
        "seconds": elapsed,
        "episodes": episodes,
        "dt": dt,
        "gymnasium": gym.__version__,
        "numpy": np.__version__,
    }


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="how long to measure")
    parser.add_argument("--json", action="store_true", help="print JSON objects")
    parser.add_argument("--worm-bench", help="command printing the worm's bench JSON, run after Swimmer")
    args = parser.parse_args()

    # One core: MuJoCo and numpy must not spread over threads either.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    swimmer = bench_swimmer(args.seconds)
    try:
        import mujoco

        swimmer["mujoco"] = mujoco.__version__
    except ImportError:
        pass
    worm = None
    if args.worm_bench:
        out = subprocess.run(shlex.split(args.worm_bench), check=True, capture_output=True, text=True).stdout
        worm = json.loads(out.strip().splitlines()[-1])
    if args.json:
        print(json.dumps(swimmer))
        if worm is not None:
            print(json.dumps(worm))
        return
    print(f"gymnasium Swimmer-v5: {swimmer['steps_per_sec']:,.0f} env steps/s per core "
          f"(dt = {swimmer['dt']} s, {swimmer['steps']} steps in {swimmer['seconds']:.2f} s)")
    if worm is not None:
        ratio = worm["steps_per_sec"] / swimmer["steps_per_sec"]
        dt = worm.get("dt", "?")
        print(f"wormnet {worm['env']}: {worm['steps_per_sec']:,.0f} env steps/s per core "
              f"(dt = {dt} s) = {ratio:.1f}x Swimmer-v5")


if __name__ == "__main__":
    main()

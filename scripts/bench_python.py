#!/usr/bin/env python3
"""wormnet's envs from Python against Gymnasium's, side by side on this machine (issue 31):

- `wormnet.make_vec("cartpole", 16)` against Gymnasium's `SyncVectorEnv` of 16 `CartPole-v1`,
  each with the same `copy` setting (True, Gymnasium's default, then False);
- the worm (`wormnet.make("worm")`, one env on the calling thread, and `make_vec("worm", 16)`)
  against MuJoCo's `Swimmer-v5` (one env; both act every 0.04 s of simulated time).

Every side runs the same Python client loop, `step(action)` with random actions drawn
beforehand by the env's own Gymnasium space (1024 of them, cycled: drawing one costs ~20 µs in
Gymnasium 1.4, more than a worm step), resetting single envs as their episodes end. Needs the
venv of `scripts/setup --python` (the wormnet package, gymnasium[mujoco]):

    ~/.cache/wormnet/venv/bin/python scripts/bench_python.py [--seconds 5] [--workers 2] [--json]
"""

import argparse
import json
import os
import time

os.environ.setdefault("OMP_NUM_THREADS", "1")  # MuJoCo and numpy on one core

import gymnasium as gym  # noqa: E402

import wormnet  # noqa: E402


def rate(step, space, seconds, batch):
    """Env steps per second of `step(action)` over `seconds`, after a warm-up."""
    space.seed(0)
    actions = [space.sample() for _ in range(1024)]
    for k in range(200):
        step(actions[k % 1024])
    steps, k, start = 0, 0, time.perf_counter()
    while time.perf_counter() - start < seconds:
        for _ in range(128):
            step(actions[k])
            k = (k + 1) % 1024
        steps += 128 * batch
    return steps / (time.perf_counter() - start)


def vector_rate(envs, seconds):
    envs.reset(seed=0)
    sps = rate(envs.step, envs.action_space, seconds, envs.num_envs)
    envs.close()
    return sps


def single_rate(env, seconds):
    env.reset(seed=0)

    def step(action):
        _, _, terminated, truncated, _ = env.step(action)
        if terminated or truncated:
            env.reset()

    sps = rate(step, env.action_space, seconds, 1)
    env.close()
    return sps


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=5.0, help="how long each loop runs")
    parser.add_argument("--workers", type=int, default=2, help="wormnet worker threads")
    parser.add_argument("--json", action="store_true", help="print one JSON object")
    args = parser.parse_args()
    s, workers = args.seconds, sorted({1, args.workers})
    rows, reference = [], {}
    # Like for like: wormnet's `copy` setting against SyncVectorEnv's (copy=False returns the
    # same observations array every step; rewards and flags are copies either way).
    for copy in (True, False):
        sync = gym.vector.SyncVectorEnv(
            [lambda: gym.make("CartPole-v1") for _ in range(16)], copy=copy
        )
        kind = f"cartpole copy={copy}"
        reference[kind] = vector_rate(sync, s)
        rows.append((f"Gymnasium SyncVectorEnv(16 x CartPole-v1, copy={copy})", kind, reference[kind]))
        for w in workers:
            envs = wormnet.make_vec("cartpole", num_envs=16, workers=w, copy=copy)
            label = f"wormnet.make_vec('cartpole', 16, workers={w}, copy={copy})"
            rows.append((label, kind, vector_rate(envs, s)))
    reference["worm"] = single_rate(gym.make("Swimmer-v5"), s)
    rows.append(("MuJoCo Swimmer-v5, one env", "worm", reference["worm"]))
    rows.append(("wormnet.make('worm'), one env", "worm", single_rate(wormnet.make("worm"), s)))
    for w in workers:
        envs = wormnet.make_vec("worm", num_envs=16, workers=w)
        rows.append((f"wormnet.make_vec('worm', 16, workers={w})", "worm", vector_rate(envs, s)))
    if args.json:
        print(json.dumps({label: {"steps_per_sec": sps, "ratio": sps / reference[kind]}
                          for label, kind, sps in rows}))
        return
    for label, kind, sps in rows:
        print(f"{label:<58} {sps:>12,.0f} env steps/s  {sps / reference[kind]:5.1f}x")


if __name__ == "__main__":
    main()

#!/usr/bin/env python3
"""Stable-Baselines3 PPO (an MLP) drives wormnet's vehicle with range sensors through the Python
binding: trains on the training tracks, then counts completed laps on held-out tracks (an
episode that ends without `terminated` is a completed lap). The documented run of docs/python.md.

    ~/.cache/wormnet/venv/bin/python scripts/dev/sb3_vehicle_laps.py [--steps 200000] [--episodes 50]
"""

import argparse
import time

import numpy as np
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.vec_env import VecNormalize

import wormnet


def laps(model, train, episodes, seed):
    """Deterministic episodes on held-out tracks (`tracks="eval"`): (laps, episodes, mean return)."""
    envs = VecNormalize(
        wormnet.make_vec("vehicle", num_envs=10, workers=2, api="sb3", tracks="eval"),
        training=False,
        norm_reward=False,
    )
    envs.obs_rms = train.obs_rms
    envs.seed(seed)
    obs = envs.reset()
    done_laps, returns = 0, []
    while len(returns) < episodes:
        action, _ = model.predict(obs, deterministic=True)
        obs, _, dones, infos = envs.step(action)
        for info in (i for i, d in zip(infos, dones) if d):
            returns.append(info["episode"]["r"])
            done_laps += bool(info["TimeLimit.truncated"])
    envs.close()
    return done_laps, len(returns), float(np.mean(returns))


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--steps", type=int, default=200_000, help="training env steps")
    parser.add_argument("--episodes", type=int, default=50, help="evaluation episodes")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(1)
    train = VecNormalize(wormnet.make_vec("vehicle", num_envs=8, workers=2, api="sb3"), gamma=0.99)
    model = PPO("MlpPolicy", train, n_steps=256, batch_size=256, n_epochs=10, learning_rate=3e-4,
                gamma=0.99, gae_lambda=0.95, seed=args.seed, device="cpu", verbose=0)
    start = time.perf_counter()
    model.learn(total_timesteps=args.steps)
    seconds = time.perf_counter() - start
    done, total, mean = laps(model, train, args.episodes, 10_000 + args.seed)
    print(f"SB3 PPO (MlpPolicy), vehicle with rays, seed {args.seed}: {model.num_timesteps} steps in "
          f"{seconds:.0f} s ({model.num_timesteps / seconds:.0f} steps/s); held-out tracks: "
          f"{done} laps of {total} episodes, mean return {mean:.0f}")


if __name__ == "__main__":
    main()

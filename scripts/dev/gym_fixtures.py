#!/usr/bin/env python3
"""Record Gymnasium CartPole-v1, Pendulum-v1 and MountainCarContinuous-v0 trajectories for fixed seeds and action sequences.

The Rust tests in envs/tests/gymnasium_fixtures.rs replay these files and must match them to 1e-5;
they never run Python. Re-run this script (with the venv that has gymnasium 1.4) only to refresh the
fixtures:

    ~/.cache/wormnet/venv/bin/python scripts/dev/gym_fixtures.py

Gymnasium's reset draws the initial state from NumPy's PCG64, which the Rust envs do not replicate,
so every fixture stores the float64 internal state right after `reset(seed=...)`; the Rust test
starts from that exact state and then feeds the same actions.
"""

import json
import math
import pathlib

import gymnasium as gym
import numpy as np

OUT = pathlib.Path(__file__).resolve().parent.parent.parent / "envs" / "tests" / "fixtures"


def record_cartpole(seed, policy):
    env = gym.make("CartPole-v1")
    obs, _ = env.reset(seed=seed)
    state = [float(v) for v in env.unwrapped.state]
    rng = np.random.default_rng(seed + 1000)
    steps = []
    for t in range(600):
        if policy == "random":
            action = int(rng.integers(0, 2))
        else:
            # Balancing rule: push towards the side the pole is falling to (reaches 500 steps).
            x, x_dot, theta, theta_dot = obs
            action = int(theta + 0.5 * theta_dot + 0.01 * x + 0.1 * x_dot > 0)
        obs, reward, terminated, truncated, _ = env.step(action)
        steps.append(
            {
                "action": [float(action)],
                "observation": [float(v) for v in obs],
                "reward": float(reward),
                "terminated": bool(terminated),
                "truncated": bool(truncated),
            }
        )
        if terminated or truncated:
            break
    return {
        "env": "CartPole-v1",
        "seed": seed,
        "policy": policy,
        "initial_state": state,
        "initial_observation": [float(v) for v in np.array(state, dtype=np.float32)],
        "steps": steps,
    }


def record_pendulum(seed, policy):
    env = gym.make("Pendulum-v1")
    obs, _ = env.reset(seed=seed)
    state = [float(v) for v in env.unwrapped.state]
    rng = np.random.default_rng(seed + 2000)
    steps = []
    for t in range(250):
        if policy == "random":
            # Deliberately includes torques outside [-2, 2]: Gymnasium clips them inside step().
            action = np.array([rng.uniform(-3.0, 3.0)], dtype=np.float32)
        else:
            cos, sin, thdot = obs
            action = np.array([np.clip(-2.0 * math.atan2(sin, cos) - 0.5 * thdot, -2, 2)], dtype=np.float32)
        obs, reward, terminated, truncated, _ = env.step(action)
        steps.append(
            {
                "action": [float(action[0])],
                "observation": [float(v) for v in obs],
                "reward": float(reward),
                "terminated": bool(terminated),
                "truncated": bool(truncated),
            }
        )
        if terminated or truncated:
            break
    return {
        "env": "Pendulum-v1",
        "seed": seed,
        "policy": policy,
        "initial_state": state,
        "initial_observation": [float(v) for v in np.array([math.cos(state[0]), math.sin(state[0]), state[1]], dtype=np.float32)],
        "steps": steps,
    }


def record_mountaincar(seed, policy):
    env = gym.make("MountainCarContinuous-v0")
    obs, _ = env.reset(seed=seed)
    state = [float(v) for v in env.unwrapped.state]
    rng = np.random.default_rng(seed + 3000)
    steps = []
    for t in range(1100):
        if policy == "random":
            # Deliberately includes forces outside [-1, 1]: Gymnasium clips them inside step().
            action = np.array([rng.uniform(-1.5, 1.5)], dtype=np.float32)
        else:
            # Energy pumping: push along the velocity (reaches the flag); in-range values.
            action = np.array([0.9 if obs[1] >= 0 else -0.9], dtype=np.float32)
        obs, reward, terminated, truncated, _ = env.step(action)
        steps.append(
            {
                "action": [float(action[0])],
                "observation": [float(v) for v in obs],
                "reward": float(reward),
                "terminated": bool(terminated),
                "truncated": bool(truncated),
            }
        )
        if terminated or truncated:
            break
    return {
        "env": "MountainCarContinuous-v0",
        "seed": seed,
        "policy": policy,
        "initial_state": state,
        "initial_observation": [float(v) for v in np.array(state, dtype=np.float32)],
        "steps": steps,
    }


def main():
    OUT.mkdir(parents=True, exist_ok=True)
    cartpole = [record_cartpole(s, p) for s in (0, 1, 42) for p in ("random", "balance")]
    pendulum = [record_pendulum(s, p) for s in (0, 7, 123) for p in ("random", "swing")]
    mountaincar = [record_mountaincar(s, p) for s in (0, 5, 99) for p in ("random", "pump")]
    meta = {"gymnasium": gym.__version__, "numpy": np.__version__}
    files = (("cartpole.json", cartpole), ("pendulum.json", pendulum), ("mountaincar.json", mountaincar))
    for name, trajs in files:
        path = OUT / name
        path.write_text(json.dumps({"recorded_with": meta, "trajectories": trajs}, indent=None) + "\n")
        lengths = [len(t["steps"]) for t in trajs]
        print(f"wrote {path} ({len(trajs)} trajectories, lengths {lengths})")


if __name__ == "__main__":
    main()

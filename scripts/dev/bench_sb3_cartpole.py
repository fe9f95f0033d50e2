"""sb3-contrib RecurrentPPO on CartPole-v1 with the velocities masked, RL Zoo settings
(hyperparams/ppo_lstm.yml, CartPoleNoVel-v1): the reference for `wormnet train`'s speed.

Prints training steps per second (rollout + update, no evaluation). One torch thread, like
wormnet's default. Needs `scripts/setup --refs`.

    python scripts/dev/bench_sb3_cartpole.py --steps 16384 [--json]
"""

import argparse
import json
import time

import gymnasium as gym
import numpy as np
import torch
from sb3_contrib import RecurrentPPO
from stable_baselines3.common.vec_env import DummyVecEnv, VecNormalize


class NoVelocity(gym.ObservationWrapper):
    """Keeps cart position and pole angle (indices 0 and 2), as RL Zoo's CartPoleNoVel."""

    def __init__(self, env):
        super().__init__(env)
        low, high = env.observation_space.low[[0, 2]], env.observation_space.high[[0, 2]]
        self.observation_space = gym.spaces.Box(low, high, dtype=np.float32)

    def observation(self, obs):
        return obs[[0, 2]]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--steps", type=int, default=16384)
    ap.add_argument("--seed", type=int, default=1)
    ap.add_argument("--json", action="store_true")
    args = ap.parse_args()
    torch.set_num_threads(1)
    venv = DummyVecEnv([lambda: NoVelocity(gym.make("CartPole-v1")) for _ in range(8)])
    venv = VecNormalize(venv, norm_obs=True, norm_reward=True)
    model = RecurrentPPO(
        "MlpLstmPolicy",
        venv,
        n_steps=32,
        batch_size=256,
        gae_lambda=0.8,
        gamma=0.98,
        n_epochs=20,
        ent_coef=0.0,
        learning_rate=lambda f: 1e-3 * f,
        clip_range=lambda f: 0.2 * f,
        policy_kwargs=dict(
            ortho_init=False,
            activation_fn=torch.nn.ReLU,
            lstm_hidden_size=64,
            enable_critic_lstm=True,
            net_arch=dict(pi=[64], vf=[64]),
        ),
        seed=args.seed,
        device="cpu",
        verbose=0,
    )
    start = time.perf_counter()
    model.learn(total_timesteps=args.steps)
    elapsed = time.perf_counter() - start
    sps = model.num_timesteps / elapsed
    result = {
        "impl": "sb3-contrib RecurrentPPO (LSTM 64, RL Zoo CartPoleNoVel)",
        "envs": 8,
        "steps_per_rollout": 32,
        "epochs": 20,
        "steps": model.num_timesteps,
        "seconds": elapsed,
        "steps_per_sec": sps,
    }
    print(json.dumps(result) if args.json else f"sb3 RecurrentPPO: {sps:.0f} training steps/s ({model.num_timesteps} steps in {elapsed:.1f} s)")


if __name__ == "__main__":
    main()

"""Real clients: Stable-Baselines3's PPO and sb3-contrib's RecurrentPPO learn cartpole through
`make_vec(..., api="sb3")` (RL Zoo's hyper-parameters for CartPole-v1 / CartPoleNoVel-v1).
Training stops once a deterministic evaluation of 8 episodes averages >= 450 (500 is the most)."""

import time

import pytest
import torch
from stable_baselines3 import PPO
from stable_baselines3.common.callbacks import EvalCallback, StopTrainingOnRewardThreshold
from stable_baselines3.common.evaluation import evaluate_policy
from stable_baselines3.common.utils import LinearSchedule
from stable_baselines3.common.vec_env import VecNormalize

import wormnet

TARGET = 450.0


def envs(normalize, training=True, **options):
    vec = wormnet.make_vec("cartpole", num_envs=8, workers=1, api="sb3", **options)
    if normalize:
        return VecNormalize(vec, training=training, norm_reward=training, gamma=0.98)
    return vec


def learn(model, eval_env, budget):
    """Trains until the evaluation reaches TARGET (or `budget` steps); the final evaluation."""
    stop = StopTrainingOnRewardThreshold(reward_threshold=TARGET, verbose=0)
    check = EvalCallback(
        eval_env,
        callback_on_new_best=stop,
        eval_freq=2048 // 8,
        n_eval_episodes=8,
        deterministic=True,
        verbose=0,
    )
    start = time.perf_counter()
    model.learn(total_timesteps=budget, callback=check)
    seconds = time.perf_counter() - start
    mean, _ = evaluate_policy(model, eval_env, n_eval_episodes=8, deterministic=True)
    print(f"{type(model).__name__}: {model.num_timesteps} steps in {seconds:.0f} s, mean return {mean:.0f}")
    return mean


def zoo(**extra):
    """RL Zoo's PPO settings for cartpole."""
    return dict(
        n_steps=32,
        batch_size=256,
        gae_lambda=0.8,
        gamma=0.98,
        n_epochs=20,
        ent_coef=0.0,
        learning_rate=LinearSchedule(1e-3, 0.0, 1.0),
        clip_range=LinearSchedule(0.2, 0.0, 1.0),
        seed=0,
        device="cpu",
        **extra,
    )


@pytest.fixture(autouse=True)
def one_thread():
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


def test_sb3_ppo_learns_cartpole_with_velocities():
    model = PPO("MlpPolicy", envs(False), **zoo())
    assert learn(model, envs(False), budget=150_000) >= TARGET


def test_recurrent_ppo_learns_cartpole_without_velocities():
    from sb3_contrib import RecurrentPPO

    policy_kwargs = dict(
        ortho_init=False,
        activation_fn=torch.nn.ReLU,
        lstm_hidden_size=64,
        enable_critic_lstm=True,
        net_arch=dict(pi=[64], vf=[64]),
    )
    train = envs(True, no_velocity=True)
    evaluation = envs(True, training=False, no_velocity=True)
    model = RecurrentPPO("MlpLstmPolicy", train, policy_kwargs=policy_kwargs, **zoo())
    assert learn(model, evaluation, budget=150_000) >= TARGET

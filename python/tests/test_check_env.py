"""Gymnasium's own checker on every built-in env, through `gymnasium.make` (so the spec, the
registration and `render_mode="rgb_array"` are checked too)."""

import warnings

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

import wormnet

# Pendulum-v1's torque range is [-2, 2]; Gymnasium's checker recommends [-1, 1] for every Box
# action, Gymnasium's own Pendulum-v1 included. Changing it would change the env.
PENDULUM_WARNING = "we recommend using a symmetric and normalized space"

CASES = [
    ("wormnet/CartPole-v0", {}, None),
    ("wormnet/CartPole-v0", {"no_velocity": True}, None),
    ("wormnet/Pendulum-v0", {}, PENDULUM_WARNING),
    ("wormnet/BallSlope-v0", {}, None),
    ("wormnet/Worm-v0", {}, None),
    ("wormnet/Vehicle-v0", {}, None),
    ("wormnet/Vehicle-v0", {"observation": "camera"}, None),
]


@pytest.mark.parametrize("env_id,options,allowed", CASES)
def test_check_env_passes_without_warnings(env_id, options, allowed):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        env = gym.make(env_id, **options)
        check_env(env.unwrapped)
        env.close()
    messages = [str(w.message) for w in caught]
    unexpected = [m for m in messages if allowed is None or allowed not in m]
    assert unexpected == [], unexpected


def test_every_builtin_env_is_registered():
    for name in wormnet.names():
        if name.startswith("_"):
            assert wormnet.gym_id(name) not in gym.registry
        else:
            assert wormnet.gym_id(name) in gym.registry, name
    assert wormnet.gym_id("ball_slope") == "wormnet/BallSlope-v0"


def test_spaces_and_names_come_from_the_spec():
    env = gym.make("wormnet/Vehicle-v0", observation="camera", camera_width=16, camera_height=8)
    spec = env.unwrapped.wormnet_spec
    assert spec["image"] == {"channels": 1, "height": 8, "width": 16}
    assert env.observation_space.shape == (len(env.unwrapped.observation_names),)
    assert len(env.unwrapped.observation_names) >= 16 * 8
    cart = wormnet.make("cartpole")
    assert cart.unwrapped.observation_names == [
        "cart_position",
        "cart_velocity",
        "pole_angle",
        "pole_angular_velocity",
    ]
    assert isinstance(cart.action_space, gym.spaces.Discrete) and cart.action_space.n == 2
    # Unbounded components are bounded by the largest float32, as Gymnasium's CartPole-v1.
    assert cart.observation_space.high[1] == np.finfo(np.float32).max


def test_rgb_array_render_draws_the_scene():
    env = wormnet.make("vehicle", render_mode="rgb_array", render_size=(160, 120))
    env.reset(seed=0)
    first = env.render()
    assert first.shape == (120, 160, 3) and first.dtype == np.uint8
    assert first.std() > 5, "a blank picture"
    for _ in range(20):
        env.step(np.array([1.0], dtype=np.float32))
    assert not np.array_equal(env.render(), first), "the car moved, the picture did not"
    env.close()
    with pytest.warns(UserWarning, match="render_mode"):
        assert wormnet.make("cartpole").render() is None

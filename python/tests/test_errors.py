"""Errors are Python exceptions with the CLI's one-line messages; a panicking env raises."""

import numpy as np
import pytest

import wormnet


def test_bad_options_name_the_option_and_the_env():
    with pytest.raises(ValueError, match=r"^env `cartpole`: bad options: unknown field `no_velocty`"):
        wormnet.make("cartpole", no_velocty=True)
    with pytest.raises(ValueError, match="env `vehicle`"):
        wormnet.make_vec("vehicle", num_envs=2, rays="eleven")
    with pytest.raises(TypeError, match="env option `speed`"):
        wormnet.make("vehicle", speed=object())
    with pytest.raises(ValueError, match="unknown env `nope`; registered envs: "):
        wormnet.make("nope")


def test_nan_and_out_of_space_actions_are_value_errors():
    env = wormnet.make("pendulum")
    env.reset(seed=0)
    with pytest.raises(ValueError) as e:
        env.step(np.array([np.nan], dtype=np.float32))
    assert str(e.value) == "env `pendulum` #0: action outside the action space: component 0 is NaN"
    cart = wormnet.make("cartpole")
    cart.reset(seed=0)
    with pytest.raises(ValueError, match=r"component 0 = 2 is outside \[0, 1\]"):
        cart.step(2)
    with pytest.raises(ValueError, match="has 2 components, expected 1"):
        cart.step([0, 1])
    # The env is still usable: the bad actions never reached it.
    cart.step(1)


def test_vector_bad_action_names_the_env_and_steps_none():
    envs = wormnet.make_vec("worm", num_envs=3, workers=2)
    first, _ = envs.reset(seed=5)
    actions = np.zeros((3, 5), dtype=np.float32)
    actions[2, 1] = 7.0
    with pytest.raises(ValueError, match=r"^env `worm` #2: action outside the action space: component 1 = 7 is outside"):
        envs.step(actions)
    actions[2, 1] = np.nan
    with pytest.raises(ValueError, match="#2: .*component 1 is NaN"):
        envs.step(actions)
    with pytest.raises(ValueError, match="action buffer has 14 values, expected 15"):
        envs.step(np.zeros(14, dtype=np.float32))
    # Nothing stepped: the same seed's first step from the same state matches a fresh batch.
    obs, *_ = envs.step(np.zeros((3, 5), dtype=np.float32))
    fresh = wormnet.make_vec("worm", num_envs=3, workers=2)
    fresh.reset(seed=5)
    expected, *_ = fresh.step(np.zeros((3, 5), dtype=np.float32))
    np.testing.assert_array_equal(obs, expected)


def test_a_panicking_env_raises_and_the_interpreter_lives():
    env = wormnet.make("_panic_probe", panic_at_step=3)
    env.reset()
    env.step(0)
    env.step(0)
    with pytest.raises(RuntimeError, match=r"^env `_panic_probe` #0: panicked during step: the probe panics at step 3$"):
        env.step(0)
    with pytest.raises(RuntimeError, match="unusable after an earlier fault"):
        env.reset()
    with pytest.raises(RuntimeError, match="panicked during reset"):
        wormnet.make("_panic_probe", panic_in_reset=True).reset()
    envs = wormnet.make_vec("_panic_probe", num_envs=4, workers=2, panic_at_step=2)
    envs.reset(seed=0)
    envs.step(np.zeros(4))
    with pytest.raises(RuntimeError, match=r"#0: panicked during step: .* \(and 3 more faulted envs\)"):
        envs.step(np.zeros(4))


def test_closed_vector_env_says_so():
    envs = wormnet.make_vec("cartpole", num_envs=2)
    envs.reset(seed=0)
    envs.close()
    with pytest.raises(RuntimeError, match="used after close"):
        envs.step(np.zeros(2))


def test_resized_vector_buffers_are_an_error_not_a_panic():
    # Only the private native object can reach its buffers; once no numpy view holds them a
    # caller could resize them, and the next step must say so instead of writing past them.
    native = wormnet.make_vec("cartpole", num_envs=2, workers=1)._native
    native.reset(0)
    out, _ = native.buffers()
    del out[-1]
    with pytest.raises(RuntimeError, match="output buffers were resized"):
        native.step(np.zeros(2, dtype=np.float32).tobytes())

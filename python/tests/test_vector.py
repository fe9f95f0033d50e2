"""`make_vec` against Gymnasium's own vector env over the single envs: same batches, same
auto-reset (SAME_STEP), same infos layout; and the GIL is released while the envs step."""

import threading
import time

import gymnasium as gym
import numpy as np
import pytest
from gymnasium.utils.env_checker import data_equivalence
from gymnasium.vector import AutoresetMode, SyncVectorEnv
from gymnasium.vector.utils import batch_space

import wormnet


@pytest.mark.parametrize(
    "name,options,steps",
    [("cartpole", {}, 300), ("pendulum", {"no_velocity": True}, 250), ("worm", {}, 60), ("vehicle", {}, 60)],
)
def test_make_vec_matches_gymnasiums_sync_vector_env(name, options, steps):
    n = 4
    ours = wormnet.make_vec(name, num_envs=n, workers=2, **options)
    theirs = SyncVectorEnv(
        [lambda: wormnet.make(name, **options) for _ in range(n)],
        autoreset_mode=AutoresetMode.SAME_STEP,
    )
    assert ours.metadata["autoreset_mode"] == AutoresetMode.SAME_STEP
    assert ours.single_observation_space == theirs.single_observation_space
    assert ours.single_action_space == theirs.single_action_space
    assert ours.observation_space == batch_space(ours.single_observation_space, n)
    assert ours.action_space == batch_space(ours.single_action_space, n)
    a, _ = ours.reset(seed=11)
    b, _ = theirs.reset(seed=11)
    assert data_equivalence(a, b, exact=True)
    assert a in ours.observation_space
    ours.action_space.seed(3)
    finished = 0
    for _ in range(steps):
        action = ours.action_space.sample()
        got = ours.step(action)
        want = theirs.step(action)
        for x, y in zip(got[:4], want[:4]):
            assert data_equivalence(x, y, exact=True)
        done = got[2] | got[3]
        if done.any():
            finished += int(done.sum())
            info, ref = got[4], want[4]
            np.testing.assert_array_equal(info["_final_obs"], ref["_final_obs"])
            for i in np.flatnonzero(done):
                np.testing.assert_array_equal(info["final_obs"][i], ref["final_obs"][i])
            assert np.all(info["_episode"] == done)
        else:
            assert got[4] == {}
    if name == "cartpole":
        assert finished > 0, "no episode ended: the auto-reset went unchecked"
    ours.close()
    theirs.close()


def test_episode_statistics_and_reproducible_seeds():
    envs = wormnet.make_vec("cartpole", num_envs=8, workers=2)
    obs1, _ = envs.reset(seed=[3, 4, 5, 6, 7, 8, 9, 10])
    lengths = np.zeros(8, dtype=np.int64)
    returns = []
    for _ in range(200):
        _, reward, term, trunc, info = envs.step(np.ones(8, dtype=np.int64))
        lengths += 1
        for i in np.flatnonzero(term | trunc):
            assert info["episode"]["l"][i] == lengths[i]
            returns.append(info["episode"]["r"][i])
            lengths[i] = 0
    assert returns and all(r == float(int(r)) for r in returns)  # CartPole pays 1 per step
    obs2, _ = envs.reset(seed=3)
    np.testing.assert_array_equal(obs1, obs2)
    with pytest.raises(ValueError, match="seeds env i with seed \\+ i"):
        envs.reset(seed=[1, 1, 1, 1, 1, 1, 1, 1])


def test_the_gil_is_released_while_the_envs_step():
    # A Python thread records the time every half millisecond while the main thread steps a
    # batch of Bevy envs (the native call alone). Both take their timestamps holding the GIL,
    # so a tick strictly inside a step's [start, end] means Python ran during that step: only
    # possible if the step released the GIL (or, rarely, if the GIL changed hands in the few
    # bytecodes around the call, hence a count rather than a single tick).
    envs = wormnet.make_vec("worm", num_envs=32, workers=1)
    envs.reset(seed=0)
    native, actions = envs._native, np.zeros((32, 5), dtype=np.float32).tobytes()
    ticks, spans = [], []
    stop = threading.Event()

    def tick():
        while not stop.is_set():
            time.sleep(0.0005)
            ticks.append(time.perf_counter())

    thread = threading.Thread(target=tick)
    thread.start()
    try:
        for _ in range(100):
            start = time.perf_counter()
            native.step(actions)
            spans.append((start, time.perf_counter()))
    finally:
        stop.set()
        thread.join()
    busy = sum(1 for a, b in spans if any(a < t < b for t in ticks))
    print(f"{busy} of {len(spans)} steps saw Python run ({len(ticks)} ticks)")
    assert busy >= 20, f"only {busy} of {len(spans)} steps saw Python run"


@pytest.mark.parametrize("copy", [True, False])
def test_copy_option_as_gymnasiums_and_infos_outlive_later_steps(copy):
    # Rust writes every step into the same numpy buffers: with copy=False the observations
    # array is the same object every step (as SyncVectorEnv(copy=False) returns its own), with
    # copy=True each step's is its own; rewards, flags and infos never alias later steps.
    n = 4
    ours = wormnet.make_vec("cartpole", num_envs=n, workers=1, copy=copy)
    theirs = SyncVectorEnv(
        [lambda: wormnet.make("cartpole") for _ in range(n)],
        autoreset_mode=AutoresetMode.SAME_STEP,
        copy=copy,
    )
    a, _ = ours.reset(seed=5)
    b, _ = theirs.reset(seed=5)
    assert data_equivalence(a, b, exact=True)
    ours.action_space.seed(1)
    kept = []
    for _ in range(120):
        action = ours.action_space.sample()
        got, want = ours.step(action), theirs.step(action)
        for x, y in zip(got[:4], want[:4]):
            assert data_equivalence(x, y, exact=True)
        kept.append((got, want, [x.copy() for x in want[:4]]))
    assert (kept[0][0][0] is kept[-1][0][0]) == (kept[0][1][0] is kept[-1][1][0]) == (not copy)
    finished = 0
    for got, want, values in kept:
        # The rewards and flags returned earlier still hold their step's values.
        for x, y in zip(got[1:4], values[1:4]):
            np.testing.assert_array_equal(x, y)
        if copy:
            np.testing.assert_array_equal(got[0], values[0])
        info = got[4]
        for i in np.flatnonzero(values[2] | values[3]):
            finished += 1
            np.testing.assert_array_equal(info["final_obs"][i], want[4]["final_obs"][i])
            assert info["episode"]["l"][i] > 0
        for key in ("r", "l"):
            if info:
                assert np.all(info["episode"][key][~info["_episode"]] == 0)
    assert finished > 0
    ours.close()
    theirs.close()

"""N wormnet envs on Rust worker threads as a ``gymnasium.vector.VectorEnv``."""

from __future__ import annotations

import os
from typing import Any, Sequence

import numpy as np
from gymnasium.vector import AutoresetMode, VectorEnv
from gymnasium.vector.utils import batch_space

from wormnet._spec import Spec, native_module as _native_module


def _base_seed(seed: int | Sequence[int] | None, num_envs: int) -> int | None:
    """wormnet seeds env ``i`` with ``seed + i``, as Gymnasium's vector envs do with an int."""
    if seed is None or isinstance(seed, (int, np.integer)):
        return None if seed is None else int(seed)
    seeds = list(seed)
    if len(seeds) == num_envs and all(s == seeds[0] + i for i, s in enumerate(seeds)):
        return int(seeds[0])
    raise ValueError(
        f"reset(seed=...): a wormnet vector env seeds env i with seed + i; give an int "
        f"(or the list [s, s + 1, ..., s + {num_envs - 1}]), got {seeds!r}"
    )


class WormnetVectorEnv(VectorEnv):
    """``num_envs`` envs stepped in Rust on ``workers`` threads, the GIL released meanwhile.

    Auto-reset is Gymnasium's ``SAME_STEP``: when an env's episode ends, ``step`` returns the
    next episode's first observation, with the last one in ``infos["final_obs"]`` (masked by
    ``infos["_final_obs"]``). Episodes that end also report ``infos["episode"]`` (``r``: return,
    ``l``: length, masked by ``infos["_episode"]``), as ``RecordEpisodeStatistics`` does; a
    step where no episode ended returns an empty ``infos``.

    Rust writes every step's outputs in place into numpy arrays allocated once. With
    ``copy=True`` (the default, as for Gymnasium's ``SyncVectorEnv``) ``reset`` and ``step``
    return copies of the observations; with ``copy=False`` they return the same observations
    array every time, overwritten by the next step. Rewards and flags are copies either way,
    as Gymnasium's are.
    """

    metadata = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": []}

    def __init__(
        self,
        name: str,
        num_envs: int,
        workers: int | None = None,
        envs_per_app: int = 1,
        native_module: Any = None,
        copy: bool = True,
        **options: Any,
    ):
        native_module = _native_module(native_module)
        if workers is None:
            workers = min(num_envs, os.cpu_count() or 1)
        self._native = native_module.NativeVecEnv(
            name, options, num_envs, workers, envs_per_app
        )
        self._spec = Spec(self._native.spec_json())
        self.name = name
        self.options = dict(options)
        self.num_envs = num_envs
        self.workers = self._native.num_workers()
        self.single_observation_space = self._spec.observation_space
        self.single_action_space = self._spec.action_space
        self.observation_space = batch_space(self.single_observation_space, num_envs)
        self.action_space = batch_space(self.single_action_space, num_envs)
        self.render_mode = None
        self.metadata = {"autoreset_mode": AutoresetMode.SAME_STEP, "render_modes": []}
        self.copy = copy
        n, od = num_envs, self._spec.obs_dim
        out, finals = self._native.buffers()  # written in place by every step (see vector.rs)
        self._rewards = np.frombuffer(out, dtype=np.float64, count=n)
        self._obs = np.frombuffer(out, dtype=np.float32, count=n * od, offset=n * 8).reshape(n, od)
        flags = np.frombuffer(out, dtype=np.bool_, count=2 * n, offset=n * (8 + od * 4))
        self._terminated, self._truncated = flags[:n], flags[n:]
        self._returns = np.frombuffer(finals, dtype=np.float64, count=n)
        self._lengths = np.frombuffer(finals, dtype=np.int64, count=n, offset=n * 8)
        self._final_obs = np.frombuffer(finals, dtype=np.float32, offset=n * 16).reshape(n, od)

    @property
    def observation_names(self) -> list[str]:
        """One name per observation component."""
        return self._spec.observation_names

    @property
    def action_names(self) -> list[str]:
        """One name per action component."""
        return self._spec.action_names

    def reset(
        self,
        *,
        seed: int | Sequence[int] | None = None,
        options: dict[str, Any] | None = None,
    ) -> tuple[np.ndarray, dict[str, Any]]:
        base = _base_seed(seed, self.num_envs)
        super().reset(seed=base)
        if options:
            raise ValueError(
                f"env `{self.name}`: reset takes no options (got {sorted(options)}); "
                "env options are given to make_vec()"
            )
        self._native.reset(base)
        return (self._obs.copy() if self.copy else self._obs), {}

    def step(
        self, actions: Any
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, dict[str, Any]]:
        finished = self._native.step(np.asarray(actions, dtype=np.float32).tobytes())
        return (
            self._obs.copy() if self.copy else self._obs,
            self._rewards.copy(),
            self._terminated.copy(),
            self._truncated.copy(),
            {} if finished is None else self._final_infos(finished),
        )

    def _final_infos(self, finished: list[int]) -> dict[str, Any]:
        """What Gymnasium's ``SAME_STEP`` vector envs (and ``RecordEpisodeStatistics``) put in
        ``infos`` for the envs that finished, laid out as its ``_add_info`` lays it out."""
        done = self._terminated | self._truncated
        final_obs = self._final_obs.copy()
        rows = np.empty(self.num_envs, dtype=object)
        for i in finished:
            rows[i] = final_obs[i]
        return {
            "final_obs": rows,
            "_final_obs": done,
            "final_info": {},
            "_final_info": done,
            "episode": {"r": self._returns.copy(), "_r": done, "l": self._lengths.copy(), "_l": done},
            "_episode": done,
        }

    def close_extras(self, **kwargs: Any) -> None:
        self._native.close()

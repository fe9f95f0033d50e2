"""N wormnet envs as a Stable-Baselines3 ``VecEnv`` (SB3 takes its own vector API, not
Gymnasium's): ``PPO("MlpPolicy", wormnet.make_vec("cartpole", 8, api="sb3"))``."""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from stable_baselines3.common.vec_env.base_vec_env import VecEnv

from wormnet.vector import WormnetVectorEnv


class WormnetSB3VecEnv(VecEnv):
    """SB3's ``VecEnv`` over the Rust batch: ``dones`` are terminated or truncated, finished
    envs' infos carry ``terminal_observation``, ``TimeLimit.truncated`` and ``episode`` (``r``,
    ``l``, which SB3 logs as ``rollout/ep_rew_mean``)."""

    def __init__(self, envs: WormnetVectorEnv):
        self.envs = envs
        self._seed: int | None = None
        self._actions: Any = None
        super().__init__(envs.num_envs, envs.single_observation_space, envs.single_action_space)

    def reset(self) -> np.ndarray:
        obs, _ = self.envs.reset(seed=self._seed)
        self._seed = None
        return obs

    def step_async(self, actions: np.ndarray) -> None:
        self._actions = actions

    def step_wait(self):
        obs, rewards, terminated, truncated, infos = self.envs.step(self._actions)
        dones = terminated | truncated
        env_infos: list[dict[str, Any]] = [{} for _ in range(self.num_envs)]
        for i in np.flatnonzero(dones):
            info = env_infos[i]
            info["terminal_observation"] = infos["final_obs"][i]
            info["TimeLimit.truncated"] = bool(truncated[i] and not terminated[i])
            if infos.get("_episode", np.zeros(0, bool))[i:i + 1].any():
                info["episode"] = {
                    "r": float(infos["episode"]["r"][i]),
                    "l": int(infos["episode"]["l"][i]),
                }
        return obs, rewards.astype(np.float32), dones, env_infos

    def seed(self, seed: int | None = None) -> Sequence[None | int]:
        self._seed = seed
        return [None if seed is None else seed + i for i in range(self.num_envs)]

    def close(self) -> None:
        self.envs.close()

    def get_attr(self, attr_name: str, indices: Any = None) -> list[Any]:
        return [getattr(self.envs, attr_name)] * len(self._get_indices(indices))

    def set_attr(self, attr_name: str, value: Any, indices: Any = None) -> None:
        setattr(self.envs, attr_name, value)

    def env_method(self, method_name: str, *args: Any, indices: Any = None, **kwargs: Any) -> list:
        raise AttributeError(f"wormnet's SB3 VecEnv has no per-env method {method_name!r}")

    def env_is_wrapped(self, wrapper_class: type, indices: Any = None) -> list[bool]:
        # Finished episodes report `episode` (r, l) as SB3's Monitor does, so its evaluation
        # reads true returns whatever wrappers sit above.
        from stable_baselines3.common.monitor import Monitor

        return [wrapper_class is Monitor] * len(self._get_indices(indices))

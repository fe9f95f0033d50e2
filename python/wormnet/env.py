"""One wormnet env as a ``gymnasium.Env``."""

from __future__ import annotations

from typing import Any

import gymnasium as gym
import numpy as np

from wormnet._spec import Spec, native_module as _native_module


class WormnetEnv(gym.Env):
    """A wormnet env (Rust, Bevy + Rapier for the physical ones) behind Gymnasium's API.

    Observations are float32 vectors (a camera's pixels first, channel-major, then the flat
    features), actions a ``Discrete`` index or a float32 ``Box``. The env applies its own time
    limit (``truncated``), so no ``TimeLimit`` wrapper is needed. ``render_mode="rgb_array"``
    draws the scene offscreen (software Vulkan where there is no GPU).
    """

    metadata = {"render_modes": ["rgb_array"], "render_fps": 50}

    def __init__(
        self,
        name: str,
        render_mode: str | None = None,
        render_size: tuple[int, int] = (640, 480),
        native_module: Any = None,
        **options: Any,
    ):
        native_module = _native_module(native_module)
        if render_mode not in (None, "rgb_array"):
            raise ValueError(
                f"env `{name}`: render_mode must be None or 'rgb_array', got {render_mode!r}"
            )
        self._native = native_module.NativeEnv(name, options)
        self._spec = Spec(self._native.spec_json())
        self.name = name
        self.options = dict(options)
        self.observation_space = self._spec.observation_space
        self.action_space = self._spec.action_space
        self.render_mode = render_mode
        self.render_size = (int(render_size[0]), int(render_size[1]))
        self.metadata = {"render_modes": ["rgb_array"], "render_fps": self._spec.render_fps()}

    @property
    def observation_names(self) -> list[str]:
        """One name per observation component (a camera's pixels are named too)."""
        return self._spec.observation_names

    @property
    def action_names(self) -> list[str]:
        """One name per action component."""
        return self._spec.action_names

    @property
    def wormnet_spec(self) -> dict:
        """The env's full Rust ``EnvSpec`` (``dt``, time limit, image shape, ...)."""
        return self._spec.raw

    def reset(
        self, *, seed: int | None = None, options: dict[str, Any] | None = None
    ) -> tuple[np.ndarray, dict[str, Any]]:
        super().reset(seed=seed)
        if options:
            raise ValueError(
                f"env `{self.name}`: reset takes no options (got {sorted(options)}); "
                "env options are given to make()"
            )
        obs = np.frombuffer(self._native.reset(seed), dtype=np.float32)
        return obs, {}

    def step(self, action: Any) -> tuple[np.ndarray, float, bool, bool, dict[str, Any]]:
        buffer, reward, terminated, truncated = self._native.step(self._spec.action_bytes(action))
        obs = np.frombuffer(buffer, dtype=np.float32)
        return obs, float(reward), bool(terminated), bool(truncated), {}

    def render(self) -> np.ndarray | None:
        if self.render_mode is None:
            gym.logger.warn(
                f"env `{self.name}`: render() without a render_mode; "
                "make the env with render_mode='rgb_array'"
            )
            return None
        width, height = self.render_size
        rgb = self._native.render(width, height)
        return np.frombuffer(rgb, dtype=np.uint8).reshape(height, width, 3)

    def close(self) -> None:
        self._native.close()

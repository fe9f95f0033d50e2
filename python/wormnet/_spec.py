"""An env's spec (the Rust ``EnvSpec`` as JSON) turned into Gymnasium spaces and numpy arrays."""

from __future__ import annotations

import importlib
import json
from typing import Any

import numpy as np
from gymnasium import spaces

# Gymnasium's own envs (CartPole-v1) bound unbounded components by the largest float32, and its
# checker warns about infinite bounds: the same here, so the values a space holds are unchanged.
_F32_MAX = float(np.finfo(np.float32).max)


def _bound(value: Any) -> float:
    if value == "inf":
        return _F32_MAX
    if value == "-inf":
        return -_F32_MAX
    return float(value)


def space(desc: dict) -> spaces.Space:
    """A ``Box`` (float32) or ``Discrete`` from a serialised wormnet ``Space``."""
    if desc["kind"] == "discrete":
        return spaces.Discrete(int(desc["n"]))
    low = np.array([_bound(v) for v in desc["low"]], dtype=np.float32)
    high = np.array([_bound(v) for v in desc["high"]], dtype=np.float32)
    return spaces.Box(low=low, high=high, dtype=np.float32)


class Spec:
    """What the Python side needs of an ``EnvSpec``: name, spaces, names, ``dt``, time limit."""

    def __init__(self, spec_json: str):
        raw = json.loads(spec_json)
        self.raw = raw
        self.name: str = raw["name"]
        self.observation_space = space(raw["observation_space"])
        self.action_space = space(raw["action_space"])
        self.observation_names: list[str] = list(raw["observation_names"])
        self.action_names: list[str] = list(raw["action_names"])
        self.dt: float = float(raw["dt"])
        self.max_episode_steps: int | None = raw.get("max_episode_steps")
        self.image: dict | None = raw.get("image")
        self.obs_dim = int(np.prod(self.observation_space.shape))
        self.discrete = isinstance(self.action_space, spaces.Discrete)
        self.action_dim = 1 if self.discrete else int(np.prod(self.action_space.shape))

    def action_bytes(self, action: Any, batch: int | None = None) -> bytes:
        """The float32 bytes of one action (or of ``batch`` actions, one row each) for Rust.

        No value is checked here: the Rust side checks every component against the space, so a
        NaN or an action outside the space fails with the CLI's message.
        """
        array = np.asarray(action, dtype=np.float32)
        if batch is not None and array.size == batch * self.action_dim:
            array = array.reshape(batch, self.action_dim)
        return np.ascontiguousarray(array).tobytes()

    def render_fps(self) -> int:
        """Real-time playback: one picture per ``dt``."""
        return max(1, round(1.0 / self.dt))


def native_module(module: Any) -> Any:
    """The extension module that builds an env: wormnet's own (``None``), or one given as a
    module or by its import name (a user's env crate, see ``wormnet.register``)."""
    if module is None:
        module = "wormnet._native"
    return importlib.import_module(module) if isinstance(module, str) else module

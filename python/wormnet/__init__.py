"""wormnet's envs (Rust, Bevy + Rapier) for Python, behind Gymnasium's API.

    import wormnet
    env = wormnet.make("vehicle", camera=True)            # a gymnasium.Env
    envs = wormnet.make_vec("cartpole", num_envs=16)       # a gymnasium.vector.VectorEnv
    env = gymnasium.make("wormnet/Vehicle-v0")             # every built-in env is registered

Keyword options are the env's ``[env.options]`` (docs/envs.md). Errors are exceptions with the
``wormnet`` CLI's one-line messages: ``ValueError`` for a bad option or action, ``RuntimeError``
for an env that faulted (a panic, a NaN observation).
"""

from __future__ import annotations

import importlib
from typing import Any

import gymnasium

from wormnet import _native
from wormnet.env import WormnetEnv
from wormnet.vector import WormnetVectorEnv

__all__ = ["WormnetEnv", "WormnetVectorEnv", "make", "make_vec", "register", "gym_id", "names"]

# name -> the native module that builds it (wormnet's own, or a user's env crate's).
_modules: dict[str, Any] = {}

# Gymnasium ids of the built-in envs: wormnet/<Name>-v0.
_ID_NAMES = {"cartpole": "CartPole"}


def gym_id(name: str, namespace: str = "wormnet") -> str:
    """The Gymnasium id of env ``name``: ``ball_slope`` -> ``wormnet/BallSlope-v0``."""
    camel = _ID_NAMES.get(name) or "".join(part.capitalize() for part in name.split("_"))
    return f"{namespace}/{camel}-v0"


def _module_for(name: str) -> Any:
    return _modules.get(name, _native)


def names() -> list[str]:
    """Every env ``make`` knows: wormnet's own and those added with ``register``."""
    return sorted(set(_native.env_names()) | set(_modules))


def make(name: str, **options: Any) -> WormnetEnv:
    """One env: ``make("vehicle", render_mode="rgb_array", camera=True)``.

    ``render_mode`` (``None`` or ``"rgb_array"``) and ``render_size`` (width, height) are the
    renderer's; every other keyword is an env option.
    """
    return WormnetEnv(name, native_module=_module_for(name), **options)


def make_vec(
    name: str,
    num_envs: int = 8,
    workers: int | None = None,
    envs_per_app: int = 1,
    api: str = "gymnasium",
    copy: bool = True,
    **options: Any,
) -> Any:
    """``num_envs`` envs stepped in Rust on ``workers`` threads (default: one per core, at most
    ``num_envs``), Bevy envs ``envs_per_app`` to an ``App``.

    ``api="gymnasium"`` gives a ``gymnasium.vector.VectorEnv`` (``SAME_STEP`` auto-reset);
    ``api="sb3"`` the same envs as a Stable-Baselines3 ``VecEnv``. ``copy=False`` returns the
    same observations array every step, as Gymnasium's ``SyncVectorEnv(copy=False)`` does.
    """
    envs = WormnetVectorEnv(
        name,
        num_envs,
        workers=workers,
        envs_per_app=envs_per_app,
        native_module=_module_for(name),
        copy=copy,
        **options,
    )
    if api == "gymnasium":
        return envs
    if api == "sb3":
        from wormnet.sb3 import WormnetSB3VecEnv

        return WormnetSB3VecEnv(envs)
    envs.close()
    raise ValueError(f"make_vec: api must be 'gymnasium' or 'sb3', got {api!r}")


def register(
    name: str,
    module: str | Any = "wormnet._native",
    id: str | None = None,
    **default_options: Any,
) -> str:
    """Makes env ``name`` of a native ``module`` known to ``make``, ``make_vec`` and Gymnasium
    (as ``id``, default ``wormnet/<Name>-v0``), with ``default_options``; returns the id.

    ``module`` is wormnet's own or one a user's env crate builds with
    ``wormnet_python::init_module`` (docs/python.md, "Your own env").
    """
    native = importlib.import_module(module) if isinstance(module, str) else module
    if name not in native.env_names():
        known = ", ".join(native.env_names())
        raise ValueError(f"unknown env `{name}` in {native.__name__}; registered envs: {known}")
    _modules[name] = native
    env_id = id or gym_id(name)
    gymnasium.register(
        id=env_id,
        entry_point="wormnet.env:WormnetEnv",
        kwargs={"name": name, "native_module": native.__name__, **default_options},
        vector_entry_point="wormnet.vector:WormnetVectorEnv",
        disable_env_checker=False,
    )
    return env_id


for _name in _native.env_names():
    if not _name.startswith("_") and gym_id(_name) not in gymnasium.registry:
        register(_name)

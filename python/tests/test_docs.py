"""The Python blocks of docs/python.md marked `<!-- pytest -->` run as written, and the
registration the page describes works."""

import re
from pathlib import Path

import gymnasium as gym
import pytest

import wormnet

PAGE = Path(__file__).resolve().parents[2] / "docs" / "python.md"
BLOCK = re.compile(r"<!-- pytest -->\n```python\n(.*?)\n```", re.S)


def blocks():
    found = BLOCK.findall(PAGE.read_text())
    assert len(found) == 2, "docs/python.md should mark its SB3 and CleanRL examples"
    return found


@pytest.mark.parametrize("index", range(2))
def test_docs_example_runs(index, capsys):
    torch = pytest.importorskip("torch")
    torch.set_num_threads(1)
    exec(compile(blocks()[index], f"{PAGE}:block{index}", "exec"), {})
    out = capsys.readouterr().out
    if index == 0:
        assert out.strip() == "mean return 500 ± 0", out
    else:
        assert "episodic_return=" in out


def test_register_under_an_id_of_your_own_with_default_options():
    env_id = wormnet.register("cartpole", id="mine/CartPoleNoVel-v0", no_velocity=True)
    assert env_id == "mine/CartPoleNoVel-v0"
    env = gym.make(env_id)
    assert env.observation_space.shape == (2,)
    assert env.unwrapped.observation_names == ["cart_position", "pole_angle"]
    with pytest.raises(ValueError, match="unknown env `lander` in wormnet._native"):
        wormnet.register("lander")

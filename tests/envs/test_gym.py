"""`jaxtrade.envs.gym.GymEnv`: gymnasium's own checker, seeding, episode ends, spaces, import isolation."""

from __future__ import annotations

import ast
import pathlib

import gymnasium
import jax.numpy as jnp
import numpy as np
import pytest
from gymnasium.utils.env_checker import check_env

from jaxtrade import envs
from jaxtrade.envs.base import ContinuousSpec
from jaxtrade.envs.gym import GymEnv

L = 12

MAKES = {  # name: (env name, make keywords); all on the bundled sp500-20 training split
    "portfolio_regimes": ("portfolio", dict(episode_length=L)),
    "portfolio_weights": ("portfolio", dict(episode_length=L, action_space="weights")),
    "single": ("single", dict(episode_length=L, asset=3)),
}


@pytest.fixture(scope="module")
def adapters(real_train):
    """name -> GymEnv (seed 0), built once: each jits its own reset and step."""
    return {name: GymEnv(*envs.make(env_name, real_train, kw), seed=0)
            for name, (env_name, kw) in MAKES.items()}


@pytest.mark.parametrize("name", sorted(MAKES))
def test_gymnasium_check_env_passes(adapters, name):
    env = adapters[name]
    check_env(env, skip_render_check=True)
    assert isinstance(env, gymnasium.Env)


def test_spaces_from_the_env(adapters, real_train):
    n = real_train.n_assets
    assert adapters["portfolio_regimes"].action_space == gymnasium.spaces.Discrete(len(envs.REGIMES))
    assert adapters["portfolio_weights"].action_space.shape == (n + 1,)
    assert adapters["single"].action_space == gymnasium.spaces.Discrete(3)
    for env in adapters.values():
        obs, info = env.reset(seed=5)
        assert set(obs) == set(env.observation_space.spaces) == {"window", "state"}
        for k, x in obs.items():
            assert isinstance(x, np.ndarray) and x.dtype == np.float32
            assert x.shape == env.observation_space[k].shape
        assert env.observation_space.contains(obs)
    assert adapters["portfolio_regimes"].observation_space["state"].shape == (n + 1,)
    assert adapters["single"].observation_space["state"].shape == (2,)


def test_specs_on_the_env_win_over_inference(adapters, real_train):
    """An env that declares `action_spec` gets exactly that space (bounds included)."""
    core, params = adapters["portfolio_weights"].core, adapters["portfolio_weights"].params

    class Declared:
        unwrapped = property(lambda self: self)
        action_spec = ContinuousSpec((real_train.n_assets + 1,), -3.0, 3.0)

        def __getattr__(self, name):
            return getattr(core, name)

    space = GymEnv(Declared(), params).action_space
    assert isinstance(space, gymnasium.spaces.Box)
    np.testing.assert_array_equal(space.low, -3.0)
    np.testing.assert_array_equal(space.high, 3.0)


def _trajectory(env, actions, seed=None):
    obs, _ = env.reset(seed=seed)
    out = [obs]
    for a in actions:
        obs, reward, terminated, truncated, info = env.step(a)
        out.append((obs, reward, terminated, truncated, info["value"], info["costs"]))
        if terminated or truncated:
            break
    return out


def _equal(a, b) -> bool:
    try:
        np.testing.assert_equal(a, b)
        return True
    except AssertionError:
        return False


def test_same_seed_same_trajectory(adapters, real_train):
    actions = list(np.random.default_rng(0).integers(0, len(envs.REGIMES), L))
    core, params = adapters["portfolio_regimes"].core, adapters["portfolio_regimes"].params
    a, b = GymEnv(core, params, seed=7), GymEnv(core, params, seed=7)   # share the compiled functions
    first = _trajectory(a, actions)
    assert len(first) == L + 1
    assert _equal(first, _trajectory(b, actions))                  # same constructor seed
    assert _equal(_trajectory(a, actions, seed=3), _trajectory(b, actions, seed=3))   # same reset seed
    assert _equal(_trajectory(a, actions, seed=3), _trajectory(a, actions, seed=3))
    assert not _equal(_trajectory(a, actions, seed=3), _trajectory(a, actions, seed=4))
    # reset() without a seed continues the key chain: a new episode, not a replay.
    assert not _equal(_trajectory(a, actions, seed=3)[0], _trajectory(a, actions)[0])


def test_truncated_and_terminated_come_from_info(adapters, real_train):
    env = adapters["portfolio_regimes"]
    env.reset(seed=1)
    for i in range(L):
        obs, _, terminated, truncated, info = env.step(envs.Regime.EQUAL_WEIGHT)
        assert truncated == bool(info["truncated"]) == (i == L - 1)
        assert terminated is False and not info["terminated"]
    # The last observation is the ended episode's (invested), not a fresh all-cash episode's.
    assert obs["state"][-1] < 0.5
    with pytest.raises(RuntimeError, match="reset"):
        env.step(0)                                                # no auto-reset inside
    # Ruin: a floor above the starting value terminates at the first step, and does not truncate.
    ruin = GymEnv(env.core, env.params.replace(ruin_floor=jnp.float32(2.0)))
    ruin.reset(seed=1)
    _, _, terminated, truncated, info = ruin.step(envs.Regime.EQUAL_WEIGHT)
    assert terminated is True and truncated is False
    assert bool(info["terminated"]) and not info["truncated"]


def test_gymnasium_is_imported_only_by_the_adapter():
    """jaxtrade.envs (and the whole package) imports without gymnasium: only envs/gym.py imports it,
    and no module of the package imports envs/gym.py."""
    root = pathlib.Path(__file__).resolve().parents[2] / "jaxtrade"
    offenders = []
    for path in sorted(root.rglob("*.py")):
        rel = path.relative_to(root.parent).as_posix()
        for node in ast.walk(ast.parse(path.read_text())):
            names = []
            if isinstance(node, ast.Import):
                names = [a.name for a in node.names]
            elif isinstance(node, ast.ImportFrom):
                base = node.module or ""
                names = [base] + [f"{base}.{a.name}" for a in node.names]
                if node.level and path.parent.name == "envs":
                    names += [f"jaxtrade.envs.{a.name}" for a in node.names]
            for name in names:
                if name.split(".")[0] == "gymnasium" and rel != "jaxtrade/envs/gym.py":
                    offenders.append(f"{rel} imports {name}")
                if name == "jaxtrade.envs.gym":
                    offenders.append(f"{rel} imports {name}")
    assert not offenders, offenders

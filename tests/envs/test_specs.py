"""Every environment's action and observation specs, and the fixed-shape `info` it emits."""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxtrade import envs
from jaxtrade.envs.base import INFO_KEYS, ContinuousSpec, DiscreteSpec, ObsSpec
from jaxtrade.envs.probes import make_probe

W = 8


def _market_envs(tiny_data):
    n = tiny_data.n_assets
    cfg = dict(window=W, episode_length=16)
    return [
        ("portfolio", envs.make("portfolio", tiny_data, cfg), DiscreteSpec(12), n),
        ("weights", envs.make("portfolio", tiny_data, dict(cfg, action_space="weights")),
         ContinuousSpec((n + 1,)), n),
        ("single", envs.make("single", tiny_data, dict(cfg, positions=(-1.0, 0.0, 0.5, 1.0))),
         DiscreteSpec(4), 1),
    ]


def _probe_envs():
    return [
        ("constant", make_probe("constant"), DiscreteSpec(2), 1),
        ("bandit", make_probe("bandit", n_arms=3), DiscreteSpec(3), 1),
        ("memory", make_probe("memory", n_cues=4), DiscreteSpec(4), 1),
        ("target", make_probe("target", action_dim=5), ContinuousSpec((5,)), 1),
        ("drift", make_probe("drift"), DiscreteSpec(3), 1),
    ]


def _check(env, params, action_spec, n):
    # The specs, through both wrappers (EpisodeStats(AutoReset(core))) and on the core.
    for e in (env, env._env, env.unwrapped):
        assert e.action_spec == action_spec
        assert e.discrete == isinstance(action_spec, DiscreteSpec)
        assert e.action_dim == (action_spec.n if e.discrete else action_spec.shape[-1])
        assert isinstance(e.obs_spec, ObsSpec) and e.obs_spec == env.unwrapped.obs_spec
    obs, state = env.reset(jax.random.key(0), params)
    assert ObsSpec.from_obs(obs) == env.obs_spec
    action = (jnp.int32(action_spec.n - 1) if env.discrete else jnp.zeros(action_spec.shape, jnp.float32))
    obs, _, _, _, info = jax.jit(env.step)(jax.random.key(1), state, action, params)
    assert ObsSpec.from_obs(obs) == env.obs_spec
    assert set(INFO_KEYS) <= set(info), sorted(set(INFO_KEYS) - set(info))
    shapes = {"weights": (n + 1,), "weights_marked": (n + 1,), "trade_closed": (n,), "trade_pnl": (n,)}
    for k in INFO_KEYS:
        assert np.shape(info[k]) == shapes.get(k, ()), k
    assert info["trade_closed"].dtype == bool and info["gate"].dtype == bool
    assert info["truncated"].dtype == bool and info["terminated"].dtype == bool
    assert set(info["stats"].as_dict()) == set(envs.TradingStats.names())
    # Specs are JSON round-trippable records (model artifacts store them).
    from jaxtrade.envs.base import action_spec_from_json, obs_spec_from_json

    assert action_spec_from_json(env.action_spec.to_json()) == env.action_spec
    assert obs_spec_from_json(env.obs_spec.to_json()) == env.obs_spec
    return info


def test_market_env_specs_and_info(tiny_data):
    for name, (env, params), spec, n in _market_envs(tiny_data):
        info = _check(env, params, spec, n)
        d = tiny_data.features.shape[2] * n + tiny_data.market.shape[1]
        assert env.obs_spec.as_dict()["window"].shape == (W, d), name
        assert env.obs_spec.as_dict()["state"].shape == (n + 1,), name
        np.testing.assert_allclose(float(np.sum(info["weights"])), 1.0, rtol=1e-5)
        assert float(info["value_before"]) == float(params.initial_cash)


@pytest.mark.parametrize("i", range(5))
def test_probe_specs_and_info(i):
    name, (env, params), spec, n = _probe_envs()[i]
    info = _check(env, params, spec, n)
    assert not bool(info["trade_closed"].any()) and float(info["costs"]) == 0.0, name


def test_drift_probe_rewards_and_closed_form_optimum():
    """Long from the first step and held earns length * drift - cost (noise off); each change of
    position pays cost per unit, so flat -> long -> short -> long costs 1 + 2 + 2 units."""
    from jaxtrade.envs.probes import drift_optimal_value

    env, params = make_probe("drift", episode_length=4, drift=0.01, noise=0.0, cost=0.02)
    core = env.unwrapped
    assert drift_optimal_value(params) == pytest.approx(4 * 0.01 - 0.02)

    def play(actions):
        obs, s = core.reset(jax.random.key(0), params)
        rewards, dones = [], []
        for t, a in enumerate(actions):
            obs, s, r, d, _ = core.step(jax.random.key(t), s, jnp.int32(a), params)
            rewards.append(float(r))
            dones.append(bool(d))
        return np.array(rewards), dones, np.asarray(obs["state"])

    r, dones, state = play([2, 2, 2, 2])
    assert r.sum() == pytest.approx(drift_optimal_value(params), abs=1e-7) and dones == [False] * 3 + [True]
    assert state.tolist() == [1.0, 1.0]                                  # t / length, position long
    r, _, _ = play([2, 0, 2, 1])
    np.testing.assert_allclose(r, [0.01 - 0.02, -0.01 - 0.04, 0.01 - 0.04, 0.0 - 0.02], atol=1e-7)
    assert play([1, 1, 1, 1])[0].sum() == 0.0                             # flat: nothing

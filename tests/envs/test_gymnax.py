"""`jaxtrade.envs.gymnax.make_gymnax`: specs and info, gymnax's own trajectory as the oracle, the time
limit as truncation, jit + vmap, and the errors."""

from __future__ import annotations

import sys

import gymnax
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxtrade.envs.base import INFO_KEYS, ContinuousSpec, DiscreteSpec, TradingStats
from jaxtrade.envs.gymnax import make_gymnax


def balance(obs):
    """A hand-tuned linear controller that keeps CartPole up for the whole 500 steps."""
    x, x_dot, theta, theta_dot = obs["state"]
    return (theta + 0.5 * theta_dot + 0.05 * x + 0.1 * x_dot > 0).astype(jnp.int32)


def run_core(env, params, key, policy, n_steps):
    """n_steps of the auto-reset env from one reset: (reward, done, info) stacked [n_steps, ...]."""
    def body(carry, k):
        obs, state = carry
        obs, state, reward, done, info = env.step(k, state, policy(obs), params)
        return (obs, state), (reward, done, info)

    reset_key, run_key = jax.random.split(key)
    carry = env.reset(reset_key, params)
    return jax.lax.scan(body, carry, jax.random.split(run_key, n_steps))[1]


def test_specs_obs_and_info_shapes():
    env, params = make_gymnax("CartPole-v1")
    assert env.action_spec == DiscreteSpec(2) and env.discrete and env.action_dim == 2
    assert env.obs_spec.to_json() == {"state": {"shape": [4], "dtype": "float32"}}
    obs, state = env.reset(jax.random.key(0), params)
    assert set(obs) == {"state"} and obs["state"].shape == (4,) and obs["state"].dtype == jnp.float32
    obs, state, reward, done, info = env.step(jax.random.key(1), state, jnp.int32(1), params)
    assert reward.shape == () and reward.dtype == jnp.float32 and done.dtype == jnp.bool_
    missing = set(INFO_KEYS) - set(info)
    assert not missing, missing
    assert info["trade_closed"].shape == (1,) and info["weights"].shape == (2,)
    assert isinstance(info["stats"], TradingStats) and "final_obs" in info

    pend, pend_params = make_gymnax("Pendulum-v1")
    assert pend.action_spec == ContinuousSpec((1,), -2.0, 2.0)
    assert pend.obs_spec.as_dict()["state"].shape == (3,)
    _, s = pend.reset(jax.random.key(0), pend_params)
    _, _, r, d, _ = pend.step(jax.random.key(1), s, jnp.ones((1,)), pend_params)
    assert r.shape == () and not bool(d)


def test_time_limit_truncates_and_a_fall_terminates():
    env, params = make_gymnax("CartPole-v1")
    assert params.max_steps_in_episode == 500
    reward, done, info = jax.jit(lambda k: run_core(env, params, k, balance, 501))(jax.random.key(3))
    done, trunc, term = (np.asarray(x) for x in (done, info["truncated"], info["terminated"]))
    assert np.flatnonzero(done).tolist() == [499]            # the 500th step ends it, by the time limit
    assert trunc[499] and not term.any() and trunc.sum() == 1
    assert float(info["episode_return"][499]) == 500.0 and int(info["episode_length"][499]) == 500
    assert int(info["episode_length"][500]) == 1             # auto-reset: a new episode's first step
    assert float(info["stats"].episodes[499]) == 1.0
    assert float(info["stats"].episode_return_sum[499]) == 500.0

    # Always pushing left: the pole falls long before the limit -> terminated, not truncated.
    _, done, info = run_core(env, params, jax.random.key(4), lambda o: jnp.int32(0), 60)
    first = int(np.argmax(np.asarray(done)))
    assert 0 < first < 59 and bool(info["terminated"][first]) and not bool(info["truncated"][first])
    # The fall on the very step the time limit strikes is a termination only (nothing to bootstrap).
    both, both_params = make_gymnax("CartPole-v1", max_steps_in_episode=first + 1)
    _, done, info = run_core(both, both_params, jax.random.key(4), lambda o: jnp.int32(0), first + 1)
    assert bool(done[first]) and bool(info["terminated"][first]) and not bool(info["truncated"][first])

    # A shorter limit through the params.
    short, short_params = make_gymnax("CartPole-v1", max_steps_in_episode=20)
    _, done, info = run_core(short, short_params, jax.random.key(3), balance, 40)
    assert np.flatnonzero(np.asarray(done)).tolist() == [19, 39]
    assert np.asarray(info["truncated"])[[19, 39]].all()


def test_trajectory_and_returns_match_gymnax():
    """The same keys and random actions through gymnax's own auto-resetting `step`: equal observations,
    rewards and episode ends, and every finished episode's return equals the sum of gymnax's rewards."""
    env, params = make_gymnax("CartPole-v1")
    genv, gparams = gymnax.make("CartPole-v1")
    n = 400
    key = jax.random.key(11)
    reset_key, action_key, step_key = jax.random.split(key, 3)
    actions = jax.random.randint(action_key, (n,), 0, 2)
    step_keys = jax.random.split(step_key, n)

    step = jax.jit(env.step)                                # gymnax's own step is jitted too
    obs, state = env.reset(reset_key, params)
    gobs, gstate = genv.reset(reset_key, gparams)
    np.testing.assert_array_equal(obs["state"], gobs)
    ours, theirs, returns = [], [], []
    running = 0.0
    for t in range(n):
        obs, state, reward, done, info = step(step_keys[t], state, actions[t], params)
        gobs, gstate, greward, gterm, gtrunc, _ = genv.step(step_keys[t], gstate, actions[t], gparams)
        ours.append((np.asarray(obs["state"]), float(reward), bool(done)))
        theirs.append((np.asarray(gobs), float(greward), bool(gterm | gtrunc)))
        running += float(greward)
        if bool(done):
            assert float(info["episode_return"]) == pytest.approx(running, abs=1e-4)
            returns.append(running)
            running = 0.0
    for (o, r, d), (go, gr, gd) in zip(ours, theirs, strict=True):
        np.testing.assert_allclose(o, go, rtol=1e-6, atol=1e-6)
        assert (r, d) == (gr, gd)
    assert len(returns) >= 5                                # random play: many short episodes


def test_jit_vmap_batch():
    env, params = make_gymnax("CartPole-v1")
    b, n = 4, 64
    keys = jax.random.split(jax.random.key(0), b)
    policy = lambda o: (o["state"][2] > 0).astype(jnp.int32)
    batched = jax.jit(jax.vmap(lambda k: run_core(env, params, k, policy, n)))
    reward, done, info = batched(keys)
    assert reward.shape == (b, n) and done.shape == (b, n) and info["trade_pnl"].shape == (b, n, 1)
    assert info["final_obs"]["state"].shape == (b, n, 4)
    # Each env's steps match the same env run alone (vmap changes nothing).
    r0, d0, _ = run_core(env, params, keys[2], policy, n)
    np.testing.assert_array_equal(np.asarray(done[2]), np.asarray(d0))
    np.testing.assert_array_equal(np.asarray(reward[2]), np.asarray(r0))
    # Envs made twice are equal, so a jitted function taking the env statically compiles once.
    assert make_gymnax("CartPole-v1")[0] == env and hash(make_gymnax("CartPole-v1")[0]) == hash(env)


def test_errors_name_the_fix(monkeypatch):
    with pytest.raises(ValueError, match="unknown gymnax env 'CartPole-v9'"):
        make_gymnax("CartPole-v9")
    known = r"unknown CartPole-v1 param\(s\) \['max_steps'\].*max_steps_in_episode"
    with pytest.raises(ValueError, match=known):
        make_gymnax("CartPole-v1", max_steps=5)
    monkeypatch.setitem(sys.modules, "gymnax", None)         # as if gymnax were not installed
    with pytest.raises(ImportError, match="`dev` extra"):
        make_gymnax("CartPole-v1")


def test_mlp_model_reads_the_state_only_obs():
    from jaxtrade.models import default_model_config, make_model

    env, params = make_gymnax("CartPole-v1")
    cfg = default_model_config()
    cfg.update(hidden_dim=8, n_layers=1, encoder_layers=1, dropout=0.0)
    model = make_model(cfg, env.action_spec)
    obs, _ = env.reset(jax.random.key(0), params)
    obs = jax.tree.map(lambda x: x[None, None], obs)                        # [T=1, B=1, 4]
    variables = model.init(jax.random.key(1), model.initialize_carry(1), obs, jnp.zeros((1, 1), bool))
    _, dist, value = model.apply(variables, model.initialize_carry(1), obs, jnp.zeros((1, 1), bool))
    assert value.shape == (1, 1)
    assert variables["params"]["encoder"]["dense_0"]["kernel"].shape == (4, 8)

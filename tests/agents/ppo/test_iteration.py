"""The pmapped iteration: 4 devices x 8 envs == 1 device x 32 envs, pmean-ed metrics, determinism."""

import chex
import jax
import numpy as np
import pytest

from jaxtrade.agents import ppo
from jaxtrade.agents.devices import first_device
from jaxtrade.envs.probes import make_probe

from .helpers import tiny_config

N_ITER = 3


def _config(n_envs, **overrides):
    cfg = tiny_config(n_envs=n_envs, n_minibatches=4, n_steps=6, **overrides)
    cfg.model.dropout = 0.1            # the default; no PPO pass applies it
    cfg.seed = 7
    return cfg


def _run(cfg, env, env_params, devices, fn=None, seed=None, n_iter=N_ITER):
    agent = ppo.make(cfg, env)
    fn = fn or agent.make_iteration(devices)
    carry = agent.init(cfg.seed if seed is None else seed, env_params, devices)
    history = []
    for _ in range(n_iter):
        carry, metrics = fn(carry, env_params)
        history.append(jax.device_get(metrics))
    return fn, carry, history


@pytest.fixture(scope="module")
def runs():
    assert jax.device_count() >= 4, "tests/conftest.py forces 4 host CPU devices"
    env, env_params = make_probe("memory", episode_length=3)
    four = _run(_config(8), env, env_params, jax.devices()[:4])
    one = _run(_config(32), env, env_params, jax.devices()[:1])
    return env, env_params, four, one


def test_four_devices_match_one_device(runs):
    _, _, (_, carry4, hist4), (_, carry1, hist1) = runs
    assert ppo.params_identical_across_devices(carry4)
    p4, p1 = first_device(carry4.train_state.params), first_device(carry1.train_state.params)
    chex.assert_tree_all_finite(p4)
    chex.assert_trees_all_close(p4, p1, atol=1e-5, rtol=1e-5)
    agent = ppo.make(_config(8), runs[0])
    init = agent.init_train_state(jax.random.split(jax.random.key(7), 3)[0], runs[1]).params
    assert not np.allclose(init["policy"]["out"]["kernel"], p4["policy"]["out"]["kernel"])   # it trained
    for m4, m1 in zip(hist4, hist1, strict=True):
        for name in ("episodes", "episode_return_sum", "env_steps", "reward_sum"):
            assert np.all(m4[name] == m1[name][0]), name                 # psum-ed counts over all devices
        for name in ("policy_loss", "value_loss", "entropy", "approx_kl", "explained_variance", "grad_norm"):
            np.testing.assert_allclose(m4[name], m1[name][0], rtol=1e-4, atol=1e-6, err_msg=name)


def test_metrics_identical_across_devices_and_complete(runs):
    _, _, (_, _, hist4), _ = runs
    required = {"policy_loss", "value_loss", "entropy", "approx_kl", "clip_frac", "explained_variance",
                "grad_norm", "actor_lr", "critic_lr", "episodes", "episode_return_sum",
                "episode_return_sq_sum", "episodes_profitable", "trades_closed", "trades_won", "costs_sum",
                "turnover_sum", "reward_sum", "env_steps", "any_nonfinite"}
    for metrics in hist4:
        assert required <= set(metrics)
        for name, value in metrics.items():
            assert value.shape == (4,), name
            assert np.all(value == value[0]), name
        assert not metrics["any_nonfinite"][0]
        assert metrics["env_steps"][0] == 6 * 8 * 4
        np.testing.assert_allclose(metrics["actor_lr"][0], 3e-4, rtol=1e-6)
        np.testing.assert_allclose(metrics["critic_lr"][0], 9e-4, rtol=1e-6)


def test_same_seed_bit_identical_and_other_seed_differs(runs):
    env, env_params, (fn, carry, _), _ = runs
    _, again, _ = _run(_config(8), env, env_params, jax.devices()[:4], fn=fn)
    chex.assert_trees_all_equal(jax.device_get(carry.train_state.params),
                                jax.device_get(again.train_state.params))
    chex.assert_trees_all_equal(jax.device_get(carry.hidden), jax.device_get(again.hidden))
    _, other, _ = _run(_config(8), env, env_params, jax.devices()[:4], fn=fn, seed=8)
    assert not np.allclose(jax.device_get(carry.train_state.params["value"]["out"]["kernel"]),
                           jax.device_get(other.train_state.params["value"]["out"]["kernel"]))


def test_iterations_per_call_equals_repeated_calls(runs):
    env, env_params, _, (_, carry1, hist1) = runs
    cfg = _config(32, iterations_per_call=N_ITER)
    _, carry_k, hist_k = _run(cfg, env, env_params, jax.devices()[:1], n_iter=1)
    assert hist_k[0]["policy_loss"].shape == (1, N_ITER)
    chex.assert_trees_all_close(jax.device_get(carry_k.train_state.params),
                                jax.device_get(carry1.train_state.params), atol=1e-6)
    np.testing.assert_allclose(hist_k[0]["episodes"][0], [h["episodes"][0] for h in hist1])
    assert int(carry_k.train_state.step[0]) == N_ITER

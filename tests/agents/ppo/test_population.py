"""Populations: K members (seeds x learning rates) in one compile equal K separate runs; the Agent
protocol surface of PPOAgent."""

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxtrade.agents import ppo
from jaxtrade.agents.base import Agent
from jaxtrade.envs.base import DiscreteSpec, TradingStats
from jaxtrade.envs.probes import make_probe

from .helpers import tiny_config

K, N_ITER = 8, 2


def _config():
    cfg = tiny_config(n_envs=4, n_steps=4, n_minibatches=2, update_epochs=1, critic_epochs=1)
    cfg.model.update(hidden_dim=8)
    return cfg


@pytest.fixture(scope="module")
def population(request):
    env, env_params = make_probe("memory", episode_length=3)
    agent = ppo.make(_config(), env)
    keys = jax.random.split(jax.random.key(3), K)
    lrs = np.geomspace(1e-4, 3e-2, K).astype(np.float32)
    members = [agent.hparams.replace(actor_lr=jnp.float32(lr), critic_lr=jnp.float32(2 * lr)) for lr in lrs]
    devices = jax.devices()[:1]

    traces = []
    original = agent.train_iteration
    def counting(*args, **kwargs):              # a Python side effect: runs once per trace
        traces.append(1)
        return original(*args, **kwargs)
    agent.train_iteration = counting            # the agent's own iteration, swapped on this instance
    try:
        iterate = agent.make_population_iteration(devices)
        state = agent.init_population(keys, env_params, ppo.TracedHParams.stack(members), devices)
        history = []
        for _ in range(N_ITER):
            state, metrics = iterate(state, env_params)
            history.append(jax.device_get(metrics))
        n_traces = len(traces)
    finally:
        del agent.train_iteration
    return env, env_params, agent, keys, members, devices, state, history, n_traces


def test_population_equals_separate_runs_and_compiles_once(population):
    env, env_params, agent, keys, members, devices, state, history, n_traces = population
    assert n_traces == 1
    pop_params = agent.params(state)                                       # leaves [K, ...]
    assert pop_params["value"]["out"]["kernel"].shape[0] == K
    iterate = agent.make_iteration(devices)
    finals = []
    for i in range(K):
        single = agent.init(keys[i], env_params, devices, hparams=members[i])
        for it in range(N_ITER):
            single, metrics = iterate(single, env_params)
            for name in ("episodes", "reward_sum", "policy_loss", "actor_lr"):
                np.testing.assert_allclose(history[it][name][0, i], metrics[name][0], rtol=1e-5, atol=1e-6,
                                           err_msg=f"{name} member {i} iteration {it}")
        finals.append(agent.params(single))
        member = jax.tree.map(lambda x, i=i: x[i], pop_params)
        chex.assert_trees_all_close(member, agent.params(single), atol=1e-5, rtol=1e-5)
    # The members really differ (seeds and rates), so the comparison above is not vacuous.
    k0 = [np.asarray(p["policy"]["out"]["kernel"]) for p in finals]
    assert not np.allclose(k0[0], k0[1])
    np.testing.assert_allclose(history[0]["actor_lr"][0], [float(m.actor_lr) for m in members], rtol=1e-6)


def test_population_metrics_shapes_and_stats(population):
    *_, history, _ = population
    names = set(TradingStats.names()) | {"env_steps"} | set(ppo.DIAGNOSTICS)
    for metrics in history:
        assert names <= set(metrics)
        for name in names:
            assert metrics[name].shape == (1, K), name


def test_ppo_agent_implements_the_protocol(population):
    env, env_params, agent, *_ = population
    assert isinstance(agent, Agent)
    assert agent.action_spec == DiscreteSpec(2)
    assert isinstance(agent.model_config, dict) and agent.model_config["hidden_dim"] == 8
    assert agent.obs_spec is not None and set(agent.obs_spec.as_dict()) == {"state", "window"}
    assert {"approx_kl", "clip_frac", "entropy", "explained_variance"} <= set(agent.diagnostics)
    params = agent.init_params(jax.random.key(0), env_params)
    policy = agent.policy(params)
    obs, _ = env.reset(jax.random.key(1), env_params)
    action, carry = policy.act(jax.random.key(2), policy.init(), obs)
    dist, _ = policy.dist(policy.init(), obs)
    assert action.shape == () and dist["logits"].shape == (2,)
    assert int(action) == int(jnp.argmax(dist["logits"]))
    with pytest.raises(ValueError, match="K=3"):
        agent.init_population(jax.random.split(jax.random.key(0), 3), env_params,
                              ppo.TracedHParams.stack([agent.hparams] * 2))

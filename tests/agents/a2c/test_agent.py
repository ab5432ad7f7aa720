"""A2CAgent: a population of 2 on 4 devices x 2 envs equals two single runs on 1 device x 8 envs (one
compile each); the Agent protocol surface; the registry; the policy rebuilt from its spec alone."""

import json
import types

import chex
import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxtrade.agents import a2c, registry
from jaxtrade.agents.base import Agent
from jaxtrade.agents.devices import identical_across_devices
from jaxtrade.envs.base import TradingStats, action_spec_from_json
from jaxtrade.envs.probes import make_probe

K, N_ITER, N_STEPS = 2, 2, 6


def _config(n_envs):
    cfg = a2c.default_config()
    # Dropout on and advantages normalized: their keys and moments must not depend on the device split.
    cfg.model.update(hidden_dim=16, n_layers=1, encoder_layers=1, dropout=0.1, n_heads=2)
    cfg.a2c.update(n_envs=n_envs, n_steps=N_STEPS, norm_adv=True)
    return cfg


@pytest.fixture(scope="module")
def runs():
    # memory probe: recurrent, episodes of 3 steps that terminate inside every 6-step rollout
    env, env_params = make_probe("memory", episode_length=3)
    keys = jax.random.split(jax.random.key(5), K)

    # Two members that differ in seed and in every traced hyperparameter.
    pop_agent = a2c.make(_config(2), env)
    members = [pop_agent.hparams,
               pop_agent.hparams.replace(actor_lr=jnp.float32(3e-3), critic_lr=jnp.float32(1e-2),
                                         ent_coef=jnp.float32(0.05), vf_coef=jnp.float32(0.25),
                                         gamma=jnp.float32(0.9), gae_lambda=jnp.float32(0.8))]
    devices4 = jax.devices()[:4]
    iterate = pop_agent.make_population_iteration(devices4)
    state = pop_agent.init_population(keys, env_params, pop_agent.stack_hparams(members), devices4)
    history = []
    for _ in range(N_ITER):
        state, metrics = iterate(state, env_params)
        history.append(jax.device_get(metrics))
    pop = types.SimpleNamespace(agent=pop_agent, state=state, history=history, devices=devices4)

    single_agent = a2c.make(_config(8), env)
    device1 = jax.devices()[:1]
    iterate1 = single_agent.make_iteration(device1)
    singles = []
    for i in range(K):
        s = single_agent.init(keys[i], env_params, device1, hparams=members[i])
        hist = []
        for _ in range(N_ITER):
            s, metrics = iterate1(s, env_params)
            hist.append(jax.device_get(metrics))
        singles.append(types.SimpleNamespace(params=single_agent.params(s), history=hist))
    return env, env_params, pop, single_agent, singles


def test_population_on_4_devices_equals_single_runs_on_1_device(runs):
    _, _, pop, single_agent, singles = runs
    assert pop.agent.compiles == 1 and single_agent.compiles == 1      # K members, one compile
    assert identical_across_devices((pop.state.train_state.params, pop.state.train_state.opt_state))
    pop_params = pop.agent.params(pop.state)                            # leaves [K, ...]
    for i, single in enumerate(singles):
        for it in range(N_ITER):
            for name in ("reward_sum", "episodes", "policy_loss", "value_loss", "entropy", "grad_norm",
                         "explained_variance", "actor_lr", "env_steps"):
                np.testing.assert_allclose(pop.history[it][name][:, i], single.history[it][name][0],
                                           rtol=2e-5, atol=2e-6, err_msg=f"{name} member {i} iter {it}")
        member = jax.tree.map(lambda x, i=i: x[i], pop_params)
        chex.assert_trees_all_close(member, single.params, rtol=2e-5, atol=2e-6)
    # The members really differ (seed and settings), so the comparison is not vacuous.
    k0, k1 = (np.asarray(s.params["policy"]["out"]["kernel"]) for s in singles)
    assert not np.allclose(k0, k1)
    assert pop.history[0]["actor_lr"][0].tolist() == pytest.approx([7e-4, 3e-3])


def test_metrics_and_protocol(runs):
    env, env_params, pop, single_agent, _ = runs
    agent = pop.agent
    assert isinstance(agent, Agent) and agent.name == "a2c"
    names = set(TradingStats.names()) | {"env_steps"} | set(agent.diagnostics)
    assert {"policy_loss", "value_loss", "entropy", "grad_norm", "loss", "explained_variance",
            "any_nonfinite"} <= set(agent.diagnostics)
    for metrics in pop.history:
        assert names <= set(metrics)
        for name in names:
            assert metrics[name].shape == (4, K), name
        assert not metrics["any_nonfinite"].any()
    # A population on 4 devices is 4 x n_envs envs per member: every member steps 4 * 2 * 6 times.
    assert agent.env_steps_per_iteration(4) == 48
    np.testing.assert_array_equal(pop.history[0]["env_steps"], 48.0)
    assert agent.n_envs == 2 and agent.frozen == ()
    assert agent.hparam_names() == ("actor_lr", "critic_lr", "ent_coef", "vf_coef", "gamma", "gae_lambda")
    assert agent.hparams_from(_config(2)).gae_lambda == 1.0                # n-step returns by default
    assert agent.static_key(_config(2)) == agent.hp != single_agent.hp     # n_envs is static
    with pytest.raises(ValueError, match="K=3"):
        agent.init_population(jax.random.split(jax.random.key(0), 3), env_params,
                              agent.stack_hparams([agent.hparams] * 2), pop.devices)
    cfg = _config(2)
    cfg.a2c.clip_eps = 0.2
    with pytest.raises(ValueError, match="a2c.clip_eps"):
        a2c.make(cfg, env)
    cfg = _config(2)
    cfg.a2c.frozen = ("critic",)
    with pytest.raises(ValueError, match="a2c.frozen"):
        a2c.make(cfg, env)


def test_registry_makes_a2c():
    env, _ = make_probe("drift")
    section = registry.default_config("a2c")
    assert {"n_envs", "n_steps"} <= set(section)
    assert registry.registration("a2c").lr_keys == ("actor_lr", "critic_lr")
    cfg = _config(2)
    cfg.agent = {"name": "a2c"}
    agent = registry.make_agent(cfg, env)
    assert isinstance(agent, a2c.A2CAgent) and agent.hp.n_envs == 2


def test_policy_rebuilt_from_spec_alone_matches_the_agent(runs):
    env, env_params, _, single_agent, singles = runs
    params = singles[1].params                                  # trained: not the initial params
    # What a model artifact stores, through JSON: model config, action spec, agent name; no env.
    spec = types.SimpleNamespace(agent="a2c", model=json.loads(json.dumps(single_agent.model_config)),
                                 action_spec=action_spec_from_json(single_agent.action_spec.to_json()))
    host_params = jax.device_get(params)
    rebuilt = registry.policy_from_spec(spec, host_params)
    rebuilt_sampling = registry.policy_from_spec(spec, host_params, deterministic=False)
    policy, sampling = single_agent.policy(params), single_agent.policy(params, deterministic=False)
    model = single_agent.model
    keys = jax.random.split(jax.random.key(3), 16)

    @jax.jit
    def play(rebuilt, rebuilt_sampling, policy, sampling):
        """Three steps of one episode, every policy fed the same observations; per step -> the agent
        network's logits, the rebuilt policy's logits, its actions and the sampling ones (16 keys)."""
        act_all = lambda p, carry, obs: jax.vmap(p.act, (0, None, None))(keys, carry, obs)[0]
        obs, state = env.reset(jax.random.key(7), env_params)
        c_rebuilt, c_policy, hidden = rebuilt.init(), policy.init(), model.initialize_carry(1)
        out = []
        for t in range(3):                                      # through the recurrent core's state
            # The agent's own network, batched as in a rollout.
            hidden, dist, _ = model.apply({"params": params}, hidden,
                                          jax.tree.map(lambda x: x[None, None], obs), jnp.zeros((1, 1), bool))
            d_rebuilt, _ = rebuilt.dist(c_rebuilt, obs)
            out.append((dist.logits[0, 0], d_rebuilt["logits"], act_all(rebuilt, c_rebuilt, obs),
                        act_all(rebuilt_sampling, c_rebuilt, obs), act_all(sampling, c_policy, obs)))
            a_policy, c_policy = policy.act(keys[0], c_policy, obs)
            _, c_rebuilt = rebuilt.act(keys[0], c_rebuilt, obs)
            obs, state, *_ = env.step(jax.random.key(100 + t), state, a_policy, env_params)
        return out, (c_rebuilt, c_policy)

    out, (c_rebuilt, c_policy) = jax.device_get(play(rebuilt, rebuilt_sampling, policy, sampling))
    sampled_other = False
    for logits, logits_rebuilt, greedy_actions, samples_rebuilt, samples in out:
        np.testing.assert_allclose(logits_rebuilt, logits, rtol=1e-5, atol=1e-6)
        np.testing.assert_array_equal(greedy_actions, np.argmax(logits))     # every key: the mode
        np.testing.assert_array_equal(samples_rebuilt, samples)
        sampled_other |= bool((samples != np.argmax(logits)).any())
    chex.assert_trees_all_close(c_rebuilt, c_policy)
    assert sampled_other                                          # the sampling policies really sample

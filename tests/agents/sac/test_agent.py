"""SACAgent: its state (log alpha in the params, resumed bit for bit with the buffer), a population of
traced settings in one compile, the default target entropy, encoder transplants, the registry and its
stochastic policy."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from jaxtrade.agents import registry, sac
from jaxtrade.agents.base import Agent
from jaxtrade.envs.probes import make_probe
from jaxtrade.models import make_model
from tests.agents.resume import host, round_trip
from tests.agents.td3.helpers import make, tiny_config


def test_population_resume_temperature_and_registry():
    env, env_params = make_probe("target", action_dim=2)      # one-step, continuous [2], unbounded
    agent = make("sac", env, n_steps=4, learning_starts=32, batch_size=16, utd_ratio=1 / 8, init_alpha=0.5)
    assert isinstance(agent, Agent) and agent.name == "sac"
    assert agent.hparam_names() == ("actor_lr", "critic_lr", "alpha_lr", "gamma", "tau", "target_entropy")
    assert float(agent.hparams.target_entropy) == -2.0                      # -action_dim by default
    assert float(agent.hparams_from(tiny_config("sac", target_entropy=-0.5)).target_entropy) == -0.5

    devices = jax.devices()[:1]
    members = [agent.hparams, agent.hparams.replace(alpha_lr=agent.hparams.alpha_lr * 0 + 1e-2)]
    state = agent.init_population(jax.random.split(jax.random.key(0), 2), env_params,
                                  agent.stack_hparams(members), devices)
    np.testing.assert_allclose(agent.params(state)["log_alpha"], np.log(0.5), rtol=1e-6)
    iterate = agent.make_population_iteration(devices)
    for _ in range(2):
        state, metrics = iterate(state, env_params)
    saved = round_trip(agent.to_checkpoint(state))
    straight, m_straight = iterate(state, env_params)
    resumed, m_resumed = iterate(agent.from_checkpoint(state, saved), env_params)
    for a, b in zip(jax.tree.leaves(host(straight)), jax.tree.leaves(host(resumed)), strict=True):
        np.testing.assert_array_equal(a, b)
    np.testing.assert_array_equal(host(m_straight)["alpha"], host(m_resumed)["alpha"])
    assert agent.compiles == 1
    assert not np.asarray(m_straight["any_nonfinite"]).any()
    # Entropy of a fresh tanh-Gaussian is far above -2: alpha falls, faster at the larger alpha_lr.
    log_alpha = np.asarray(agent.params(straight)["log_alpha"])
    assert (log_alpha < np.log(0.5)).all() and log_alpha[1] < log_alpha[0], log_alpha

    # A pretrained (actor-critic) encoder goes into the actor and into every critic of every member.
    net = make_model(agent.model_config, agent.action_spec)
    obs, _ = env.reset(jax.random.key(0), env_params)
    encoder = net.init(jax.random.key(3), net.initialize_carry(1), jax.tree.map(lambda x: x[None, None], obs),
                       jnp.zeros((1, 1), bool))["params"]["encoder"]
    moved = agent.params(agent.with_encoder(straight, encoder))
    for leaf, want in zip(jax.tree.leaves(moved["actor"]["encoder"]), jax.tree.leaves(encoder), strict=True):
        np.testing.assert_array_equal(leaf, np.broadcast_to(want, leaf.shape))          # [K, ...]
    critic_encoder = moved["critic"]["encoder"]
    for leaf, want in zip(jax.tree.leaves(critic_encoder), jax.tree.leaves(encoder), strict=True):
        assert leaf.shape[:2] == (2, 2)                                            # [K, n_critics, ...]
        np.testing.assert_array_equal(leaf, np.broadcast_to(want, leaf.shape))
    with pytest.raises(ValueError, match="do not fit"):
        agent.with_encoder(straight, {"dense_0": encoder["dense_0"]})

    cfg = tiny_config("sac")
    cfg.agent = ml_collections.ConfigDict(dict(name="sac"))
    assert isinstance(registry.make_agent(cfg, env), sac.SACAgent)
    reg = registry.registration("sac")
    assert reg.lr_keys == ("actor_lr", "critic_lr", "alpha_lr") and reg.action_kinds == ("continuous",)
    assert set(registry.default_config("sac")) == set(sac.section_config())
    with pytest.raises(ValueError, match="needs continuous"):
        registry.make_agent(cfg, make_probe("drift")[0])

    # The policy: deterministic = the env action of tanh(mu) (unbounded spec: UNBOUNDED_SCALE x);
    # stochastic: samples of the tanh-Gaussian, within the same bounds.
    params = jax.tree.map(lambda x: x[0], agent.params(straight))
    obs, _ = env.reset(jax.random.key(0), env_params)
    det = agent.policy(params)
    d, _ = det.dist((), obs)
    np.testing.assert_array_equal(det.act(jax.random.key(1), (), obs)[0], d["mean"])
    sto = agent.policy(params, deterministic=False)
    draws = np.stack([np.asarray(sto.act(jax.random.key(i), (), obs)[0]) for i in range(4)])
    assert np.abs(draws).max() <= 4.0 and not np.allclose(draws[0], draws[1])

"""TD3Agent (and DDPG): exact resume with the buffer, delayed actor and target updates, DDPG's
defaults, devices, the registry, the policy an ensemble reads."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from jaxtrade.agents import offpolicy, registry, td3
from jaxtrade.agents.base import Agent
from jaxtrade.agents.ensemble import ensemble_policy
from jaxtrade.envs.probes import make_probe
from tests.agents.resume import assert_resume_is_bit_identical

from .helpers import make, tiny_config


@pytest.fixture(scope="module")
def drift():
    return make_probe("drift_continuous", episode_length=8)


def test_resume_from_latest_continues_bit_for_bit_with_the_buffer(drift):
    env, env_params = drift
    agent = make("td3", env)
    # 3 calls: 192 transitions written, gradient steps begun; 2 more: the buffer (256) wraps around.
    saved, _, straight_metrics, resumed = assert_resume_is_bit_identical(
        agent, env_params, calls_before=3, calls_after=2)
    assert saved.replay is not None and int(saved.replay.size[0]) == 192
    assert int(straight_metrics[-1]["updates"][0]) == 4 * 4        # 4 a call from the second (128 written)
    assert straight_metrics[-1]["critic_loss"][0] > 0 and not straight_metrics[-1]["any_nonfinite"][0]
    # obs 24 bytes x 2 + action 4 + return, discount 8: 60 bytes a transition
    assert agent.replay_bytes(2) == 60 * 256 * 2
    # Without the buffer: resumed with an empty one.
    light = make("td3", env, save_buffer=False)
    assert light.to_checkpoint(resumed).replay is None


def _batch(env, env_params, n=16):
    obs, _ = jax.vmap(env.reset, in_axes=(0, None))(jax.random.split(jax.random.key(1), n), env_params)
    action = jax.random.uniform(jax.random.key(2), (n, 1), minval=-1, maxval=1)
    ret = jax.random.normal(jax.random.key(3), (n,))
    return offpolicy.Transition(obs, action, ret, jnp.full((n,), 0.9), obs)


def test_td3_delays_actor_and_targets_and_ddpg_does_not(drift):
    """TD3 (policy_delay 2): the first gradient step moves the critics only; the second moves the actor
    and the targets (tau of the way). DDPG (delay 1) moves all three every step. Target smoothing: only
    TD3's critic step depends on the step's key (the noise on the target action)."""
    env, env_params = drift
    batch = _batch(env, env_params)
    def changed(a, b):
        return any(not np.array_equal(x, y)
                   for x, y in zip(jax.tree.leaves(a), jax.tree.leaves(b), strict=True))
    for name, moves_first in (("td3", False), ("ddpg", True)):
        agent = make(name, env, tau=0.5)
        ts = agent.init_train_state(jax.random.key(0), env_params)
        h = agent.hparams
        step = jax.jit(lambda p, t, o, n, k, agent=agent, h=h: agent.grad_step(p, t, o, n, batch, k, h, None))
        (p1, t1, o1, n1), m1 = step(ts.params, ts.target_params, ts.opt_state, ts.updates, jax.random.key(5))
        assert int(n1) == 1 and float(m1["critic_loss"]) > 0
        assert changed(p1["critic"], ts.params["critic"])
        assert changed(p1["actor"], ts.params["actor"]) == moves_first, name
        assert changed(t1, ts.target_params) == moves_first, name
        (q1, _, _, _), _ = step(ts.params, ts.target_params, ts.opt_state, ts.updates, jax.random.key(7))
        assert changed(q1["critic"], p1["critic"]) == (name == "td3"), name
        (p2, t2, _, _), _ = step(p1, t1, o1, n1, jax.random.key(6))
        assert changed(p2["actor"], p1["actor"])
        want = jax.tree.map(lambda p, t: 0.5 * p + 0.5 * t, p2, t1)
        for a, b in zip(jax.tree.leaves(t2), jax.tree.leaves(want), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-7)


def test_four_devices_keep_identical_params(drift):
    env, env_params = drift
    agent = make("td3", env, n_envs=2, learning_starts=16, batch_size=8)
    devices = jax.devices()[:4]
    state = agent.init(3, env_params, devices)
    iterate = agent.make_iteration(devices)
    for _ in range(2):
        state, metrics = iterate(state, env_params)
    assert float(metrics["updates"][0]) > 0 and float(metrics["env_steps"][0]) == 2 * 8 * 4
    assert td3.params_identical_across_devices(state)


def test_protocol_registry_ddpg_defaults_and_the_ensemble_dist(drift):
    env, env_params = drift
    agent = make("td3", env)
    assert isinstance(agent, Agent) and agent.name == "td3"
    assert agent.hparam_names() == ("actor_lr", "critic_lr", "gamma", "tau", "exploration_noise",
                                    "policy_noise", "noise_clip")
    assert agent.static_key(tiny_config("td3")) == agent.hp
    ddpg = td3.ddpg_section_config()
    assert (ddpg.n_critics, ddpg.smooth_targets, ddpg.policy_delay) == (1, False, 1)
    assert set(ddpg) == set(td3.section_config())
    for name, n_critics in (("td3", 2), ("ddpg", 1)):
        cfg = tiny_config(name)
        cfg.agent = ml_collections.ConfigDict(dict(name=name))
        a = registry.make_agent(cfg, env)
        assert isinstance(a, td3.TD3Agent) and a.name == name and a.hp.n_critics == n_critics
        reg = registry.registration(name)
        assert reg.action_kinds == ("continuous",) and reg.lr_keys == ("actor_lr", "critic_lr")
        assert reg.summary
        assert set(registry.default_config(name)) == set(td3.section_config())
        with pytest.raises(ValueError, match="needs continuous"):
            registry.make_agent(cfg, make_probe("drift")[0])
    with pytest.raises(ValueError, match="unknown td3 config key"):
        make("td3", env, clip_eps=0.2)
    with pytest.raises(ValueError, match="model.continuous_dist must be 'gaussian'"):
        cfg = tiny_config("td3")
        cfg.model.continuous_dist = "logistic_normal"
        td3.make(cfg, env)

    params = agent.init_params(jax.random.key(0), env_params)
    assert jax.tree.leaves(params["critic"])[0].shape[0] == 2
    # an actor whose pre-tanh output is far from 0, where tanh matters
    mu_out = params["actor"]["mu"]["out"]
    params = dict(params, actor=dict(params["actor"], mu=dict(params["actor"]["mu"], out=dict(
        mu_out, bias=mu_out["bias"] + 1.5))))
    policy = agent.policy(params)
    obs, _ = env.reset(jax.random.key(0), env_params)
    d, _ = policy.dist(policy.init(), obs)
    action, _ = policy.act(jax.random.key(1), policy.init(), obs)
    mu, _ = agent.actor.apply({"params": params["actor"]}, jax.tree.map(lambda x: x[None], obs))
    assert 0.8 < float(d["mean"][0]) < 1.0
    np.testing.assert_allclose(d["mean"], jnp.tanh(mu[0]), rtol=1e-6)      # bounds [-1, 1]: identity map
    np.testing.assert_array_equal(action, d["mean"])
    assert (np.asarray(d["log_std"]) == offpolicy.DIST_LOG_STD).all()
    # rebuilt from the registry and params alone, as a saved model is
    spec = type("Spec", (), dict(agent="td3", model=agent.model_config, action_spec=agent.action_spec))()
    again = registry.policy_from_spec(spec, params)
    np.testing.assert_array_equal(again.act(jax.random.key(1), (), obs)[0], action)
    # The ensemble's weighted mode: the weighted mean of the members' deterministic actions, and a
    # stochastic draw is one member's deterministic action (the point-mass log_std).
    other = agent.policy(agent.init_params(jax.random.key(9), env_params))
    a_other = np.asarray(other.act(jax.random.key(1), (), obs)[0])
    mixed = ensemble_policy([policy, other], "weighted", action_spec=agent.action_spec,
                            weights=jnp.array([0.25, 0.75]))
    got, _ = mixed.act(jax.random.key(2), mixed.init(), obs)
    np.testing.assert_allclose(got, 0.25 * np.asarray(action) + 0.75 * a_other, rtol=1e-5)
    draw = ensemble_policy([policy, other], "weighted", action_spec=agent.action_spec,
                           weights=jnp.array([0.5, 0.5]), deterministic=False)
    got, _ = draw.act(jax.random.key(3), draw.init(), obs)
    assert min(np.abs(got - action).max(), np.abs(got - a_other).max()) < 1e-6

"""DQNAgent: exact resume through to_checkpoint / from_checkpoint (with and without the buffer), the
device split of collection, the Agent protocol surface, the registry and encoder transplants."""

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pytest

from jaxtrade.agents import dqn, registry, replay
from jaxtrade.agents.base import Agent
from jaxtrade.envs.base import TradingStats
from jaxtrade.envs.probes import make_probe
from jaxtrade.models import make_model
from tests.agents.resume import assert_resume_is_bit_identical, host, round_trip

from .helpers import tiny_config

# 8 envs x 8 steps: 64 transitions a device and iteration; no gradient step before 128 are written.
LEARNING_STARTS = 128


@pytest.fixture(scope="module")
def drift():
    return make_probe("drift", episode_length=8)


@pytest.fixture(scope="module")
def agent(drift):
    return dqn.make(tiny_config(learning_starts=LEARNING_STARTS), drift[0])


def test_resume_from_latest_continues_bit_for_bit(drift, agent):
    env_params = drift[1]
    devices = jax.devices()[:1]
    # 3 calls: 192 transitions written, gradient steps begun; 3 more: the buffer (256) wraps around.
    saved, straight, straight_metrics, resumed = assert_resume_is_bit_identical(
        agent, env_params, calls_before=3, calls_after=3)
    assert saved.replay is not None and int(saved.replay.size[0]) == 192
    assert int(straight_metrics[-1]["updates"][0]) == 5 * 4       # 4 a call from the second (128 written)
    assert agent.replay_bytes(1) == replay.nbytes(straight.replay) - 8         # counters aside
    # 2 x obs (window [4, 1] + state [2]: 24 bytes) + action, return, discount: 60 bytes a transition
    assert agent.replay_bytes(4, members=5) == 60 * 256 * 4 * 5

    # Without the buffer: everything else restored, the buffer empty and refilled before learning resumes.
    light = dqn.make(tiny_config(learning_starts=LEARNING_STARTS, save_buffer=False), drift[0])
    iterate = light.make_iteration(devices)
    saved = round_trip(light.to_checkpoint(resumed))
    assert saved.replay is None
    resumed_light = light.from_checkpoint(light.init(99, env_params, devices), saved)
    np.testing.assert_array_equal(host(resumed_light.train_state.params["q"]["out"]["kernel"]),
                                  host(resumed.train_state.params["q"]["out"]["kernel"]))
    assert int(resumed_light.replay.size[0]) == 0
    resumed_light, metrics = iterate(resumed_light, env_params)       # 64 transitions: no gradient step
    assert float(metrics["updates"][0]) == 20 and float(metrics["q_loss"][0]) == 0.0
    resumed_light, metrics = iterate(resumed_light, env_params)       # 128: learning again
    assert float(metrics["updates"][0]) == 24 and float(metrics["q_loss"][0]) > 0.0
    assert not bool(metrics["any_nonfinite"][0])


def test_four_devices_collect_what_one_device_collects(drift, agent):
    """Collection keys go by global env index: 4 devices x 2 envs write the transitions 1 device x 8
    envs writes (each device its own envs'), and gradients averaged over devices keep every copy of
    the parameters identical."""
    env, env_params = drift
    one = agent.init(5, env_params, jax.devices()[:1])
    one, one_metrics = agent.make_iteration(jax.devices()[:1])(one, env_params)
    four_agent = dqn.make(tiny_config(n_envs=2, learning_starts=16, batch_size=8), env)
    four_iterate = four_agent.make_iteration(jax.devices()[:4])
    four = four_agent.init(5, env_params, jax.devices()[:4])
    four, four_metrics = four_iterate(four, env_params)
    # one device: slot t * 8 + g; four: device d, slot t * 2 + b, g = 2 d + b
    for a, b in zip(jax.tree.leaves(host(one.replay.data)), jax.tree.leaves(host(four.replay.data)),
                    strict=True):
        a = a[0, :64].reshape((8, 8) + a.shape[2:])
        b = np.swapaxes(b[:, :16].reshape((4, 8, 2) + b.shape[2:]), 0, 1).reshape(a.shape)
        np.testing.assert_allclose(a, b, rtol=1e-6, atol=1e-6)
    for name in TradingStats.names() + ("env_steps",):
        np.testing.assert_allclose(four_metrics[name], one_metrics[name][0], rtol=1e-5, atol=1e-6,
                                   err_msg=name)
    four, _ = four_iterate(four, env_params)
    assert float(four_metrics["updates"][0]) > 0 and float(four_metrics["q_loss"][0]) > 0
    assert dqn.params_identical_across_devices(four)


def test_a_population_of_settings_equals_separate_runs_in_one_compile(drift, agent):
    env, env_params = drift
    devices = jax.devices()[:1]
    keys = jax.random.split(jax.random.key(3), 2)
    f32 = jnp.float32
    members = [agent.hparams.replace(lr=f32(1e-3), gamma=f32(0.9)),
               agent.hparams.replace(lr=f32(1e-2), tau=f32(0.5), epsilon_end=f32(0.3))]
    before = agent.compiles
    iterate = agent.make_population_iteration(devices)
    state = agent.init_population(keys, env_params, agent.stack_hparams(members), devices)
    history = []
    for _ in range(3):
        state, metrics = iterate(state, env_params)
        history.append(host(metrics))
    assert agent.compiles == before + 1
    for name in set(TradingStats.names()) | {"env_steps"} | set(agent.diagnostics):
        assert history[-1][name].shape == (1, 2), name
    single = agent.make_iteration(devices)
    finals = []
    for i in range(2):
        run = agent.init(keys[i], env_params, devices, hparams=members[i])
        for it in range(3):
            run, metrics = single(run, env_params)
            for name in ("reward_sum", "q_loss", "epsilon", "lr"):
                np.testing.assert_allclose(history[it][name][0, i], metrics[name][0], rtol=1e-5, atol=1e-7,
                                           err_msg=f"{name} member {i} iteration {it}")
        member = jax.tree.map(lambda x, i=i: x[i], agent.params(state))
        for a, b in zip(jax.tree.leaves(member), jax.tree.leaves(agent.params(run)), strict=True):
            np.testing.assert_allclose(a, b, rtol=1e-5, atol=1e-6)
        finals.append(agent.params(run)["q"]["out"]["kernel"])
    assert not np.allclose(finals[0], finals[1])                        # the members really differ
    np.testing.assert_allclose(history[-1]["epsilon"][0], [0.05, 0.3], rtol=1e-6)
    injected = agent.opt_state(state)["q"].hyperparams["learning_rate"]          # what Adam steps with
    np.testing.assert_allclose(injected, [1e-3, 1e-2], rtol=1e-6)


def test_protocol_registry_and_encoder_transplant(drift, agent):
    env, env_params = drift
    assert isinstance(agent, Agent) and agent.name == "dqn"
    assert agent.hparam_names() == ("lr", "gamma", "tau", "epsilon_start", "epsilon_end")
    assert agent.env_steps_per_iteration(4) == 8 * 8 * 4 and agent.n_envs == 8 and agent.frozen == ()
    assert agent.static_key(tiny_config(learning_starts=LEARNING_STARTS)) == agent.hp
    assert {"q_loss", "epsilon", "grad_norm", "any_nonfinite"} <= set(agent.diagnostics)

    devices = jax.devices()[:1]
    state = agent.init_seeds([1, 2], env_params, devices)
    assert agent.params(state)["q"]["out"]["kernel"].shape[0] == 2
    with pytest.raises(ValueError, match="K=3"):
        agent.init_population(jax.random.split(jax.random.key(0), 3), env_params,
                              agent.stack_hparams([agent.hparams] * 2), devices)

    # The encoder an actor-critic (or supervised pretraining) trains fits the Q network as it is.
    net = make_model(agent.model_config, agent.action_spec)
    obs, _ = env.reset(jax.random.key(0), env_params)
    encoder = net.init(jax.random.key(3), net.initialize_carry(1), jax.tree.map(lambda x: x[None, None], obs),
                       jnp.zeros((1, 1), bool))["params"]["encoder"]
    state = agent.with_encoder(state, encoder)
    for got in (agent.params(state)["encoder"], jax.tree.map(lambda x: x[0], state.train_state.target_params)[
            "encoder"]):
        for a, b in zip(jax.tree.leaves(got), jax.tree.leaves(encoder), strict=True):
            np.testing.assert_array_equal(a[0], b)
            np.testing.assert_array_equal(a[1], b)
    state, metrics = agent.make_population_iteration(devices)(state, env_params)   # donates every buffer
    assert not np.asarray(metrics["any_nonfinite"]).any()

    cfg = tiny_config()
    cfg.agent = ml_collections.ConfigDict(dict(name="dqn"))
    assert isinstance(registry.make_agent(cfg, env), dqn.DQNAgent)
    assert set(registry.default_config("dqn")) == set(dqn.section_config())
    assert {"n_envs", "n_steps"} <= set(registry.default_config("dqn"))
    with pytest.raises(ValueError, match="needs discrete"):
        registry.make_agent(cfg, make_probe("target")[0])
    with pytest.raises(ValueError, match="dqn.buffer_size=32 must hold one iteration"):
        dqn.make(tiny_config(buffer_size=32, batch_size=8, learning_starts=8), env)
    with pytest.raises(ValueError, match="unknown dqn config key"):
        dqn.make(tiny_config(clip_eps=0.2), env)

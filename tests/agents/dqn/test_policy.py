"""The DQN policy rebuilt from (model config, action spec, params) alone; action masks respected."""

import jax
import jax.numpy as jnp
import numpy as np
import pytest

from jaxtrade.agents import dqn
from jaxtrade.envs.base import DiscreteSpec
from jaxtrade.envs.probes import make_probe
from jaxtrade.models import make_model, make_q_network

from .helpers import tiny_config

N_ACTIONS = 5


def _random_obs(key, n):
    """n observations with random features and random masks allowing 1 to 5 of the 5 actions."""
    state_key, mask_key, keep_key = jax.random.split(key, 3)
    mask = jax.random.bernoulli(mask_key, 0.4, (n, N_ACTIONS))
    keep = jax.nn.one_hot(jax.random.randint(keep_key, (n,), 0, N_ACTIONS), N_ACTIONS).astype(bool)
    return {"state": jax.random.normal(state_key, (n, 3)), "window": jnp.zeros((n, 2, 1)),
            "action_mask": mask | keep}


@pytest.mark.parametrize("dueling", [False, True])
def test_policy_from_spec_equals_agent_policy_and_never_takes_a_masked_action(dueling):
    env, _ = make_probe("drift")
    agent = dqn.make(tiny_config(dueling=dueling), env)
    spec = DiscreteSpec(N_ACTIONS, masked=True)
    net = make_q_network(agent.model_config, spec, dueling=dueling)
    obs = _random_obs(jax.random.key(0), 2000)
    params = net.init(jax.random.key(1), obs)["params"]
    assert set(params) == ({"encoder", "core", "q_value", "q_adv"} if dueling else {"encoder", "core", "q"})

    agent.action_spec = spec                         # the agent of a masked 5-action env
    mine = agent.policy(params)
    rebuilt = dqn.policy_from_spec(dict(agent.model_config), spec, jax.device_get(params))
    keys = jax.random.split(jax.random.key(2), 2000)
    act = lambda policy: jax.jit(jax.vmap(lambda k, o: policy.act(k, policy.init(), o)[0]))(keys, obs)
    actions = np.asarray(act(mine))
    np.testing.assert_array_equal(actions, act(rebuilt))
    mask = np.asarray(obs["action_mask"])
    assert mask[np.arange(2000), actions].all()                        # never a masked action
    q = np.asarray(net.apply({"params": params}, obs))
    np.testing.assert_array_equal(actions, np.argmax(np.where(mask, q, -np.inf), axis=1))
    assert (~mask).any(axis=1).mean() > 0.5                             # masks that bind
    assert np.unique(actions).size == N_ACTIONS

    logits, _ = jax.vmap(lambda o: mine.dist(mine.init(), o))(obs)
    logits = np.asarray(logits["logits"])
    assert (np.exp(logits - logits.max(1, keepdims=True))[~mask] == 0).all()   # Boltzmann: masked at 0
    sampled = np.asarray(act(dqn.policy_from_spec(agent.model_config, spec, params, deterministic=False)))
    assert mask[np.arange(2000), sampled].all()


def test_recurrent_cores_run_memoryless_with_the_actor_critic_parameter_tree():
    cfg = tiny_config()
    cfg.model.update(core="gru", n_layers=2)
    spec = DiscreteSpec(3)
    obs = {"state": jnp.ones((4, 2)), "window": jnp.ones((4, 3, 1))}
    q_params = make_q_network(cfg.model, spec).init(jax.random.key(0), obs)["params"]
    ac = make_model(cfg.model, spec)
    ac_params = ac.init(jax.random.key(0), ac.initialize_carry(4), jax.tree.map(lambda x: x[None], obs),
                        jnp.zeros((1, 4), bool))["params"]
    for part in ("encoder", "core"):
        assert jax.tree.map(jnp.shape, q_params[part]) == jax.tree.map(jnp.shape, ac_params[part])
    with pytest.raises(ValueError, match="discrete"):
        make_q_network(cfg.model, make_probe("target")[0].action_spec)

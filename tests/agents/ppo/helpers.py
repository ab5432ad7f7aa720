"""Tiny configs and a jitted rollout shared by the PPO tests."""

import functools

import jax
import jax.numpy as jnp

from jaxtrade.agents import ppo
from jaxtrade.agents.ppo.rollout import rollout


def tiny_config(**ppo_overrides):
    cfg = ppo.default_config()
    cfg.model.update(hidden_dim=8, n_layers=1, encoder_layers=1, dropout=0.0, n_heads=2)
    cfg.ppo.update(n_envs=8, n_steps=8, n_minibatches=2, update_epochs=2, critic_epochs=2)
    cfg.ppo.update(**ppo_overrides)
    return cfg


def tiny_rollout(cfg, env, env_params, key=0):
    """-> (agent, train_state, traj, stats) for one rollout of cfg.ppo.n_envs envs on one device."""
    agent = ppo.make(cfg, env)
    hp, model = agent.hp, agent.model
    init_key, reset_key, run_key = jax.random.split(jax.random.key(key), 3)
    train_state = agent.init_train_state(init_key, env_params)
    obs, env_state = jax.vmap(env.reset, (0, None))(jax.random.split(reset_key, hp.n_envs), env_params)
    hidden = model.initialize_carry(hp.n_envs)
    done = jnp.zeros(hp.n_envs, bool)

    @functools.partial(jax.jit, static_argnames=("n_steps",))
    def run(params, env_state, obs, hidden, done, key, n_steps):
        return rollout(env, model, {"params": params}, env_state, obs, hidden, done, env_params, key,
                       n_steps=n_steps, env_index=jnp.arange(hp.n_envs), discrete=agent.discrete)

    # Two rollouts: the second starts mid-episode with a non-initial core state.
    _, end, _ = run(train_state.params, env_state, obs, hidden, done, run_key, n_steps=3)
    traj, _, stats = run(train_state.params, end.env_state, end.obs, end.hidden, end.done,
                         jax.random.fold_in(run_key, 1), n_steps=hp.n_steps)
    return agent, train_state, traj, stats

"""One A2C iteration on one device's envs: PPO's rollout, n-step / GAE returns, one gradient step.
`A2CAgent` (agent.py) wraps it in the one `jax.pmap` (and, for populations, a `vmap`).

The state is PPO's `Carry` and the randomness is PPO's (agents/ppo/iteration.py docstring): each
iteration splits `Carry.key` into (next, rollout, update); step t of global env g acts and steps with
fold_in(fold_in(rollout, g), t); the update draws nothing (no dropout, no minibatches), so 4
devices x 8 envs == 1 device x 32 envs up to float summation order.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp

from jaxtrade.agents.a2c.config import A2CHParams
from jaxtrade.agents.a2c.returns import advantages_and_targets
from jaxtrade.agents.a2c.update import update
from jaxtrade.agents.ppo.iteration import Carry, explained_variance
from jaxtrade.agents.ppo.optim import Optimizer, make_schedules
from jaxtrade.agents.ppo.rollout import rollout


def train_iteration(carry: Carry, env_params, *, env, model, opt: Optimizer, hp: A2CHParams, discrete: bool,
                    axis_name=None):
    """One iteration on one device's envs -> (Carry, metrics dict of scalars, identical on every device).

    metrics: every `TradingStats` field (summed over the rollout and the devices), env_steps, the
    update's losses and health metrics, explained_variance, and each group's learning rate."""
    first_env = hp.n_envs * (0 if axis_name is None else jax.lax.axis_index(axis_name))
    key, rollout_key, update_key = jax.random.split(carry.key, 3)
    h = carry.hparams
    traj, end, stats = rollout(
        env, model, {"params": carry.train_state.params}, carry.env_state, carry.obs, carry.hidden,
        carry.done, env_params, rollout_key, n_steps=hp.n_steps, discrete=discrete,
        env_index=first_env + jnp.arange(hp.n_envs, dtype=jnp.int32), continuous_dist=hp.continuous_dist,
        bootstrap_truncation=hp.bootstrap_truncation)
    advantages, targets = advantages_and_targets(traj, gamma=h.gamma, lambda_=h.gae_lambda,
                                                 bootstrap=hp.bootstrap_truncation)
    train_state, metrics = update(model, opt, carry.train_state, traj, advantages, targets, update_key,
                                  hp=hp, hparams=h, env_offset=first_env, axis_name=axis_name)

    # One optimizer step per iteration in each group: the schedules' step is the iteration count.
    shapes = make_schedules(hp)
    metrics.update(actor_lr=h.actor_lr * shapes["actor"](train_state.step),
                   critic_lr=h.critic_lr * shapes["critic"](train_state.step),
                   explained_variance=explained_variance(traj.value, targets, axis_name))
    n_devices = 1
    if axis_name is not None:
        n_devices = jax.lax.psum(1, axis_name)
        stats = jax.lax.psum(stats, axis_name)
    metrics.update(stats, env_steps=jnp.asarray(hp.n_steps * hp.n_envs * n_devices, jnp.float32))
    train_state = train_state._replace(step=train_state.step + 1)
    return Carry(train_state, end.env_state, end.obs, end.hidden, end.done, key, h), metrics

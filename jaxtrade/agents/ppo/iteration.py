"""One PPO iteration on one device's envs: rollout + GAE + update, gradients and metrics averaged over
`axis_name`. `PPOAgent` (agent.py) wraps it in the one `jax.pmap` (and, for populations, a `vmap`).

Randomness: one `jax.random.key(seed)`. `PPOAgent.init` splits it into (init, reset, run) keys: `init`
draws the parameters (identical on every device), environment g (global index
device * n_envs + local) resets with fold_in(reset, g), and `run` becomes `Carry.key`, identical on
every device. Each iteration splits `Carry.key` into (next, rollout, update) -- split by iteration and
purpose -- and the per-device split happens by global env index: step t of env g acts and steps with
fold_in(fold_in(rollout, g), t); minibatch membership is drawn per block of envs
(`update.minibatch_indices`); no pass draws dropout masks (`update.update`). Hence 4 devices x 8 envs
== 1 device x 32 envs up to float summation order.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxtrade.agents.ppo.config import PPOHParams, TracedHParams, derived_sizes
from jaxtrade.agents.ppo.gae import bootstrap_truncation, gae
from jaxtrade.agents.ppo.optim import Optimizer, make_schedules
from jaxtrade.agents.ppo.rollout import rollout
from jaxtrade.agents.ppo.update import TrainState, maybe_pmean, update


class Carry(NamedTuple):
    """PPO's agent state: what one iteration hands the next. On the devices every leaf has a leading
    device axis [n_devices, ...]; a population adds [n_devices, K, ...]."""

    train_state: TrainState  # params, opt_state, step (identical on every device)
    env_state: Any           # batched [n_envs, ...]
    obs: Any                 # current observation, leaves [n_envs, ...]
    hidden: Any              # recurrent core state, leaves [n_envs, H]
    done: jax.Array          # bool [n_envs]: the last step ended an episode (resets the core)
    key: jax.Array           # iteration key, identical on every device
    hparams: TracedHParams   # traced hyperparameters (float32 scalars), identical on every device


def explained_variance(value: jax.Array, target: jax.Array, axis_name=None) -> jax.Array:
    """1 - Var(target - value) / Var(target), moments over every device's [T, B] batch."""
    def var(x):
        mean = maybe_pmean(jnp.mean(x), axis_name)
        return maybe_pmean(jnp.mean(jnp.square(x - mean)), axis_name)
    return 1.0 - var(target - value) / (var(target) + 1e-8)


def train_iteration(carry: Carry, env_params, *, env, model, opt: Optimizer, hp: PPOHParams, discrete: bool,
                    axis_name=None):
    """One iteration on one device's envs -> (Carry, metrics dict of scalars, identical on every device)."""
    device = 0 if axis_name is None else jax.lax.axis_index(axis_name)
    env_offset = device * hp.n_envs
    env_index = env_offset + jnp.arange(hp.n_envs, dtype=jnp.int32)
    key, rollout_key, update_key = jax.random.split(carry.key, 3)
    train_state, h = carry.train_state, carry.hparams

    traj, end, stats = rollout(env, model, {"params": train_state.params}, carry.env_state, carry.obs,
                               carry.hidden, carry.done, env_params, rollout_key, n_steps=hp.n_steps,
                               env_index=env_index, discrete=discrete, continuous_dist=hp.continuous_dist,
                               bootstrap_truncation=hp.bootstrap_truncation)
    reward = traj.reward
    if hp.bootstrap_truncation:
        reward = bootstrap_truncation(reward, traj.truncated, traj.final_value, gamma=h.gamma)
    advantages, targets = gae(reward, traj.value, traj.done, traj.last_value, gamma=h.gamma,
                              lambda_=h.gae_lambda)
    train_state, metrics = update(model, opt, train_state, traj, advantages, targets, update_key, hp=hp,
                                  hparams=h, env_offset=env_offset, axis_name=axis_name)

    sizes = derived_sizes(hp)
    shapes = make_schedules(hp)
    metrics["actor_lr"] = h.actor_lr * shapes["actor"](train_state.step * sizes["actor_steps_per_iteration"])
    metrics["critic_lr"] = h.critic_lr * shapes["critic"](
        train_state.step * sizes["critic_steps_per_iteration"])
    metrics["explained_variance"] = explained_variance(traj.value, targets, axis_name)
    n_devices = 1 if axis_name is None else jax.lax.psum(1, axis_name)
    if axis_name is not None:
        stats = jax.lax.psum(stats, axis_name)
    metrics.update(stats)
    metrics["env_steps"] = jnp.asarray(hp.n_steps * hp.n_envs * n_devices, jnp.float32)
    train_state = train_state._replace(step=train_state.step + 1)
    return Carry(train_state, end.env_state, end.obs, end.hidden, end.done, key, h), metrics

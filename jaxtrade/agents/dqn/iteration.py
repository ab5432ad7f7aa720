"""One DQN iteration on one device's envs: collect (epsilon-greedy) -> n-step transitions into this
device's replay buffer -> gradient steps on samples of it, gradients averaged over `axis_name`.
`DQNAgent` (agent.py) wraps it in the one `jax.pmap` (and, for populations, a `vmap`).

Randomness: one `jax.random.key(seed)`. `DQNAgent.init` splits it into (init, reset, run) keys like
PPO: `init` draws the parameters (identical on every device; the target network starts as a copy),
env g (global index device * n_envs + local) resets with fold_in(reset, g), `run` becomes
`Carry.key`, identical on every device. Each iteration splits `Carry.key` into (next, collect,
update): step t of env g acts and steps with fold_in(fold_in(collect, g), t) (`collect.collect`),
so collection is the same whatever the split of envs into devices (4 devices x 8 envs == 1 device x
32 envs). Gradient step u of device d samples its own buffer and draws its dropout masks with
fold_in(fold_in(update, u), d): each device replays its own shard, and the pmean of the gradients
keeps the parameters identical everywhere.

Per iteration: `updates_per_iteration` = round(utd_ratio * n_envs * n_steps) gradient steps, once
the device's buffer holds `learning_starts` transitions (before that none: the iteration only
collects). After every `target_period`-th gradient step, target <- tau * online + (1 - tau) * target.
"""

from __future__ import annotations

from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import optax

from jaxtrade.agents import replay as replay_lib
from jaxtrade.agents.dqn.collect import collect
from jaxtrade.agents.dqn.config import DQNHParams, TracedHParams, derived_sizes, epsilon
from jaxtrade.agents.dqn.losses import q_loss, td_target
from jaxtrade.agents.dqn.optim import TRAINABLE, lr_shape
from jaxtrade.agents.ppo.optim import Optimizer
from jaxtrade.agents.ppo.update import all_finite, maybe_pmean

# Metrics of the gradient steps, means over one iteration's steps (zeros while nothing is learned).
UPDATE_METRICS = ("q_loss", "q_mean", "td_error", "grad_norm")


class TrainState(NamedTuple):
    params: dict             # the online QNetwork's params: encoder, core, q (or q_value, q_adv)
    target_params: dict      # the target network's, same tree
    opt_state: dict          # {group: optax state}, see `dqn.optim`
    step: jax.Array          # int32 training iterations done (the epsilon schedule's clock)
    updates: jax.Array       # int32 gradient steps done (the target period's clock)


class Carry(NamedTuple):
    """DQN's agent state: what one iteration hands the next. On the devices every leaf has a leading
    device axis [n_devices, ...]; a population adds [n_devices, K, ...]."""

    train_state: TrainState        # identical on every device
    env_state: Any                 # batched [n_envs, ...]
    obs: Any                       # current observations, leaves [n_envs, ...]
    replay: replay_lib.Replay      # this device's buffer of `Transition`s (collect.py)
    key: jax.Array                 # iteration key, identical on every device
    hparams: TracedHParams         # traced hyperparameters (float32 scalars), identical on every device


def update(net, opt: Optimizer, train_state: TrainState, replay: replay_lib.Replay, key, *, hp: DQNHParams,
           hparams: TracedHParams, axis_name=None) -> tuple[TrainState, dict]:
    """`updates_per_iteration` gradient steps on samples of `replay` (this device's buffer), or none
    while it holds fewer than `learning_starts` transitions.
    -> (train_state with `step` unchanged, metrics: `UPDATE_METRICS` means and "nonfinite")."""
    sizes = derived_sizes(hp)
    device = 0 if axis_name is None else jax.lax.axis_index(axis_name)
    lrs = {"q": hparams.lr}

    def grad_step(carry, u):
        params, target, opt_state, n_updates = carry
        sample_key, dropout_key = jax.random.split(jax.random.fold_in(jax.random.fold_in(key, u), device))
        batch = replay_lib.sample(replay, sample_key, hp.batch_size)
        q_next = net.apply({"params": params}, batch.next_obs)
        q_next_target = net.apply({"params": target}, batch.next_obs)
        y = td_target(batch.ret, batch.discount, q_next, q_next_target, batch.next_obs, double=hp.double)

        def loss_fn(p):
            q = net.apply({"params": p}, batch.obs, train=True, rngs={"dropout": dropout_key})
            return q_loss(q, batch.action, y, huber_delta=hp.huber_delta)

        (loss, metrics), grads = jax.value_and_grad(loss_fn, has_aux=True)(params)
        grads, loss, metrics = maybe_pmean((grads, loss, metrics), axis_name)
        grad_norm = optax.tree.norm(grads)
        updates, opt_state = opt.update(grads, opt_state, params, lrs, groups=TRAINABLE)
        params = opt.apply(params, updates, groups=TRAINABLE)
        n_updates = n_updates + 1
        sync = (n_updates % hp.target_period) == 0
        tau = jnp.where(sync, hparams.tau, 0.0)
        target = jax.tree.map(lambda p, t: tau * p + (1.0 - tau) * t, params, target)
        metrics = dict(metrics, q_loss=loss, grad_norm=grad_norm,
                       nonfinite=~(jnp.isfinite(loss) & jnp.isfinite(grad_norm)))
        return (params, target, opt_state, n_updates), metrics

    def learn(carry):
        carry, metrics = jax.lax.scan(grad_step, carry, jnp.arange(sizes["updates_per_iteration"]))
        return carry, {k: jnp.mean(v) if k != "nonfinite" else jnp.any(v) for k, v in metrics.items()}

    def wait(carry):
        zeros = {k: jnp.zeros((), jnp.float32) for k in UPDATE_METRICS}
        return carry, dict(zeros, nonfinite=jnp.array(False))

    carry = (train_state.params, train_state.target_params, train_state.opt_state, train_state.updates)
    carry, metrics = jax.lax.cond(replay.size >= sizes["learning_starts"], learn, wait, carry)
    params, target, opt_state, n_updates = carry
    return TrainState(params, target, opt_state, train_state.step, n_updates), metrics


def train_iteration(carry: Carry, env_params, *, env, net, opt: Optimizer, hp: DQNHParams, axis_name=None):
    """One iteration on one device's envs -> (Carry, metrics dict of scalars, identical on every device)."""
    device = 0 if axis_name is None else jax.lax.axis_index(axis_name)
    env_index = device * hp.n_envs + jnp.arange(hp.n_envs, dtype=jnp.int32)
    key, collect_key, update_key = jax.random.split(carry.key, 3)
    train_state, h = carry.train_state, carry.hparams
    eps = epsilon(train_state.step, h, derived_sizes(hp)["epsilon_decay_iterations"])

    transitions, (env_state, obs), stats = collect(
        env, net, train_state.params, carry.env_state, carry.obs, env_params, collect_key, n_steps=hp.n_steps,
        env_index=env_index, epsilon=eps, gamma=h.gamma, n_step=hp.n_step)
    replay = replay_lib.add(carry.replay, transitions)
    train_state, metrics = update(net, opt, train_state, replay, update_key, hp=hp, hparams=h,
                                  axis_name=axis_name)

    metrics["any_nonfinite"] = metrics.pop("nonfinite") | ~all_finite(train_state.params)
    metrics["epsilon"] = eps
    metrics["lr"] = h.lr * lr_shape(hp)(train_state.updates)
    metrics["buffer_size"] = replay.size.astype(jnp.float32)       # this device's (equal on every device)
    metrics["updates"] = train_state.updates.astype(jnp.float32)
    n_devices = 1 if axis_name is None else jax.lax.psum(1, axis_name)
    if axis_name is not None:
        stats = jax.lax.psum(stats, axis_name)
    metrics.update(stats)
    metrics["env_steps"] = jnp.asarray(hp.n_steps * hp.n_envs * n_devices, jnp.float32)
    train_state = train_state._replace(step=train_state.step + 1)
    return Carry(train_state, env_state, obs, replay, key, h), metrics

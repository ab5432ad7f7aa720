"""The one `jax.pmap`: rollout + GAE + update per device, gradients and metrics averaged over devices.

Device bookkeeping lives in `jaxtrade.agents.devices`: `init_carry` lays the state out with a leading
device axis there, and `params_identical_across_devices` checks that the replicas never drifted.

Randomness: one `jax.random.key(seed)`. `init_carry` splits it into (init, reset, run) keys: `init`
draws the parameters (identical on every device), environment g (global index
device * n_envs + local) resets with fold_in(reset, g), and `run` becomes `Carry.key`, identical on
every device. Each iteration splits `Carry.key` into (next, rollout, update) -- split by iteration and
purpose -- and the per-device split happens by global env index: step t of env g acts and steps with
fold_in(fold_in(rollout, g), t); its dropout masks use fold_in(minibatch key, g); minibatch membership
is drawn per block of envs (`update.minibatch_indices`). Hence 4 devices x 8 envs == 1 device x 32
envs up to float summation order.
"""

from __future__ import annotations

import functools
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp

from jaxtrade.agents.devices import AXIS, identical_across_devices, put_sharded, select_devices
from jaxtrade.agents.ppo.config import PPOHParams, derived_sizes, make_model
from jaxtrade.agents.ppo.gae import bootstrap_truncation, gae
from jaxtrade.agents.ppo.optim import make_optimizer, make_schedules
from jaxtrade.agents.ppo.rollout import rollout
from jaxtrade.agents.ppo.update import TrainState, maybe_pmean, update


class Carry(NamedTuple):
    """What one iteration hands the next. Under pmap every leaf has a leading device axis."""

    train_state: TrainState  # params, opt_state, step (identical on every device)
    env_state: Any           # batched [n_envs, ...]
    obs: Any                 # current observation, leaves [n_envs, ...]
    hidden: Any              # recurrent core state, leaves [n_envs, H]
    done: jax.Array          # bool [n_envs]: the last step ended an episode (resets the core)
    key: jax.Array           # iteration key, identical on every device


def explained_variance(value: jax.Array, target: jax.Array, axis_name=None) -> jax.Array:
    """1 - Var(target - value) / Var(target), moments over every device's [T, B] batch."""
    def var(x):
        mean = maybe_pmean(jnp.mean(x), axis_name)
        return maybe_pmean(jnp.mean(jnp.square(x - mean)), axis_name)
    return 1.0 - var(target - value) / (var(target) + 1e-8)


def train_iteration(carry: Carry, env_params, *, env, model, tx, hp: PPOHParams, axis_name=None):
    """One iteration on one device's envs -> (Carry, metrics dict of scalars, identical on every device)."""
    device = 0 if axis_name is None else jax.lax.axis_index(axis_name)
    env_offset = device * hp.n_envs
    env_index = env_offset + jnp.arange(hp.n_envs, dtype=jnp.int32)
    key, rollout_key, update_key = jax.random.split(carry.key, 3)
    train_state = carry.train_state

    traj, end, stats = rollout(env, model, {"params": train_state.params}, carry.env_state, carry.obs,
                               carry.hidden, carry.done, env_params, rollout_key, n_steps=hp.n_steps,
                               env_index=env_index, continuous_dist=hp.continuous_dist,
                               bootstrap_truncation=hp.bootstrap_truncation)
    reward = traj.reward
    if hp.bootstrap_truncation:
        reward = bootstrap_truncation(reward, traj.truncated, traj.final_value, gamma=hp.gamma)
    advantages, targets = gae(reward, traj.value, traj.done, traj.last_value, gamma=hp.gamma,
                              lambda_=hp.gae_lambda)
    train_state, metrics = update(model, tx, train_state, traj, advantages, targets, update_key, hp=hp,
                                  env_offset=env_offset, axis_name=axis_name)

    sizes = derived_sizes(hp)
    schedules = make_schedules(hp)
    metrics["actor_lr"] = schedules["actor"](train_state.step * sizes["actor_steps_per_iteration"])
    metrics["critic_lr"] = schedules["critic"](train_state.step * sizes["critic_steps_per_iteration"])
    metrics["explained_variance"] = explained_variance(traj.value, targets, axis_name)
    n_devices = 1 if axis_name is None else jax.lax.psum(1, axis_name)
    if axis_name is not None:
        stats = jax.lax.psum(stats, axis_name)
    metrics.update(stats)
    metrics["env_steps"] = jnp.asarray(hp.n_steps * hp.n_envs * n_devices, jnp.float32)
    train_state = train_state._replace(step=train_state.step + 1)
    return Carry(train_state, end.env_state, end.obs, end.hidden, end.done, key), metrics


def make_train_iteration(config, env, devices=None):
    """-> pmapped fn(carry, env_params) -> (carry, metrics).

    carry: from `init_carry` (leading device axis; donated). env_params: broadcast to every device.
    metrics: dict of arrays [n_devices] (identical across devices), or [n_devices, k] when
    ppo.iterations_per_call = k > 1 (k iterations lax.scan-ed inside one call). devices: default all
    local devices; must match the carry's leading axis.
    """
    hp = PPOHParams.from_config(config)
    model = make_model(config, env)
    tx = make_optimizer(hp)
    step = functools.partial(train_iteration, env=env, model=model, tx=tx, hp=hp, axis_name=AXIS)
    if hp.iterations_per_call > 1:
        def fn(carry, env_params):
            return jax.lax.scan(lambda c, _: step(c, env_params), carry, None, length=hp.iterations_per_call)
    else:
        fn = step
    return jax.pmap(fn, axis_name=AXIS, in_axes=(0, None), donate_argnums=0,
                    devices=None if devices is None else list(devices))


def params_identical_across_devices(carry: Carry) -> bool:
    """True if params and optimizer state are bit-identical on every device."""
    return identical_across_devices((carry.train_state.params, carry.train_state.opt_state))


def init_train_state(config, env, env_params, key) -> TrainState:
    """Unreplicated TrainState: parameters drawn from `key`, fresh optimizer state, step 0."""
    hp = PPOHParams.from_config(config)
    model = make_model(config, env)
    obs, _ = env.reset(jax.random.key(0), env_params)
    obs = jax.tree.map(lambda x: jnp.asarray(x)[None, None], obs)              # [T=1, B=1, ...]
    params = model.init(key, model.initialize_carry(1), obs, jnp.zeros((1, 1), bool))["params"]
    return TrainState(params, make_optimizer(hp).init(params), jnp.zeros((), jnp.int32))


def init_carry(config, env, env_params, key=None, n_devices: int | None = None, devices=None) -> Carry:
    """Carry with a leading device axis (n_devices default: all local devices), placed on the devices.

    key: a jax.random.key, an int seed, or None for jax.random.key(config.seed).
    """
    hp = PPOHParams.from_config(config)
    devices = select_devices(n_devices, devices)
    n_dev = len(devices)
    if key is None:
        key = jax.random.key(config.seed)
    elif isinstance(key, int):
        key = jax.random.key(key)
    n_global = n_dev * hp.n_envs

    @jax.jit  # one compile instead of dozens of eager ones
    def build(key, env_params):
        init_key, reset_key, run_key = jax.random.split(key, 3)
        train_state = init_train_state(config, env, env_params, init_key)
        # Global env indices; on multi-host runs each process holds the next block of them.
        first = jax.process_index() * n_global
        reset_keys = jax.vmap(jax.random.fold_in, (None, 0))(reset_key, first + jnp.arange(n_global))
        obs, env_state = jax.vmap(env.reset, in_axes=(0, None))(reset_keys, env_params)
        hidden = make_model(config, env).initialize_carry(n_global)
        per_device = lambda x: x.reshape((n_dev, hp.n_envs) + x.shape[1:])
        env_state, obs, hidden = jax.tree.map(per_device, (env_state, obs, hidden))
        done = jnp.zeros((n_dev, hp.n_envs), bool)
        stack = lambda x: jnp.broadcast_to(x, (n_dev,) + jnp.shape(x))
        return Carry(jax.tree.map(stack, train_state), env_state, obs, hidden, done, stack(run_key))

    carry = build(key, env_params)
    return put_sharded(carry, devices)

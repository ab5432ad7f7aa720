"""DQN's targets and loss: n-step returns that respect episode ends, the (double) Q target with
action masks, and the Huber TD loss.

n-step returns (time-major [T, B], one iteration's collection):
1. The transition from step t sums up to n rewards r_t + gamma r_{t+1} + ... and stops early at the
   first step that ends the episode (done) and at the collection's last step T-1; `last` is the
   index of the last reward summed and m = last - t + 1 the number of rewards.
2. It bootstraps from the observation after step `last` (for an episode ended by the time limit,
   the episode's final observation `info["final_obs"]`, not the next episode's first) with
   discount gamma^m, except where step `last` terminated the episode (ruin, or a probe's end):
   discount 0. A truncated episode is therefore bootstrapped, a terminated one is not.
3. Cutting at the collection's end keeps every transition of an iteration in that iteration (no
   transitions carried over between calls); those near the end use fewer than n rewards, the
   same target with a shorter horizon.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import optax

from jaxtrade.models import mask_q


def nstep_returns(reward, done, terminated, *, gamma, n: int):
    """reward, done, terminated [T, B] (done: the step ended the episode; terminated: it ended it
    without a bootstrap) -> (ret [T, B] float32, discount [T, B] float32, last [T, B] int32): the
    module docstring's n-step return of the transition from each step, the discount of its
    bootstrap value, and the index of the step whose next observation it bootstraps from."""
    T = reward.shape[0]
    t = jnp.arange(T, dtype=jnp.int32)[:, None]
    ret = jnp.zeros(reward.shape, jnp.float32)
    scale = jnp.ones(reward.shape, jnp.float32)       # gamma^k while the window is open
    open_ = jnp.ones(reward.shape, bool)
    last = jnp.broadcast_to(t, reward.shape)
    for k in range(n):
        j = jnp.minimum(t + k, T - 1)
        take = open_ & (t + k < T)
        r_j = jnp.take_along_axis(reward, jnp.broadcast_to(j, reward.shape), axis=0)
        d_j = jnp.take_along_axis(done, jnp.broadcast_to(j, reward.shape), axis=0)
        ret = ret + jnp.where(take, scale * r_j, 0.0)
        last = jnp.where(take, j, last)
        scale = jnp.where(take, scale * gamma, scale)
        open_ = take & ~d_j
    ended = jnp.take_along_axis(terminated, last, axis=0)
    return ret, jnp.where(ended, 0.0, scale), last.astype(jnp.int32)


def td_target(ret, discount, q_next_online, q_next_target, next_obs, *, double: bool):
    """ret, discount [B]; Q of the next observations [B, A] from the online and the target network ->
    ret + discount * V(next), no gradient. V(next) is the target network's value of the online
    network's masked argmax (double DQN) or the target network's masked maximum."""
    q_target = mask_q(q_next_target, next_obs)
    if double:
        best = jnp.argmax(mask_q(q_next_online, next_obs), axis=-1)
        value = jnp.take_along_axis(q_target, best[:, None], axis=-1)[:, 0]
    else:
        value = jnp.max(q_target, axis=-1)
    return jax.lax.stop_gradient(ret + discount * value)


def q_loss(q, action, target, *, huber_delta) -> tuple[jax.Array, dict]:
    """q [B, A], action int32 [B], target [B] -> (mean Huber(Q(s, a) - target), metrics)."""
    q_a = jnp.take_along_axis(q, action[:, None].astype(jnp.int32), axis=-1)[:, 0]
    loss = jnp.mean(optax.huber_loss(q_a, target, delta=huber_delta))
    return loss, {"q_mean": jnp.mean(q_a), "td_error": jnp.mean(jnp.abs(target - q_a))}

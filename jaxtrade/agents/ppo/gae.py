"""Generalized advantage estimation, with the truncation bootstrap applied to rewards beforehand."""

from __future__ import annotations

import jax
import jax.numpy as jnp


def bootstrap_truncation(reward: jax.Array, truncated: jax.Array, final_value: jax.Array, *,
                         gamma: float) -> jax.Array:
    """reward [T, B] + gamma * V(final_obs) [T, B] where the episode was truncated (time limit)."""
    return reward + gamma * jnp.where(truncated, final_value, 0.0)


def gae(reward: jax.Array, value: jax.Array, done: jax.Array, last_value: jax.Array, *,
        gamma: float, lambda_: float) -> tuple[jax.Array, jax.Array]:
    """Advantages and value targets, both [T, B] float32.

    reward, value, done: [T, B] time-major (done[t]: the episode ended with step t's transition);
    last_value: [B], V of the observation after the last step. No bootstrap across `done`.
    """
    def body(carry, x):
        adv_next, value_next = carry
        reward_t, value_t, done_t = x
        nonterminal = 1.0 - done_t.astype(jnp.float32)
        delta = reward_t + gamma * value_next * nonterminal - value_t
        adv_t = delta + gamma * lambda_ * nonterminal * adv_next
        return (adv_t, value_t), adv_t

    init = (jnp.zeros_like(last_value), last_value)
    _, advantages = jax.lax.scan(body, init, (reward, value, done), reverse=True)
    return advantages, advantages + value

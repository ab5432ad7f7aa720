"""The A2C loss: policy gradient with a fixed advantage, entropy bonus, squared-error critic.

All inputs are [T, B] (or [T, B, A] for continuous actions); outputs are means over T and B. The
coefficients are Python numbers or traced scalars (`A2CTracedHParams` leaves).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def a2c_loss(dist, value, action, advantage, target, *, ent_coef, vf_coef) -> tuple[jax.Array, dict]:
    """-> (policy_loss - ent_coef * entropy + vf_coef * value_loss, metrics), where

        policy_loss = -mean(log pi(action) * stop_gradient(advantage))
        value_loss  = 0.5 * mean((V - target)^2)
        entropy     = mean(H(pi))

    No ratio and no clipping: the rollout's policy is the one being differentiated (one gradient step
    per rollout), so the gradient is the plain policy gradient. `advantage` is used as given
    (normalize beforehand if wanted); neither it nor `target` carries gradient.
    metrics: policy_loss, value_loss, entropy (scalars).
    """
    advantage = jax.lax.stop_gradient(advantage)
    target = jax.lax.stop_gradient(target)
    policy_loss = -jnp.mean(dist.log_prob(action) * advantage)
    value_loss = 0.5 * jnp.mean(jnp.square(value - target))
    entropy = jnp.mean(dist.entropy())
    loss = policy_loss - ent_coef * entropy + vf_coef * value_loss
    return loss, {"policy_loss": policy_loss, "value_loss": value_loss, "entropy": entropy}

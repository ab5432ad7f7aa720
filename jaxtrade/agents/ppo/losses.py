"""PPO losses: clipped surrogate, clipped value loss, entropy bonus, and their diagnostics.

All inputs are [T, B] (or [T, B, A] for continuous actions); outputs are means over T and B. The
coefficients are Python numbers or traced scalars (`TracedHParams` leaves).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def value_loss(value, old_value, target, *, vf_clip) -> jax.Array:
    """0.5 * mean(max((v - R)^2, (clip(v, v_old +- vf_clip) - R)^2)); plain MSE/2 when vf_clip <= 0.

    vf_clip: a Python number or a traced scalar (then both losses are computed and one selected).
    """
    unclipped = jnp.square(value - target)
    if isinstance(vf_clip, int | float) and vf_clip <= 0:
        return 0.5 * jnp.mean(unclipped)
    clipped_value = old_value + jnp.clip(value - old_value, -vf_clip, vf_clip)
    clipped = jnp.maximum(unclipped, jnp.square(clipped_value - target))
    return 0.5 * jnp.mean(jnp.where(vf_clip > 0, clipped, unclipped))


def ppo_loss(dist, value, action, old_log_prob, old_value, advantage, target, *, clip_eps, vf_clip,
             ent_coef, vf_coef) -> tuple[jax.Array, dict]:
    """-> (policy_loss - ent_coef * entropy + vf_coef * value_loss, metrics).

    `advantage` is used as given (normalize beforehand). approx_kl is the (ratio - 1) - log ratio
    estimator of KL(old || new); clip_frac the share of ratios outside 1 +- clip_eps.
    """
    log_prob = dist.log_prob(action)
    log_ratio = log_prob - old_log_prob
    ratio = jnp.exp(log_ratio)
    surrogate = jnp.minimum(ratio * advantage, jnp.clip(ratio, 1.0 - clip_eps, 1.0 + clip_eps) * advantage)
    policy_loss = -jnp.mean(surrogate)
    entropy = jnp.mean(dist.entropy())
    v_loss = value_loss(value, old_value, target, vf_clip=vf_clip)
    loss = policy_loss - ent_coef * entropy + vf_coef * v_loss
    metrics = {"policy_loss": policy_loss, "value_loss": v_loss, "entropy": entropy,
               "approx_kl": jnp.mean((ratio - 1.0) - log_ratio),
               "clip_frac": jnp.mean((jnp.abs(ratio - 1.0) > clip_eps).astype(jnp.float32))}
    return loss, metrics

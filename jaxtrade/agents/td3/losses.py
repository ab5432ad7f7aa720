"""TD3's (and DDPG's) targets and losses; the critics' loss is `offpolicy.critic_loss`.

1. Target policy smoothing: a' = clip(tanh(mu_target(s')) + clip(policy_noise * eps, -c, c), -1, 1).
2. Clipped double Q: y = ret + discount * min_i Q_target_i(s', a') (one critic: DDPG's plain target).
3. Actor: maximize the first critic's Q(s, tanh(mu(s))).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def target_action(action, eps, *, policy_noise, noise_clip):
    """action [B, A] in [-1, 1] (the target actor's), eps [B, A] ~ N(0, 1) -> smoothed a' [B, A]."""
    noise = jnp.clip(policy_noise * eps, -noise_clip, noise_clip)
    return jnp.clip(action + noise, -1.0, 1.0)


def twin_target(ret, discount, q_next):
    """ret, discount [B]; q_next [n_critics, B] (target critics at (s', a')) -> y [B], no gradient."""
    return jax.lax.stop_gradient(ret + discount * jnp.min(q_next, axis=0))


def actor_loss(q):
    """q [n_critics, B] of (s, tanh(mu(s))) -> -mean of the first critic's."""
    return -jnp.mean(q[0])

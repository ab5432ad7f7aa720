"""SAC's targets and losses (Haarnoja et al. 2018, with the automatic temperature); the critics' loss is
`offpolicy.critic_loss`, the tanh-Gaussian `offpolicy.tanh_gaussian`.

1. Soft target: y = ret + discount * (min_i Q_target_i(s', a') - alpha * log pi(a' | s')), a' ~ pi(s').
2. Actor: mean(alpha * log pi(a | s) - min_i Q_i(s, a)), a ~ pi(s) reparameterized.
3. Temperature: mean(-log_alpha * (log pi(a | s) + target_entropy)), log pi without gradient: alpha
   grows while the policy's entropy is below the target and shrinks while above. (The gradient in
   log alpha has the sign of alpha's own; learning log alpha keeps alpha > 0.)
"""

from __future__ import annotations

import jax
import jax.numpy as jnp


def soft_target(ret, discount, q_next, logp_next, alpha):
    """ret, discount, logp_next [B]; q_next [n_critics, B]; alpha scalar -> y [B], no gradient."""
    return jax.lax.stop_gradient(ret + discount * (jnp.min(q_next, axis=0) - alpha * logp_next))


def actor_loss(q, logp, alpha):
    """q [n_critics, B] of (s, a ~ pi), logp [B], alpha scalar (no gradient) -> scalar."""
    return jnp.mean(jax.lax.stop_gradient(alpha) * logp - jnp.min(q, axis=0))


def temperature_loss(log_alpha, logp, target_entropy):
    """log_alpha scalar, logp [B] (no gradient), target_entropy scalar -> scalar."""
    return -jnp.mean(log_alpha * jax.lax.stop_gradient(logp + target_entropy))

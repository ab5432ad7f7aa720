"""Reward models: pure functions of the portfolio value before and after one step.

The default reward is the net log return log(V_{t+1} / V_t), where V_t is the value at close[t]
before trading and V_{t+1} the value at close[t+1] after paying the step's costs, so costs are
already inside it. Every other term is off by default (weight 0) and is added on top:

    reward = scale * (w_log * log_return - cost_penalty * costs / V_t
                      + w_dsr * differential_sharpe - drawdown_penalty * drawdown_{t+1}
                      + w_value * (V_{t+1} - V_t))
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class RewardParams:
    log_return_weight: float = 1.0   # weight of the net log return
    cost_penalty: float = 0.0        # extra penalty per unit of costs / V_t (on top of the net log return)
    dsr_weight: float = 0.0          # weight of the differential Sharpe ratio (Moody & Saffell 1998)
    dsr_eta: float = 0.01            # EMA rate of the DSR's running moments
    drawdown_penalty: float = 0.0    # penalty per unit of drawdown (1 - V / running peak) after the step
    reward_scale: float = 1.0        # multiplies the whole reward
    value_change_weight: float = 0.0  # weight of V_{t+1} - V_t in quote currency (Yang et al. 2020: 1e-4)


@struct.dataclass
class RewardState:
    """Running statistics the shaped rewards need; all float32 scalars."""

    dsr_a: jax.Array   # EMA of returns
    dsr_b: jax.Array   # EMA of squared returns
    peak: jax.Array    # running peak of the value this episode, quote currency


def init_reward_state(value: jax.Array) -> RewardState:
    dtype = jnp.asarray(value).dtype     # float32, or float64 for float64 books (x64)
    zero = jnp.zeros((), dtype)
    return RewardState(dsr_a=zero, dsr_b=zero, peak=jnp.asarray(value, dtype))   # a strong dtype


def log_return(value_prev: jax.Array, value_next: jax.Array) -> jax.Array:
    """Net log return of one step; a wipe-out (value_next <= 0) scores log(1e-8) instead of NaN."""
    return jnp.log(jnp.maximum(value_next / value_prev, 1e-8))


def cost_penalty(costs: jax.Array, value_prev: jax.Array, multiplier: jax.Array) -> jax.Array:
    """Penalty for costs paid, as a fraction of the value before the step, times `multiplier` (>= 0)."""
    return multiplier * costs / value_prev


def differential_sharpe(r: jax.Array, a: jax.Array, b: jax.Array, eta: jax.Array
                        ) -> tuple[jax.Array, jax.Array, jax.Array]:
    """Differential Sharpe ratio of return `r` given EMAs `a` (of r) and `b` (of r^2).

    D = (b * dA - a * dB / 2) / (b - a^2)^(3/2), dA = r - a, dB = r^2 - b. Returns (D, a', b').
    D is 0 until the running variance is positive, which avoids the blow-up at an episode's start.
    """
    da, db = r - a, r * r - b
    var = b - a * a
    ok = var > 1e-12
    d = jnp.where(ok, (b * da - 0.5 * a * db) / jnp.where(ok, var, 1.0) ** 1.5, 0.0)
    return d, a + eta * da, b + eta * db


def drawdown(value: jax.Array, peak: jax.Array) -> tuple[jax.Array, jax.Array]:
    """Drawdown 1 - value / peak' in [0, 1) and the updated running peak."""
    peak = jnp.maximum(peak, value)
    return 1.0 - value / peak, peak


def reward(value_prev: jax.Array, value_next: jax.Array, costs: jax.Array, state: RewardState,
           p: RewardParams) -> tuple[jax.Array, RewardState]:
    """One step's reward (float32 scalar) and the updated running statistics."""
    r = log_return(value_prev, value_next)
    dsr, a, b = differential_sharpe(r, state.dsr_a, state.dsr_b, p.dsr_eta)
    dd, peak = drawdown(value_next, state.peak)
    total = (p.log_return_weight * r - cost_penalty(costs, value_prev, p.cost_penalty)
             + p.dsr_weight * dsr - p.drawdown_penalty * dd
             + p.value_change_weight * (value_next - value_prev))
    return p.reward_scale * total, RewardState(dsr_a=a, dsr_b=b, peak=peak)

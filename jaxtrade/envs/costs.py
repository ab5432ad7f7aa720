"""Transaction cost models: pure, elementwise functions of one step's trades.

Conventions shared by every function here:
- `shares`: float32 [N] signed units traded (> 0 buys, < 0 sells).
- `value`: float32 [N] signed traded value in quote currency (`shares * price`).
- Every cost is returned per asset, float32 [N], in quote currency, >= 0, exactly 0 where nothing
  is traded, and non-decreasing in |trade| (the tests pin all three).
- Every model is switched off by setting its coefficient to 0.

`total_cost` sums them; environments call it, tests and the numpy reference call the parts.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

BPS = 1e-4


@struct.dataclass
class CostParams:
    """Coefficients of every cost model (each 0 = off). Units in the field comments.

    The defaults model a liquid US equity traded through a zero-commission broker: 2 bps spread,
    up to 5 bps adverse slippage, square-root impact and the regulatory fees on sells.
    """

    commission_bps: float = 0.0          # bps of |traded value|
    commission_per_share: float = 0.0    # quote currency per share traded
    spread_bps: float = 2.0              # cost of crossing the spread, bps of |traded value|
    spread_abs: float = 0.0              # explicit quoted spread, price units: pay half per share
    slippage_bps: float = 5.0            # adverse slippage ~ uniform[0, slippage_bps] bps of |value|
    impact_coef: float = 0.01            # value model: rate = coef * sqrt(|value| / portfolio value)
    impact_k: float = 0.5                # volume model: rate = k * sigma * sqrt(|shares| / ADV)
    sec_fee_rate: float = 27.8e-6        # SEC Section 31 fee, per unit of currency sold
    finra_taf_per_share: float = 0.000166  # FINRA trading activity fee per share sold ...
    finra_taf_cap: float = 8.30          # ... capped per trade (per asset and step)
    # static: the volume impact model replaces the value model; None: `make` switches it on when
    # the data has volume (params built by `make` always hold a bool)
    volume_impact: bool | None = struct.field(pytree_node=False, default=None)
    # static: rows t-adv_window .. t-1 give the volume model's average volume (ADV); needs
    # adv_window <= EnvData.start, so the first traded row has a full window of history
    adv_window: int = struct.field(pytree_node=False, default=30)


def commission(value: jax.Array, shares: jax.Array, p: CostParams) -> jax.Array:
    """Broker commission [N]: bps of traded value plus a per-share fee."""
    return p.commission_bps * BPS * jnp.abs(value) + p.commission_per_share * jnp.abs(shares)


def spread(value: jax.Array, shares: jax.Array, p: CostParams) -> jax.Array:
    """Bid-ask spread [N]: `spread_bps` of traded value, plus half of an explicit spread per share."""
    return p.spread_bps * BPS * jnp.abs(value) + 0.5 * p.spread_abs * jnp.abs(shares)


def slippage(u: jax.Array, value: jax.Array, p: CostParams) -> jax.Array:
    """Adverse slippage [N] given `u` ~ uniform[0, 1) [N] (drawn from the step's key by the caller).

    Taking the draw rather than the key lets one step price the same trade twice consistently.
    """
    return u * p.slippage_bps * BPS * jnp.abs(value)


def value_impact(value: jax.Array, portfolio_value: jax.Array, p: CostParams) -> jax.Array:
    """Square-root impact without volume data [N]: |value| * coef * sqrt(|value| / portfolio value)."""
    a = jnp.abs(value)
    return p.impact_coef * a * jnp.sqrt(a / portfolio_value)


def volume_impact(value: jax.Array, shares: jax.Array, sigma: jax.Array, adv: jax.Array,
                  p: CostParams) -> jax.Array:
    """Square-root impact with volume data [N]: |value| * k * sigma * sqrt(|shares| / ADV).

    sigma: [N] per-row volatility of log returns; adv: [N] average shares traded per row (> 0).
    """
    return p.impact_k * sigma * jnp.abs(value) * jnp.sqrt(jnp.abs(shares) / adv)


def regulatory_fees(value: jax.Array, shares: jax.Array, p: CostParams) -> jax.Array:
    """SEC fee and capped FINRA TAF [N], charged on sells only."""
    sold = shares < 0
    taf = jnp.minimum(p.finra_taf_per_share * jnp.abs(shares), p.finra_taf_cap)
    return jnp.where(sold, p.sec_fee_rate * jnp.abs(value) + taf, 0.0)


def total_cost(u: jax.Array, shares: jax.Array, price: jax.Array, portfolio_value: jax.Array,
               p: CostParams, sigma: jax.Array | None = None, adv: jax.Array | None = None
               ) -> jax.Array:
    """Every cost of trading `shares` [N] at `price` [N], per asset [N], quote currency.

    u: [N] uniform[0, 1) draws for slippage; portfolio_value: scalar value before the trade
    (for the value impact model); sigma, adv: [N], needed only when `p.volume_impact`.
    """
    value = shares * price
    cost = commission(value, shares, p) + spread(value, shares, p) + slippage(u, value, p)
    cost = cost + regulatory_fees(value, shares, p)
    if p.volume_impact:
        cost = cost + volume_impact(value, shares, sigma, adv, p)
    else:
        cost = cost + value_impact(value, portfolio_value, p)
    return cost

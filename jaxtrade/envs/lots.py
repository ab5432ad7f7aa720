"""FX position sizing in lots, and the FX costs quoted per lot and in pips: the `lots` param group of
the `single` environment (`env.lots`).

With `env.lots.enabled` (static), a step of `single` does, on top of the market core's contract:

1. Sizing. The target position (a fraction of equity) becomes base-currency units, then lots of
   `contract_size` units rounded to the nearest `lot_step`, clipped to `max_lots`; a position under
   `min_lots` is flat. Where the cash floor scales a buy down (no leverage), the scaled position is
   rounded down to a whole `lot_step` again, so cash stays >= 0.
2. Costs (on top of `env.costs`): half of `spread_pips` (the full quoted spread, as every spread
   parameter of `jaxtrade.envs.costs`) per unit of every fill, and `commission_per_lot` (quote
   currency) per lot of every fill, each side.
3. Swap: a position held from bar t to bar t+1 earns `swap_long_pips` (long) or `swap_short_pips`
   (short) per lot for every FX rollover between the two bars (`EnvData.rollover`, counted on the
   host by `jaxtrade.data.dates.rollover_days`): intraday, every 17:00 New York time crossed (22:00
   UTC in winter, 21:00 UTC in US summer time; not UTC midnight); daily, every calendar day between
   the two dates. Friday's last bar to the Sunday open (or Friday to Monday, daily) is three nights,
   so weekend gaps are charged the nights they span (brokers book the weekend's triple swap on
   Wednesday: the same total, a few days apart). Negative = paid, the MT5 convention. Swap moves
   cash at the bar after the rollover.

A pip's value is `pip_size * contract_size` per lot in quote currency (EUR/USD: 0.0001 x 100,000 =
$10). Every number is a float32 pytree leaf, so settings can be vmapped; `enabled` is static.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct


@struct.dataclass
class LotParams:
    """FX contract, lot and per-lot cost settings (see the module docstring). Units in the comments."""

    enabled: bool = struct.field(pytree_node=False, default=False)
    contract_size: float = 100_000.0  # base-currency units per lot
    lot_step: float = 0.01  # lots: positions are whole multiples of this
    min_lots: float = 0.01  # lots: a smaller position is flat
    max_lots: float = 100.0  # lots: |position| is clipped to this
    pip_size: float = 0.0001  # price units of one pip (0.01 for JPY pairs, gold)
    spread_pips: float = 0.0  # full quoted spread: each fill pays half of it per unit
    commission_per_lot: float = 0.0  # quote currency per lot traded, each side
    swap_long_pips: float = 0.0  # pips per lot per night held long (negative = paid)
    swap_short_pips: float = 0.0  # pips per lot per night held short (negative = paid)

    @property
    def pip_value(self):
        """Quote currency per pip per lot."""
        return self.pip_size * self.contract_size


COST_KEYS = ("spread_pips", "commission_per_lot", "swap_long_pips", "swap_short_pips")


def check(p: LotParams) -> None:
    """ValueError naming the `env.lots` key and its constraint."""
    f = {
        k: float(getattr(p, k))
        for k in (
            "contract_size",
            "lot_step",
            "min_lots",
            "max_lots",
            "pip_size",
            "spread_pips",
            "commission_per_lot",
        )
    }
    for k in ("contract_size", "lot_step", "pip_size"):
        if not f[k] > 0:
            raise ValueError(f"env.lots.{k} must be > 0, got {f[k]}")
    if not 0 <= f["min_lots"] <= f["max_lots"]:
        raise ValueError(
            f"env.lots needs 0 <= min_lots <= max_lots, got min_lots={f['min_lots']}, "
            f"max_lots={f['max_lots']}"
        )
    if f["max_lots"] < f["lot_step"]:
        raise ValueError(
            f"env.lots.max_lots={f['max_lots']} is below one lot_step ({f['lot_step']}): no "
            "position could be opened"
        )
    for k in ("spread_pips", "commission_per_lot"):
        if f[k] < 0:
            raise ValueError(f"env.lots.{k} must be >= 0 (a cost), got {f[k]}")
    if not p.enabled:
        on = [k for k in COST_KEYS if float(getattr(p, k)) != 0.0]
        if on:
            raise ValueError(
                f"env.lots.{', env.lots.'.join(on)} set but env.lots.enabled is False: they "
                "apply to positions sized in lots only (set env.lots.enabled=True)"
            )


def quantize(units: jax.Array, p: LotParams) -> jax.Array:
    """Base-currency units [N] -> the nearest whole-lot-step position in units, |lots| clipped to
    max_lots, flat under min_lots."""
    lots = jnp.round(units / (p.contract_size * p.lot_step)) * p.lot_step
    lots = jnp.clip(lots, -p.max_lots, p.max_lots)
    lots = jnp.where(jnp.abs(lots) < p.min_lots * (1.0 - 1e-5), 0.0, lots)  # 1e-5: float32 multiples
    return lots * p.contract_size


def floor_position(units: jax.Array, p: LotParams) -> jax.Array:
    """Units [N] rounded down (towards -inf) to a whole lot step: a scaled-down buy that stays
    affordable; flat under min_lots (in magnitude)."""
    # + 1e-4 of a step: a float32 whole multiple that divides to k - epsilon stays k (over by at most
    # a ten-thousandth of a step, far inside the cash floor's margin).
    lots = jnp.floor(units / (p.contract_size * p.lot_step) + 1e-4) * p.lot_step
    lots = jnp.where(jnp.abs(lots) < p.min_lots * (1.0 - 1e-5), 0.0, lots)  # 1e-5: float32 multiples
    return lots * p.contract_size


def trade_cost(shares: jax.Array, p: LotParams) -> jax.Array:
    """Per-lot FX costs [N] of a fill of `shares` units: half the spread and the commission."""
    units = jnp.abs(shares)
    return 0.5 * p.spread_pips * p.pip_size * units + p.commission_per_lot * units / p.contract_size


def swap(holdings: jax.Array, nights: jax.Array, p: LotParams) -> jax.Array:
    """Swap credit [N] (negative = paid) of `holdings` units held over `nights` rollovers."""
    lots = jnp.abs(holdings) / p.contract_size
    pips = jnp.where(holdings > 0, p.swap_long_pips, p.swap_short_pips)
    return lots * pips * p.pip_value * nights


def describe(p: LotParams) -> str:
    """One line for report notes."""
    if not p.enabled:
        return ""
    g = lambda x: f"{float(x):g}"
    return (
        f"lots of {float(p.contract_size):,.0f} units (step {g(p.lot_step)}, {g(p.min_lots)}..{g(p.max_lots)}"
        f" lots; pip {g(p.pip_size)} = {float(p.pip_value):g} per lot), "
        f"spread {g(p.spread_pips)} pips quoted (half per fill), "
        f"commission {g(p.commission_per_lot)} per lot per side, swap {g(p.swap_long_pips)} / "
        f"{g(p.swap_short_pips)} pips per lot per night (long / short)"
    )

"""Transaction cost models: pure, elementwise functions of one step's trades.

Conventions shared by every function here:
- `shares`: float32 [N] signed units traded (> 0 buys, < 0 sells).
- `value`: float32 [N] signed traded value in quote currency (`shares * price`).
- Every cost is returned per asset, float32 [N], in quote currency, >= 0, exactly 0 where nothing
  is traded, and non-decreasing in |trade| (the tests pin all three). float32 is the default: for float64
  data under `jax.enable_x64` (the exact ledger checks) every one of them computes in float64.
- Every model is switched off by setting its coefficient to 0 (or its mode to "none").
- Spread: every spread parameter (`spread_bps` here, `spread_abs`, and `spread_pips` of
  `jaxtrade.envs.lots`) is the full quoted bid-ask spread, and each fill pays half of it (it trades
  at the ask when buying, at the bid when selling, against a mid-price close). A round trip of value V
  pays the whole spread once: spread_bps x 1e-4 x V, half each way.

`total_cost` sums them; environments call it, tests and the numpy reference call the parts.

Market impact (`impact_model`, static):
- "sqrt_adv": the square-root law, cost rate = Y * sigma * sqrt(|shares| / ADV), with sigma the
  per-row volatility of log returns over the 20 rows before the trade and ADV the mean volume of the
  `adv_window` rows before it (Almgren et al. 2005, Toth et al. 2011: Y of order 1; the default
  0.5 sits in the middle of published estimates). It depends on how liquid the asset is and how
  large the portfolio is next to the market: $50k into a stock that trades $5B a day at 1.5% daily
  volatility costs 0.5 * 0.015 * sqrt(1e-5) = 0.24 bps.
- "assumed_adv": the same law with an assumed ADV of `assumed_adv_value` (quote currency per row,
  every asset) for data without volume (the sp500-20 closes): an explicit, documented assumption.
- "seed": the first slice's formula, rate = `impact_coef` * sqrt(|value| / portfolio value). It
  ignores liquidity (a $1M equal-weight entry into 20 large caps pays 0.22% in impact alone); kept
  to reproduce earlier results.
- "none": no impact.
- None (the default): "sqrt_adv" where the data has volume, "none" where it has not (`make`
  decides; the close-only datasets trade S&P 500 large caps, where a sub-$1M book's square-root
  impact is well under a basis point, below the spread and slippage charged anyway).

Regulatory fees on sells (`regulatory_fees`, static):
- "us_schedule" (default): the SEC Section 31 rate and the FINRA TAF in force on each bar's date
  (`jaxtrade.data.fees`, looked up on the host into `EnvData.fees`); a date outside the schedule is
  refused when the env is made.
- "flat": `sec_fee_rate`, `finra_taf_per_share` and `finra_taf_cap` on every date.
- "none": no regulatory fees (FX, non-US markets).
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
from flax import struct

BPS = 1e-4

IMPACT_MODELS = ("sqrt_adv", "assumed_adv", "seed", "none")
FEE_MODES = ("us_schedule", "flat", "none")


@struct.dataclass
class CostParams:
    """Coefficients of every cost model (each 0 = off). Units in the field comments.

    The defaults model a liquid US equity traded through a zero-commission broker: a 2 bps quoted
    bid-ask spread (1 bp paid per fill), adverse slippage uniform in [0, 5] bps per fill, the
    square-root impact law on average daily volume where the data has volume, and the dated SEC and
    FINRA fees on sells.
    """

    commission_bps: float = 0.0          # bps of |traded value|
    commission_per_share: float = 0.0    # quote currency per share traded
    spread_bps: float = 2.0              # full quoted spread, bps of price: each fill pays half of it
    spread_abs: float = 0.0              # full quoted spread, price units: each fill pays half per share
    slippage_bps: float = 5.0            # adverse slippage ~ uniform[0, slippage_bps] bps of |value|
    impact_y: float = 0.5                # square-root law: rate = Y * sigma * sqrt(|shares| / ADV)
    assumed_adv_value: float = 0.0       # "assumed_adv": ADV in quote currency per row, each asset
    impact_coef: float = 0.01            # "seed" model: rate = coef * sqrt(|value| / portfolio value)
    sec_fee_rate: float = 0.0            # "flat" fees: SEC Section 31, per unit of currency sold
    finra_taf_per_share: float = 0.000166  # "flat" fees: FINRA TAF per share sold ...
    finra_taf_cap: float = 8.30          # ... capped per trade (per asset and step)
    # static: one of IMPACT_MODELS; None: `make` picks "sqrt_adv" with volume, "none" without
    impact_model: str | None = struct.field(pytree_node=False, default=None)
    # static: one of FEE_MODES
    regulatory_fees: str = struct.field(pytree_node=False, default="us_schedule")
    # static: rows t-adv_window .. t-1 give the square-root law's average volume (ADV); needs
    # adv_window <= EnvData.start, so the first traded row has a full window of history
    adv_window: int = struct.field(pytree_node=False, default=30)


def commission(value: jax.Array, shares: jax.Array, p: CostParams) -> jax.Array:
    """Broker commission [N]: bps of traded value plus a per-share fee."""
    return p.commission_bps * BPS * jnp.abs(value) + p.commission_per_share * jnp.abs(shares)


def spread(value: jax.Array, shares: jax.Array, p: CostParams) -> jax.Array:
    """Bid-ask spread [N]: half of each quoted spread, `spread_bps` of traded value and `spread_abs`
    per share (a fill crosses from the mid to the bid or the ask: half the spread)."""
    return 0.5 * (p.spread_bps * BPS * jnp.abs(value) + p.spread_abs * jnp.abs(shares))


def slippage(u: jax.Array, value: jax.Array, p: CostParams) -> jax.Array:
    """Adverse slippage [N] given `u` ~ uniform[0, 1) [N] (drawn from the step's key by the caller).

    Taking the draw rather than the key lets one step price the same trade twice consistently.
    """
    return u * p.slippage_bps * BPS * jnp.abs(value)


def seed_impact(value: jax.Array, portfolio_value: jax.Array, p: CostParams) -> jax.Array:
    """The "seed" impact [N]: |value| * coef * sqrt(|value| / portfolio value) (ignores liquidity)."""
    a = jnp.abs(value)
    return p.impact_coef * a * jnp.sqrt(a / portfolio_value)


def sqrt_impact(value: jax.Array, shares: jax.Array, sigma: jax.Array, adv: jax.Array,
                p: CostParams) -> jax.Array:
    """Square-root law impact [N]: |value| * Y * sigma * sqrt(|shares| / ADV).

    sigma: [N] per-row volatility of log returns; adv: [N] average shares traded per row (> 0).
    """
    return p.impact_y * sigma * jnp.abs(value) * jnp.sqrt(jnp.abs(shares) / adv)


def regulatory_fees(value: jax.Array, shares: jax.Array, rates: jax.Array) -> jax.Array:
    """SEC fee and capped FINRA TAF [N], charged on sells only.

    rates: [3+] (SEC rate per unit of currency sold, TAF per share sold, TAF cap per trade, ...), the
    row of `EnvData.fees` for the trade's date or `flat_fee_rates(p)`.
    """
    sold = shares < 0
    taf = jnp.minimum(rates[1] * jnp.abs(shares), rates[2])
    return jnp.where(sold, rates[0] * jnp.abs(value) + taf, 0.0)


def flat_fee_rates(p: CostParams) -> jax.Array:
    """[3] the "flat" regulatory fee rates of `p`, in the layout of `EnvData.fees`' first columns: float32,
    or float64 where `p` holds float64 arrays (float64 data under `jax.enable_x64`)."""
    rates = (p.sec_fee_rate, p.finra_taf_per_share, p.finra_taf_cap)
    dtype = jnp.result_type(jnp.float32, *rates)
    return jnp.stack([jnp.asarray(x, dtype) for x in rates])


def total_cost(u: jax.Array, shares: jax.Array, price: jax.Array, portfolio_value: jax.Array,
               p: CostParams, sigma: jax.Array | None = None, adv: jax.Array | None = None,
               fee_rates: jax.Array | None = None) -> jax.Array:
    """Every cost of trading `shares` [N] at `price` [N], per asset [N], quote currency.

    u: [N] uniform[0, 1) draws for slippage; portfolio_value: scalar value before the trade
    (for the "seed" impact model); sigma, adv: [N] volatility and ADV in shares, needed by the
    square-root law ("sqrt_adv", "assumed_adv"); fee_rates: the date's regulatory fee row, needed
    when `p.regulatory_fees` is "us_schedule" (see `regulatory_fees`).
    """
    value = shares * price
    cost = commission(value, shares, p) + spread(value, shares, p) + slippage(u, value, p)
    if p.regulatory_fees == "us_schedule":
        cost = cost + regulatory_fees(value, shares, fee_rates)
    elif p.regulatory_fees == "flat":
        cost = cost + regulatory_fees(value, shares, flat_fee_rates(p))
    elif p.regulatory_fees != "none":
        raise ValueError(f"env.costs.regulatory_fees={p.regulatory_fees!r}; known: {list(FEE_MODES)}")
    if p.impact_model in ("sqrt_adv", "assumed_adv"):
        cost = cost + sqrt_impact(value, shares, sigma, adv, p)
    elif p.impact_model == "seed":
        cost = cost + seed_impact(value, portfolio_value, p)
    elif p.impact_model != "none":
        raise ValueError(f"env.costs.impact_model={p.impact_model!r}; known: {list(IMPACT_MODELS)}")
    return cost


def describe(p: CostParams) -> str:
    """One line naming every cost `p` charges, for report notes (e.g. "spread 2 bps quoted (half per
    fill), slippage U[0, 5] bps, no commission, square-root impact 0.5 * sigma * sqrt(shares / 30-row
    ADV), SEC/FINRA fees on sells by trade date")."""
    f = lambda x: f"{float(x):g}"
    per_share = f" + {f(p.spread_abs)} per share" if float(p.spread_abs) else ""
    parts = [f"spread {f(p.spread_bps)} bps{per_share} quoted (half per fill)",
             f"slippage U[0, {f(p.slippage_bps)}] bps"]
    if float(p.commission_bps) or float(p.commission_per_share):
        parts.append(f"commission {f(p.commission_bps)} bps + {f(p.commission_per_share)} per share")
    else:
        parts.append("no commission")
    parts.append({
        "sqrt_adv": f"square-root impact {f(p.impact_y)} * sigma * sqrt(shares / {p.adv_window}-row ADV)",
        "assumed_adv": f"square-root impact {f(p.impact_y)} * sigma * sqrt(value / assumed ADV "
                       f"{float(p.assumed_adv_value):,.0f})",
        "seed": f"seed impact {f(p.impact_coef)} * sqrt(trade / portfolio value)",
        "none": "no market impact",
    }.get(p.impact_model, f"impact model {p.impact_model}"))
    parts.append({"us_schedule": "SEC/FINRA fees on sells by trade date",
                  "flat": f"flat fees on sells: SEC {f(p.sec_fee_rate)} per $, "
                          f"TAF {f(p.finra_taf_per_share)} per share (cap {f(p.finra_taf_cap)})",
                  "none": "no regulatory fees"}.get(p.regulatory_fees, p.regulatory_fees))
    return ", ".join(parts)

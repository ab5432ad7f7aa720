"""Black-Scholes-Merton prices and Greeks of European options, closed form, pure jnp.

    from jaxtrade.envs.options.pricing import CALL, PUT, bs_greeks, bs_price
    p = bs_price(S=100.0, K=105.0, tau=21 / 365, r=0.03, q=0.01, sigma=0.2, kind=CALL)
    g = bs_greeks(S, K, tau, r, q, sigma, kind)        # Greeks(price, delta, gamma, theta, vega, rho)

Units and conventions (shared by the whole options environment):
- S spot and K strike in quote currency; prices are per share of the underlying (one contract is
  `MULTIPLIER` = 100 shares: multiply by it for the value of a contract).
- tau: time to expiry in years of 365 calendar days (tau = calendar days / 365).
- r (risk-free), q (dividend yield) and sigma (volatility) are annual, continuously compounded.
- kind: integer array, `CALL` = 0, `PUT` = 1 (any other value is read as a call). Everything is
  selected with `jnp.where`, never a Python branch on values, so every function here jits, vmaps and
  broadcasts elementwise over all seven arguments.
- dtype-generic: the result has the dtype the arguments promote to (float32 in the env's step path;
  the tests run the same code in float64 under `jax.enable_x64(True)`).

Greeks (all per share, for one long option):
- delta = d price / d S; gamma = d^2 price / d S^2;
- theta = d price / d t per CALENDAR day: -(d price / d tau) / 365, t being calendar time; negative for
  long options except some deep in-the-money puts (and calls with a large q);
- vega = d price / d sigma per 1.00 of sigma (divide by 100 for "per vol point");
- rho = d price / d r per 1.00 of r (divide by 100 for "per percentage point").

No-volatility and expired limits (no NaN, in values or in jax.grad):
- tau <= 0 (expired): the intrinsic value max(phi (S - K), 0), with phi = +1 for calls and -1 for
  puts; delta phi * 1[in the money] (0 or +-1; at-the-money exactly, 0), gamma = theta = vega = rho = 0.
- tau > 0 but sigma sqrt(tau) <= `MIN_STD` (1e-6; includes sigma = 0): the deterministic limit, the
  discounted forward's intrinsic value max(phi (S e^{-q tau} - K e^{-r tau}), 0), with its exact
  derivatives (gamma = vega = 0).
  Both branches are computed on clamped ("safe") inputs, so the branch `jnp.where` drops never
  divides by zero and jax.grad through either stays finite.
- NaN in sigma propagates to NaN for tau > 0 (an option that is not expired needs a volatility);
  an expired option does not depend on sigma and settles at intrinsic value even then.
"""

from __future__ import annotations

from typing import NamedTuple

import jax
import jax.numpy as jnp
from jax.scipy.special import ndtr

MULTIPLIER = 100        # shares of the underlying per contract
CALL = 0
PUT = 1
DAYS_PER_YEAR = 365.0   # calendar days per year: tau = days / DAYS_PER_YEAR, theta per calendar day
MIN_STD = 1e-6          # sigma * sqrt(tau) at or below this: the deterministic (no-volatility) limit

_INV_SQRT_2PI = 0.3989422804014327


class Greeks(NamedTuple):
    """Price and Greeks per share of one long option (units in the module docstring)."""

    price: jax.Array
    delta: jax.Array
    gamma: jax.Array
    theta: jax.Array   # per calendar day
    vega: jax.Array    # per 1.00 of sigma
    rho: jax.Array     # per 1.00 of r


def _phi(kind) -> jax.Array:
    """+1 for calls, -1 for puts (weakly typed, so it takes the other arguments' dtype)."""
    return jnp.where(jnp.asarray(kind) == PUT, -1.0, 1.0)


def intrinsic(S, K, kind) -> jax.Array:
    """Intrinsic value per share: max(S - K, 0) for a call, max(K - S, 0) for a put."""
    S, K = jnp.asarray(S), jnp.asarray(K)
    return jnp.maximum(_phi(kind) * (S - K), 0.0)


def _npdf(x):
    return _INV_SQRT_2PI * jnp.exp(-0.5 * x * x)


def _core(S, K, tau, r, q, sigma, kind, greeks: bool):
    """Price (and Greeks) with the live (BSM) and dead (no-volatility / expired) branches."""
    S, K, tau, r, q, sigma = (jnp.asarray(x) for x in (S, K, tau, r, q, sigma))
    phi = _phi(kind)
    # live: a real BSM price. NaN sigma counts as live (~(NaN <= x) is True), so NaN propagates.
    sd_raw = sigma * jnp.sqrt(jnp.maximum(tau, 0.0))
    live = (tau > 0.0) & ~(sd_raw <= MIN_STD)
    # Safe inputs: the branch that jnp.where drops must stay finite in value and gradient.
    tau_l = jnp.where(live, tau, 1.0)
    sig_l = jnp.where(live, sigma, 1.0)
    S_l = jnp.where(live, S, 1.0)
    K_l = jnp.where(live, K, 1.0)
    sqrt_t = jnp.sqrt(tau_l)
    sd = sig_l * sqrt_t
    d1 = (jnp.log(S_l / K_l) + (r - q + 0.5 * sig_l * sig_l) * tau_l) / sd
    d2 = d1 - sd
    dq_l = jnp.exp(-q * tau_l)
    dr_l = jnp.exp(-r * tau_l)
    n1, n2 = ndtr(phi * d1), ndtr(phi * d2)
    price_l = phi * (S_l * dq_l * n1 - K_l * dr_l * n2)

    # dead: tau clamped at 0 (expired) -> plain intrinsic value; else the discounted forward's.
    tau_d = jnp.where(live, 0.0, jnp.maximum(tau, 0.0))
    dq_d = jnp.exp(-q * tau_d)
    dr_d = jnp.exp(-r * tau_d)
    fwd_gap = phi * (S * dq_d - K * dr_d)
    itm = fwd_gap > 0.0
    price_d = jnp.maximum(fwd_gap, 0.0)
    price = jnp.where(live, price_l, price_d)
    if not greeks:
        return price

    pdf1 = _npdf(d1)
    delta_l = phi * dq_l * n1
    gamma_l = dq_l * pdf1 / (S_l * sd)
    vega_l = S_l * dq_l * pdf1 * sqrt_t
    rho_l = phi * K_l * tau_l * dr_l * n2
    theta_l = (-S_l * dq_l * pdf1 * sig_l / (2.0 * sqrt_t)
               - phi * r * K_l * dr_l * n2 + phi * q * S_l * dq_l * n1)

    ind = jnp.where(itm, 1.0, 0.0)
    delta_d = phi * dq_d * ind
    # d/dt of phi (S e^{-q tau} - K e^{-r tau}) = phi (q S e^{-q tau} - r K e^{-r tau}); 0 once expired
    expired = tau <= 0.0
    theta_d = jnp.where(expired, 0.0, ind * phi * (q * S * dq_d - r * K * dr_d))
    rho_d = ind * phi * K * tau_d * dr_d
    zero = jnp.zeros_like(price)
    return Greeks(
        price=price,
        delta=jnp.where(live, delta_l, delta_d),
        gamma=jnp.where(live, gamma_l, zero),
        theta=jnp.where(live, theta_l, theta_d) / DAYS_PER_YEAR,
        vega=jnp.where(live, vega_l, zero),
        rho=jnp.where(live, rho_l, rho_d),
    )


def bs_price(S, K, tau, r, q, sigma, kind) -> jax.Array:
    """Black-Scholes-Merton price per share of a European call (kind 0) or put (kind 1).

    Args (all broadcast elementwise): S spot, K strike, tau years to expiry (calendar days / 365),
    r risk-free rate, q dividend yield, sigma volatility (annual, continuous), kind 0/1.
    tau <= 0 gives the intrinsic value; sigma sqrt(tau) <= MIN_STD the discounted forward's intrinsic
    value (see the module docstring). Differentiable everywhere without NaN.
    """
    return _core(S, K, tau, r, q, sigma, kind, greeks=False)


def bs_greeks(S, K, tau, r, q, sigma, kind) -> Greeks:
    """Price and closed-form Greeks per share: `Greeks(price, delta, gamma, theta, vega, rho)`.

    theta per calendar day (d price / d t / 365), vega per 1.00 of sigma, rho per 1.00 of r; same
    arguments and limits as `bs_price` (whose value `price` equals).
    """
    return _core(S, K, tau, r, q, sigma, kind, greeks=True)

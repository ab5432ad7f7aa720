"""Black-Scholes-Merton prices and Greeks (`jaxtrade.envs.options.pricing`).

The tolerance tests run the (dtype-generic) functions in float64 under `jax.enable_x64(True)`:
put-call parity to 1e-6, closed-form Greeks against jax.grad of the price to 1e-5, prices against an
independent numpy/scipy formula to 1e-6 relative. float32 (the env's dtype) is checked separately,
with tolerances stated relative to the spot.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pytest
from scipy.stats import norm

from jaxtrade.envs.options.pricing import CALL, MULTIPLIER, PUT, bs_greeks, bs_price, intrinsic

ARGS = ("S", "K", "tau", "r", "q", "sigma")
N = 96   # every evaluation is padded to this length: one compile per dtype for the whole file


def _cases(n: int = N, seed: int = 0) -> dict[str, np.ndarray]:
    """Random live cases: moneyness 0.7 .. 1.3, 1 day .. 2 years, vol 5% .. 80%, both kinds."""
    rng = np.random.default_rng(seed)
    S = rng.uniform(20.0, 2500.0, n)
    return dict(S=S, K=S * rng.uniform(0.7, 1.3, n), tau=rng.uniform(1 / 365, 2.0, n),
                r=rng.uniform(-0.01, 0.08, n), q=rng.uniform(0.0, 0.04, n),
                sigma=rng.uniform(0.05, 0.8, n), kind=np.arange(n) % 2)


@jax.jit
def _evaluate(S, K, tau, r, q, sigma, kind):
    """bs_price, bs_greeks, jax.grad of the price by every argument and d2 price / dS2 (autodiff)."""
    grads = jax.vmap(jax.grad(bs_price, argnums=(0, 1, 2, 3, 4, 5)))(S, K, tau, r, q, sigma, kind)
    gamma = jax.vmap(jax.grad(jax.grad(bs_price, argnums=0), argnums=0))(S, K, tau, r, q, sigma, kind)
    return (bs_price(S, K, tau, r, q, sigma, kind), bs_greeks(S, K, tau, r, q, sigma, kind),
            dict(zip(ARGS, grads, strict=True)), gamma)


def run(dtype: str = "float64", **case):
    """Evaluate 1-D cases (arrays or scalars broadcast together) in `dtype`; numpy results:
    (price, Greeks, {argument: d price / d argument}, autodiff gamma)."""
    n = max(np.size(v) for v in case.values())
    assert n <= N
    with jax.enable_x64(dtype == "float64"):
        args = [jnp.asarray(np.resize(np.broadcast_to(case[k], (n,)), N), dtype) for k in ARGS]
        kind = jnp.asarray(np.resize(np.broadcast_to(case["kind"], (n,)), N), jnp.int32)
        out = jax.tree.map(lambda x: np.asarray(x)[:n], _evaluate(*args, kind))
    assert out[0].dtype == np.dtype(dtype)
    return out


def _reference(S, K, tau, r, q, sigma, kind):
    """Plain numpy/scipy Black-Scholes-Merton (written independently of the module)."""
    d1 = (np.log(S / K) + (r - q + sigma ** 2 / 2) * tau) / (sigma * np.sqrt(tau))
    d2 = d1 - sigma * np.sqrt(tau)
    call = S * np.exp(-q * tau) * norm.cdf(d1) - K * np.exp(-r * tau) * norm.cdf(d2)
    put = K * np.exp(-r * tau) * norm.cdf(-d2) - S * np.exp(-q * tau) * norm.cdf(-d1)
    return np.where(kind == PUT, put, call)


def test_constants():
    assert (CALL, PUT, MULTIPLIER) == (0, 1, 100)


def test_textbook_values():
    """Hull, Options, Futures and Other Derivatives, example 15.6: S 42, K 40, r 10%, vol 20%, 6 months:
    call 4.76, put 0.81."""
    price = run(S=42.0, K=40.0, tau=0.5, r=0.1, q=0.0, sigma=0.2, kind=[CALL, PUT])[0]
    assert np.round(price, 2).tolist() == [4.76, 0.81]


def test_prices_match_scipy_reference():
    c = _cases()
    np.testing.assert_allclose(run(**c)[0], _reference(**c), rtol=1e-6, atol=1e-12)


def test_put_call_parity():
    c = _cases(seed=1)
    call = run(**{**c, "kind": CALL})[0]
    put = run(**{**c, "kind": PUT})[0]
    fwd = c["S"] * np.exp(-c["q"] * c["tau"]) - c["K"] * np.exp(-c["r"] * c["tau"])
    np.testing.assert_allclose(call - put, fwd, rtol=0, atol=1e-6)


def test_greeks_match_autodiff():
    price, g, d, gamma = run(**_cases(seed=2))
    tol = dict(rtol=1e-5, atol=1e-8)
    np.testing.assert_array_equal(g.price, price)
    np.testing.assert_allclose(g.delta, d["S"], **tol)
    np.testing.assert_allclose(g.gamma, gamma, **tol)
    np.testing.assert_allclose(g.theta, -d["tau"] / 365.0, **tol)   # per calendar day
    np.testing.assert_allclose(g.vega, d["sigma"], **tol)           # per 1.00 of sigma
    np.testing.assert_allclose(g.rho, d["r"], **tol)                # per 1.00 of r


def test_greek_units_by_finite_differences():
    """theta is one calendar day of decay (dt = 1/365), vega per 1.00 of vol, rho per 1.00 of rate."""
    h = 1e-4
    base = dict(S=100.0, K=100.0, q=0.01, kind=np.array([CALL, PUT]))
    p, g, _, _ = run(**base, tau=0.25, r=0.03, sigma=0.2)
    day_later = run(**base, tau=0.25 - 1 / 365, r=0.03, sigma=0.2)[0]
    vol_up = run(**base, tau=0.25, r=0.03, sigma=0.2 + h)[0]
    rate_up = run(**base, tau=0.25, r=0.03 + h, sigma=0.2)[0]
    assert (g.theta < 0).all()
    np.testing.assert_allclose(day_later - p, g.theta, rtol=1e-2)
    np.testing.assert_allclose((vol_up - p) / h, g.vega, rtol=1e-3)
    np.testing.assert_allclose((rate_up - p) / h, g.rho, rtol=1e-3)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_expired_and_zero_vol_are_intrinsic_without_nan(dtype):
    """tau <= 0: intrinsic value, delta 0/+-1, other Greeks 0; sigma sqrt(tau) ~ 0: the discounted
    forward's intrinsic value. No NaN in values, Greeks or jax.grad with respect to any argument."""
    S = np.array([90.0, 100.0, 110.0] * 4 * 2)
    tau = np.tile(np.repeat([0.0, -0.5, 1e-14, 0.5], 3), 2)
    sigma = np.tile(np.repeat([0.2, 0.2, 0.2, 0.0], 3), 2)
    kind = np.repeat([CALL, PUT], 12)
    price, g, d, _ = run(dtype, S=S, K=100.0, tau=tau, r=0.05, q=0.02, sigma=sigma, kind=kind)
    for name, x in [*g._asdict().items(), *d.items()]:
        assert np.isfinite(x).all(), name
    phi = np.where(kind == PUT, -1.0, 1.0)
    ex = np.maximum(phi * (S - 100.0), 0.0)
    expired, tiny, novol = tau <= 0, tau == 1e-14, sigma == 0
    np.testing.assert_allclose(price[expired | tiny], ex[expired | tiny], atol=1e-6)
    np.testing.assert_array_equal(g.delta[expired], (phi * (phi * (S - 100) > 0))[expired])
    for name in ("gamma", "theta", "vega", "rho"):
        assert (getattr(g, name)[expired] == 0).all(), name
    # zero vol, half a year: max(phi (S e^{-q tau} - K e^{-r tau}), 0)
    fwd = np.maximum(phi * (S * np.exp(-0.01) - 100 * np.exp(-0.025)), 0)
    np.testing.assert_allclose(price[novol], fwd[novol], rtol=1e-6)


@pytest.mark.parametrize("dtype", ["float32", "float64"])
def test_deep_in_and_out_of_the_money(dtype):
    """Strikes at 0.01%, 20%, 500% and 100,000% of spot: finite prices, Greeks and gradients; the
    in-the-money side is worth its discounted forward gap with delta +-e^{-q tau}, the other ~0."""
    K = np.tile([1e-2, 20.0, 500.0, 1e5], 2)
    kind = np.repeat([CALL, PUT], 4)
    price, g, d, _ = run(dtype, S=100.0, K=K, tau=1.0, r=0.04, q=0.01, sigma=0.3, kind=kind)
    for name, x in [*g._asdict().items(), *d.items()]:
        assert np.isfinite(x).all(), name
    fwd = 100 * np.exp(-0.01) - K * np.exp(-0.04)
    phi = np.where(kind == PUT, -1.0, 1.0)
    itm = phi * fwd > 0
    tol = 1e-6 if dtype == "float64" else 1e-6 * np.maximum(K, 100.0)   # float32: ~7 digits of S, K
    assert (np.abs(price - np.maximum(phi * fwd, 0)) <= tol).all()
    np.testing.assert_allclose(g.delta[itm], phi[itm] * np.exp(-0.01), atol=1e-6)
    np.testing.assert_allclose(g.delta[~itm], 0.0, atol=1e-6)


def test_float32_accuracy():
    """In float32 (the env's dtype) prices agree with the float64 reference to 2e-6 of the spot and
    Greeks to 1e-3 relative (float32 has ~7 digits; the price is a difference of two terms of
    order S, so its error scales with S, not with the price)."""
    c = _cases(seed=3)
    price, g, _, _ = run("float32", **c)
    assert (np.abs(price - _reference(**c)) <= 2e-6 * c["S"]).all()
    _, g64, _, _ = run("float64", **c)
    for name in ("delta", "gamma", "theta", "vega", "rho"):
        a, b = getattr(g, name).astype(np.float64), getattr(g64, name)
        np.testing.assert_allclose(a, b, rtol=1e-3, atol=1e-3 * np.abs(b).max(), err_msg=name)


def test_broadcasting_and_mixed_kinds():
    """Elementwise broadcasting over all arguments; `intrinsic` is the expired value."""
    S = jnp.full((3, 1), 100.0)
    K = jnp.asarray([90.0, 100.0, 110.0])
    kind = jnp.asarray([CALL, PUT, CALL])
    p = jax.jit(bs_price)(S, K, 0.1, 0.02, 0.0, 0.25, kind)
    assert p.shape == (3, 3)
    one = run("float32", S=100.0, K=K, tau=0.1, r=0.02, q=0.0, sigma=0.25, kind=kind)[0]
    np.testing.assert_allclose(np.asarray(p), np.broadcast_to(one, (3, 3)), rtol=1e-5, atol=1e-5)
    np.testing.assert_array_equal(np.asarray(intrinsic(100.0, K, kind)), [10.0, 0.0, 0.0])

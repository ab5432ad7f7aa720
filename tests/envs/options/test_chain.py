"""The synthetic option chain (`jaxtrade.envs.options.chain`): layout, quotes, implied vol sources,
the risk-free rate, `leg_quote` against the chain, and a chain on the bundled S&P 500 + VIX data.

Every chain here has the default shape (5 expiries x 15 strikes) and is priced in blocks of fixed
length, so the whole file compiles `build_chain`'s kernel once.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

from jaxtrade.data import DataError, load_dataset, risk_free_daily
from jaxtrade.envs.options.chain import (
    MIN_PRICE,
    SP500_DIVIDEND_YIELD,
    Chain,
    ChainConfig,
    annual_rate_series,
    build_chain,
    day_numbers,
    expiry_days,
    implied_vol_series,
    leg_quote,
    realized_vol,
    spread_fraction,
    strike_offsets,
    volume_proxy,
    volume_ratio,
)
from jaxtrade.envs.options.pricing import CALL, PUT, bs_price

T = 60
FIELDS = ("mid", "bid", "ask", "iv", "delta", "gamma", "theta", "vega", "rho", "volume")
CFG = ChainConfig(skew=-0.8, dividend_yield=0.015)
_leg_quote = jax.jit(leg_quote, static_argnames="cfg")


def quote(S, K, expiry_day, day, rate, atm_iv, kind):
    """`leg_quote` under jit with CFG, on arguments broadcast together and padded to T x 150 elements
    (one compile for the file); numpy (mid, bid, ask, greeks) in the broadcast shape."""
    args = np.broadcast_arrays(*(np.asarray(x) for x in (S, K, expiry_day, day, rate, atm_iv, kind)))
    shape, n, L = args[0].shape, args[0].size, T * 150
    assert n <= L
    flat = [np.resize(a.ravel(), L).astype(np.int32 if i in (2, 3, 6) else np.float32)
            for i, a in enumerate(args)]
    out = _leg_quote(*flat, cfg=CFG)
    return jax.tree.map(lambda x: np.asarray(x)[:n].reshape(shape), out)


def _synthetic(T: int = T, seed: int = 0):
    rng = np.random.default_rng(seed)
    close = 2000.0 * np.exp(np.cumsum(rng.normal(0.0, 0.012, T)))
    dates = pd.bdate_range("2015-03-02", periods=T)
    iv = rng.uniform(0.10, 0.45, T)
    iv[:3] = np.nan                      # no estimate yet: NaN rows
    return close, dates, iv, np.full(T, 0.02)


@pytest.fixture(scope="module")
def synth():
    close, dates, iv, rate = _synthetic()
    return close, dates, iv, rate, CFG, build_chain(close, day_numbers(dates), iv, rate, CFG)


def test_layout(synth):
    close, dates, iv, rate, cfg, ch = synth
    assert isinstance(ch, Chain)
    assert ch.strike.shape == (T, 15) and ch.expiry_day.shape == ch.dte.shape == (T, 5)
    for name in FIELDS:
        x = getattr(ch, name)
        assert x.shape == (T, 5, 15, 2) and x.dtype == jnp.float32, name
    assert ch.expiry_day.dtype == jnp.int32 and ch.dte.dtype == jnp.int32
    np.testing.assert_array_equal(strike_offsets(cfg), np.arange(-7, 8))
    np.testing.assert_array_equal(expiry_days(cfg), [7, 14, 21, 28, 35])
    np.testing.assert_array_equal(np.asarray(ch.dte), np.broadcast_to([7, 14, 21, 28, 35], (T, 5)))
    day = (dates - pd.Timestamp("1970-01-01")).days.to_numpy()
    np.testing.assert_array_equal(np.asarray(ch.day), day)
    np.testing.assert_array_equal(np.asarray(ch.expiry_day), day[:, None] + [7, 14, 21, 28, 35])
    np.testing.assert_allclose(np.asarray(ch.strike), close[:, None] * (1 + 0.01 * np.arange(-7, 8)),
                               rtol=1e-6)
    np.testing.assert_allclose(np.asarray(ch.spot), close, rtol=1e-7)


def test_nan_iv_rows_are_nan_and_the_rest_finite(synth):
    *_, ch = synth
    for name in FIELDS:
        x = np.asarray(getattr(ch, name))
        assert np.isnan(x[:3]).all() and np.isfinite(x[3:]).all(), name


def test_mid_is_bs_price_with_a_tick_floor_and_bid_mid_ask(synth):
    close, dates, iv, rate, cfg, ch = synth
    S = np.asarray(ch.spot)[:, None, None, None]
    K = np.asarray(ch.strike)[:, None, :, None]
    tau = np.asarray(ch.dte)[:, :, None, None] / 365.0
    kind = np.array([CALL, PUT])
    sig = np.asarray(ch.iv)
    # the skew: iv(K) = iv_atm (1 + skew ln(K/S)); puts and calls share it
    want_iv = np.maximum(iv[:, None, None, None] * (1 - 0.8 * np.log(K / S)), 0.01)
    np.testing.assert_allclose(sig[3:], np.broadcast_to(want_iv, sig.shape)[3:], rtol=1e-5)
    bs = np.asarray(jax.jit(bs_price)(S, K, tau, np.float32(0.02), np.float32(0.015), sig, kind))
    mid, bid, ask = (np.asarray(getattr(ch, k))[3:] for k in ("mid", "bid", "ask"))
    bs = bs[3:]
    # float32: the same formula in a different fusion agrees to rounding, ~1e-7 of the spot
    assert (np.abs(mid - np.maximum(bs, MIN_PRICE)) <= 1e-6 * S[3:]).all()
    assert (mid[bs < MIN_PRICE] == np.float32(MIN_PRICE)).all()
    assert (bs < MIN_PRICE).any() and (mid >= MIN_PRICE).all()     # the floor is exercised
    assert (bid < mid).all() and (mid < ask).all()
    spread = (ask - bid) / mid
    assert (spread >= 0.02 - 1e-6).all() and (spread <= 0.10 + 1e-6).all()
    want = spread_fraction(S, K, sig, np.asarray(ch.volume) / cfg.volume_atm)
    np.testing.assert_allclose(spread, np.asarray(want)[3:], rtol=1e-4)
    np.testing.assert_allclose(0.5 * (bid + ask), mid, rtol=1e-6)


def test_leg_quote_matches_the_chain_at_grid_points(synth):
    *_, ch = synth
    b = lambda x: np.asarray(x)[:, None, None, None]
    mid, bid, ask, g = quote(b(ch.spot), np.asarray(ch.strike)[:, None, :, None],
                             np.asarray(ch.expiry_day)[:, :, None, None], b(ch.day), b(ch.rate),
                             b(ch.atm_iv), np.arange(2)[None, None, None, :])
    got = dict(mid=mid, bid=bid, ask=ask, delta=g.delta, gamma=g.gamma, theta=g.theta, vega=g.vega,
               rho=g.rho)
    # the same float32 code in another XLA program: equal to rounding, ~1e-7 of the spot for prices
    S = b(ch.spot)[3:]
    for name, x in got.items():
        want = np.asarray(getattr(ch, name))[3:]
        tol = 1e-6 * S if name in ("mid", "bid", "ask") else 1e-4 * np.abs(want).max()
        assert (np.abs(x[3:] - want) <= tol).all(), name


def _bsm64(S, K, tau, r, q, sigma, kind):
    """float64 Black-Scholes-Merton written out with scipy (independent of `pricing`)."""
    from scipy.stats import norm

    d1 = (np.log(S / K) + (r - q + sigma ** 2 / 2) * tau) / (sigma * np.sqrt(tau))
    d2 = d1 - sigma * np.sqrt(tau)
    phi = np.where(kind == PUT, -1.0, 1.0)
    return phi * (S * np.exp(-q * tau) * norm.cdf(phi * d1) - K * np.exp(-r * tau) * norm.cdf(phi * d2))


def test_leg_quote_off_grid_and_expired():
    """Legs between grid strikes and days (the skew applied at their own strike); at expiry
    (dte <= 0) the quote is the intrinsic value with no spread."""
    S = np.full(12, 100.0)
    K = np.tile([95.0, 95.0, 103.3, 103.3], 3)
    kind = np.tile([CALL, PUT], 6)
    day = 20000
    dte = np.repeat([10, 0, -3], 4)
    mid, bid, ask, g = quote(S, K, day + dte, day, 0.03, 0.2, kind)
    live = dte > 0
    iv = 0.2 * (1 - 0.8 * np.log(K / S))
    want = _bsm64(S[live], K[live], dte[live] / 365, 0.03, 0.015, iv[live], kind[live])
    # float32 pricing against float64: 1e-5 absolute, or 5e-6 relative (a few float32 roundings of exp
    # and erf, whose last bits depend on how XLA's CPU backend lowers them)
    np.testing.assert_allclose(mid[live], np.maximum(want, MIN_PRICE), rtol=5e-6, atol=1e-5)
    assert (bid[live] < mid[live]).all() and (mid[live] < ask[live]).all()
    np.testing.assert_allclose(mid[~live], np.tile([5.0, 0.0, 0.0, 3.3], 2), atol=1e-5)
    np.testing.assert_array_equal(bid[~live], mid[~live])
    np.testing.assert_array_equal(ask[~live], mid[~live])
    np.testing.assert_array_equal(g.delta[~live], np.tile([1.0, 0.0, 0.0, -1.0], 2))


def test_spread_formula():
    """spread = clip(0.03 + 0.05 |1 - K/S| + 0.02 (1 - volume_ratio) + 0.05 max(iv - 0.2, 0), 2%, 10%)."""
    f = lambda K, iv, v: float(spread_fraction(100.0, K, iv, v))
    assert f(100.0, 0.15, 1.0) == pytest.approx(0.03)
    assert f(110.0, 0.30, 0.5) == pytest.approx(0.03 + 0.005 + 0.01 + 0.005)
    assert f(90.0, 0.15, 1.0) == pytest.approx(0.035)
    assert f(200.0, 2.0, 0.0) == pytest.approx(0.10)          # capped
    assert f(100.0, 0.15, 7.0) == pytest.approx(0.03)          # volume_ratio clipped to [0, 1]


def test_volume_proxy():
    cfg = ChainConfig()
    assert float(volume_proxy(100.0, 100.0, 0.0, cfg)) == pytest.approx(10_000.0)
    assert float(volume_proxy(100.0, 100.0, 7.0, cfg)) == pytest.approx(10_000.0 * np.exp(-7 / 30), rel=1e-6)
    assert float(volume_ratio(100.0, 93.0, 35.0, cfg)) == pytest.approx(
        np.exp(-abs(np.log(0.93)) / 0.05 - 35 / 30), rel=1e-5)
    K = jnp.linspace(80.0, 120.0, 41)
    v = np.asarray(volume_proxy(100.0, K, 14.0, cfg))
    assert v.argmax() == 20 and (np.diff(v[:21]) > 0).all() and (np.diff(v[20:]) < 0).all()
    assert (np.diff(np.asarray(volume_proxy(100.0, 100.0, jnp.arange(1.0, 40.0), cfg))) < 0).all()


def test_strike_increment_rounds_and_refuses_merged_strikes():
    close, dates, iv, rate = _synthetic()
    ch = build_chain(close, day_numbers(dates), iv, rate, ChainConfig(strike_increment=5.0))
    k = np.asarray(ch.strike, np.float64)
    np.testing.assert_allclose(k / 5.0, np.round(k / 5.0), atol=1e-6)
    assert (np.abs(k - close[:, None] * (1 + 0.01 * np.arange(-7, 8))) <= 2.5 + 1e-3).all()
    with pytest.raises(ValueError, match="strike_increment"):
        build_chain(close, day_numbers(dates), iv, rate, ChainConfig(strike_increment=50.0))


def test_config_validation():
    with pytest.raises(ValueError, match="odd"):
        ChainConfig(n_strikes=14)
    with pytest.raises(ValueError):
        ChainConfig(strike_step=0.2)          # lowest strike <= 0
    assert hash(ChainConfig()) == hash(ChainConfig())


def test_realized_vol_is_trailing_and_matches_pandas():
    close, *_ = _synthetic(T=80)
    w = 20
    got = realized_vol(close, w, 252.0)
    ref = pd.Series(np.log(close)).diff().rolling(w).std(ddof=1).to_numpy() * np.sqrt(252.0)
    assert np.isnan(got[:w]).all()
    np.testing.assert_allclose(got[w:], ref[w:], rtol=1e-10)
    # no look-ahead: changing closes after row t leaves rows <= t unchanged
    later = close.copy()
    later[50:] *= 1.3
    np.testing.assert_array_equal(realized_vol(later, w, 252.0)[:50], got[:50])


def test_implied_vol_sources():
    close, *_ = _synthetic(T=80)
    vix = np.linspace(0.12, 0.30, 80)
    rv = realized_vol(close, 20, 252.0)
    iv, label = implied_vol_series(close, {"iv": vix}, ChainConfig(), 252.0)
    assert label == "vix" and np.array_equal(iv, vix)
    iv, label = implied_vol_series(close, {}, ChainConfig(), 252.0)
    assert label == "realized_20" and np.array_equal(iv, rv, equal_nan=True)
    gap = vix.copy()
    gap[30:40] = np.nan
    iv, label = implied_vol_series(close, {"iv": gap}, ChainConfig(), 252.0)
    assert label == "vix+realized_20"
    np.testing.assert_array_equal(iv[30:40], rv[30:40])
    np.testing.assert_array_equal(iv[40:], vix[40:])
    iv, label = implied_vol_series(close, {"iv": gap}, ChainConfig(iv_source="vix"), 252.0)
    assert label == "vix" and np.isnan(iv[30:40]).all()
    iv, label = implied_vol_series(close, {"iv": vix}, ChainConfig(iv_source="realized"), 252.0)
    assert label == "realized_20"
    iv, label = implied_vol_series(close, {"mine": vix * 2}, ChainConfig(iv_source="mine"), 252.0)
    assert label == "mine" and np.array_equal(iv, vix * 2)
    with pytest.raises(ValueError, match="percent"):
        implied_vol_series(close, {"iv": vix * 100}, ChainConfig(), 252.0)
    with pytest.raises(ValueError, match="aux"):
        implied_vol_series(close, {}, ChainConfig(iv_source="vix"), 252.0)
    with pytest.raises(ValueError, match="nope"):
        implied_vol_series(close, {"iv": vix}, ChainConfig(iv_source="nope"), 252.0)


def test_annual_rate_series():
    dates = pd.bdate_range("2006-12-20", "2007-01-12")
    r = annual_rate_series(dates)
    # independently: the per-day rate compounded over a 252-day year, as a continuous rate
    daily = risk_free_daily(dates, periods_per_year=252.0)
    np.testing.assert_allclose(r, np.log((1 + daily) ** 252), rtol=1e-12)
    assert len(np.unique(r)) == 2 and 0.04 < r.min() < 0.06          # two months, ~5% in 2006-07
    with pytest.raises(DataError, match="2018-12-03"):
        annual_rate_series(pd.bdate_range("2018-11-29", "2018-12-05"))
    held = annual_rate_series(pd.bdate_range("2018-11-29", "2018-12-05"), after_last="hold")
    assert np.unique(held).size == 1
    with pytest.raises(DataError, match="1926"):
        annual_rate_series(["1926-06-30"])


@pytest.fixture(scope="module")
def real_inputs():
    """The bundled S&P 500 index closes and VIX closes (as a fraction), aligned on common dates."""
    spx, vix = load_dataset("sp500-ohlcv"), load_dataset("vix")
    dates = spx.dates.intersection(vix.dates)
    dates = dates[dates <= "2018-11-30"]                       # the Fama-French RF ends 2018-11
    close = spx.close[spx.dates.get_indexer(dates), 0]
    aux = {"iv": vix.close[vix.dates.get_indexer(dates), 0] / 100.0}
    iv, label = implied_vol_series(close, aux, ChainConfig(), spx.periods_per_year)
    assert label == "vix" and np.isfinite(iv).all()
    return close, day_numbers(dates), iv, annual_rate_series(dates)


def test_real_sp500_vix_chain(real_inputs):
    """The real chain's shape, quotes and no-arbitrage orderings, at q = 0 (with a dividend yield above
    the rate, deep in-the-money calls may lose value with expiry and have positive theta)."""
    close = real_inputs[0]
    ch = build_chain(*real_inputs, ChainConfig(strike_increment=5.0, dividend_yield=0.0))
    n = len(close)
    assert n > 1200 and ch.mid.shape == (n, 5, 15, 2)
    for name in FIELDS:
        assert np.isfinite(np.asarray(getattr(ch, name))).all(), name
    mid, bid, ask = (np.asarray(getattr(ch, k)) for k in ("mid", "bid", "ask"))
    assert (bid < mid).all() and (mid < ask).all()
    call, put = mid[..., CALL], mid[..., PUT]
    dk = np.diff(call, axis=2)
    # calls fall in strike (strictly, above the $0.01 floor), puts rise; both rise with expiry
    assert (dk <= 0).all() and (dk[call[:, :, 1:] > MIN_PRICE] < 0).all()
    assert (np.diff(put, axis=2) >= 0).all()
    # calls (q = 0, r >= 0) gain value with time to expiry (deep in-the-money puts need not)
    assert (np.diff(call, axis=1) >= -1e-6 * close[:, None, None]).all()
    delta = np.asarray(ch.delta)
    assert ((delta[..., CALL] >= 0) & (delta[..., CALL] <= 1)).all()
    assert ((delta[..., PUT] <= 0) & (delta[..., PUT] >= -1)).all()
    assert (np.asarray(ch.theta)[..., CALL] < 0).all()


def test_real_chain_prices_the_dividend_yield(real_inputs):
    """The env's default chain prices the S&P 500's dividend yield (2% a year): put-call parity
    C - P = S exp(-q tau) - K exp(-r tau) on every unfloored pair, and the 28-day at-the-money call is
    cheaper, the put dearer, than with q = 0 (by about 6% and 5.5% on 2014-2018)."""
    close, day, iv, rate = real_inputs
    assert ChainConfig().dividend_yield == SP500_DIVIDEND_YIELD == 0.02
    ch = build_chain(close, day, iv, rate, ChainConfig())
    mid = np.asarray(ch.mid, np.float64)
    S = close[:, None, None]
    tau = np.asarray(ch.dte, np.float64)[:, :, None] / 365.0
    r = np.asarray(ch.rate, np.float64)[:, None, None]
    K = np.asarray(ch.strike, np.float64)[:, None, :]
    parity = S * np.exp(-0.02 * tau) - K * np.exp(-r * tau)
    live = (mid[..., CALL] > 2 * MIN_PRICE) & (mid[..., PUT] > 2 * MIN_PRICE)
    assert live.mean() > 0.9
    err = np.abs(mid[..., CALL] - mid[..., PUT] - parity)[live]
    assert err.max() <= 2e-6 * close.max(), err.max()           # float32 at spot ~2900: 3.5e-4 / ulp
    q0 = np.asarray(build_chain(close, day, iv, rate, ChainConfig(dividend_yield=0.0)).mid, np.float64)
    atm = (slice(None), 3, 7)                                   # 28 days, the at-the-money strike
    call, put = mid[atm][:, CALL] / q0[atm][:, CALL] - 1, mid[atm][:, PUT] / q0[atm][:, PUT] - 1
    assert (call < 0).all() and (put > 0).all()
    assert -0.08 < call.mean() < -0.04 and 0.04 < put.mean() < 0.07, (call.mean(), put.mean())


def test_leg_mid_is_leg_quotes_mid():
    """The env marks its book with `leg_mid` (no Greeks or spread): the same mid as `leg_quote`,
    live, deep out of the money (tick floor) and expired (intrinsic)."""
    from jaxtrade.envs.options.chain import ChainConfig, leg_mid, leg_quote

    cfg = ChainConfig(skew=-0.5)
    S = jnp.float32(2000.0)
    K = jnp.array([1800.0, 2000.0, 2300.0, 1800.0, 1900.0], jnp.float32)
    expiry = jnp.array([17_000, 17_010, 17_003, 16_990, 17_000], jnp.int32)
    kind = jnp.array([0, 1, 0, 0, 1], jnp.int32)
    day, rate, iv = jnp.int32(17_000), jnp.float32(0.02), jnp.float32(0.15)
    want = leg_quote(S, K, expiry, day, rate, iv, kind, cfg)[0]
    got = leg_mid(S, K, expiry, day, rate, iv, kind, cfg)
    np.testing.assert_allclose(np.asarray(got), np.asarray(want), rtol=1e-6)
    assert float(got[3]) == 200.0 and got[2] == jnp.float32(0.01)    # expired ITM call; floored far OTM call

"""Features: causality of every feature, TA-Lib agreement on real OHLCV, turbulence vs a plain loop."""

import numpy as np
import pytest
import talib

from jaxtrade.data import features as F

# Agreement with TA-Lib: relative 1e-8 (plus 1e-8 absolute) on every row from TA-Lib's first output on
# (the warm-up rows are NaN in both: the same seeding conventions, so no extra rows are skipped).
RTOL = ATOL = 1e-8


def perturbed(x: np.ndarray, t: int, seed: int) -> np.ndarray:
    """x with every row after t scaled by random positive factors (prices stay > 0)."""
    y = x.copy()
    y[t + 1:] *= np.exp(np.random.default_rng(seed).normal(0, 0.05, y[t + 1:].shape))
    return y


def ohlc(md, rows):
    return md.high[:rows], md.low[:rows], md.close[:rows], md.volume[:rows]


PER_SYMBOL = {
    "log_return": lambda h, lo, c, v: F.log_returns(c),
    "volatility": lambda h, lo, c, v: F.rolling_volatility(c),
    "momentum": lambda h, lo, c, v: F.momentum(c),
    "sharpe": lambda h, lo, c, v: F.rolling_sharpe(c),
    "macd_line": lambda h, lo, c, v: F.macd(c)[0],
    "macd_signal": lambda h, lo, c, v: F.macd(c)[1],
    "macd_hist": lambda h, lo, c, v: F.macd(c)[2],
    "rsi": lambda h, lo, c, v: F.rsi(c),
    "cci": lambda h, lo, c, v: F.cci(h, lo, c),
    "adx": lambda h, lo, c, v: F.adx(h, lo, c),
    "size_volume": lambda h, lo, c, v: F.size_proxy(c, v),
}


@pytest.mark.parametrize("name", sorted(PER_SYMBOL))
@pytest.mark.parametrize("t", [40, 120])
def test_per_symbol_features_are_causal(sp500_ohlcv, name, t):
    fn = PER_SYMBOL[name]
    h, lo, c, v = ohlc(sp500_ohlcv, 200)
    base = fn(h, lo, c, v)
    after = fn(*(perturbed(x, t, seed) for seed, x in enumerate((h, lo, c, v))))
    np.testing.assert_array_equal(after[:t + 1], base[:t + 1])
    assert not np.allclose(after[t + 1:], base[t + 1:], equal_nan=True)   # the perturbation is visible


@pytest.mark.parametrize("t", [70, 150])
def test_turbulence_is_causal(sp500_20, t):
    r = F.log_returns(sp500_20.close[:200])
    base = F.turbulence(r, window=60)
    after = F.turbulence(perturbed(r, t, 0), window=60)
    np.testing.assert_array_equal(after[:t + 1], base[:t + 1])
    assert not np.allclose(after[t + 1:], base[t + 1:])


def test_all_features_are_causal(sp500_20):
    """compute_features end to end (per-symbol, market incl. benchmark, raw arrays) on real data."""
    md, t, rows = sp500_20, 300, 340
    base = F.compute_features(md.close[:rows], benchmark=md.benchmark[:rows])
    after = F.compute_features(perturbed(md.close[:rows], t, 1),
                               benchmark=perturbed(md.benchmark[:rows, None], t, 2)[:, 0])
    for field in ("per_symbol", "market", "turbulence", "momentum", "volatility", "sharpe", "size"):
        a, b = getattr(after, field), getattr(base, field)
        np.testing.assert_array_equal(a[:t + 1], b[:t + 1], err_msg=field)
        assert not np.allclose(a[t + 1:], b[t + 1:]), field


def check_vs_talib(ours: np.ndarray, ref: np.ndarray):
    ours = ours[:, 0]
    np.testing.assert_array_equal(np.isnan(ours), np.isnan(ref))        # same warm-up rows
    ok = ~np.isnan(ref)
    assert ok.sum() > 4900
    np.testing.assert_allclose(ours[ok], ref[ok], rtol=RTOL, atol=ATOL)


def test_macd_matches_talib(sp500_ohlcv):
    c = sp500_ohlcv.close
    for ours, ref in zip(F.macd(c), talib.MACD(c[:, 0], 12, 26, 9), strict=True):
        check_vs_talib(ours, ref)


def test_rsi_matches_talib(sp500_ohlcv):
    check_vs_talib(F.rsi(sp500_ohlcv.close), talib.RSI(sp500_ohlcv.close[:, 0], 14))


def test_cci_matches_talib(sp500_ohlcv):
    h, lo, c = sp500_ohlcv.high, sp500_ohlcv.low, sp500_ohlcv.close
    check_vs_talib(F.cci(h, lo, c), talib.CCI(h[:, 0], lo[:, 0], c[:, 0], 20))


def test_adx_matches_talib(sp500_ohlcv):
    h, lo, c = sp500_ohlcv.high, sp500_ohlcv.low, sp500_ohlcv.close
    check_vs_talib(F.adx(h, lo, c), talib.ADX(h[:, 0], lo[:, 0], c[:, 0], 14))


def test_nasdaq_indicators_match_talib():
    from jaxtrade.data import load_dataset
    md = load_dataset("nasdaq-ohlcv")
    h, lo, c = md.high[:, 0], md.low[:, 0], md.close[:, 0]
    check_vs_talib(F.adx(md.high, md.low, md.close), talib.ADX(h, lo, c, 14))
    check_vs_talib(F.cci(md.high, md.low, md.close), talib.CCI(h, lo, c, 20))


def test_close_only_variants_are_talib_with_high_low_equal_close(sp500_20):
    """The documented close-only CCI/ADX = TA-Lib's with high = low = close, per symbol."""
    c = sp500_20.close[:, [0, 7]]
    cci, adx = F.cci(c, c, c), F.adx(c, c, c)
    for j in range(2):
        x = c[:, j]
        check_vs_talib(cci[:, j:j + 1], talib.CCI(x, x, x, 20))
        check_vs_talib(adx[:, j:j + 1], talib.ADX(x, x, x, 14))


def turbulence_loop(r: np.ndarray, t: int, window: int) -> float:
    """Plain definition: Mahalanobis distance (squared) of row t from rows t-window .. t-1."""
    hist = r[t - window:t]
    dev = r[t] - hist.mean(axis=0)
    return float(dev @ np.linalg.pinv(np.cov(hist, rowvar=False)) @ dev)


def test_turbulence_matches_loop(sp500_20):
    r = F.log_returns(sp500_20.close)
    turb = F.turbulence(r)
    assert np.isnan(turb[:253]).all() and np.isfinite(turb[253:]).all()
    for t in (253, 254, 1000, 4321, 8312):
        np.testing.assert_allclose(turb[t], turbulence_loop(r, t, 252), rtol=1e-8)


def test_turbulence_singular_covariance(sp500_20):
    """Two identical symbols make every covariance singular: the pinv path still matches the loop."""
    r = F.log_returns(sp500_20.close[:400, :4])
    r = np.concatenate([r, r[:, :1]], axis=1)
    turb = F.turbulence(r, window=100)
    for t in (101, 250, 399):
        np.testing.assert_allclose(turb[t], turbulence_loop(r, t, 100), rtol=1e-6)


def test_turbulence_single_symbol_is_zero(sp500_ohlcv):
    assert (F.turbulence(F.log_returns(sp500_ohlcv.close)) == 0).all()


def test_simple_features_by_definition(sp500_ohlcv):
    c, v = sp500_ohlcv.close, sp500_ohlcv.volume
    r = np.diff(np.log(c[:, 0]))
    t = 100
    np.testing.assert_allclose(F.momentum(c)[t, 0], np.log(c[t, 0] / c[t - 20, 0]), rtol=1e-12)
    window = r[t - 20:t]                                   # returns of rows t-19 .. t
    np.testing.assert_allclose(F.rolling_volatility(c)[t, 0], window.std(ddof=1), rtol=1e-9)
    np.testing.assert_allclose(F.rolling_sharpe(c)[t, 0], window.mean() / window.std(ddof=1), rtol=1e-8)
    np.testing.assert_allclose(F.size_proxy(c, v)[t, 0], (c[t - 19:t + 1, 0] * v[t - 19:t + 1, 0]).mean(),
                               rtol=1e-12)
    # no volume (adjusted close-only data): no causal size proxy at all, never a price level
    assert np.isnan(F.size_proxy(c)).all()


def test_feature_warmup(sp500_20, sp500_ohlcv):
    f = sp500_20.features()
    assert f.first_valid == 253 and f.per_symbol.shape == (8313, 20, len(F.FEATURE_NAMES))
    assert f.market_names == ("log_turbulence", "market_return", "benchmark_return")
    assert np.isfinite(f.per_symbol[253:]).all() and np.isfinite(f.market[253:]).all()
    g = sp500_ohlcv.features()
    assert g.first_valid == F.FEATURE_WARMUP == 33 and g.market_names == ("market_return",)


def back_adjust(x: np.ndarray, asset: int, row: int, factor: float) -> np.ndarray:
    """x [T, N] with asset's rows < row divided by factor: how a data vendor back-adjusts a split
    (factor 2 for 2:1) or dividend (factor close / (close - dividend)) that happens at `row`."""
    y = np.array(x, dtype=np.float64)
    y[:row, asset] /= factor
    return y


FEATURE_FIELDS = ("per_symbol", "market", "turbulence", "momentum", "volatility", "sharpe", "size")


def synthetic_ohlcv(T: int = 140, N: int = 3, seed: int = 0):
    rng = np.random.default_rng(seed)
    close = 50.0 * (1 + np.arange(N)) * np.exp(np.cumsum(rng.normal(0, 0.02, (T, N)), axis=0))
    spread = np.abs(rng.normal(0, 0.01, (T, N)))
    open_ = close * np.exp(rng.normal(0, 0.005, (T, N)))
    high = np.maximum(open_, close) * (1 + spread)
    low = np.minimum(open_, close) * (1 - spread)
    volume = rng.integers(1_000, 100_000, (T, N)).astype(np.float64)
    bench = 1000.0 * np.exp(np.cumsum(rng.normal(0, 0.01, T)))
    return open_, high, low, close, volume, bench


@pytest.mark.parametrize("kind", ["split_with_volume", "dividend_close_only"])
def test_features_invariant_to_back_adjustment(kind):
    """A split or dividend at row D, back-adjusted into one asset's history, changes nothing before D.

    A vendor's back-adjusted price on day t is the traded price divided by every later corporate action,
    so a feature that reads price *levels* (the old size proxy: trailing mean of the adjusted close)
    changes on days before the action: look-ahead. Scale-free features and dollar volume do not.
    """
    _, high, low, close, volume, bench = synthetic_ohlcv()
    D, asset = 110, 1
    if kind == "split_with_volume":                      # 3:1 split: prices / 3, volumes x 3 before D
        f = 3.0
        base = F.compute_features(close, high, low, volume, bench, turbulence_window=40)
        adj = F.compute_features(back_adjust(close, asset, D, f), back_adjust(high, asset, D, f),
                                 back_adjust(low, asset, D, f), back_adjust(volume, asset, D, 1 / f), bench,
                                 turbulence_window=40)
        assert base.has_size and adj.has_size
    else:                                                # 1.5% dividend, adjusted close-only data
        f = 1.015
        base = F.compute_features(close, benchmark=bench, turbulence_window=40)
        adj = F.compute_features(back_adjust(close, asset, D, f), benchmark=bench, turbulence_window=40)
        assert not base.has_size and np.isnan(base.size).all()
    assert base.first_valid < D - 10
    for field in FEATURE_FIELDS:
        a, b = getattr(adj, field), getattr(base, field)
        np.testing.assert_allclose(a[:D], b[:D], rtol=1e-9, atol=1e-12, err_msg=field)
    # the adjustment is a real change of the price history: levels before D differ
    assert not np.allclose(back_adjust(close, asset, D, f)[:D], close[:D])


"""Splits: lookback history, disjointness, train-only normalization, turbulence threshold, to_device."""

import dataclasses

import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

from jaxtrade.data import DataError, EnvData, MarketData, split
from jaxtrade.data import features as F

BOUNDS = dict(train=("1995-01-01", "2014-12-31"), val=("2015-01-01", "2018-12-31"),
              test=("2019-01-01", "2022-12-28"))


@pytest.fixture(scope="module")
def splits(sp500_20):
    return split(sp500_20, **BOUNDS, lookback=30)


def test_lookback_rows_precede_start(sp500_20, splits):
    for s, (start, end) in zip(splits, BOUNDS.values(), strict=True):
        assert s.start == 30 and s.n_rows == len(s.dates) == s.close.shape[0] == s.features.shape[0]
        first = sp500_20.dates.searchsorted(pd.Timestamp(start))
        assert s.dates[s.start] == sp500_20.dates[first] >= pd.Timestamp(start)
        assert s.dates[s.start - 1] < pd.Timestamp(start)                 # history is before the split
        np.testing.assert_array_equal(s.dates[:s.start], sp500_20.dates[first - 30:first])
        assert s.dates[-1] <= pd.Timestamp(end) and s.traded_dates[0] == s.dates[30]
        np.testing.assert_array_equal(s.close, sp500_20.close[first - 30:first - 30 + s.n_rows])
        np.testing.assert_array_equal(s.benchmark, sp500_20.benchmark[first - 30:first - 30 + s.n_rows])
    # traded rows are disjoint and in order
    assert splits.train.dates[-1] < splits.val.traded_dates[0]
    assert splits.val.dates[-1] < splits.test.traded_dates[0]


def test_train_only(sp500_20):
    s = split(sp500_20, train=("2000-01-01", "2001-12-31"), lookback=10)
    assert s.val is None and s.test is None and s.train.start == 10


def test_default_bounds(sp500_20):
    s = split(sp500_20, train=(None, "2000-12-31"), val=(None, "2010-12-31"), test=(None, None), lookback=30)
    assert s.train.dates[0] == sp500_20.dates[253]                       # warm-up, then the lookback rows
    assert s.train.traded_dates[0] == sp500_20.dates[283] and s.test.dates[-1] == sp500_20.dates[-1]
    assert s.val.traded_dates[0] == sp500_20.dates[sp500_20.dates.searchsorted(s.train.dates[-1]) + 1]


def test_split_errors(sp500_20):
    with pytest.raises(DataError) as info:
        split(sp500_20, train=("1990-01-01", "1999-12-31"), lookback=30)
    earliest = sp500_20.dates[253 + 30].strftime("%Y-%m-%d")              # warm-up + lookback rows
    assert info.value.rule == "split-history" and f"earliest possible start is {earliest}" in str(info.value)
    with pytest.raises(DataError) as info:
        split(sp500_20, train=("1995-01-01", "2005-12-31"), val=("2005-06-01", "2006-12-31"))
    assert info.value.rule == "split-overlap" and "2005-06-01" in str(info.value)
    with pytest.raises(DataError) as info:                                # out of order
        split(sp500_20, train=("2010-01-01", "2012-12-31"), val=("2000-01-01", "2001-12-31"))
    assert info.value.rule == "split-overlap"
    with pytest.raises(DataError) as info:
        split(sp500_20, train=("1995-01-01", "2005-12-31"), test=("2030-01-01", "2031-01-01"))
    assert info.value.rule == "split-empty" and "sp500-20" in str(info.value)


def test_normalization_uses_train_only(sp500_20, splits):
    """Changing the test period's prices leaves train (and val) features and stats exactly unchanged."""
    cut = sp500_20.dates.searchsorted(pd.Timestamp("2019-01-01"))
    close = sp500_20.close.copy()
    close[cut:] *= np.exp(np.random.default_rng(0).normal(0, 0.03, close[cut:].shape).cumsum(axis=0))
    changed = MarketData.from_arrays(sp500_20.dates, sp500_20.symbols, close, benchmark=sp500_20.benchmark,
                                     benchmark_name="SP500", source="changed")
    other = split(changed, **BOUNDS, lookback=30)
    for name in ("train", "val"):
        a, b = getattr(splits, name), getattr(other, name)
        np.testing.assert_array_equal(a.features, b.features)
        np.testing.assert_array_equal(a.market, b.market)
        assert a.turbulence_threshold == b.turbulence_threshold
    for x, y in zip(splits.test.stats, other.test.stats, strict=True):
        np.testing.assert_array_equal(x, y)
    assert not np.allclose(splits.test.features[30:], other.test.features[30:])


def test_normalization_ignores_validation_rows(sp500_20):
    """Rewriting every row after the training split's last day up to validation's end (val's own
    history rows -- a gap of two months leaves them outside train -- and its traded rows; closes and
    the benchmark) leaves the fitted statistics, the threshold and the training features bit for bit;
    rewriting training rows changes them (so the check can fail)."""
    bounds = dict(train=("2005-01-01", "2012-12-31"), val=("2013-03-01", "2015-12-31"))
    base = split(sp500_20, **bounds, lookback=30)
    dates = sp500_20.dates
    train_end, val_end = dates.get_loc(base.train.dates[-1]), dates.get_loc(base.val.dates[-1])
    assert dates.get_loc(base.val.dates[0]) > train_end                # val's history is after train

    def rewritten(lo, hi, seed):
        close, bench = sp500_20.close.copy(), sp500_20.benchmark.copy()
        rng = np.random.default_rng(seed)
        close[lo:hi] *= np.exp(rng.normal(0, 0.03, close[lo:hi].shape).cumsum(axis=0))
        bench[lo:hi] *= np.exp(rng.normal(0, 0.03, hi - lo).cumsum())
        md = MarketData.from_arrays(dates, sp500_20.symbols, close, benchmark=bench, benchmark_name="SP500",
                                    source="rewritten")
        return split(md, **bounds, lookback=30)

    other = rewritten(train_end + 1, val_end + 1, seed=0)
    for s in (other.train, other.val):
        for x, y in zip(base.train.stats, s.stats, strict=True):
            np.testing.assert_array_equal(x, y)
        assert s.turbulence_threshold == base.train.turbulence_threshold
    for name in ("features", "market", "turbulence"):
        np.testing.assert_array_equal(getattr(other.train, name), getattr(base.train, name))
    assert not np.allclose(other.val.features, base.val.features)           # val itself did change
    assert not np.allclose(other.val.market, base.val.market)

    inside = rewritten(dates.get_loc(base.train.traded_dates[0]) + 500, train_end + 1, seed=1)
    for x, y in zip(base.train.stats, inside.train.stats, strict=True):
        assert not np.allclose(x, y, rtol=1e-3)


def test_stats_fit_on_train_and_applied_unchanged(sp500_20, splits):
    raw = sp500_20.features()
    tr = splits.train
    lo = sp500_20.dates.get_loc(tr.traded_dates[0])
    hi = sp500_20.dates.get_loc(tr.dates[-1]) + 1
    flat = raw.per_symbol[lo:hi].reshape(-1, raw.per_symbol.shape[-1])
    np.testing.assert_allclose(tr.stats.feature_mean, flat.mean(axis=0), rtol=1e-12)
    np.testing.assert_allclose(tr.stats.feature_std, flat.std(axis=0), rtol=1e-12)
    v0 = sp500_20.dates.get_loc(splits.val.dates[0])
    val_raw = raw.per_symbol[v0:v0 + splits.val.n_rows]
    expect = np.clip((val_raw - tr.stats.feature_mean) / tr.stats.feature_std, -F.CLIP, F.CLIP)
    np.testing.assert_allclose(splits.val.features, expect, rtol=1e-12)
    traded = tr.features[tr.start:].reshape(-1, flat.shape[1])
    assert np.all(np.abs(traded.mean(axis=0)) < 0.02) and np.all(np.abs(traded.std(axis=0) - 1) < 0.05)


def test_turbulence_threshold(sp500_20, splits):
    tr = splits.train
    assert tr.turbulence_threshold == pytest.approx(np.quantile(tr.turbulence[tr.start:], 0.99), rel=1e-12)
    assert splits.test.turbulence_threshold == tr.turbulence_threshold
    s = split(sp500_20, **BOUNDS, turbulence_quantile=0.9)
    assert s.train.turbulence_threshold < tr.turbulence_threshold


def test_to_device(splits, sp500_ohlcv):
    d = splits.train.to_device()
    assert isinstance(d, EnvData)
    T, N, Fn = splits.train.n_rows, 20, len(F.FEATURE_NAMES)
    shapes = dict(close=(T, N), open=(T, N), high=(T, N), low=(T, N), volume=(T, N), features=(T, N, Fn),
                  market=(T, 3), turbulence=(T,), momentum=(T, N), volatility=(T, N), sharpe=(T, N),
                  size=(T, N), turbulence_threshold=(), fees=(T, 4))
    for f in dataclasses.fields(EnvData):
        if f.name in shapes:
            x = getattr(d, f.name)
            assert x.dtype == jnp.float32 and x.shape == shapes[f.name], f.name
            if f.name != "fees":
                assert bool(jnp.isfinite(x).all()), f.name
    # The dated fee schedule starts 1996-10-11: earlier rows are NaN and the first traded one is the gap.
    covered = np.asarray(splits.train.dates) >= np.datetime64("1996-10-11")
    # (not isfinite: before the TAF existed its cap is inf)
    assert not bool(jnp.isnan(d.fees[covered]).any()) and bool(jnp.isnan(d.fees[~covered]).all())
    assert d.fee_gap == f"{splits.train.traded_dates[0]:%Y-%m-%d}" == "1995-01-03"
    np.testing.assert_allclose(np.asarray(d.fees)[-1], [22.10e-6, 0.000119, 5.95, 0.002], rtol=1e-6)
    static = {"has_volume", "has_size", "periods_per_year", "start", "fee_gap"}
    assert (set(shapes) | static | {"day", "rollover", "aux", "valid_rows", "start_count"}
            == {f.name for f in dataclasses.fields(EnvData)})
    assert d.valid_rows is None and d.n_valid_rows == d.n_rows and d.start_count is None
    # day: calendar days since 1970 of each row's date; aux: none on sp500-20.
    assert d.day.dtype == jnp.int32 and d.day.shape == (T,) and d.aux == {}
    np.testing.assert_array_equal(np.asarray(d.day).astype("datetime64[D]"),
                                  splits.train.dates.values.astype("datetime64[D]"))
    np.testing.assert_array_equal(d.rollover, d.day)          # daily data: one rollover per calendar day
    assert d.start == splits.train.start == 30
    assert not d.has_volume and d.periods_per_year == 252.0 and d.n_rows == T and d.n_assets == N
    np.testing.assert_array_equal(d.open, d.close)                          # close-only data repeat close
    assert float(jnp.abs(d.volume).max()) == 0.0
    # adjusted close-only: no causal size proxy; NaN on the host, zeros and has_size False on the device
    assert np.isnan(splits.train.size).all() and not d.has_size and float(jnp.abs(d.size).max()) == 0.0
    np.testing.assert_allclose(d.close, splits.train.close.astype(np.float32))
    s = split(sp500_ohlcv, train=("2000-01-01", "2010-12-31"), test=("2011-01-01", None), lookback=20)
    e = s.test.to_device()
    assert e.has_volume and e.has_size and e.market.shape == (s.test.n_rows, 1)
    np.testing.assert_allclose(e.size[-1], (s.test.close * s.test.volume)[-20:].mean(axis=0), rtol=1e-6)
    assert float(e.turbulence_threshold) == np.inf and float(jnp.abs(e.turbulence).max()) == 0.0
    assert bool((e.high >= e.close).all()) and float(e.volume.max()) > 0


def test_split_past_the_data_end_warns(sp500_20):
    import warnings
    with pytest.warns(UserWarning, match=r"test split .*2023-06-30.* data end on 2022-12-28") as got:
        s = split(sp500_20, train=("2015-01-01", "2018-12-31"), test=("2019-01-01", "2023-06-30"),
                  lookback=30)
    assert s.test.dates[-1] == pd.Timestamp("2022-12-28")
    assert "2019-01-02 .. 2022-12-28" in str(got[0].message)           # the period actually covered
    with warnings.catch_warnings():                                    # ending on the last day: silent
        warnings.simplefilter("error")
        split(sp500_20, train=("2015-01-01", "2018-12-31"), test=("2019-01-01", "2022-12-28"), lookback=30)


def test_aux_series_travel_with_their_rows_into_env_data():
    """sp500-vix: the VIX / 100 rides along as aux["iv"], cut with the split's rows (history rows
    included) and on the device unchanged; it is part of the data fingerprint."""
    from jaxtrade.data import load_dataset
    from jaxtrade.data.preprocess import fingerprint

    md = load_dataset("sp500-vix")
    assert md.symbols == ("SP500",) and md.n_rows == 1257 and md.aux["iv"][0] == pytest.approx(0.1376)
    s = split(md, train=("2015-01-01", "2016-12-31"), lookback=30).train
    rows = md.dates.get_indexer(s.dates)
    np.testing.assert_array_equal(s.aux["iv"], md.aux["iv"][rows])
    np.testing.assert_allclose(np.asarray(s.to_device().aux["iv"]), md.aux["iv"][rows], rtol=1e-7)
    bumped = dataclasses.replace(md, aux={"iv": md.aux["iv"] * 1.01}, _cache={})
    assert fingerprint(bumped) != fingerprint(md)

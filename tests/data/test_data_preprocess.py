"""Preprocessor: split == fit + transform, save/load round trip, no look-ahead, errors; fingerprint."""

import dataclasses
import json

import numpy as np
import pandas as pd
import pytest

from jaxtrade.data import DataError, MarketData, Preprocessor, Split, fingerprint, split
from jaxtrade.data import features as F
from jaxtrade.data import preprocess as P

TRAIN = ("1995-01-01", "2014-12-31")
VAL = ("2015-01-01", "2018-12-31")
TEST = ("2019-01-01", "2022-12-28")


@pytest.fixture(scope="module")
def pre(sp500_20):
    return Preprocessor.fit(sp500_20, train=TRAIN, window=30)


def assert_same_split(a: Split, b: Split):
    """Every field of two Splits equal, bit for bit."""
    for f in dataclasses.fields(Split):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if f.name == "stats":
            for u, v in zip(x, y, strict=True):
                assert u.dtype == v.dtype and np.array_equal(u, v), f.name
        elif isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
            assert x.dtype == y.dtype and x.shape == y.shape and np.array_equal(x, y, equal_nan=True), f.name
        elif isinstance(x, pd.DatetimeIndex):
            assert x.equals(y), f.name
        else:
            assert x == y, f.name


def _with(md: MarketData, **arrays) -> MarketData:
    """md with some arrays replaced (the constructor checks shapes only; the source name stays)."""
    fields = {k: getattr(md, k) for k in ("dates", "symbols", "close", "open", "high", "low", "volume",
                                          "benchmark", "benchmark_name", "source", "periods_per_year")}
    return MarketData(**{**fields, **arrays})


def test_split_is_fit_then_transform(sp500_20, pre):
    splits = split(sp500_20, train=TRAIN, val=VAL, test=TEST, lookback=30)
    assert_same_split(pre.transform(sp500_20, VAL, name="val"), splits.val)
    assert_same_split(pre.transform(sp500_20, TRAIN, name="train"), splits.train)
    assert_same_split(pre.transform(sp500_20, TEST), splits.test)             # name defaults to "test"
    assert pre.transform(sp500_20, VAL).name == "test"
    tr = splits.train
    assert pre.window == tr.start == 30 and pre.turbulence_threshold == tr.turbulence_threshold
    assert pre.train == (tr.traded_dates[0], tr.dates[-1]) and pre.symbols == sp500_20.symbols
    assert pre.feature_names == F.FEATURE_NAMES == tr.feature_names and pre.market_names == tr.market_names
    assert (pre.turbulence_window, pre.turbulence_quantile) == (F.TURBULENCE_WINDOW, 0.99)
    assert pre.fingerprint == fingerprint(sp500_20)
    # fit computes exactly what split did: the statistics of the training split's traded rows
    raw = sp500_20.features()
    lo, hi = sp500_20.dates.get_loc(pre.train[0]), sp500_20.dates.get_loc(pre.train[1])
    for x, y in zip(pre.stats, F.fit_norm(raw.per_symbol[lo:hi + 1], raw.market[lo:hi + 1]), strict=True):
        np.testing.assert_array_equal(x, y)


def test_transform_later_data(sp500_20):
    """Fitted on the data up to the training end only, applied to the whole (later, longer) file."""
    end = sp500_20.dates.searchsorted(pd.Timestamp("2015-01-01"))
    rows = lambda x: None if x is None else x[:end]
    early = _with(sp500_20, dates=sp500_20.dates[:end], close=rows(sp500_20.close),
                  benchmark=rows(sp500_20.benchmark))
    pre = Preprocessor.fit(early, train=TRAIN, window=30)
    assert pre.fingerprint != fingerprint(sp500_20)
    assert_same_split(pre.transform(sp500_20, TEST), split(sp500_20, train=TRAIN, test=TEST).test)


def test_no_look_ahead(sp500_20, pre):
    """Perturbing every row after the training end leaves everything fitted bit-identical."""
    cut = sp500_20.dates.get_loc(pre.train[1]) + 1
    rng = np.random.default_rng(0)
    close, bench = sp500_20.close.copy(), sp500_20.benchmark.copy()
    close[cut:] *= rng.uniform(0.5, 2.0, close[cut:].shape)
    bench[cut:] *= rng.uniform(0.5, 2.0, bench[cut:].shape)
    changed = _with(sp500_20, close=close, benchmark=bench)
    other = Preprocessor.fit(changed, train=TRAIN, window=30)
    assert other.fingerprint != pre.fingerprint                               # the data did change
    assert other == dataclasses.replace(pre, fingerprint=other.fingerprint)
    for x, y in zip(pre.stats, other.stats, strict=True):
        assert x.tobytes() == y.tobytes()
    assert np.float64(pre.turbulence_threshold).tobytes() == np.float64(other.turbulence_threshold).tobytes()
    assert_same_split(other.transform(changed, TRAIN, name="train"),
                      pre.transform(sp500_20, TRAIN, name="train"))
    assert not np.array_equal(other.transform(changed, VAL).features, pre.transform(sp500_20, VAL).features)


def test_save_load_round_trip(sp500_20, pre, tmp_path):
    assert pre.save(tmp_path / "pre") == tmp_path / "pre"
    assert sorted(p.name for p in (tmp_path / "pre").iterdir()) == ["preprocessor.json", "preprocessor.npz"]
    meta = json.loads((tmp_path / "pre" / "preprocessor.json").read_text())
    assert meta == {"format_version": 1, "fingerprint": fingerprint(sp500_20),
                    "symbols": list(sp500_20.symbols), "feature_names": list(F.FEATURE_NAMES),
                    "market_names": list(pre.market_names), "window": 30, "turbulence_window": 252,
                    "turbulence_quantile": 0.99,
                    "train": [pre.train[0].isoformat(), pre.train[1].isoformat()]}
    with np.load(tmp_path / "pre" / "preprocessor.npz", allow_pickle=False) as z:
        assert sorted(z.files) == sorted(F.NormStats._fields + ("turbulence_threshold",))
    loaded = Preprocessor.load(tmp_path / "pre")
    assert loaded == pre and loaded is not pre
    assert_same_split(loaded.transform(sp500_20, VAL, name="val"), pre.transform(sp500_20, VAL, name="val"))
    # equality is strict: one statistic, the threshold or a name off by a little is a different one
    bumped = pre.stats._replace(feature_std=pre.stats.feature_std + np.r_[1e-12, np.zeros(8)])
    assert loaded != dataclasses.replace(pre, stats=bumped)
    assert loaded != dataclasses.replace(pre, turbulence_threshold=np.nextafter(pre.turbulence_threshold, 0))
    assert loaded != dataclasses.replace(pre, window=29)
    assert loaded != dataclasses.replace(pre, train=(pre.train[0], pd.Timestamp("2014-12-30")))


def test_round_trip_single_symbol(sp500_ohlcv, tmp_path):
    """One symbol: the threshold is +inf, which JSON cannot hold, so it travels in the npz."""
    pre = Preprocessor.fit(sp500_ohlcv, train=("2000-01-01", "2010-12-31"), window=20,
                           turbulence_quantile=0.5)
    assert pre.turbulence_threshold == np.inf and pre.market_names == ("market_return",)
    loaded = Preprocessor.load(pre.save(tmp_path))
    assert loaded == pre
    assert_same_split(loaded.transform(sp500_ohlcv, ("2011-01-01", None)),
                      split(sp500_ohlcv, train=("2000-01-01", "2010-12-31"), test=("2011-01-01", None),
                            lookback=20, turbulence_quantile=0.5).test)


def test_transform_errors(sp500_20, pre):
    with pytest.raises(DataError) as info:                                    # a symbol less
        pre.transform(_with(sp500_20, symbols=sp500_20.symbols[:-1], close=sp500_20.close[:, :-1]), TEST)
    assert info.value.rule == "preprocessor-symbols"
    assert f"missing ['{sp500_20.symbols[-1]}']" in str(info.value)
    swapped = sp500_20.symbols[1:2] + sp500_20.symbols[:1] + sp500_20.symbols[2:]
    with pytest.raises(DataError, match="another order") as info:
        pre.transform(_with(sp500_20, symbols=swapped), TEST)
    assert info.value.rule == "preprocessor-symbols"
    with pytest.raises(DataError) as info:                                    # no benchmark column
        pre.transform(_with(sp500_20, benchmark=None, benchmark_name=None), TEST)
    assert info.value.rule == "preprocessor-features" and "benchmark_return" in str(info.value)
    with pytest.raises(DataError) as info:                                    # no room for 30 history rows
        pre.transform(sp500_20, ("1990-06-01", "1996-12-31"), name="val")
    earliest = sp500_20.dates[253 + 30].strftime("%Y-%m-%d")
    assert info.value.rule == "split-history" and f"earliest possible start is {earliest}" in str(info.value)
    assert "the val split needs 30 lookback rows" in str(info.value)
    with pytest.raises(DataError) as info:
        pre.transform(sp500_20, ("2030-01-01", None))
    assert info.value.rule == "split-empty"
    with pytest.raises(DataError, match="split-history"):
        Preprocessor.fit(sp500_20, train=("1990-01-01", "1999-12-31"), window=30)
    with pytest.raises(ValueError, match="window must be an int >= 0"):
        Preprocessor.fit(sp500_20, train=TRAIN, window=-1)


def test_load_errors(pre, tmp_path):
    d = pre.save(tmp_path / "pre")
    good = (d / "preprocessor.json").read_text()
    meta = json.loads(good)
    del meta["window"]
    (d / "preprocessor.json").write_text(json.dumps(meta))
    with pytest.raises(DataError, match=r"missing keys \['window'\]") as info:
        Preprocessor.load(d)
    assert info.value.rule == "preprocessor-file" and str(d / "preprocessor.json") in str(info.value)
    (d / "preprocessor.json").write_text(json.dumps({**json.loads(good), "window": 2.5}))
    with pytest.raises(DataError, match="key 'window' must be an int"):
        Preprocessor.load(d)
    (d / "preprocessor.json").write_text(good)
    arrays = dict(np.load(d / "preprocessor.npz"))
    np.savez(d / "preprocessor.npz", **{**arrays, "market_std": arrays["market_std"][:-1]})
    with pytest.raises(DataError, match="array 'market_std' is float64 \\(2,\\), expected float64 \\(3,\\)"):
        Preprocessor.load(d)
    np.savez(d / "preprocessor.npz", **{**arrays, "market_std": np.array([{"a": 1}], dtype=object)})
    with pytest.raises(DataError, match="npz of plain arrays"):                # pickled objects refused
        Preprocessor.load(d)


def test_fingerprint(sp500_20):
    fp = fingerprint(sp500_20)
    assert len(fp) == 64 and int(fp, 16) >= 0
    copy = MarketData.from_arrays(sp500_20.dates, sp500_20.symbols, sp500_20.close,
                                  benchmark=sp500_20.benchmark, benchmark_name="other name",
                                  source="elsewhere.csv")
    assert fingerprint(copy) == fp                                            # same data, same hash
    close = sp500_20.close.copy()
    close[-1, 3] *= 1 + 1e-12                                                 # one price, one ulp-ish
    assert fingerprint(_with(sp500_20, close=close)) != fp
    assert fingerprint(_with(sp500_20, benchmark=None)) != fp
    assert fingerprint(_with(sp500_20, dates=sp500_20.dates + pd.Timedelta(hours=1))) != fp
    renamed = ("X",) + sp500_20.symbols[1:]
    assert fingerprint(_with(sp500_20, symbols=renamed)) != fp
    assert P.fingerprint is fingerprint

"""Date splits with observation history, normalized features, and the device handoff (`EnvData`)."""

from __future__ import annotations

import dataclasses
from typing import TYPE_CHECKING, NamedTuple

import numpy as np
import pandas as pd

from jaxtrade.data import features as feats
from jaxtrade.data.dates import format_date
from jaxtrade.data.envdata import EnvData
from jaxtrade.data.errors import DataError

if TYPE_CHECKING:
    from jaxtrade.data.market import MarketData


@dataclasses.dataclass(frozen=True, eq=False)
class Split:
    """One date range of a MarketData, with `start` rows of history before it (T = start + traded rows).

    Rows [0, start) are observation history only (never traded): an environment with window = start
    trades first at row `start`, which is the split's first date.

    name: "train" / "val" / "test". dates: [T] including the history rows. start: index of the first
        traded row (= the number of history rows = lookback). symbols: N names.
    close/open/high/low/volume: [T, N] float64 (open/high/low/volume None where the data lack them).
    benchmark: [T] or None; benchmark_name.
    features: [T, N, F] normalized with training-split statistics (`stats`), clipped to +-10.
    market: [T, M] normalized likewise. feature_names (F), market_names (M).
    turbulence: [T] raw. momentum, volatility, sharpe, size: [T, N] raw (see EnvData).
    turbulence_threshold: float, the `turbulence_quantile` of the training split's turbulence
        (+inf with fewer than two symbols).
    periods_per_year, source: as in MarketData. stats: the NormStats applied.
    """

    name: str
    dates: pd.DatetimeIndex
    start: int
    symbols: tuple[str, ...]
    close: np.ndarray
    open: np.ndarray | None
    high: np.ndarray | None
    low: np.ndarray | None
    volume: np.ndarray | None
    benchmark: np.ndarray | None
    benchmark_name: str | None
    features: np.ndarray
    market: np.ndarray
    feature_names: tuple[str, ...]
    market_names: tuple[str, ...]
    turbulence: np.ndarray
    momentum: np.ndarray
    volatility: np.ndarray
    sharpe: np.ndarray
    size: np.ndarray
    turbulence_threshold: float
    periods_per_year: float
    source: str
    stats: feats.NormStats

    @property
    def n_rows(self) -> int:
        return len(self.dates)

    @property
    def traded_dates(self) -> pd.DatetimeIndex:
        """[T - start] the dates actually traded (the requested range)."""
        return self.dates[self.start:]

    def to_device(self) -> EnvData:
        """float32 jax arrays, fields as documented in `jaxtrade.data.envdata.EnvData`.

        Close-only data repeat close in open/high/low; volume is zeros where absent (has_volume False).
        """
        import jax.numpy as jnp

        f32 = lambda x: jnp.asarray(np.asarray(x, dtype=np.float32))
        close = self.close
        return EnvData(
            close=f32(close),
            open=f32(close if self.open is None else self.open),
            high=f32(close if self.high is None else self.high),
            low=f32(close if self.low is None else self.low),
            volume=f32(np.zeros_like(close) if self.volume is None else self.volume),
            features=f32(self.features),
            market=f32(self.market),
            turbulence=f32(self.turbulence),
            momentum=f32(self.momentum),
            volatility=f32(self.volatility),
            sharpe=f32(self.sharpe),
            size=f32(self.size),
            turbulence_threshold=f32(self.turbulence_threshold),
            start=int(self.start),
            has_volume=self.volume is not None,
            periods_per_year=float(self.periods_per_year),
        )

    def __repr__(self) -> str:
        first, last = format_date(self.dates[self.start]), format_date(self.dates[-1])
        return (f"Split({self.name!r}: {first} .. {last}, "
                f"{self.n_rows - self.start} traded rows + {self.start} history rows, "
                f"{len(self.symbols)} symbols, {self.features.shape[-1]} features)")


class Splits(NamedTuple):
    """train, val, test Splits (val/test None when not requested)."""

    train: Split
    val: Split | None
    test: Split | None


def _bound(value) -> pd.Timestamp:
    ts = pd.Timestamp(value)
    return ts.tz_convert("UTC").tz_localize(None) if ts.tz is not None else ts


def _last_row(dates: pd.DatetimeIndex, end) -> int:
    """Index of the last row on or before `end`; a date-only end includes that whole day (intraday)."""
    ts = _bound(end)
    if ts == ts.normalize():
        return int(dates.searchsorted(ts + pd.Timedelta(days=1), "left")) - 1
    return int(dates.searchsorted(ts, "right")) - 1


def _rows(dates: pd.DatetimeIndex, rng, default_start: int, *, name: str, source: str) -> tuple[int, int]:
    """(first, last) traded row indices (inclusive) of a (start, end) date range; None bounds default
    to `default_start` and the last row."""
    if not isinstance(rng, (tuple, list)) or len(rng) != 2:
        raise ValueError(f"{name} must be a (start, end) pair of dates, got {rng!r}")
    lo = default_start if rng[0] is None else int(dates.searchsorted(_bound(rng[0]), "left"))
    hi = len(dates) - 1 if rng[1] is None else _last_row(dates, rng[1])
    if hi - lo + 1 < 2:
        raise DataError("split-empty", source=source, row=f"{rng[0]} .. {rng[1]}",
                        detail=f"the {name} split holds {max(hi - lo + 1, 0)} rows of the data "
                               f"({format_date(dates[0])} .. {format_date(dates[-1])}); it needs at least 2")
    return lo, hi


def make_splits(md: MarketData, *, train, val=None, test=None, lookback: int = 30,
                turbulence_quantile: float = 0.99,
                turbulence_window: int = feats.TURBULENCE_WINDOW) -> Splits:
    """Cut md by date into train / val / test, each with `lookback` rows of history before its start.

    Args:
      md: the MarketData.
      train, val, test: (start, end) dates, inclusive (str, Timestamp, date). A date-only end includes
        that whole day. None as train's start means the earliest row with enough history; None as
        val's or test's start means the row after the previous split; None as an end means the last row.
        val and test may be None (short files).
      lookback: history rows before each split's start (the environment's observation window).
      turbulence_quantile: quantile of the training split's turbulence used as the gate threshold.
      turbulence_window: trailing rows of the turbulence covariance.

    Raises DataError: "split-empty" (< 2 rows), "split-overlap" (splits overlap or are out of
    chronological order), "split-history" (fewer than lookback rows after the feature warm-up
    before the split's start). Normalization statistics come from the training split's traded rows
    only and are applied unchanged to val and test.
    """
    if lookback < 0:
        raise ValueError(f"lookback must be >= 0, got {lookback}")
    if not 0.0 <= turbulence_quantile <= 1.0:
        raise ValueError(f"turbulence_quantile must be in [0, 1], got {turbulence_quantile}")
    f = md.features(turbulence_window)
    earliest = f.first_valid + lookback
    ranges, prev_end = {}, None
    for name, rng in (("train", train), ("val", val), ("test", test)):
        if rng is None:
            continue
        default = earliest if prev_end is None else prev_end[1] + 1
        lo, hi = _rows(md.dates, rng, default, name=name, source=md.source)
        if prev_end is not None and lo <= prev_end[1]:
            raise DataError("split-overlap", source=md.source, row=format_date(md.dates[lo]),
                            detail=f"{name} starts on or before the {prev_end[0]} split's last date "
                                   f"{format_date(md.dates[prev_end[1]])}; splits must be disjoint and in "
                                   "order train < val < test")
        if lo < earliest:
            raise DataError("split-history", source=md.source, row=format_date(md.dates[lo]),
                            detail=f"the {name} split needs {lookback} lookback rows after {f.first_valid} "
                                   f"feature warm-up rows before its start; earliest possible start is "
                                   + (format_date(md.dates[earliest]) if earliest < md.n_rows else "none"))
        ranges[name] = (lo, hi)
        prev_end = (name, hi)

    lo, hi = ranges["train"]
    stats = feats.fit_norm(f.per_symbol[lo:hi + 1], f.market[lo:hi + 1])
    threshold = (float(np.quantile(f.turbulence[lo:hi + 1], turbulence_quantile))
                 if md.n_symbols >= 2 else float("inf"))
    per_symbol, market = feats.apply_norm(f.per_symbol, f.market, stats)

    def cut(name):
        if name not in ranges:
            return None
        a, b = ranges[name][0] - lookback, ranges[name][1] + 1
        rows = lambda x: None if x is None else x[a:b]
        return Split(name, md.dates[a:b], lookback, md.symbols, rows(md.close), rows(md.open), rows(md.high),
                     rows(md.low), rows(md.volume), rows(md.benchmark), md.benchmark_name, per_symbol[a:b],
                     market[a:b], f.feature_names, f.market_names, f.turbulence[a:b], f.momentum[a:b],
                     f.volatility[a:b], f.sharpe[a:b], f.size[a:b], threshold, md.periods_per_year,
                     md.source, stats)

    return Splits(cut("train"), cut("val"), cut("test"))

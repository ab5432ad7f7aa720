"""`Split`: one date range of normalized data with its observation history, and the device handoff
(`EnvData`). Splits are made by `jaxtrade.data.preprocess` (`split`, `Preprocessor.transform`)."""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import numpy as np
import pandas as pd

from jaxtrade.data import features as feats
from jaxtrade.data import fees as fees_lib
from jaxtrade.data.dates import format_date, rollover_days
from jaxtrade.data.envdata import EnvData


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
    turbulence: [T] raw. momentum, volatility, sharpe, size: [T, N] raw (see EnvData); size is all NaN
    where the data have no volume (no causal size proxy: `jaxtrade.data.features.size_proxy`).
    turbulence_threshold: float, the `turbulence_quantile` of the training split's turbulence
        (+inf with fewer than two symbols).
    periods_per_year, source: as in MarketData. stats: the NormStats applied.
    aux: MarketData.aux cut to the split's rows (raw, not normalized).
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
    aux: dict = dataclasses.field(default_factory=dict)

    @property
    def n_rows(self) -> int:
        return len(self.dates)

    @property
    def traded_dates(self) -> pd.DatetimeIndex:
        """[T - start] the dates actually traded (the requested range)."""
        return self.dates[self.start:]

    def to_device(self) -> EnvData:
        """float32 jax arrays, fields as documented in `jaxtrade.data.envdata.EnvData`.

        Close-only data repeat close in open/high/low; volume is zeros where absent (has_volume False);
        size is zeros where there is no causal size proxy (has_size False).
        """
        import jax.numpy as jnp

        f32 = lambda x: jnp.asarray(np.asarray(x, dtype=np.float32))
        close = self.close
        fees, _ = fees_lib.regulatory_fee_rates_or_nan(self.dates)
        _, fee_gap = fees_lib.regulatory_fee_rates_or_nan(self.dates[self.start:])
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
            size=f32(np.nan_to_num(self.size, nan=0.0)),
            turbulence_threshold=f32(self.turbulence_threshold),
            fees=f32(fees),
            fee_gap=fee_gap,
            day=jnp.asarray(np.asarray(self.dates.values, "datetime64[D]").astype(np.int32)),   # any unit
            rollover=jnp.asarray(rollover_days(self.dates)),
            aux={k: f32(v) for k, v in self.aux.items()},
            start=int(self.start),
            has_volume=self.volume is not None,
            has_size=bool(np.isfinite(self.size).all()),
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

"""`MarketData`: validated, aligned, host-side market data (numpy/pandas)."""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence

import numpy as np
import pandas as pd

from jaxtrade.data import features as feats
from jaxtrade.data.dates import describe_periods_per_year, infer_periods_per_year
from jaxtrade.data.validate import Panel, clean_panel

# Fewest rows a load may leave: the per-symbol feature warm-up plus two traded rows. The
# turbulence window (252 rows for N >= 2) and the lookback are checked by `split` / `Preprocessor`,
# where they are set.
MIN_ROWS = feats.FEATURE_WARMUP + 2


def _readonly(x: np.ndarray | None) -> np.ndarray | None:
    if x is None:
        return None
    x = np.array(x, dtype=np.float64)   # a private copy: features are cached, so the data must not change
    x.setflags(write=False)
    return x


@dataclasses.dataclass(frozen=True, eq=False)
class MarketData:
    """Validated market data on one calendar: T rows (dates), N symbols. Build it with `load_csv`,
    `load_dataset` or `MarketData.from_arrays`, which validate; the constructor only checks shapes.

    dates: [T] pd.DatetimeIndex, strictly increasing, naive (intraday times kept).
    symbols: N names.
    close: [T, N] float64 > 0, quote currency. open/high/low: [T, N] or None (close-only data).
    volume: [T, N] float64 >= 0 (shares per row) or None.
    benchmark: [T] float64 > 0 (e.g. the S&P 500 index close) or None; benchmark_name names it.
    source: the file or dataset name the data came from.
    periods_per_year: bars per year: given, or inferred from the dates (intraday: the bars observed per
        complete calendar week x 365.25 / 7; daily: 252, or 365 with weekend bars; see
        `jaxtrade.data.dates.infer_periods_per_year`). `periods_per_year_basis` says which, in words.
    aux: named aligned series {name: [T] float64} that are not prices of a traded symbol (e.g. "iv",
        an implied volatility index as a fraction: VIX / 100), NaN where unknown; empty by default.
        Environments that need one (the options env's implied volatility) read it from here.
    """

    dates: pd.DatetimeIndex
    symbols: tuple[str, ...]
    close: np.ndarray
    open: np.ndarray | None = None
    high: np.ndarray | None = None
    low: np.ndarray | None = None
    volume: np.ndarray | None = None
    benchmark: np.ndarray | None = None
    benchmark_name: str | None = None
    source: str = "?"
    periods_per_year: float = 252.0
    aux: dict = dataclasses.field(default_factory=dict)
    _cache: dict = dataclasses.field(default_factory=dict, repr=False, compare=False)

    def __post_init__(self):
        set_ = lambda k, v: object.__setattr__(self, k, v)
        set_("dates", pd.DatetimeIndex(self.dates).as_unit("ns"))
        set_("symbols", tuple(str(s) for s in self.symbols))
        for k in ("close", "open", "high", "low", "volume", "benchmark"):
            set_(k, _readonly(getattr(self, k)))
        T, N = len(self.dates), len(self.symbols)
        for k in ("close", "open", "high", "low", "volume"):
            x = getattr(self, k)
            if x is not None and x.shape != (T, N):
                raise ValueError(f"{k} has shape {x.shape}, expected {(T, N)}")
        if self.benchmark is not None and self.benchmark.shape != (T,):
            raise ValueError(f"benchmark has shape {self.benchmark.shape}, expected {(T,)}")
        aux = {str(k): _readonly(np.asarray(v, dtype=np.float64)) for k, v in (self.aux or {}).items()}
        for k, v in aux.items():
            if v.shape != (T,):
                raise ValueError(f"aux[{k!r}] has shape {v.shape}, expected {(T,)}")
        set_("aux", aux)
        if (self.open is None) != (self.high is None) or (self.high is None) != (self.low is None):
            raise ValueError("open, high and low come together or not at all")

    @classmethod
    def from_arrays(cls, dates, symbols: Sequence[str], close, *, open=None, high=None, low=None,
                    volume=None, benchmark=None, benchmark_name: str | None = None, source: str = "arrays",
                    max_gap: int = 5, leading: str = "drop", periods_per_year: float | None = None
                    ) -> MarketData:
        """Validate and fill raw arrays (NaN = missing) exactly as `load_csv` does, then build.

        close/open/high/low/volume: [T, N]; benchmark: [T] (validated as one more price series).
        See `jaxtrade.data.validate` for the rules and the fill policy.
        """
        dates = pd.DatetimeIndex(dates).as_unit("ns")
        symbols = tuple(str(s) for s in symbols)
        fields = {k: np.asarray(v, dtype=np.float64) for k, v in
                  (("close", close), ("open", open), ("high", high), ("low", low), ("volume", volume))
                  if v is not None}
        return build(Panel(dates, symbols, fields, None), benchmark=benchmark, benchmark_name=benchmark_name,
                     source=source, max_gap=max_gap, leading=leading, periods_per_year=periods_per_year)

    @property
    def n_rows(self) -> int:
        return len(self.dates)

    @property
    def n_symbols(self) -> int:
        return len(self.symbols)

    @property
    def periods_per_year_basis(self) -> str:
        """One sentence: how `periods_per_year` was derived (`dates.describe_periods_per_year`)."""
        return describe_periods_per_year(self.dates, self.periods_per_year)

    @property
    def has_ohlc(self) -> bool:
        return self.high is not None

    @property
    def has_volume(self) -> bool:
        return self.volume is not None

    def features(self, turbulence_window: int = feats.TURBULENCE_WINDOW) -> feats.Features:
        """Raw causal features of every row (computed once per turbulence_window, then cached)."""
        key = ("features", turbulence_window)
        if key not in self._cache:
            self._cache[key] = feats.compute_features(self.close, self.high, self.low, self.volume,
                                                      self.benchmark, turbulence_window=turbulence_window)
        return self._cache[key]

    def __repr__(self) -> str:
        span = f"{self.dates[0]} .. {self.dates[-1]}" if self.n_rows else "empty"
        kind = "OHLC" if self.has_ohlc else "close-only"
        return (f"MarketData({self.source!r}: {self.n_rows} rows x {self.n_symbols} symbols, {span}, {kind}"
                f"{', volume' if self.has_volume else ''}"
                f"{f', benchmark {self.benchmark_name}' if self.benchmark is not None else ''})")


def _with_benchmark(panel: Panel, benchmark, name: str, lines=None) -> Panel:
    """The panel with the benchmark [T] as one more symbol (a flat bar where OHLC exist), so it goes
    through exactly the same rules and fill policy and stays on the same calendar."""
    b = np.asarray(benchmark, dtype=np.float64).reshape(-1, 1)
    if b.shape[0] != len(panel.dates):
        raise ValueError(f"benchmark has {b.shape[0]} rows, expected {len(panel.dates)}")
    fields = {k: np.concatenate([v, np.where(np.isnan(b), np.nan, 0.0) if k == "volume" else b], axis=1)
              for k, v in panel.fields.items()}
    if panel.lines is None:
        new_lines = None
    else:
        extra = np.zeros((len(panel.dates), 1), int) if lines is None else np.asarray(lines).reshape(-1, 1)
        new_lines = np.concatenate([panel.lines, extra], axis=1)
    return Panel(panel.dates, panel.symbols + (name,), fields, new_lines)


def build(panel: Panel, *, benchmark=None, benchmark_name: str | None = None, source: str,
          max_gap: int = 5, leading: str = "drop", periods_per_year: float | None = None,
          min_rows: int = MIN_ROWS, benchmark_lines=None, close_outside_range: str = "refuse") -> MarketData:
    """Validate + fill a raw panel (and benchmark [T], NaN = missing) into a MarketData.
    close_outside_range: "refuse" or "adjusted_close" (`jaxtrade.data.validate`).

    Raises DataError (see `jaxtrade.data.validate`); nothing partial is returned.
    """
    name = (benchmark_name or "benchmark") if benchmark is not None else None
    if benchmark is not None:
        panel = _with_benchmark(panel, benchmark, name, benchmark_lines)
    cleaned = clean_panel(panel, source=source, max_gap=max_gap, leading=leading, min_rows=min_rows,
                          close_outside_range=close_outside_range)
    f = dict(cleaned.fields)
    symbols, bench = cleaned.symbols, None
    if benchmark is not None:
        bench = f["close"][:, -1]
        f = {k: v[:, :-1] for k, v in f.items()}
        symbols = symbols[:-1]
    ppy = infer_periods_per_year(cleaned.dates) if periods_per_year is None else float(periods_per_year)
    return MarketData(cleaned.dates, symbols, f["close"], f.get("open"), f.get("high"), f.get("low"),
                      f.get("volume"), bench, name, source, ppy)

"""The replication data of Théate & Ernst (2021), "An Application of Deep Reinforcement Learning to
Algorithmic Trading" (Expert Systems with Applications 173, 114632; arXiv 2004.06627): daily OHLCV of
30 instruments, bundled in `jaxtrade/datasets/tdqn2021/` exactly as the authors published them with their
code (GitHub ThibautTheate/An-Application-of-Deep-Reinforcement-Learning-to-Algorithmic-Trading, commit
370b0fe, folder Data/; Yahoo Finance daily data). That repository carries no license file: the files
ship only as the replication data of that paper. Two files per instrument: the training period
`<SYMBOL>_2012-1-1_2018-1-1.csv.gz` and the test period `<SYMBOL>_2018-1-1_2020-1-1.csv.gz`.

`load_tdqn2021(symbol)` reads both files into one `MarketData` (the test file's rows follow the training
file's) and handles the files' two quirks explicitly, each by a named option that it logs:

1. `close_outside_range="adjusted_close"` (the default here; the default of every other loader is to
   refuse): on 24 of the 30 instruments Close is the dividend-adjusted close while Open, High and Low are
   not, so Close lies outside [Low, High] on most rows. The data are kept as published (Close adjusted,
   Open/High/Low not), the OHLC rule then exempts Close (`jaxtrade.data.validate`), and the rows affected
   are counted per file (`Tdqn2021Data.close_outside_range`). "refuse" raises DataError naming file, row
   and rule, as `load_csv` does.
2. `holidays="authors"` (the default): rows for local holidays carry Open = High = Low and zero volume.
   The authors' code (tradingEnv.py) turns every 0.0 of a file into NaN, interpolates linearly (at most 5
   rows, inside the data only), then fills forward, then backward; so does this loader, per file (the
   training and the test file are loaded apart, as theirs are). The rows changed are counted
   (`Tdqn2021Data.interpolated`). "keep" leaves the zeros (a zero volume is a valid bar here).

BABA starts in 2014-09, FB in 2012-05, TWTR in 2013-11 (shorter training periods).
"""

from __future__ import annotations

import dataclasses
import logging

import numpy as np
import pandas as pd

from jaxtrade import datasets as _files
from jaxtrade.data.errors import DataError
from jaxtrade.data.market import MarketData, build
from jaxtrade.data.validate import CLOSE_OUTSIDE_RANGE, Panel, outside_range_rows

log = logging.getLogger("jaxtrade")

SYMBOLS = ("DIA", "SPY", "QQQ", "EZU", "EWJ", "GOOGL", "AAPL", "FB", "AMZN", "MSFT", "TWTR", "NOK",
           "PHIA.AS", "SIE.DE", "BIDU", "BABA", "0700.HK", "6758.T", "JPM", "HSBC", "0939.HK", "XOM",
           "RDSA.AS", "PTR", "TSLA", "VOW3.DE", "7203.T", "KO", "ABI.BR", "2503.T")
PERIODS = (("2012-1-1", "2018-1-1"), ("2018-1-1", "2020-1-1"))
SOURCE = ("Théate & Ernst (2021) replication data, GitHub ThibautTheate/An-Application-of-Deep-"
          "Reinforcement-Learning-to-Algorithmic-Trading commit 370b0fe, Data/ (Yahoo Finance daily); "
          "no license file: shipped only as that paper's replication data")
HOLIDAYS = ("authors", "keep")
_COLUMNS = ["Timestamp", "Open", "High", "Low", "Close", "Volume"]


@dataclasses.dataclass(frozen=True)
class Tdqn2021Data:
    """One instrument: `market` (validated MarketData, symbol = the file's), and what the quirk options
    changed or let through, per file name: `close_outside_range` (rows whose Close lies outside
    [Low, High]), `interpolated` (cells the authors' zero handling changed, by column) and
    `open_outside_range` (files with rows whose Open lies outside [Low, High], e.g. 0700.HK's 2014 split
    day; only files that have any) and `overlap_dropped` (training-file rows dated inside the test file,
    dropped in favour of the test file's)."""

    market: MarketData
    close_outside_range: dict[str, int]
    interpolated: dict[str, dict[str, int]]
    open_outside_range: dict[str, int] = dataclasses.field(default_factory=dict)
    overlap_dropped: dict[str, int] = dataclasses.field(default_factory=dict)   # {test file: rows}


def file_name(symbol: str, period: tuple[str, str]) -> str:
    return f"tdqn2021/{symbol}_{period[0]}_{period[1]}.csv.gz"


def _authors_zero_fill(df: pd.DataFrame) -> tuple[pd.DataFrame, dict[str, int]]:
    """tradingEnv.py's treatment: 0.0 -> NaN, linear interpolation (limit 5, inside), ffill, bfill, then
    any NaN left -> 0. Returns the frame and the changed cells per column."""
    before = df.copy()
    out = df.replace(0.0, np.nan)
    out = out.interpolate(method="linear", limit=5, limit_area="inside").ffill().bfill().fillna(0.0)
    changed = {c: int((~np.isclose(out[c].to_numpy(), before[c].to_numpy(), rtol=0, atol=0)).sum())
               for c in out.columns}
    return out, {c: n for c, n in changed.items() if n}


def _read(name: str, holidays: str) -> tuple[pd.DataFrame, dict[str, int], np.ndarray]:
    path = _files.path(name)
    df = pd.read_csv(path)
    if list(df.columns) != _COLUMNS:
        raise DataError("columns", source=str(path),
                        detail=f"expected columns {_COLUMNS}, got {list(df.columns)}")
    lines = np.arange(2, len(df) + 2)
    dates = pd.DatetimeIndex(pd.to_datetime(df.pop("Timestamp"), format="%Y-%m-%d"))
    df.index = dates
    df = df.astype(np.float64)
    changed = {}
    if holidays == "authors":
        df, changed = _authors_zero_fill(df)
    return df, changed, lines


def load_tdqn2021(symbol: str, *, close_outside_range: str = "adjusted_close",
                  holidays: str = "authors") -> Tdqn2021Data:
    """Both files of `symbol` (one of `SYMBOLS`) as one validated MarketData plus what the quirk options
    did (see the module docstring). Raises DataError (file, row, rule) on anything else."""
    if symbol not in SYMBOLS:
        raise DataError("known-dataset", source="tdqn2021", symbol=symbol,
                        detail=f"not one of the paper's 30 instruments {list(SYMBOLS)}")
    if close_outside_range not in CLOSE_OUTSIDE_RANGE:
        raise ValueError(f"close_outside_range must be one of {CLOSE_OUTSIDE_RANGE}, "
                         f"got {close_outside_range!r}")
    if holidays not in HOLIDAYS:
        raise ValueError(f"holidays must be one of {HOLIDAYS}, got {holidays!r}")
    frames, outside, open_outside, interpolated, overlap = [], {}, {}, {}, {}
    for period in PERIODS:
        name = file_name(symbol, period)
        df, changed, lines = _read(name, holidays)
        if frames and df.index[0] <= frames[-1].index[-1]:
            # Some training files end with a row of the test period (0700.HK: 2018-01-02): the test file's
            # row is the one kept (the authors' test env reads the test file); the drop is counted.
            late = frames[-1].index >= df.index[0]
            overlap[name] = int(late.sum())
            frames[-1] = frames[-1][~late]
        fields = {k.lower(): df[k].to_numpy()[:, None] for k in ("Open", "High", "Low", "Close", "Volume")}
        panel = Panel(df.index, (symbol,), fields, lines[:, None])
        # Each file is validated on its own, so an error names the file and its line.
        build(panel, source=str(_files.path(name)), close_outside_range=close_outside_range, max_gap=0)
        outside[name] = outside_range_rows(panel, "close")[symbol]
        if n_open := outside_range_rows(panel, "open")[symbol]:
            open_outside[name] = n_open
        if changed:
            interpolated[name] = changed
        frames.append(df)
    df = pd.concat(frames)
    panel = Panel(df.index, (symbol,), {k.lower(): df[k].to_numpy()[:, None]
                                        for k in ("Open", "High", "Low", "Close", "Volume")}, None)
    md = build(panel, source=f"tdqn2021/{symbol}", close_outside_range=close_outside_range, max_gap=0)
    n_out = sum(outside.values())
    if n_out:
        log.info("tdqn2021 %s: close outside [low, high] on %d of %d rows (adjusted Close beside unadjusted "
                 "Open/High/Low, kept as published: close_outside_range=%r)", symbol, n_out, len(df),
                 close_outside_range)
    if interpolated:
        log.info("tdqn2021 %s: the authors' zero handling (0 -> NaN, linear interpolation <= 5 rows, ffill, "
                 "bfill) changed %s", symbol, interpolated)
    if open_outside:
        log.info("tdqn2021 %s: open outside [low, high] on %s (kept; no strategy here reads the open)",
                 symbol,
                 open_outside)
    if overlap:
        log.info("tdqn2021 %s: training-file rows dated in the test file's period dropped (the test file's "
                 "kept): %s", symbol, overlap)
    return Tdqn2021Data(md, outside, interpolated, open_outside, overlap)

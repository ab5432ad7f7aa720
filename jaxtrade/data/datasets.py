"""Bundled real datasets: `list_datasets()`, `dataset_info(name)`, `load_dataset(name)`, and the
Fama-French risk-free rate as a per-period series, `risk_free_daily(dates)`.

- "sp500-20": daily adjusted closes of 20 large US stocks, 1990-01-02 .. 2022-12-28 (8,313 rows),
  close-only, with the S&P 500 index close as `benchmark` (`benchmark_name` "S&P 500 (price index)",
  the label of the report's index row; `dataset_caveats("sp500-20")` is the note under its tables).
  Source: skfolio 1.12.2 datasets
  (BSD-3-Clause). Two biases to state wherever results are compared against it:
  * survivorship: the 20 stocks are ones that survived (and stayed large) to 2022, chosen with
    hindsight; no delisted or shrunken company is in the set, so any strategy holding them looks
    better than it could have been in real time (equal-weight buy-and-hold made +279% in 2016-2022
    against +88% for the S&P 500 index);
  * the benchmark is the S&P 500 *price* index (no dividends), while the stock closes are
    dividend-adjusted (total-return-like): the stocks get their dividends, the index does not.
    Call it "S&P 500 (price index)" in reports.
  The closes are back-adjusted, so their level on day t encodes splits and dividends after t: no
  causal size proxy exists for this data (`jaxtrade.data.features.size_proxy` is NaN, `has_size`
  False).
- "sp500-ohlcv": S&P 500 index daily OHLCV, 1999-01-04 .. 2018-12-31 (5,031 rows), symbol "SP500".
  Source: arch 8.0.0 `arch/data/sp500` (NCSA).
- "nasdaq-ohlcv": NASDAQ Composite daily OHLCV, 1999-01-04 .. 2018-12-31 (5,031 rows), symbol
  "NASDAQ". Source: arch 8.0.0 `arch/data/nasdaq` (NCSA).
- "vix": CBOE VIX daily close, 2014-01-03 .. 2019-01-03, symbol "VIX": the file's 1,305 rows less 46
  market holidays marked "." = 1,259 rows. Source: arch 8.0.0 `arch/data/vix` (NCSA).
- "sp500-vix": "sp500-ohlcv" on the dates it shares with "vix" (2014-01-03 .. 2018-12-31, 1,257
  rows, symbol "SP500"), with the VIX close / 100 as `aux["iv"]`: the options env's implied
  volatility (a 30-day at-the-money-ish index level used for every strike and expiry, plus the
  env's optional skew). The VIX's 2019-01-02/03 rows have no index bar and are dropped.
- "factor-etfs": factor ETFs MTUM, QUAL, SIZE, USMV, VLUE, daily adjusted closes, 2014-01-02 ..
  2022-12-28 (2,264 rows), close-only. Source: skfolio 1.12.2 datasets (BSD-3-Clause).
- "eurusd-1h": EUR/USD hourly ask OHLCV, 2017-01-01 22:00 .. 2017-12-29 21:00 (6,225 rows), symbol
  "EURUSD"; the file's day-first dotted dates (DD.MM.YYYY HH:MM:SS.fff) are parsed day-first with
  an explicit format. Times are UTC (the FX week opens Sunday 22:00 in winter, 21:00 in US summer
  time); 24-hour weekday bars with weekend gaps; periods_per_year is the bars observed per year (6,260.4:
  6,119 bars in 51 complete calendar weeks x 365.25 / 7). Volume is the source's
  tick-volume-like figure, not a number of units traded. Source: gym-anytrading 2.0.0
  `gym_anytrading/datasets/data/FOREX_EURUSD_1H_ASK.csv` (MIT).
- "googl-ohlcv": Alphabet class A (GOOGL) daily OHLCV, 2009-05-22 .. 2018-08-29 (2,335 rows), symbol
  "GOOGL". `Close` (used) is split-adjusted, as are open/high/low and volume, so close x volume is
  the dollar volume actually traded; `Adj Close` (also dividend-adjusted) equals it here (no
  dividends before 2018) and is ignored. Source: gym-anytrading 2.0.0
  `gym_anytrading/datasets/data/STOCKS_GOOGL.csv` (MIT).

The license texts lie beside the files in `jaxtrade/datasets/`.

`risk_free_daily(dates)`: the Fama-French monthly risk-free rate (`fama_french_monthly.csv.gz`, column
RF, percent per month: the one-month US Treasury bill return; Kenneth French's data library via
arch 8.0.0 `arch/data/frenchdata`, NCSA), 1926-07 .. 2018-11, as a per-period simple rate for each
date. See its docstring for the timing.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import numpy as np
import pandas as pd

from jaxtrade import datasets as _files
from jaxtrade.data.errors import DataError
from jaxtrade.data.loaders import load_csv
from jaxtrade.data.market import MarketData, build
from jaxtrade.data.validate import Panel

_SKFOLIO = "skfolio 1.12.2 (skfolio/datasets/data), BSD-3-Clause; see LICENSE.skfolio-BSD-3-Clause.txt"
_ARCH = "arch 8.0.0 (arch/data), NCSA; see LICENSE.arch-NCSA.md"
_ANYTRADING = ("gym-anytrading 2.0.0 (gym_anytrading/datasets/data), MIT; see "
               "LICENSE.gym-anytrading-MIT.txt")


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What a bundled dataset is, where it comes from and under which license."""

    name: str
    description: str
    files: tuple[str, ...]
    source: str
    license: str
    load: Callable[..., MarketData] = dataclasses.field(repr=False)
    # A note for every report table that uses the dataset (biases a reader must know); "" if none.
    caveats: str = ""


_SP500_20_CAVEATS = (
    "Data caveats (sp500-20): survivorship bias: the 20 stocks are ones that survived and stayed large "
    "to 2022, chosen with hindsight (equal-weight buy-and-hold made +279% in 2016-2022 against +88% for "
    "the S&P 500), so any strategy holding them looks better than it could have in real time; the "
    "\"S&P 500 (price index)\" row is the price index without dividends, while the stocks' closes are "
    "dividend-adjusted.")
SP500_LABEL = "S&P 500 (price index)"
_SP500_VIX_CAVEATS = (
    "Data caveats (sp500-vix): the S&P 500 series is a price index, without dividends, and no option "
    "quotes exist for it here: the options env prices a synthetic Black-Scholes chain from the VIX (one "
    "implied volatility for every strike and expiry) with a constant dividend yield, by default 2% a year "
    "(env.dividend_yield: an assumption near the index's trailing yield of about 1.8%-2.1% at the year "
    "ends 2014-2018, A. Damodaran's S&P 500 earnings table; no dated dividend series is bundled), which it "
    "also pays on held shares; cash earns the Fama-French one-month T-bill rate (env.cash_earns_risk_free), "
    "published to 2018-11.")


def dataset_caveats(name: str | None) -> str:
    """The caveat note of bundled dataset `name` ("" for other names, e.g. a CSV path)."""
    info = _DATASETS.get(name or "")
    return info.caveats if info is not None else ""


def _load_sp500_20(max_gap: int = 5) -> MarketData:
    """20 stocks' adjusted closes with the S&P 500 index close attached as the benchmark."""
    stocks = load_csv(_files.path("sp500_20_stocks_adjclose.csv.gz"), format="wide", max_gap=max_gap,
                      leading="reject")
    index = load_csv(_files.path("sp500_index_close.csv.gz"), format="wide", max_gap=max_gap,
                     leading="reject")
    # The index goes on the stocks' calendar; rows it lacks go through the fill policy in `build`.
    bench = pd.Series(index.close[:, 0], index=index.dates).reindex(stocks.dates).to_numpy()
    panel = Panel(stocks.dates, stocks.symbols, {"close": stocks.close.copy()}, None)
    return build(panel, benchmark=bench, benchmark_name=SP500_LABEL, source="sp500-20", max_gap=max_gap,
                 leading="reject")


def _load_sp500_vix(max_gap: int = 5) -> MarketData:
    index = _ohlcv("sp500_index_ohlcv.csv.gz", "SP500", "sp500-vix")(max_gap)
    vix = _wide("vix_close.csv.gz", "vix", {"vix": "VIX"})(max_gap)
    dates = index.dates.intersection(vix.dates)
    rows = index.dates.get_indexer(dates)
    iv = pd.Series(vix.close[:, 0], index=vix.dates).reindex(dates).to_numpy() / 100.0
    pick = lambda x: None if x is None else x[rows]
    return MarketData(dates, index.symbols, pick(index.close), pick(index.open), pick(index.high),
                      pick(index.low), pick(index.volume), source="sp500-vix",
                      periods_per_year=index.periods_per_year, aux={"iv": iv})


def _ohlcv(filename: str, symbol: str, name: str, date_format: str | None = None):
    def load(max_gap: int = 5) -> MarketData:
        md = load_csv(_files.path(filename), format="ohlcv", symbol=symbol, max_gap=max_gap,
                      date_format=date_format)
        return dataclasses.replace(md, source=name, _cache={})
    return load


def _wide(filename: str, name: str, rename: dict | None = None):
    def load(max_gap: int = 5) -> MarketData:
        md = load_csv(_files.path(filename), format="wide", max_gap=max_gap)
        symbols = tuple((rename or {}).get(s, s) for s in md.symbols)
        return dataclasses.replace(md, symbols=symbols, source=name, _cache={})
    return load


_DATASETS = {
    info.name: info for info in (
        DatasetInfo("sp500-20", "daily adjusted closes of 20 large US stocks (AAPL .. XOM), 1990-01-02 .. "
                    "2022-12-28, 8,313 rows, close-only; benchmark: S&P 500 price index close (SP500, no "
                    "dividends, while the stocks are dividend-adjusted); the 20 stocks survived to 2022 "
                    "(chosen with hindsight)",
                    ("sp500_20_stocks_adjclose.csv.gz", "sp500_index_close.csv.gz"), _SKFOLIO,
                    "BSD-3-Clause", _load_sp500_20, caveats=_SP500_20_CAVEATS),
        DatasetInfo("sp500-ohlcv", "S&P 500 index daily open/high/low/close/volume, 1999-01-04 .. "
                    "2018-12-31, 5,031 rows, symbol SP500",
                    ("sp500_index_ohlcv.csv.gz",), _ARCH, "NCSA",
                    _ohlcv("sp500_index_ohlcv.csv.gz", "SP500", "sp500-ohlcv")),
        DatasetInfo("nasdaq-ohlcv", "NASDAQ Composite daily open/high/low/close/volume, 1999-01-04 .. "
                    "2018-12-31, 5,031 rows, symbol NASDAQ",
                    ("nasdaq_index_ohlcv.csv.gz",), _ARCH, "NCSA",
                    _ohlcv("nasdaq_index_ohlcv.csv.gz", "NASDAQ", "nasdaq-ohlcv")),
        DatasetInfo("vix", "CBOE VIX daily close, 2014-01-03 .. 2019-01-03, 1,259 trading days "
                    "(46 holiday rows marked '.' dropped), symbol VIX",
                    ("vix_close.csv.gz",), _ARCH, "NCSA", _wide("vix_close.csv.gz", "vix", {"vix": "VIX"})),
        DatasetInfo("sp500-vix", "S&P 500 index daily OHLCV on the VIX's dates, 2014-01-03 .. 2018-12-31, "
                    "1,257 rows, symbol SP500, with aux['iv'] = VIX close / 100 (implied volatility for "
                    "the options env)", ("sp500_index_ohlcv.csv.gz", "vix_close.csv.gz"), _ARCH, "NCSA",
                    _load_sp500_vix, caveats=_SP500_VIX_CAVEATS),
        DatasetInfo("factor-etfs", "factor ETFs MTUM, QUAL, SIZE, USMV, VLUE: daily adjusted closes, "
                    "2014-01-02 .. 2022-12-28, close-only",
                    ("factor_etfs_adjclose.csv.gz",), _SKFOLIO, "BSD-3-Clause",
                    _wide("factor_etfs_adjclose.csv.gz", "factor-etfs")),
        DatasetInfo("eurusd-1h", "EUR/USD hourly ask open/high/low/close/volume, 2017-01-01 22:00 .. "
                    "2017-12-29 21:00 UTC, 6,225 rows, symbol EURUSD (day-first dotted dates in the file)",
                    ("eurusd_1h_ask_2017.csv.gz",), _ANYTRADING, "MIT",
                    _ohlcv("eurusd_1h_ask_2017.csv.gz", "EURUSD", "eurusd-1h", "%d.%m.%Y %H:%M:%S.%f")),
        DatasetInfo("googl-ohlcv", "Alphabet (GOOGL) daily open/high/low/close/volume, split-adjusted, "
                    "2009-05-22 .. 2018-08-29, 2,335 rows, symbol GOOGL",
                    ("googl_daily_ohlcv.csv.gz",), _ANYTRADING, "MIT",
                    _ohlcv("googl_daily_ohlcv.csv.gz", "GOOGL", "googl-ohlcv")),
    )
}


def list_datasets() -> tuple[str, ...]:
    """Every name `load_dataset` loads, in this module's order: "sp500-20", "sp500-ohlcv",
    "nasdaq-ohlcv", "vix", "sp500-vix", "factor-etfs", "eurusd-1h", "googl-ohlcv" (`dataset_info(name)`
    describes each; the Fama-French file is no dataset but `risk_free_daily`)."""
    return tuple(_DATASETS)


def dataset_info(name: str) -> DatasetInfo:
    """Description, files, source and license of a bundled dataset."""
    if name not in _DATASETS:
        raise DataError("known-dataset", source=name, detail=f"no bundled dataset {name!r}; "
                        f"choose from {list(_DATASETS)}")
    return _DATASETS[name]


def load_dataset(name: str, *, max_gap: int = 5) -> MarketData:
    """Load a bundled real dataset as validated MarketData (see this module's table for sources).

    Args:
      name: one of `list_datasets()`: "sp500-20", "sp500-ohlcv", "nasdaq-ohlcv", "vix", "sp500-vix",
        "factor-etfs",
        "eurusd-1h", "googl-ohlcv".
      max_gap: fill policy, as in `load_csv`.
    """
    return dataset_info(name).load(max_gap=max_gap)


def _fama_french_rf() -> pd.Series:
    """Monthly RF as a fraction (0.0022 = 0.22%), indexed by month (pd.Period 'M')."""
    raw = pd.read_csv(_files.path("fama_french_monthly.csv.gz"), dtype={"Date": str})
    months = pd.PeriodIndex(pd.to_datetime(raw["Date"], format="%Y%m"), freq="M")
    return pd.Series(raw["RF"].to_numpy(np.float64) / 100.0, index=months)


def risk_free_daily(dates, *, periods_per_year: float = 252.0, after_last: str = "raise") -> np.ndarray:
    """[T] per-period simple risk-free rate for each date, from the Fama-French monthly RF.

    Usable as the per-period `risk_free` of `jaxtrade.eval.stats.sharpe_ratio` (returns - rate) and,
    annualized as (1 + rate) ** periods_per_year - 1, as the rate in option pricing.

    Row t's rate is the rate of t's calendar month m converted to one period:
    (1 + RF_m / 100) ** (12 / periods_per_year) - 1, i.e. RF_m compounded over 12 months and spread
    over periods_per_year bars (with 252 bars a year, a month is 21 bars: (1 + RF_m)^(1/21) - 1).
    Timing, and why this is causal: Fama-French RF for month m is the return of the one-month Treasury
    bill bought at the start of month m, so it is known on the first day of month m; each date uses
    its own month's rate and nothing from later months (the same date always gets the same rate,
    whatever dates follow it).

    Args:
      dates: [T] dates (anything pd.DatetimeIndex accepts).
      periods_per_year: bars per year of `dates` (e.g. `md.periods_per_year`).
      after_last: dates after the last published month (2018-11): "raise" (DataError naming the first
        such date), or "hold" (keep using 2018-11's rate: the latest one known, still causal).

    Raises:
      DataError ("risk-free-range") for dates before 1926-07, or after 2018-11 with after_last="raise".
    """
    if after_last not in ("raise", "hold"):
        raise ValueError(f"after_last must be 'raise' or 'hold', got {after_last!r}")
    rf = _fama_french_rf()
    idx = pd.DatetimeIndex(dates)
    months = idx.to_period("M")
    first, last = rf.index[0], rf.index[-1]
    early = np.asarray(months < first)
    late = np.asarray(months > last)
    source = "fama_french_monthly.csv.gz"
    if early.any() or (late.any() and after_last == "raise"):
        i = int(np.argmax(early if early.any() else late))
        raise DataError("risk-free-range", source=source, row=str(idx[i].date()),
                        detail=f"the Fama-French RF covers {first} .. {last}"
                               + ("" if early.any() else "; pass after_last='hold' to keep the last rate"))
    monthly = rf.reindex(months.where(~late, last)).to_numpy()
    return (1.0 + monthly) ** (12.0 / periods_per_year) - 1.0

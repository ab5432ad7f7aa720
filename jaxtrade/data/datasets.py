"""Bundled real datasets: `list_datasets()`, `dataset_info(name)`, `load_dataset(name)`.

- "sp500-20": daily adjusted closes of 20 large US stocks, 1990-01-02 .. 2022-12-28 (8,313 rows),
  close-only, with the S&P 500 index close as `benchmark` ("SP500"). Source: skfolio 1.12.2 datasets
  (BSD-3-Clause).
- "sp500-ohlcv": S&P 500 index daily OHLCV, 1999-01-04 .. 2018-12-31 (5,031 rows), symbol "SP500".
  Source: arch 8.0.0 `arch/data/sp500` (NCSA).
- "nasdaq-ohlcv": NASDAQ Composite daily OHLCV, 1999-01-04 .. 2018-12-31 (5,031 rows), symbol
  "NASDAQ". Source: arch 8.0.0 `arch/data/nasdaq` (NCSA).
- "vix": CBOE VIX daily close, 2014-01-03 .. 2019-01-03, symbol "VIX": the file's 1,305 rows less 46
  market holidays marked "." = 1,259 rows. Source: arch 8.0.0 `arch/data/vix` (NCSA).
- "factor-etfs": factor ETFs MTUM, QUAL, SIZE, USMV, VLUE, daily adjusted closes, 2014-01-02 ..
  2022-12-28 (2,264 rows), close-only. Source: skfolio 1.12.2 datasets (BSD-3-Clause).

The license texts lie beside the files in `jaxtrade/datasets/`.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import pandas as pd

from jaxtrade import datasets as _files
from jaxtrade.data.errors import DataError
from jaxtrade.data.loaders import load_csv
from jaxtrade.data.market import MarketData, build
from jaxtrade.data.validate import Panel

_SKFOLIO = "skfolio 1.12.2 (skfolio/datasets/data), BSD-3-Clause; see LICENSE.skfolio-BSD-3-Clause.txt"
_ARCH = "arch 8.0.0 (arch/data), NCSA; see LICENSE.arch-NCSA.md"


@dataclasses.dataclass(frozen=True)
class DatasetInfo:
    """What a bundled dataset is, where it comes from and under which license."""

    name: str
    description: str
    files: tuple[str, ...]
    source: str
    license: str
    load: Callable[..., MarketData] = dataclasses.field(repr=False)


def _load_sp500_20(max_gap: int = 5) -> MarketData:
    """20 stocks' adjusted closes with the S&P 500 index close attached as the benchmark."""
    stocks = load_csv(_files.path("sp500_20_stocks_adjclose.csv.gz"), format="wide", max_gap=max_gap,
                      leading="reject")
    index = load_csv(_files.path("sp500_index_close.csv.gz"), format="wide", max_gap=max_gap,
                     leading="reject")
    # The index goes on the stocks' calendar; rows it lacks go through the fill policy in `build`.
    bench = pd.Series(index.close[:, 0], index=index.dates).reindex(stocks.dates).to_numpy()
    panel = Panel(stocks.dates, stocks.symbols, {"close": stocks.close.copy()}, None)
    return build(panel, benchmark=bench, benchmark_name="SP500", source="sp500-20", max_gap=max_gap,
                 leading="reject")


def _ohlcv(filename: str, symbol: str, name: str):
    def load(max_gap: int = 5) -> MarketData:
        md = load_csv(_files.path(filename), format="ohlcv", symbol=symbol, max_gap=max_gap)
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
                    "2022-12-28, 8,313 rows, close-only; benchmark: S&P 500 index close (SP500)",
                    ("sp500_20_stocks_adjclose.csv.gz", "sp500_index_close.csv.gz"), _SKFOLIO,
                    "BSD-3-Clause", _load_sp500_20),
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
        DatasetInfo("factor-etfs", "factor ETFs MTUM, QUAL, SIZE, USMV, VLUE: daily adjusted closes, "
                    "2014-01-02 .. 2022-12-28, close-only",
                    ("factor_etfs_adjclose.csv.gz",), _SKFOLIO, "BSD-3-Clause",
                    _wide("factor_etfs_adjclose.csv.gz", "factor-etfs")),
    )
}


def list_datasets() -> tuple[str, ...]:
    """Names of the bundled datasets, for `load_dataset`."""
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
      name: one of `list_datasets()`: "sp500-20", "sp500-ohlcv", "nasdaq-ohlcv", "vix", "factor-etfs".
      max_gap: fill policy, as in `load_csv`.
    """
    return dataset_info(name).load(max_gap=max_gap)

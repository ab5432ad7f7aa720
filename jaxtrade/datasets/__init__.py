"""Bundled real market data files and their licenses (see README.md in this folder).

Load them with `jaxtrade.data.load_dataset(name)`; `path(filename)` gives a file's location.

Files: sp500_20_stocks_adjclose.csv.gz, sp500_index_close.csv.gz, factor_etfs_adjclose.csv.gz
(skfolio 1.12.2, BSD-3-Clause, LICENSE.skfolio-BSD-3-Clause.txt); sp500_index_ohlcv.csv.gz,
nasdaq_index_ohlcv.csv.gz, vix_close.csv.gz, fama_french_monthly.csv.gz (arch 8.0.0, NCSA,
LICENSE.arch-NCSA.md); eurusd_1h_ask_2017.csv.gz, googl_daily_ohlcv.csv.gz (gym-anytrading 2.0.0, MIT,
LICENSE.gym-anytrading-MIT.txt).
"""

from __future__ import annotations

import pathlib

_HERE = pathlib.Path(__file__).resolve().parent


def path(filename: str) -> pathlib.Path:
    """Absolute path of a bundled file; FileNotFoundError if it is not bundled."""
    p = _HERE / filename
    if not p.is_file():
        raise FileNotFoundError(f"no bundled file {filename!r} in {_HERE}")
    return p

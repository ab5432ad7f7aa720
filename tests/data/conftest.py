"""Shared fixtures for the data-layer tests: bundled datasets loaded once, and small real CSVs."""

import gzip
import io

import pandas as pd
import pytest

from jaxtrade import datasets
from jaxtrade.data import load_dataset


@pytest.fixture(scope="session")
def sp500_20():
    return load_dataset("sp500-20")


@pytest.fixture(scope="session")
def sp500_ohlcv():
    return load_dataset("sp500-ohlcv")


def read_bundled(filename: str) -> pd.DataFrame:
    """A bundled file as raw strings, so tests can corrupt single cells and write it back."""
    with gzip.open(datasets.path(filename), "rt") as fh:
        return pd.read_csv(io.StringIO(fh.read()), dtype=str)


@pytest.fixture
def bundled():
    """bundled(filename) -> the bundled file as a frame of strings."""
    return read_bundled


@pytest.fixture
def ohlcv_frame():
    """The first 60 rows of the real S&P 500 OHLCV file (M/D/YYYY dates), as strings."""
    return read_bundled("sp500_index_ohlcv.csv.gz").iloc[:60].reset_index(drop=True)


@pytest.fixture
def wide_frame():
    """The first 60 rows x 3 symbols of the real 20-stock closes (ISO dates), as strings."""
    return read_bundled("sp500_20_stocks_adjclose.csv.gz")[["Date", "AAPL", "JNJ", "XOM"]].iloc[:60].copy()


@pytest.fixture
def write_csv(tmp_path):
    """write_csv(frame, name) -> path of the frame written as CSV under tmp_path."""
    def write(frame: pd.DataFrame, name: str = "bad.csv"):
        path = tmp_path / name
        frame.to_csv(path, index=False)
        return path
    return write

"""Bundled real datasets: shapes, date ranges, M/D/YYYY parsing, sources and licenses."""

import numpy as np
import pandas as pd
import pytest

from jaxtrade.data import DataError, dataset_info, list_datasets, load_dataset


def test_sp500_20(sp500_20):
    md = sp500_20
    assert md.close.shape == (8313, 20) and md.n_rows == 8313
    assert md.dates[0] == pd.Timestamp("1990-01-02") and md.dates[-1] == pd.Timestamp("2022-12-28")
    assert md.symbols[:3] == ("AAPL", "AMD", "BAC") and md.symbols[-1] == "XOM"
    assert md.close.dtype == np.float64 and md.open is None and md.volume is None
    assert md.benchmark.shape == (8313,) and md.benchmark_name == "SP500"
    assert md.benchmark[0] == 359.69 and md.benchmark[-1] == 3783.22
    assert md.close[0, 0] == 0.264 and md.close[-1, -1] == 106.627       # AAPL first, XOM last
    assert md.periods_per_year == 252.0 and md.source == "sp500-20"
    assert not md.close.flags.writeable                                   # cached features stay valid


@pytest.mark.parametrize("name, symbol, first_close", [("sp500-ohlcv", "SP500", 1228.099976),
                                                       ("nasdaq-ohlcv", "NASDAQ", 2208.050049)])
def test_ohlcv_month_day_year(name, symbol, first_close):
    md = load_dataset(name)
    assert md.symbols == (symbol,) and md.close.shape == (5031, 1) and md.has_ohlc and md.has_volume
    assert md.dates[0] == pd.Timestamp("1999-01-04") and md.dates[-1] == pd.Timestamp("2018-12-31")
    assert md.close[0, 0] == first_close
    # "1/13/1999" must be Jan 13 (not a D/M misread): the calendar is increasing business days
    assert pd.Timestamp("1999-01-13") in md.dates and md.dates.is_monotonic_increasing
    assert (md.dates.day_of_week < 5).all()
    assert (md.high >= np.maximum(md.open, md.close)).all()
    assert (md.low <= np.minimum(md.open, md.close)).all()


def test_vix_and_factors():
    vix = load_dataset("vix")
    assert vix.symbols == ("VIX",) and vix.n_rows == 1305 - 46
    assert vix.dates[0] == pd.Timestamp("2014-01-03") and vix.dates[-1] == pd.Timestamp("2019-01-03")
    assert pd.Timestamp("2014-01-20") not in vix.dates                  # MLK day, '.' in the file
    etf = load_dataset("factor-etfs")
    assert etf.symbols == ("MTUM", "QUAL", "SIZE", "USMV", "VLUE") and etf.n_rows == 2264


def test_registry_names_sources_and_licenses():
    assert set(list_datasets()) >= {"sp500-20", "sp500-ohlcv", "nasdaq-ohlcv", "vix", "factor-etfs"}
    for name in list_datasets():
        info = dataset_info(name)
        assert info.license in ("BSD-3-Clause", "NCSA")
        assert "skfolio" in info.source or "arch" in info.source
        assert info.description
    with pytest.raises(DataError):
        load_dataset("sp501")

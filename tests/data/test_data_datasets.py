"""Bundled real datasets: shapes, date ranges, M/D/YYYY parsing, sources and licenses."""

import fnmatch
import pathlib
import tomllib

import numpy as np
import pandas as pd
import pytest

from jaxtrade import datasets as bundled_files
from jaxtrade.data import DataError, dataset_info, list_datasets, load_dataset, risk_free_daily

ROOT = pathlib.Path(__file__).resolve().parents[2]


def test_sp500_20(sp500_20):
    md = sp500_20
    assert md.close.shape == (8313, 20) and md.n_rows == 8313
    assert md.dates[0] == pd.Timestamp("1990-01-02") and md.dates[-1] == pd.Timestamp("2022-12-28")
    assert md.symbols[:3] == ("AAPL", "AMD", "BAC") and md.symbols[-1] == "XOM"
    assert md.close.dtype == np.float64 and md.open is None and md.volume is None
    assert md.benchmark.shape == (8313,) and md.benchmark_name == "S&P 500 (price index)"
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


def test_eurusd_1h_day_first():
    md = load_dataset("eurusd-1h")
    assert md.symbols == ("EURUSD",) and md.n_rows == 6225 and md.has_ohlc and md.has_volume
    assert md.dates[0] == pd.Timestamp("2017-01-01 22:00")
    assert md.dates[-1] == pd.Timestamp("2017-12-29 21:00")
    # "02.01.2017 00:00" is 2 January (day first), not 1 February
    assert md.dates[2] == pd.Timestamp("2017-01-02 00:00") and md.dates.is_monotonic_increasing
    assert md.close[0, 0] == 1.05227
    # Observed: 6,119 bars in the 51 complete calendar weeks 2017-01-02 .. 2017-12-24 (48 of 120 bars,
    # 121 and 119 at the US daylight-saving changes, 119 before Christmas), x 365.25 / 7 weeks a year.
    assert md.periods_per_year == pytest.approx(6119 / 51 * 365.25 / 7) and md.periods_per_year > 252 * 24
    assert md.periods_per_year_basis.startswith("6,260.4 bars a year, observed: 6,119 bars in 51 complete")


def test_googl_ohlcv():
    md = load_dataset("googl-ohlcv")
    assert md.symbols == ("GOOGL",) and md.n_rows == 2335 and md.has_ohlc and md.has_volume
    assert md.dates[0] == pd.Timestamp("2009-05-22") and md.dates[-1] == pd.Timestamp("2018-08-29")
    assert md.close[0, 0] == 196.946945 and md.volume[0, 0] == 3433700
    # split-adjusted Close: no 2:1 jump at the April 2014 split
    i = md.dates.get_loc(pd.Timestamp("2014-04-03"))
    assert 0.9 < md.close[i + 1, 0] / md.close[i, 0] < 1.0


def test_bundled_files_are_package_data():
    globs = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"][
        "jaxtrade.datasets"]
    folder = pathlib.Path(bundled_files.__file__).parent
    shipped = [p.relative_to(folder).as_posix() for p in folder.rglob("*")
               if p.is_file() and p.suffix not in (".py", ".pyc")]
    assert {"eurusd_1h_ask_2017.csv.gz", "googl_daily_ohlcv.csv.gz", "LICENSE.gym-anytrading-MIT.txt"} <= \
        set(shipped)
    for name in shipped:
        # setuptools' globs do not cross folders: "*.csv.gz" covers no file in tdqn2021/
        assert any(fnmatch.fnmatch(name, g) and g.count("/") == name.count("/") for g in globs), \
            f"{name} not covered by package-data {globs}"
    for name in list_datasets():
        for f in dataset_info(name).files:
            assert (folder / f).is_file()
        license_file = dataset_info(name).source.split("see ")[-1]
        assert (folder / license_file).is_file(), license_file


def test_risk_free_daily_hand_computed():
    # Fama-French RF (percent per month): 2016-01 0.01, 2016-02 0.02, 2018-10 0.19, 2018-11 0.18.
    dates = pd.to_datetime(["2016-01-04", "2016-01-29", "2016-02-01", "2018-10-31", "2018-11-01"])
    rate = risk_free_daily(dates)
    # (1 + RF)^(12 / 252) - 1 = (1 + RF)^(1/21) - 1, computed by hand from the log series:
    # 0.0001 / 21 = 4.7617e-6; 0.0002 / 21 = 9.5233e-6 (less the tiny second-order term);
    # 1.0019^(1/21) - 1 = 9.03944e-5; 1.0018^(1/21) - 1 = 8.56409e-5.
    np.testing.assert_allclose(rate, [4.76166e-6, 4.76166e-6, 9.52290e-6, 9.03944e-5, 8.56409e-5], rtol=1e-5)
    # compounding a month's bars gives the month's rate back
    np.testing.assert_allclose((1 + rate[-1]) ** 21 - 1, 0.0018, rtol=1e-12)
    # other bar spacings: per hour of a 24 x 252 year
    np.testing.assert_allclose(risk_free_daily(dates[-1:], periods_per_year=6048.0), [3.56822e-6], rtol=1e-5)


def test_risk_free_daily_causal_and_range():
    dates = pd.bdate_range("2016-01-01", "2016-03-31")
    full = risk_free_daily(dates)
    # a date's rate never depends on later dates or months
    np.testing.assert_array_equal(risk_free_daily(dates[:25]), full[:25])
    assert (full[dates.month == 1] == full[0]).all() and full[-1] != full[0]
    with pytest.raises(DataError) as info:
        risk_free_daily(pd.to_datetime(["2018-11-30", "2019-01-02"]))
    assert info.value.rule == "risk-free-range" and "2019-01-02" in str(info.value)
    assert "after_last='hold'" in str(info.value)
    held = risk_free_daily(pd.to_datetime(["2018-11-30", "2019-01-02"]), after_last="hold")
    assert held[0] == held[1]
    with pytest.raises(DataError):
        risk_free_daily(pd.to_datetime(["1926-06-30"]))


def test_sp500_20_docstring_states_the_biases():
    from jaxtrade.data import datasets
    text = " ".join(datasets.__doc__.split())
    assert "survived" in text and "hindsight" in text and "price* index" in text
    readme = " ".join((pathlib.Path(bundled_files.__file__).parent / "README.md").read_text().split())
    assert "survived" in readme and "hindsight" in readme and "price index" in readme


def test_registry_names_sources_and_licenses():
    assert set(list_datasets()) >= {"sp500-20", "sp500-ohlcv", "nasdaq-ohlcv", "vix", "factor-etfs",
                                    "eurusd-1h", "googl-ohlcv"}
    for name in list_datasets():
        info = dataset_info(name)
        assert info.license in ("BSD-3-Clause", "NCSA", "MIT")
        assert "skfolio" in info.source or "arch" in info.source or "gym-anytrading" in info.source
        assert info.description
    with pytest.raises(DataError):
        load_dataset("sp501")

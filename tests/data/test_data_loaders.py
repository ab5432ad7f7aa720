"""Files that would load silently wrong: Adj Close without Close, non-price and duplicate columns in wide
files, separators and decimal marks, MetaTrader 5 and HistData exports.

Fixtures (tests/data/fixtures/, exact published layouts, CRLF line ends as the tools write them):
- EURUSD_H1_mt5.csv: MetaTrader 5 "Export Bars" of 40 hourly bars, tab-separated, broker time EET
  (UTC+2 in January); the prices are the first 40 bars of the bundled eurusd-1h file (Dukascopy, UTC),
  TICKVOL = that file's volume / 1e5, VOL 0 (FX), SPREAD a small integer.
- EURUSD_D1_mt5.csv: the same export for daily bars (no <TIME> column), 40 days aggregated from the
  bundled hourly file by broker day.
- DAT_ASCII_EURUSD_M1_201701.csv: HistData.com generic ASCII 1-minute bars (no header,
  `YYYYMMDD HHMMSS;open;high;low;close;volume`, EST without daylight saving), 40 bars from the
  2017-01-01 17:00 EST open; prices a random walk from the real first open, volume 0 as HistData writes.
"""

import logging
import pathlib

import numpy as np
import pandas as pd
import pytest

from jaxtrade.data import DataError, load_csv, load_dataset

FIXTURES = pathlib.Path(__file__).parent / "fixtures"


def error(path, rule, **kwargs) -> DataError:
    with pytest.raises(DataError) as info:
        load_csv(path, **kwargs)
    assert info.value.rule == rule, str(info.value)
    assert pathlib.Path(path).name in str(info.value)
    return info.value


# Adj Close without Close

def test_adj_close_without_close_is_the_close(ohlcv_frame, write_csv, caplog):
    frame = ohlcv_frame.drop(columns=["Close"])
    with caplog.at_level(logging.WARNING, logger="jaxtrade.data.loaders"):
        md = load_csv(write_csv(frame, "adj.csv"))
    assert md.symbols == ("adj",)                 # one symbol, not Open/High/Low/Volume as four
    np.testing.assert_array_equal(md.close[:, 0], frame["Adj Close"].astype(float))
    assert md.volume is not None and md.volume.max() > 1e6 > md.close.max()   # volume never a price
    assert not md.has_ohlc                        # O/H/L are unadjusted: dropped, not mixed with Adj Close
    assert "Adj Close" in caplog.text and "as the close" in caplog.text


# wide files: non-price and duplicate columns

@pytest.mark.parametrize("column", ["Volume", "Open Interest", "open_interest"])
def test_wide_non_price_column_refused(wide_frame, write_csv, column):
    frame = wide_frame.assign(**{column: "12345"})
    err = error(write_csv(frame, "wide.csv"), "price-columns")
    assert err.symbol == column and "symbols=" in str(err)
    md = load_csv(write_csv(frame, "wide.csv"), symbols=["AAPL", "XOM"])    # naming the prices settles it
    assert md.symbols == ("AAPL", "XOM")


def test_duplicate_columns_refused(wide_frame, write_csv, tmp_path):
    path = tmp_path / "dup.csv"
    text = write_csv(wide_frame, "x.csv").read_text().replace("JNJ", "AAPL", 1)   # header: Date,AAPL,AAPL,XOM
    path.write_text(text)
    err = error(path, "unique-columns")
    assert err.symbol == "AAPL" and "AAPL.1" not in str(err)


# separators, decimal marks, thousands

def semicolon_frame(wide_frame) -> pd.DataFrame:
    frame = wide_frame.copy()
    for c in ("AAPL", "JNJ", "XOM"):
        frame[c] = frame[c].astype(float).map(lambda v: f"{1000 * v:,.4f}".replace(",", "_")
                                                .replace(".", ",").replace("_", "."))   # 1.234,5678
    return frame


def test_semicolon_decimal_comma_file(wide_frame, tmp_path):
    path = tmp_path / "eu.csv"
    semicolon_frame(wide_frame).to_csv(path, sep=";", index=False)
    md = load_csv(path, sep=";", decimal=",", thousands=".")
    np.testing.assert_allclose(md.close, 1000 * wide_frame[["AAPL", "JNJ", "XOM"]].astype(float), rtol=1e-9)
    err = error(path, "readable-csv")                                  # no options: the header shows ';'
    assert "sep=';'" in str(err) and "decimal=','" in str(err)
    err = error(path, "numeric", sep=";")                              # sep only: 1.234,5 is not a number
    assert "decimal=','" in str(err) and "thousands=" in str(err)


def test_comma_separated_decimal_comma_refused(tmp_path):
    path = tmp_path / "dc.csv"
    rows = [f"2020-01-{d:02d},1,{d:02d}" for d in range(2, 30)]         # 1,05 unquoted: one field too many
    path.write_text("Date,Close\n" + "\n".join(rows) + "\n")
    err = error(path, "readable-csv")
    assert "decimal=','" in str(err) and "sep=" in str(err)


def test_thousands_separator(wide_frame, tmp_path):
    path = tmp_path / "th.csv"
    frame = wide_frame.copy()
    frame["AAPL"] = frame["AAPL"].astype(float).map(lambda v: f"{10000 * v:,.3f}")
    frame.to_csv(path, index=False)                                    # quoted "1,234.567"
    err = error(path, "numeric")
    assert "thousands=','" in str(err)
    md = load_csv(path, thousands=",")
    np.testing.assert_allclose(md.close[:, 0], 10000 * wide_frame["AAPL"].astype(float), rtol=1e-6)


# MetaTrader 5 and HistData

def test_mt5_hourly_export():
    path = FIXTURES / "EURUSD_H1_mt5.csv"
    err = error(path, "timezone")                                      # broker time: the zone must be named
    assert "tz=" in str(err)
    md = load_csv(path, tz="EET")
    ref = load_dataset("eurusd-1h")                                    # the same bars, in UTC
    assert md.symbols == ("EURUSD_H1_mt5",) and md.dates[0] == pd.Timestamp("2017-01-01 22:00")
    assert list(md.dates) == list(ref.dates[:40])
    np.testing.assert_allclose(md.close[:, 0], ref.close[:40, 0], rtol=0, atol=5e-6)
    assert md.has_ohlc and md.volume is None                          # <VOL> all 0, <TICKVOL> not a volume
    kept = load_csv(path, tz="UTC", symbol="EURUSD")
    assert kept.dates[0] == pd.Timestamp("2017-01-02 00:00") and kept.symbols == ("EURUSD",)


def test_mt5_utf16_and_daily(tmp_path):
    path = tmp_path / "EURUSD_H1.csv"
    path.write_bytes((FIXTURES / "EURUSD_H1_mt5.csv").read_text().encode("utf-16"))   # with BOM
    assert load_csv(path, tz="EET").close.shape == (40, 1)
    md = load_csv(FIXTURES / "EURUSD_D1_mt5.csv")                    # daily: no tz needed, dates kept
    assert md.dates[0] == pd.Timestamp("2017-01-02") and md.periods_per_year == 252.0
    assert md.close[0, 0] == 1.04552


def test_histdata_m1_in_fixed_est():
    md = load_csv(FIXTURES / "DAT_ASCII_EURUSD_M1_201701.csv")
    assert md.symbols == ("EURUSD",)
    assert md.dates[0] == pd.Timestamp("2017-01-01 22:00")             # 17:00 EST = 22:00 UTC
    assert md.dates[1] - md.dates[0] == pd.Timedelta(minutes=1)
    assert md.close[0, 0] == 1.052356 and md.open[0, 0] == 1.05236 and md.volume is None


def test_histdata_july_is_not_new_york_time(tmp_path):
    """EST without daylight saving: 17:00 in July is 22:00 UTC too (New York time would give 21:00)."""
    path = tmp_path / "DAT_ASCII_EURUSD_M1_201707.csv"
    text = (FIXTURES / "DAT_ASCII_EURUSD_M1_201701.csv").read_text()
    path.write_text(text.replace("20170101 ", "20170702 "))
    assert load_csv(path).dates[0] == pd.Timestamp("2017-07-02 22:00")

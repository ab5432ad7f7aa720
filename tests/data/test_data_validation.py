"""Every validation rule: a real CSV with one cell broken, and a DataError naming file, symbol, row, rule."""

import numpy as np
import pandas as pd
import pytest

from jaxtrade.data import DataError, load_csv


def mdy_to_iso(value: str) -> str:
    return pd.to_datetime(value, format="%m/%d/%Y").strftime("%Y-%m-%d")


def expect_error(path, rule, *, row=None, sym=None, **kwargs) -> str:
    """Load path, expect DataError(rule) whose message names the file, the rule, the row and symbol."""
    with pytest.raises(DataError) as info:
        load_csv(path, **kwargs)
    err, msg = info.value, str(info.value)
    assert err.rule == rule, msg
    assert f"rule '{rule}'" in msg
    assert path.name in msg
    if row is not None:
        assert f"row {row}" in msg, msg
    if sym is not None:
        assert f"symbol {sym}" in msg, msg
    return msg


def test_valid_files_load(ohlcv_frame, wide_frame, write_csv):
    md = load_csv(write_csv(ohlcv_frame, "ok.csv"), symbol="SPX")
    assert md.close.shape == (60, 1) and md.has_ohlc and md.has_volume
    md = load_csv(write_csv(wide_frame, "ok_wide.csv"))
    assert md.symbols == ("AAPL", "JNJ", "XOM") and md.close.shape == (60, 3) and not md.has_ohlc


@pytest.mark.parametrize("drop, missing", [(["Low"], "low"), (["Close", "Adj Close"], "close")])
def test_required_columns(ohlcv_frame, write_csv, drop, missing):
    msg = expect_error(write_csv(ohlcv_frame.drop(columns=drop)), "required-columns", format="ohlcv")
    assert missing in msg


def test_required_columns_long(write_csv):
    frame = pd.DataFrame({"date": ["2020-01-02"], "symbol": ["A"], "open": [1.0], "volume": [5]})
    expect_error(write_csv(frame), "required-columns")


def test_date_parse(ohlcv_frame, write_csv):
    ohlcv_frame.loc[10, "Date"] = "not a date"
    expect_error(write_csv(ohlcv_frame), "date-parse", row="line 12")


def test_invalid_calendar_date(ohlcv_frame, write_csv):
    ohlcv_frame.loc[10, "Date"] = "2/30/1999"
    expect_error(write_csv(ohlcv_frame), "date-parse", row="line 12")


def test_mixed_date_formats(ohlcv_frame, write_csv):
    ohlcv_frame.loc[10, "Date"] = "1999-01-19"
    expect_error(write_csv(ohlcv_frame), "date-parse", row="line 12")


def test_ambiguous_dates_rejected_unless_format_given(write_csv, bundled):
    frame = bundled("sp500_20_stocks_adjclose.csv.gz")[["Date", "AAPL", "KO"]].iloc[:300]
    dates = pd.to_datetime(frame["Date"])
    frame = frame[dates.dt.day <= 12].copy()            # no field > 12: M/D and D/M both read
    frame["Date"] = pd.to_datetime(frame["Date"]).dt.strftime("%m/%d/%Y")
    path = write_csv(frame)
    msg = expect_error(path, "ambiguous-date", row="line 2")   # 01/02/1990: Jan 2 or Feb 1
    assert "date_format" in msg
    md = load_csv(path, date_format="%m/%d/%Y")
    assert md.dates[0] == pd.Timestamp("1990-01-02") and md.dates[1] == pd.Timestamp("1990-01-03")


def test_unique_dates(ohlcv_frame, write_csv):
    ohlcv_frame.loc[20, "Date"] = ohlcv_frame.loc[19, "Date"]
    row = f"{mdy_to_iso(ohlcv_frame.loc[19, 'Date'])} (line 22)"
    expect_error(write_csv(ohlcv_frame), "unique-dates", row=row)


def test_sorted_dates(ohlcv_frame, write_csv):
    frame = ohlcv_frame.iloc[[*range(30), 31, 30, *range(32, 60)]]
    row = f"{mdy_to_iso(ohlcv_frame.loc[30, 'Date'])} (line 33)"
    expect_error(write_csv(frame), "sorted-dates", row=row)


@pytest.mark.parametrize("value, rule", [("abc", "numeric"), ("inf", "finite"), ("0", "positive-price"),
                                         ("-3.5", "positive-price")])
def test_close_values(wide_frame, write_csv, value, rule):
    wide_frame.loc[15, "JNJ"] = value
    expect_error(write_csv(wide_frame), rule, row=f"{wide_frame.loc[15, 'Date']} (line 17)", sym="JNJ")


def ohlcv_row(frame, i):
    return f"{mdy_to_iso(frame.loc[i, 'Date'])} (line {i + 2})"


@pytest.mark.parametrize("column, value, rule", [
    ("Low", "-1", "positive-price"),
    ("Open", "0", "positive-price"),
    ("Volume", "-5", "non-negative-volume"),
    ("High", "inf", "finite"),
    ("Volume", "lots", "numeric"),
    ("Open", "", "incomplete-bar"),
    ("Volume", "", "incomplete-bar"),
])
def test_ohlcv_values(ohlcv_frame, write_csv, column, value, rule):
    ohlcv_frame.loc[15, column] = value
    expect_error(write_csv(ohlcv_frame), rule, row=ohlcv_row(ohlcv_frame, 15), sym="SPX", symbol="SPX")


@pytest.mark.parametrize("column, scale", [("High", 0.99), ("Low", 1.01)])
def test_ohlc_consistency(ohlcv_frame, write_csv, column, scale):
    # High just below the bar's top (or Low just above its bottom) breaks the OHLC ordering
    o, c = float(ohlcv_frame.loc[15, "Open"]), float(ohlcv_frame.loc[15, "Close"])
    ohlcv_frame.loc[15, column] = str((max(o, c) if column == "High" else min(o, c)) * scale)
    msg = expect_error(write_csv(ohlcv_frame), "ohlc-consistency", row=ohlcv_row(ohlcv_frame, 15), sym="SPX",
                       symbol="SPX")
    assert "high >= max(open, close)" in msg


def test_leading_missing_rejected_or_dropped(wide_frame, write_csv):
    wide_frame.loc[:4, "JNJ"] = ""                     # JNJ's first price is on row 5
    path = write_csv(wide_frame)
    expect_error(path, "leading-missing", row=f"{wide_frame.loc[0, 'Date']} (line 2)", sym="JNJ",
                 leading="reject")
    md = load_csv(path)                                # default: drop rows 0..4, never back-fill
    assert md.dates[0] == pd.Timestamp(wide_frame.loc[5, "Date"]) and md.n_rows == 55
    np.testing.assert_array_equal(md.close[0], wide_frame.loc[5, ["AAPL", "JNJ", "XOM"]].astype(float))


def test_symbol_without_any_price(wide_frame, write_csv):
    wide_frame["XOM"] = ""
    expect_error(write_csv(wide_frame), "leading-missing", sym="XOM")


def test_max_gap(wide_frame, write_csv):
    wide_frame.loc[20:26, "XOM"] = ""                  # 7 missing rows > max_gap=5
    path = write_csv(wide_frame)
    expect_error(path, "max-gap", row=f"{wide_frame.loc[20, 'Date']} (line 22)", sym="XOM")
    expect_error(path, "max-gap", row=f"{wide_frame.loc[20, 'Date']} (line 22)", sym="XOM", max_gap=6)
    md = load_csv(path, max_gap=7)                     # forward-filled from row 19, never from row 27
    np.testing.assert_array_equal(md.close[20:27, 2], float(wide_frame.loc[19, "XOM"]))


def test_trailing_gap_counts(wide_frame, write_csv):
    wide_frame.loc[52:, "AAPL"] = ""                   # 8 missing rows at the end
    expect_error(write_csv(wide_frame), "max-gap", row=f"{wide_frame.loc[52, 'Date']} (line 54)", sym="AAPL")


def test_missing_bar_filled_flat_with_zero_volume(ohlcv_frame, write_csv):
    frame = ohlcv_frame.drop(columns=["Adj Close"])
    other = frame.copy()
    frame = frame.drop(index=[30, 31])                 # SPX has no bars on rows 30, 31; NDX does
    long = pd.concat([frame.assign(symbol="SPX"), other.assign(symbol="NDX")])
    md = load_csv(write_csv(long, "long.csv"))
    assert md.n_rows == 60 and md.symbols == ("SPX", "NDX")
    prev = float(ohlcv_frame.loc[29, "Close"])
    for x in (md.open, md.high, md.low, md.close):
        np.testing.assert_array_equal(x[30:32, 0], prev)
    np.testing.assert_array_equal(md.volume[30:32, 0], 0.0)
    assert md.volume[29, 0] > 0 and md.close[32, 0] == float(ohlcv_frame.loc[32, "Close"])


def test_single_symbol_empty_row_dropped(ohlcv_frame, write_csv):
    ohlcv_frame.loc[30, ["Open", "High", "Low", "Close", "Adj Close", "Volume"]] = ""
    md = load_csv(write_csv(ohlcv_frame))
    assert md.n_rows == 59 and mdy_to_iso(ohlcv_frame.loc[30, "Date"]) not in md.dates.strftime("%Y-%m-%d")


def test_all_missing_rows_dropped(wide_frame, write_csv):
    wide_frame.loc[10, ["AAPL", "JNJ", "XOM"]] = "."   # FRED-style holiday row
    md = load_csv(write_csv(wide_frame))
    assert md.n_rows == 59 and pd.Timestamp(wide_frame.loc[10, "Date"]) not in md.dates


def test_min_rows(wide_frame, write_csv):
    frame = wide_frame.iloc[:20]
    expect_error(write_csv(frame), "min-rows", row=frame["Date"].iloc[-1])


def test_long_format_duplicate_and_alignment(wide_frame, write_csv):
    long = wide_frame.melt(id_vars="Date", var_name="symbol", value_name="close")
    long = long.sample(frac=1.0, random_state=0)       # rows in any order
    md = load_csv(write_csv(long, "long.csv"))
    assert md.symbols == tuple(pd.unique(long["symbol"]))   # order of first appearance
    assert md.n_rows == 60 and md.dates.is_monotonic_increasing
    j = md.symbols.index("JNJ")
    np.testing.assert_array_equal(md.close[:, j], wide_frame["JNJ"].astype(float))
    # an absent (date, symbol) row is a missing bar: filled within max_gap
    dropped = long[~((long["symbol"] == "XOM") & (long["Date"] == wide_frame.loc[30, "Date"]))]
    md = load_csv(write_csv(dropped, "long_gap.csv"))
    x = md.symbols.index("XOM")
    assert md.close[30, x] == float(wide_frame.loc[29, "XOM"])
    dup = pd.concat([long, long.iloc[[5]]])
    row = long.iloc[5]
    expect_error(write_csv(dup, "long_dup.csv"), "unique-dates", row=f"{row['Date']} (line {len(dup) + 1})",
                 sym=row["symbol"])


def test_long_format_numeric_names_the_rows_symbol(wide_frame, write_csv):
    long = wide_frame.melt(id_vars="Date", var_name="symbol", value_name="close")
    long.loc[70, "close"] = "n/a?"                     # row 70 is JNJ's 11th row
    row = f"{long.loc[70, 'Date']} (line 72)"
    expect_error(write_csv(long, "long.csv"), "numeric", row=row, sym="JNJ")


def test_long_format_ohlcv(ohlcv_frame, write_csv):
    frame = ohlcv_frame.drop(columns=["Adj Close"]).assign(Ticker="SPX")
    frame.loc[15, "High"] = str(float(frame.loc[15, "Close"]) * 0.9)
    expect_error(write_csv(frame, "long_ohlcv.csv"), "ohlc-consistency", row=ohlcv_row(frame, 15), sym="SPX")


def test_unreadable_file(tmp_path):
    with pytest.raises(DataError) as info:
        load_csv(tmp_path / "missing.csv")
    assert info.value.rule == "readable-csv" and "missing.csv" in str(info.value)

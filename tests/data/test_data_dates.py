"""Date parsing: ISO, M/D/YYYY, D/M/YYYY when the file settles it, explicit formats, intraday, bar spacing."""

import numpy as np
import pandas as pd
import pytest

from jaxtrade.data import DataError, load_csv, split
from jaxtrade.data.dates import describe_periods_per_year, infer_periods_per_year, parse_dates, rollover_days


def lines(values):
    return pd.Series(values, index=np.arange(len(values)) + 2)


def test_iso_and_month_first():
    got = parse_dates(lines(["2020-01-02", "2020-01-13"]), source="f")
    assert list(got) == [pd.Timestamp("2020-01-02"), pd.Timestamp("2020-01-13")]
    got = parse_dates(lines(["1/2/2020", "1/13/2020"]), source="f")          # 13 settles M/D
    assert list(got) == [pd.Timestamp("2020-01-02"), pd.Timestamp("2020-01-13")]


def test_day_first_when_settled():
    got = parse_dates(lines(["02/01/2020", "13/01/2020"]), source="f")      # 13 settles D/M
    assert list(got) == [pd.Timestamp("2020-01-02"), pd.Timestamp("2020-01-13")]


def test_contradictory_orders_rejected():
    with pytest.raises(DataError) as info:
        parse_dates(lines(["13/01/2020", "01/13/2020"]), source="f")
    assert info.value.rule == "date-parse" and "line 2" in str(info.value)


def test_ambiguous_rejected_and_settled_by_format():
    with pytest.raises(DataError) as info:
        parse_dates(lines(["01/02/2020", "01/03/2020"]), source="f")
    assert info.value.rule == "ambiguous-date" and "date_format" in str(info.value)
    got = parse_dates(lines(["01/02/2020", "01/03/2020"]), source="f", date_format="%d/%m/%Y")
    assert list(got) == [pd.Timestamp("2020-02-01"), pd.Timestamp("2020-03-01")]
    # every value equal both ways (day == month) is not ambiguous
    assert parse_dates(lines(["01/01/2020", "02/02/2020"]), source="f")[1] == pd.Timestamp("2020-02-02")


def test_format_mismatch_names_line():
    with pytest.raises(DataError) as info:
        parse_dates(lines(["2020-01-02", "2020/01/03"]), source="f", date_format="%Y-%m-%d")
    assert info.value.rule == "date-parse" and "line 3" in str(info.value)


def test_intraday_timestamps_kept():
    got = parse_dates(lines(["2020-01-02 09:30:00", "2020-01-02T09:31:00"]), source="f")
    assert got[1] - got[0] == pd.Timedelta(minutes=1)
    got = parse_dates(lines(["1/2/2020 09:30", "1/13/2020 16:00:00"]), source="f")
    assert got[1] == pd.Timestamp("2020-01-13 16:00")


def test_intraday_timezones_to_utc():
    got = parse_dates(lines(["2020-01-02T09:30:00-05:00", "2020-01-02T09:31:00-05:00",
                             "2020-07-02T09:30:00-04:00"]), source="f")
    assert got.tz is None
    assert list(got) == [pd.Timestamp("2020-01-02 14:30"), pd.Timestamp("2020-01-02 14:31"),
                         pd.Timestamp("2020-07-02 13:30")]
    got = parse_dates(lines(["2020-01-02 09:30:00Z", "2020-01-02 10:30:00+0100"]), source="f")
    assert list(got) == [pd.Timestamp("2020-01-02 09:30"), pd.Timestamp("2020-01-02 09:30")]


def test_daily_dates_east_of_utc_keep_the_local_date(tmp_path):
    days = pd.bdate_range("2016-01-04", periods=60)
    got = parse_dates(lines(list(days.strftime("%Y-%m-%dT00:00:00+09:00"))), source="f")
    assert list(got) == list(days)                       # not 2016-01-03 15:00 UTC
    # one close per day at 16:00 New York time, across a DST change: still the local trading day
    ny = ["2020-03-06T16:00:00-05:00", "2020-03-09T16:00:00-04:00"]
    assert list(parse_dates(lines(ny), source="f")) == list(pd.to_datetime(["2020-03-06", "2020-03-09"]))
    close = 100 * np.exp(np.cumsum(np.random.default_rng(0).normal(0, 0.01, 60)))
    path = tmp_path / "tokyo.csv"
    pd.DataFrame({"Date": days.strftime("%Y-%m-%dT00:00:00+09:00"), "N225": close}).to_csv(path, index=False)
    md = load_csv(path)
    assert md.dates[0] == pd.Timestamp("2016-01-04") and md.periods_per_year == 252.0


def test_mixed_naive_and_offset_refused(tmp_path):
    with pytest.raises(DataError) as info:
        parse_dates(lines(["2016-01-04T00:00:00+09:00", "2016-01-05", "2016-01-06"]), source="f.csv")
    err = info.value
    assert err.rule == "timezone" and "line 3" in str(err) and "f.csv" in str(err)
    path = tmp_path / "mixed.csv"
    pd.DataFrame({"Date": ["2016-01-04 10:00", "2016-01-04 11:00+01:00"], "X": [1.0, 2.0]}).to_csv(path,
                                                                                                 index=False)
    with pytest.raises(DataError) as info:
        load_csv(path)
    assert info.value.rule == "timezone" and "mixed.csv" in str(info.value) and "line 3" in str(info.value)


def test_tz_option_for_naive_times():
    # fixed EST (HistData): 17:00 EST = 22:00 UTC in winter and in summer
    got = parse_dates(lines(["2017-07-02 17:00:00", "2017-07-02 18:00:00"]), source="f", tz="Etc/GMT+5")
    assert list(got) == [pd.Timestamp("2017-07-02 22:00"), pd.Timestamp("2017-07-02 23:00")]
    got = parse_dates(lines(["2017-07-03 09:00", "2017-07-03 10:00"]), source="f", tz="EET")   # EEST, UTC+3
    assert got[0] == pd.Timestamp("2017-07-03 06:00")
    # daily data keep their calendar date whatever the zone
    assert parse_dates(lines(["2017-07-03", "2017-07-04"]), source="f", tz="Asia/Tokyo")[0] == \
        pd.Timestamp("2017-07-03")
    with pytest.raises(DataError) as info:                # 02:30 does not exist in Berlin on 2021-03-28
        parse_dates(lines(["2021-03-28 01:30", "2021-03-28 02:30"]), source="f", tz="Europe/Berlin")
    assert info.value.rule == "timezone" and "line 3" in str(info.value)
    with pytest.raises(DataError, match="drop tz="):
        parse_dates(lines(["2021-03-28 01:30+01:00"]), source="f", tz="UTC")


def test_periods_per_year():
    days = pd.bdate_range("2020-01-01", periods=300)
    assert infer_periods_per_year(days) == 252.0
    assert infer_periods_per_year(pd.date_range("2020-01-01", periods=300, freq="D")) == 365.0   # crypto
    assert infer_periods_per_year(pd.date_range("2020-01-03", periods=100, freq="W-FRI")) == 52.0
    assert infer_periods_per_year(pd.date_range("2020-01-31", periods=40, freq="ME")) == 12.0
    session = [pd.date_range(d + pd.Timedelta("9:30:00"), periods=390, freq="min") for d in days[:5]]
    assert infer_periods_per_year(session[0].append(session[1:])) == 252.0 * 390


def test_intraday_periods_per_year_are_the_bars_observed_per_calendar_week():
    # 24/7 hourly bars from a Wednesday noon over three weeks: 8,766 = 168 x 365.25 / 7, not 252 x 24.
    crypto = pd.date_range("2021-03-03 12:00", "2021-03-24 12:00", freq="h")
    assert infer_periods_per_year(crypto) == pytest.approx(24 * 365.25)
    # FX-style 24 x 5 bars (Sunday 22:00 .. Friday 21:00 UTC), partial first and last weeks, one week
    # missing from the data and one holiday (a whole Monday without bars): the complete weeks that
    # hold bars are 120, 120 and 96 bars, so (120 + 120 + 96) / 3 a week; the partial edge weeks and
    # the empty week (a data gap) are left out.
    hours = pd.date_range("2021-03-02 05:00", "2021-04-09 21:00", freq="h")        # Tuesday .. Friday
    open_ = (hours.day_of_week < 4) | ((hours.day_of_week == 4) & (hours.hour <= 21)) | \
        ((hours.day_of_week == 6) & (hours.hour >= 22))
    gap = (hours >= "2021-03-15") & (hours < "2021-03-22")                         # a week lost
    holiday = hours.normalize() == pd.Timestamp("2021-03-29")                     # a Monday closed
    fx = hours[open_ & ~gap & ~holiday]
    per_week = (120 + 120 + 96) / 3
    assert infer_periods_per_year(fx) == pytest.approx(per_week * 365.25 / 7)
    assert describe_periods_per_year(fx) == (f"{per_week * 365.25 / 7:,.1f} bars a year, observed: 336 bars "
                                            f"in 3 complete calendar weeks (Monday-Sunday) = 112.00 a week "
                                            "x 365.25 / 7 weeks a year")
    # A value given (data.csv_options.periods_per_year, load_csv(periods_per_year=)) is named as given.
    assert describe_periods_per_year(fx, 6048.0).startswith("6,048.0 bars a year, given (not inferred)")
    assert describe_periods_per_year(pd.bdate_range("2020-01-01", periods=300)).startswith(
        "252 bars a year: daily bars on weekdays, the 252-trading-day convention (260.9 a year observed")


def test_fx_rollovers_are_17_00_new_york_crossings():
    def nights(*stamps):
        return np.diff(rollover_days(pd.DatetimeIndex(stamps))).tolist()

    # 16:00 -> 18:00 New York crosses one rollover: 21:00 -> 23:00 UTC in January (EST), 20:00 -> 22:00
    # UTC in July (EDT); 23:00 -> 01:00 UTC crosses UTC midnight but no rollover, in either season.
    assert nights("2021-01-14 21:00", "2021-01-14 23:00", "2021-01-15 01:00") == [1, 0]
    assert nights("2021-07-14 20:00", "2021-07-14 22:00", "2021-07-15 01:00") == [1, 0]
    # The rollover belongs to the bar stamped 17:00: 22:00 UTC in winter, 21:00 UTC in summer.
    assert nights("2021-01-14 21:00", "2021-01-14 22:00", "2021-01-14 23:00") == [1, 0]
    assert nights("2021-07-14 20:00", "2021-07-14 21:00", "2021-07-14 22:00") == [1, 0]
    assert nights("2021-03-12 20:00", "2021-03-12 21:00", "2021-03-12 22:00") == [0, 1]   # EST: 12 March
    # Friday's last bar (16:00 New York) to the Sunday 17:00 open: the weekend's three nights.
    assert nights("2021-01-15 20:00", "2021-01-15 21:00", "2021-01-17 22:00", "2021-01-17 23:00") == [0, 3, 0]
    # Daily bars: calendar days, Friday -> Monday three.
    assert nights("2021-01-14", "2021-01-15", "2021-01-18") == [1, 3]


def test_intraday_csv(tmp_path):
    stamps = pd.date_range("2021-03-01 09:30", periods=120, freq="min")
    close = 100 * np.exp(np.cumsum(np.random.default_rng(0).normal(0, 1e-3, 120)))
    path = tmp_path / "fx.csv"
    frame = pd.DataFrame({"timestamp": stamps.strftime("%Y-%m-%d %H:%M:%S"), "EURUSD": close})
    frame.to_csv(path, index=False)
    md = load_csv(path)
    assert md.dates[1] == pd.Timestamp("2021-03-01 09:31") and md.periods_per_year == 252.0 * 120
    # a date-only split end includes the whole day's bars
    s = split(md, train=(None, "2021-03-01"), lookback=5)
    assert s.train.dates[-1] == stamps[-1]

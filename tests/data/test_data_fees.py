"""The dated schedule of US regulatory fees on sales (SEC Section 31, FINRA/NASD TAF): lookup by calendar
date, exact rates on the issue's dates, raising outside the sourced schedule, and the schedule's own shape."""

import ast
import dataclasses
import math
import pathlib

import numpy as np
import pandas as pd
import pytest

from jaxtrade.data import fees
from jaxtrade.data.fees import (
    COVERAGE_START,
    FEE_COLUMNS,
    FINRA_TAF,
    SCHEDULE_VERIFIED_THROUGH,
    SEC_SECTION_31,
    FeeScheduleError,
    SecRate,
    TafRate,
    fee_schedule_table,
    regulatory_fee_rates,
    regulatory_fee_rates_or_nan,
    source_grade,
)


def one(date) -> dict:
    """The four rates for one date, by column name."""
    row = regulatory_fee_rates([date])
    assert row.shape == (1, len(FEE_COLUMNS)) and row.dtype == np.float64
    return dict(zip(FEE_COLUMNS, row[0], strict=True))


def test_worked_example_1000_shares_at_50_on_2024_06_03():
    r = one("2024-06-03")
    shares, price = 1000, 50.0
    sec_fee = r["sec_rate"] * shares * price
    taf = min(r["taf_per_share"] * shares, r["taf_cap"])
    assert sec_fee == pytest.approx(1.39, abs=1e-12)                  # $50,000 * $27.80 / $1M
    assert r["taf_per_share"] == 0.000166 and r["taf_cap"] == 8.30    # FINRA TAF, 2024 schedule
    assert taf == pytest.approx(0.166, abs=1e-12)                     # 1,000 * $0.000166, under the cap
    assert r["taf_per_option_contract"] == 0.00279
    # a large sale hits the per-trade cap
    assert min(r["taf_per_share"] * 100_000, r["taf_cap"]) == 8.30


@pytest.mark.parametrize("start, per_million, before", [
    ("2023-02-27", 8.00, 22.90),
    ("2024-05-22", 27.80, 8.00),
    ("2025-05-14", 0.00, 27.80),
])
def test_issue_sec_dates_on_and_day_before(start, per_million, before):
    day_before = str((pd.Timestamp(start) - pd.Timedelta(days=1)).date())
    assert one(start)["sec_rate"] == pytest.approx(per_million / 1e6, rel=0, abs=1e-15)
    assert one(day_before)["sec_rate"] == pytest.approx(before / 1e6, rel=0, abs=1e-15)
    assert any(r.start == start and r.per_million == per_million for r in SEC_SECTION_31)


def test_statutory_rate_before_fiscal_year_rates_and_no_taf_yet():
    r = one("2000-01-03")
    assert r["sec_rate"] == pytest.approx(1 / 300 / 100)              # 1/300 of one percent = $33.33/$1M
    assert (r["taf_per_share"], r["taf_cap"], r["taf_per_option_contract"]) == (0.0, math.inf, 0.0)
    assert one("2001-12-28")["sec_rate"] == pytest.approx(15e-6)      # Fee Relief Act, retroactive start


def test_date_before_coverage_raises_naming_the_date_and_the_remedy():
    before = str((pd.Timestamp(COVERAGE_START) - pd.Timedelta(days=1)).date())
    regulatory_fee_rates([COVERAGE_START])                            # the first day itself is covered
    with pytest.raises(FeeScheduleError) as info:
        regulatory_fee_rates(pd.DatetimeIndex([COVERAGE_START, before, "1990-01-02"]))
    msg = str(info.value)
    assert before in msg and "1990-01-02" not in msg                  # the first uncovered date, in order
    assert info.value.date == before and "before" in info.value.reason
    assert COVERAGE_START in msg and SCHEDULE_VERIFIED_THROUGH in msg
    assert 'regulatory_fees="flat"' in msg and '"none"' in msg
    assert isinstance(info.value, ValueError)


def test_date_after_verified_through_raises():
    regulatory_fee_rates([SCHEDULE_VERIFIED_THROUGH])
    after = str((pd.Timestamp(SCHEDULE_VERIFIED_THROUGH) + pd.Timedelta(days=1)).date())
    for date in (after, "2026-12-01"):                                # live trading today
        with pytest.raises(FeeScheduleError, match=date) as info:
            regulatory_fee_rates([date])
        assert "SCHEDULE_VERIFIED_THROUGH" in info.value.reason


def test_bounds_do_not_rely_on_nan_rows(monkeypatch):
    """Coverage is enforced by the dates, not by NaN rates that happen to sit in the rows past the verified
    date: with every stored rate made finite, dates outside the coverage still raise."""
    monkeypatch.setattr(fees, "_SEC_VALUES", np.nan_to_num(fees._SEC_VALUES, nan=1e-5))
    monkeypatch.setattr(fees, "_TAF_VALUES", np.nan_to_num(fees._TAF_VALUES, nan=1e-3))
    regulatory_fee_rates([COVERAGE_START, SCHEDULE_VERIFIED_THROUGH, "2009-04-05", "2015-06-01"])
    for date in ("1996-10-10", "1990-01-02", "2026-01-01", "2026-12-01"):
        with pytest.raises(FeeScheduleError, match=date):
            regulatory_fee_rates([date])
        assert regulatory_fee_rates_or_nan([date])[1] == date


@pytest.mark.parametrize("date, column, value", [
    ("2009-04-05", "sec_rate", 25.70e-6),        # between $5.60 (2008-04-01) and $25.70 (2009-04-10)
    ("2015-06-01", "sec_rate", 22.10e-6),        # between $22.10 (2014-03-18) and $21.80 (2016-02-16)
    ("2016-02-15", "sec_rate", 22.10e-6),
    ("2003-05-01", "taf_per_share", 0.0001),     # between two $0.0001 rows
    ("2003-05-01", "taf_cap", 10.0),
])
def test_bound_rows_charge_the_higher_sourced_neighbour(date, column, value):
    assert one(date)[column] == pytest.approx(value, rel=0, abs=1e-15)


def test_bound_rows_sit_between_sourced_rows_at_the_higher_rate():
    for rows in (SEC_SECTION_31, FINRA_TAF):
        for i, r in enumerate(rows):
            if source_grade(r.source) != "BOUND":
                continue
            assert 0 < i < len(rows) - 1, r.start
            before, after = (dataclasses.astuple(rows[j])[1:-1] for j in (i - 1, i + 1))
            higher = tuple(max(a, b) for a, b in zip(before, after, strict=True))
            assert dataclasses.astuple(r)[1:-1] == higher
            assert source_grade(rows[i - 1].source) not in ("BOUND", "UNSOURCED")
            assert source_grade(rows[i + 1].source) not in ("BOUND", "UNSOURCED")
    assert sum(source_grade(r.source) == "BOUND" for r in SEC_SECTION_31 + FINRA_TAF) == 3


@pytest.mark.parametrize("date, per_share, cap", [
    ("2012-05-10", 0.000095, 4.75),     # the March 2012 rate still holds while SR-FINRA-2012-023 is pending
    ("2012-06-30", 0.000095, 4.75),     # the day before the July 2012 increase
    ("2012-07-01", 0.000119, 5.95),
    ("2013-01-02", 0.000119, 5.95),     # inside the interval that was unsourced before
    ("2017-07-03", 0.000119, 5.95),
    ("2021-12-31", 0.000119, 5.95),     # the last day before the SR-FINRA-2020-032 phase-in
])
def test_taf_july_2012_increase(date, per_share, cap):
    r = one(date)
    assert (r["taf_per_share"], r["taf_cap"], r["taf_per_option_contract"]) == (per_share, cap, 0.002)


@pytest.mark.parametrize("date, per_million", [
    ("2016-02-16", 21.80),              # FY2016 order, effective 60 days after the appropriation
    ("2016-10-03", 21.80),              # no change when FY2017 began under a continuing resolution
    ("2017-07-03", 21.80),              # the day before the FY2017 rate
    ("2017-07-04", 23.10),
])
def test_sec_fiscal_2016_and_2017_rates(date, per_million):
    assert one(date)["sec_rate"] == pytest.approx(per_million / 1e6, rel=0, abs=1e-15)


def test_fiscal_2015_is_a_bound_row_up_to_the_fiscal_2016_start():
    """The day before the FY2016 row starts falls in the FY2015 BOUND row, not in the FY2016 row."""
    assert one("2015-02-13")["sec_rate"] == pytest.approx(22.10e-6, rel=0, abs=1e-15)
    assert source_grade(in_force(SEC_SECTION_31, "2016-02-15").source) == "BOUND"
    assert in_force(SEC_SECTION_31, "2016-02-15").start == "2015-02-14"
    assert one("2016-02-16")["sec_rate"] == pytest.approx(21.80e-6, rel=0, abs=1e-15)


def test_missing_date_raises():
    with pytest.raises(FeeScheduleError, match="NaT"):
        regulatory_fee_rates(pd.DatetimeIndex(["2008-06-02", pd.NaT]))


def test_rows_sorted_non_overlapping_iso_and_sourced():
    for rows, cls in ((SEC_SECTION_31, SecRate), (FINRA_TAF, TafRate)):
        assert len(rows) >= 2 and all(isinstance(r, cls) for r in rows)
        starts = [r.start for r in rows]
        assert all(pd.Timestamp(s).strftime("%Y-%m-%d") == s for s in starts)
        assert all(a < b for a, b in zip(starts, starts[1:], strict=False))   # strictly increasing
        for r in rows:
            assert r.source.strip(), r.start
            grade = source_grade(r.source)
            values = dataclasses.astuple(r)[1:-1]
            if grade == "UNSOURCED":
                assert all(math.isnan(v) for v in values), r.start
            elif r.start <= SCHEDULE_VERIFIED_THROUGH:
                assert not any(math.isnan(v) for v in values) and min(values) >= 0, r.start
    assert COVERAGE_START == max(SEC_SECTION_31[0].start, FINRA_TAF[0].start)
    assert FINRA_TAF[0].per_share == 0 and FINRA_TAF[0].cap_per_trade == math.inf   # before the TAF
    with pytest.raises(ValueError):
        source_grade("see the SEC website")


def in_force(rows, date: str):
    """The row of a schedule in force on an ISO date (by scanning, independent of the module's lookup)."""
    return [r for r in rows if r.start <= date][-1]


def test_every_row_in_force_is_looked_up():
    """Each sourced row's start (within coverage) returns that row's rates, unless the other schedule has an
    unsourced interval there, in which case the whole row is NaN."""
    for r in SEC_SECTION_31 + FINRA_TAF:
        in_range = COVERAGE_START <= r.start <= SCHEDULE_VERIFIED_THROUGH
        if not in_range or source_grade(r.source) == "UNSOURCED":
            continue
        sec, taf = in_force(SEC_SECTION_31, r.start), in_force(FINRA_TAF, r.start)
        got, first = regulatory_fee_rates_or_nan([r.start])
        if "UNSOURCED" in (source_grade(sec.source), source_grade(taf.source)):
            assert np.isnan(got).all() and first == r.start, r.start
        else:
            expect = (sec.per_million / 1e6, taf.per_share, taf.cap_per_trade, taf.per_option_contract)
            assert tuple(got[0]) == expect and first is None, r.start


def test_intraday_and_timezone_stamps_use_their_calendar_date():
    stamps = pd.DatetimeIndex(["2024-05-21 23:59:59", "2024-05-22 00:00:01", "2024-05-22 15:30"])
    got = regulatory_fee_rates(stamps)[:, 0]
    np.testing.assert_array_equal(got, [8e-6, 27.8e-6, 27.8e-6])
    eastern = pd.DatetimeIndex(["2024-05-21 20:30"]).tz_localize("America/New_York")   # 00:30 UTC on 05-22
    assert regulatory_fee_rates(eastern)[0, 0] == 8e-6
    assert one(pd.Timestamp("2024-05-22 09:30"))["sec_rate"] == 27.8e-6
    assert regulatory_fee_rates("2024-05-22").shape == (1, 4)            # a single date
    assert regulatory_fee_rates(np.array(["2024-05-21T16:00"], dtype="datetime64[m]"))[0, 0] == 8e-6


def test_nan_variant_marks_uncovered_rows_and_names_the_first():
    dates = pd.DatetimeIndex(["1995-06-01", "2024-06-03", "1996-10-10", "2026-03-02"])
    table, first = regulatory_fee_rates_or_nan(dates)
    assert table.shape == (4, 4) and table.dtype == np.float64
    assert first == "1995-06-01"
    assert np.isnan(table[[0, 2, 3]]).all()
    np.testing.assert_array_equal(table[1], regulatory_fee_rates(["2024-06-03"])[0])
    _, first = regulatory_fee_rates_or_nan(dates[[1, 3, 2]])
    assert first == "2026-03-02"
    table, first = regulatory_fee_rates_or_nan(pd.DatetimeIndex(["2024-06-03", "2012-01-03"]))
    assert first is None and not np.isnan(table).any()


def test_bundled_data_coverage(sp500_20):
    """The bundled data (1990-01-02 .. 2022-12-28) starts before the schedule: the strict lookup raises on its
    first day; the NaN variant says so and covers the bars from COVERAGE_START outside the unsourced gaps."""
    dates = sp500_20.dates
    with pytest.raises(FeeScheduleError, match=str(dates[0].date())):
        regulatory_fee_rates(dates)
    table, first = regulatory_fee_rates_or_nan(dates)
    assert first == str(dates[0].date())
    covered = ~np.isnan(table).any(axis=1)
    assert not covered[dates < pd.Timestamp(COVERAGE_START)].any()
    assert covered[dates >= pd.Timestamp("2016-02-16")].all()        # no gap from 2016-02-16 on
    assert covered[dates >= pd.Timestamp(COVERAGE_START)].all()       # BOUND rows fill the inner gaps


def test_markdown_table_lists_every_row_with_its_source():
    md = fee_schedule_table()
    assert "SEC Section 31" in md and "Trading Activity Fee" in md
    for r in SEC_SECTION_31 + FINRA_TAF:
        line = next(x for x in md.splitlines() if x.startswith(f"| {r.start} |") and r.source[:40] in x)
        assert source_grade(r.source) in line
    assert "| 2024-05-22 | 2025-05-13 | 27.80 |" in md
    assert f"| 2025-05-14 | {SCHEDULE_VERIFIED_THROUGH} (verified through) | 0.00 |" in md   # capped end
    for r in SEC_SECTION_31 + FINRA_TAF:       # rows recorded past the verified date are marked as not used
        if r.start > SCHEDULE_VERIFIED_THROUGH:
            assert f"| {r.start} | not used" in md


def test_host_side_module_imports():
    tree = ast.parse(pathlib.Path(fees.__file__).read_text())
    names = {a.name.split(".")[0] for n in ast.walk(tree) if isinstance(n, ast.Import) for a in n.names}
    names |= {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    allowed = {"__future__", "dataclasses", "datetime", "math", "numpy", "pandas", "jaxtrade.data.errors"}
    assert names <= allowed, names - allowed

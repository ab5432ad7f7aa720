"""Date parsing and calendar checks: ISO and M/D/YYYY (or D/M/YYYY) dates, ambiguity rejected.

Rules (rule names as they appear in `DataError`):
- "date-parse": a value is not a date in a recognised format (YYYY-MM-DD[ time], M/D/YYYY[ time],
  D/M/YYYY[ time], or `date_format`), or the file mixes formats.
- "ambiguous-date": slash dates where every value reads as both M/D and D/M (no field > 12) and
  at least one value reads differently each way. Pass `date_format` (e.g. "%m/%d/%Y") to settle it.
- "timezone": a file mixing timestamps with and without a UTC offset, offsets together with `tz=`,
  or a local time that a daylight-saving change skips or repeats in `tz`.
- "unique-dates", "sorted-dates": the calendar must be strictly increasing.

Timestamps keep their time of day (intraday bars). Time zones (rule "timezone"):
- A file gives every timestamp a UTC offset (`2016-01-04T00:00:00+09:00`, `...Z`) or none; a file
  mixing both is refused (which zone would the naive ones be in?).
- Daily data (one bar per local calendar day, every bar at the same local time of day) keep the
  local calendar date, at midnight: `2016-01-04T00:00:00+09:00` is 2016-01-04, not 2016-01-03
  15:00 UTC (that would shift every bar back a day and make Monday a Sunday).
- Intraday data with offsets are converted to UTC and made naive, so one file never mixes offsets.
- Naive timestamps are taken as they are, unless `tz` names their zone (e.g. a broker's "EET" or
  HistData's fixed EST "Etc/GMT+5"): then intraday times are converted to naive UTC (a local time
  that does not exist or occurs twice at a daylight-saving change raises); daily data keep their date.
"""

from __future__ import annotations

import re

import numpy as np
import pandas as pd

from jaxtrade.data.errors import DataError

_ISO = r"^\d{4}-\d{1,2}-\d{1,2}(?:[ T].*)?$"
_SLASH = r"^(\d{1,2})[/.](\d{1,2})[/.](\d{4})(.*)$"
_DAY_NS = 86_400 * 10**9
# A time of day followed by a UTC offset ("Z", "+09:00", "+0900", "+09"); the date may be ISO or slash.
_OFFSET = re.compile(r"^(?P<local>.*\d{1,2}:\d{2}(?::\d{2}(?:[.,]\d+)?)?)\s*"
                     r"(?P<off>Z|[+-]\d{2}(?::?\d{2})?)$")


def format_date(ts) -> str:
    """A date as written in error messages: YYYY-MM-DD, plus the time when it is not midnight."""
    ts = pd.Timestamp(ts)
    return ts.strftime("%Y-%m-%d") if ts == ts.normalize() else ts.isoformat(sep=" ")


def _to_naive(parsed: pd.Series) -> pd.Series:
    """UTC-naive timestamps: tz-aware input is converted to UTC first."""
    if isinstance(parsed.dtype, pd.DatetimeTZDtype):
        return parsed.dt.tz_convert("UTC").dt.tz_localize(None)
    return parsed


def _parse_iso(s: pd.Series) -> pd.Series:
    try:
        parsed = pd.to_datetime(s, format="ISO8601", errors="coerce")
    except (ValueError, TypeError):   # mixed UTC offsets: put everything on UTC
        parsed = pd.to_datetime(s, format="ISO8601", errors="coerce", utc=True)
    if parsed.dtype == object:        # pandas leaves mixed offsets as objects on some versions
        parsed = pd.to_datetime(s, format="ISO8601", errors="coerce", utc=True)
    return _to_naive(parsed)


def _bad_date(s: pd.Series, mask: np.ndarray, source: str, detail: str, rule: str = "date-parse"
              ) -> DataError:
    i = int(np.flatnonzero(mask)[0])
    return DataError(rule, source=source, row=f"line {s.index[i]}",
                     detail=f"{s.iloc[i]!r}: {detail}")


def _offset_minutes(off: pd.Series) -> np.ndarray:
    """"Z", "+09:00", "-0530", "+09" -> signed minutes east of UTC."""
    o = off.str.replace(":", "", regex=False)
    z = (o == "Z").to_numpy()
    o = o.where(~z, "+0000").str.ljust(5, "0")
    sign = np.where(o.str[0] == "-", -1, 1)
    return sign * (o.str[1:3].astype(int).to_numpy() * 60 + o.str[3:5].astype(int).to_numpy())


def is_daily(dates: pd.DatetimeIndex) -> bool:
    """One bar per calendar day, every bar at the same time of day (e.g. all at midnight)."""
    if len(dates) == 0:
        return True
    tod = dates - dates.normalize()
    return bool((tod == tod[0]).all()) and not dates.normalize().duplicated().any()


def _to_utc(local: pd.DatetimeIndex, tz: str, s: pd.Series, source: str) -> pd.DatetimeIndex:
    """Naive wall-clock times in zone tz -> naive UTC; a time a DST change skips or repeats raises."""
    try:
        aware = local.tz_localize(tz, ambiguous="NaT", nonexistent="NaT")
    except (ValueError, KeyError, TypeError) as e:
        raise ValueError(f"tz={tz!r} is not a time zone name (e.g. 'UTC', 'EET', 'America/New_York', "
                         f"'Etc/GMT+5' for fixed EST): {e}") from e
    bad = np.asarray(aware.isna())
    if bad.any():
        raise _bad_date(s, bad, source, f"does not exist or occurs twice in tz={tz!r} (a daylight-saving "
                                        "change); pass a fixed-offset zone such as 'Etc/GMT-2'",
                        rule="timezone")
    return aware.tz_convert("UTC").tz_localize(None)


def parse_dates(raw: pd.Series, *, source: str, date_format: str | None = None,
                tz: str | None = None) -> pd.DatetimeIndex:
    """Parse a column of date strings; raw.index holds each value's file line (for messages).

    Args:
      raw: [T] date values (str or anything str() turns into one), index = file line numbers.
      source: file name for error messages.
      date_format: strptime format; when given it is the only format tried (a trailing %z, the UTC
        offset, is handled by the time-zone rules in this module's docstring).
      tz: the time zone of naive timestamps (see the module docstring); None: take them as they are.

    Returns:
      DatetimeIndex [T], naive, in file order (not yet checked for order or uniqueness).
    """
    s = raw.astype(str).str.strip()
    missing = raw.isna().to_numpy() | (s == "").to_numpy()
    if missing.any():
        raise _bad_date(s, missing, source, "missing date")
    parts = s.str.extract(_OFFSET)
    has_off = parts["off"].notna().to_numpy()
    if has_off.any() and not has_off.all():
        first = has_off[0]
        i = int(np.argmax(has_off != first))
        kind = lambda b: "has a UTC offset" if b else "has none"
        raise DataError("timezone", source=source, row=f"line {s.index[i]}",
                        detail=f"{s.iloc[i]!r} {kind(has_off[i])} but {s.iloc[0]!r} (line {s.index[0]}) "
                               f"{kind(first)}; give every timestamp an offset or none (then tz= names "
                               "their zone)")
    if not has_off.any():
        local = _parse_local(s, source, date_format)
        return local if tz is None or is_daily(local) else _to_utc(local, tz, s, source)
    if tz is not None:
        raise DataError("timezone", source=source, row=f"line {s.index[0]}",
                        detail=f"tz={tz!r} names the zone of timestamps without an offset, but {s.iloc[0]!r} "
                               "carries its own; drop tz=")
    fmt = None if date_format is None else date_format.replace("%z", "").rstrip()
    local = _parse_local(pd.Series(parts["local"].str.strip().to_numpy(), index=s.index), source, fmt)
    if is_daily(local):
        return local.normalize()              # the local calendar date: the trading day the bar belongs to
    return local - pd.to_timedelta(_offset_minutes(parts["off"]), unit="min")


def _parse_local(s: pd.Series, source: str, date_format: str | None) -> pd.DatetimeIndex:
    """Stripped date strings without UTC offsets -> naive DatetimeIndex [T]."""
    if date_format is not None:
        parsed = _to_naive(pd.to_datetime(s, format=date_format, errors="coerce"))
        bad = parsed.isna().to_numpy()
        if bad.any():
            raise _bad_date(s, bad, source, f"does not match date_format {date_format!r}")
        return pd.DatetimeIndex(parsed.to_numpy()).as_unit("ns")

    iso = s.str.match(_ISO).to_numpy()
    if iso.all():
        parsed = _parse_iso(s)
    else:
        parts = s.str.extract(_SLASH)
        slash = parts[0].notna().to_numpy()
        if not (iso | slash).all():
            raise _bad_date(s, ~(iso | slash), source,
                            "expected YYYY-MM-DD or M/D/YYYY; pass date_format= for other formats")
        if iso.any():
            raise _bad_date(s, iso, source, f"mixes ISO dates with slash dates such as {s[slash].iloc[0]!r}")
        parsed = _parse_slash(s, parts, source)
    bad = parsed.isna().to_numpy()
    if bad.any():
        raise _bad_date(s, bad, source, "not a valid calendar date")
    return pd.DatetimeIndex(parsed.to_numpy()).as_unit("ns")


def _parse_slash(s: pd.Series, parts: pd.DataFrame, source: str) -> pd.Series:
    """Slash dates: M/D/YYYY unless some first field is > 12 (then D/M/YYYY); ambiguity rejected."""
    a, b = parts[0].astype(int).to_numpy(), parts[1].astype(int).to_numpy()
    month_first_ok, day_first_ok = (a <= 12).all(), (b <= 12).all()
    if not month_first_ok and not day_first_ok:
        i, j = int(np.argmax(a > 12)), int(np.argmax(b > 12))
        raise DataError("date-parse", source=source, row=f"line {s.index[i]}",
                        detail=f"{s.iloc[i]!r} needs D/M order but {s.iloc[j]!r} (line {s.index[j]}) "
                               "needs M/D order; pass date_format=")
    if month_first_ok and day_first_ok and (a != b).any():
        i = int(np.argmax(a != b))
        raise DataError("ambiguous-date", source=source, row=f"line {s.index[i]}",
                        detail=f"{s.iloc[i]!r} reads as M/D/YYYY and as D/M/YYYY and no date in the file "
                               "settles it; pass date_format='%m/%d/%Y' or '%d/%m/%Y'")
    month, day = (a, b) if month_first_ok else (b, a)
    iso = (parts[2] + "-" + pd.Series(month, index=s.index).astype(str).str.zfill(2) + "-"
           + pd.Series(day, index=s.index).astype(str).str.zfill(2) + parts[3].fillna(""))
    return _parse_iso(iso)


def check_calendar(dates: pd.DatetimeIndex, *, source: str, lines=None) -> None:
    """Raise DataError unless dates are strictly increasing ("unique-dates", then "sorted-dates").

    lines: optional [T] file line numbers, named in the message next to the date.
    """
    if len(dates) < 2:
        return
    step = np.diff(dates.asi8)
    bad = np.flatnonzero(step <= 0)
    if bad.size:
        i = int(bad[0]) + 1
        where = format_date(dates[i]) + (f" (line {lines[i]})" if lines is not None else "")
        if step[i - 1] == 0:
            raise DataError("unique-dates", source=source, row=where,
                            detail=f"date repeats the previous row's {format_date(dates[i - 1])}")
        raise DataError("sorted-dates", source=source, row=where,
                        detail=f"comes after {format_date(dates[i - 1])}; dates must increase "
                               "(sort the file)")


_WEEK_NS = 7 * _DAY_NS
_YEAR_DAYS = 365.25
_WEEKS_PER_YEAR = _YEAR_DAYS / 7.0     # 52.18
_MONDAY_OFFSET_NS = 3 * _DAY_NS        # 1970-01-01 was a Thursday: + 3 days puts week starts on Monday 00:00


def _observed_per_week(dates: pd.DatetimeIndex) -> tuple[float, int, int] | None:
    """(mean bars per week, bars counted, weeks counted) over the complete calendar weeks (Monday
    00:00 .. Monday 00:00) between the first and the last date that hold at least one bar; None when
    there is no such week. Partial weeks at either end are left out (they would count a few days as a
    week); so are weeks without a single bar (a gap in the data, not a market that is closed for a
    week). Holidays inside a week count: they are days the market really did not trade."""
    ns = dates.as_unit("ns").asi8
    week = (ns + _MONDAY_OFFSET_NS) // _WEEK_NS
    start = week * _WEEK_NS - _MONDAY_OFFSET_NS
    complete = (start >= ns[0]) & (start + _WEEK_NS <= ns[-1])
    if not complete.any():
        return None
    n_weeks = len(np.unique(week[complete]))
    n_bars = int(complete.sum())
    return n_bars / n_weeks, n_bars, n_weeks


def _derive_periods_per_year(dates: pd.DatetimeIndex) -> tuple[float, str]:
    """(bars per year, one sentence saying how that figure was derived): see `infer_periods_per_year`."""
    if len(dates) < 2:
        return 252.0, "252 bars a year: fewer than two dates, so the daily US-equity convention"
    dates = pd.DatetimeIndex(dates).as_unit("ns")
    days = float(np.median(np.diff(dates.asi8))) / _DAY_NS
    weekends = float(np.mean(dates.day_of_week >= 5)) > 0.1
    weekly = _observed_per_week(dates)
    if days < 0.99:
        if weekly is not None:
            per_week, n_bars, n_weeks = weekly
            ppy = per_week * _WEEKS_PER_YEAR
            return ppy, (f"{ppy:,.1f} bars a year, observed: {n_bars:,} bars in {n_weeks:,} complete "
                         f"calendar weeks (Monday-Sunday) = {per_week:,.2f} a week x 365.25 / 7 weeks a year")
        per_day = float(pd.Series(dates.normalize()).value_counts().median())
        year = 365.0 if weekends else 252.0
        return year * per_day, (f"{year * per_day:,.0f} bars a year: less than one complete calendar week "
                                f"of intraday bars, so {year:g} trading days x {per_day:g} bars a day "
                                "(the median)")
    if days <= 4.0:
        note = "" if weekly is None else (f" ({weekly[0] * _WEEKS_PER_YEAR:,.1f} a year observed: "
                                          f"{weekly[1]:,} bars in {weekly[2]:,} complete calendar weeks)")
        if weekends:
            return 365.0, ("365 bars a year: daily bars with weekends (over 10% on Saturday or Sunday), the "
                           f"7-day convention{note}")
        return 252.0, f"252 bars a year: daily bars on weekdays, the 252-trading-day convention{note}"
    for upper, per_year, name in ((8.0, 52.0, "weekly"), (35.0, 12.0, "monthly"), (100.0, 4.0, "quarterly")):
        if days <= upper:
            return per_year, f"{per_year:g} bars a year: {name} bars (median spacing {days:.1f} days)"
    return 365.25 / days, f"{365.25 / days:,.2f} bars a year: 365.25 days / the median spacing ({days:.1f})"


def infer_periods_per_year(dates: pd.DatetimeIndex) -> float:
    """Bars per year from the data's own calendar (used to annualize Sharpe, volatility, ...).

    - Intraday (median spacing < 1 day): the bars actually observed per year, measured over the
      complete calendar weeks between the first and the last bar (Monday 00:00 to Monday 00:00 of the
      naive, i.e. UTC, timestamps): the mean bars per week x 365.25 / 7. Partial first and last weeks
      and weeks without any bar (data gaps) are left out; holidays inside a week count. The bundled
      hourly EUR/USD of 2017 (24-hour weekday bars) gives 6,119 bars in 51 weeks = 119.98 a week =
      6,260.4 bars a year (252 x 24 = 6,048 understated its Sharpe ratio by 1.7%); hourly bars of a
      24/7 market give 8,766; a regular-session US-equity day of 390 one-minute bars, 390 x ~252.
      With less than one complete week the rate cannot be observed: then 252 (365 when weekends hold
      over 10% of the bars) x the median bars per calendar day.
    - Daily (median spacing 1 to 4 days): the convention, 252 (US trading days), or 365 when weekends
      hold more than 10% of the bars (crypto), so Sharpe ratios compare with published ones. The
      observed counts agree: the bundled daily US datasets hold 251.6 .. 252.0 bars a year (a Sharpe
      factor of at most sqrt(252 / 251.6) = 1.0008). Daily FX without holidays (~260 weekdays a
      year) is where the convention is 1.6% off in Sharpe: pass periods_per_year to override.
    - Weekly 52, monthly 12, quarterly 4, else 365.25 / the median spacing in days.

    `describe_periods_per_year` states the same derivation in one sentence for reports.
    """
    return _derive_periods_per_year(dates)[0]


def describe_periods_per_year(dates: pd.DatetimeIndex, periods_per_year: float | None = None) -> str:
    """One sentence: how the bars-per-year figure of `dates` was derived (for reports and notes).

    periods_per_year: the figure in use (e.g. `MarketData.periods_per_year`); when it is not the one
    inferred from `dates`, the sentence says it was given and names the inferred one beside it.
    E.g. "6,260.4 bars a year, observed: 6,119 bars in 51 complete calendar weeks (Monday-Sunday) =
    119.98 a week x 365.25 / 7 weeks a year".
    """
    ppy, basis = _derive_periods_per_year(dates)
    if periods_per_year is None or np.isclose(float(periods_per_year), ppy, rtol=1e-9, atol=0.0):
        return basis
    return f"{float(periods_per_year):,.1f} bars a year, given (not inferred); the dates alone: {basis}"


ROLLOVER_ZONE = "America/New_York"   # the FX day ends at 17:00 New York time (21:00 or 22:00 UTC)
ROLLOVER_HOUR = 17


def rollover_days(dates: pd.DatetimeIndex) -> np.ndarray:
    """[T] int32 FX value-day index of each row: rows t and t+1 are out[t+1] - out[t] rollovers apart.

    Intraday rows (naive UTC timestamps, as the loaders give them): the count of 17:00 New York
    rollovers (`ROLLOVER_ZONE`, daylight-saving aware: 22:00 UTC in winter, 21:00 UTC in US summer
    time) since 1970, i.e. the date of (New York wall time + 7 hours). A rollover at 17:00 belongs to
    the interval that ends at or after it: a position held from 16:00 to 18:00 New York time, or to a
    bar stamped 17:00, crosses one; from 23:00 to 01:00 UTC, none. The timestamp is taken as the moment
    of the row's close (the env trades and marks at close[t]); data stamped by bar OPEN time (the bundled
    EUR/USD, Alpaca) book each rollover one bar later than it happens, the total unchanged.
    Weekends: Friday 16:00 New York to the Sunday 17:00 open crosses three (Friday, Saturday, Sunday),
    the weekend's nights, which brokers book as a triple swap on Wednesday (the same total, days apart).

    Daily rows (`is_daily`): the calendar day (days since 1970-01-01): a daily bar is one trading day,
    closed by that day's rollover, so consecutive days are one night apart and Friday to Monday three.
    """
    dates = pd.DatetimeIndex(dates).as_unit("ns")
    if not is_daily(dates):
        local = dates.tz_localize("UTC").tz_convert(ROLLOVER_ZONE).tz_localize(None)
        dates = local + pd.Timedelta(hours=24 - ROLLOVER_HOUR)     # 17:00 New York -> 00:00 of the next day
    return np.asarray(dates.values, "datetime64[D]").astype(np.int32)

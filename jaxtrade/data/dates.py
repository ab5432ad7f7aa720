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


def infer_periods_per_year(dates: pd.DatetimeIndex) -> float:
    """Bars per year from the bar spacing (used to annualize Sharpe, volatility, ...).

    Median spacing < 1 day (intraday): 252 x the median number of bars per calendar day, so a
    6.5-hour equity session of 1-minute bars gives 252 x 390. Daily bars: 252, or 365 when weekends
    hold more than 10% of the bars (crypto). Weekly 52, monthly 12, quarterly 4, else 365.25 / days.
    """
    if len(dates) < 2:
        return 252.0
    days = float(np.median(np.diff(dates.as_unit("ns").asi8))) / _DAY_NS
    if days < 0.99:
        per_day = float(pd.Series(dates.normalize()).value_counts().median())
        return 252.0 * per_day
    if days <= 4.0:
        weekend = float(np.mean(dates.day_of_week >= 5))
        return 365.0 if weekend > 0.1 else 252.0
    for upper, per_year in ((8.0, 52.0), (35.0, 12.0), (100.0, 4.0)):
        if days <= upper:
            return per_year
    return 365.25 / days

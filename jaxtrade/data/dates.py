"""Date parsing and calendar checks: ISO and M/D/YYYY (or D/M/YYYY) dates, ambiguity rejected.

Rules (rule names as they appear in `DataError`):
- "date-parse": a value is not a date in a recognised format (YYYY-MM-DD[ time], M/D/YYYY[ time],
  D/M/YYYY[ time], or `date_format`), or the file mixes formats.
- "ambiguous-date": slash dates where every value reads as both M/D and D/M (no field > 12) and
  at least one value reads differently each way. Pass `date_format` (e.g. "%m/%d/%Y") to settle it.
- "unique-dates", "sorted-dates": the calendar must be strictly increasing.

Timestamps keep their time of day (intraday bars). Timezone-aware values are converted to UTC and
made naive, so one file never mixes offsets.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from jaxtrade.data.errors import DataError

_ISO = r"^\d{4}-\d{1,2}-\d{1,2}(?:[ T].*)?$"
_SLASH = r"^(\d{1,2})[/.](\d{1,2})[/.](\d{4})(.*)$"
_DAY_NS = 86_400 * 10**9


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


def _bad_date(s: pd.Series, mask: np.ndarray, source: str, detail: str) -> DataError:
    i = int(np.flatnonzero(mask)[0])
    return DataError("date-parse", source=source, row=f"line {s.index[i]}",
                     detail=f"{s.iloc[i]!r}: {detail}")


def parse_dates(raw: pd.Series, *, source: str, date_format: str | None = None) -> pd.DatetimeIndex:
    """Parse a column of date strings; raw.index holds each value's file line (for messages).

    Args:
      raw: [T] date values (str or anything str() turns into one), index = file line numbers.
      source: file name for error messages.
      date_format: strptime format; when given it is the only format tried.

    Returns:
      DatetimeIndex [T], naive, in file order (not yet checked for order or uniqueness).
    """
    s = raw.astype(str).str.strip()
    missing = raw.isna().to_numpy() | (s == "").to_numpy()
    if missing.any():
        raise _bad_date(s, missing, source, "missing date")
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

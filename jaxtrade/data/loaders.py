"""`load_csv`: a user's CSV (wide, long or one symbol's OHLCV) -> validated `MarketData`."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import pandas as pd

from jaxtrade.data.dates import check_calendar, format_date, parse_dates
from jaxtrade.data.errors import DataError
from jaxtrade.data.market import MarketData, build
from jaxtrade.data.validate import FIELDS, Panel

_DATE_NAMES = ("date", "datetime", "timestamp", "time")
_SYMBOL_NAMES = ("symbol", "ticker")
_IGNORED = ("adj close", "adj_close", "adjclose", "adjusted close")


def _key(col) -> str:
    return str(col).strip().lower()


def _numeric(raw: pd.Series, *, source: str, symbol, dates, lines) -> np.ndarray:
    """A column as float64 [T]; a value that is present but not a number raises "numeric".

    symbol: the column's symbol, or [T] the symbol of each row (long files).
    """
    if pd.api.types.is_numeric_dtype(raw.dtype):
        return raw.to_numpy(dtype=np.float64)
    x = pd.to_numeric(raw.astype(str).str.strip().replace("", np.nan), errors="coerce")
    bad = (x.isna() & raw.notna() & (raw.astype(str).str.strip() != "")).to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        raise DataError("numeric", source=source, symbol=symbol if isinstance(symbol, str) else symbol[i],
                        row=f"{dates[i]} (line {lines[i]})" if dates is not None else f"line {lines[i]}",
                        detail=f"{raw.iloc[i]!r} in column {raw.name!r} is not a number")
    return x.to_numpy(dtype=np.float64)


def _find_date_column(columns, date_column: str | None, source: str) -> str:
    if date_column is not None:
        if date_column not in columns:
            raise DataError("required-columns", source=source,
                            detail=f"date_column {date_column!r} not in columns {list(columns)}")
        return date_column
    for c in columns:
        if _key(c) in _DATE_NAMES:
            return c
    return columns[0]                   # a wide file's first column is its date column by convention


def _detect_format(columns, date_col: str) -> str:
    keys = {_key(c) for c in columns if c != date_col}
    if keys & set(_SYMBOL_NAMES):
        return "long"
    if "close" in keys and keys & {"open", "high", "low", "volume"}:
        return "ohlcv"
    return "wide"


def _field_columns(columns, source: str, *, required: Sequence[str]) -> dict[str, str]:
    """{field: column name} for open/high/low/close/volume present (case-insensitive)."""
    found = {_key(c): c for c in columns}
    out = {f: found[f] for f in FIELDS if f in found}
    missing = [f for f in required if f not in out]
    ohlc = [f for f in ("open", "high", "low") if f in out]
    if ohlc and len(ohlc) < 3:
        missing += [f for f in ("open", "high", "low") if f not in out]
    if missing:
        raise DataError("required-columns", source=source,
                        detail=f"missing column(s) {missing}; found {list(columns)}")
    return out


def load_csv(path, *, format: str = "auto", date_column: str | None = None, date_format: str | None = None,
             symbol: str | None = None, symbols: Sequence[str] | None = None,
             benchmark_column: str | None = None, max_gap: int = 5, leading: str = "drop",
             periods_per_year: float | None = None, na_values: Sequence[str] = (".",)) -> MarketData:
    """Load and validate a CSV (optionally .gz) into MarketData; raises DataError, never returns partial data.

    Formats (format="auto" picks by the header):
      "wide": a date column and one close column per symbol (close-only data).
      "long": columns date, symbol (or ticker), close and optionally open, high, low (all three or
        none), volume; one row per (date, symbol), rows in any order; symbols align on the union of dates.
      "ohlcv": one symbol's date, open, high, low, close and optionally volume ("Adj Close" is ignored:
        mixing it with unadjusted high/low would break the OHLC rules).
    Column names match case-insensitively.

    Args:
      path: the file.
      date_column: the date column (default: the one named date/datetime/timestamp/time, else the first).
      date_format: strptime format for the dates, e.g. "%d/%m/%Y"; default: ISO (YYYY-MM-DD[ time]) or
        M/D/YYYY, D/M/YYYY when the file settles the order; ambiguous slash dates raise.
      symbol: the symbol name of an "ohlcv" file (default: the file name without extensions).
      symbols: keep only these symbols (wide/long), in this order.
      benchmark_column: a wide file's column to keep as `benchmark` instead of as a symbol.
      max_gap, leading: the fill policy, see `jaxtrade.data.validate`.
      periods_per_year: override the value inferred from the bar spacing.
      na_values: strings read as missing, besides pandas' defaults ("", "NA", "NaN", "null", ...);
        "." is FRED's marker for market holidays.

    Returns:
      MarketData with close [T, N] (and open/high/low/volume where the file has them).
    """
    source = os.fspath(path)
    name = os.path.basename(source)
    try:
        header = pd.read_csv(path, nrows=0).columns
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise DataError("readable-csv", source=source, detail=str(e)) from e
    date_col = _find_date_column(header, date_column, source)
    fmt = _detect_format(header, date_col) if format == "auto" else format
    if fmt not in ("wide", "long", "ohlcv"):
        raise ValueError(f"format must be 'auto', 'wide', 'long' or 'ohlcv', got {format!r}")
    try:
        df = pd.read_csv(path, dtype={date_col: str}, skipinitialspace=True, na_values=list(na_values))
    except (pd.errors.ParserError, UnicodeDecodeError) as e:
        raise DataError("readable-csv", source=source, detail=str(e)) from e
    df.index = np.arange(len(df)) + 2             # file line numbers (line 1 is the header)
    if len(df) == 0:
        raise DataError("min-rows", source=source, detail="the file has no data rows")
    dates = parse_dates(df[date_col], source=source, date_format=date_format)
    build_kw = dict(source=source, max_gap=max_gap, leading=leading, periods_per_year=periods_per_year)
    if fmt == "long":
        return _load_long(df, dates, date_col, symbols, source, build_kw)
    lines = df.index.to_numpy()
    check_calendar(dates, source=source, lines=lines)
    dstr = dates.strftime("%Y-%m-%d %H:%M:%S").str.replace(" 00:00:00", "")
    num = lambda col, sym: _numeric(df[col], source=source, symbol=sym, dates=dstr, lines=lines)
    if fmt == "ohlcv":
        cols = _field_columns([c for c in df.columns if c != date_col], source, required=("open", "high",
                                                                                           "low", "close"))
        sym = symbol or name.split(".")[0]
        fields = {f: num(c, sym)[:, None] for f, c in cols.items()}
        panel = Panel(dates, (sym,), fields, np.broadcast_to(lines[:, None], (len(lines), 1)))
        return build(panel, **build_kw)
    # wide
    cols = [c for c in df.columns if c != date_col and c != benchmark_column and _key(c) not in _IGNORED]
    if benchmark_column is not None and benchmark_column not in df.columns:
        raise DataError("required-columns", source=source, symbol=benchmark_column,
                        detail=f"benchmark_column not in columns {list(df.columns)}")
    if symbols is not None:
        absent = [s for s in symbols if s not in cols]
        if absent:
            raise DataError("required-columns", source=source, symbol=absent[0],
                            detail=f"requested symbols {absent} not in columns {cols}")
        cols = list(symbols)
    if not cols:
        raise DataError("required-columns", source=source, detail="no price columns besides the date")
    close = np.stack([num(c, str(c).strip()) for c in cols], axis=1)
    panel = Panel(dates, tuple(str(c).strip() for c in cols), {"close": close},
                  np.broadcast_to(lines[:, None], close.shape))
    bench = None if benchmark_column is None else num(benchmark_column, benchmark_column)
    return build(panel, benchmark=bench, benchmark_name=benchmark_column, benchmark_lines=lines, **build_kw)


def _load_long(df: pd.DataFrame, dates: pd.DatetimeIndex, date_col: str, symbols, source: str,
               build_kw: dict) -> MarketData:
    """One row per (date, symbol) -> [T, N] panel on the union of dates (absent cells = missing bars)."""
    sym_col = next(c for c in df.columns if _key(c) in _SYMBOL_NAMES)
    cols = _field_columns([c for c in df.columns if c not in (date_col, sym_col)], source,
                          required=("close",))
    sym = df[sym_col].astype(str).str.strip()
    bad_sym = (df[sym_col].isna() | (sym == "")).to_numpy()
    if bad_sym.any():
        i = int(np.flatnonzero(bad_sym)[0])
        raise DataError("required-columns", source=source, row=f"line {df.index[i]}", detail="missing symbol")
    lines = df.index.to_numpy()
    dup = pd.DataFrame({"d": dates, "s": sym.to_numpy()}).duplicated().to_numpy()
    if dup.any():
        i = int(np.flatnonzero(dup)[0])
        raise DataError("unique-dates", source=source, symbol=sym.iloc[i],
                        row=f"{format_date(dates[i])} (line {lines[i]})",
                        detail="a second row for this date and symbol")
    order = list(pd.unique(sym)) if symbols is None else list(symbols)
    absent = [s for s in order if s not in set(sym)]
    if absent:
        raise DataError("required-columns", source=source, symbol=absent[0],
                        detail=f"requested symbols {absent} not in the file")
    dstr = dates.strftime("%Y-%m-%d %H:%M:%S").str.replace(" 00:00:00", "")
    values = {f: _numeric(df[c], source=source, symbol=sym.to_numpy(), dates=dstr, lines=lines)
              for f, c in cols.items()}
    long = pd.DataFrame({"date": dates, "symbol": sym.to_numpy(), "line": lines, **values})
    long = long[long["symbol"].isin(order)]
    wide = long.pivot(index="date", columns="symbol").sort_index()
    calendar = pd.DatetimeIndex(wide.index)
    pick = lambda f: wide[f].reindex(columns=order).to_numpy(dtype=np.float64)
    fields = {f: pick(f) for f in values}
    line_grid = np.nan_to_num(pick("line")).astype(int)
    return build(Panel(calendar, tuple(order), fields, line_grid), **build_kw)

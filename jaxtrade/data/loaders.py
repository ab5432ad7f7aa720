"""`load_csv`: a user's CSV (wide, long, one symbol's OHLCV, MetaTrader 5 or HistData bars) -> validated
`MarketData`."""

from __future__ import annotations

import gzip
import logging
import os
import re
from collections.abc import Sequence

import numpy as np
import pandas as pd

from jaxtrade.data.dates import check_calendar, format_date, is_daily, parse_dates
from jaxtrade.data.errors import DataError
from jaxtrade.data.market import MarketData, build
from jaxtrade.data.validate import FIELDS, Panel

_DATE_NAMES = ("date", "datetime", "timestamp", "time")
_SYMBOL_NAMES = ("symbol", "ticker")
_IGNORED = ("adj close", "adj_close", "adjclose", "adjusted close")
# Columns that are never a symbol's close in a wide file (volumes, open interest, other bar fields).
_NON_PRICE = ("volume", "vol", "tickvol", "tick volume", "open interest", "open_interest", "openinterest",
              "oi", "spread", "trades", "number of trades", "count", "turnover", "amount", "open", "high",
              "low", "adj volume", "adj_volume")
_HISTDATA = re.compile(r"^\d{8} \d{6};")
log = logging.getLogger(__name__)


def _key(col) -> str:
    return str(col).strip().lower()


def _numeric(raw: pd.Series, *, source: str, symbol, dates, lines, decimal: str = ".",
             thousands: str | None = None) -> np.ndarray:
    """A column as float64 [T]; a value that is present but not a number raises "numeric".

    symbol: the column's symbol, or [T] the symbol of each row (long files). decimal, thousands: the
    file's decimal mark and thousands separator (as in `load_csv`).
    """
    if pd.api.types.is_numeric_dtype(raw.dtype):
        return raw.to_numpy(dtype=np.float64)
    text = raw.astype(str).str.strip()
    if thousands:
        text = text.str.replace(thousands, "", regex=False)
    if decimal != ".":
        text = text.str.replace(decimal, ".", regex=False)
    x = pd.to_numeric(text.replace("", np.nan), errors="coerce")
    bad = (x.isna() & raw.notna() & (raw.astype(str).str.strip() != "")).to_numpy()
    if bad.any():
        i = int(np.flatnonzero(bad)[0])
        value = str(raw.iloc[i]).strip()
        hint = ""
        if re.fullmatch(r"[-+]?[\d.,' ]*\d[.,' ]\d[\d.,' ]*", value):
            hint = (f"; with decimal={decimal!r} and thousands={thousands!r} it is not a number: a decimal "
                    "comma needs decimal=',' (1.234,5 also thousands='.'), 1,234.5 needs thousands=','")
        raise DataError("numeric", source=source, symbol=symbol if isinstance(symbol, str) else symbol[i],
                        row=f"{dates[i]} (line {lines[i]})" if dates is not None else f"line {lines[i]}",
                        detail=f"{raw.iloc[i]!r} in column {raw.name!r} is not a number{hint}")
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
    if (keys & {"close", *_IGNORED}) and keys & {"open", "high", "low", "volume"}:
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


def _sniff(path) -> tuple[str, str | None, str | None]:
    """(first line of the file, encoding, compression): gzip by its magic bytes, UTF-16 by its BOM
    (MetaTrader writes UTF-16)."""
    with open(path, "rb") as fh:
        magic = fh.read(2)
    compression = "gzip" if magic == b"\x1f\x8b" else None
    with (gzip.open(path, "rb") if compression else open(path, "rb")) as fh:
        head = fh.read(4096)
    encoding = "utf-16" if head[:2] in (b"\xff\xfe", b"\xfe\xff") else None
    text = head.decode(encoding or "utf-8", errors="replace").lstrip("\ufeff")
    return text.splitlines()[0] if text else "", encoding, compression


def _check_header(first: str, sep: str, source: str) -> None:
    """Refuse a file whose header shows another separator than `sep` (it would load as one column)."""
    if sep != "," or "," in first:
        return
    for other, name in ((";", "';'"), ("\t", "'\\t'"), ("|", "'|'")):
        if other in first:
            raise DataError("readable-csv", source=source, row="line 1",
                            detail=f"the header {first[:60]!r} is separated by {name}, not ','; pass "
                                   f"sep={name} (and decimal=',' / thousands='.' if numbers are written "
                                   "1.234,5)")


def _check_columns(path, source: str, read_kw: dict) -> None:
    """Refuse duplicate column names (pandas would rename the second AAPL to AAPL.1)."""
    raw = pd.read_csv(path, header=None, nrows=1, dtype=str, **read_kw).iloc[0]
    names = [str(c).strip() for c in raw]
    seen = set()
    for name in names:
        if name in seen:
            raise DataError("unique-columns", source=source, symbol=name, row="line 1",
                            detail=f"column {name!r} appears twice in the header {names}")
        seen.add(name)


def _read(path, source: str, read_kw: dict, **kw) -> pd.DataFrame:
    try:
        df = pd.read_csv(path, skipinitialspace=True, **read_kw, **kw)
    except (pd.errors.ParserError, UnicodeDecodeError, ValueError) as e:
        raise DataError("readable-csv", source=source, detail=str(e)) from e
    if not isinstance(df.index, pd.RangeIndex):
        # More fields in every row than in the header: pandas would silently make the first ones an index.
        raise DataError("readable-csv", source=source, row="line 2",
                        detail=f"rows have more fields than the header {list(df.columns)}; a file writing "
                               "numbers with a decimal comma (1,05) needs decimal=',' and another separator "
                               "(sep=';')")
    return df


def load_csv(path, *, format: str = "auto", date_column: str | None = None, date_format: str | None = None,
             tz: str | None = None, sep: str = ",", decimal: str = ".", thousands: str | None = None,
             symbol: str | None = None, symbols: Sequence[str] | None = None,
             benchmark_column: str | None = None, max_gap: int = 5, leading: str = "drop",
             periods_per_year: float | None = None, na_values: Sequence[str] = (".",)) -> MarketData:
    """Load and validate a CSV (optionally .gz) into MarketData; raises DataError, never returns partial data.

    Formats (format="auto" picks by the header):
      "wide": a date column and one close column per symbol (close-only data). A column that is not a
        price (Volume, Open Interest, Open, ...) is refused: name the price columns with `symbols=`.
      "long": columns date, symbol (or ticker), close and optionally open, high, low (all three or
        none), volume; one row per (date, symbol), rows in any order; symbols align on the union of dates.
      "ohlcv": one symbol's date, open, high, low, close and optionally volume ("Adj Close" is ignored
        next to a Close: mixing it with unadjusted high/low would break the OHLC rules). A file with
        "Adj Close" but no "Close" uses Adj Close as the close and drops open/high/low (they are not on
        the adjusted scale); the log says so.
      "mt5": MetaTrader 5 "Export Bars": tab-separated <DATE> [<TIME>] <OPEN> <HIGH> <LOW> <CLOSE>
        <TICKVOL> <VOL> <SPREAD>, dates YYYY.MM.DD, times HH:MM:SS in the broker's server time:
        intraday files need `tz=` (most brokers: "EET"; "UTC" keeps the times as they are). <VOL>
        is the volume when it is not all zero (FX: it is), else there is none; <TICKVOL> (a count
        of price changes) and <SPREAD> are not used. UTF-16 files (as MetaTrader writes them) are read.
      "histdata": HistData.com generic ASCII bars `YYYYMMDD HHMMSS;open;high;low;close;volume`, no
        header, in EST without daylight saving (tz default "Etc/GMT+5"), loaded as naive UTC;
        volume (always 0 there) is dropped. The symbol defaults to the XXXYYY in DAT_ASCII_XXXYYY_M1_...
    Column names match case-insensitively. Duplicate column names are refused ("unique-columns").

    Args:
      path: the file.
      date_column: the date column (default: the one named date/datetime/timestamp/time, else the first).
      date_format: strptime format for the dates, e.g. "%d/%m/%Y"; default: ISO (YYYY-MM-DD[ time]) or
        M/D/YYYY, D/M/YYYY when the file settles the order; ambiguous slash dates raise.
      tz: time zone of naive timestamps, e.g. "EET"; intraday times are converted to naive UTC, daily
        dates are kept (see `jaxtrade.data.dates`). Timestamps with UTC offsets need none.
      sep, decimal, thousands: as in pandas.read_csv: the field separator, the decimal mark and the
        thousands separator (e.g. sep=";", decimal=",", thousands="." for "1.234,5"). A header
        separated by something other than `sep`, or numbers written with another decimal mark, raise
        DataError naming these options.
      symbol: the symbol name of an "ohlcv"/"mt5"/"histdata" file (default: from the file name).
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
    if format not in ("auto", "wide", "long", "ohlcv", "mt5", "histdata"):
        raise ValueError("format must be 'auto', 'wide', 'long', 'ohlcv', 'mt5' or 'histdata', "
                         f"got {format!r}")
    try:
        first, encoding, compression = _sniff(path)
    except OSError as e:
        raise DataError("readable-csv", source=source, detail=str(e)) from e
    fmt = format
    if fmt == "auto" and first.lstrip().upper().startswith("<DATE>"):
        fmt = "mt5"
    elif fmt == "auto" and _HISTDATA.match(first):
        fmt = "histdata"
    build_kw = dict(source=source, max_gap=max_gap, leading=leading, periods_per_year=periods_per_year)
    num_kw = dict(decimal=decimal, thousands=thousands)
    if fmt == "mt5":
        return _load_mt5(path, source, name, symbol, tz, encoding, compression, build_kw, num_kw)
    if fmt == "histdata":
        return _load_histdata(path, source, name, symbol, tz, encoding, compression, build_kw, num_kw)
    _check_header(first, sep, source)
    read_kw = dict(sep=sep, decimal=decimal, thousands=thousands, encoding=encoding, compression=compression)
    try:
        header = pd.read_csv(path, nrows=0, **read_kw).columns
        _check_columns(path, source, read_kw)
    except (OSError, pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError) as e:
        raise DataError("readable-csv", source=source, detail=str(e)) from e
    date_col = _find_date_column(header, date_column, source)
    fmt = _detect_format(header, date_col) if fmt == "auto" else fmt
    df = _read(path, source, read_kw, dtype={date_col: str}, na_values=list(na_values))
    df.index = np.arange(len(df)) + 2             # file line numbers (line 1 is the header)
    if len(df) == 0:
        raise DataError("min-rows", source=source, detail="the file has no data rows")
    dates = parse_dates(df[date_col], source=source, date_format=date_format, tz=tz)
    if fmt == "long":
        return _load_long(df, dates, date_col, symbols, source, build_kw, num_kw)
    lines = df.index.to_numpy()
    check_calendar(dates, source=source, lines=lines)
    dstr = dates.strftime("%Y-%m-%d %H:%M:%S").str.replace(" 00:00:00", "")
    num = lambda col, sym: _numeric(df[col], source=source, symbol=sym, dates=dstr, lines=lines, **num_kw)
    if fmt == "ohlcv":
        columns = [c for c in df.columns if c != date_col]
        adj = next((c for c in columns if _key(c) in _IGNORED), None)
        if adj is not None and not any(_key(c) == "close" for c in columns):
            log.warning("%s has %r but no Close column: using %r as the close; open/high/low dropped (they "
                        "are not on the adjusted scale)", source, adj, adj)
            columns = [c for c in columns if _key(c) not in ("open", "high", "low")]
            df = df.rename(columns={adj: "Close"})
            columns = ["Close" if c == adj else c for c in columns]
        cols = _field_columns(columns, source, required=("close",) if adj is not None else
                              ("open", "high", "low", "close"))
        return _ohlcv_market(cols, num, symbol or name.split(".")[0], dates, lines, build_kw)
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
    for c in cols:
        if _key(c) in _NON_PRICE:
            raise DataError("price-columns", source=source, symbol=str(c).strip(),
                            detail=f"column {str(c).strip()!r} is not a price, but a wide file holds one "
                                   "close column per symbol; pass symbols= to name the price columns (one "
                                   "symbol's OHLCV needs a Close column: format='ohlcv')")
    close = np.stack([num(c, str(c).strip()) for c in cols], axis=1)
    panel = Panel(dates, tuple(str(c).strip() for c in cols), {"close": close},
                  np.broadcast_to(lines[:, None], close.shape))
    bench = None if benchmark_column is None else num(benchmark_column, benchmark_column)
    return build(panel, benchmark=bench, benchmark_name=benchmark_column, benchmark_lines=lines, **build_kw)


def _ohlcv_market(cols: dict[str, str], num, sym: str, dates, lines, build_kw: dict) -> MarketData:
    """One symbol's {field: column} -> validated MarketData."""
    fields = {f: num(c, sym)[:, None] for f, c in cols.items()}
    panel = Panel(dates, (sym,), fields, np.broadcast_to(lines[:, None], (len(lines), 1)))
    return build(panel, **build_kw)


def _load_mt5(path, source, name, symbol, tz, encoding, compression, build_kw, num_kw) -> MarketData:
    """MetaTrader 5 "Export Bars" (see `load_csv`)."""
    df = _read(path, source, dict(sep="\t", encoding=encoding, compression=compression), dtype=str)
    df.columns = [str(c).strip().strip("<>").lower() for c in df.columns]
    missing = [c for c in ("date", "open", "high", "low", "close") if c not in df.columns]
    if missing:
        raise DataError("required-columns", source=source,
                        detail=f"a MetaTrader 5 export needs <DATE> <OPEN> <HIGH> <LOW> <CLOSE>; missing "
                               f"{missing}, found {list(df.columns)}")
    df.index = np.arange(len(df)) + 2
    if len(df) == 0:
        raise DataError("min-rows", source=source, detail="the file has no data rows")
    has_time = "time" in df.columns
    stamp = df["date"].str.strip() + (" " + df["time"].str.strip() if has_time else "")
    dates = parse_dates(stamp, source=source, date_format="%Y.%m.%d %H:%M:%S" if has_time else "%Y.%m.%d")
    if tz is None and not is_daily(dates):
        raise DataError("timezone", source=source, row="line 2",
                        detail="MetaTrader 5 bars are stamped in the broker's server time; pass tz= (most "
                               "brokers: tz='EET', UTC+2/+3; tz='UTC' keeps the times as they are)")
    if tz is not None:
        dates = parse_dates(pd.Series(dates.strftime("%Y-%m-%d %H:%M:%S"), index=df.index), source=source,
                            tz=tz)
    lines = df.index.to_numpy()
    check_calendar(dates, source=source, lines=lines)
    dstr = dates.strftime("%Y-%m-%d %H:%M:%S").str.replace(" 00:00:00", "")
    num = lambda col, sym: _numeric(df[col], source=source, symbol=sym, dates=dstr, lines=lines, **num_kw)
    cols = {f: f for f in ("open", "high", "low", "close")}
    sym = symbol or name.split(".")[0]
    if "vol" in df.columns:
        vol = num("vol", sym)
        if np.nansum(vol) > 0:
            cols["volume"] = "vol"
        else:
            log.info("%s: <VOL> is all zero (FX); no volume (<TICKVOL> counts price changes, not volume)",
                     source)
    return _ohlcv_market(cols, num, sym, dates, lines, build_kw)


def _load_histdata(path, source, name, symbol, tz, encoding, compression, build_kw, num_kw) -> MarketData:
    """HistData.com generic ASCII bars (see `load_csv`)."""
    df = _read(path, source, dict(sep=";", encoding=encoding, compression=compression), header=None,
               dtype=str)
    if df.shape[1] != 6:
        raise DataError("required-columns", source=source, row="line 1",
                        detail="a HistData bar file has 6 fields (YYYYMMDD HHMMSS;open;high;low;close;"
                               f"volume), found {df.shape[1]}")
    df.columns = ["date", "open", "high", "low", "close", "volume"]
    df.index = np.arange(len(df)) + 1             # no header: line 1 is the first bar
    dates = parse_dates(df["date"], source=source, date_format="%Y%m%d %H%M%S", tz=tz or "Etc/GMT+5")
    lines = df.index.to_numpy()
    check_calendar(dates, source=source, lines=lines)
    dstr = dates.strftime("%Y-%m-%d %H:%M:%S").str.replace(" 00:00:00", "")
    num = lambda col, sym: _numeric(df[col], source=source, symbol=sym, dates=dstr, lines=lines, **num_kw)
    m = re.match(r"DAT_[A-Z]+_([A-Z0-9]+)_", name)
    sym = symbol or (m.group(1) if m else name.split(".")[0])
    return _ohlcv_market({f: f for f in ("open", "high", "low", "close")}, num, sym, dates, lines, build_kw)


def _load_long(df: pd.DataFrame, dates: pd.DatetimeIndex, date_col: str, symbols, source: str,
               build_kw: dict, num_kw: dict) -> MarketData:
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
    values = {f: _numeric(df[c], source=source, symbol=sym.to_numpy(), dates=dstr, lines=lines, **num_kw)
              for f, c in cols.items()}
    long = pd.DataFrame({"date": dates, "symbol": sym.to_numpy(), "line": lines, **values})
    long = long[long["symbol"].isin(order)]
    wide = long.pivot(index="date", columns="symbol").sort_index()
    calendar = pd.DatetimeIndex(wide.index)
    pick = lambda f: wide[f].reindex(columns=order).to_numpy(dtype=np.float64)
    fields = {f: pick(f) for f in values}
    line_grid = np.nan_to_num(pick("line")).astype(int)
    return build(Panel(calendar, tuple(order), fields, line_grid), **build_kw)

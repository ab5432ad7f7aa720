"""Validation and the fill policy, applied once at load to a [T, N] price panel.

Fill policy (in this order, per symbol):
0. Rows where every symbol's bar is missing are dropped: a non-trading day (e.g. FRED-style files list
   market holidays with "." as the value). Nothing is invented for them.
1. A *missing bar* is a row where the symbol's close is missing (NaN or absent from a long file).
   A bar with some of open/high/low/close/volume present and others missing is rejected
   ("incomplete-bar"): half a bar cannot be repaired honestly.
2. Leading rows: rows before the last symbol's first price are dropped (`leading="drop"`, the
   default) so every symbol has a real price on the first row; `leading="reject"` raises
   "leading-missing" instead. Nothing is ever back-filled: that copies future prices into the past.
3. Gaps: up to `max_gap` consecutive missing bars are forward-filled as a flat bar at the previous
   close (open = high = low = close = previous close, volume = 0: nothing traded). A longer run of
   missing bars raises "max-gap" naming the first missing row. Trailing missing rows count as a gap.

Rules checked on the values present (each raises `DataError` naming file, symbol, row, rule):
"numeric" (not a number; checked by the loaders), "finite" (inf), "positive-price" (price <= 0),
"non-negative-volume", "incomplete-bar", "ohlc-consistency" (high >= max(open, close) and
min(open, close) >= low, with a relative slack of 1e-9 for float round-off), "leading-missing",
"max-gap", "min-rows".

The one named exception: `close_outside_range="adjusted_close"` says the file's Close is a dividend-adjusted
close beside unadjusted Open/High/Low (Yahoo exports as some papers published them, e.g. the tdqn2021 data):
"ohlc-consistency" then checks high >= low only (such files also carry opens outside [low, high] on
split days), and the rows whose close (or open) lies outside [low, high] are counted per symbol
(`outside_range_rows`) so the caller can log and report them. The default, "refuse", keeps the full rule.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

from jaxtrade.data.dates import check_calendar, format_date
from jaxtrade.data.errors import DataError

PRICE_FIELDS = ("open", "high", "low", "close")
FIELDS = PRICE_FIELDS + ("volume",)
_OHLC_SLACK = 1e-9
CLOSE_OUTSIDE_RANGE = ("refuse", "adjusted_close")


class Panel(NamedTuple):
    """A raw price panel before validation; NaN marks a missing value.

    dates: [T] DatetimeIndex. symbols: N names. fields: {"close": [T, N], and optionally "open",
    "high", "low" (all three or none), "volume"} float64. lines: [T, N] int file line of each cell
    (0 where the cell is not in the file) or None when the data did not come from a file.
    """

    dates: pd.DatetimeIndex
    symbols: tuple[str, ...]
    fields: dict[str, np.ndarray]
    lines: np.ndarray | None


def _where(panel: Panel, t: int, n: int) -> str:
    """'2020-01-03 (line 5)': the row as error messages name it."""
    row = format_date(panel.dates[t])
    if panel.lines is not None and panel.lines[t, n] > 0:
        row += f" (line {int(panel.lines[t, n])})"
    return row


def _first(mask: np.ndarray) -> tuple[int, int] | None:
    """(row, column) of the first True in row-major order (earliest date first), or None."""
    hits = np.argwhere(mask)
    return None if hits.size == 0 else (int(hits[0, 0]), int(hits[0, 1]))


def _raise_at(panel: Panel, mask: np.ndarray, rule: str, source: str, detail) -> None:
    hit = _first(mask)
    if hit is not None:
        t, n = hit
        raise DataError(rule, source=source, symbol=panel.symbols[n], row=_where(panel, t, n),
                        detail=detail(t, n))


def outside_range_rows(panel: Panel, field: str = "close") -> dict[str, int]:
    """{symbol: rows whose `field` (close or open) lies outside [low, high] beyond the float slack}; {}
    without high/low."""
    f = panel.fields
    if "high" not in f:
        return {}
    c, h, lo = f[field], f["high"], f["low"]
    with np.errstate(invalid="ignore"):
        bad = (c > h * (1 + _OHLC_SLACK)) | (c < lo * (1 - _OHLC_SLACK))
    return {s: int(bad[:, n].sum()) for n, s in enumerate(panel.symbols)}


def check_values(panel: Panel, *, source: str, close_outside_range: str = "refuse") -> None:
    """Rules on the values present: finite, positive prices, volume >= 0, whole bars, OHLC order
    (`close_outside_range`: "refuse" or "adjusted_close", see the module docstring)."""
    if close_outside_range not in CLOSE_OUTSIDE_RANGE:
        raise ValueError(f"close_outside_range must be one of {CLOSE_OUTSIDE_RANGE}, "
                         f"got {close_outside_range!r}")
    f = panel.fields
    for name, x in f.items():
        _raise_at(panel, np.isinf(x), "finite", source, lambda t, n, x=x, name=name: f"{name} is {x[t, n]}")
    for name in PRICE_FIELDS:
        if name in f:
            x = f[name]
            _raise_at(panel, x <= 0, "positive-price", source,
                      lambda t, n, x=x, name=name: f"{name} = {x[t, n]!r} is not > 0")
    if "volume" in f:
        v = f["volume"]
        _raise_at(panel, v < 0, "non-negative-volume", source, lambda t, n: f"volume = {v[t, n]!r} < 0")
    present = [np.isnan(x) for x in f.values()]
    if len(present) > 1:
        n_missing = np.sum(present, axis=0)
        names = list(f)
        _raise_at(panel, (n_missing > 0) & (n_missing < len(present)), "incomplete-bar", source,
                  lambda t, n: "missing " + ", ".join(k for k, m in zip(names, present, strict=True)
                                                      if m[t, n]) + " while other fields are present")
    if "high" in f:
        o, h, lo, c = (f[k] for k in PRICE_FIELDS)
        if close_outside_range == "adjusted_close":     # close (and open) exempt: high >= low only
            with np.errstate(invalid="ignore"):
                bad = h < lo * (1 - _OHLC_SLACK)
            need = "need high >= low (close_outside_range='adjusted_close')"
        else:
            top, bottom = np.maximum(o, c), np.minimum(o, c)
            with np.errstate(invalid="ignore"):
                bad = (h < top * (1 - _OHLC_SLACK)) | (bottom < lo * (1 - _OHLC_SLACK))
            need = "need high >= max(open, close) >= min(open, close) >= low"
        _raise_at(panel, bad, "ohlc-consistency", source,
                  lambda t, n: (f"{need}; got "
                                f"open={o[t, n]}, high={h[t, n]}, low={lo[t, n]}, close={c[t, n]}"))


def drop_empty_rows(panel: Panel) -> Panel:
    """Drop rows where every field of every symbol is missing (non-trading days)."""
    empty = np.all([np.isnan(x).all(axis=1) for x in panel.fields.values()], axis=0)     # [T]
    if not empty.any():
        return panel
    keep = ~empty
    return Panel(panel.dates[keep], panel.symbols, {k: v[keep] for k, v in panel.fields.items()},
                 None if panel.lines is None else panel.lines[keep])


def drop_leading(panel: Panel, *, source: str, leading: str) -> Panel:
    """Drop the rows before every symbol has its first close (or reject them: leading="reject")."""
    if leading not in ("drop", "reject"):
        raise ValueError(f"leading must be 'drop' or 'reject', got {leading!r}")
    close = panel.fields["close"]
    has = ~np.isnan(close)
    never = np.flatnonzero(~has.any(axis=0))
    if never.size:
        raise DataError("leading-missing", source=source, symbol=panel.symbols[int(never[0])],
                        detail="symbol has no price at all")
    first = has.argmax(axis=0)                       # [N] first row with a price, per symbol
    start = int(first.max())
    if start == 0:
        return panel
    if leading == "reject":
        n = int(first.argmax())
        raise DataError("leading-missing", source=source, symbol=panel.symbols[n], row=_where(panel, 0, n),
                        detail=f"no price before {format_date(panel.dates[start])}; pass leading='drop' "
                               "to drop those rows (prices are never back-filled)")
    return Panel(panel.dates[start:], panel.symbols, {k: v[start:] for k, v in panel.fields.items()},
                 None if panel.lines is None else panel.lines[start:])


def missing_run_lengths(missing: np.ndarray) -> np.ndarray:
    """[T, N] bool -> [T, N] int: length of the run of consecutive True ending at each cell (0 if False)."""
    idx = np.arange(missing.shape[0])[:, None]
    last_present = np.maximum.accumulate(np.where(missing, -1, idx), axis=0)
    return np.where(missing, idx - last_present, 0)


def fill_gaps(panel: Panel, *, source: str, max_gap: int) -> Panel:
    """Forward-fill runs of at most max_gap missing bars as flat, zero-volume bars; longer runs raise."""
    close = panel.fields["close"]
    missing = np.isnan(close)
    if not missing.any():
        return panel
    runs = missing_run_lengths(missing)
    too_long = runs > max_gap
    hit = _first(too_long)
    if hit is not None:
        t, n = hit
        t0 = t - max_gap                              # the first missing row of this run
        raise DataError("max-gap", source=source, symbol=panel.symbols[n], row=_where(panel, t0, n),
                        detail=f"more than max_gap={max_gap} consecutive missing rows from "
                               f"{format_date(panel.dates[t0])}; forward-fill stops there")
    filled_close = pd.DataFrame(close).ffill().to_numpy()
    fields = {"close": filled_close}
    for k in ("open", "high", "low"):
        if k in panel.fields:
            fields[k] = np.where(missing, filled_close, panel.fields[k])
    if "volume" in panel.fields:
        fields["volume"] = np.where(missing, 0.0, panel.fields["volume"])
    return Panel(panel.dates, panel.symbols, fields, panel.lines)


def clean_panel(panel: Panel, *, source: str, max_gap: int = 5, leading: str = "drop",
                min_rows: int = 2, close_outside_range: str = "refuse") -> Panel:
    """Run every rule and the fill policy; returns a NaN-free panel or raises DataError.

    Args:
      panel: raw panel (NaN = missing).
      source: file or dataset name for messages.
      max_gap: most consecutive missing rows forward-filled per symbol.
      leading: "drop" or "reject" rows before a symbol's first price.
      min_rows: fewest rows the cleaned panel may have ("min-rows").
      close_outside_range: "refuse" (default) or "adjusted_close" (see the module docstring).
    """
    if max_gap < 0:
        raise ValueError(f"max_gap must be >= 0, got {max_gap}")
    check_calendar(panel.dates, source=source,
                   lines=None if panel.lines is None else panel.lines.max(axis=1))
    check_values(panel, source=source, close_outside_range=close_outside_range)
    panel = drop_empty_rows(panel)
    panel = drop_leading(panel, source=source, leading=leading)
    panel = fill_gaps(panel, source=source, max_gap=max_gap)
    if len(panel.dates) < min_rows:
        last = format_date(panel.dates[-1]) if len(panel.dates) else None
        raise DataError("min-rows", source=source, row=last,
                        detail=f"{len(panel.dates)} usable rows, need at least {min_rows} "
                               "(feature warm-up plus two traded rows)")
    return panel

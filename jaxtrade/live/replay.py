"""Offline paper trading: the bars CSV a dry run replays (`--bars_csv`), written from a bundled dataset,
and the summary of a session's journal.

The bars CSV (`load_csv` reads it; the model's training `csv_options` apply, so a model trained on a CSV
replays files of that CSV's layout):
1. Close-only data (e.g. "sp500-20"): the "wide" layout, a `date` column (YYYY-MM-DD, or
   YYYY-MM-DD HH:MM:SS for intraday bars, naive UTC) and one close column per model symbol, in any
   order, plus the benchmark's close in the column named by `--benchmark` (default SPY) where the model
   was trained with a benchmark:
       date,AAPL,AMD,...,XOM,SPY
       2022-12-27,129.652,63.27,...,108.408,3829.25
2. OHLC or volume data (e.g. "sp500-ohlcv"): the "long" layout, one row per (date, symbol):
   `date,symbol,open,high,low,close,volume` (the fields the model was trained on).
3. History: the model's Preprocessor needs its warm-up before the first traded bar (the turbulence
   window, 252 rows, plus the features' warm-up and the model's window: ~300 daily rows); the runner
   trades rows start .. end (or the last max_bars rows) and observes only rows before each.
`export_bars` writes such a file from a bundled dataset; `bundled_sample()` is the one this package ships.
"""

from __future__ import annotations

import os

import numpy as np
import pandas as pd

from jaxtrade import datasets
from jaxtrade.data import MarketData

# Rows before the first traded bar that `export_bars` writes by default: the turbulence window (252), the
# features' warm-up (33) and a window of up to 15 rows (the default configs' windows are 1 .. 10).
DEFAULT_HISTORY = 300
SAMPLE = "sample_bars_sp500_20.csv.gz"      # in jaxtrade/datasets: written by `export_bars` (see below)
SAMPLE_START = "2022-11-30"                 # the sample's first traded bar (after DEFAULT_HISTORY rows)


def bundled_sample() -> str:
    """The bundled sample bars CSV, jaxtrade/datasets/sample_bars_sp500_20.csv.gz: sp500-20's last 20 days
    (2022-11-30 .. 2022-12-28, the bars a replay trades) after DEFAULT_HISTORY rows of history, the S&P 500
    index close as column SPY. Written by
    `export_bars(load_dataset("sp500-20"), path, start=SAMPLE_START)`."""
    return str(datasets.path(SAMPLE))


def export_bars(md: MarketData, path: str, *, start=None, end=None, history: int = DEFAULT_HISTORY,
                benchmark: str = "SPY") -> tuple[pd.Timestamp, pd.Timestamp, int]:
    """Write md's rows start .. end (default: all) plus `history` rows before start as a bars CSV (the
    module docstring's layout; a name ending .gz is gzipped). Returns (first traded bar, last bar, rows
    written); a replay of the file with --start=<first traded bar> trades exactly start .. end."""
    dates = md.dates
    lo = 0 if start is None else int(dates.searchsorted(pd.Timestamp(start), "left"))
    hi = len(dates) if end is None else int(dates.searchsorted(pd.Timestamp(end), "right"))
    if hi <= lo:
        raise ValueError(f"{md.source} has no rows from {start} to {end} (it covers {dates[0].date()} .. "
                         f"{dates[-1].date()})")
    a = max(lo - int(history), 0)
    if lo - a < history:
        raise ValueError(f"{md.source} has {lo - a} rows before {dates[lo].date()}, the replay needs "
                         f"{history} of history: choose a later start")
    intraday = bool(np.any(dates[a:hi] != dates[a:hi].normalize()))
    stamp = dates[a:hi].strftime("%Y-%m-%d %H:%M:%S" if intraday else "%Y-%m-%d")
    if md.has_ohlc or md.has_volume:
        if md.benchmark is not None:
            raise ValueError(f"{md.source} has OHLC or volume and a benchmark: the long layout holds no "
                             "benchmark column; write the file yourself (see jaxtrade.live.replay)")
        fields = {k: getattr(md, k) for k in ("open", "high", "low", "close", "volume")
                  if getattr(md, k) is not None}
        frame = pd.concat([pd.DataFrame({"date": stamp, "symbol": s,
                                         **{k: v[a:hi, j] for k, v in fields.items()}})
                           for j, s in enumerate(md.symbols)]).sort_values(["date", "symbol"], kind="stable")
    else:
        if benchmark in md.symbols:
            raise ValueError(f"--benchmark {benchmark!r} is one of the dataset's symbols: name another "
                             "column")
        frame = pd.DataFrame({"date": stamp, **{s: md.close[a:hi, j] for j, s in enumerate(md.symbols)}})
        if md.benchmark is not None:
            frame[benchmark] = md.benchmark[a:hi]
    os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
    frame.to_csv(path, index=False)
    return dates[lo], dates[hi - 1], hi - a


def summarize(records: list[dict]) -> dict:
    """A session's totals from its journal records (`Runner.records`, `Journal.records()`):

    bars: {status: count} of the bars done ("traded", "gate", "flatten", "skipped", "aborted", ...);
    orders: orders sent (rejected ones included); fills: orders with a fill (close-all orders included);
    start_equity: the book's value at the first bar; equity: the account's equity after the last bar;
    return: equity / start_equity - 1; costs: what the fills cost beyond their notional, (cash at the
    start - cash at the end) - (bought - sold at the fill prices): fees, spread and impact.
    """
    done = [r for r in records if r.get("phase") == "done"]
    bars: dict[str, int] = {}
    for r in done:
        bars[r["status"]] = bars.get(r["status"], 0) + 1
    sent = [o for r in done for o in r.get("orders") or [] if o.get("status") != "not_sent"]
    filled = [o for r in done for o in [*(r.get("orders") or []), *(r.get("closed") or [])]
              if (o.get("filled_qty") or 0) > 0 and o.get("filled_avg_price") is not None]
    valued = [r for r in done if r.get("equity") is not None]
    first = next((r for r in done if r.get("value") is not None), None)
    start = None if first is None else float(first["value"])
    start_cash = None if first is None else _book_cash(first)
    equity = float(valued[-1]["equity"]) if valued else None
    notional = sum((1 if o["side"] == "buy" else -1) * o["filled_qty"] * o["filled_avg_price"]
                   for o in filled)
    costs = None
    if start_cash is not None and valued:
        costs = start_cash - float(valued[-1]["cash"]) - notional
    return {"bars": bars, "orders": len(sent), "fills": len(filled), "start_equity": start, "equity": equity,
            "return": None if not start or equity is None else equity / start - 1.0, "costs": costs}


def _book_cash(record: dict) -> float | None:
    """The cash leaf of a journaled book (`runner.tree_to_json` of the env's MarketState)."""
    leaf = next((d for d in record.get("book") or [] if d["name"] == ".cash"), None)
    return None if leaf is None else float(leaf["value"])


def summary_lines(s: dict) -> list[str]:
    """`summarize`'s totals as the lines a session ends with."""
    money = lambda x: "n/a" if x is None else f"{x:,.2f}"
    bars = ", ".join(f"{n} {k}" for k, n in sorted(s["bars"].items())) or "none"
    ret = "n/a" if s["return"] is None else f"{s['return']:+.4%}"
    return [f"session: {sum(s['bars'].values())} bars ({bars}), {s['orders']} orders, {s['fills']} fills",
            f"equity {money(s['start_equity'])} -> {money(s['equity'])} (return {ret}), "
            f"costs {money(s['costs'])} (fees, spread and impact beyond the fill prices)"]

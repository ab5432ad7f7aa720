"""The out-of-sample report: one table (markdown + CSV) and PNG plots, from backtest frames.

`results` everywhere is a dict {policy name: [backtest DataFrame per seed]} (a single frame is taken as
one seed), as `evaluate_policies` and `baselines` return it; frames of one report share their dates.
"""

from __future__ import annotations

import math
import os
from typing import NamedTuple

import numpy as np
import pandas as pd
from matplotlib import colormaps
from matplotlib import dates as mdates
from matplotlib.figure import Figure

from jaxtrade.eval.baselines import NO_GATE, REFERENCE_BASELINES
from jaxtrade.eval.bootstrap import sharpe_diff_ci
from jaxtrade.eval.stats import drawdown, excess_rate, returns_of, stats

# Baseline names as `baselines` produces them; every other name in `results` is a learned agent.
BASELINE_NAMES = ("equal_weight_buy_hold", "equal_weight_monthly", "index", "min_variance", "random",
                  "long_buy_hold", "flat", "short", "cash", "underlying_buy_hold", "bxm", "put")
# The Sharpe-difference reference of `report`'s reference="auto": the first of these in the results
# (a portfolio's equal-weight buy-and-hold, a single instrument's long buy-and-hold).
AUTO_REFERENCES = REFERENCE_BASELINES


def kind_of(name: str) -> str:
    """"baseline" (same world as the agent), "reference" (a baseline with the gate off, `NO_GATE`: a
    different world, shown for comparison only) or "agent"."""
    if name.endswith(NO_GATE) and name[:-len(NO_GATE)] in BASELINE_NAMES:
        return "reference"
    return "baseline" if name in BASELINE_NAMES else "agent"

# Numeric statistics shown in the table, in order (see `stats` for their definitions).
# gross_return is the cumulative return before costs (`gross_return`).
TABLE_STATS = ("cumulative_return", "gross_return", "annual_return", "annual_volatility", "sharpe", "sortino",
               "calmar", "max_drawdown", "win_rate", "profit_rate", "turnover", "total_costs")

FIGSIZE = (10.0, 7.0)   # inches; at DPI every PNG is 1000 x 700 pixels
DPI = 100


class Report(NamedTuple):
    table: pd.DataFrame      # the summary table (one row per policy), as written to report.csv
    md_path: str
    csv_path: str
    png_paths: list[str]
    results: dict | None = None   # {name: [frames]} the table was made of


def as_results(results) -> dict[str, list[pd.DataFrame]]:
    """{name: frame or [frames]} -> {name: [frames]}."""
    return {k: list(v) if isinstance(v, list | tuple) else [v] for k, v in results.items()}


def _ppy(results, periods_per_year):
    if periods_per_year is not None:
        return float(periods_per_year)
    for frames in results.values():
        return float(frames[0].attrs.get("periods_per_year", 252.0))
    return 252.0


def risk_free_series(results) -> np.ndarray | None:
    """The dated per-period risk-free rate [T-1] of a report's period: the `risk_free` column of the
    first frame that has one (every frame of a report shares the period, so one series serves every
    row, the index's value series included); None where no env earned interest on cash."""
    for frames in results.values():
        if "risk_free" in frames[0].columns:
            return excess_rate(frames[0], 0.0, 252.0)
    return None


def _with_rate(frame: pd.DataFrame, rate) -> pd.DataFrame:
    if rate is None or "risk_free" in frame.columns or len(frame) != len(rate) + 1:
        return frame
    out = frame.copy()
    out["risk_free"] = np.append(rate, 0.0)
    return out


def gross_return(frame: pd.DataFrame) -> float:
    """The cumulative return before costs: prod_t value[t+1] / (value[t] - costs[t]) - 1.

    `value[t]` is the value before the trade at close[t], `costs[t]` what that trade paid, so
    value[t] - costs[t] is the book right after the trade and value[t+1] / (value[t] - costs[t]) its
    return to the next close: the bar's return as if the trade had been free. Compounded, it is what
    the same weights would have earned without any costs (the net return, `cumulative_return`, is
    prod_t value[t+1] / value[t] - 1). NaN without a `costs` column (e.g. the index) or where a trade
    cost the whole book."""
    if "costs" not in frame.columns or len(frame) < 2:
        return math.nan
    v = frame["value"].to_numpy(np.float64)
    book = v[:-1] - frame["costs"].to_numpy(np.float64)[:-1]
    if np.any(book <= 0):
        return math.nan
    return float(np.prod(v[1:] / book) - 1.0)


def summarize(results, *, periods_per_year: float | None = None, risk_free: float = 0.0,
              reference: str | None = "equal_weight_buy_hold", n_boot: int = 2000,
              block_length: float = 20.0, seed: int = 0) -> pd.DataFrame:
    """One row per policy: `n_seeds`, the mean (over seeds) of every `TABLE_STATS` column and its std
    (`<stat>_std`, ddof=1; NaN for one seed), the drawdown's peak/trough dates (first seed), and the
    Sharpe difference to `reference` with its stationary-bootstrap 95% interval
    (`sharpe_diff`, `sharpe_diff_low`, `sharpe_diff_high`; see `sharpe_diff_ci`)."""
    results = as_results(results)
    ppy = _ppy(results, periods_per_year)
    rate = risk_free_series(results)
    results = {k: [_with_rate(f, rate) for f in v] for k, v in results.items()}
    excess = lambda f: returns_of(f) - (rate if rate is not None else 0.0)
    ref_returns = None
    if reference is not None and reference in results:
        ref_returns = np.mean([excess(f) for f in results[reference]], axis=0)
    rows = {}
    for name, frames in results.items():
        per_seed = [dict(stats(f, periods_per_year=ppy, risk_free=risk_free), gross_return=gross_return(f))
                    for f in frames]
        row = {"kind": kind_of(name), "n_seeds": len(frames),
               "label": str(frames[0].attrs.get("label") or name)}
        for key in TABLE_STATS:
            vals = np.array([s[key] for s in per_seed], np.float64)
            row[key] = float(np.mean(vals))
            row[key + "_std"] = float(np.std(vals, ddof=1)) if len(vals) > 1 else math.nan
        row["max_drawdown_peak"] = per_seed[0]["max_drawdown_peak"]
        row["max_drawdown_trough"] = per_seed[0]["max_drawdown_trough"]
        row["sharpe_diff"] = row["sharpe_diff_low"] = row["sharpe_diff_high"] = math.nan
        if ref_returns is not None and name != reference:
            ci = sharpe_diff_ci(np.stack([excess(f) for f in frames]), ref_returns,
                                periods_per_year=ppy, n_boot=n_boot, block_length=block_length, seed=seed)
            row["sharpe_diff"], row["sharpe_diff_low"], row["sharpe_diff_high"] = ci.diff, ci.low, ci.high
        rows[name] = row
    table = pd.DataFrame.from_dict(rows, orient="index")
    table.index.name = "policy"
    return table


def _row_label(table: pd.DataFrame, key: str) -> str:
    label = table.loc[key, "label"] if "label" in table.columns else key
    return label if isinstance(label, str) and label else key


# A learned agent's costs "dominate" when they took more than this share of its gross gain, or cost
# more than this fraction of the starting value a year.
COSTS_DOMINATE_SHARE = 0.5
COSTS_DOMINATE_PER_YEAR = 0.05


def cost_notes(table: pd.DataFrame, years: float) -> str:
    """A sentence for each learned agent whose costs dominate (`COSTS_DOMINATE_SHARE`,
    `COSTS_DOMINATE_PER_YEAR`): its return before and after costs, its costs and its turnover; "" where
    none does. years: the report's period in years (total_costs is over the whole period)."""
    out = []
    for key, row in table.iterrows():
        if row.get("kind", "agent") != "agent":
            continue
        gross, net, costs = row["gross_return"], row["cumulative_return"], row["total_costs"]
        if math.isnan(gross) or math.isnan(costs):
            continue
        per_year = costs / years if years > 0 else math.nan
        took_gain = gross > 0 and gross - net > COSTS_DOMINATE_SHARE * gross
        if not (took_gain or per_year > COSTS_DOMINATE_PER_YEAR):
            continue
        why = ("they took more than half of its gain" if took_gain else
               f"they came to {per_year:.1%} of the starting value a year")
        turnover = "" if math.isnan(row["turnover"]) else f", turnover {row['turnover']:.1f}x the book a year"
        out.append(f"**Costs dominate `{_row_label(table, key)}`**: {why}, its return is {gross:+.1%} before "
                   f"costs and {net:+.1%} after (costs {costs:.1%} of the starting value over the period"
                   f"{turnover}).")
    return " ".join(out)


def verdict(table: pd.DataFrame, reference: str | None = "equal_weight_buy_hold") -> str:
    """A sentence or three saying who won: the best Sharpe overall, the best learned agent against the
    best baseline, and whether the agent's Sharpe edge over `reference` is outside its bootstrap CI."""
    lab = lambda key: _row_label(table, key)
    table = table[table["kind"] != "reference"] if "kind" in table.columns else table
    best = table["sharpe"].idxmax()
    row = table.loc[best]
    lines = [f"**Winner by Sharpe: `{lab(best)}`** (Sharpe {row['sharpe']:.3f}, cumulative return "
             f"{row['cumulative_return']:+.1%}, max drawdown {row['max_drawdown']:.1%})."]
    by_return = table["cumulative_return"].idxmax()
    if by_return != best:
        lines.append(f"Highest cumulative return: `{lab(by_return)}` "
                     f"({table.loc[by_return, 'cumulative_return']:+.1%}).")
    agents = table[table["kind"] == "agent"]
    bases = table[table["kind"] == "baseline"]
    if len(agents) and len(bases):
        a, b = agents["sharpe"].idxmax(), bases["sharpe"].idxmax()
        beat = "beats" if table.loc[a, "sharpe"] > table.loc[b, "sharpe"] else "does not beat"
        lines.append(f"Best learned agent `{lab(a)}` (Sharpe {table.loc[a, 'sharpe']:.3f}) {beat} the best "
                     f"baseline `{lab(b)}` (Sharpe {table.loc[b, 'sharpe']:.3f}).")
        if reference in table.index and not math.isnan(table.loc[a, "sharpe_diff"]):
            lo, hi = table.loc[a, "sharpe_diff_low"], table.loc[a, "sharpe_diff_high"]
            sig = ("significant at 95%" if lo > 0 or hi < 0
                   else "not significant at 95%: the interval contains 0")
            lines.append(f"Sharpe difference `{lab(a)}` - `{lab(reference)}`: "
                         f"{table.loc[a, 'sharpe_diff']:+.3f} (95% CI [{lo:+.3f}, {hi:+.3f}], {sig}).")
    elif not len(agents):
        lines.append("No learned agent in this report: baselines only.")
    return " ".join(lines)


_PERCENT = {"cumulative_return", "gross_return", "annual_return", "annual_volatility", "max_drawdown",
            "win_rate", "profit_rate", "total_costs"}


def _fmt(key, mean, std, n):
    if isinstance(mean, float) and math.isnan(mean):
        return "n/a"
    s = f"{mean:.2%}" if key in _PERCENT else f"{mean:.3f}"
    if n > 1 and not math.isnan(std):
        s += f" ± {std:.2%}" if key in _PERCENT else f" ± {std:.3f}"
    return s


def constant_columns(table: pd.DataFrame) -> list[str]:
    """The `TABLE_STATS` whose cell reads the same in every row (all n/a, or one value everywhere):
    constant by construction in this report, so `to_markdown` leaves them out (the CSV keeps them)."""
    if len(table) < 2:
        return []
    cells = lambda k: {_fmt(k, row[k], row[k + "_std"], int(row["n_seeds"])) for _, row in table.iterrows()}
    return [k for k in TABLE_STATS if len(cells(k)) == 1]


def to_markdown(table: pd.DataFrame) -> str:
    """The summary table as GitHub markdown (multi-seed cells read `mean ± std`); statistics that read
    the same in every row are left out and named under the table."""
    dropped = constant_columns(table)
    shown = [k for k in TABLE_STATS if k not in dropped]
    cols = ["n_seeds", *shown, "sharpe_diff (95% CI)", "max_drawdown_period"]
    lines = ["| policy | " + " | ".join(cols) + " |", "|" + " --- |" * (len(cols) + 1)]
    for name, row in table.iterrows():
        n = int(row["n_seeds"])
        cells = [str(n)] + [_fmt(k, row[k], row[k + "_std"], n) for k in shown]
        if math.isnan(row["sharpe_diff"]):
            cells.append("(reference)" if name == table.attrs.get("reference") else "n/a")
        else:
            cells.append(f"{row['sharpe_diff']:+.3f} [{row['sharpe_diff_low']:+.3f}, "
                         f"{row['sharpe_diff_high']:+.3f}]")
        cells.append(f"{_date(row['max_drawdown_peak'])} .. {_date(row['max_drawdown_trough'])}")
        label = row.get("label", name)
        lines.append(f"| {label if isinstance(label, str) and label else name} | " + " | ".join(cells) + " |")
    if dropped:
        first = table.iloc[0]
        n = int(first["n_seeds"])
        same = ", ".join(f"{k} {_fmt(k, first[k], first[k + '_std'], n)}" for k in dropped)
        lines += ["", f"Left out, the same in every row: {same}."]
    return "\n".join(lines) + "\n"


def _ppy_sentence(frame, ppy) -> str:
    basis = frame.attrs.get("periods_per_year_basis")
    return f"{ppy:g} periods per year" + (f" ({basis})" if basis else "")


def _rate_sentence(results, risk_free: float) -> str:
    """How Sharpe and Sortino treat the risk-free rate in this report."""
    rate = risk_free_series(results)
    if rate is not None and np.any(rate != 0):
        ppy = _ppy(results, None)
        mean = (1.0 + float(np.mean(rate))) ** ppy - 1.0
        return (f"cash earns the data's dated risk-free rate (mean {mean:.2%} a year over the period), and "
                "Sharpe and Sortino are on returns in excess of it.")
    if risk_free:
        return (f"Sharpe and Sortino are on returns in excess of a constant risk-free rate of "
                f"{risk_free:.2%} a year.")
    return ("risk-free rate 0: cash earns nothing in this env and Sharpe and Sortino are on raw returns "
            "(the data has no dated rate, or the env's switch is off).")


def _date(x):
    return x.strftime("%Y-%m-%d") if hasattr(x, "strftime") else str(x)


def report(results, workdir: str, *, periods_per_year: float | None = None, risk_free: float = 0.0,
           reference: str | None = "auto", title: str = "Out-of-sample evaluation",
           n_boot: int = 2000, seed: int = 0, notes: str = "", table_note: str = "",
           boundaries=()) -> Report:
    """Write report.md, report.csv and PNGs (1000x700 px) into `workdir`; return their paths and the table.

    results: {name: backtest frame or [frames per seed]} (`evaluate_policies`, `baselines`).
    notes: a paragraph placed under the period line (e.g. the cost settings, the checkpoint).
    table_note: a note right under the table (e.g. the dataset's caveats, `jaxtrade.data.dataset_caveats`).
    reference: the Sharpe-difference reference; "auto": the first of `AUTO_REFERENCES` in `results`.
    A frame's `attrs["label"]` (e.g. the index's "S&P 500 (price index)") names its row in report.md.
    PNGs: equity.png (equity curves normalized to 1, mean over seeds with a min-max band, and their
    drawdowns; legend names as the table's; `boundaries`: dates drawn as dotted vertical lines, e.g. a
    walk-forward's fold starts), and for each learned agent (its first seed):
    actions_<agent>.png (a discrete agent's actions over time, one band per action),
    allocation_<agent>.png (weights over time, shorts below 0) and gate_<agent>.png (turbulence against
    the gate's threshold, the bars the gate acted shaded; only where it acted at least once).
    """
    results = as_results(results)
    os.makedirs(workdir, exist_ok=True)
    ppy = _ppy(results, periods_per_year)
    if reference == "auto":
        reference = next((r for r in AUTO_REFERENCES if r in results), None)
    ref = reference if reference in results else None
    table = summarize(results, periods_per_year=ppy, risk_free=risk_free, reference=ref,
                      n_boot=n_boot, seed=seed)
    table.attrs["reference"] = ref
    csv_path = os.path.join(workdir, "report.csv")
    table.to_csv(csv_path)
    pngs = [_save(equity_figure(results, boundaries), os.path.join(workdir, "equity.png"))]
    never_gated = []
    for name, frames in results.items():
        if kind_of(name) != "agent":
            continue
        label, f, n = label_of(name, frames), frames[0], len(frames)
        png = lambda kind, fig, name=name: _save(fig, os.path.join(workdir, f"{kind}_{name}.png"))
        if "action" in f.columns and len(f) > 1:
            pngs.append(png("actions", actions_figure(label, f, n)))
        if any(c.startswith("w_") for c in f.columns):
            pngs.append(png("allocation", allocation_figure(label, f, n)))
        if "gate" in f.columns and f["gate"].any():
            pngs.append(png("gate", gate_figure(label, f, n)))
        elif "gate" in f.columns:
            never_gated.append(f"`{label}`")
    first = next(iter(results.values()))[0]
    years = (len(first) - 1) / ppy
    bars = _bars(first.index)
    gate_note = (f"The turbulence gate never acted on {', '.join(never_gated)} (first seed's backtest): no "
                 "gate plot." if never_gated else "")
    period = f"{_date(first.index[0])} .. {_date(first.index[-1])}, {len(first)} rows" if len(first) else ""
    md = [f"# {title}", "",
          f"Period: {period}; {_ppy_sentence(first, ppy)}; {_rate_sentence(results, risk_free)}",
          "", *([notes, ""] if notes else []),
          " ".join(x for x in (verdict(table, ref), cost_notes(table, years), gate_note) if x), "",
          to_markdown(table), "", *([table_note, ""] if table_note else []),
          "Percent statistics are fractions of the starting value; cumulative_return is after costs, "
          "gross_return the same trades before costs (each bar's return value[t+1] / (value[t] - costs[t]), "
          "value[t] before the trade at close t, compounded; n/a for a row without costs); turnover is per "
          "year (1.0 = the whole book once). Multi-seed rows read mean ± std over seeds; the allocation, "
          "action and gate plots show a multi-seed row's first seed. Sharpe differences are against "
          f"`{ref}`, with a 95% stationary-bootstrap interval of per-{bars[:-1]} returns "
          f"({n_boot} resamples, mean block 20 {bars}, seed {seed}; a multi-seed row's resamples draw its "
          f"seeds with replacement together with the {bars}).", ""]
    md += [f"![{os.path.splitext(os.path.basename(p))[0]}]({os.path.basename(p)})" for p in pngs]
    md_path = os.path.join(workdir, "report.md")
    with open(md_path, "w") as f:
        f.write("\n".join(md) + "\n")
    return Report(table, md_path, csv_path, pngs, results)


# PLOTS: matplotlib's object API only (no pyplot): no global state, no display needed. Each `*_figure`
# builds one Figure (tests read its artists); `report` saves it.

def _figure(nrows, height_ratios=None):
    fig = Figure(figsize=FIGSIZE, dpi=DPI)
    axes = fig.subplots(nrows, 1, sharex=True, gridspec_kw={"height_ratios": height_ratios})
    return fig, np.atleast_1d(axes)


def _save(fig, path):
    fig.savefig(path, dpi=DPI)
    return path


def intraday(index) -> bool:
    """True where the rows are bars within a day (a date index with a time of day other than 00:00)."""
    return isinstance(index, pd.DatetimeIndex) and bool(np.any(index.normalize() != index))


def _bars(index) -> str:
    return "bars" if intraday(index) else "days"


def _date_axis(ax, index):
    """Concise dates on a date axis: hours on intraday data, days/months/years otherwise."""
    if isinstance(index, pd.DatetimeIndex):
        locator = mdates.AutoDateLocator()
        ax.xaxis.set_major_locator(locator)
        ax.xaxis.set_major_formatter(mdates.ConciseDateFormatter(locator))


def distinct_colors(n: int) -> list:
    """`n` colours, all different: tab10 up to 10, tab20 up to 20, then tab20 + tab20b + tab20c
    (60), then a continuous colormap sampled at n points."""
    if n <= 10:
        return list(colormaps["tab10"].colors[:n])
    if n <= 60:
        return [*colormaps["tab20"].colors, *colormaps["tab20b"].colors, *colormaps["tab20c"].colors][:n]
    return [colormaps["turbo"](x) for x in np.linspace(0.0, 1.0, n)]


def _seeds_note(n_seeds: int) -> str:
    return "" if n_seeds <= 1 else f" (first of {n_seeds} seeds)"


def label_of(name: str, frames) -> str:
    """The row's name in the table and in every plot: the first frame's `attrs["label"]`, else `name`."""
    label = frames[0].attrs.get("label")
    return label if isinstance(label, str) and label else name


def equity_figure(results, boundaries=()) -> Figure:
    """Equity curves normalized to 1 (multi-seed rows: the mean over seeds with a min..max band) and
    their drawdowns; the legend names rows as the table does (`label_of`). boundaries: dates (or row
    labels) marked with a dotted vertical line on both panels (a walk-forward's fold starts)."""
    fig, (ax, ax_dd) = _figure(2, [2, 1])
    index = None
    for name, frames in results.items():
        curves = np.stack([f["value"].to_numpy(np.float64) / f["value"].iloc[0] for f in frames])
        index = frames[0].index
        label = label_of(name, frames)
        line, = ax.plot(index, curves.mean(0), lw=1.6 if kind_of(name) == "agent" else 1.0,
                        label=label if len(frames) == 1 else f"{label} (mean of {len(frames)} seeds)")
        if len(frames) > 1:
            ax.fill_between(index, curves.min(0), curves.max(0), color=line.get_color(), alpha=0.15)
        ax_dd.plot(index, drawdown(curves.mean(0)), lw=1.0, color=line.get_color())
    for i, b in enumerate(boundaries):
        for a in (ax, ax_dd):
            a.axvline(b, color="grey", ls=":", lw=0.9, label="fold start" if a is ax and i == 0 else None)
    ax.set_ylabel("value / starting value")
    ax.set_title("Equity curves (after costs)")
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3)
    ax_dd.set_ylabel("drawdown")
    ax_dd.grid(alpha=0.3)
    _date_axis(ax_dd, index)
    fig.tight_layout()
    return fig


def allocation_figure(label: str, frame: pd.DataFrame, n_seeds: int = 1) -> Figure:
    """Weights over time (one seed's frame): long weights stacked upwards from 0, short weights
    (negative) stacked downwards, one distinct colour per series (`distinct_colors`)."""
    fig, (ax,) = _figure(1)
    cols = [c for c in frame.columns if c.startswith("w_")]
    w = frame[cols].to_numpy(np.float64)
    colors = distinct_colors(len(cols))
    long, short = np.clip(w, 0.0, None), np.clip(w, None, 0.0)
    ax.stackplot(frame.index, long.T, labels=[c[2:] for c in cols], colors=colors, alpha=0.85)
    if np.any(short < 0):
        ax.stackplot(frame.index, short.T, colors=colors, alpha=0.85, hatch="//")
        ax.axhline(0.0, color="k", lw=0.8)
    ax.set_ylim(min(0.0, float(short.sum(1).min())) * 1.05, max(1.0, float(long.sum(1).max())) * 1.02)
    ax.set_ylabel("weight (after the bar's trade; short < 0, hatched)")
    ax.set_title(f"Allocation over time: {label}{_seeds_note(n_seeds)}")
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=7, ncol=1 if len(cols) <= 24 else 2)
    _date_axis(ax, frame.index)
    fig.tight_layout()
    return fig


def action_runs(actions: np.ndarray) -> list[tuple[int, int, int]]:
    """(action, first row, row after the last) of each run of one action in `actions`."""
    a = np.asarray(actions)
    if not a.size:
        return []
    cut = np.flatnonzero(np.diff(a) != 0) + 1
    starts, ends = np.concatenate([[0], cut]), np.concatenate([cut, [a.size]])
    return [(int(a[s]), int(s), int(e)) for s, e in zip(starts, ends, strict=True)]


def action_names(frame: pd.DataFrame) -> list[str]:
    """The names of the discrete actions of `frame`: `attrs["action_names"]` where the backtest set
    them (the env's `action_names`), else "action k"; as many as the larger of those and the largest
    action taken + 1."""
    names = [str(x) for x in (frame.attrs.get("action_names") or [])]
    n = max(len(names), int(frame["action"].max()) + 1 if len(frame) else 0)
    return [names[k] if k < len(names) else f"action {k}" for k in range(n)]


def actions_figure(label: str, frame: pd.DataFrame, n_seeds: int = 1) -> Figure:
    """A discrete agent's actions over time (one seed's frame): one horizontal band per action, drawn
    where it was chosen, named with its share of the bars; the value below for context. The last row
    holds no trade and is left out."""
    fig, (ax, ax_v) = _figure(2, [2, 1])
    names = action_names(frame)
    traded = frame.iloc[:-1]
    a = traded["action"].to_numpy(np.int64)
    if isinstance(frame.index, pd.DatetimeIndex):
        x = mdates.date2num(frame.index.to_pydatetime())
    else:
        x = np.arange(len(frame), dtype=np.float64)
    ax_v.plot(frame.index, frame["value"] / frame["value"].iloc[0], lw=1.0, color="k")
    colors = distinct_colors(len(names))
    for k, start, end in action_runs(a):
        ax.broken_barh([(x[start], x[end] - x[start])], (k - 0.4, 0.8), color=colors[k], lw=0)
    share = np.bincount(a, minlength=len(names)) / max(len(a), 1)
    ax.set_yticks(range(len(names)), [f"{n} ({s:.0%})" for n, s in zip(names, share, strict=True)],
                  fontsize=8)
    ax.set_ylim(-0.6, len(names) - 0.4)
    ax.invert_yaxis()
    ax.grid(axis="x", alpha=0.3)
    ax.set_title(f"Actions over time: {label}{_seeds_note(n_seeds)}; share of {len(a)} {_bars(frame.index)}")
    ax_v.set_ylabel("value / starting value")
    ax_v.grid(alpha=0.3)
    _date_axis(ax_v, frame.index)
    fig.tight_layout()
    return fig


def gate_figure(label: str, frame: pd.DataFrame, n_seeds: int = 1) -> Figure:
    """Turbulence against the gate's threshold, the bars the gate acted shaded (one seed's frame)."""
    fig, (ax, ax_v) = _figure(2, [1, 1])
    gate = frame["gate"].to_numpy(bool)
    if "turbulence" in frame.columns:
        ax.plot(frame.index, frame["turbulence"], lw=0.8, color="k", label="turbulence")
        if "turbulence_threshold" in frame.columns:
            ax.plot(frame.index, frame["turbulence_threshold"], lw=1.0, ls="--", color="r", label="threshold")
    for a in (ax, ax_v):
        a.fill_between(frame.index, 0, 1, where=gate, transform=a.get_xaxis_transform(), color="orange",
                       alpha=0.3, step="mid", label="gate acted" if a is ax else None)
    ax.set_title(f"Turbulence gate: {label}{_seeds_note(n_seeds)} "
                 f"({int(gate.sum())} of {len(gate)} {_bars(frame.index)} gated)")
    ax.legend(loc="upper left", fontsize=8)
    ax_v.plot(frame.index, frame["value"] / frame["value"].iloc[0], lw=1.0)
    ax_v.set_ylabel("value / starting value")
    _date_axis(ax_v, frame.index)
    fig.tight_layout()
    return fig

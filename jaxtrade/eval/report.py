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
TABLE_STATS = ("cumulative_return", "annual_return", "annual_volatility", "sharpe", "sortino", "calmar",
               "max_drawdown", "win_rate", "profit_rate", "turnover", "total_costs")

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
        per_seed = [stats(f, periods_per_year=ppy, risk_free=risk_free) for f in frames]
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


def verdict(table: pd.DataFrame, reference: str | None = "equal_weight_buy_hold") -> str:
    """A sentence or three saying who won: the best Sharpe overall, the best learned agent against the
    best baseline, and whether the agent's Sharpe edge over `reference` is outside its bootstrap CI."""
    def lab(key):
        label = table.loc[key, "label"] if "label" in table.columns else key
        return label if isinstance(label, str) and label else key

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


_PERCENT = {"cumulative_return", "annual_return", "annual_volatility", "max_drawdown", "win_rate",
            "profit_rate", "total_costs"}


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
           n_boot: int = 2000, seed: int = 0, notes: str = "", table_note: str = "") -> Report:
    """Write report.md, report.csv and PNGs (1000x700 px) into `workdir`; return their paths and the table.

    results: {name: backtest frame or [frames per seed]} (`evaluate_policies`, `baselines`).
    notes: a paragraph placed under the period line (e.g. the cost settings, the checkpoint).
    table_note: a note right under the table (e.g. the dataset's caveats, `jaxtrade.data.dataset_caveats`).
    reference: the Sharpe-difference reference; "auto": the first of `AUTO_REFERENCES` in `results`.
    A frame's `attrs["label"]` (e.g. the index's "S&P 500 (price index)") names its row in report.md.
    PNGs: equity.png (equity curves normalized to 1, mean over seeds with a min-max band, and their
    drawdowns), allocation_<agent>.png (each learned agent's weights over time, first seed) and
    gate_<agent>.png (turbulence against its gate threshold, days the gate acted shaded).
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
    pngs = [_plot_equity(results, os.path.join(workdir, "equity.png"))]
    for name, frames in results.items():
        if kind_of(name) != "agent":
            continue
        if any(c.startswith("w_") for c in frames[0].columns):
            pngs.append(_plot_allocation(name, frames[0], os.path.join(workdir, f"allocation_{name}.png")))
        if "gate" in frames[0].columns:
            pngs.append(_plot_gate(name, frames[0], os.path.join(workdir, f"gate_{name}.png")))
    first = next(iter(results.values()))[0]
    period = f"{_date(first.index[0])} .. {_date(first.index[-1])}, {len(first)} rows" if len(first) else ""
    md = [f"# {title}", "",
          f"Period: {period}; {_ppy_sentence(first, ppy)}; {_rate_sentence(results, risk_free)}",
          "", *([notes, ""] if notes else []), verdict(table, ref), "", to_markdown(table), "",
          *([table_note, ""] if table_note else []),
          "Percent statistics are fractions of the starting value; turnover is per year (1.0 = the whole "
          "book once). Multi-seed rows read mean ± std over seeds. Sharpe differences are against "
          f"`{ref}`, with a 95% stationary-bootstrap interval of daily returns "
          f"({n_boot} resamples, mean block 20 days, seed {seed}; a multi-seed row's resamples draw its "
          "seeds with replacement together with the days).", ""]
    md += [f"![{os.path.splitext(os.path.basename(p))[0]}]({os.path.basename(p)})" for p in pngs]
    md_path = os.path.join(workdir, "report.md")
    with open(md_path, "w") as f:
        f.write("\n".join(md) + "\n")
    return Report(table, md_path, csv_path, pngs, results)


# PLOTS: matplotlib's object API only (no pyplot): no global state, no display needed.

def _figure(nrows, height_ratios=None):
    fig = Figure(figsize=FIGSIZE, dpi=DPI)
    axes = fig.subplots(nrows, 1, sharex=True, gridspec_kw={"height_ratios": height_ratios})
    return fig, np.atleast_1d(axes)


def _save(fig, path):
    fig.savefig(path, dpi=DPI)
    return path


def _plot_equity(results, path):
    fig, (ax, ax_dd) = _figure(2, [2, 1])
    for name, frames in results.items():
        curves = np.stack([f["value"].to_numpy(np.float64) / f["value"].iloc[0] for f in frames])
        index = frames[0].index
        line, = ax.plot(index, curves.mean(0), lw=1.6 if kind_of(name) == "agent" else 1.0,
                        label=name if len(frames) == 1 else f"{name} (mean of {len(frames)})")
        if len(frames) > 1:
            ax.fill_between(index, curves.min(0), curves.max(0), color=line.get_color(), alpha=0.15)
        ax_dd.plot(index, drawdown(curves.mean(0)), lw=1.0, color=line.get_color())
    ax.set_ylabel("value / starting value")
    ax.set_title("Equity curves")
    ax.legend(loc="upper left", fontsize=8)
    ax.grid(alpha=0.3)
    ax_dd.set_ylabel("drawdown")
    ax_dd.grid(alpha=0.3)
    fig.tight_layout()
    return _save(fig, path)


def _plot_allocation(name, frame, path):
    fig, (ax,) = _figure(1)
    cols = [c for c in frame.columns if c.startswith("w_")]
    w = np.clip(frame[cols].to_numpy(np.float64), 0.0, None)
    ax.stackplot(frame.index, w.T, labels=[c[2:] for c in cols], alpha=0.85)
    ax.set_ylim(0, max(1.0, float(w.sum(1).max())))
    ax.set_ylabel("weight (after the day's trade)")
    ax.set_title(f"Allocation over time: {name}")
    ax.legend(loc="center left", bbox_to_anchor=(1.0, 0.5), fontsize=7)
    fig.tight_layout()
    return _save(fig, path)


def _plot_gate(name, frame, path):
    fig, (ax, ax_v) = _figure(2, [1, 1])
    gate = frame["gate"].to_numpy(bool)
    if "turbulence" in frame.columns:
        ax.plot(frame.index, frame["turbulence"], lw=0.8, color="k", label="turbulence")
        if "turbulence_threshold" in frame.columns:
            ax.plot(frame.index, frame["turbulence_threshold"], lw=1.0, ls="--", color="r", label="threshold")
    for a in (ax, ax_v):
        a.fill_between(frame.index, 0, 1, where=gate, transform=a.get_xaxis_transform(), color="orange",
                       alpha=0.3, step="mid", label="gate acted" if a is ax else None)
    ax.set_title(f"Turbulence gate: {name} ({int(gate.sum())} of {len(gate)} days gated)")
    ax.legend(loc="upper left", fontsize=8)
    ax_v.plot(frame.index, frame["value"] / frame["value"].iloc[0], lw=1.0)
    ax_v.set_ylabel("value / starting value")
    fig.tight_layout()
    return _save(fig, path)

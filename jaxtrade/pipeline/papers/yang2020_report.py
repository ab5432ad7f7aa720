"""The report of the Yang et al. (2020) protocol (`jaxtrade.pipeline.papers.yang2020`): our table beside the
paper's Table II, the quarters in Table I's layout, the overfitting sections and the departures, written
through `jaxtrade.pipeline.papers.common`. Host-side numpy/pandas only."""

from __future__ import annotations

import hashlib
import json
import math
import pathlib

import numpy as np
import pandas as pd

from jaxtrade.eval import overfitting
from jaxtrade.eval.stats import stats
from jaxtrade.pipeline.papers import common
from jaxtrade.train.artifact import machine_info

STRATEGY_LABELS = {"ensemble": "Ensemble", "ppo": "PPO", "a2c": "A2C", "ddpg": "DDPG",
                   "min_variance": "Min-Variance", "equal_weight_buy_hold": "Equal weight",
                   "index": "Index"}
METRICS = (("cumulative_return", "Cumulative return", "pct"), ("annual_return", "Annual return", "pct"),
           ("annual_volatility", "Annual volatility", "pct"), ("sharpe", "Sharpe", "num"),
           ("max_drawdown", "Max drawdown", "pct"))
# The paper's Table II (2016-01-04 .. 2020-05-08): cumulative return, annual return, annual volatility,
# Sharpe, max drawdown. The DJIA row is its index; ours is the S&P 500 price index. No equal weight row.
PAPER_TABLE = {
    "ensemble": (0.704, 0.130, 0.097, 1.30, -0.097),
    "ppo": (0.830, 0.150, 0.136, 1.10, -0.237),
    "a2c": (0.600, 0.114, 0.104, 1.12, -0.102),
    "ddpg": (0.548, 0.105, 0.123, 0.87, -0.148),
    "min_variance": (0.317, 0.065, 0.178, 0.45, -0.343),
    "index": (0.386, 0.078, 0.201, 0.47, -0.371),
}
BASELINES = ("equal_weight_buy_hold", "min_variance", "index")


METRIC_COLUMNS = tuple(common.Metric(key, label, ".1%" if kind == "pct" else ".2f")
                       for key, label, kind in METRICS)


def table_rows(frames: dict) -> pd.DataFrame:
    """One row per (strategy, seed): the five statistics of the paper's Table II."""
    rows = []
    for name in ("ensemble", "ppo", "a2c", "ddpg", *BASELINES):
        for k, f in enumerate(frames.get(name, [])):
            s = stats(f)
            rows.append({"strategy": name, "seed": k, **{m: float(s[m]) for m, _, _ in METRICS}})
    return pd.DataFrame(rows)


def comparison(per_seed: pd.DataFrame) -> pd.DataFrame:
    """Our table (median over seeds, range) beside the paper's Table II (`common.comparison_frame`)."""
    rows = []
    for name, g in per_seed.groupby("strategy", sort=False):
        paper = dict(zip([m for m, _, _ in METRICS], PAPER_TABLE[name], strict=True)) if name in PAPER_TABLE \
            else {}
        rows.append({"strategy": STRATEGY_LABELS.get(name, name),
                     "ours": {m: g[m].to_numpy() for m, _, _ in METRICS}, "paper": paper})
    return common.comparison_frame(rows, ["strategy"], METRIC_COLUMNS)


def quarter_table(records, agents) -> pd.DataFrame:
    """Per quarter: dates, threshold, each agent's validation Sharpe (median over seeds) and picks."""
    rows = []
    for r in records:
        row = {"quarter": r["quarter"], "trade_from": r["trade"][0], "trade_to": r["trade"][1],
               "threshold": r["threshold"], "gate_rule": r["gate_rule"]}
        for a in agents:
            row[f"{a}_val_sharpe"] = float(np.median(r["val_sharpe"][a]))
        for a in agents:
            row[f"{a}_picked"] = sum(p == a for p in r["picks"])
        rows.append(row)
    return pd.DataFrame(rows)


def write_report(config, workdir: pathlib.Path, md, quarters, records, ins, frames, val_returns, seeds,
                 wall) -> pathlib.Path:
    """report.md and report.csv (`common.write_report`), plus table_by_seed.csv, quarters.csv and
    result.json (the quarters' validation Sharpes, picks and thresholds, the overfitting statistics)."""
    agents = tuple(config.yang.agents)
    per_seed = table_rows(frames)
    per_seed.to_csv(workdir / "table_by_seed.csv", index=False, float_format=common.FLOAT_FORMAT,
                    lineterminator="\n")
    frame = comparison(per_seed)
    qt = quarter_table(records, agents)
    qt.to_csv(workdir / "quarters.csv", index=False, float_format=common.FLOAT_FORMAT, lineterminator="\n")
    overfit_lines, held_text, overfit = overfitting_sections(frames, val_returns, seeds, agents)
    y = config.yang
    intro = [f"Run on the bundled sp500-20 ({len(md.symbols)} stocks: {', '.join(md.symbols)}) with the "
             "S&P 500 price index as the index, not on the paper's 30 Dow stocks from Compustat (not "
             "redistributable).",
             "",
             f"Trading {records[0]['trade'][0]} .. {records[-1]['trade'][1]} in {len(records)} quarters of "
             f"{int(y.rebalance)} days; seeds {seeds} (one population per agent and quarter); "
             + ", ".join(f"{a} {int(y.timesteps[a]):,}" for a in agents)
             + " env steps per seed and quarter. Run time on this machine: not part of the report "
             "(result.json's `wall_s`), so report.md is byte-stable too.", ""]
    table = ["## Table II: ours (median over seeds [min, max]) beside the paper's", "",
             common.markdown_table(frame, ["strategy"], METRIC_COLUMNS),
             "Index: ours is the S&P 500 price index, the paper's the DJIA. Equal weight is not in the "
             "paper's table. Baselines are deterministic (one run each) in the agents' env, costs and "
             "gate.", ""]
    head = ["quarter", "trading", "threshold", *[f"{a} val. Sharpe" for a in agents], "picks (seeds)"]
    quarter_lines = ["## Table I: validation Sharpe per quarter (median over seeds) and the picks", "",
                     "| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for r, row in zip(records, qt.to_dict("records"), strict=True):
        picks = ", ".join(f"{a} {row[a + '_picked']}" for a in agents if row[a + "_picked"])
        quarter_lines.append(
            f"| {r['quarter']} | {r['trade'][0]} .. {r['trade'][1]} | {r['threshold']:.1f} "
            f"({r['gate_rule']}) | "
            + " | ".join(f"{row[a + '_val_sharpe']:.3f}" for a in agents) + f" | {picks} |")
    quarter_lines += ["", "The validation Sharpe is the authors': sqrt(4) x mean / std of the daily returns "
                      f"of the {int(y.validation)} validation days. Threshold: the in-sample 90th percentile "
                      f"({ins['q90']:.1f}) where the mean turbulence of the {int(y.validation)} days before "
                      f"the validation window exceeded it, else the in-sample maximum ({ins['max']:.1f}).",
                      ""]
    sections = ["\n".join(intro), "\n".join(table), "\n".join(quarter_lines),
                "\n".join(["## Overfitting of the quarterly selection", "", *overfit_lines, ""]), held_text,
                common.departures_section(DEPARTURES)]
    title = ("Yang, Liu, Zhong & Walid (2020), the ensemble strategy: reproduced on sp500-20, not the "
             "paper's data")
    report = common.write_report(workdir, title, sections, frame)
    result = {"paper": "yang2020", "seeds": seeds, "wall_s": wall, "machine": machine_info(),
              "table_sha256": hashlib.sha256(common.table_csv_bytes(frame)).hexdigest(),
              "in_sample_turbulence": ins, "quarters": records, "overfitting": overfit,
              "config": config.to_dict()}
    (workdir / "result.json").write_text(json.dumps(result, indent=1, default=_json_default))
    return report


def overfitting_sections(frames, val_returns, seeds, agents) -> tuple[list[str], str, dict]:
    """(lines, held-out markdown, statistics). (a) The quarterly selection on the data it was made on: per
    seed, the trials are the agents and the selection itself, each as its stitched validation-window
    returns; DSR and PBO per seed, summarized as median and range over seeds. (b) Held out: every
    (strategy, seed) over the trading period, the chosen trial the median-Sharpe ensemble seed
    (`common.overfitting_section`)."""
    sel = []
    for k in range(len(seeds)):
        r = np.stack([val_returns[a][k] for a in agents] + [val_returns["selection"][k]], axis=1)
        sel.append(overfitting.trial_summary(r, len(agents), 252.0, names=[*agents, "selection"], n_splits=8))
    cols, labels = [], []
    for name in ("ensemble", *agents):
        for k, f in enumerate(frames[name]):
            v = f["value"].to_numpy()
            cols.append(np.diff(v) / v[:-1])
            labels.append(f"{name} seed {k}")
    sharpes = [overfitting.sharpe_moments(c).sr for c in cols[:len(seeds)]]
    chosen = int(np.argsort(sharpes, kind="stable")[len(sharpes) // 2])
    held_text, held = common.overfitting_section(
        np.stack(cols, axis=1), labels, periods_per_year=252.0, chosen=chosen,
        title="Overfitting, held out: every strategy and seed over the trading period")
    summary = {key: common.seed_summary([np.nan if s[key] is None else s[key] for s in sel])
               for key in ("dsr", "pbo", "sharpe_annual")}
    f = lambda d: ("n/a" if not math.isfinite(d["median"])
                   else f"{d['median']:.3f} [{d['min']:.3f}, {d['max']:.3f}]")
    lines = [f"Per seed, the trials are {', '.join(agents)} and the selection (the picked agent each "
             "quarter), "
             "each as its daily returns on the stitched validation windows the picks were made on "
             f"({len(agents) + 1} trials, {len(val_returns['selection'][0])} days); median [min, max] over "
             f"{len(seeds)} seeds:", "",
             f"- deflated Sharpe of the selection: {f(summary['dsr'])}",
             f"- probability of backtest overfitting (CSCV, 8 groups): {f(summary['pbo'])}",
             f"- the selection's annualized Sharpe on those windows: {f(summary['sharpe_annual'])}"]
    return lines, held_text, {"selection_by_seed": sel, "selection_summary": summary, "held_out": held}


def _json_default(x):
    if isinstance(x, np.generic):
        return x.item()
    if isinstance(x, np.ndarray):
        return x.tolist()
    return str(x)


DEPARTURES = (
    "Data: the bundled sp500-20 (20 large US stocks, survivors to 2022, dividend-adjusted closes) instead "
    "of the 30 Dow Jones stocks from Compustat, which cannot be shipped; the index row is the S&P 500 price "
    "index (no dividends) instead of the DJIA.",
    "Indicators: the data has closes only, so CCI and ADX are the close-only variants of "
    "`jaxtrade.data.features` (high = low = close); MACD is divided by the close (scale-free), and all four "
    "are z-scored with statistics of the in-sample period 2009-01-01 .. 2015-09-30 (the authors feed them "
    "raw).",
    "State: the book enters as value weights (holdings' shares of the account and cash), not as the raw "
    "balance, prices and share counts (price levels of adjusted data encode later corporate actions).",
    "Timing: the agent sees the indicators of the day before and trades at the day's close (the authors' "
    "agent sees the close it trades at).",
    "Buys: the cash check includes the 0.1% commission and buys whole shares when cash binds (the authors "
    "check cash // price without the fee, so their cash can go slightly negative); orders themselves are "
    "fractional, as theirs.",
    "Turbulence: the index of Kritzman & Li on daily log returns over a trailing 252-day window (the "
    "authors' code uses price levels against all earlier history); the threshold rule (in-sample 90th "
    "percentile or maximum by the previous quarter's mean) is theirs.",
    "Training: random-start episodes of env.episode_length days on the growing window (the authors run "
    "each episode over the whole window); our PPO, A2C and DDPG (jaxtrade.agents, two 64-unit MLP layers "
    "like Stable-Baselines' MlpPolicy) with our hyperparameters (experiments/configs/papers/yang2020.py), "
    "not Stable-Baselines 2's; the authors' budgets per quarter (yang.timesteps: 100k PPO, 30k A2C, 10k "
    "DDPG env steps).",
    "Seeds: every agent is trained with several seeds and the pick is made per seed; the paper reports "
    "one run.",
    "Minimum variance: long-only, Ledoit-Wolf covariance of 252 days, rebalanced monthly in the same env "
    "and gate (the paper does not state its rebalancing); equal weight is added by us.",
    "Sharpe in the tables: annualized with sqrt(252), no risk-free rate; the validation Sharpe that "
    "picks keeps the authors' sqrt(4) scale (the pick is the same under either).",
)

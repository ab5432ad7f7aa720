"""Théate & Ernst (2021), "An Application of Deep Reinforcement Learning to Algorithmic Trading" (TDQN),
Expert Systems with Applications 173, 114632 (arXiv 2004.06627): the protocol, by seed.

1. Data: the authors' 30 files (`jaxtrade.data.tdqn2021`), Close adjusted beside unadjusted Open/High/Low
   kept as published (named option, rows counted in the report), holiday zeros interpolated as their
   tradingEnv.py does. Training 2012 .. `train_end` (2017-12-31); test = the test file's rows, whose first
   `window` (30) rows are only observed, as in their test env (which starts at t = stateLength); trading
   starts on the 31st row of 2018.
2. Env: `single` with the "long_short" action layout (0 all-in short, 1 all-in long, their margin rule
   for shorts), $100,000, 0.1% of traded value per trade (`costs.commission_bps` 10, nothing else), no
   turbulence gate, window 30. Observation: our causal features (z-scored on the training split only)
   and the position; reward: the log change of value (DESIGN's contract).
3. Baselines in the same env: buy and hold (always 1), sell and hold (always 0), trend following and
   mean reversion (moving averages, `jaxtrade.eval.rules`) with (short, long) tuned on the training split
   over their grid (406 pairs) by their criterion, the Sharpe ratio; the 406 training-return series are
   the trial ledger of the overfitting section (DSR, PBO by CSCV). The baselines and their tuning run in
   float64 (`jax.enable_x64`, `common.float64_env`, as yang2020's): their books agree with a plain float64
   ledger to the cent; the agents train and test in float32.
4. Agents (`config.agents`, by `agents.registry` name): every seed of one agent on one instrument is one
   population (`init_seeds`, one compile); the training split of every instrument is padded to the same
   rows, so one compile per agent serves all 30 instruments. Each seed's greedy policy is backtested once
   on the test split.
5. Table: per instrument and strategy, the Sharpe ratio by the paper's convention (sqrt(252) mean / std of
   the simple daily returns, rf 0, the 30 observed-only rows counted as zero returns, as their
   tradingPerformance.py does on their test env) with the paper's value beside it where known, our Sharpe
   (traded rows only), annualized return (CAGR), volatility, max drawdown and profitability (their
   definition: share of trades, position change to position change plus the last open one, that did not
   lose); agents as median [min, max] over seeds.
"""

from __future__ import annotations

import json
import logging
import math
import pathlib
import time

import jax
import ml_collections
import numpy as np

from jaxtrade import envs
from jaxtrade.agents import registry as agents
from jaxtrade.data.envdata import pad_rows
from jaxtrade.data.preprocess import fit_split
from jaxtrade.data.tdqn2021 import load_tdqn2021
from jaxtrade.envs.fixed_policies import action_schedule_policy, constant_policy
from jaxtrade.eval import rules
from jaxtrade.eval.backtest import backtest_many
from jaxtrade.eval.stats import stats
from jaxtrade.pipeline.papers import common
from jaxtrade.pipeline.papers import tdqn2021_paper as published
from jaxtrade.train.artifact import machine_info
from jaxtrade.train.config import base_config, env_config

log = logging.getLogger("jaxtrade")

METRICS = (
    common.Metric("sharpe_paper_convention", "Sharpe (paper conv.)", ".3f"),
    common.Metric("sharpe", "Sharpe (ours)"),
    common.Metric("annual_return_paper_convention", "Ann. return (paper conv.)", ".1%"),
    common.Metric("annual_return", "CAGR (ours)", ".1%"),
    common.Metric("annual_volatility_paper_convention", "Ann. vol. (paper conv.)", ".1%"),
    common.Metric("max_drawdown_paper_convention", "Max DD (paper conv.)", ".1%"),
    common.Metric("max_drawdown", "Max DD (ours)", ".1%"),
    common.Metric("profitability", "Profitability", ".0%"),
)
KEYS = ("instrument", "strategy")
BASELINES = ("B&H", "S&H", "TF", "MR")

# Which published strategy a row of ours stands beside: the baselines their own, our DQN the paper's TDQN
# (the paper's algorithm family); PPO and A2C have no published counterpart.
PAPER_STRATEGY = {"B&H": "B&H", "S&H": "S&H", "TF": "TF", "MR": "MR", "DQN": "TDQN"}


def paper_sharpe(values, observed_rows: int) -> float:
    """The paper's Sharpe: sqrt(252) mean / std (ddof=1) of the simple daily returns with `observed_rows`
    zero returns first (their test env's rows before t = stateLength); 0 when mean or std is 0."""
    v = np.asarray(values, np.float64)
    r = np.concatenate([np.zeros(observed_rows), v[1:] / v[:-1] - 1.0])
    mean, sd = r.mean(), r.std(ddof=1)
    return 0.0 if mean == 0 or sd == 0 else float(math.sqrt(252.0) * mean / sd)


def profitability(values, actions) -> float:
    """Their tradingPerformance.computeProfitability as a fraction: the value change between successive
    position changes, plus the last open trade's, counted as a win when >= 0. NaN without a trade."""
    v, a = np.asarray(values, np.float64), np.asarray(actions)
    changes = [0] + [i for i in range(1, len(a)) if a[i] != a[i - 1]]
    if not len(a):
        return math.nan
    marks = [v[i] for i in changes] + [v[-1]]
    deltas = np.diff(marks)
    return float(np.mean(deltas >= 0)) if deltas.size else math.nan


def paper_returns(values, observed_rows: int, days: int) -> tuple[float, float]:
    """Their annualized return and volatility (tradingPerformance.py): (1 + sum of the simple daily
    returns)^(365 / calendar days of the test file) - 1 (-1 when the sum is <= -1), and sqrt(252) x
    std (ddof=1) of the daily returns with the `observed_rows` zeros."""
    v = np.asarray(values, np.float64)
    r = np.concatenate([np.zeros(observed_rows), v[1:] / v[:-1] - 1.0])
    total = r.sum()
    annual = (1.0 + total) ** (365.0 / days) - 1.0 if total > -1 else -1.0
    return float(annual), float(math.sqrt(252.0) * r.std(ddof=1))


def paper_max_drawdown(values) -> float:
    """Their computeMaxDrawdown as a negative fraction: the relative size of the largest drawdown in
    money (argmax of running peak - value), which can be smaller than the largest relative drawdown."""
    v = np.asarray(values, np.float64)
    through = int(np.argmax(np.maximum.accumulate(v) - v))
    if through == 0:
        return 0.0
    peak = int(np.argmax(v[:through]))
    return float(-(v[peak] - v[through]) / v[peak])


def frame_metrics(frame, observed_rows: int, days: int) -> dict:
    """The table's metrics of one test backtest; `days`: calendar days from the test file's first to its
    last row (their annualization)."""
    s = stats(frame, periods_per_year=252.0)
    annual, vol = paper_returns(frame["value"], observed_rows, days)
    return {"sharpe_paper_convention": paper_sharpe(frame["value"], observed_rows), "sharpe": s["sharpe"],
            "annual_return_paper_convention": annual, "annual_return": s["annual_return"],
            "annual_volatility_paper_convention": vol,
            "max_drawdown_paper_convention": paper_max_drawdown(frame["value"]),
            "max_drawdown": s["max_drawdown"],
            "profitability": profitability(frame["value"].to_numpy()[:-1], frame["action"].to_numpy()[:-1])}


def env_settings(config) -> dict:
    """The env config of the protocol (plain dict for `envs.make`)."""
    return env_config(
        "single", action_space="long_short", window=int(config.window),
        episode_length=int(config.episode_length),
        initial_cash=float(config.initial_cash), turbulence_threshold=float("inf"),
        short_margin=float(config.short_margin), ruin_floor=0.0,
        costs=dict(commission_bps=float(config.commission_bps), spread_bps=0.0, slippage_bps=0.0,
                   impact_model="none", regulatory_fees="none")).to_dict()


def prepare(symbol: str, config) -> dict:
    """Data, splits and envs of one instrument: train env (random starts), train and test envs over the
    whole split (backtests), the quirk counts for the report."""
    data = load_tdqn2021(symbol)
    md, w = data.market, int(config.window)
    test_rows = np.flatnonzero((md.dates >= config.test[0]) & (md.dates <= config.test[1]))
    if test_rows.size <= w + 1:
        raise ValueError(f"tdqn2021 {symbol}: {test_rows.size} test rows, need more than the window {w}")
    test_start = md.dates[test_rows[w]]          # their test env trades from row `window` of the test file
    test_end = md.dates[test_rows[-1]]          # the data's last test row (some files end before the 31st)
    _, splits = fit_split(md, train=(None, config.train_end),
                          test=(str(test_start.date()), str(test_end.date())), lookback=w)
    cfg = env_settings(config)
    env, train_params = envs.make("single", splits.train.to_device(), cfg)
    resolved = envs.resolve_config("single", cfg, train_params)
    test_env, test_params = envs.make("single", splits.test.to_device(), dict(resolved, random_start=False))
    return dict(symbol=symbol, data=data, splits=splits, env=env, resolved=resolved,
                train_rows=splits.train.n_rows, test=(test_env, test_params))


def _steps(split) -> int:
    return split.n_rows - 1 - split.start


def baseline_backtests(policies, inst: dict, split: str = "test") -> list:
    """[frame] of fixed `policies` over the whole `split` ("train" or "test") of instrument `inst`, in the
    agents' env and costs but in float64 (`common.float64_env`): the baselines' books agree with a plain
    float64 ledger to the cent (the test's pandas ledger)."""
    sp = getattr(inst["splits"], split)
    with common.float64_env("single", sp, dict(inst["resolved"], random_start=False)) as (env, params):
        return backtest_many(policies, env, params, dates=sp.dates if split == "test" else None)


def run_baselines(inst: dict, config) -> tuple[dict, dict]:
    """{strategy: test frame} of the four baselines and {rule: ledger} of the tuned ones (training Sharpes
    of every grid pair, the chosen pair, the [T, 406] training returns); every backtest in float64
    (`baseline_backtests`)."""
    sp = inst["splits"]
    out = {"B&H": constant_policy(1), "S&H": constant_policy(0)}
    ledgers = {}
    grid = rules.ma_grid(int(config.ma_bounds[0]), int(config.ma_bounds[1]))
    max_w = max(lg for _, lg in grid)
    tr_means = rules.moving_averages(sp.train.close[:, 0], sp.train.start, _steps(sp.train), max_w)
    te_means = rules.moving_averages(sp.test.close[:, 0], sp.test.start, _steps(sp.test), max_w)
    for name, rule in (("TF", "trend"), ("MR", "mean_reversion")):
        policies = [action_schedule_policy(rules.ma_actions(tr_means, s, lg, rule)) for s, lg in grid]
        frames = baseline_backtests(policies, inst, "train")
        sharpes = [paper_sharpe(f["value"], int(config.window)) for f in frames]
        best = int(np.argmax(sharpes))            # first best in their loop order, as their `>` keeps it
        returns = np.stack([_returns(f) for f in frames], 1)
        ledgers[name] = {"pairs": grid, "chosen": best, "returns": returns, "train_sharpes": sharpes}
        out[name] = action_schedule_policy(rules.ma_actions(te_means, *grid[best], rule))
    frames = baseline_backtests([out[k] for k in BASELINES], inst, "test")
    return dict(zip(BASELINES, frames, strict=True)), ledgers


def agent_config(config, name: str) -> ml_collections.ConfigDict:
    """The experiment config one agent is made from: base defaults, the protocol's env, model and
    `config.agent_overrides[name]`."""
    cfg = base_config()
    cfg.agent.name = name
    cfg.env = ml_collections.ConfigDict(env_settings(config))
    cfg.model.update(config.model.to_dict())
    if name in config.agent_overrides:
        cfg[name].update(config.agent_overrides[name].to_dict())
    return cfg


def train_agent(name: str, instruments: list, config, seeds: list[int]) -> dict:
    """{symbol: [test frame per seed]} of agent `name`: per instrument one population of `seeds` on the
    training split padded to the longest instrument's rows (one compile for all), trained
    `config.iterations[name]` iterations, each seed's greedy policy backtested on the test split."""
    rows = max(i["train_rows"] for i in instruments)
    devices = jax.local_devices()[:1]
    padded = {i["symbol"]: pad_rows(i["splits"].train.to_device(), rows) for i in instruments}
    agent = agents.make_agent(agent_config(config, name), instruments[0]["env"])
    iterate = agent.make_population_iteration(devices)
    out = {}
    for inst in instruments:
        _, train_params = envs.make("single", padded[inst["symbol"]], inst["resolved"])
        state = agent.init_seeds(seeds, train_params, devices)
        for _ in range(int(config.iterations[name])):
            state, _ = iterate(state, train_params)
        params = agent.params(state)
        policies = [agent.policy(jax.tree.map(lambda x, k=k: x[k], params)) for k in range(len(seeds))]
        env, test_params = inst["test"]
        out[inst["symbol"]] = backtest_many(policies, env, test_params, dates=inst["splits"].test.dates)
        log.info("tdqn2021 %s %s: %d seeds trained and tested", name, inst["symbol"], len(seeds))
    return out


def _departures(config) -> list[str]:
    return [
        "Reward: the log change of portfolio value from t to t+1 of the position taken at t, net of costs "
        "(jaxtrade's env contract), not their simple return of the day that ends at the trade (tradingEnv.py "
        "credits the action at t with the move from t-1 to t) nor their custom reward on margin buy-backs.",
        "State: our causal features of rows < t (log return, 20-day volatility, momentum, Sharpe, MACD, "
        "RSI, CCI, ADX, z-scored on the training split only) plus the position and cash share, not their "
        "min-max normalized returns, high-low range, close position in [low, high] and volume.",
        "Shares are fractional, sized from the value before the trade (theirs: whole shares, floor(cash / "
        "(price (1 + c)))); all-in long buys as much as cash allows after the 0.1% cost.",
        "Agents: our DQN (double DQN, n-step returns, Polyak target), PPO and A2C at a CPU budget "
        f"({dict(config.iterations)} iterations), not their TDQN (50 episodes on the whole training set "
        "with data augmentation, Adam, batch norm, dropout); training episodes start at random rows "
        f"({config.episode_length} steps).",
        "Training starts on the first row with 33 feature warm-up rows and a 30-row window behind it "
        "(2012-04 for most instruments) rather than on row 30 of the training file (2012-02); TF and MR "
        "are tuned on that same shorter period, which can change the chosen pair (the table shows where "
        "their Sharpe departs from the paper's).",
        "The paper-convention Sharpe counts the 30 observed-only test rows as zero returns, as their code "
        "does; our series has one return fewer (their first traded row's return is the cost alone, ours "
        "folds it into the first day's move).",
        "TF/MR tuning: their grid and criterion (Sharpe on the training period) in our env and accounting; "
        "ties go to the first pair in their loop order.",
        "Paper columns: arXiv 2004.06627v3's Table 6 (Sharpe of all 30 instruments) and Tables 4-5 (AAPL, "
        "TSLA: annualised return and volatility, profitability, max drawdown; percent as fractions); the "
        "journal version was not available to check against. The DQN rows carry the paper's TDQN values "
        "(its Table 6 Sharpe is an expected value over runs; the other TDQN indicators are one typical "
        "run); PPO and A2C have no published counterpart. Every other paper cell is empty: not printed.",
        "Their annualized return is (1 + the sum of daily simple returns)^(365 / calendar days) - 1, not a "
        "compounded rate; both are given (paper conv., and our CAGR on the traded rows). Their volatility "
        "counts the 30 zero rows as the Sharpe does. Their max drawdown is the relative size of the "
        "largest drawdown in money, which can be smaller than the largest relative one (ours); both are "
        "given.",
    ]


def _data_section(instruments: list) -> str:
    lines = ["## Data and its quirks", "",
             "Files as the authors published them (commit 370b0fe). `close_outside_range='adjusted_close'`: "
             "Close kept dividend-adjusted beside unadjusted Open/High/Low (no price is changed); "
             "`holidays='authors'`: zeros -> NaN, linear interpolation (<= 5 rows), ffill, bfill, per file, "
             "as tradingEnv.py.", "",
             "| instrument | rows | close outside [low, high] | cells interpolated | open outside | "
             "overlap dropped |", "| --- | --- | --- | --- | --- | --- |"]
    for i in instruments:
        d = i["data"]
        interp = sum(sum(v.values()) for v in d.interpolated.values())
        lines.append(f"| {i['symbol']} | {len(d.market.dates)} | {sum(d.close_outside_range.values())} | "
                     f"{interp} | {sum(d.open_outside_range.values())} | {sum(d.overlap_dropped.values())} |")
    n_adj = sum(1 for i in instruments if sum(i["data"].close_outside_range.values()))
    lines += ["", f"Close lies outside [low, high] on {n_adj} of {len(instruments)} instruments here."]
    return "\n".join(lines) + "\n"


def _overfitting(ledgers: dict, agent_frames: dict, instruments: list, config) -> str:
    """DSR and PBO of the tuned baselines (406 training trials each) and of the best seed per agent."""
    lines = ["## Overfitting", "",
             "TF and MR choose (short, long) among their grid on the training split: DSR is the deflated "
             "Sharpe of the chosen pair against the best of that many skill-less trials, PBO the probability "
             "of backtest overfitting by CSCV (16 groups) over the trials' training returns (Bailey & "
             "López de Prado). For the agents no choice is made (the table shows the median over seeds); "
             "the DSR column is what reporting the best seed's test Sharpe would be worth.", "",
             "| instrument | strategy | trials | chosen | Sharpe (chosen, annual) | DSR | PBO |",
             "| --- | --- | --- | --- | --- | --- | --- |"]
    ppy = 252.0
    for inst in instruments:
        sym = inst["symbol"]
        for name, led in ledgers[sym].items():
            _, s = common.overfitting_section(led["returns"], [f"{a}/{b}" for a, b in led["pairs"]],
                                              periods_per_year=ppy, chosen=led["chosen"])
            lines.append(f"| {sym} | {name} | {s['n_trials']} | {s['chosen_name']} | "
                         f"{_f(s['sharpe_annual'])} | {_f(s['dsr'], '.3f')} | {_f(s['pbo'])} |")
        for agent, frames in agent_frames.items():
            r = np.stack([_returns(f) for f in frames[sym]], 1)
            _, s = common.overfitting_section(r, [f"seed {k}" for k in range(r.shape[1])],
                                              periods_per_year=ppy, min_trials_for_pbo=4, n_splits=8)
            lines.append(f"| {sym} | {agent.upper()} best seed | {s['n_trials']} | {s['chosen_name']} | "
                         f"{_f(s['sharpe_annual'])} | {_f(s['dsr'], '.3f')} | {_f(s['pbo'])} |")
    return "\n".join(lines) + "\n"


def _published(symbol: str, strategy: str) -> dict:
    paper = PAPER_STRATEGY.get(strategy)
    return dict(published.PUBLISHED.get((symbol, paper), {})) if paper else {}


def _returns(frame) -> np.ndarray:
    v = frame["value"].to_numpy()
    return v[1:] / v[:-1] - 1.0


def _f(x, spec=".2f") -> str:
    return "n/a" if x is None else format(x, spec)


def run(config, workdir) -> pathlib.Path:
    """The whole protocol into `workdir`: report.md, report.csv (the table), timings.json. Returns
    report.md's path."""
    workdir = pathlib.Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    t0 = time.perf_counter()
    seeds = [int(config.seed) + k for k in range(int(config.seeds))]
    instruments = [prepare(s, config) for s in config.instruments]
    t_data = time.perf_counter()
    base, ledgers = {}, {}
    for inst in instruments:
        base[inst["symbol"]], ledgers[inst["symbol"]] = run_baselines(inst, config)
    t_base = time.perf_counter()
    agent_frames, agent_times = {}, {}
    for name in config.agents:
        t = time.perf_counter()
        agent_frames[name] = train_agent(name, instruments, config, seeds)
        agent_times[name] = time.perf_counter() - t
    w = int(config.window)
    rows = []
    for inst in instruments:
        sym = inst["symbol"]
        dates = inst["splits"].test.dates
        days = int((dates[-1] - dates[0]).days)
        for k in BASELINES:
            rows.append({"instrument": sym, "strategy": k, "ours": frame_metrics(base[sym][k], w, days),
                         "paper": _published(sym, k)})
        for name in config.agents:
            per_seed = [frame_metrics(f, w, days) for f in agent_frames[name][sym]]
            rows.append({"instrument": sym, "strategy": name.upper(),
                         "ours": {m.key: [d[m.key] for d in per_seed] for m in METRICS},
                         "paper": _published(sym, name.upper())})
    frame = common.comparison_frame(rows, KEYS, METRICS)
    elapsed = time.perf_counter() - t0
    timings = {"total_s": elapsed, "data_s": t_data - t0, "baselines_s": t_base - t_data,
               "agents_s": agent_times, "instruments": len(instruments), "seeds": len(seeds),
               "machine": machine_info()}   # the table's bytes hold on one machine type (CPU model)
    (workdir / "timings.json").write_text(json.dumps(timings, indent=2, sort_keys=True))
    intro = (f"{len(instruments)} instruments, test {config.test[0]} .. {config.test[1]} (trading from the "
             f"test file's row {w}), ${float(config.initial_cash):,.0f}, "
             f"{float(config.commission_bps) / 100:.1f}% "
             f"of traded value per trade, agents {', '.join(a.upper() for a in config.agents)} with seeds "
             f"{seeds} (median [min, max] over seeds). Sharpe (paper conv.): sqrt(252) mean/std of daily "
             "simple returns, rf 0, with their 30 observed-only zero rows; Sharpe (ours): the same on the "
             "traded rows only. Profitability: their definition. Paper: arXiv 2004.06627v3, Tables 4-6; DQN "
             "rows beside the paper's TDQN; empty paper cells are values the paper does not print, never "
             "guessed. Run time on this machine: not part of the table (timings.json).")
    sections = [intro + "\n", "## Table\n\n" + common.markdown_table(frame, KEYS, METRICS),
                common.departures_section(_departures(config)), _data_section(instruments),
                _overfitting(ledgers, agent_frames, instruments, config)]
    return common.write_report(workdir, "Théate & Ernst (2021), TDQN: our table beside the paper's", sections,
                               frame)

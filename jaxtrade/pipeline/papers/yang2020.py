"""Yang, Liu, Zhong & Walid (2020), "Deep Reinforcement Learning for Automated Stock Trading: An
Ensemble Strategy" (ICAIF 2020): the protocol, run on the bundled sp500-20 (their 30 Dow stocks from
Compustat cannot be shipped).

    report_path = run(config, workdir)     # config: experiments/configs/papers/yang2020.py

1. Data and features: the bundled closes, restricted to `yang.symbols` (all 20 by default). The
   state holds the paper's four indicators per stock (MACD, RSI 14, CCI 20, ADX 14 from
   `jaxtrade.data.features`, close-only variants: the data has no high/low) and the book as weights
   (the env's `state`: holdings' value shares and cash). They are z-scored with statistics fitted on
   the paper's in-sample period (`yang.start` .. `yang.in_sample_end`) only, and that one fit serves
   every later split: no statistic sees a row after 2015-09-30.
2. Environment: the portfolio env's "shares" layout (orders of `hmax` shares, sells first, buys
   largest first within the cash), $1,000,000, 0.1% commission and no other cost, reward
   1e-4 x the change of the account value.
3. Turbulence: the in-sample 90th percentile q90 and maximum of the turbulence index. Each quarter's
   threshold is q90 when the mean turbulence of the `validation` rows before its validation window
   exceeds q90, else the maximum (the authors' rule). Training never gates; validation and trading gate
   with the quarter's threshold (the gate sells everything and buys nothing).
4. Quarters: the trading period `trade_start` .. `trade_end` cut into blocks of `rebalance` rows. For
   block q: train from `start` up to the row before its validation window (a growing window), validate
   on the `validation` rows before the block, trade the block. Every agent of `yang.agents` is trained
   from scratch each quarter as one population of the seeds (one compile per agent: the training
   windows are padded to the last one's length).
5. Pick: per seed, the agent with the best validation Sharpe; ties go to the first of `yang.tie_order`
   (ppo, ddpg, a2c: the authors' PPO if it is >= both, A2C if > both, else DDPG). The validation
   Sharpe is the authors' sqrt(4) x mean / std of daily returns.
6. Trading: one backtest per (strategy, seed) over the whole trading period, holdings carried across
   quarters; the policy switches to the quarter's model on the quarter's first row (`switching_policy`).
   Strategies: the ensemble (the pick), and each agent alone. Baselines in the same env and gate:
   equal weight bought and held, minimum variance (monthly, Ledoit-Wolf over 252 days), and the S&P 500
   price index; the baselines run in float64 (`jax.enable_x64`) so their ledger is exact.
7. Report (`yang2020_report.write_report`: `report.md`, `report.csv`, `table_by_seed.csv`,
   `quarters.csv`, `result.json`; the table by `jaxtrade.pipeline.papers.common`): our table (median
   over seeds and the range) beside Table II, the per-quarter validation Sharpes and picks in Table I's
   layout, the overfitting sections (deflated Sharpe, PBO), the departures, the table CSV's SHA-256.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import pathlib
import time

import jax
import jax.numpy as jnp
import ml_collections
import numpy as np
import pandas as pd
from jax.tree_util import Partial

from jaxtrade import envs
from jaxtrade.agents import devices as devices_lib
from jaxtrade.agents import registry as agent_registry
from jaxtrade.data import load_dataset
from jaxtrade.data.envdata import pad_rows
from jaxtrade.data.preprocess import Preprocessor
from jaxtrade.eval.backtest import backtest_many
from jaxtrade.eval.baselines import baselines
from jaxtrade.pipeline.papers import common
from jaxtrade.pipeline.papers.yang2020_report import BASELINES, write_report

log = logging.getLogger("jaxtrade")

INDICATORS = ("macd", "rsi_14", "cci_20", "adx_14")


# PLAN


@dataclasses.dataclass(frozen=True)
class Quarter:
    """Inclusive row ranges of the data for one quarter, and its turbulence threshold."""

    index: int
    train: tuple[int, int]
    val: tuple[int, int]
    trade: tuple[int, int]
    threshold: float
    gate_rule: str                     # "q90" or "max": which in-sample statistic the threshold is


def _row_at_or_after(dates: pd.DatetimeIndex, date, what: str) -> int:
    i = int(dates.searchsorted(pd.Timestamp(date)))
    if i >= len(dates):
        raise ValueError(f"yang.{what}={date} is after the data's last date {dates[-1].date()}")
    return i


def _row_at_or_before(dates: pd.DatetimeIndex, date, what: str) -> int:
    i = int(dates.searchsorted(pd.Timestamp(date), side="right")) - 1
    if i < 0:
        raise ValueError(f"yang.{what}={date} is before the data's first date {dates[0].date()}")
    return i


def plan_quarters(dates: pd.DatetimeIndex, turbulence: np.ndarray, *, start, in_sample_end, trade_start,
                  trade_end, rebalance: int, validation: int, quantile: float = 0.9) -> tuple[list, dict]:
    """(quarters, in-sample turbulence statistics) for the protocol's dates (module docstring, 3-4).

    turbulence: [T] the data's turbulence index (rows <= t only). The in-sample rows are
    start .. in_sample_end; the statistics never read a later row.
    """
    first = _row_at_or_after(dates, start, "start")
    ins_end = _row_at_or_before(dates, in_sample_end, "in_sample_end")
    lo = _row_at_or_after(dates, trade_start, "trade_start")
    hi = _row_at_or_before(dates, trade_end, "trade_end")
    if not first < ins_end < lo - validation:
        raise ValueError(f"yang: need start < in_sample_end < trade_start - validation rows; got rows "
                         f"{first}, "
                         f"{ins_end}, {lo} - {validation}")
    if hi <= lo:
        raise ValueError(f"yang.trade_end={trade_end} is not after trade_start={trade_start}")
    ins = np.asarray(turbulence[first:ins_end + 1], np.float64)
    if not np.isfinite(ins).all():
        raise ValueError("yang.start is inside the turbulence index's warm-up (NaN turbulence): start later")
    q90, qmax = float(np.quantile(ins, quantile)), float(ins.max())
    quarters = []
    for i, s in enumerate(range(lo, hi + 1, rebalance)):
        v0 = s - validation
        recent = np.asarray(turbulence[max(0, v0 - validation):v0], np.float64)
        high = bool(np.nanmean(recent) > q90)
        quarters.append(Quarter(i, (first, v0 - 1), (v0, s - 1), (s, min(s + rebalance - 1, hi)),
                                q90 if high else qmax, "q90" if high else "max"))
    return quarters, {"quantile": quantile, "q90": q90, "max": qmax, "rows": [first, ins_end]}


# AGENTS


def paper_sharpe(values) -> float:
    """The authors' validation Sharpe: sqrt(4) x mean / std (ddof=1) of the daily simple returns."""
    r = np.diff(np.asarray(values, np.float64)) / np.asarray(values, np.float64)[:-1]
    sd = r.std(ddof=1) if r.size > 1 else 0.0
    return float(2.0 * r.mean() / sd) if sd > 0 else 0.0


def pick(sharpes: dict[str, float], tie_order) -> str:
    """The agent with the maximum validation Sharpe; ties go to the first of `tie_order` among them.

    The authors' rule (PPO if >= both, else A2C if > both, else DDPG) is tie_order (ppo, ddpg, a2c)."""
    best = max(sharpes.values())
    return next(a for a in tie_order if a in sharpes and sharpes[a] == best)


@dataclasses.dataclass(frozen=True)
class _Switch:
    """A policy that plays, at its i-th step, quarter q(i)'s model of the agent chosen for q(i).

    statics[a]: (treedef, is_array, static leaves) of agent a's policy; the array leaves arrive stacked
    on a leading quarter axis [Q, ...]. Hashable by value, so one structure compiles once."""

    statics: tuple

    def init(self, carries):
        return jnp.zeros((), jnp.int32), carries

    def act(self, arrays, choice, bounds, key, carry, obs):
        i, inner = carry
        q = jnp.searchsorted(bounds, i, side="right")
        actions, carries = [], []
        for a, (treedef, is_array, statics) in enumerate(self.statics):
            it, st = iter(arrays[a]), iter(statics)
            leaves = [next(it)[q] if flag else next(st) for flag in is_array]
            pol = jax.tree.unflatten(treedef, leaves)
            action, c = pol.act(key, inner[a], obs)
            actions.append(action.astype(jnp.float32))
            carries.append(c)
        return jnp.stack(actions)[choice[q]], (i + 1, tuple(carries))


def _call_init(switch, carries):
    return switch.init(carries)


def _call_act(switch, arrays, choice, bounds, key, carry, obs):
    return switch.act(arrays, choice, bounds, key, carry, obs)


def switching_policy(policies: list[list], choice, starts) -> envs.Policy:
    """policies[a][q]: agent a's policy for quarter q (one architecture per agent); choice: [Q] the agent
    index each quarter plays; starts: [Q] the step at which each quarter begins (starts[0] = 0)."""
    statics, arrays, carries = [], [], []
    for per_quarter in policies:
        flat = [jax.tree.flatten(p) for p in per_quarter]
        treedef = flat[0][1]
        is_array = tuple(isinstance(x, jax.Array | np.ndarray) for x in flat[0][0])
        static_leaves = tuple(x for x, a in zip(flat[0][0], is_array, strict=True) if not a)
        statics.append((treedef, is_array, static_leaves))
        arrays.append([jnp.stack([leaves[j] for leaves, _ in flat]) for j, a in enumerate(is_array) if a])
        carries.append(per_quarter[0].init())
    switch = _Switch(tuple(statics))
    bounds = jnp.asarray(np.asarray(starts[1:], np.int32))
    return envs.Policy(init=Partial(_call_init, switch, tuple(carries)),
                       act=Partial(_call_act, switch, arrays, jnp.asarray(np.asarray(choice, np.int32)),
                                   bounds))


def _agent_config(config, name: str) -> ml_collections.ConfigDict:
    cfg = ml_collections.ConfigDict(config.to_dict())
    cfg.agent.name = name
    return cfg


# Agents built by earlier runs in this process, by (name, model and agent sections, env): a second run of
# the same protocol (the by-seed check) reuses their compiled iterations instead of compiling again.
_AGENTS: dict = {}


def _agent(config, name: str, env):
    sections = {"model": config.model.to_dict(), name: agent_registry.section(config, name).to_dict()}
    key = (name, json.dumps(sections, sort_keys=True, default=str), env)
    if key not in _AGENTS:
        _AGENTS[key] = agent_registry.make_agent(_agent_config(config, name), env, env_name=config.env.name)
    return _AGENTS[key]


def train_population(agent, env_params, seeds, timesteps: int, devices):
    """Params [K, ...] of the agent trained from scratch for `timesteps` env steps per member."""
    state = agent.init_seeds(seeds, env_params, devices)
    iterate = agent.make_population_iteration(devices)
    per_iter = agent.env_steps_per_iteration(len(devices_lib.pmap_devices(devices)))
    for _ in range(max(1, math.ceil(timesteps / per_iter))):
        state, _ = iterate(state, env_params)
    return jax.device_get(agent.params(state))


# DATA


def _market(config):
    md = load_dataset(config.data.dataset)
    symbols = config.yang.get("symbols")
    if symbols:
        symbols = [s.strip() for s in (symbols.split(",") if isinstance(symbols, str) else symbols)]
        unknown = [s for s in symbols if s not in md.symbols]
        if unknown:
            raise ValueError(f"yang.symbols: {unknown} are not in {config.data.dataset} ({list(md.symbols)})")
        idx = [md.symbols.index(s) for s in symbols]
        md = dataclasses.replace(md, symbols=tuple(symbols), close=md.close[:, idx], _cache={})
    return md


def _indicators(split):
    """The split with the paper's four indicators as its features and no market features."""
    idx = [split.feature_names.index(n) for n in INDICATORS]
    return dataclasses.replace(split, features=split.features[..., idx], feature_names=INDICATORS,
                               market=split.market[:, :0], market_names=())


def _env_config(config, **changes) -> dict:
    cfg = config.env.to_dict()
    cfg.update(changes)
    return cfg


# RUN


def run(config, workdir) -> pathlib.Path:
    """The whole protocol (module docstring); returns the path of `report.md` in `workdir`."""
    t0 = time.perf_counter()
    workdir = pathlib.Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    y = config.yang
    seeds = [int(config.seed) + k for k in range(int(config.seeds))]
    agent_names = tuple(y.agents)
    tie_order = tuple(y.tie_order) + tuple(a for a in agent_names if a not in tuple(y.tie_order))
    md = _market(config)
    feats = md.features()
    quarters, ins = plan_quarters(md.dates, feats.turbulence, start=y.start, in_sample_end=y.in_sample_end,
                                  trade_start=y.trade_start, trade_end=y.trade_end,
                                  rebalance=int(y.rebalance),
                                  validation=int(y.validation), quantile=float(y.turbulence_quantile))
    if y.get("max_quarters"):
        quarters = quarters[:int(y.max_quarters)]
    window = int(config.env.window)
    pre = Preprocessor.fit(md, (md.dates[ins["rows"][0]], md.dates[ins["rows"][1]]), window=window,
                           turbulence_quantile=float(y.turbulence_quantile))
    cut = lambda lo, hi, name: _indicators(pre.transform(md, (md.dates[lo], md.dates[hi]), name=name))
    devices = devices_lib.select_devices(config.train.get("n_devices"))
    longest = max(q.train[1] - q.train[0] + 1 + window for q in quarters)
    train_env_cfg = _env_config(config, turbulence_threshold=math.inf, random_start=True)
    val_env_cfg = _env_config(config, random_start=False)

    agents, records = {}, []
    params_by = {a: [] for a in agent_names}             # [Q] of params [K, ...]
    # [K] lists of each quarter's daily validation returns: per agent, and of the agent each seed picked
    val_parts = {a: [[] for _ in seeds] for a in (*agent_names, "selection")}
    for q in quarters:
        tq = time.perf_counter()
        train_data = pad_rows(cut(*q.train, "train").to_device(), longest)
        env, train_params = envs.make(train_env_cfg["name"], train_data, train_env_cfg)
        val_split = cut(*q.val, "val")
        val_env, val_params = envs.make(val_env_cfg["name"], val_split.to_device(),
                                        dict(val_env_cfg, turbulence_threshold=q.threshold))
        sharpes = {}
        for a in agent_names:
            if a not in agents:
                agents[a] = _agent(config, a, env)
            agent = agents[a]
            member_seeds = [s * 1000 + q.index for s in seeds]
            params = train_population(agent, train_params, member_seeds, int(y.timesteps[a]), devices)
            params_by[a].append(params)
            pols = [agent.policy(jax.tree.map(lambda x, k=k: x[k], params)) for k in range(len(seeds))]
            frames = backtest_many(pols, val_env, val_params)
            sharpes[a] = [paper_sharpe(f["value"]) for f in frames]
            for k, f in enumerate(frames):
                v = f["value"].to_numpy()
                val_parts[a][k].append(np.diff(v) / v[:-1])
        picks = [pick({a: sharpes[a][k] for a in agent_names}, tie_order) for k in range(len(seeds))]
        for k, chosen in enumerate(picks):
            val_parts["selection"][k].append(val_parts[chosen][k][-1])
        records.append({"quarter": q.index, "train": _dates(md, q.train), "val": _dates(md, q.val),
                        "trade": _dates(md, q.trade), "threshold": q.threshold, "gate_rule": q.gate_rule,
                        "val_sharpe": sharpes, "picks": picks, "wall_s": time.perf_counter() - tq})
        log.info("yang2020 quarter %d (%s .. %s): picks %s (%.1f s)", q.index, *records[-1]["trade"], picks,
                 records[-1]["wall_s"])

    trade = (quarters[0].trade[0], quarters[-1].trade[1])
    split = _trade_split(cut(*trade, "test"), quarters, trade[0])
    frames = _trade_frames(agents, agent_names, params_by, records, quarters, split, val_env_cfg, len(seeds))
    frames.update(baseline_frames(split, md, trade[0], val_env_cfg, cov_window=int(y.cov_window)))
    val_returns = {a: [np.concatenate(x) for x in v] for a, v in val_parts.items()}
    wall = time.perf_counter() - t0
    return write_report(config, workdir, md, quarters, records, ins, frames, val_returns, seeds, wall)


def _dates(md, rows) -> list[str]:
    return [str(md.dates[rows[0]].date()), str(md.dates[rows[1]].date())]


def _trade_split(split, quarters, first_row: int):
    """The trading split with each row's turbulence divided by the threshold of the quarter that trades
    on the next row, so that the env's one threshold (1.0) applies each quarter's own: the gate at row t
    compares turbulence[t-1], exactly turbulence[t-1] > threshold_q(t)."""
    thr = np.empty(split.n_rows)
    for q in quarters:                  # row r of the split is data row first_row - split.start + r
        lo, hi = q.trade[0] - first_row + split.start, q.trade[1] - first_row + split.start
        thr[lo - 1:hi] = q.threshold
    thr[-1] = quarters[-1].threshold
    return dataclasses.replace(split, turbulence=split.turbulence / thr, turbulence_threshold=1.0)


def _trade_frames(agents, names, params_by, records, quarters, split, env_cfg, n_seeds) -> dict:
    data = split.to_device()
    env, params = envs.make(env_cfg["name"], data, dict(env_cfg, turbulence_threshold=1.0))
    starts = [q.trade[0] - quarters[0].trade[0] for q in quarters]
    per_agent = {a: [[agents[a].policy(jax.tree.map(lambda x, k=k: x[k], p)) for p in params_by[a]]
                     for k in range(n_seeds)] for a in names}
    out = {}
    for a in names:
        pols = [switching_policy([per_agent[a][k]], np.zeros(len(quarters)), starts) for k in range(n_seeds)]
        out[a] = backtest_many(pols, env, params, dates=split.dates, symbols=split.symbols)
    ens = []
    for k in range(n_seeds):
        choice = [names.index(r["picks"][k]) for r in records]
        ens.append(switching_policy([per_agent[a][k] for a in names], choice, starts))
    out["ensemble"] = backtest_many(ens, env, params, dates=split.dates, symbols=split.symbols)
    return out


def baseline_frames(split, md, first_row: int, env_cfg: dict, *, cov_window: int = 252) -> dict:
    """{equal_weight_buy_hold, min_variance, index: [frame]} on the trading split, in the agents' env,
    costs and gate, computed in float64 (`common.float64_env`) from the data's float64 closes."""
    history = md.close[max(0, first_row - split.start - cov_window):first_row - split.start]
    with common.float64_env(env_cfg["name"], split, dict(env_cfg, turbulence_threshold=1.0)) as (env, params):
        frames = baselines(env, params, split, history=history, cov_window=cov_window, include=BASELINES)
    return {k: frames[k] for k in BASELINES if k in frames}

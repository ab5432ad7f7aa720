"""Baselines and multi-policy evaluation, all through the same environment step, costs and split.

Schedule baselines (equal weight buy-and-hold, equal weight monthly, minimum variance) trade to exact
target weights on their rebalance days and do not trade at all on the others. The "weights" action
space has no no-trade action (softmax targets always rebalance the drift away), so they run through
`TargetEnv`: a `market.MarketEnv` like `portfolio` (same reset, trade, cost model and params) whose
action is the target weights [N + 1] plus a keep flag.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from jax.tree_util import Partial

from jaxtrade.envs import market
from jaxtrade.envs.base import ContinuousSpec, Policy
from jaxtrade.envs.options import env as options_env
from jaxtrade.envs.options import strategies
from jaxtrade.envs.single import SingleEnv
from jaxtrade.eval.backtest import backtest, core_env, episode_rows, eval_params
from jaxtrade.eval.minvar import min_variance_schedule, month_starts


class TargetEnv(market.MarketEnv):
    """The portfolio environment driven by exact targets: action [N + 2] = weights [N + 1] (cash last,
    >= 0, sum 1) and a keep flag (> 0.5: no trade, no cost). Long only, cash never borrowed; reset,
    trade, costs, gate and reward are `market.MarketEnv`'s, as for `portfolio`."""

    cash_floor = True

    def __init__(self, n_assets: int, obs_spec=None):
        self.n_assets = n_assets
        self.action_spec = ContinuousSpec((n_assets + 2,), 0.0, 1.0)
        self.obs_spec = obs_spec

    def target(self, action, state, params):
        return action[:self.n_assets], action[-1] > 0.5


def _schedule_act(targets, keep, key, i, obs):
    del obs, key
    action = jnp.concatenate([targets[i], keep[i][None].astype(jnp.float32)])
    return action, i + 1


def _schedule_init():
    return jnp.zeros((), jnp.int32)


def schedule_policy(targets, keep) -> Policy:
    """A `TargetEnv` policy that plays step i's targets [n_steps, N + 1], or no trade where keep[i].

    Its carry is the step count; the arrays are pytree leaves (`Partial`), so new schedules of the
    same shape reuse the compiled backtest."""
    targets = jnp.asarray(targets, jnp.float32)
    keep = jnp.asarray(keep, bool)
    return Policy(init=_schedule_init, act=Partial(_schedule_act, targets, keep))


def _random_act(action_dim, discrete, key, carry, obs):
    if discrete and isinstance(obs, dict) and "action_mask" in obs:    # uniform over the allowed ones
        logits = jnp.where(obs["action_mask"], 0.0, -jnp.inf)
        return jax.random.categorical(key, logits).astype(jnp.int32), carry
    if discrete:
        return jax.random.randint(key, (), 0, action_dim, jnp.int32), carry
    return jax.random.normal(key, (action_dim,), jnp.float32), carry


def _stateless_init():
    return None


def random_policy(env) -> Policy:
    """Uniform random actions of `env`'s action space: a regime index each day (uniform over the
    allowed actions where the observation has an "action_mask"), or N(0, 1) logits."""
    env = core_env(env)
    return Policy(init=_stateless_init, act=Partial(_random_act, env.action_dim, env.discrete))


def _constant_act(action, key, carry, obs):
    del key, obs
    return action, carry


def constant_policy(action) -> Policy:
    """The same discrete action every step (`single`: hold one target position)."""
    return Policy(init=_stateless_init, act=Partial(_constant_act, jnp.asarray(action, jnp.int32)))


def _first_then_act(first, then, key, i, obs):
    del key, obs
    return jnp.where(i == 0, first, then), i + 1


def first_then_policy(first, then) -> Policy:
    """Action `first` at the first step, `then` at every later one (carry: the step count)."""
    return Policy(init=_schedule_init, act=Partial(_first_then_act, jnp.asarray(first), jnp.asarray(then)))


def _when_allowed_act(action, only_when_flat, key, carry, obs):
    del key
    ok = obs["action_mask"][action]
    if only_when_flat:
        ok = ok & (obs["state"][options_env.STATE_N_OPEN] == 0)
    return jnp.where(ok, action, 0).astype(jnp.int32), carry


def when_allowed_policy(action: int, *, only_when_flat: bool = False) -> Policy:
    """Options env: `action` whenever the mask allows it (and, only_when_flat, no slot is open), else
    hold."""
    return Policy(init=_stateless_init, act=Partial(_when_allowed_act, jnp.int32(action), only_when_flat))


# The options baselines: name -> (action or None for hold, only when flat, param changes).
def options_baseline_specs() -> dict:
    """The options env's baselines (CBOE methodology, through the env's chain, fills and fees):
    cash (no shares, hold), underlying_buy_hold (all in the underlying, hold), bxm (all in the
    underlying, an at-the-money 28-day call sold against it whenever it is uncovered: BXM's
    covered call, rolled when the env force-closes it at <= force_close_dte days instead of at the
    monthly expiry), put (no shares, an at-the-money 28-day cash-secured put sold whenever no
    position is open, sized to the whole NAV as collateral: CBOE PUT; the collateral earns no
    interest here, unlike PUT's T-bills)."""
    t = strategies.numpy_table("full")
    atm = lambda fam: int(np.flatnonzero((t.family == fam) & (t.strike_offset[:, 0] == 0))[0])
    return {"cash": (None, False, dict(stock_weight=0.0)),
            "underlying_buy_hold": (None, False, dict(stock_weight=1.0)),
            "bxm": (atm(strategies.COVERED_CALL), False, dict(stock_weight=1.0)),
            "put": (atm(strategies.CASH_SECURED_PUT), True, dict(stock_weight=0.0, collateral_fraction=1.0))}


def constant_policies(env, params) -> dict[str, Policy]:
    """The constant policies of `env`'s own action space, the bar an agent must clear in sample:

    - `portfolio` regimes: for each regime k but HOLD, "choose k on the first day and hold"
      (`regime_<NAME>`: action k at the first step, HOLD after);
    - `portfolio` weights: a coarse grid of fixed weight vectors, rebalanced every step: all in one
      asset (`asset_<i>`), equal weight over the assets (`equal_weight`), all cash (`cash`);
    - `single`: each position held from the first step (`position_<p>`);
    - `options` (full layout): hold, and each family's at-the-money 28-day single-leg action taken
      whenever allowed (`always_<family>`).
    """
    from jaxtrade.envs.portfolio import REGIMES, PortfolioEnv, Regime

    core = core_env(env)
    if isinstance(core, options_env.OptionsEnv):
        out = {"hold": constant_policy(0)}
        if params.table.layout == "full":
            t = strategies.numpy_table("full")
            for fam in (strategies.BUY_CALL, strategies.BUY_PUT, strategies.COVERED_CALL,
                        strategies.CASH_SECURED_PUT):
                a = int(np.flatnonzero((t.family == fam) & (t.strike_offset[:, 0] == 0))[0])
                out[f"always_{strategies.FAMILIES[fam]}"] = when_allowed_policy(a)
        return out
    if isinstance(core, SingleEnv):
        positions = np.asarray(params.positions)
        return {f"position_{float(p):+g}": constant_policy(k) for k, p in enumerate(positions)}
    if not isinstance(core, PortfolioEnv):
        raise ValueError(f"constant_policies: no constant policy set for {type(core).__name__}")
    if core.action_space == "regimes":
        return {f"regime_{name}": first_then_policy(jnp.int32(k), jnp.int32(Regime.HOLD))
                for k, name in enumerate(REGIMES) if k != Regime.HOLD}
    n = params.data.n_assets
    big = 30.0                                   # softmax of +-30 logits: weights 1 and ~1e-26

    def fixed(weights):
        logits = jnp.where(jnp.asarray(weights) > 0, big, -big).astype(jnp.float32)
        return Policy(init=_stateless_init, act=Partial(_constant_act, logits))

    out = {f"asset_{i}": fixed(np.eye(n + 1)[i]) for i in range(n)}
    out["equal_weight"] = fixed(np.r_[np.ones(n), 0.0])
    out["cash"] = fixed(np.eye(n + 1)[n])
    return out


# The single-instrument baselines: name -> the signed position they hold from the first step on.
SINGLE_POSITIONS = {"long_buy_hold": 1.0, "flat": 0.0, "short": -1.0}


def _split_info(split, params):
    n_rows = params.data.n_rows
    dates = getattr(split, "dates", None)
    if dates is not None and len(dates) != n_rows:
        raise ValueError(f"split has {len(dates)} dates, params.data {n_rows} rows: not the same split")
    return dates, getattr(split, "symbols", None)


def evaluate_policies(policies: dict, env, params, split=None, *, key=None) -> dict[str, list[pd.DataFrame]]:
    """{name: Policy or [Policy per seed]} -> {name: [backtest frame per seed]} on the split in `params`.

    split: the host `Split` behind `params.data` (for dates and symbol names); None: row numbers.
    Every policy and seed sees the same environment randomness (`key`, default `jax.random.key(0)`).
    """
    dates, symbols = _split_info(split, params)
    out = {}
    for name, pol in policies.items():
        pols = list(pol) if isinstance(pol, list | tuple) and not isinstance(pol, Policy) else [pol]
        out[name] = [backtest(p, env, params, dates=dates, symbols=symbols, key=key) for p in pols]
    return out


def baselines(env, params, split=None, *, history=None, n_random_seeds: int = 5, gate: bool = False,
              cov_window: int = 252, key=None, include=None) -> dict[str, list[pd.DataFrame]]:
    """The baseline frames on the split in `params` ({name: [frame per seed]}, names as `BASELINE_NAMES`).

    equal_weight_buy_hold: 1/N of the value in each asset on the first day, then no trade.
    equal_weight_monthly: back to 1/N on the first trading day of every month, no trade otherwise.
    index: the split's benchmark close scaled to the initial cash (a value series only: no costs,
        no weights); only where `split.benchmark` exists.
    min_variance: long-only minimum-variance weights on the same monthly days, from a Ledoit-Wolf
        covariance of the `cov_window` daily log returns strictly before each rebalance day
        (`min_variance_schedule`). history: optional closes [H, N] of the rows right before the
        split (e.g. the training and validation years), so early rebalances have a full window.
    random: `random_policy(env)` in `env`'s own action space, `n_random_seeds` seeds.
    gate: False (default) switches the turbulence gate off (threshold +inf) for every baseline: a
        gated buy-and-hold would not be buy-and-hold. Costs and everything else are `params`'.
    include: names to run (default all).

    A single-instrument env (`single`) gets its own baselines instead of the equal-weight and
    minimum-variance ones, which would all be the same long position: long_buy_hold (+1 from the
    first step, never traded again), flat (0: cash), short (-1 held; only where env.positions has
    -1), index, random.
    """
    params = eval_params(params)
    if not gate:
        params = params.replace(turbulence_threshold=jnp.asarray(jnp.inf, jnp.float32))
    dates, symbols = _split_info(split, params)
    include = set(include) if include is not None else None
    want = lambda name: include is None or name in include
    out = {}
    if isinstance(core_env(env), options_env.OptionsEnv):
        for name, (action, flat, changes) in options_baseline_specs().items():
            if want(name):
                pol = (constant_policy(0) if action is None
                       else when_allowed_policy(action, only_when_flat=flat))
                p = params.replace(**{k: jnp.asarray(v, jnp.float32) for k, v in changes.items()})
                out[name] = [backtest(pol, env, p, dates=dates, symbols=symbols, key=key)]
        _index_and_random(out, want, env, params, split, dates, symbols, n_random_seeds, key)
        return out
    if isinstance(core_env(env), SingleEnv):
        positions = [float(p) for p in np.asarray(params.positions)]
        for name, pos in SINGLE_POSITIONS.items():
            if want(name) and pos in positions:
                out[name] = [backtest(constant_policy(positions.index(pos)), env, params, dates=dates,
                                      symbols=symbols, key=key)]
        _index_and_random(out, want, env, params, split, dates, symbols, n_random_seeds, key)
        return out
    start, end = episode_rows(params)
    n = params.data.n_assets
    n_steps = end - start
    target_env = TargetEnv(n, market.obs_spec(params))
    run = lambda pol, k=key: backtest(pol, target_env, params, dates=dates, symbols=symbols, key=k)
    equal = np.concatenate([np.full(n, 1.0 / n), [0.0]])
    rows = (month_starts(pd.DatetimeIndex(dates), start) if dates is not None
            else np.arange(start, end, 21))
    rows = rows[rows < end]                       # the last row has no trade
    monthly = np.zeros(n_steps, bool)
    monthly[rows - start] = True
    if want("equal_weight_buy_hold"):
        first = np.zeros(n_steps, bool)
        first[0] = True
        out["equal_weight_buy_hold"] = [run(schedule_policy(np.tile(equal, (n_steps, 1)), ~first))]
    if want("equal_weight_monthly"):
        out["equal_weight_monthly"] = [run(schedule_policy(np.tile(equal, (n_steps, 1)), ~monthly))]
    if want("min_variance"):
        close = np.asarray(getattr(split, "close", None) if split is not None else params.data.close,
                           np.float64)
        h = 0
        if history is not None:
            history = np.asarray(history, np.float64)
            h = len(history)
            close = np.concatenate([history, close])
        weights = min_variance_schedule(close, rows + h, window=cov_window)
        targets = np.tile(equal, (n_steps, 1))
        # Hold each rebalance's weights until the next one (only rebalance rows trade: keep elsewhere).
        idx = np.searchsorted(rows, np.arange(start, end), side="right") - 1
        targets[:, :n] = weights[np.maximum(idx, 0)]
        targets[:, n] = 0.0
        out["min_variance"] = [run(schedule_policy(targets, ~monthly))]
    _index_and_random(out, want, env, params, split, dates, symbols, n_random_seeds, key)
    return out


def _index_and_random(out, want, env, params, split, dates, symbols, n_random_seeds, key):
    """Adds the "index" (where the split has a benchmark) and "random" baselines to `out`."""
    start, end = episode_rows(params)
    bench = getattr(split, "benchmark", None)
    if want("index") and bench is not None:
        b = np.asarray(bench, np.float64)[start:end + 1]
        v0 = float(params.initial_cash)
        index = pd.Index(list(dates)[start:end + 1], name="date")
        frame = pd.DataFrame({"value": v0 * b / b[0]}, index=index)
        frame.attrs.update(periods_per_year=float(params.data.periods_per_year), initial_value=v0,
                           label=getattr(split, "benchmark_name", None) or "index")
        out["index"] = [frame]
    if want("random"):
        pol = random_policy(env)
        out["random"] = [backtest(pol, env, params, dates=dates, symbols=symbols,
                                  key=jax.random.key(1000 + s)) for s in range(n_random_seeds)]

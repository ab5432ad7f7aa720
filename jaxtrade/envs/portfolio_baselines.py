"""What the `portfolio` registration knows beyond its step: its baselines, its constant rules, its hold
action and its cost sentence (`jaxtrade.envs.registry`, point 4). `eval.baselines` runs them.

Schedule baselines (equal weight buy-and-hold, equal weight monthly, minimum variance) trade to exact
target weights on their rebalance days and do not trade at all on the others. The "weights" action
space has no no-trade action (softmax targets always rebalance the drift away), so they run through
`TargetEnv`: a `market.MarketEnv` like `portfolio` (same reset, trade, cost model and params) whose
action is the target weights [N + 1] plus a keep flag.
"""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
import pandas as pd
from jax.tree_util import Partial

from jaxtrade.envs import costs as costs_lib
from jaxtrade.envs import lots as lots_lib
from jaxtrade.envs import market
from jaxtrade.envs.base import ContinuousSpec, Policy
from jaxtrade.envs.fixed_policies import enter_then_policy, schedule_policy, stateless_init
from jaxtrade.envs.minvar import min_variance_schedule, month_starts
from jaxtrade.envs.portfolio import REGIMES, Regime


class TargetEnv(market.MarketEnv):
    """The portfolio environment driven by exact targets: action [N + 2] = weights [N + 1] (cash last,
    >= 0, sum 1) and a keep flag (> 0.5: no trade, no cost). Long only, cash never borrowed; reset,
    trade, costs, gate and reward are `market.MarketEnv`'s, as for `portfolio`.

    The turbulence gate acts on these baselines as on the agent (every row of a report lives in the
    agent's world): on a gated day the book goes to cash. A keep flag on a book the gate emptied
    re-buys the action's weights once the gate lifts (a buy-and-hold investor who was forced out gets
    back in, as the agent can), so a gated buy-and-hold is not frozen in cash for the rest of the split."""

    cash_floor = True

    def __init__(self, n_assets: int, obs_spec=None):
        self.n_assets = n_assets
        self.action_spec = ContinuousSpec((n_assets + 2,), 0.0, 1.0)
        self.obs_spec = obs_spec

    def target(self, action, state, params):
        emptied = jnp.sum(state.target) <= 0.0        # after reset or a gated day: nothing to keep
        return action[:self.n_assets], (action[-1] > 0.5) & ~emptied


def market_history_rows(config: dict, has_volume: bool) -> int:
    """The window, and the ADV window where the square-root impact law reads volume (the impact model
    left None is chosen from the data: sqrt_adv where it has volume)."""
    costs = config.get("costs", {})
    model = costs.get("impact_model") or ("sqrt_adv" if has_volume else "none")
    window = int(config.get("window", 1))
    if model == "sqrt_adv":
        return max(window, int(costs.get("adv_window", 30)))
    return window


def market_describe_costs(params) -> str:
    lot = lots_lib.describe(params.lots) if hasattr(params, "lots") else ""
    return costs_lib.describe(params.costs) + (f"; {lot}" if lot else "")


def all_symbols(config: dict, symbols) -> tuple:
    return tuple(symbols)


def baselines(env, params, split=None, *, history=None, cov_window: int = 252) -> dict:
    """{name: (policy, env, params)}: equal_weight_buy_hold (1/N on the first day, then no trade),
    equal_weight_monthly (back to 1/N on the first trading day of every month), min_variance (long-only
    minimum-variance weights on the same monthly days, from a Ledoit-Wolf covariance of the
    `cov_window` daily log returns strictly before each rebalance day; history: closes [H, N] of the
    rows right before the split, so early rebalances have a full window)."""
    start, end = int(params.data.start), int(params.data.n_rows - 1)
    n = params.data.n_assets
    n_steps = end - start
    target_env = TargetEnv(n, market.obs_spec(params))
    dates = getattr(split, "dates", None)
    equal = np.concatenate([np.full(n, 1.0 / n), [0.0]])
    rows = (month_starts(pd.DatetimeIndex(dates), start) if dates is not None
            else np.arange(start, end, 21))
    rows = rows[rows < end]                       # the last row has no trade
    monthly = np.zeros(n_steps, bool)
    monthly[rows - start] = True
    first = np.zeros(n_steps, bool)
    first[0] = True
    equal_targets = np.tile(equal, (n_steps, 1))
    out = {"equal_weight_buy_hold": (schedule_policy(equal_targets, ~first), target_env, params),
           "equal_weight_monthly": (schedule_policy(equal_targets, ~monthly), target_env, params)}
    close = np.asarray(getattr(split, "close", None) if split is not None else params.data.close, np.float64)
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
    out["min_variance"] = (schedule_policy(targets, ~monthly), target_env, params)
    return out


def _fixed_act(logits, key, carry, obs):
    del key, obs
    return logits, carry


def constant_policies(env, params) -> dict[str, Policy]:
    """regimes: for each regime k but HOLD, "choose k on the first day and hold" (`regime_<NAME>`; it
    chooses k again the day after the turbulence gate emptied the book, as TargetEnv's baselines do);
    weights: a coarse grid of fixed weight vectors, rebalanced every step: all in one asset
    (`asset_<i>`), equal weight over the assets (`equal_weight`), all cash (`cash`)."""
    if env.unwrapped.action_space == "regimes":
        return {f"regime_{name}": enter_then_policy(jnp.int32(k), jnp.int32(Regime.HOLD))
                for k, name in enumerate(REGIMES) if k != Regime.HOLD}
    n = params.data.n_assets
    big = 30.0                                   # softmax of +-30 logits: weights 1 and ~1e-26

    def fixed(weights):
        logits = jnp.where(jnp.asarray(weights) > 0, big, -big).astype(jnp.float32)
        return Policy(init=stateless_init, act=Partial(_fixed_act, logits))

    out = {f"asset_{i}": fixed(np.eye(n + 1)[i]) for i in range(n)}
    out["equal_weight"] = fixed(np.r_[np.ones(n), 0.0])
    out["cash"] = fixed(np.eye(n + 1)[n])
    return out


def hold_action(config: dict) -> int:
    """regimes: `Regime.HOLD` (keep the holdings); the weights action space has none."""
    if config.get("action_space", "regimes") == "regimes":
        return int(Regime.HOLD)
    raise ValueError(f"env 'portfolio' (action_space {config.get('action_space')!r}) has no hold action for "
                     "majority ties to go to; use mode 'winner' or 'weighted'")

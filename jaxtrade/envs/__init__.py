"""Pure, jittable market environments (see DESIGN.md, Environments) and their cost and reward models.

    env, params = jaxtrade.envs.make("portfolio", data)           # data: jaxtrade.data.EnvData
    obs, state = env.reset(key, params)
    obs, state, reward, done, info = env.step(key, state, action, params)
"""

from __future__ import annotations

from jaxtrade.envs import costs, rewards
from jaxtrade.envs.base import (
    ArraySpec,
    AutoReset,
    ContinuousSpec,
    DiscreteSpec,
    Env,
    EpisodeStats,
    ObsSpec,
    Policy,
    TradingStats,
    select_tree,
)
from jaxtrade.envs.costs import CostParams
from jaxtrade.envs.market import MarketState, current_weights
from jaxtrade.envs.portfolio import REGIMES, PortfolioParams, Regime, weights_to_action
from jaxtrade.envs.rewards import RewardParams

ENVS = ("portfolio", "single")


def make(name: str, data, **overrides):
    """(env, params) for environment `name` on `data` (an `EnvData`), wrapped in `AutoReset`.

    name: "portfolio" (keyword `action_space="regimes"|"weights"`) or "single" (keywords
    `asset=0`, `positions=(-1.0, 0.0, 1.0)`). Every other keyword overrides a field of the env's
    params, of its `CostParams` or of its `RewardParams`, e.g. `make("portfolio", data,
    episode_length=128, spread_bps=0.0, dsr_weight=0.1, random_start=False)`.
    """
    if name == "portfolio":
        from jaxtrade.envs import portfolio
        return portfolio.make(data, **overrides)
    if name == "single":
        from jaxtrade.envs import single
        return single.make(data, **overrides)
    raise ValueError(f"unknown environment {name!r}; known: {ENVS}")


__all__ = ["ENVS", "REGIMES", "ArraySpec", "AutoReset", "ContinuousSpec", "DiscreteSpec", "EpisodeStats",
           "ObsSpec", "TradingStats", "CostParams", "Env", "MarketState", "Policy",
           "PortfolioParams", "Regime", "RewardParams", "costs", "current_weights", "make", "rewards",
           "select_tree", "weights_to_action"]

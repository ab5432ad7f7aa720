"""Pure, jittable market environments (see DESIGN.md, Environments) and their cost and reward models.

    env, params = jaxtrade.envs.make("portfolio", data, config.env)   # data: jaxtrade.data.EnvData
    obs, state = env.reset(key, params)
    obs, state, reward, done, info = env.step(key, state, action, params)
    env.action_spec, env.obs_spec

`config.env` is nested: `window`, `episode_length`, `costs.*` (`CostParams`), `reward.*`
(`RewardParams`), then env-specific keys (`jaxtrade.envs.registry`).
"""

from __future__ import annotations

from jaxtrade.envs import costs, portfolio, portfolio_baselines, rewards, single
from jaxtrade.envs.base import (
    INFO_KEYS,
    ArraySpec,
    AutoReset,
    ContinuousSpec,
    DiscreteSpec,
    Env,
    EpisodeStats,
    ObsSpec,
    Policy,
    SpecProperties,
    TradingStats,
    select_tree,
)
from jaxtrade.envs.costs import CostParams
from jaxtrade.envs.market import MarketState
from jaxtrade.envs.options import baselines as options_baselines
from jaxtrade.envs.options import env as options_env
from jaxtrade.envs.portfolio import REGIMES, PortfolioParams, Regime, weights_to_action
from jaxtrade.envs.registry import (
    PARAM_GROUPS,
    check_config,
    choose_action_space,
    default_config,
    history_rows,
    hook,
    make,
    register,
    registered,
    registration,
    registration_of,
    resolve_config,
)
from jaxtrade.envs.rewards import RewardParams

_pb = portfolio_baselines
register("portfolio", portfolio.make, param_groups=("costs", "reward"), defaults=portfolio.CONFIG_DEFAULTS,
         history_rows=_pb.market_history_rows, baselines=_pb.baselines,
         constant_policies=_pb.constant_policies, hold_action=_pb.hold_action,
         describe_costs=_pb.market_describe_costs, traded_symbols=_pb.all_symbols,
         action_spaces={"discrete": "regimes", "continuous": "weights"})
register("single", single.make, param_groups=("costs", "reward", "lots"), defaults=single.CONFIG_DEFAULTS,
         history_rows=_pb.market_history_rows, baselines=single.baselines,
         constant_policies=single.constant_policies, hold_action=single.hold_action,
         describe_costs=_pb.market_describe_costs, traded_symbols=single.traded_symbols,
         action_spaces={"discrete": "positions", "continuous": "exposure"})
register("options", options_env.make, param_groups=("reward",), defaults=options_env.CONFIG_DEFAULTS,
         baselines=options_baselines.baselines, constant_policies=options_baselines.constant_policies,
         hold_action=options_baselines.hold_action, describe_costs=options_baselines.describe_costs)

__all__ = ["INFO_KEYS", "PARAM_GROUPS", "REGIMES", "ArraySpec", "AutoReset", "ContinuousSpec",
           "CostParams", "DiscreteSpec", "Env", "EpisodeStats", "MarketState", "ObsSpec", "Policy",
           "PortfolioParams", "Regime", "RewardParams", "SpecProperties", "TradingStats",
           "check_config", "choose_action_space", "costs", "default_config", "history_rows", "hook",
           "make", "register",
           "registered", "registration", "registration_of", "resolve_config", "rewards",
           "select_tree", "weights_to_action"]

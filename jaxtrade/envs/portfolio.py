"""`portfolio`: N assets plus cash, long only, no leverage, costs never borrow.

Two action spaces (chosen at `make`, static):

- "regimes" (discrete, 12): target weights from the factor scores of row t-1, in this order:
    0 HOLD           keep the holdings: no trade, no cost
    1 FULL_CASH      100% cash
    2 DEFENSIVE      50% cash, 50% equal weight
    3 LIGHT_CASH     25% cash, 75% equal weight
    4 EQUAL_WEIGHT   equal weight, no cash
    5 MOMENTUM       top half by 20-row momentum (`data.momentum`)
    6 LOW_VOL        top half by lowest 20-row volatility (`data.volatility`)
    7 QUALITY        top half by 20-row Sharpe (`data.sharpe`)
    8 SIZE_SMALL     bottom half by `data.size`, the data layer's point-in-time size proxy
                     (trailing 20-row mean dollar volume, `jaxtrade.data.features.size_proxy`).
                     Data without volume (adjusted close-only, e.g. sp500-20) has no causal size
                     proxy (an adjusted price level encodes later splits and dividends), so there
                     this regime is REVERSAL: the bottom half by 20-row momentum (`data.has_size`
                     False). Both are causal under back-adjustment (a test checks it).
    9 SAFE_MOMENTUM  30% cash, 70% the MOMENTUM sleeve
   10 SAFE_QUALITY   30% cash, 70% the QUALITY sleeve
   11 RISK_ON        no cash, equal weight over the top 30% by momentum (at least one asset)
  "Top half" is ceil(N/2) assets. A sleeve puts `factor_tilt` (default 1.0) of its weight equally
  on the selected group and the rest equally on the others, so 1.0 holds the group only.
  Ties are broken towards the lower asset index.
- "weights" (continuous, N+1): logits; target weights = softmax(logits) over N assets + cash
  (cash last). `weights_to_action(w)` inverts it for baselines that want exact weights.
- "shares" (continuous, N, in [-1, 1]): share orders, the layout of Yang, Liu, Zhong & Walid (2020)
  and FinRL. `shares_trade` is the rule, in order:
    1. The order for asset i is clip(a_i, -1, 1) * `hmax` shares (fractional, as the authors' code).
    2. Sells first: each a_i < 0 sells min(-order_i, holdings_i) at close[t] (long only).
    3. Then buys, largest order first (ties: the lower index), each min(order_i, the whole shares
       the cash left after the sells and earlier buys pays for, costs included), so cash never goes
       below zero. The per-share cost of that check is the cost of the full order divided by its
       shares: exact for costs linear in size, conservative for concave ones (the impact laws).
    4. The turbulence gate (turbulence[t-1] > threshold) sells every holding and buys nothing.
  Costs are the env's cost model on the shares traded, as for the other layouts.
"""

from __future__ import annotations

import enum
import functools
import math

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxtrade.data.envdata import EnvData
from jaxtrade.envs import market
from jaxtrade.envs.base import AutoReset, ContinuousSpec, DiscreteSpec, EpisodeStats, ObsSpec
from jaxtrade.envs.costs import CostParams
from jaxtrade.envs.rewards import RewardParams


class Regime(enum.IntEnum):
    HOLD = 0
    FULL_CASH = 1
    DEFENSIVE = 2
    LIGHT_CASH = 3
    EQUAL_WEIGHT = 4
    MOMENTUM = 5
    LOW_VOL = 6
    QUALITY = 7
    SIZE_SMALL = 8
    SAFE_MOMENTUM = 9
    SAFE_QUALITY = 10
    RISK_ON = 11


REGIMES = tuple(r.name for r in Regime)
# Per regime: cash share, the factor that picks the sleeve's group (0 none = all assets,
# 1 momentum, 2 low volatility, 3 Sharpe, 4 small size) and the group's size (HALF, TOP30, ALL).
_CASH = np.array([0.0, 1.0, 0.5, 0.25, 0.0, 0.0, 0.0, 0.0, 0.0, 0.3, 0.3, 0.0], np.float32)
_FACTOR = np.array([0, 0, 0, 0, 0, 1, 2, 3, 4, 1, 3, 1], np.int32)
_ALL, _HALF, _TOP30 = 0, 1, 2
_GROUP_SIZE = np.array([_ALL] * 5 + [_HALF] * 6 + [_TOP30], np.int32)


def factor_ranks(momentum: jax.Array, volatility: jax.Array, sharpe: jax.Array, size: jax.Array
                 ) -> jax.Array:
    """int32 [5, N]: `rank` of the assets by each regime factor (`_FACTOR` order: none (the index
    order), momentum, low volatility, Sharpe, small size), from [N] factor scores of one row."""
    scores = jnp.stack([jnp.zeros_like(momentum), momentum, -volatility, sharpe, -size])
    return jax.vmap(rank)(scores)


def size_scores(data: EnvData) -> jax.Array:
    """[T, N] the scores regime 8 ranks (smallest first): `data.size` where the data has a causal
    size proxy (`data.has_size`), else 20-row momentum (regime 8 is then REVERSAL, the losers)."""
    return data.size if data.has_size else data.momentum


def factor_rank_table(data: EnvData) -> jax.Array:
    """int32 [T, 5, N]: `factor_ranks` of every row of `data`, built once by `make`.

    The factor scores are data, so the rankings are too: a regime step gathers row t-1's ranking
    instead of ranking N assets pairwise. Row-chunked, so the [chunk, 5, N, N] comparisons stay small.
    """
    n = data.n_assets
    batch = max(1, min(data.n_rows, (1 << 22) // (5 * n * n)))
    return _rank_rows(data.momentum, data.volatility, data.sharpe, size_scores(data), batch=batch)


@functools.partial(jax.jit, static_argnames="batch")
def _rank_rows(momentum, volatility, sharpe, size, *, batch: int) -> jax.Array:
    """`factor_ranks` of every row, `batch` rows at a time. Module-level, so every `make` of one shape
    (the live runner's window, each bar; walk-forward's folds) reuses one compile."""
    return jax.lax.map(lambda x: factor_ranks(*x), (momentum, volatility, sharpe, size), batch_size=batch)


@market.keeps_derived_tables(obs_table=market.obs_table, factor_rank_table=factor_rank_table)
@struct.dataclass
class PortfolioParams:
    """Everything that shapes a portfolio environment; a pytree (numbers are float32 arrays).

    Cost and reward coefficients live in `costs` (`CostParams`) and `reward` (`RewardParams`).
    """

    data: EnvData
    obs_table: jax.Array                     # [T, N*F + M] = market.obs_table(data), built by make
    factor_rank_table: jax.Array             # int32 [T, 5, N] = factor_rank_table(data), built by make
    costs: CostParams
    reward: RewardParams
    turbulence_threshold: jax.Array          # gate when turbulence[t-1] > this; inf = gate off
    initial_cash: jax.Array = 1_000_000.0    # quote currency
    ruin_floor: jax.Array = 0.1              # terminate when value < ruin_floor * initial value
    factor_tilt: jax.Array = 1.0             # share of a factor sleeve on its selected group
    hmax: jax.Array = 100.0                  # "shares" layout: shares ordered per unit of action
    episode_length: int = struct.field(pytree_node=False, default=256)   # steps (random_start)
    window: int = struct.field(pytree_node=False, default=30)            # rows in obs["window"]
    random_start: bool = struct.field(pytree_node=False, default=True)   # False: whole split


def rank(score: jax.Array) -> jax.Array:
    """int32 [N]: 0 for the highest score, ties to the lower index. Pairwise: no sort needed."""
    n = score.shape[-1]
    idx = jnp.arange(n)
    beats = (score[None, :] > score[:, None]) | ((score[None, :] == score[:, None])
                                                 & (idx[None, :] < idx[:, None]))
    return jnp.sum(beats, axis=1, dtype=jnp.int32)


def regime_weights(regime: jax.Array, ranks: jax.Array, current: jax.Array, tilt: jax.Array = 1.0
                   ) -> jax.Array:
    """Target weights [N + 1] (cash last, >= 0, sum 1) of `regime` (int32 scalar in [0, 12)).

    ranks: int32 [N], the assets' `rank` by the regime's factor (row `_FACTOR[regime]` of
    `factor_ranks`); current: [N + 1] the weights now, returned for HOLD.
    """
    n = ranks.shape[-1]
    k = jnp.array([n, math.ceil(n / 2), max(1, round(0.3 * n))], jnp.int32)[jnp.asarray(_GROUP_SIZE)[regime]]
    sel = (ranks < k).astype(jnp.float32)
    n_sel = jnp.sum(sel)
    rest = 1.0 - sel
    n_rest = jnp.sum(rest)
    tilt = jnp.where(n_rest > 0, tilt, 1.0)
    sleeve = tilt * sel / n_sel + (1.0 - tilt) * rest / jnp.maximum(n_rest, 1.0)
    cash = jnp.asarray(_CASH)[regime]
    target = jnp.concatenate([(1.0 - cash) * sleeve, cash[None]])
    return jnp.where(regime == Regime.HOLD, current, target)


def regime_target_weights(regime: jax.Array, momentum: jax.Array, volatility: jax.Array,
                          sharpe: jax.Array, size: jax.Array, current: jax.Array,
                          tilt: jax.Array = 1.0) -> jax.Array:
    """Target weights [N + 1] (cash last, >= 0, sum 1) of `regime` (int32 scalar).

    momentum, volatility, sharpe, size: [N] factor scores (row t-1; size: row t-1 of
    `size_scores(data)`); current: [N + 1] the weights now, returned for HOLD. The environment
    reads the same rankings from `factor_rank_table`.
    """
    regime = jnp.clip(regime, 0, len(REGIMES) - 1)
    ranks = factor_ranks(momentum, volatility, sharpe, size)[jnp.asarray(_FACTOR)[regime]]
    return regime_weights(regime, ranks, current, tilt)


def weights_from_action(action: jax.Array) -> jax.Array:
    """Target weights [N + 1] of a "weights" action: softmax of the logits [N + 1]."""
    return jax.nn.softmax(action.astype(jnp.float32))


def weights_to_action(w) -> jax.Array:
    """Logits [N + 1] that `weights_from_action` maps back to `w` (>= 0, sum 1; cash last).

    Zero weights map to a large negative logit whose softmax is exactly 0 in float32.
    """
    w = jnp.asarray(w, jnp.float32)
    return jnp.where(w > 0, jnp.log(jnp.where(w > 0, w, 1.0)), -1e4)


def shares_trade(u: jax.Array, state: market.MarketState, action: jax.Array, params
                 ) -> tuple[jax.Array, jax.Array, jax.Array]:
    """The "shares" layout's trade at close[state.t] (module docstring, steps 1-4): (shares [N] signed
    units traded, cost [N] quote currency, gate bool scalar). u: [N] uniform draws for slippage."""
    data = params.data
    t = state.t
    price = data.close[t]
    value0 = state.value
    gate = data.turbulence[t - 1] > params.turbulence_threshold
    order = jnp.clip(action.astype(price.dtype), -1.0, 1.0) * params.hmax
    sell = jnp.where(gate, state.holdings, jnp.minimum(jnp.maximum(-order, 0.0), state.holdings))
    sell = jnp.maximum(sell, 0.0)
    want = jnp.where(gate, 0.0, jnp.maximum(order, 0.0))
    sell_cost = market.trade_costs(u, -sell, t, value0, params)
    cash = state.cash + jnp.sum(sell * price) - jnp.sum(sell_cost)
    full_cost = market.trade_costs(u, want, t, value0, params)
    unit = price + full_cost / jnp.where(want > 0, want, 1.0)      # quote currency per share bought
    rank_of = jnp.argsort(-want, stable=True)                      # largest order first

    def buy(cash, i):
        afford = jnp.maximum(jnp.floor(cash / unit[i]), 0.0)
        q = jnp.minimum(want[i], afford)
        return cash - q * unit[i], q

    _, bought = jax.lax.scan(buy, cash, rank_of)
    shares = jnp.zeros_like(want).at[rank_of].set(bought) - sell
    return shares, market.trade_costs(u, shares, t, value0, params), gate


ACTION_SPACES = ("regimes", "weights", "shares")


class PortfolioEnv(market.MarketEnv):
    """The core portfolio environment (never resets inside `step`; `make` wraps it in AutoReset)."""

    registry_name = "portfolio"       # its registration (jaxtrade.envs.registry.registration_of)

    cash_floor = True

    def __init__(self, n_assets: int, action_space: str = "regimes", obs_spec: ObsSpec | None = None):
        if action_space not in ACTION_SPACES:
            raise ValueError(f"env.action_space must be one of {ACTION_SPACES}, not {action_space!r}")
        self.n_assets = n_assets
        self.action_space = action_space
        self.action_spec = (DiscreteSpec(len(REGIMES)) if action_space == "regimes"
                            else ContinuousSpec((n_assets,), -1.0, 1.0) if action_space == "shares"
                            else ContinuousSpec((n_assets + 1,)))
        self.obs_spec = obs_spec
        # what reports call each action (the backtest copies them into its frame's attrs)
        self.action_names = tuple(REGIMES) if action_space == "regimes" else None

    def target(self, action, state: market.MarketState, params: PortfolioParams):
        """(target asset weights [N], keep) for `action` in `state`; uses rows < state.t only."""
        n = self.n_assets
        if self.action_space == "shares":
            raise TypeError('the "shares" layout sizes its own trade: call trade(), not target()')
        if not self.discrete:
            return weights_from_action(action)[:n], jnp.asarray(False)
        regime = jnp.clip(action, 0, len(REGIMES) - 1)
        # Row t-1's ranking by the regime's factor, precomputed (== regime_target_weights).
        ranks = params.factor_rank_table[state.t - 1, jnp.asarray(_FACTOR)[regime]]
        w = regime_weights(regime, ranks, state.weights, params.factor_tilt)
        return w[:n], action == Regime.HOLD

    def trade(self, u: jax.Array, state: market.MarketState, action, params):
        if self.action_space != "shares":
            return super().trade(u, state, action, params)
        shares, cost, gate = shares_trade(u, state, action, params)
        held = (state.holdings + shares) * params.data.close[state.t]     # the book after it, as
        target = held / jnp.where(state.value > 0, state.value, 1.0)      # fractions of value
        return shares, cost, target, gate, jnp.asarray(False)


CONFIG_DEFAULTS = {**market.param_defaults(PortfolioParams), "action_space": "regimes"}


def make(data: EnvData, config: dict | None = None):
    """(EpisodeStats(AutoReset(PortfolioEnv)), PortfolioParams) for `data`.

    config: the checked nested env config (`jaxtrade.envs.make` checks it): `CONFIG_DEFAULTS`
    (`action_space` "regimes" | "weights" | "shares", and the fields of `PortfolioParams`), `costs`, `reward`.
    """
    config = dict(config or {})
    action_space = config.pop("action_space", "regimes")
    if action_space not in ACTION_SPACES:
        raise ValueError(f"env.action_space must be one of {ACTION_SPACES}, not {action_space!r}")
    params = market.build_params(PortfolioParams, data, config)
    env = PortfolioEnv(data.n_assets, action_space, market.obs_spec(params))
    return EpisodeStats(AutoReset(env)), params

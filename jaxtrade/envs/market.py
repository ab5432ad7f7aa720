"""The trading core shared by the `portfolio` and `single` environments.

One step, for one unbatched environment in state `s` at row t = s.t:

0. Episodes start at row `data.start` or later (whole split: at `data.start`, the split's first
   tradable row; random start: uniform in [data.start, T-1-L]). Rows < data.start are history
   (the split before) and are only ever observed: `build_params` checks window <= data.start
   (and costs.adv_window <= data.start when the square-root impact law reads volume).
1. The agent has seen rows < t only: the window of rows t-W .. t-1 and the weights it held after
   its previous trade (valued at close[t-1]).
2. Its action becomes target fractions of value per asset. If the turbulence of row t-1 exceeds the
   threshold, the gate overrides them with all cash (flat).
3. The trade to the targets executes at close[t] and pays `costs.total_cost`. Where buys would
   drive cash below zero they are scaled down first (`cash_floor`), so costs never borrow.
4. The portfolio is marked at close[t+1]: reward = log(V_{t+1} / V_t) (plus any shaping), where V_t
   is the value before the trade. Accounting identity: s.value == s.cash + sum(s.holdings *
   close[s.t]) after every reset and step.
5. t+1 reaching the episode's end truncates; V_{t+1} < ruin_floor * initial value terminates.

Everything the outside reads of a step is a fixed-shape `info` entry (`jaxtrade.envs.base`).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from jax import lax

from jaxtrade.envs import costs as costs_lib
from jaxtrade.envs import lots as lots_lib
from jaxtrade.envs import rewards as rewards_lib
from jaxtrade.envs.base import ArraySpec, ObsSpec, SpecProperties

# Buys scaled down by the cash floor leave this share of the buy as cash, so float32 rounding in
# the cash update can never make cash negative.
_CASH_MARGIN = 1e-5


@struct.dataclass
class MarketState:
    """State of one environment. N assets; all float32 unless said otherwise."""

    t: jax.Array                 # int32: row of the next trade; the observation uses rows < t
    end: jax.Array               # int32: the episode is truncated when t reaches this row
    holdings: jax.Array          # [N] units per asset (negative = short, `single` only)
    cash: jax.Array              # quote currency
    value: jax.Array             # cash + sum(holdings * close[t]), quote currency
    weights: jax.Array           # [N + 1] weights after the last trade, valued at close[t-1]; cash last
    position_cash: jax.Array     # [N] net cash flow of each open position since it opened (trade PnL)
    target: jax.Array            # [N] target fractions of the last trade (0 after reset or the gate)
    initial_value: jax.Array     # value at reset
    reward_state: rewards_lib.RewardState
    episode_return: jax.Array    # sum of rewards so far this episode
    episode_length: jax.Array    # int32 steps so far this episode


def episode_bounds(u: jax.Array, params) -> tuple[jax.Array, jax.Array]:
    """(start, end) rows of a new episode, int32 scalars, from `u` ~ uniform[0, 1).

    S = data.start, the first tradable row. random_start: start ~ uniform{S, ..., T-1-L},
    end = start + L (so close[end] exists), with T = data.valid_rows where the data were padded
    (`jaxtrade.data.envdata.pad_rows`: padding is never reached); where `data.start_count` is set,
    start ~ uniform over the rows it allows instead (the (j+1)-th, j = floor(u * count)). Otherwise
    one episode over the whole split: start = S (the split's first trading day), end = T - 1 (the
    last row).
    """
    data = params.data
    n_rows = data.n_rows if data.valid_rows is None else data.valid_rows
    first, length = data.start, params.episode_length
    if params.random_start and data.start_count is not None:
        count = data.start_count[-1]
        j = jnp.minimum((u * count).astype(jnp.int32), count - 1)
        start = jnp.searchsorted(data.start_count, j, side="right").astype(jnp.int32)
        return start, start + length
    if params.random_start:
        n_starts = n_rows - length - first
        start = first + jnp.minimum((u * n_starts).astype(jnp.int32), n_starts - 1)
        return start, start + length
    return jnp.int32(first), jnp.int32(n_rows - 1)


def reset_state(u: jax.Array, params) -> MarketState:
    """A fresh all-cash state at a new episode's first row; `u` ~ uniform[0, 1) picks the row."""
    start, end = episode_bounds(u, params)
    n = params.data.n_assets
    dtype = params.data.close.dtype             # float32; float64 for the exact ledger checks (x64)
    cash = jnp.asarray(params.initial_cash, dtype)
    zeros = jnp.zeros((n,), dtype)
    return MarketState(
        t=start, end=end, holdings=zeros, cash=cash, value=cash,
        weights=jnp.zeros((n + 1,), dtype).at[n].set(1.0), position_cash=zeros, target=zeros,
        initial_value=cash, reward_state=rewards_lib.init_reward_state(cash),
        episode_return=jnp.zeros((), dtype), episode_length=jnp.zeros((), jnp.int32))


def book_state(holdings: jax.Array, cash: jax.Array, t: jax.Array, params, *, target: jax.Array,
               initial_value: jax.Array) -> MarketState:
    """The state at row t of a book holding `holdings` [N] units and `cash` since a trade at close[t-1]:
    weights valued at close[t-1], value at close[t], as `transition` leaves them (trade statistics and
    the reward state start afresh). target: [N] the last trade's targets. The live runner books a
    broker's positions with it (`jaxtrade.live.runner`)."""
    price, prev = params.data.close[t], params.data.close[t - 1]
    value = cash + jnp.sum(holdings * price)
    return MarketState(
        t=jnp.asarray(t, jnp.int32), end=jnp.asarray(t, jnp.int32), holdings=holdings, cash=cash, value=value,
        weights=_weights(holdings, cash, prev, cash + jnp.sum(holdings * prev)),
        position_cash=jnp.zeros_like(holdings), target=target, initial_value=initial_value,
        reward_state=rewards_lib.init_reward_state(value), episode_return=jnp.zeros((), value.dtype),
        episode_length=jnp.zeros((), jnp.int32))


def _fmix32(x: jax.Array) -> jax.Array:
    """MurmurHash3's 32-bit finalizer: a bijection of uint32 with full avalanche."""
    x = x ^ (x >> 16)
    x = x * jnp.uint32(0x85EBCA6B)
    x = x ^ (x >> 13)
    x = x * jnp.uint32(0xC2B2AE35)
    return x ^ (x >> 16)


def step_uniforms(key: jax.Array, n: int) -> jax.Array:
    """float32 [n] draws ~ uniform[0, 1) from `key`: what one step needs (slippage, reset row).

    One threefry block (two 32-bit words, `jax.random.bits`) seeds a counter-based hash of the
    draw's index (MurmurHash3's finalizer, twice), instead of one threefry block per two draws:
    the step's RNG costs about as much as a scalar draw. Same key, same draws; the top 23 bits of
    each hash become the mantissa, as in `jax.random.uniform`.
    """
    seed = jax.random.bits(key, (2,), jnp.uint32)
    i = jnp.arange(n, dtype=jnp.uint32)
    x = _fmix32(_fmix32(seed[0] + i * jnp.uint32(0x9E3779B9)) ^ seed[1])
    return lax.bitcast_convert_type((x >> 9) | jnp.uint32(0x3F800000), jnp.float32) - 1.0


def obs_table(data) -> jax.Array:
    """float32 [T, N*F + M]: per row, the flattened features then the market features.

    Params keep this next to `data` so that an observation window is one contiguous dynamic slice.
    """
    return jnp.concatenate([data.features.reshape(data.n_rows, -1), data.market], axis=1)


def window_rows(data, t: jax.Array, window: int) -> jax.Array:
    """Rows t-window .. t-1 of the features and market features, float32 [window, N*F + M].

    The definition of the observation window (`observe` reads the same rows from a precomputed table).
    """
    feats = lax.dynamic_slice_in_dim(data.features, t - window, window, axis=0)
    market = lax.dynamic_slice_in_dim(data.market, t - window, window, axis=0)
    return jnp.concatenate([feats.reshape(window, -1), market], axis=1)


def observe(state: MarketState, params) -> dict:
    """The observation of `state`: {"window": [W, N*F + M], "state": [N + 1] weights, cash last}.

    window: rows state.t-W .. state.t-1 of `obs_table(params.data)` (== `window_rows`), sliced
    from the copy params keep.
    """
    window = lax.dynamic_slice_in_dim(params.obs_table, state.t - params.window, params.window, 0)
    return {"window": window, "state": state.weights}


def obs_spec(params) -> ObsSpec:
    """The observation spec of `observe` under `params` (shapes only: no arrays are read)."""
    return ObsSpec.of({"window": ArraySpec((int(params.window), int(params.obs_table.shape[1]))),
                       "state": ArraySpec((int(params.data.n_assets) + 1,))})


def _weights(holdings: jax.Array, cash: jax.Array, price: jax.Array, value: jax.Array) -> jax.Array:
    """[N + 1] (cash last) value shares at `price`; negative for shorts; value <= 0 divides by 1."""
    denom = jnp.where(value > 0, value, 1.0)
    return jnp.concatenate([holdings * price, cash[None]]) / denom


def _lots(params):
    """The params' `LotParams` where positions are sized in FX lots (static), else None."""
    lots = getattr(params, "lots", None)
    return lots if lots is not None and lots.enabled else None


def _costs(u, shares, price, value, sigma, adv, fee_rates, params):
    cost = costs_lib.total_cost(u, shares, price, value, params.costs, sigma, adv, fee_rates)
    if (lots := _lots(params)) is not None:
        cost = cost + lots_lib.trade_cost(shares, lots)
    return cost


def impact_inputs(data, t, price, costs: costs_lib.CostParams):
    """(sigma [N], ADV in shares [N], the date's regulatory fee row) for a trade at row t, from rows
    < t only (None where `costs` does not need them)."""
    sigma = adv = None
    if costs.impact_model == "sqrt_adv":
        sigma = data.volatility[t - 1]
        adv = lax.dynamic_slice_in_dim(data.volume, t - costs.adv_window, costs.adv_window, 0).mean(0)
        adv = jnp.maximum(adv, 1.0)
    elif costs.impact_model == "assumed_adv":
        sigma = data.volatility[t - 1]
        adv = costs.assumed_adv_value / price
    fee_rates = data.fees[t] if costs.regulatory_fees == "us_schedule" else None
    return sigma, adv, fee_rates


def episode_step(value0, value1, cost, state, params):
    """The bookkeeping every env's step ends with: (reward, reward_state, t + 1, terminated,
    truncated, done, episode_return, episode_length) from the value before the step, the value
    after it and the costs paid; `state` needs t, end, initial_value, reward_state, episode_return
    and episode_length. Ruin (value < ruin_floor x initial value) terminates; reaching `end` truncates."""
    reward, reward_state = rewards_lib.reward(value0, value1, cost, state.reward_state, params.reward)
    t1 = state.t + 1
    terminated = value1 < params.ruin_floor * state.initial_value
    truncated = (t1 >= state.end) & ~terminated
    return (reward, reward_state, t1, terminated, truncated, terminated | truncated,
            state.episode_return + reward, state.episode_length + 1)


def trade_costs(u: jax.Array, shares: jax.Array, t: jax.Array, value0: jax.Array, params) -> jax.Array:
    """Costs [N] (quote currency) of trading `shares` [N] at close[t] from portfolio value `value0`:
    what `transition` charges (`costs.total_cost` with the row's impact inputs, plus lot costs)."""
    price = params.data.close[t]
    sigma, adv, fee_rates = impact_inputs(params.data, t, price, params.costs)
    return _costs(u, shares, price, value0, sigma, adv, fee_rates, params)


def trade(u: jax.Array, state: MarketState, target: jax.Array, keep: jax.Array, params, *,
          cash_floor: bool):
    """Steps 2-3 of a step: the trade to `target` fractions of value [N] at close[state.t].

    Returns (shares [N] signed units traded, cost [N] quote currency, the target after the
    turbulence gate [N], gate bool scalar). `transition` books exactly these; the live runner sizes
    its orders with it (`jaxtrade.live.runner`). Arguments as in `transition`.
    """
    data = params.data
    t = state.t
    price = data.close[t]
    value0 = state.value

    gate = data.turbulence[t - 1] > params.turbulence_threshold
    target = jnp.where(gate, 0.0, target)
    lots = _lots(params)
    desired = target * value0 / price
    if lots is not None:
        desired = lots_lib.quantize(desired, lots)
    # Exact zeros matter: HOLD and all-cash-from-cash must trade (and so pay) exactly nothing.
    shares = jnp.where(keep & ~gate, 0.0, desired - state.holdings)

    sigma, adv, fee_rates = impact_inputs(data, t, price, params.costs)
    cost = _costs(u, shares, price, value0, sigma, adv, fee_rates, params)
    if cash_floor:
        # Scaling every buy by alpha <= 1 lowers each buy's cost (costs are monotone in size), so
        # alpha = (cash + sells - all costs at full size) / buys keeps cash >= 0.
        flow = shares * price
        buy = shares > 0
        buys = jnp.sum(jnp.where(buy, flow, 0.0))
        avail = state.cash - jnp.sum(jnp.where(buy, 0.0, flow)) - jnp.sum(cost)
        short = buys > avail
        alpha = jnp.clip(avail / jnp.where(short, buys, 1.0), 0.0, 1.0) * (1.0 - _CASH_MARGIN)
        shares = jnp.where(buy & short, shares * alpha, shares)
        if lots is not None:   # the scaled position, rounded down to whole lot steps
            shares = jnp.where(buy & short, lots_lib.floor_position(state.holdings + shares, lots)
                               - state.holdings, shares)
        cost = jnp.where(buy & short, _costs(u, shares, price, value0, sigma, adv, fee_rates, params), cost)
    return shares, cost, target, gate


def transition(u: jax.Array, state: MarketState, target: jax.Array, keep: jax.Array, params, *,
               cash_floor: bool):
    """Trade to `target` fractions of value [N] at close[state.t], mark at close[state.t + 1].

    u: [N] uniform[0, 1) draws for slippage.
    keep: bool scalar, True = no trade at all (HOLD; `single` repeating its position); the
        turbulence gate overrides it. Then state.target stays as it was.
    cash_floor: static, True = buys are scaled so cash stays >= 0 after costs (no leverage).
    Returns state, reward, done, info (without the observation); never resets.
    """
    shares, cost, target, gate = trade(u, state, target, keep, params, cash_floor=cash_floor)
    return settle(state, shares, cost, target, gate, keep, params)


def settle(state: MarketState, shares: jax.Array, cost: jax.Array, target: jax.Array, gate: jax.Array,
           keep: jax.Array, params):
    """Books a trade of `shares` [N] at close[state.t] paying `cost` [N] and marks the book at
    close[state.t + 1]: the rest of `transition` after `trade`, for an action layout that sizes its
    own trade (the portfolio's "shares"). target [N]: the targets after the gate (kept in the state
    unless `keep`); gate: bool scalar. Returns state, reward, done, info."""
    data = params.data
    t = state.t
    price, price_next = data.close[t], data.close[t + 1]
    value0 = state.value
    lots = _lots(params)

    flow = shares * price
    holdings = state.holdings + shares
    # Financing over the bar (FX swap): the 17:00 New York rollovers between rows t and t+1 (counted on
    # the host, `EnvData.rollover`), credited at close[t+1]; zero unless sized in lots.
    if lots is not None and data.rollover is not None:
        nights = (data.rollover[t + 1] - data.rollover[t]).astype(jnp.float32)
        swap = jnp.sum(lots_lib.swap(holdings, nights, lots))
    else:
        swap = jnp.zeros((), state.cash.dtype)
    cash = state.cash - jnp.sum(flow) - jnp.sum(cost)
    total_cost = jnp.sum(cost)

    # A position's trade closes when it returns to flat or flips sign; its PnL is every cash flow
    # since it opened, the liquidation value and the closing share of this step's costs.
    closed = (state.holdings != 0) & (jnp.sign(holdings) != jnp.sign(state.holdings))
    close_frac = jnp.where(closed, jnp.abs(state.holdings) / jnp.where(closed, jnp.abs(shares), 1.0), 0.0)
    close_cost = cost * close_frac
    pnl = jnp.where(closed, state.position_cash + state.holdings * price - close_cost, 0.0)
    position_cash = jnp.where(closed, -holdings * price - (cost - close_cost),
                              state.position_cash - flow - cost)

    held = holdings * price
    value_post = cash + jnp.sum(held)                 # at close[t], after costs
    cash = cash + swap
    value1 = cash + jnp.sum(holdings * price_next)    # at close[t+1]
    weights = _weights(holdings, cash, price, value_post)

    reward, reward_state, t1, terminated, truncated, done, episode_return, episode_length = \
        episode_step(value0, value1, total_cost, state, params)
    new_state = MarketState(
        t=t1, end=state.end, holdings=holdings, cash=cash, value=value1, weights=weights,
        position_cash=position_cash, target=jnp.where(keep & ~gate, state.target, target),
        initial_value=state.initial_value, reward_state=reward_state,
        episode_return=episode_return, episode_length=episode_length)
    info = {
        "truncated": truncated, "terminated": terminated,
        "episode_return": episode_return, "episode_length": episode_length,
        "episode_growth": rewards_lib.log_return(state.initial_value, value1),
        "trade_closed": closed, "trade_pnl": pnl, "costs": total_cost, "swap": swap,
        "turnover": jnp.sum(jnp.abs(flow)) / value0, "value_before": value0, "value": value1,
        "weights": weights, "weights_marked": _weights(holdings, cash, price_next, value1),
        "gate": gate, "turbulence": data.turbulence[t - 1], "turbulence_next": data.turbulence[t],
    }
    return new_state, reward, done, info


_GROUPS = {"costs": costs_lib.CostParams, "reward": rewards_lib.RewardParams, "lots": lots_lib.LotParams}


def param_keys(cls) -> tuple[str, ...]:
    """The top-level config keys of params class `cls`: its fields but `data`, its derived tables
    and the param groups `costs` and `reward`."""
    skip = {"data", *getattr(cls, "derived_tables", {"obs_table": obs_table}), *_GROUPS}
    return tuple(f.name for f in dataclasses.fields(cls) if f.name not in skip)


def param_defaults(cls) -> dict:
    """{key: default} of `param_keys(cls)`; None where the field has no default (decided by make)."""
    fields = {f.name: f for f in dataclasses.fields(cls)}
    return {k: (None if fields[k].default is dataclasses.MISSING else fields[k].default)
            for k in param_keys(cls)}


def _static_int(key: str, value) -> int:
    if isinstance(value, bool) or int(value) != value:
        raise ValueError(f"{key} must be an integer, got {value!r}")
    return int(value)


def build_params(cls, data, config: dict):
    """`cls(data=data, costs=CostParams(**config["costs"]), reward=RewardParams(**config["reward"]),
    **the other keys)` from a checked nested config (`jaxtrade.envs.registry.check_config`).

    Missing keys take the field defaults; `turbulence_threshold` None (or absent) takes the data's;
    `costs.impact_model` None (or absent) is "sqrt_adv" with volume data, "none" without. Numbers
    become float32 arrays so that
    params can be vmapped or swapped without recompiling; static fields stay Python values.
    Then `check_rows` checks the data against the window, the ADV window and the episode length.
    """
    config = dict(config)
    sub = {g: dict(config.pop(g, None) or {}) for g in _GROUPS}
    top_names = set(param_keys(cls))
    unknown = sorted(set(config) - top_names)
    if unknown:
        raise ValueError(f"unknown env config keys {['env.' + k for k in unknown]} for {cls.__name__}; "
                         f"known: {sorted(top_names)}")
    costs = sub["costs"]
    if costs.get("impact_model") is None:
        costs["impact_model"] = "sqrt_adv" if data.has_volume else "none"
    costs.setdefault("regulatory_fees", "us_schedule")
    for key, known in (("impact_model", costs_lib.IMPACT_MODELS), ("regulatory_fees", costs_lib.FEE_MODES)):
        if costs[key] not in known:
            raise ValueError(f"env.costs.{key}={costs[key]!r} is not one of {list(known)}")
    if costs["impact_model"] == "sqrt_adv" and not data.has_volume:
        raise ValueError("env.costs.impact_model='sqrt_adv' needs data with volume (EnvData.has_volume is "
                         "False): use 'assumed_adv' with env.costs.assumed_adv_value, 'seed' or 'none'")
    if costs["impact_model"] == "assumed_adv" and not float(costs.get("assumed_adv_value", 0.0)) > 0:
        raise ValueError("env.costs.impact_model='assumed_adv' needs env.costs.assumed_adv_value > 0 (the "
                         "assumed average traded value per row and asset), got "
                         f"{costs.get('assumed_adv_value', 0.0)!r}")
    if "adv_window" in costs:
        costs["adv_window"] = _static_int("env.costs.adv_window", costs["adv_window"])
    top = {f.name: f.default for f in dataclasses.fields(cls)
           if f.name in top_names and f.default is not dataclasses.MISSING}
    top.update(config)
    if top.get("turbulence_threshold") is None:
        top["turbulence_threshold"] = data.turbulence_threshold
    statics = {f.name for f in dataclasses.fields(cls) if not f.metadata.get("pytree_node", True)}
    for k in ("window", "episode_length"):
        top[k] = _static_int(f"env.{k}", top[k])
    top["random_start"] = bool(top["random_start"])
    # float32 (the data's dtype); float64 data under `jax.enable_x64` gives float64 params throughout
    dtype = data.close.dtype
    top = {k: (v if k in statics else jnp.asarray(v, dtype)) for k, v in top.items()}

    def cast(tree):
        return jax.tree.map(lambda x: jnp.asarray(x, dtype), tree)

    derived = getattr(cls, "derived_tables", {"obs_table": obs_table})
    tables = {name: build(data) for name, build in derived.items()}
    groups = {}
    if "lots" in {f.name for f in dataclasses.fields(cls)}:
        lots = lots_lib.LotParams(**sub["lots"])
        lots_lib.check(lots)
        if lots.enabled and data.rollover is None and any(float(getattr(lots, k)) for k in
                                                          ("swap_long_pips", "swap_short_pips")):
            raise ValueError("env.lots swap needs EnvData.rollover (the rows' FX value days, filled by "
                             "Split.to_device from jaxtrade.data.dates.rollover_days)")
        groups["lots"] = cast(lots)
    elif sub["lots"]:
        raise ValueError(f"env.lots is not a param group of {cls.__name__}")
    params = cls(data=data, costs=cast(_GROUPS["costs"](**costs)),
                 reward=cast(_GROUPS["reward"](**sub["reward"])), **groups, **tables, **top)
    check_rows(params)
    return params


def check_rows(params) -> None:
    """ValueError unless `params.data` carries the history and the rows its episodes need."""
    data = params.data
    n_rows, first, w, length = data.n_valid_rows, data.start, params.window, params.episode_length
    if data.valid_rows is not None and not params.random_start:
        raise ValueError("padded data (EnvData.valid_rows set by pad_rows) are for random-start training "
                         "only: a whole-split episode would trade the padding rows")
    if w < 1 or length < 1:
        raise ValueError(f"env.window ({w}) and env.episode_length ({length}) must be >= 1")
    if w > first:
        raise ValueError(
            f"env.window={w} is more than EnvData.start={first}, the history rows the data carries before "
            f"its first tradable row: the first observation would need {w - first} rows from before the "
            f"data, and trading later than row {first} would skip tradable rows (while rows before it belong "
            "to the split before). Split with lookback >= env.window (jaxtrade.data.split(md, ..., lookback="
            f"{w})) or lower env.window.")
    if params.costs.impact_model == "sqrt_adv":
        adv = params.costs.adv_window
        if not 1 <= adv <= first:
            raise ValueError(
                f"env.costs.adv_window={adv} must be in [1, EnvData.start={first}]: the square-root impact "
                f"law averages the volume of the {adv} rows before each trade, and the first tradable row "
                f"has {first} rows of history. Lower env.costs.adv_window or split with lookback >= {adv}.")
    if params.costs.regulatory_fees == "us_schedule":
        if data.fees is None:
            raise ValueError("env.costs.regulatory_fees='us_schedule' needs EnvData.fees (the dated "
                             "SEC/FINRA rates, filled by Split.to_device): build the data with "
                             "jaxtrade.data.split, or set env.costs.regulatory_fees to 'flat' (with "
                             "explicit rates) or 'none'")
        if data.fee_gap is not None:
            raise ValueError(
                f"the dated US regulatory fee schedule (jaxtrade.data.fees) does not cover {data.fee_gap}, a "
                "traded date of this data: set env.costs.regulatory_fees='flat' with explicit "
                "env.costs.sec_fee_rate / finra_taf_per_share / finra_taf_cap, or 'none' (FX, non-US "
                "markets)")
    if data.start_count is not None:
        _check_start_count(data, first, n_rows - 1 - length, params.random_start)
    if params.random_start and n_rows - 1 - length < first:
        raise ValueError(f"random_start needs at least EnvData.start + env.episode_length + 1 = "
                         f"{first + length + 1} rows, the data has {n_rows}: shorten env.episode_length "
                         "or use env.random_start=False")
    if not params.random_start and n_rows - 1 <= first:
        raise ValueError(f"the data has {n_rows} rows, EnvData.start={first} of them history: not one "
                         "step to trade")


def _check_start_count(data, first: int, last: int, random_start: bool) -> None:
    """ValueError unless `data.start_count` is a running count whose start rows lie in [first, last]."""
    if not random_start:
        raise ValueError("EnvData.start_count (the rows random-start episodes may begin on) is for "
                         "random-start training only: set env.random_start=True or drop it")
    steps = np.diff(np.asarray(data.start_count), prepend=0)
    rows = np.flatnonzero(steps)
    if steps.min() < 0 or steps.max() > 1 or not rows.size or rows[0] < first or rows[-1] > last:
        raise ValueError(f"EnvData.start_count must count up by 0 or 1 per row and allow at least one "
                         f"start row in [{first}, {last}] (EnvData.start .. valid rows - 1 - "
                         f"env.episode_length); it allows rows {rows[:3].tolist()} .. {rows[-3:].tolist()}")


def keeps_derived_tables(**builders):
    """Class decorator (outside `struct.dataclass`) for params that keep tables derived from `data`
    (field name -> builder(data), e.g. obs_table=obs_table): `build_params` fills them and
    `params.replace(data=new)` rebuilds them, so swapping the split of existing params can never
    leave a stale table."""

    def decorate(cls):
        def replace(self, **updates):
            if "data" in updates:
                for name, build in builders.items():
                    updates.setdefault(name, build(updates["data"]))
            return dataclasses.replace(self, **updates)

        cls.derived_tables = dict(builders)
        cls.replace = replace
        return cls

    return decorate


class MarketEnv(SpecProperties):
    """Base of the core market environments (their `step` never resets).

    Subclasses set `action_spec`, `obs_spec` (from `obs_spec(params)`, when `make` builds the
    params), `cash_floor` and define `target(action, state, params) -> (target fractions [N],
    keep)`, which may read rows < state.t only (or, a layout that sizes its own shares, override
    `trade`). The object holds no arrays.
    """

    action_spec: Any
    obs_spec: ObsSpec | None = None
    cash_floor: bool = True

    # Env objects hold no arrays, only hashable settings (specs, flags): equal by type and those, so
    # that jit, which takes them as static arguments, compiles once for the same env made twice.
    def _settings(self):
        return (type(self), tuple(sorted(vars(self).items())))

    def __eq__(self, other):
        return isinstance(other, MarketEnv) and other._settings() == self._settings()

    def __hash__(self):
        return hash(self._settings())

    def target(self, action, state: MarketState, params):
        raise NotImplementedError

    def reset(self, key: jax.Array, params):
        state = reset_state(jax.random.uniform(key), params)
        return observe(state, params), state

    def trade(self, u: jax.Array, state: MarketState, action, params):
        """(shares [N], cost [N], target [N] after the gate, gate, keep) of `action` in `state`, sized as
        `trade` sizes `target(action)`: what `transition` books and what the live runner orders. An
        action layout that sizes its own trade (the portfolio's "shares") overrides this."""
        target, keep = self.target(action, state, params)
        shares, cost, target, gate = trade(u, state, target, keep, params, cash_floor=self.cash_floor)
        return shares, cost, target, gate, keep

    def transition(self, u: jax.Array, state: MarketState, action, params):
        """(state, reward, done, info) of one step; u: [N] uniform draws for slippage."""
        return settle(state, *self.trade(u, state, action, params), params)

    def step(self, key: jax.Array, state: MarketState, action, params):
        u = step_uniforms(key, params.data.n_assets)
        state, reward, done, info = self.transition(u, state, action, params)
        return observe(state, params), state, reward, done, info

    def observe(self, state: MarketState, params):
        return observe(state, params)

    def step_and_reset(self, key: jax.Array, state: MarketState, action, params):
        """`AutoReset`'s fast path: one `step_uniforms` draw serves the slippage and the reset row."""
        n = params.data.n_assets
        u = step_uniforms(key, n + 1)
        next_state, reward, done, info = self.transition(u[:n], state, action, params)
        return next_state, reward, done, info, reset_state(u[n], params)

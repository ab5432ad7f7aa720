"""`single`: one instrument (daily index data or intraday FX-style bars), a signed target exposure.

`env.action_space` chooses how the agent asks for it:
- "positions" (default): action k (int32 in [0, K)) asks for a position of `positions[k]` times the
  equity, signed: the default (-1, 0, 1) is short / flat / long.
- "exposure": a continuous action [1] (`ContinuousSpec`, bounds min(positions) .. max(positions)) is
  the target exposure itself, clipped to the bounds and rounded to the nearest multiple of
  `env.exposure_step` (default 0.05; 0: no rounding), so that holding needs no bit-exact repeat: the
  continuous-action agents (DDPG, TD3, SAC) trade this. The rest of the step is the same.
- "long_short": Théate & Ernst's (2021, TDQN) two actions, 0 = all-in short and 1 = all-in long
  (`positions` is (-1, 1) whatever the config says). Staying on the side already held trades nothing,
  except their margin rule for shorts: while short, if the cash could not buy the shares back after a
  price rise of `short_margin` (default 0.1, their epsilon) from close[t-1], paying the commission rate
  c = `costs.commission_bps` / 1e4, i.e. if L > 0 with D = |h| close[t-1] (1 + eps)(1 + c) - cash and
  L = D / (close[t-1] eps (1 + c)) (their computeLowerBound), then min(floor(L), |h|) shares are bought
  back at close[t] (tradingEnv.py, case "short -> short").

The target The position changes at close[t] and pays spread,
commission, slippage, impact and fees (`costs.total_cost`); the position is marked to market at every
bar; repeating the current position trades nothing (no daily re-levering). A trade closes when
the position returns to flat or flips sign; `info["trade_pnl"]` is then
its net PnL (every cash flow since it opened, its liquidation value and its share of the costs).
Unless some |position| exceeds 1 (leverage, decided at `make`), buys are scaled so that cash stays
>= 0 after costs. The turbulence gate, if its threshold is finite, moves the position to flat.
With `env.lots.enabled`, positions are sized in FX lots, pay per-lot commission and a spread in
pips, and earn or pay the overnight swap (`jaxtrade.envs.lots`).

The observation is the market core's (`jaxtrade.envs.market`): {"window": [W, F + M],
"state": [2] = (signed position weight, cash share)}.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct

from jaxtrade.data.envdata import EnvData
from jaxtrade.envs import market
from jaxtrade.envs.base import AutoReset, ContinuousSpec, DiscreteSpec, EpisodeStats, ObsSpec
from jaxtrade.envs.costs import CostParams
from jaxtrade.envs.fixed_policies import constant_policy
from jaxtrade.envs.lots import LotParams
from jaxtrade.envs.rewards import RewardParams

DEFAULT_POSITIONS = (-1.0, 0.0, 1.0)
ACTION_SPACES = ("positions", "exposure", "long_short")
LONG_SHORT_POSITIONS = (-1.0, 1.0)   # "long_short": action 0 short, 1 long
DEFAULT_EXPOSURE_STEP = 0.05


@market.keeps_derived_tables(obs_table=market.obs_table)
@struct.dataclass
class SingleParams:
    """Everything that shapes a single-instrument environment; a pytree (numbers are arrays of the data's
    float dtype: float32, or float64 for float64 data under `jax.enable_x64`, `market.build_params`)."""

    data: EnvData                            # N = 1
    obs_table: jax.Array                     # [T, F + M] = market.obs_table(data), built by make
    costs: CostParams
    reward: RewardParams
    lots: LotParams                          # FX sizing in lots (off unless lots.enabled)
    turbulence_threshold: jax.Array          # gate when turbulence[t-1] > this; inf = gate off
    positions: jax.Array = DEFAULT_POSITIONS  # [K] target positions, fractions of equity (signed)
    initial_cash: jax.Array = 1_000_000.0    # quote currency
    ruin_floor: jax.Array = 0.1              # terminate when value < ruin_floor * initial value
    short_margin: jax.Array = 0.1            # "long_short": the price rise a short must survive (epsilon)
    episode_length: int = struct.field(pytree_node=False, default=256)
    window: int = struct.field(pytree_node=False, default=30)
    random_start: bool = struct.field(pytree_node=False, default=True)


class SingleEnv(market.MarketEnv):
    """The core single-instrument environment (never resets inside `step`)."""

    registry_name = "single"       # its registration (jaxtrade.envs.registry.registration_of)

    def __init__(self, n_positions: int, leverage: bool = False, obs_spec: ObsSpec | None = None,
                 action_space: str = "positions", bounds: tuple[float, float] = (-1.0, 1.0),
                 exposure_step: float = DEFAULT_EXPOSURE_STEP):
        if action_space not in ACTION_SPACES:
            raise ValueError(f"env.action_space must be one of {ACTION_SPACES}, not {action_space!r}")
        if exposure_step < 0:
            raise ValueError(f"env.exposure_step={exposure_step} must be >= 0 (0: no rounding)")
        self.action_space = action_space
        self.bounds = (float(bounds[0]), float(bounds[1]))
        self.exposure_step = float(exposure_step)
        self.action_spec = (ContinuousSpec((1,), self.bounds[0], self.bounds[1]) if action_space == "exposure"
                            else DiscreteSpec(n_positions))
        self.cash_floor = not leverage
        self.obs_spec = obs_spec

    def target(self, action, state: market.MarketState, params: SingleParams):
        if self.action_space == "exposure":
            dtype = params.data.close.dtype      # the book's float dtype (float32 unless float64 data)
            target = jnp.clip(jnp.reshape(jnp.asarray(action, dtype), (-1,))[:1], *self.bounds)
            if self.exposure_step > 0:
                target = jnp.round(target / self.exposure_step) * self.exposure_step
        elif self.action_space == "long_short":
            return long_short_target(action, state, params)
        else:
            action = jnp.clip(action, 0, self.action_dim - 1)
            target = params.positions[action][None]
        # Repeating the position held is no trade: a long is not re-levered to 1 every bar.
        return target, jnp.all(target == state.target)

    @property
    def action_names(self):
        """What reports call each discrete action: its target position, e.g. "-1x", "+0x", "+1x" (a
        function of the env params); None for the continuous exposure."""
        if self.action_space == "exposure":
            return None
        return _position_names


def long_short_target(action, state: market.MarketState, params: SingleParams):
    """(target [1], keep) of the "long_short" layout (module docstring): the side of `action`, no trade
    while that side is held, but the margin rule's buy-back of a short. Reads rows < state.t and the
    trade price close[t] only (the buy-back's size is set from close[t-1], as theirs)."""
    side = params.positions[jnp.clip(action, 0, 1)]
    h, cash, t = state.holdings[0], state.cash, state.t
    prev, price = params.data.close[t - 1, 0], params.data.close[t, 0]
    c = params.costs.commission_bps * 1e-4
    eps = params.short_margin
    short = (side < 0) & (state.target[0] < 0)
    deficit = -h * prev * (1.0 + eps) * (1.0 + c) - cash
    lower = jnp.where(deficit < 0, deficit / (prev * (2.0 * c + eps * (1.0 + c))),
                      deficit / (prev * eps * (1.0 + c)))
    buy = jnp.where(short & (lower > 0), jnp.minimum(jnp.floor(lower), -h), 0.0)
    value = jnp.where(state.value > 0, state.value, 1.0)
    target = jnp.where(buy > 0, (h + buy) * price / value, side)[None]
    keep = (jnp.sign(state.target[0]) == side) & (buy <= 0)
    return target, keep


def _position_names(params: SingleParams) -> list[str]:
    return [f"{p:+g}x" for p in np.asarray(params.positions, np.float64)]


def select_asset(data: EnvData, asset: int) -> EnvData:
    """`data` restricted to the one column `asset` (every [T, N, ...] array keeps a length-1 axis)."""
    col = slice(asset, asset + 1)
    per_asset = ("close", "open", "high", "low", "volume", "momentum", "volatility", "sharpe", "size")
    return data.replace(features=data.features[:, col], **{k: getattr(data, k)[:, col] for k in per_asset})


CONFIG_DEFAULTS = {**market.param_defaults(SingleParams), "asset": 0, "action_space": "positions",
                   "exposure_step": DEFAULT_EXPOSURE_STEP}


def make(data: EnvData, config: dict | None = None):
    """(EpisodeStats(AutoReset(SingleEnv)), SingleParams) trading column `asset` of `data`.

    config: the checked nested env config (`jaxtrade.envs.make` checks it): `CONFIG_DEFAULTS`
    (`asset` (default 0), `action_space` "positions" | "exposure", `exposure_step`, `positions` (in
    "exposure": its min and max are the bounds), and the other fields of `SingleParams`), `costs`,
    `reward`.
    """
    config = dict(config or {})
    asset = config.pop("asset", 0)
    action_space = config.pop("action_space", "positions")
    exposure_step = float(config.pop("exposure_step", DEFAULT_EXPOSURE_STEP))
    if not 0 <= asset < data.n_assets:
        raise ValueError(f"env.asset={asset} out of range for {data.n_assets} assets")
    if data.n_assets > 1:
        data = select_asset(data, asset)
    positions = tuple(float(p) for p in config.get("positions", DEFAULT_POSITIONS))
    if action_space == "long_short":
        positions = LONG_SHORT_POSITIONS
    if not positions:
        raise ValueError("env.positions must not be empty")
    config["positions"] = positions
    params = market.build_params(SingleParams, data, config)
    env = SingleEnv(len(positions), leverage=max(abs(p) for p in positions) > 1.0,
                    obs_spec=market.obs_spec(params), action_space=action_space,
                    bounds=(min(positions), max(positions)), exposure_step=exposure_step)
    return EpisodeStats(AutoReset(env)), params


# What the registration knows beyond the step (jaxtrade.envs.registry, point 4).

# The single-instrument baselines: name -> the signed position they hold from the first step on.
SINGLE_POSITIONS = {"long_buy_hold": 1.0, "flat": 0.0, "short": -1.0}


def baselines(env, params, split=None, *, history=None, cov_window: int = 252) -> dict:
    """{name: (policy, env, params)}: long_buy_hold (+1 from the first step, never traded again), flat
    (0: cash), short (-1 held), each only where env.positions holds that position."""
    del split, history, cov_window
    positions = [float(p) for p in np.asarray(params.positions)]
    return {name: (_hold_position(env, positions.index(pos), pos), env, params)
            for name, pos in SINGLE_POSITIONS.items() if pos in positions}


def constant_policies(env, params) -> dict:
    """Each position held from the first step (`position_<p>`)."""
    return {f"position_{float(p):+g}": _hold_position(env, k, float(p))
            for k, p in enumerate(np.asarray(params.positions))}


def _hold_position(env, k: int, position: float):
    """The policy that always asks for `position`: action k of "positions", the exposure itself
    ([1] float32; float64 under `jax.enable_x64`, the env casts it to the data's dtype) of "exposure"."""
    if env.discrete:
        return constant_policy(k)
    return constant_policy([position], jnp.result_type(float))


def hold_action(config: dict) -> int:
    """The flat position (the index of 0.0 in `positions`: no exposure)."""
    if config.get("action_space", "positions") == "exposure":
        raise ValueError("env.action_space='exposure' is continuous: majority voting needs discrete "
                         "actions; use ensemble mode 'winner' or 'weighted'")
    positions = [float(p) for p in config.get("positions", DEFAULT_POSITIONS)]
    if 0.0 in positions:
        return positions.index(0.0)
    raise ValueError(f"env.positions={positions} has no flat (0.0) position for majority ties to go to; "
                     "add 0.0 to env.positions or use mode 'winner' or 'weighted'")


def traded_symbols(config: dict, symbols) -> tuple:
    """The one symbol at env.asset."""
    return (tuple(symbols)[int(config.get("asset", 0))],)

"""`options`: an underlying with a synthetic Black-Scholes chain, 91 multi-leg actions (or the legacy
31), per-contract fees, Greeks limits, settlement at expiry and forced closes. Pure JAX, vmappable.

One step, for one unbatched environment at row t = state.t (trade at close[t], mark at close[t+1]):

1. The agent has seen rows < t only: the underlying's feature window t-W .. t-1, chain row t-1
   ("chain"), its book after the previous trade marked at row t-1 ("state") and the actions allowed
   now ("action_mask", computed from that book and the calendar).
2. Legs whose expiry day has come (day[t] >= expiry_day) settle in cash at intrinsic value (no fee:
   exercise and assignment fees are not modelled). Slots with <= `force_close_dte` calendar days left
   close at the chain's bid (longs) / ask (shorts) less slippage, paying fees (a roll rule: a
   position leaves before its expiry week); so do all slots when the turbulence gate
   (turbulence[t-1] > threshold) breaches with `on_breach="close_all"`, and the slot a legacy "close
   slot i" action names. A slot opened with <= `force_close_dte` days to expiry (the 7-day
   multi-leg actions under the defaults: whoever buys a weekly means to hold it to its expiry) is
   not force-closed: it settles at expiry. So every action of the table, opened on any row of the
   bundled data, is still held after the next step (unless the gate closes it).
3. The action: a masked action never executes (it becomes hold); the mask already bars opens on a
   gated step (the gate reads turbulence[t-1], known when the mask is made). An open fills its legs
   from chain row t: buys at ask x (1 + slippage), sells at bid x (1 - slippage)
   (`costs.slippage_fraction` of the leg's contracts against the volume proxy), paying
   `costs.contract_fees` per leg. Its size, in
   units of the strategy (each leg `ratio` contracts per unit), is the risk budget over the
   strategy's maximum loss per unit at expiry: `premium_fraction` x NAV for debit strategies,
   `collateral_fraction` x NAV for credit ones (cash-secured puts, iron condors), whose maximum loss
   is then pledged from cash as collateral; covered calls cover every 100 free shares. The size is
   cut to what free cash pays for, then by the Greeks limits (below), and floored to whole units; 0
   units trades nothing.
4. Greeks limits: the options book's delta (dollar delta / NAV), gamma (the change of that delta for
   a 1% move) and theta ($ per day per $100,000 of NAV) after the trade against `delta_limit`,
   `gamma_limit`, `theta_limit`: a delta breach multiplies the new trade's units by
   `delta_reduction` (0.5), a gamma or theta breach by `gamma_reduction` (0.7) (once each).
5. Carry to row t+1 (`carry_rates`): the cash after the trade (pledged collateral included, like
   CBOE PUT's T-bills) earns risk_free = exp(r[t] d / 365) - 1, the chain's own dated rate of row t
   (`cash_earns_risk_free`, default on; 0 off) over the d calendar days to row t+1, and held shares
   earn the dividend yield q (`dividend_yield`, the chain's: 2% a year by default, a stated constant;
   `chain.SP500_DIVIDEND_YIELD`) as cash: shares x close[t] x (exp(q d / 365) - 1). Both rates are
   known at t.
6. Mark: NAV = cash + shares x close + sum over legs of side x contracts x 100 x mid, with every
   open leg priced by `chain.leg_quote` at its own strike and expiry on that row. The reward is the
   log change of NAV from row t (before the trade) to row t+1, so fees, spread and slippage are paid
   once, through the fills. Accounting identity after every step: value == cash + shares x close[t+1]
   + marked legs; and value - value_before == mark-to-market PnL - fees - spread and slippage paid
   + interest + dividends.

The book starts as `stock_weight` of `initial_cash` in shares of the underlying (bought at close[start]
without cost: the covered calls' cover) and the rest in cash. The episode's first observation, made
before close[start] is known, shows that book as bought at close[start - 1] (the same weights; its
mask counts the lots at that close). Slots: `max_positions` strategy slots of up to 4 legs; a slot
frees when its legs settle or close.

info (beyond `jaxtrade.envs.base.INFO_KEYS`, whose weights [2] are [underlying: shares and options marked,
cash] of NAV): "book" [3] (shares, options, cash of NAV after the trade), "nav", "cash",
"action" (executed), "executed" (an order was filled), "action_mask" [A], "fees" [6] by kind
(`costs.FEE_KINDS`), "spread_paid", "units", "slot_open" [P], "slot_value" [P], "leg_strike" /
"leg_expiry" / "leg_qty" [P, 4], "greeks" [3] (delta, gamma, theta exposures after the trade),
"settled" (cash from expiries), "forced_close" bool, "trade_closed" / "trade_pnl" [P] (a slot's
strategy ended: its net PnL over its life, fees included), "risk_free" (the simple rate cash earned
from row t to t+1, 0.0 with `cash_earns_risk_free` off), "interest" and "dividends" ($ of that carry).
"""

from __future__ import annotations

import dataclasses
from typing import NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
from flax import struct
from jax import lax

from jaxtrade.data.envdata import EnvData
from jaxtrade.data.features import TURBULENCE_WINDOW
from jaxtrade.envs import market
from jaxtrade.envs import rewards as rewards_lib
from jaxtrade.envs.base import (
    ArraySpec,
    AutoReset,
    DiscreteSpec,
    EpisodeStats,
    ObsSpec,
    SpecProperties,
)
from jaxtrade.envs.options import chain as chain_lib
from jaxtrade.envs.options import costs as costs_lib
from jaxtrade.envs.options import strategies
from jaxtrade.envs.options.pricing import DAYS_PER_YEAR, MULTIPLIER, intrinsic
from jaxtrade.envs.rewards import RewardParams

THETA_NAV_UNIT = 100_000.0      # theta exposure: $ per day per this much NAV
ON_BREACH = ("close_all", "hold")
N_STATE_HEAD = 8                # obs["state"][:8]: see `_obs_state`; then 3 per slot
STATE_N_OPEN = 3                # index of n_open / max_positions in obs["state"]
OBS_CHAIN_FIELDS = ("mid_over_spot_x10", "delta")


@market.keeps_derived_tables(obs_table=market.obs_table)
@struct.dataclass
class OptionsParams:
    """Everything that shapes an options environment (a pytree; numbers are float32 arrays).

    The chain, its observation table, the unit tables and the fee rates are built by `make` from the
    data: `params.replace(data=...)` rebuilds only `obs_table`, so new prices need a new `make`
    (replacing the data's turbulence, or any scalar field, is fine)."""

    data: EnvData                 # N = 1: the underlying
    obs_table: jax.Array          # [T, F + M] market.obs_table(data)
    chain: chain_lib.Chain        # [T, E, K, 2] quotes and Greeks, row t priced at close[t]
    chain_obs: jax.Array          # [T, E * K * 2 * 2] chain features of each row (observed at t + 1)
    unit_debit: jax.Array         # [T, A] $ paid to open one unit at row t's quotes (< 0: credit)
    unit_risk: jax.Array          # [T, A] $ maximum loss of one unit at expiry (> 0)
    unit_greeks: jax.Array        # [T, A, 3] $ delta, $ gamma (1% move), $ theta per day of one unit
    fee_rates: jax.Array          # [T, len(costs.OPTION_FEE_COLUMNS)]
    table: strategies.ActionTable
    reward: RewardParams
    turbulence_threshold: jax.Array
    initial_cash: jax.Array = 1_000_000.0
    stock_weight: jax.Array = 0.5
    premium_fraction: jax.Array = 0.02
    collateral_fraction: jax.Array = 0.25
    delta_limit: jax.Array = 0.5
    gamma_limit: jax.Array = 0.3
    theta_limit: jax.Array = 100.0
    delta_reduction: jax.Array = 0.5
    gamma_reduction: jax.Array = 0.7
    ruin_floor: jax.Array = 0.1
    cash_earns_risk_free: jax.Array = True     # traced (1.0 / 0.0): vmappable, no recompile
    episode_length: int = struct.field(pytree_node=False, default=256)
    window: int = struct.field(pytree_node=False, default=30)
    random_start: bool = struct.field(pytree_node=False, default=True)
    max_positions: int = struct.field(pytree_node=False, default=5)
    force_close_dte: int = struct.field(pytree_node=False, default=7)
    on_breach: str = struct.field(pytree_node=False, default="close_all")
    round_fees_up: bool = struct.field(pytree_node=False, default=False)
    chain_config: chain_lib.ChainConfig = struct.field(pytree_node=False, default=chain_lib.ChainConfig())
    fee_note: str = struct.field(pytree_node=False, default="")

    def describe_costs(self) -> str:
        """One sentence on how this env charges trading and what its cash and shares earn (for report
        notes)."""
        q = self.chain_config.dividend_yield
        cash = ("cash (collateral included) earns the Fama-French one-month T-bill rate of its month"
                if float(self.cash_earns_risk_free) > 0 else "cash earns no interest")
        return ("options fill at the synthetic chain's ask (buys) / bid (sells), spread clip(3% + 5% x "
                "|1 - K/S| + liquidity and IV terms, 2%, 10%) of the mid, plus order-size slippage tiers "
                f"against the volume proxy; per-contract fees: {self.fee_note}; expiries settle in cash at "
                "intrinsic value without fees; the shares carry no costs; "
                f"dividends: a constant yield of {q:.2%} a year (env.dividend_yield, an assumed figure, not "
                "dated dividends) prices the options and is paid on held shares; " + cash)


@struct.dataclass
class OptionsState:
    t: jax.Array
    end: jax.Array
    cash: jax.Array
    shares: jax.Array
    slot_open: jax.Array          # [P] bool
    slot_family: jax.Array        # [P] int32
    slot_units: jax.Array         # [P]
    slot_cash: jax.Array          # [P] net cash flow since the slot opened (fills and fees)
    slot_close_day: jax.Array     # [P] int32 calendar day from which the slot is force-closed
    collateral: jax.Array         # [P] cash pledged by the slot (credit strategies)
    covers: jax.Array             # [P] contracts of shares the slot's short calls cover
    leg_active: jax.Array         # [P, 4] bool
    leg_kind: jax.Array           # [P, 4] int32
    leg_side: jax.Array           # [P, 4] float32 +1 / -1 (0 inactive)
    leg_strike: jax.Array         # [P, 4]
    leg_expiry: jax.Array         # [P, 4] int32 calendar day
    leg_qty: jax.Array            # [P, 4] contracts (>= 0)
    value: jax.Array              # NAV marked at close[t]
    initial_value: jax.Array
    obs_state: jax.Array          # [8 + 3P] what the next observation's "state" is
    mask: jax.Array               # [A] actions allowed at row t
    reward_state: rewards_lib.RewardState
    episode_return: jax.Array
    episode_length: jax.Array


# Quotes and marks.

def _row_quotes(params, t, S, strike, expiry, kind):
    """(mid, bid, ask, Greeks, volume) of legs [..] at row t (spot S)."""
    c = params.chain
    mid, bid, ask, g = chain_lib.leg_quote(S, strike, expiry, c.day[t], c.rate[t], c.atm_iv[t], kind,
                                           params.chain_config)
    dte = (expiry - c.day[t]).astype(jnp.float32)
    vol = chain_lib.volume_proxy(S, strike, dte, params.chain_config)
    return mid, bid, ask, g, vol


def _marked(state: OptionsState, mid) -> jax.Array:
    """[P] marked value of each slot's legs, $."""
    return jnp.sum(jnp.where(state.leg_active, state.leg_side * state.leg_qty * MULTIPLIER * mid, 0.0), -1)


class Greeks3(NamedTuple):
    delta: jax.Array
    gamma: jax.Array
    theta: jax.Array


def _exposures(side_qty, S, g, value):
    """(delta, gamma, theta) exposures of legs [..] (side x contracts) per `_exposure` units."""
    m = side_qty * MULTIPLIER
    delta = jnp.sum(m * g.delta) * S / value
    gamma = jnp.sum(m * g.gamma) * S * S * 0.01 / value
    theta = jnp.sum(m * g.theta) * THETA_NAV_UNIT / value
    return jnp.stack([delta, gamma, theta])


def _fees(qty, premium, is_sell, rates, params):
    return costs_lib.contract_fees(qty, premium, is_sell, rates, round_up_cents=params.round_fees_up)


def _close_day(expiry, day, force_close_dte: int):
    """The calendar day from which a slot opened on `day` whose first leg expires on `expiry` is
    force-closed: force_close_dte days before that expiry; a slot opened with no more than
    force_close_dte days left (the 7-day multi-leg actions under the defaults) is held to its expiry
    and settles there (the close day is the expiry itself)."""
    return jnp.where(expiry - day > force_close_dte, expiry - force_close_dte, expiry)


def carry_rates(params: OptionsParams, t):
    """(risk_free, dividend_rate): the simple rates that cash and held shares earn from row t to t + 1.

    risk_free = exp(r[t] d / 365) - 1, r[t] the chain's continuous annual rate of row t's month (the
    Fama-French one-month T-bill, known at the month's start: causal) and d = day[t + 1] - day[t]
    calendar days, the discounting the chain prices with; 0 with `cash_earns_risk_free` off.
    dividend_rate = exp(q d / 365) - 1, q = `chain_config.dividend_yield`: a share held from t to
    t + 1 pays dividend_rate x close[t] in cash (a continuous yield, as the chain prices it)."""
    c = params.chain
    days = (c.day[t + 1] - c.day[t]).astype(jnp.float32)
    rf = jnp.where(params.cash_earns_risk_free > 0, jnp.expm1(c.rate[t] * days / DAYS_PER_YEAR), 0.0)
    div_rate = jnp.expm1(jnp.float32(params.chain_config.dividend_yield) * days / DAYS_PER_YEAR)
    return rf.astype(jnp.float32), div_rate


# The host-side tables of make.

def _unit_tables(chain, table: strategies.ActionTable):
    """unit_debit [T, A], unit_risk [T, A], unit_greeks [T, A, 3] from the chain's rows (at mid for the
    Greeks, at ask / bid for the debit; the maximum loss over terminal prices at every strike, 0 and
    3 x the top strike, debit included; at least $1)."""
    kidx = table.strike_offset + strategies.ATM_INDEX                  # [A, 4]
    e, kind = table.expiry_index, table.kind
    side = table.side.astype(jnp.float32) * table.ratio.astype(jnp.float32)   # [A, 4], 0 on inactive

    def per_row(r):
        ask = r["ask"][e, kidx, kind]
        bid = r["bid"][e, kidx, kind]
        px = jnp.where(side > 0, ask, bid)
        debit = jnp.sum(jnp.where(side != 0, side * px, 0.0), -1) * MULTIPLIER
        K = r["strike"][kidx]                                          # [A, 4]
        grid = jnp.concatenate([jnp.zeros(1), r["strike"], 3.0 * r["strike"][-1:]])   # [G]
        pay = intrinsic(grid[:, None, None], K[None], kind[None])      # [G, A, 4]
        payoff = jnp.sum(jnp.where(side[None] != 0, side[None] * pay, 0.0), -1) * MULTIPLIER   # [G, A]
        risk = jnp.maximum(debit - jnp.min(payoff, 0), 1.0)
        gs = [jnp.sum(jnp.where(side != 0, side * r[k][e, kidx, kind], 0.0), -1) * MULTIPLIER
              for k in ("delta", "gamma", "theta")]
        S = r["spot"]
        greeks = jnp.stack([gs[0] * S, gs[1] * S * S * 0.01, gs[2]], -1)
        return debit, risk, greeks

    rows = dict(ask=chain.ask, bid=chain.bid, strike=chain.strike, delta=chain.delta, gamma=chain.gamma,
                theta=chain.theta, spot=chain.spot)
    return jax.jit(jax.vmap(per_row))(rows)


def chain_features(chain) -> jax.Array:
    """[T, E * K * 2 * 2] per row: mid / spot x 10 and delta of every contract (NaN rows -> 0)."""
    mid = chain.mid / chain.spot[:, None, None, None] * 10.0
    f = jnp.stack([mid, chain.delta], -1).reshape(chain.mid.shape[0], -1)
    return jnp.nan_to_num(f, nan=0.0).astype(jnp.float32)


# The environment.

class OptionsEnv(SpecProperties):
    """The core options environment (its `step` never resets; `AutoReset` does)."""

    registry_name = "options"       # its registration (jaxtrade.envs.registry.registration_of)

    def __init__(self, n_actions: int, obs_spec: ObsSpec | None = None, action_names=None):
        self.action_spec = DiscreteSpec(n_actions, masked=True)
        self.obs_spec = obs_spec
        self.action_names = action_names      # what reports call each action (the table's labels)

    # reset / observe

    def reset(self, key, params: OptionsParams):
        state = reset_state(jax.random.uniform(key), params)
        return observe(state, params), state

    def step(self, key, state, action, params):
        del key                      # the step is deterministic (slippage follows the volume proxy)
        state, reward, done, info = transition(state, action, params)
        return observe(state, params), state, reward, done, info

    def observe(self, state, params):
        return observe(state, params)

    def step_and_reset(self, key, state, action, params):
        """`AutoReset`'s fast path: the step is deterministic, the key draws the reset row."""
        next_state, reward, done, info = transition(state, action, params)
        return next_state, reward, done, info, reset_state(jax.random.uniform(key), params)


def _empty_book(P: int):
    z = lambda *s: jnp.zeros(s, jnp.float32)
    i = lambda *s: jnp.zeros(s, jnp.int32)
    return dict(slot_open=jnp.zeros((P,), bool), slot_family=i(P), slot_units=z(P), slot_cash=z(P),
                slot_close_day=i(P), collateral=z(P), covers=z(P), leg_active=jnp.zeros((P, 4), bool),
                leg_kind=jnp.zeros((P, 4), jnp.int32), leg_side=z(P, 4), leg_strike=z(P, 4),
                leg_expiry=jnp.zeros((P, 4), jnp.int32), leg_qty=z(P, 4))


def reset_state(u, params: OptionsParams) -> OptionsState:
    start, end = market.episode_bounds(u, params)
    P = params.max_positions
    cash0 = jnp.asarray(params.initial_cash, jnp.float32)
    S = params.data.close[start, 0]
    shares = cash0 * params.stock_weight / S
    cash = cash0 - shares * S
    state = OptionsState(
        t=start, end=end, cash=cash, shares=shares, **_empty_book(P), value=cash0, initial_value=cash0,
        obs_state=jnp.zeros((N_STATE_HEAD + 3 * P,), jnp.float32),
        mask=jnp.zeros((params.table.n_actions,), bool), reward_state=rewards_lib.init_reward_state(cash0),
        episode_return=jnp.zeros((), jnp.float32), episode_length=jnp.zeros((), jnp.int32))
    # What the first observation shows (rows < start only): the book as the same stock_weight bought
    # at close[start - 1] would be, marked there, and its mask. The shares themselves are bought at
    # close[start], which the observation must not reveal (not even through their lot count).
    S_seen = params.data.close[start - 1, 0]
    shares_seen = cash0 * params.stock_weight / S_seen
    seen = state.replace(shares=shares_seen, cash=cash0 - shares_seen * S_seen)
    return _finish(seen, params, start - 1, S_obs=S_seen).replace(shares=shares, cash=cash)   # empty book


def observe(state: OptionsState, params: OptionsParams) -> dict:
    window = lax.dynamic_slice_in_dim(params.obs_table, state.t - params.window, params.window, 0)
    return {"window": window, "chain": params.chain_obs[state.t - 1], "state": state.obs_state,
            "action_mask": state.mask}


def obs_spec(params: OptionsParams) -> ObsSpec:
    P = params.max_positions
    return ObsSpec.of({"window": ArraySpec((int(params.window), int(params.obs_table.shape[1]))),
                       "chain": ArraySpec((int(params.chain_obs.shape[1]),)),
                       "state": ArraySpec((N_STATE_HEAD + 3 * P,)),
                       "action_mask": ArraySpec((int(params.table.n_actions),), "bool")})


def _free(state: OptionsState):
    """(cash not pledged as collateral, contracts' worth of shares not covering a call)."""
    cash_free = state.cash - jnp.sum(jnp.where(state.slot_open, state.collateral, 0.0))
    covered = jnp.sum(jnp.where(state.slot_open, state.covers, 0.0))
    shares_free = jnp.floor(state.shares / MULTIPLIER + 1e-6) - covered
    return cash_free, shares_free


def _finish(state: OptionsState, params: OptionsParams, row, *, S_obs, mid=None, g=None):
    """state with obs_state (the book marked at `row`) and mask (the actions allowed at row + 1).

    mid [P, 4] and g (delta, gamma, theta [P, 4]): the book's quotes at `row` (None: an empty book)."""
    P = params.max_positions
    if mid is None:
        zero = jnp.zeros(state.leg_strike.shape, jnp.float32)
        mid, g = zero, Greeks3(zero, zero, zero)
    slot_value = _marked(state, mid)
    stock = state.shares * S_obs
    nav = state.cash + stock + jnp.sum(slot_value)
    nav_safe = jnp.where(nav > 0, nav, 1.0)
    side_qty = jnp.where(state.leg_active, state.leg_side * state.leg_qty, 0.0)
    greeks = _exposures(side_qty, S_obs, g, nav_safe)
    cash_free, shares_free = _free(state)
    dte = jnp.where(state.leg_active, state.leg_expiry - params.chain.day[row], 10_000).min(-1)
    n_open = jnp.sum(state.slot_open)
    head = jnp.stack([cash_free / nav_safe, stock / nav_safe, jnp.sum(slot_value) / nav_safe,
                      n_open / P, greeks[0], greeks[1], greeks[2] / 100.0,
                      params.chain.atm_iv[row]])
    per_slot = jnp.stack([state.slot_open.astype(jnp.float32),
                          jnp.where(state.slot_open, jnp.minimum(dte, 60) / 35.0, 0.0),
                          slot_value / nav_safe], -1).reshape(-1)
    obs_state = jnp.nan_to_num(jnp.concatenate([head, per_slot]), nan=0.0).astype(jnp.float32)
    # Slots that settle or force-close on the next row free up before its action (calendar only).
    freeing = state.slot_open & (params.chain.day[row + 1] >= state.slot_close_day)
    n_after = n_open - jnp.sum(freeing)
    free_collateral = jnp.sum(jnp.where(freeing, state.collateral, 0.0))
    free_covers = jnp.sum(jnp.where(freeing, state.covers, 0.0))
    collat = params.unit_risk[row]                                     # one unit at row's quotes
    mask = strategies.structural_mask(params.table, n_after, P, shares_free + free_covers,
                                      cash_free + free_collateral, collat,
                                      state.slot_open & ~freeing)
    # Debit strategies need the cash for one unit at the last quotes; nothing opens on an untradable
    # chain row (NaN implied vol) or past the episode's last trading row.
    debit = params.unit_debit[row]
    afford = ~params.table.is_open | params.table.needs_shares | params.table.cash_secured | \
        params.table.is_credit | (debit <= cash_free + free_collateral)
    tradable = jnp.isfinite(params.chain.atm_iv[row])
    # The next step's gate reads turbulence[row], known now: a gated step opens nothing.
    gated = params.data.turbulence[row] > params.turbulence_threshold
    mask = mask & (afford & tradable & ~gated | ~params.table.is_open)
    mask = mask.at[0].set(True)
    return state.replace(obs_state=obs_state, mask=mask)


def transition(state: OptionsState, action, params: OptionsParams):
    """(state, reward, done, info) of one step (module docstring); never resets."""
    data, c, tab = params.data, params.chain, params.table
    P = params.max_positions
    t = state.t
    S, S1 = data.close[t, 0], data.close[t + 1, 0]
    day = c.day[t]
    rates = params.fee_rates[t]
    value0 = state.value

    # 1. expiries settle at intrinsic value (cash), before anything trades.
    expired_leg = state.leg_active & (state.leg_expiry <= day)
    settle = jnp.sum(jnp.where(expired_leg, state.leg_side * state.leg_qty * MULTIPLIER *
                               intrinsic(S, state.leg_strike, state.leg_kind), 0.0), -1)      # [P]
    expired = state.slot_open & jnp.any(expired_leg, -1)

    # 2. closes: forced (dte <= force_close_dte), the gate, a legacy close action.
    gate = data.turbulence[t - 1] > params.turbulence_threshold
    action = jnp.clip(jnp.asarray(action, jnp.int32), 0, tab.n_actions - 1)
    allowed = state.mask[action]
    act = jnp.where(allowed, action, 0)
    if params.on_breach == "close_all":
        act = jnp.where(gate, 0, act)
    else:
        act = jnp.where(gate & tab.is_open[act], 0, act)
    forced = state.slot_open & ~expired & (day >= state.slot_close_day)
    gate_close = state.slot_open & ~expired & gate & (params.on_breach == "close_all")
    chosen = state.slot_open & ~expired & (jnp.arange(P) == tab.close_slot[act])
    closing = forced | gate_close | chosen
    mid, bid, ask, g_book, vol = _row_quotes(params, t, S, state.leg_strike, state.leg_expiry, state.leg_kind)
    close_leg = closing[:, None] & state.leg_active
    slip = costs_lib.slippage_fraction(state.leg_qty, vol)
    long_leg = state.leg_side > 0
    fill = jnp.where(long_leg, bid * (1.0 - slip), ask * (1.0 + slip))               # [P, 4]
    fee_c, fee_kinds_c = _fees(state.leg_qty, fill, long_leg, rates, params)
    fee_c = jnp.where(close_leg, fee_c, 0.0)
    fee_kinds_c = jnp.where(close_leg[..., None], fee_kinds_c, 0.0)
    proceeds = jnp.where(close_leg, state.leg_side * state.leg_qty * MULTIPLIER * fill, 0.0)
    spread_c = jnp.sum(jnp.where(close_leg, state.leg_qty * MULTIPLIER * jnp.abs(mid - fill), 0.0))
    slot_flow = settle + jnp.sum(proceeds - fee_c, -1)                                 # [P]
    ended = expired | closing
    pnl = jnp.where(ended, state.slot_cash + slot_flow, 0.0)
    cash = state.cash + jnp.sum(slot_flow)
    keep = state.slot_open & ~ended
    book = dict(slot_open=keep, leg_active=state.leg_active & keep[:, None])
    state = state.replace(cash=cash, **book)

    # 3. the open.
    legs = tab.legs(act)
    kidx = legs.strike_index
    K = c.strike[t, kidx]                                                              # [4]
    exp = c.expiry_day[t, legs.expiry_index]
    q_ask = c.ask[t, legs.expiry_index, kidx, legs.kind]
    q_bid = c.bid[t, legs.expiry_index, kidx, legs.kind]
    q_mid = c.mid[t, legs.expiry_index, kidx, legs.kind]
    q_vol = c.volume[t, legs.expiry_index, kidx, legs.kind]

    def c_field(name):
        return getattr(c, name)[t, legs.expiry_index, kidx, legs.kind]
    side = legs.side.astype(jnp.float32)
    ratio = legs.ratio.astype(jnp.float32)
    is_open = tab.is_open[act] & jnp.isfinite(c.atm_iv[t])
    credit = tab.is_credit[act] & ~tab.needs_shares[act]
    debit_u, risk_u = params.unit_debit[t, act], params.unit_risk[t, act]
    greeks_u = params.unit_greeks[t, act]
    cash_free, shares_free = _free(state)
    budget = jnp.where(credit, params.collateral_fraction, params.premium_fraction) * value0
    units = jnp.floor(budget / risk_u)
    units = jnp.where(tab.needs_shares[act], shares_free / jnp.maximum(tab.shares_needed[act], 1), units)
    # Cash: a debit is paid from free cash (fees estimated at the quotes); a credit pledges its risk.
    fee_unit = jnp.sum(_fees(ratio, q_mid, side < 0, rates, params)[0] * legs.active)
    # (a covered call's premium pays its own fees: it needs no free cash unless the fees exceed it)
    per_unit_cash = jnp.where(credit, risk_u, jnp.maximum(debit_u + fee_unit, 0.0))
    affordable = jnp.floor(jnp.maximum(cash_free, 0.0) / jnp.maximum(per_unit_cash, 1e-6))
    units = jnp.where(per_unit_cash > 0, jnp.minimum(units, affordable), units)
    # Greeks limits on the book after the trade (existing legs marked at row t).
    book_exp = _exposures(jnp.where(state.leg_active, state.leg_side * state.leg_qty, 0.0), S, g_book, value0)
    unit_exp = greeks_u * jnp.array([1.0, 1.0, THETA_NAV_UNIT]) / value0
    after = book_exp + jnp.floor(jnp.maximum(units, 0.0)) * unit_exp
    breach_delta = jnp.abs(after[0]) > params.delta_limit
    breach_other = (jnp.abs(after[1]) > params.gamma_limit) | (jnp.abs(after[2]) > params.theta_limit)
    scale = (jnp.where(breach_delta, params.delta_reduction, 1.0)
             * jnp.where(breach_other, params.gamma_reduction, 1.0))
    units = jnp.where(is_open, jnp.floor(jnp.maximum(units, 0.0) * scale), 0.0)
    slot = jnp.argmin(state.slot_open)                                                 # first free slot
    has_slot = ~jnp.all(state.slot_open)
    executed = is_open & (units >= 1) & has_slot
    units = jnp.where(executed, units, 0.0)
    qty = units * ratio * legs.active                                                  # [4] contracts
    slip_o = costs_lib.slippage_fraction(qty, q_vol)
    fill_o = jnp.where(side > 0, q_ask * (1.0 + slip_o), q_bid * (1.0 - slip_o))
    fee_o, fee_kinds_o = _fees(qty, fill_o, side < 0, rates, params)
    fee_o = jnp.where(qty > 0, fee_o, 0.0)
    fee_kinds_o = jnp.where((qty > 0)[:, None], fee_kinds_o, 0.0)
    paid = jnp.sum(side * qty * MULTIPLIER * fill_o) + jnp.sum(fee_o)
    spread_o = jnp.sum(qty * MULTIPLIER * jnp.abs(fill_o - q_mid))
    cash = cash - paid
    onehot = (jnp.arange(P) == slot) & executed
    put = lambda old, new: jnp.where(onehot.reshape((P,) + (1,) * (old.ndim - 1)), new, old)
    covers = jnp.where(tab.needs_shares[act], units * tab.shares_needed[act], 0.0)
    close_day = _close_day(jnp.where(legs.active, exp, jnp.iinfo(jnp.int32).max).min(), day,
                           params.force_close_dte)
    state = state.replace(
        cash=cash, slot_open=state.slot_open | onehot, slot_family=put(state.slot_family, tab.family[act]),
        slot_units=put(state.slot_units, units), slot_cash=put(state.slot_cash, -paid),
        slot_close_day=put(state.slot_close_day, close_day),
        collateral=put(state.collateral, jnp.where(credit, units * risk_u, 0.0)),
        covers=put(state.covers, covers),
        leg_active=put(state.leg_active, legs.active & executed),
        leg_kind=put(state.leg_kind, legs.kind), leg_side=put(state.leg_side, side),
        leg_strike=put(state.leg_strike, K), leg_expiry=put(state.leg_expiry, exp),
        leg_qty=put(state.leg_qty, qty))

    # 4. carry from row t to t + 1 (interest on cash, dividends on shares), then mark at row t + 1.
    cash_t = state.cash
    rf, div_rate = carry_rates(params, t)
    interest = cash_t * rf
    dividends = state.shares * S * div_rate
    state = state.replace(cash=cash_t + interest + dividends)
    mid1 = chain_lib.leg_mid(S1, state.leg_strike, state.leg_expiry, c.day[t + 1], c.rate[t + 1],
                             c.atm_iv[t + 1], state.leg_kind, params.chain_config)
    slot_value1 = _marked(state, mid1)
    value1 = state.cash + state.shares * S1 + jnp.sum(slot_value1)
    fees_total = jnp.sum(fee_c) + jnp.sum(fee_o)
    fee_kinds = jnp.sum(fee_kinds_c, (0, 1)) + jnp.sum(fee_kinds_o, 0)
    spread_paid = spread_c + spread_o
    reward, reward_state, t1, terminated, truncated, done, episode_return, episode_length = \
        market.episode_step(value0, value1, fees_total + spread_paid, state, params)
    state = state.replace(t=t1, value=value1, reward_state=reward_state, episode_return=episode_return,
                          episode_length=episode_length)
    # Weights after the trade at row t (marks at row t), as the other envs report them.
    # The book at row t's quotes: the legs held before (quoted above) and the new slot's (the chain's).
    new = onehot[:, None]
    mid_t = jnp.where(new, q_mid[None], mid)
    g_t = Greeks3(*(jnp.where(new, c_field(f)[None], getattr(g_book, f))
                    for f in ("delta", "gamma", "theta")))
    slot_value_t = _marked(state, mid_t)
    post = cash_t + state.shares * S + jnp.sum(slot_value_t)
    post_safe = jnp.where(post > 0, post, 1.0)
    v1_safe = jnp.where(value1 > 0, value1, 1.0)
    book = jnp.stack([state.shares * S, jnp.sum(slot_value_t), cash_t]) / post_safe
    # weights [N + 1] as every env reports them: the underlying (shares and the options on it), cash.
    weights = jnp.stack([book[0] + book[1], book[2]])
    weights_marked = jnp.stack([state.shares * S1 + jnp.sum(slot_value1), state.cash]) / v1_safe
    # The next observation: the book at row t (its cash before the carry to t + 1).
    state_fin = _finish(state.replace(cash=cash_t), params, t, S_obs=S, mid=mid_t, g=g_t)
    state_fin = state_fin.replace(cash=state.cash)
    traded = jnp.sum(jnp.abs(proceeds)) + jnp.sum(jnp.abs(side * qty * MULTIPLIER * fill_o))
    info = {
        "truncated": truncated, "terminated": terminated, "episode_return": episode_return,
        "episode_length": episode_length,
        "episode_growth": rewards_lib.log_return(state.initial_value, value1),
        "value_before": value0, "value": value1, "nav": value1, "cash": state.cash,
        "weights": weights, "weights_marked": weights_marked, "book": book,
        "turnover": traded / value0, "costs": fees_total + spread_paid, "fees": fee_kinds,
        "spread_paid": spread_paid, "gate": gate, "turbulence": data.turbulence[t - 1],
        "turbulence_next": data.turbulence[t], "trade_closed": ended, "trade_pnl": pnl,
        "action": act, "executed": executed, "units": units, "action_mask": state.mask,
        "slot_open": state.slot_open, "slot_value": slot_value1, "leg_strike": state.leg_strike,
        "leg_expiry": state.leg_expiry, "leg_qty": jnp.where(state.leg_active, state.leg_qty, 0.0),
        "greeks": state_fin.obs_state[4:7] * jnp.array([1.0, 1.0, 100.0]), "settled": jnp.sum(settle),
        "forced_close": jnp.any(forced), "risk_free": rf, "interest": interest, "dividends": dividends,
    }
    return state_fin, reward, done, info


# make

CONFIG_DEFAULTS = {
    **{k: v for k, v in market.param_defaults(OptionsParams).items()
       if k not in ("chain", "chain_obs", "unit_debit", "unit_risk", "unit_greeks", "fee_rates", "table",
                    "chain_config")},
    "layout": "full", "fee_mode": "schedule", "fee_profile": "retail",
    **{f.name: f.default for f in dataclasses.fields(chain_lib.ChainConfig)},
    "rate_after_last": "raise", "gate_quantile": 0.90,
}
_CHAIN_KEYS = tuple(f.name for f in dataclasses.fields(chain_lib.ChainConfig))


def univariate_turbulence(close, window: int) -> np.ndarray:
    """[T] squared z-score of each row's log return against the `window` returns before it (rows
    without a full window: 0, never gated). Causal: row t uses closes <= t."""
    r = np.diff(np.log(np.asarray(close, np.float64)), prepend=np.nan)
    out = np.zeros_like(r)
    for t in range(window + 1, len(r)):
        hist = r[t - window:t]
        sd = hist.std(ddof=1)
        out[t] = ((r[t] - hist.mean()) / sd) ** 2 if sd > 0 else 0.0
    return out


def _dates(data: EnvData):
    import pandas as pd

    if data.day is None:
        raise ValueError("the options env needs EnvData.day (the rows' calendar days, filled by "
                         "Split.to_device): build the data with jaxtrade.data.split")
    return pd.DatetimeIndex(np.asarray(data.day).astype("datetime64[D]"))


def make(data: EnvData, config: dict | None = None):
    """(EpisodeStats(AutoReset(OptionsEnv)), OptionsParams) on the underlying `data` (N = 1).

    The turbulence gate reads `univariate_turbulence` of the underlying; `turbulence_threshold` None
    takes its `gate_quantile` over this data's traded rows: make the env on the TRAINING split first
    and pass its threshold to the others (`train.setup.build` does), never refit it on later data.

    config: the checked nested env config: `CONFIG_DEFAULTS` (the fields of OptionsParams, the
    ChainConfig fields, `layout` "full" | "legacy", `fee_mode` "schedule" | "flat" | "none",
    `fee_profile` "retail" | "alpaca" | "occ_direct", `rate_after_last` "raise" | "hold" for the
    Fama-French rate past 2018-11) and `reward`.
    """
    config = dict(config or {})
    if data.n_assets != 1:
        raise ValueError(f"the options env trades one underlying; the data has {data.n_assets} symbols")
    layout = config.pop("layout", "full")
    if layout not in strategies.LAYOUTS:
        raise ValueError(f"env.layout={layout!r} is not one of {list(strategies.LAYOUTS)}")
    fee_mode = config.pop("fee_mode", "schedule")
    fee_profile = config.pop("fee_profile", "retail")
    after_last = config.pop("rate_after_last", "raise")
    gate_quantile = float(config.pop("gate_quantile", 0.90))
    if not 0.0 < gate_quantile <= 1.0:
        raise ValueError(f"env.gate_quantile={gate_quantile} must be in (0, 1]")
    chain_kw = {k: config.pop(k) for k in _CHAIN_KEYS if k in config}
    on_breach = config.get("on_breach", "close_all")
    if on_breach not in ON_BREACH:
        raise ValueError(f"env.on_breach={on_breach!r} is not one of {list(ON_BREACH)}")
    cfg = chain_lib.ChainConfig(**chain_kw)
    dates = _dates(data)
    close = np.asarray(data.close[:, 0], np.float64)
    aux = {k: np.asarray(v, np.float64) for k, v in data.aux.items()}
    iv, _ = chain_lib.implied_vol_series(close, aux, cfg, data.periods_per_year)
    rate = chain_lib.annual_rate_series(dates, after_last=after_last)
    chain = chain_lib.build_chain(close, np.asarray(data.day), iv, rate, cfg)
    table = strategies.action_table(layout, cfg.n_strikes, cfg.n_expiries)
    try:
        fee_rates = costs_lib.option_fee_rates(dates[data.start:], fee_profile, fee_mode)
    except costs_lib.OptionFeeScheduleError as e:
        raise ValueError(f"{e} (set env.fee_mode='flat' for the published 2024 rates on every date, or "
                         "'none')") from e
    head = costs_lib.option_fee_rates(dates[:1], fee_profile, "flat")     # history rows never trade
    fee_note = {"schedule": f"the dated schedule ({fee_profile} profile) on each trade date",
                "flat": f"the published 2024 rate set on every date ({fee_profile} profile; an assumption "
                        "outside 2024-05-22 .. 2025-05-13)",
                "none": "none"}[fee_mode]
    fee_rates = np.concatenate([np.repeat(head, data.start, 0), fee_rates])
    # The gate's series: one underlying has no cross-section, so its turbulence is the 1-D
    # Mahalanobis distance, the squared z-score of row t's log return against the trailing window.
    # The window is the split's history (start - 2 returns): the first gate, at row start, reads row
    # start - 1, which then has a full window; TURBULENCE_WINDOW (252) would leave a year ungated.
    turb = univariate_turbulence(close, max(2, min(TURBULENCE_WINDOW, data.start - 2)))
    data = data.replace(turbulence=jnp.asarray(turb, jnp.float32))
    if config.get("turbulence_threshold") is None:
        config["turbulence_threshold"] = float(np.nanquantile(turb[data.start:], gate_quantile))
    debit, risk, greeks = _unit_tables(chain, table)
    tables = dict(chain=chain, chain_obs=chain_features(chain), unit_debit=debit, unit_risk=risk,
                  unit_greeks=greeks, fee_rates=jnp.asarray(fee_rates, jnp.float32), table=table)
    params = _build(data, config, tables, cfg).replace(fee_note=fee_note)
    env = OptionsEnv(table.n_actions, obs_spec=obs_spec(params),
                     action_names=strategies.action_labels(layout))
    return EpisodeStats(AutoReset(env)), params


def _build(data, config, tables, cfg):
    reward = RewardParams(**(config.pop("reward", None) or {}))
    names = {f.name: f for f in dataclasses.fields(OptionsParams)}
    statics = {n for n, f in names.items() if not f.metadata.get("pytree_node", True)}
    top = {n: f.default for n, f in names.items() if f.default is not dataclasses.MISSING}
    top.pop("chain_config")
    derived = {"data", "obs_table", "reward", "chain_config", *tables}
    unknown = sorted(set(config) - (set(names) - derived))
    if unknown:
        raise ValueError(f"unknown env config keys {['env.' + k for k in unknown]} for the options env")
    top.update(config)
    if top.get("turbulence_threshold") is None:
        top["turbulence_threshold"] = data.turbulence_threshold
    for k in ("window", "episode_length", "max_positions", "force_close_dte"):
        top[k] = market._static_int(f"env.{k}", top[k])
    top["random_start"] = bool(top["random_start"])
    top["round_fees_up"] = bool(top["round_fees_up"])
    earns = top["cash_earns_risk_free"]
    if isinstance(earns, str) or earns not in (True, False):
        raise ValueError(f"env.cash_earns_risk_free must be True or False, got {earns!r}")
    top = {k: (v if k in statics else jnp.asarray(v, jnp.float32)) for k, v in top.items()}
    params = OptionsParams(data=data, obs_table=market.obs_table(data), reward=jax.tree.map(
        lambda x: jnp.asarray(x, jnp.float32), reward), chain_config=cfg, **tables, **top)
    _check(params)
    return params


def _check(params: OptionsParams) -> None:
    data = params.data
    if params.window < 1 or params.window > data.start:
        raise ValueError(f"env.window={params.window} must be in [1, EnvData.start={data.start}] (split with "
                         f"lookback >= env.window)")
    if params.random_start and data.n_rows - 1 - params.episode_length < data.start:
        raise ValueError(f"random_start needs at least EnvData.start + env.episode_length + 1 = "
                         f"{data.start + params.episode_length + 1} rows, the data has {data.n_rows}")
    if params.max_positions < 1:
        raise ValueError(f"env.max_positions must be >= 1, got {params.max_positions}")
    iv = np.asarray(params.chain.atm_iv)[data.start - 1:]
    if not np.isfinite(iv).all():
        bad = int(np.argmin(np.isfinite(iv))) + data.start - 1
        raise ValueError(f"no implied volatility on row {bad} (traded or observed): give the data an "
                         f"aux 'iv' series or more history rows for the realized estimate")

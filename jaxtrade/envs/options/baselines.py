"""What the `options` registration knows beyond its step: its baselines (CBOE methodology, through the
env's chain, fills and fees), its constant rules, its hold action (`jaxtrade.envs.registry`, point 4)."""

from __future__ import annotations

import jax.numpy as jnp
import numpy as np
from jax.tree_util import Partial

from jaxtrade.envs.base import Policy
from jaxtrade.envs.fixed_policies import constant_policy, stateless_init
from jaxtrade.envs.options import env as options_env
from jaxtrade.envs.options import strategies


def _when_allowed_act(action, only_when_flat, key, carry, obs):
    del key
    ok = obs["action_mask"][action]
    if only_when_flat:
        ok = ok & (obs["state"][options_env.STATE_N_OPEN] == 0)
    return jnp.where(ok, action, 0).astype(jnp.int32), carry


def when_allowed_policy(action: int, *, only_when_flat: bool = False) -> Policy:
    """`action` whenever the mask allows it (and, only_when_flat, no slot is open), else hold."""
    return Policy(init=stateless_init, act=Partial(_when_allowed_act, jnp.int32(action), only_when_flat))


def _atm(t, family) -> int:
    return int(np.flatnonzero((t.family == family) & (t.strike_offset[:, 0] == 0))[0])


def options_baseline_specs() -> dict:
    """name -> (action or None for hold, only when flat, param changes): cash (no shares, hold),
    underlying_buy_hold (all in the underlying, hold), bxm (all in the underlying, an at-the-money
    28-day call sold against it whenever it is uncovered: BXM's covered call, rolled when the env
    force-closes it at <= force_close_dte days instead of at the monthly expiry), put (no shares, an
    at-the-money 28-day cash-secured put sold whenever no position is open, sized to the whole NAV as
    collateral: CBOE PUT; the collateral earns the T-bill rate, like PUT's T-bills, where
    `cash_earns_risk_free` is on). Shares earn the env's dividend yield (`dividend_yield`)."""
    t = strategies.numpy_table("full")
    return {"cash": (None, False, dict(stock_weight=0.0)),
            "underlying_buy_hold": (None, False, dict(stock_weight=1.0)),
            "bxm": (_atm(t, strategies.COVERED_CALL), False, dict(stock_weight=1.0)),
            "put": (_atm(t, strategies.CASH_SECURED_PUT), True,
                    dict(stock_weight=0.0, collateral_fraction=1.0))}


def baselines(env, params, split=None, *, history=None, cov_window: int = 252) -> dict:
    """{name: (policy, env, params)} of `options_baseline_specs`."""
    del split, history, cov_window
    out = {}
    for name, (action, flat, changes) in options_baseline_specs().items():
        pol = constant_policy(0) if action is None else when_allowed_policy(action, only_when_flat=flat)
        out[name] = (pol, env, params.replace(**{k: jnp.asarray(v, jnp.float32) for k, v in changes.items()}))
    return out


def constant_policies(env, params) -> dict[str, Policy]:
    """hold, and (full layout) each family's at-the-money 28-day single-leg action taken whenever
    allowed (`always_<family>`)."""
    out = {"hold": constant_policy(0)}
    if params.table.layout == "full":
        t = strategies.numpy_table("full")
        for fam in (strategies.BUY_CALL, strategies.BUY_PUT, strategies.COVERED_CALL,
                    strategies.CASH_SECURED_PUT):
            out[f"always_{strategies.FAMILIES[fam]}"] = when_allowed_policy(_atm(t, fam))
    return out


def hold_action(config: dict) -> int:
    """The strategy table's hold row."""
    family = strategies.numpy_table(config.get("layout", "full")).family
    return int(np.flatnonzero(family == strategies.HOLD)[0])


def describe_costs(params) -> str:
    return params.describe_costs()

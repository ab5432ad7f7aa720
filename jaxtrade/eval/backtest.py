"""`backtest`: one policy, one environment, one whole split, one jitted `lax.scan`; a DataFrame back.
`backtest_many`: the same for many policies, one `vmap`-ed scan per architecture.

Every number in the frame comes from the step's `info` (`jaxtrade.envs.base.INFO_KEYS`), never
from the environment's state, so any environment that emits those entries backtests.

Row layout of the returned frame (one row per date t = start .. end of the episode, end = last row):

    value                 portfolio value at close[t] *before* the day's trade (row 0: the initial
                          cash); so value[i+1] / value[i] - 1 is the day's return net of its costs
    w_<symbol>, w_cash    weights right after the trade at close[t] (last row: drifted to close[end],
                          info["weights_marked"])
    turnover, costs       of the trade at close[t] (traded value / value before it; quote currency)
    gate                  the turbulence gate overrode the action at t (turbulence[t-1] > threshold)
    turbulence            turbulence[t-1], what the gate compared (last row: info["turbulence_next"]
                          of the last step); turbulence_threshold beside it
    trade_closed          number of positions closed at t; trades_won of them with net PnL > 0;
                          trade_pnl the sum of their net PnLs (quote currency)
    reward, action        the environment's reward and the policy's action (discrete: the index;
                          continuous: not recorded)
    risk_free             only where the env earns interest on cash (`info["risk_free"]`): the
                          per-period rate cash earned from t to t+1; `stats` takes Sharpe and Sortino
                          over it (excess returns)
    terminated            ruin ended the episode at t (value < ruin_floor * initial); later rows
                          are frozen at the final value

The last row has no trade (zeros). Columns are float64 (bool for `gate`); attrs carry
`periods_per_year`, `initial_value` and, for a discrete env that names its actions (an
`action_names` attribute: a sequence, or a function of the env params), `action_names` (the
report's action timeline reads them).
"""

from __future__ import annotations

from functools import partial
from typing import Any, NamedTuple

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from jaxtrade.envs.base import Policy, select_tree


class _PolicyStatic(NamedTuple):
    """The hashable, non-array part of a policy pytree (its functions), a jit static argument."""

    treedef: Any
    is_array: tuple
    statics: tuple


def _is_array(x) -> bool:
    return isinstance(x, jax.Array | np.ndarray | np.generic)


def _partition(policy: Policy):
    """Split a policy into array leaves (traced) and everything else (static, hashed by jit).

    A policy whose functions are `jax.tree_util.Partial(fn, params)` of a module-level `fn` therefore
    compiles once per shape: later calls with new params reuse the compiled scan. A policy built from
    fresh closures is still correct, but recompiles each call.
    """
    leaves, treedef = jax.tree.flatten(policy)
    is_array = tuple(_is_array(x) for x in leaves)
    arrays = [x for x, a in zip(leaves, is_array, strict=True) if a]
    statics = tuple(x for x, a in zip(leaves, is_array, strict=True) if not a)
    return arrays, _PolicyStatic(treedef, is_array, statics)


def _merge(arrays, static: _PolicyStatic) -> Policy:
    arrays, statics = iter(arrays), iter(static.statics)
    leaves = [next(arrays) if a else next(statics) for a in static.is_array]
    return jax.tree.unflatten(static.treedef, leaves)


def core_env(env):
    """The environment without `AutoReset`: a backtest runs exactly one episode."""
    return getattr(env, "unwrapped", env)


def eval_params(params):
    """`params` for one deterministic episode over the whole split: `random_start=False`."""
    if getattr(params, "random_start", False):
        params = params.replace(random_start=False)
    return params


def episode_rows(params) -> tuple[int, int]:
    """(start, end) rows of the whole-split episode: start = EnvData.start (the first tradable row),
    end = T - 1."""
    return int(params.data.start), int(params.data.n_rows - 1)


@partial(jax.jit, static_argnums=(0, 1, 2))
def _run(env, n_steps: int, policy_static: _PolicyStatic, policy_arrays, params, key):
    """(value before the first trade, rows [n_steps] of per-step columns, last row's weights and
    turbulence). Reads `info` only: the env state is carried, never looked into.

    After ruin the environment keeps stepping (so `turbulence` stays the data's), but the observation
    and the policy carry are frozen and every money column keeps the final value (masked by `alive`).
    """
    policy = _merge(policy_arrays, policy_static)
    reset_key, scan_key = jax.random.split(key)
    obs, state = env.reset(reset_key, params)

    def body(carry, key):
        obs, state, pcarry, alive, last = carry
        act_key, step_key = jax.random.split(key)
        action, pcarry_next = policy.act(act_key, pcarry, obs)
        obs_next, state_next, reward, done, info = env.step(step_key, state, action, params)
        closed = info["trade_closed"] & alive
        keep = lambda new, old: jnp.where(alive, new, old)
        last_next = {"value": keep(info["value"], last["value"]),
                     "weights": keep(info["weights"], last["weights"]),
                     "weights_marked": keep(info["weights_marked"], last["weights_marked"])}
        row = {
            "value_before": info["value_before"],
            "value": last_next["value"],
            "weights": last_next["weights"],
            "turnover": jnp.where(alive, info["turnover"], 0.0),
            "costs": jnp.where(alive, info["costs"], 0.0),
            "gate": info["gate"] & alive,
            "turbulence": info["turbulence"],
            "turbulence_next": info["turbulence_next"],
            "trade_closed": jnp.sum(closed),
            "trades_won": jnp.sum(closed & (info["trade_pnl"] > 0)),
            "trade_pnl": jnp.sum(jnp.where(closed, info["trade_pnl"], 0.0)),
            "reward": jnp.where(alive, reward, 0.0),
            "terminated": info["terminated"] & alive,
            "action": action if env.discrete else jnp.zeros((), jnp.int32),
        }
        if "risk_free" in info:
            row["risk_free"] = info["risk_free"]
        # After ruin the episode is over: freeze what the policy sees (the rows keep the final value).
        carry = (select_tree(alive, obs_next, obs), state_next, select_tree(alive, pcarry_next, pcarry),
                 alive & ~done, last_next)
        return carry, row

    # The shapes of the carried info entries, from one step traced abstractly (nothing runs).
    info_shape = jax.eval_shape(lambda: env.step(key, state, policy.act(key, policy.init(), obs)[0],
                                                 params)[4])
    last = {k: jnp.zeros(info_shape[k].shape, info_shape[k].dtype)
            for k in ("value", "weights", "weights_marked")}
    init = (obs, state, policy.init(), jnp.asarray(True), last)
    (*_, final), rows = jax.lax.scan(body, init, jax.random.split(scan_key, n_steps))
    return rows["value_before"][0], rows, final["weights_marked"], rows["turbulence_next"][-1]


def backtest(policy: Policy, env, params, *, dates=None, symbols=None, key=None) -> pd.DataFrame:
    """Run `policy` once over the whole split in `params` (one environment, no random start).

    policy: `Policy(init, act)` (unbatched); env, params: from `jaxtrade.envs.make` (an `AutoReset`
        wrapper is removed; `random_start` is switched off, so the episode runs from row
        `EnvData.start`, the split's first tradable row, to the last row).
    dates: [T] labels of the split's rows (e.g. `split.dates`); None: row numbers.
    symbols: [N] names for the weight columns; None: 0 .. N-1. key: PRNG key for the policy's and the
        environment's randomness (slippage); default `jax.random.key(0)`. Same key, same frame.
    Returns the frame described in the module docstring, indexed by date (rows start .. T-1).
    """
    env, params, start, end, key = _episode(env, params, key)
    arrays, static = _partition(policy)
    out = jax.device_get(_run(env, end - start, static, arrays, params, key))
    return _frame(out, env, params, start, end, dates, symbols)


@partial(jax.jit, static_argnums=(0, 1, 2))
def _run_many(env, n_steps: int, policy_static: _PolicyStatic, stacked_arrays, params, key):
    """`_run` vmapped over policy arrays stacked on a leading member axis [K, ...] (one architecture)."""
    return jax.vmap(lambda arrays: _run(env, n_steps, policy_static, arrays, params, key))(stacked_arrays)


def backtest_many(policies, env, params, *, dates=None, symbols=None, key=None) -> list[pd.DataFrame]:
    """`backtest` of each of `policies` (a sequence of `Policy`), the frames in the same order.

    Policies of one architecture (the same functions and array shapes, e.g. `policy_from_spec` of
    one model config with different params) run as one `vmap`-ed scan over their stacked arrays,
    one compile per architecture; policies whose architectures differ run in separate groups. Every
    policy sees the same `key`, so each frame equals `backtest(policy, env, params, key=key)`.
    """
    env, params, start, end, key = _episode(env, params, key)
    frames: list = [None] * len(policies)
    groups: dict = {}
    for i, policy in enumerate(policies):
        arrays, static = _partition(policy)
        shapes = tuple((tuple(a.shape), str(a.dtype)) for a in arrays)
        groups.setdefault((static, shapes), []).append((i, arrays))
    for (static, _), members in groups.items():
        stacked = [jnp.stack(leaves) for leaves in zip(*(arrays for _, arrays in members), strict=True)]
        out = jax.device_get(_run_many(env, end - start, static, stacked, params, key))
        for k, (i, _) in enumerate(members):
            frames[i] = _frame(jax.tree.map(lambda x, k=k: x[k], out), env, params, start, end, dates,
                               symbols)
    return frames


def _episode(env, params, key):
    """(core env, whole-split params, start row, end row, key) of a backtest."""
    params = eval_params(params)
    start, end = episode_rows(params)
    return core_env(env), params, start, end, jax.random.key(0) if key is None else key


def _frame(out, env, params, start: int, end: int, dates, symbols) -> pd.DataFrame:
    """The backtest frame (module docstring) from `_run`'s host-side output of one policy."""
    v0, rows, drifted, turb_last = out
    n = params.data.n_assets
    symbols = list(range(n)) if symbols is None else list(symbols)
    index = pd.RangeIndex(start, end + 1) if dates is None else pd.Index(list(dates)[start:end + 1])
    f64 = lambda x: np.asarray(x, np.float64)
    out = {"value": np.concatenate([[v0], f64(rows["value"])])}
    weights = np.concatenate([f64(rows["weights"]), f64(drifted)[None]])
    for i, s in enumerate([*symbols, "cash"]):
        out[f"w_{s}"] = weights[:, i]
    pad = lambda x, dtype=np.float64: np.concatenate([np.asarray(x, dtype), np.zeros(1, dtype)])
    out.update(turnover=pad(rows["turnover"]), costs=pad(rows["costs"]), gate=pad(rows["gate"], bool))
    out["turbulence"] = np.concatenate([f64(rows["turbulence"]), [turb_last]])
    out["turbulence_threshold"] = float(params.turbulence_threshold)
    out.update(trade_closed=pad(rows["trade_closed"]), trades_won=pad(rows["trades_won"]),
               trade_pnl=pad(rows["trade_pnl"]), reward=pad(rows["reward"]),
               terminated=pad(rows["terminated"], bool))
    if env.discrete:
        out["action"] = pad(rows["action"], np.int64)
    if "risk_free" in rows:
        out["risk_free"] = pad(rows["risk_free"])
    frame = pd.DataFrame(out, index=index)
    frame.index.name = "date"
    frame.attrs.update(periods_per_year=float(params.data.periods_per_year), initial_value=float(v0))
    names = getattr(env, "action_names", None) if env.discrete else None
    if callable(names):
        names = names(params)
    if names is not None:
        frame.attrs["action_names"] = [str(x) for x in names]
    return frame

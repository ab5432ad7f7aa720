"""Baselines and multi-policy evaluation, all through the same environment step, costs and split.

Which baselines and constant rules an env has is the env's own knowledge: its registration
(`jaxtrade.envs.registry`, point 4) names them as (policy, env, params) runs; this module backtests
them, adds the generic ones (the index, random actions) and never asks which env it holds.
"""

from __future__ import annotations

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
from jax.tree_util import Partial

from jaxtrade import envs
from jaxtrade.envs.base import Policy
from jaxtrade.envs.fixed_policies import constant_policy, schedule_policy, stateless_init
from jaxtrade.envs.portfolio_baselines import TargetEnv
from jaxtrade.eval.backtest import backtest, core_env, episode_rows, eval_params

# The reference baseline of each env (a portfolio's equal-weight buy-and-hold, a single instrument's
# long buy-and-hold, the options underlying's buy-and-hold): the Sharpe-difference reference of a
# report, and the one baseline that also runs gate-free (`NO_GATE` suffix) as a labelled reference.
REFERENCE_BASELINES = ("equal_weight_buy_hold", "long_buy_hold", "underlying_buy_hold")
NO_GATE = "_no_gate"

__all__ = ["NO_GATE", "REFERENCE_BASELINES", "TargetEnv", "baselines", "constant_policies", "constant_policy",
           "evaluate_policies", "random_policy", "schedule_policy"]


def _random_act(action_dim, discrete, key, carry, obs):
    if discrete and isinstance(obs, dict) and "action_mask" in obs:    # uniform over the allowed ones
        logits = jnp.where(obs["action_mask"], 0.0, -jnp.inf)
        return jax.random.categorical(key, logits).astype(jnp.int32), carry
    if discrete:
        return jax.random.randint(key, (), 0, action_dim, jnp.int32), carry
    return jax.random.normal(key, (action_dim,), jnp.float32), carry


def random_policy(env) -> Policy:
    """Uniform random actions of `env`'s action space: a regime index each day (uniform over the
    allowed actions where the observation has an "action_mask"), or N(0, 1) logits."""
    env = core_env(env)
    return Policy(init=stateless_init, act=Partial(_random_act, env.action_dim, env.discrete))


def constant_policies(env, params) -> dict[str, Policy]:
    """The constant policies of `env`'s own action space, the bar an agent must clear in sample (the
    env's registration names them, e.g. for portfolio regimes "choose regime k on the first day and
    hold", for one instrument each position held)."""
    return envs.hook(env, "constant_policies")(env, params)


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


def baselines(env, params, split=None, *, history=None, n_random_seeds: int = 5, gate: bool = True,
              ungated_reference: bool = True, cov_window: int = 252, key=None,
              include=None) -> dict[str, list[pd.DataFrame]]:
    """The baseline frames on the split in `params` ({name: [frame per seed]}, names as `BASELINE_NAMES`).

    The env's own baselines come from its registration (portfolio: equal_weight_buy_hold,
    equal_weight_monthly, min_variance; single: long_buy_hold, flat, short; options: cash,
    underlying_buy_hold, bxm, put), each a deterministic backtest; then
    index: the split's benchmark close scaled to the initial cash (a value series only: no costs,
        no weights); only where `split.benchmark` exists;
    random: `random_policy(env)` in `env`'s own action space, `n_random_seeds` seeds.
    history: optional closes [H, N] of the rows right before the split (the minimum-variance window).
    gate: True (default): every baseline trades in the agent's world, its turbulence gate included
        (a gated day takes the book to cash; schedule baselines get back in when it lifts). False
        switches the gate off (threshold +inf) for every baseline: a different world from the agent's,
        for reference only. Costs and everything else are `params`'.
    ungated_reference: with the gate on and able to act (a finite threshold), also run the env's
        reference baseline (the first of `REFERENCE_BASELINES` it has) with the gate off, as
        "<name>_no_gate" (label "... (gate off: reference only)"): what the gate costs or saves.
    include: names to run (default all).
    """
    params = eval_params(params)
    gated = params
    if not gate:
        params = params.replace(turbulence_threshold=jnp.asarray(jnp.inf, jnp.float32))
    dates, symbols = _split_info(split, params)
    include = set(include) if include is not None else None
    want = lambda name: include is None or name in include
    runs = envs.hook(env, "baselines")(env, params, split, history=history, cov_window=cov_window)
    out = {name: [backtest(pol, run_env, run_params, dates=dates, symbols=symbols, key=key)]
           for name, (pol, run_env, run_params) in runs.items() if want(name)}
    reference = next((r for r in REFERENCE_BASELINES if r in runs), None)
    if (gate and ungated_reference and reference is not None and want(reference + NO_GATE)
            and bool(jnp.isfinite(gated.turbulence_threshold))):
        pol, run_env, run_params = runs[reference]
        frame = backtest(pol, run_env, run_params.replace(
            turbulence_threshold=jnp.asarray(jnp.inf, jnp.float32)), dates=dates, symbols=symbols, key=key)
        frame.attrs["label"] = f"{reference} (gate off: reference only)"
        out[reference + NO_GATE] = [frame]
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

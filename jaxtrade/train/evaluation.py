"""Validation during training and the final out-of-sample report, through `jaxtrade.eval`.

Validation metrics (the ones best checkpoints are chosen on) come from one deterministic backtest
of the current policy over the whole validation split, with the training costs:

- sharpe, annual_return, max_drawdown: `jaxtrade.eval.stats` of the backtest's value series;
- win_rate: share of the backtest's closed trades with positive net PnL (NaN without a closed trade);
- profit_rate: share of the split's calendar months (of at least 5 rows) that end above their start,
  the per-episode profit rate of a backtest that is a single episode;
- composite: `metrics.composite_score` from the validation Sharpe and annual return and the
  training iteration's explained variance, entropy, approx KL and clip fraction.
"""

from __future__ import annotations

import logging
import math
import os

import jax
import numpy as np
import pandas as pd

from jaxtrade import eval as evaluate
from jaxtrade.agents import ppo
from jaxtrade.train.metrics import composite_score, normalized_entropy

log = logging.getLogger("jaxtrade")


def monthly_profit_rate(values: pd.Series, min_rows: int = 5) -> float:
    """Share of calendar months (with >= min_rows rows) whose last value exceeds the one before them."""
    v = pd.Series(np.asarray(values, dtype=np.float64), index=pd.DatetimeIndex(values.index))
    prev = v.shift(1).fillna(v.iloc[0])
    groups = pd.DataFrame({"v": v, "prev": prev}).groupby(v.index.to_period("M"))
    wins = [g["v"].iloc[-1] > g["prev"].iloc[0] for _, g in groups if len(g) >= min_rows]
    return float(np.mean(wins)) if wins else math.nan


def baseline_history(market, split, rows: int = 252):
    """Closes [rows, N] of the market rows before `split` (its history rows excluded too): the
    minimum-variance baseline's covariance warm-up, never data from the split itself."""
    return np.asarray(market.close)[np.asarray(market.dates < split.dates[0])][-rows:]


def params_of(carry):
    """The network parameters of device 0 (identical on every device)."""
    return jax.tree.map(lambda x: x[0], carry.train_state.params)


class Evaluator:
    """Backtests the current deterministic policy on the validation split (compiled once)."""

    def __init__(self, config, setup):
        self.config, self.s = config, setup
        self.weights = dict(config.train.composite)

    def validate(self, carry, train_row: dict) -> dict:
        s = self.s
        policy = ppo.make_policy(self.config, s.eval_env, params_of(carry))
        frame = evaluate.backtest(policy, s.eval_env, s.val_params, dates=s.splits.val.dates,
                                  symbols=s.splits.val.symbols)
        st = evaluate.stats(frame)
        out = {k: float(st[k]) for k in ("sharpe", "annual_return", "cumulative_return", "max_drawdown",
                                         "win_rate", "turnover", "total_costs")}
        out["profit_rate"] = monthly_profit_rate(frame["value"])
        ent = normalized_entropy(train_row.get("entropy", math.nan), discrete=s.env.discrete,
                                 action_dim=s.env.action_dim)
        out["composite"] = composite_score(
            sharpe=out["sharpe"], annual_return=out["annual_return"],
            explained_variance=train_row.get("explained_variance", math.nan), entropy_normalized=ent,
            approx_kl=train_row.get("approx_kl", math.nan), clip_frac=train_row.get("clip_frac", math.nan),
            weights=self.weights)
        return out


def final_report(config, setup, carry, ckpts, workdir: str) -> str:
    """Backtests the best-composite model (the final one when no validation ran) on the test split
    against the baselines and writes report.md; returns its path."""
    s = setup
    params, which = params_of(carry), "final model"
    restored = ckpts.restore("composite", carry) if ckpts.steps("composite") else None
    if restored is not None:
        params = jax.tree.map(lambda x: np.asarray(x)[0], restored.state.train_state.params)
        which = f"best validation composite (iteration {restored.meta['iteration']})"
    policy = ppo.make_policy(config, s.eval_env, params)
    split = s.splits.test
    agent = evaluate.evaluate_policies({"ppo_agent": policy}, s.eval_env, s.test_params, split)
    history = baseline_history(s.market, split)
    base = evaluate.baselines(s.eval_env, s.test_params, split, history=history)
    notes = (f"Agent: {which}, trained with seed {config.seed} on {s.splits.train.traded_dates[0]:%Y-%m-%d}"
             f"..{s.splits.train.traded_dates[-1]:%Y-%m-%d}; test split "
             f"{split.traded_dates[0]:%Y-%m-%d}..{split.traded_dates[-1]:%Y-%m-%d}. Same environment and "
             f"costs for every row.")
    rep = evaluate.report({**agent, **base}, workdir, n_boot=config.train.bootstrap_samples,
                          seed=config.seed, notes=notes)
    log.info("test-split report:\n%s", evaluate.to_markdown(rep.table))
    return rep.md_path


def evaluate_checkpoint(checkpoint: str, *, split: str = "test", out_dir: str | None = None,
                        seeds_dirs: tuple[str, ...] = ()) -> str:
    """Backtests a saved agent on a split of its own run's data against the baselines.

    checkpoint: a checkpoint directory (`.../checkpoints/best_composite`, `.../latest`, or one step
    inside them); its metadata holds the config that rebuilds data and environment. seeds_dirs: more
    checkpoints of the same experiment with other seeds: the table then shows mean, std and count.
    Writes report.md (+ CSV, PNGs) into out_dir (default: `<workdir>/eval-<split>`) and returns its path.
    """
    import ml_collections

    from jaxtrade.train.checkpoints import Checkpoints
    from jaxtrade.train.loop import build

    paths = (checkpoint,) + tuple(seeds_dirs)
    restored = [Checkpoints(".").restore(os.path.abspath(p), None) for p in paths]
    for p, r in zip(paths, restored, strict=True):
        if r is None:
            raise FileNotFoundError(f"no readable checkpoint under {p}")
    config = ml_collections.ConfigDict(restored[0].meta["config"])
    s = build(config)
    data_split = {"train": s.splits.train, "val": s.splits.val, "test": s.splits.test}[split]
    if data_split is None:
        raise ValueError(f"the run's config has no {split} split")
    env, params = envs_make(config, data_split)
    policies = [ppo.make_policy(config, env, jax.tree.map(lambda x: np.asarray(x)[0],
                                                          r.state["train_state"]["params"]))
                for r in restored]
    agent = evaluate.evaluate_policies({"ppo_agent": policies}, env, params, data_split)
    history = baseline_history(s.market, data_split)
    base = evaluate.baselines(env, params, data_split, history=history)
    out_dir = out_dir or os.path.join(_run_dir(restored[0].path), f"eval-{split}")
    os.makedirs(out_dir, exist_ok=True)
    notes = f"Checkpoints: {', '.join(r.path for r in restored)}; split {split}."
    rep = evaluate.report({**agent, **base}, out_dir, n_boot=config.train.bootstrap_samples,
                          seed=config.seed, notes=notes)
    return rep.md_path


def envs_make(config, split):
    """The evaluation environment (one episode over the whole split) of `config` on `split`."""
    from jaxtrade import envs
    from jaxtrade.train.loop import env_overrides

    overrides = dict(env_overrides(config.env), random_start=False)
    return envs.make(config.env.name, split.to_device(), overrides)


def _run_dir(path: str) -> str:
    """The run's workdir from a checkpoint path (.../<workdir>/checkpoints/<name>[/<step>])."""
    parts = os.path.abspath(path).split(os.sep)
    if "checkpoints" in parts:
        return os.sep.join(parts[:len(parts) - 1 - parts[::-1].index("checkpoints")])
    return os.path.dirname(os.path.abspath(path))

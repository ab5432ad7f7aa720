"""Host-side training metrics: per-iteration rows, running statistics, the composite score.

The composite score ranks models on one number (weights configurable in `config.train.composite`):

    composite = 0.4 * profitability + 0.2 * reward + 0.2 * explained_variance
                + 0.1 * entropy - 0.1 * instability

with every component mapped to about [-1, 1] so the weights mean what they say:
- profitability: tanh(Sharpe / 2) of the validation backtest (training episodes when no validation);
- reward: tanh(mean log return per year / 0.2) of the same series (20% a year saturates);
- explained_variance: the critic's explained variance, clipped to [-1, 1];
- entropy: policy entropy normalized by its maximum (log of the number of discrete actions; the
  Gaussian entropy squashed with tanh for continuous actions);
- instability: mean of min(1, approx_kl / target_kl) and min(1, clip_frac / 0.5).
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from jaxtrade.envs.base import TradingStats

DEFAULT_COMPOSITE_WEIGHTS = dict(profitability=0.4, reward=0.2, explained_variance=0.2, entropy=0.1,
                                 instability=0.1, target_kl=0.02)

# Fields of a history row that depend on wall-clock time: excluded from "identical run" checks.
TIMING_KEYS = ("steps_per_second", "iteration_seconds", "wall_time", "device_memory_gib")


def _ratio(num: float, den: float) -> float:
    return float(num) / float(den) if den > 0 else float("nan")


def iteration_row(raw: dict[str, Any], *, iteration: int, periods_per_year: float) -> dict[str, float]:
    """One history row from the pmean/psum-ed device metrics of one training iteration.

    `raw` holds host scalars (the device axis already reduced): losses, env_steps and every field of
    `jaxtrade.envs.base.TradingStats` (a missing one raises KeyError). Ratios with no denominator
    (no episode or trade finished this iteration) are NaN, not zero.
    """
    st = TradingStats.from_dict(raw)     # KeyError naming a missing field: never a silent 0
    if "env_steps" not in raw:
        raise KeyError("iteration metrics lack 'env_steps'")
    row = {k: float(np.asarray(v)) for k, v in raw.items() if np.ndim(v) == 0}
    st = {k: float(np.asarray(v)) for k, v in st.as_dict().items()}
    steps = row["env_steps"]
    row["iteration"] = iteration
    row["episode_return"] = _ratio(st["episode_return_sum"], st["episodes"])
    row["win_rate"] = _ratio(st["trades_won"], st["trades_closed"])
    row["profit_rate"] = _ratio(st["episodes_profitable"], st["episodes"])
    mean = _ratio(st["reward_sum"], steps)
    var = max(st["reward_sq_sum"] / steps - mean * mean, 0.0) if steps > 1 else 0.0
    row["sharpe"] = mean / math.sqrt(var) * math.sqrt(periods_per_year) if var > 0 else float("nan")
    row["mean_reward"] = mean
    row["costs"] = _ratio(st["costs_sum"], steps)
    row["turnover"] = _ratio(st["turnover_sum"], steps)
    return row


def composite_score(*, sharpe: float, annual_return: float, explained_variance: float,
                    entropy_normalized: float, approx_kl: float, clip_frac: float,
                    weights: dict | None = None) -> float:
    """The documented composite score (see the module docstring). NaN inputs count as 0."""
    w = dict(DEFAULT_COMPOSITE_WEIGHTS, **(weights or {}))

    def z(x):
        return 0.0 if x is None or not math.isfinite(x) else float(x)

    profitability = math.tanh(z(sharpe) / 2.0)
    reward = math.tanh(z(annual_return) / 0.2)
    ev = min(max(z(explained_variance), -1.0), 1.0)
    ent = min(max(z(entropy_normalized), 0.0), 1.0)
    instability = 0.5 * (min(1.0, z(approx_kl) / w["target_kl"]) + min(1.0, z(clip_frac) / 0.5))
    return (w["profitability"] * profitability + w["reward"] * reward + w["explained_variance"] * ev
            + w["entropy"] * ent - w["instability"] * instability)


def normalized_entropy(entropy: float, *, discrete: bool, action_dim: int) -> float:
    """Entropy as a share of its maximum for discrete policies; tanh-squashed for Gaussian ones."""
    if discrete:
        return float(entropy) / math.log(action_dim) if action_dim > 1 else 0.0
    return 0.5 * (1.0 + math.tanh(float(entropy) / max(action_dim, 1)))


@dataclasses.dataclass
class EarlyStopping:
    """Stops when the validation composite has not improved by `min_delta` for `patience` evals.

    patience=0 disables it. Its fields go into the `latest` checkpoint so a resumed run stops
    exactly where an uninterrupted one would.
    """

    patience: int
    min_delta: float
    best: float = -math.inf
    bad_evals: int = 0

    def update(self, value: float) -> bool:
        """Records one evaluation; returns True when training should stop."""
        if math.isfinite(value) and value > self.best + self.min_delta:
            self.best, self.bad_evals = value, 0
        else:
            self.bad_evals += 1
        return self.patience > 0 and self.bad_evals >= self.patience

    def to_json(self) -> dict:
        return {"patience": self.patience, "min_delta": self.min_delta,
                "best": None if not math.isfinite(self.best) else self.best, "bad_evals": self.bad_evals}

    @classmethod
    def from_json(cls, d: dict) -> EarlyStopping:
        best = -math.inf if d.get("best") is None else float(d["best"])
        return cls(int(d["patience"]), float(d["min_delta"]), best, int(d["bad_evals"]))


def json_safe(row: dict) -> dict:
    """NaN and inf become None so every line of metrics.jsonl is valid JSON."""
    out = {}
    for k, v in row.items():
        if isinstance(v, float) and not math.isfinite(v):
            out[k] = None
        elif isinstance(v, (np.floating, np.integer)):
            out[k] = v.item() if math.isfinite(float(v)) else None
        else:
            out[k] = v
    return out

"""Host-side training metrics: per-iteration rows, the composite score, early stopping.

The composite score ranks models on one number built from VALIDATION TRADING METRICS ONLY (never
from the agent's health diagnostics such as approx KL, clip fraction, entropy or explained
variance, which are logged but do not choose models). Weights are configurable in
`config.train.composite`:

    composite = 0.4 * profitability + 0.2 * reward + 0.1 * win + 0.1 * profit + 0.2 * drawdown

with every component mapped to [-1, 1] so the weights mean what they say:
- profitability: tanh(Sharpe / 2) of the validation backtest;
- reward: tanh(annual return / 0.2) of the same backtest (20% a year saturates);
- win: 2 * win rate - 1 (share of closed trades with positive net PnL);
- profit: 2 * profit rate - 1 (share of months that end above their start);
- drawdown: the maximum drawdown (a fraction <= 0), clipped to [-1, 0].
A NaN component (no closed trade, say) counts as 0.
"""

from __future__ import annotations

import dataclasses
import math
from typing import Any

import numpy as np

from jaxtrade.envs.base import TradingStats

DEFAULT_COMPOSITE_WEIGHTS = dict(profitability=0.4, reward=0.2, win_rate=0.1, profit_rate=0.1,
                                 drawdown=0.2)

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


def composite_score(*, sharpe: float, annual_return: float, win_rate: float, profit_rate: float,
                    max_drawdown: float, weights: dict | None = None) -> float:
    """The documented composite score of validation trading metrics (see the module docstring)."""
    unknown = set(weights or {}) - set(DEFAULT_COMPOSITE_WEIGHTS)
    if unknown:
        raise ValueError(f"train.composite has unknown weights {sorted(unknown)}; known: "
                         f"{sorted(DEFAULT_COMPOSITE_WEIGHTS)}")
    w = dict(DEFAULT_COMPOSITE_WEIGHTS, **(weights or {}))

    def z(x):
        return 0.0 if x is None or not math.isfinite(x) else float(x)

    parts = {"profitability": math.tanh(z(sharpe) / 2.0), "reward": math.tanh(z(annual_return) / 0.2),
             "win_rate": 0.0 if not _finite_num(win_rate) else 2.0 * z(win_rate) - 1.0,
             "profit_rate": 0.0 if not _finite_num(profit_rate) else 2.0 * z(profit_rate) - 1.0,
             "drawdown": min(max(z(max_drawdown), -1.0), 0.0)}
    return sum(w[k] * v for k, v in parts.items())


def _finite_num(x) -> bool:
    return x is not None and math.isfinite(x)


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

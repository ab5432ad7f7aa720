"""Classical single-instrument rules as action schedules for a two-action (0 short, 1 long) env, computed
on the host from rows < t only, and their tuning grid (Théate & Ernst 2021, classicalStrategy.py).

1. `moving_averages(close, start, n_steps, max_window)`: M [n_steps, max_window + 1], M[i, w] = the mean of
   the w closes before row start + i (rows start+i-w .. start+i-1); the row traded at step i is never in it.
2. `ma_actions(M, short, long, rule)`: step i's action. "trend" (their MovingAveragesTF): long (1) when the
   short mean >= the long mean, else short (0). "mean_reversion" (MovingAveragesMR): long when the short
   mean <= the long mean.
3. `ma_grid(lo, hi)`: their tuning grid, every (short, long) with lo <= short < long < hi (range(lo, hi),
   their bounds [1, 30], step 1: 406 pairs; windows up to 29 because their state holds 30 closes).
"""

from __future__ import annotations

import numpy as np

RULES = ("trend", "mean_reversion")


def moving_averages(close, start: int, n_steps: int, max_window: int) -> np.ndarray:
    """float64 [n_steps, max_window + 1]: column w (1..max_window) is the mean of the w rows before
    row start + i; column 0 is NaN. Raises ValueError if start < max_window (not enough history)."""
    c = np.asarray(close, np.float64).reshape(-1)
    if start < max_window:
        raise ValueError(f"moving averages up to {max_window} rows need start >= {max_window}, got {start}")
    if start + n_steps > c.size:
        raise ValueError(f"start {start} + n_steps {n_steps} is past the {c.size} rows")
    csum = np.concatenate([[0.0], np.cumsum(c)])
    rows = start + np.arange(n_steps)                      # the rows traded; means use rows < them
    out = np.full((n_steps, max_window + 1), np.nan)
    for w in range(1, max_window + 1):
        out[:, w] = (csum[rows] - csum[rows - w]) / w
    return out


def ma_actions(means: np.ndarray, short: int, long: int, rule: str) -> np.ndarray:
    """int32 [n_steps] actions (1 long, 0 short) of a moving-average rule from `moving_averages`."""
    if rule not in RULES:
        raise ValueError(f"rule must be one of {RULES}, got {rule!r}")
    if not 1 <= short < long < means.shape[1]:
        raise ValueError(f"need 1 <= short ({short}) < long ({long}) <= {means.shape[1] - 1}")
    s, lg = means[:, short], means[:, long]
    long_side = s >= lg if rule == "trend" else s <= lg
    return long_side.astype(np.int32)


def ma_grid(lo: int = 1, hi: int = 30) -> list[tuple[int, int]]:
    """Every (short, long) with lo <= short < long < hi, in their loop order (short outer)."""
    return [(s, lg) for s in range(lo, hi) for lg in range(lo, hi) if s < lg]

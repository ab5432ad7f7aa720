"""Seeded stationary bootstrap (Politis & Romano, 1994) of paired per-period returns.

Resampling blocks of consecutive days (of random, geometrically distributed length) keeps the
short-range dependence of daily returns (volatility clustering) that an i.i.d. bootstrap destroys.
Agent and baseline returns are resampled with the *same* indices, so the common market moves cancel
in their difference. With several agent seeds, each replicate also redraws the seeds with replacement
(from a stream of its own), so the interval holds the seed-to-seed variance of a learned agent as well as
the sampling variance of the days.
"""

from __future__ import annotations

import math
from typing import NamedTuple

import numpy as np


class SharpeDiff(NamedTuple):
    """Sharpe(agent) - Sharpe(baseline), annualized; with several agent seeds, the mean over seeds."""

    diff: float           # point estimate on the observed returns
    low: float            # percentile confidence interval [low, high] at level 1 - alpha
    high: float
    se: float             # bootstrap standard error
    n_boot: int
    block_length: float


def stationary_bootstrap_indices(n: int, n_boot: int, block_length: float,
                                 rng: np.random.Generator) -> np.ndarray:
    """[n_boot, n] int indices into a series of length n: blocks start at uniform random rows, have
    geometric lengths of mean `block_length`, and wrap around the end of the series."""
    p = 1.0 / block_length
    new_block = rng.random((n_boot, n)) < p
    new_block[:, 0] = True
    starts = rng.integers(0, n, size=(n_boot, n))
    t = np.arange(n)
    block_start = np.maximum.accumulate(np.where(new_block, t, 0), axis=1)   # row where this block began
    first = np.take_along_axis(starts, block_start, axis=1)
    return (first + t - block_start) % n


def _sharpe(r: np.ndarray, periods_per_year: float) -> np.ndarray:
    """Annualized Sharpe along the last axis (ddof=1)."""
    with np.errstate(divide="ignore", invalid="ignore"):
        return r.mean(-1) / r.std(-1, ddof=1) * math.sqrt(periods_per_year)


def sharpe_diff_ci(agent_returns, baseline_returns, *, periods_per_year: float = 252.0,
                   n_boot: int = 2000, block_length: float = 20.0, alpha: float = 0.05,
                   seed: int = 0, chunk: int = 250) -> SharpeDiff:
    """Bootstrap confidence interval of the Sharpe difference agent - baseline.

    agent_returns: per-period simple returns [T], or [S, T] for S seeds of a learned agent (then the
        statistic is the mean over seeds of Sharpe(seed) - Sharpe(baseline)). baseline_returns: [T],
        the same periods. Every replicate draws S seeds with replacement and one set of block indices,
        and applies the indices to the drawn seeds and the baseline alike: the interval covers the
        variance between seeds and over time. The time indices come from `seed` exactly as with one
        seed (S = 1 draws no seeds and gives the time-only interval); the seed draws come from a child
        stream of `seed`. Same `seed`, same interval.
    """
    a = np.atleast_2d(np.asarray(agent_returns, np.float64))
    b = np.asarray(baseline_returns, np.float64).reshape(-1)
    if a.shape[-1] != b.shape[0]:
        raise ValueError(f"agent returns have {a.shape[-1]} periods, baseline {b.shape[0]}")
    n = b.shape[0]
    diff = float(np.mean(_sharpe(a, periods_per_year)) - _sharpe(b, periods_per_year))
    rng = np.random.default_rng(seed)
    seed_rng = np.random.default_rng(np.random.SeedSequence(seed).spawn(1)[0])
    n_seeds = a.shape[0]
    boots = []
    for start in range(0, n_boot, chunk):
        idx = stationary_bootstrap_indices(n, min(chunk, n_boot - start), block_length, rng)
        per_seed = _sharpe(a[:, idx], periods_per_year)          # [S, B, n] -> [S, B]
        if n_seeds > 1:                                           # resample the seeds of each replicate
            drawn = seed_rng.integers(0, n_seeds, size=(idx.shape[0], n_seeds))
            sa = np.take_along_axis(per_seed.T, drawn, axis=1).mean(1)
        else:
            sa = per_seed.mean(0)
        sb = _sharpe(b[idx], periods_per_year)
        boots.append(sa - sb)
    boots = np.concatenate(boots)
    low, high = np.quantile(boots, [alpha / 2, 1 - alpha / 2])
    return SharpeDiff(diff, float(low), float(high), float(boots.std(ddof=1)), n_boot, block_length)

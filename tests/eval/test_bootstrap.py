"""The stationary-bootstrap Sharpe-difference interval: covers a known truth, reproducible by seed."""

import math

import numpy as np
import pytest

from jaxtrade.eval.bootstrap import sharpe_diff_ci, stationary_bootstrap_indices


def _constructed(seed, n=1500):
    """Agent = market + 4 bp/day of alpha + noise, baseline = market + noise, both with daily std
    sqrt(0.01^2 + 0.003^2). True annualized Sharpe difference = 4e-4 / sd * sqrt(252) ~= 0.608."""
    rng = np.random.default_rng(seed)
    market = rng.normal(3e-4, 0.01, n)
    agent = market + 4e-4 + rng.normal(0, 0.003, n)
    base = market + rng.normal(0, 0.003, n)
    true = 4e-4 / math.sqrt(0.01**2 + 0.003**2) * math.sqrt(252)
    return agent, base, true


def test_ci_contains_truth_and_is_reproducible():
    agent, base, true = _constructed(2)        # a typical draw: its estimate is ~0.8 se from the truth
    ci = sharpe_diff_ci(agent, base, n_boot=1000, seed=7)
    assert ci.low < true < ci.high
    assert ci.low < ci.diff < ci.high
    assert ci == sharpe_diff_ci(agent, base, n_boot=1000, seed=7)      # same seed, same interval
    other = sharpe_diff_ci(agent, base, n_boot=1000, seed=8)
    assert (other.low, other.high) != (ci.low, ci.high)
    # The point estimate is the plain Sharpe difference (ddof=1), independent of the resampling.
    sharpe = lambda r: r.mean() / r.std(ddof=1) * math.sqrt(252)
    assert ci.diff == pytest.approx(sharpe(agent) - sharpe(base), rel=1e-12)


def test_ci_coverage_over_replications():
    """A 90% interval should cover the truth in most of 40 independent replications (binomial P(<30) ~ 1%)."""
    hits = 0
    for rep in range(40):
        agent, base, true = _constructed(100 + rep, n=1000)
        ci = sharpe_diff_ci(agent, base, n_boot=300, alpha=0.10, seed=rep)
        hits += ci.low < true < ci.high
    assert hits >= 30


def test_multi_seed_agent_and_excluding_zero():
    agent, base, _ = _constructed(1)
    rng = np.random.default_rng(3)
    seeds = np.stack([agent + rng.normal(0, 0.001, agent.size) for _ in range(3)])
    sharpe = lambda r: r.mean(-1) / r.std(-1, ddof=1) * math.sqrt(252)
    ci = sharpe_diff_ci(seeds, base, n_boot=500, seed=0)
    assert ci.diff == pytest.approx(float(np.mean(sharpe(seeds)) - sharpe(base)), rel=1e-12)
    # A 3 bp/day edge with little idiosyncratic noise is detected only because agent and baseline are
    # resampled on the same days (the common market moves cancel): the interval is narrow, excludes 0.
    edge = sharpe_diff_ci(base + 3e-4, base + np.random.default_rng(4).normal(0, 1e-3, base.size),
                          n_boot=500, seed=0)
    assert edge.low > 0 and edge.high - edge.low < 0.5


def test_indices_are_wrapped_blocks():
    idx = stationary_bootstrap_indices(50, 200, 5.0, np.random.default_rng(0))
    assert idx.shape == (200, 50) and idx.min() >= 0 and idx.max() < 50
    steps = (np.diff(idx, axis=1) % 50) == 1          # continuing a block = next row, wrapped
    assert steps.mean() == pytest.approx(1 - 1 / 5.0, abs=0.02)


def _time_only_ci(agent, base, *, n_boot, seed, chunk, alpha=0.05, block_length=20.0):
    """The pre-seed-resampling interval: one set of stationary-bootstrap days per replicate, applied to
    every seed and the baseline, seeds averaged as they are (the same time indices as sharpe_diff_ci)."""
    sharpe = lambda r: r.mean(-1) / r.std(-1, ddof=1) * math.sqrt(252)
    rng = np.random.default_rng(seed)
    boots = []
    for start in range(0, n_boot, chunk):
        idx = stationary_bootstrap_indices(base.size, min(chunk, n_boot - start), block_length, rng)
        boots.append(sharpe(agent[:, idx]).mean(0) - sharpe(base[idx]))
    return np.quantile(np.concatenate(boots), [alpha / 2, 1 - alpha / 2])


def test_one_seed_interval_is_unchanged():
    """One seed, [T] or [1, T]: exactly the numbers of the time-only bootstrap before seeds were resampled
    (recorded from that implementation)."""
    rng = np.random.default_rng(11)
    market = rng.normal(3e-4, 0.01, 600)
    agent = market + 2e-4 + rng.normal(0, 0.003, 600)
    base = market + rng.normal(0, 0.003, 600)
    ci = sharpe_diff_ci(agent, base, n_boot=400, seed=5, chunk=150)
    assert ci == (0.5627789848258056, 0.0363854969253606, 1.0920257896055054, 0.2657659066499905, 400, 20.0)
    assert sharpe_diff_ci(agent[None], base, n_boot=400, seed=5, chunk=150) == ci


def test_seed_variance_widens_the_interval():
    """Four seeds of one agent whose Sharpes differ by a lot (a seed lottery) over the same market days:
    the interval must hold the seed-to-seed spread, so it is much wider than the time-only interval. Seeds
    that are identical give the time-only interval (the seed draw then changes nothing)."""
    rng = np.random.default_rng(21)
    n = 800
    market = rng.normal(3e-4, 0.01, n)
    base = market + rng.normal(0, 0.002, n)
    edges = np.array([-6e-4, -2e-4, 4e-4, 1e-3])                    # per-day alpha of each seed
    seeds = market + edges[:, None] + rng.normal(0, 0.002, (4, n))
    ci = sharpe_diff_ci(seeds, base, n_boot=600, seed=3, chunk=200)
    low, high = _time_only_ci(seeds, base, n_boot=600, seed=3, chunk=200)
    assert ci.high - ci.low > 2.0 * (high - low), (ci, low, high)
    same = np.repeat(seeds[2:3], 3, axis=0)
    ci_same = sharpe_diff_ci(same, base, n_boot=600, seed=3, chunk=200)
    np.testing.assert_allclose([ci_same.low, ci_same.high],
                               _time_only_ci(same, base, n_boot=600, seed=3, chunk=200), rtol=1e-9)
    assert ci == sharpe_diff_ci(seeds, base, n_boot=600, seed=3, chunk=200)     # same seed, same interval

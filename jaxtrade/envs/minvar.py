"""Long-only minimum-variance weights from past prices only (host numpy, float64)."""

from __future__ import annotations

import numpy as np


def ledoit_wolf(x: np.ndarray) -> np.ndarray:
    """Ledoit-Wolf (2004) shrinkage covariance [N, N] of observations x [S, N] toward a scaled identity:
    well-conditioned even with fewer rows than assets (the first rebalances of a split)."""
    s, n = x.shape
    x = x - x.mean(0)
    sample = x.T @ x / s
    mu = np.trace(sample) / n
    target = mu * np.eye(n)
    d2 = np.sum((sample - target) ** 2)
    b2 = min(d2, np.sum([np.sum((np.outer(row, row) - sample) ** 2) for row in x]) / s**2)
    shrink = b2 / d2 if d2 > 0 else 1.0
    return shrink * target + (1.0 - shrink) * sample


def project_simplex(v: np.ndarray) -> np.ndarray:
    """Euclidean projection of v [N] onto {w >= 0, sum w = 1} (Duchi et al. 2008)."""
    u = np.sort(v)[::-1]
    css = np.cumsum(u) - 1.0
    rho = np.nonzero(u - css / np.arange(1, v.size + 1) > 0)[0][-1]
    return np.maximum(v - css[rho] / (rho + 1.0), 0.0)


def min_variance_weights(cov: np.ndarray, iters: int = 3000, tol: float = 1e-12) -> np.ndarray:
    """argmin_w w' cov w subject to w >= 0, sum w = 1 [N], by accelerated projected gradient (FISTA)."""
    n = cov.shape[0]
    step = 1.0 / (2.0 * np.linalg.eigvalsh(cov)[-1])
    w = y = np.full(n, 1.0 / n)
    t = 1.0
    for _ in range(iters):
        w_next = project_simplex(y - step * 2.0 * cov @ y)
        t_next = (1.0 + np.sqrt(1.0 + 4.0 * t * t)) / 2.0
        y = w_next + (t - 1.0) / t_next * (w_next - w)
        if np.max(np.abs(w_next - w)) < tol:
            w = w_next
            break
        w, t = w_next, t_next
    return w


def month_starts(dates, first: int) -> np.ndarray:
    """Row indices >= first where a new calendar month begins (the first traded row always counts)."""
    months = np.asarray([(d.year, d.month) for d in dates])
    rows = [first] + [i for i in range(first + 1, len(dates)) if tuple(months[i]) != tuple(months[i - 1])]
    return np.asarray(rows, np.int64)


def min_variance_schedule(close: np.ndarray, rebalance_rows, *, window: int = 252,
                          min_rows: int = 20) -> np.ndarray:
    """Long-only minimum-variance target weights [len(rebalance_rows), N] from prices close [T, N].

    The weights at rebalance row t use the daily log returns of rows t-window .. t-1 only (each from
    closes of rows < t), so they are known before row t's close, when the trade executes: no look-ahead.
    Covariance: Ledoit-Wolf shrinkage of those returns. Fewer than `min_rows` returns: equal weights.
    """
    log_ret = np.diff(np.log(np.asarray(close, np.float64)), axis=0)   # row s-1 = return into row s
    n = close.shape[1]
    out = []
    for t in rebalance_rows:
        past = log_ret[max(0, t - 1 - window): max(0, t - 1)]             # returns into rows <= t-1
        out.append(np.full(n, 1.0 / n) if len(past) < min_rows else min_variance_weights(ledoit_wolf(past)))
    return np.asarray(out)

"""Causal features, computed once on the host with numpy/pandas.

Every function maps [T, N] float64 arrays (T rows oldest first, N symbols, no NaN) to [T, N]
(or [T]) float64, where row t uses rows <= t only. Rows before an indicator's warm-up are NaN.

Indicators follow TA-Lib's conventions so they can be checked against it:
- MACD(12, 26, 9): EMAs with k = 2 / (period + 1), each seeded with the simple mean of its first
  `period` values; the fast EMA is seeded on the same row as the slow one (row 25), as TA-Lib does.
  First value at row 33.
- RSI(14): Wilder smoothing (alpha = 1/14) of gains and losses seeded with their simple means over
  rows 1..14; 0 where there was no movement at all. First value at row 14.
- CCI(20): (TP - SMA20(TP)) / (0.015 * mean |TP - SMA20(TP)|), TP = (high + low + close) / 3;
  0 where the mean deviation is 0. First value at row 19.
- ADX(14): Wilder's directional movement and true range, smoothed by Wilder sums seeded on rows
  1..13, DX from row 14, ADX seeded with the mean DX of rows 14..27. First value at row 27.

Close-only data (no high/low, e.g. sp500-20): CCI and ADX are computed with high = low = close,
i.e. CCI of the close itself, and ADX with true range |close change| and directional movement the
signed close change. These are documented close-only variants, not the classic indicators.
"""

from __future__ import annotations

from typing import NamedTuple

import numpy as np
import pandas as pd

FEATURE_NAMES = ("log_return", "volatility_20", "momentum_20", "sharpe_20", "macd", "macd_hist",
                 "rsi_14", "cci_20", "adx_14")
WINDOW = 20
TURBULENCE_WINDOW = 252
# First row at which every per-symbol feature exists (MACD's signal line: 25 + 8).
FEATURE_WARMUP = 33
_TINY = 1e-12


def _ewm_from(x: np.ndarray, alpha: float, start: int, seed: np.ndarray) -> np.ndarray:
    """Recursive mean y_t = (1 - alpha) y_{t-1} + alpha x_t with y_start = seed; NaN before start.

    x: [T, N]; seed: [N]. Uses pandas' ewm(adjust=False), which starts at the first non-NaN row.
    """
    z = np.full(x.shape, np.nan)
    if start >= x.shape[0]:
        return z
    z[start] = seed
    z[start + 1:] = x[start + 1:]
    return pd.DataFrame(z).ewm(alpha=alpha, adjust=False).mean().to_numpy()


def _pad_diff(x: np.ndarray) -> np.ndarray:
    """[T, N] -> [T, N] first difference with a NaN first row."""
    out = np.full(x.shape, np.nan)
    out[1:] = x[1:] - x[:-1]
    return out


def log_returns(close: np.ndarray) -> np.ndarray:
    """[T, N] prices -> [T, N] log(close_t / close_{t-1}); row 0 is NaN."""
    return _pad_diff(np.log(close))


def rolling_volatility(close: np.ndarray, window: int = WINDOW) -> np.ndarray:
    """Sample std (ddof=1) of the last `window` log returns, per row (not annualized). First at row window."""
    return pd.DataFrame(log_returns(close)).rolling(window).std().to_numpy()


def momentum(close: np.ndarray, window: int = WINDOW) -> np.ndarray:
    """log(close_t / close_{t-window}): the log return over the last `window` rows. First at row window."""
    out = np.full(close.shape, np.nan)
    out[window:] = np.log(close[window:] / close[:-window])
    return out


def rolling_sharpe(close: np.ndarray, window: int = WINDOW) -> np.ndarray:
    """Mean / std (ddof=1) of the last `window` log returns (per row, not annualized); 0 if std ~ 0."""
    r = pd.DataFrame(log_returns(close)).rolling(window)
    mean, std = r.mean().to_numpy(), r.std().to_numpy()
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(std > _TINY, mean / std, np.where(np.isnan(std), np.nan, 0.0))


def macd(close: np.ndarray, fast: int = 12, slow: int = 26, signal: int = 9
         ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """TA-Lib MACD: (macd line, signal line, histogram), each [T, N] in price units; first at row 33."""
    s = slow - 1                                   # the row both EMAs first exist (TA-Lib aligns them)
    ema_slow = _ewm_from(close, 2.0 / (slow + 1), s, close[s - slow + 1:s + 1].mean(axis=0))
    ema_fast = _ewm_from(close, 2.0 / (fast + 1), s, close[s - fast + 1:s + 1].mean(axis=0))
    line = ema_fast - ema_slow
    s2 = s + signal - 1
    sig = _ewm_from(line, 2.0 / (signal + 1), s2, line[s2 - signal + 1:s2 + 1].mean(axis=0))
    line[:s2] = np.nan
    return line, sig, line - sig


def wilder(x: np.ndarray, period: int, start: int, seed: np.ndarray) -> np.ndarray:
    """Wilder's smoothing y_t = (y_{t-1} (period - 1) + x_t) / period from y_start = seed."""
    return _ewm_from(x, 1.0 / period, start, seed)


def rsi(close: np.ndarray, period: int = 14) -> np.ndarray:
    """TA-Lib RSI in [0, 100] with Wilder smoothing; first at row `period`."""
    d = _pad_diff(close)
    gain, loss = np.maximum(d, 0.0), np.maximum(-d, 0.0)
    avg_gain = wilder(gain, period, period, gain[1:period + 1].mean(axis=0))
    avg_loss = wilder(loss, period, period, loss[1:period + 1].mean(axis=0))
    total = avg_gain + avg_loss
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(total > 0, 100.0 * avg_gain / total, np.where(np.isnan(total), np.nan, 0.0))


def cci(high: np.ndarray, low: np.ndarray, close: np.ndarray, period: int = 20) -> np.ndarray:
    """TA-Lib CCI of the typical price; first at row period - 1. Close-only: pass high = low = close."""
    tp = (high + low + close) / 3.0
    out = np.full(tp.shape, np.nan)
    if tp.shape[0] < period:
        return out
    win = np.lib.stride_tricks.sliding_window_view(tp, period, axis=0)   # [T - period + 1, N, period]
    mean = win.mean(axis=-1)
    mad = np.abs(win - mean[..., None]).mean(axis=-1)
    dev = tp[period - 1:] - mean
    with np.errstate(invalid="ignore", divide="ignore"):
        out[period - 1:] = np.where((mad > 0) & (dev != 0), dev / (0.015 * mad), 0.0)
    return out


def adx(high: np.ndarray, low: np.ndarray, close: np.ndarray, period: int = 14) -> np.ndarray:
    """TA-Lib ADX in [0, 100]; first at row 2 * period - 1. Close-only: pass high = low = close.

    Where smoothed true range or +DI + -DI is 0 (no movement at all), DX counts as 0; TA-Lib keeps
    the previous ADX there instead, a difference that only arises on perfectly flat stretches.
    """
    up, down = _pad_diff(high), -_pad_diff(low)
    plus_dm = np.where((up > 0) & (up > down), up, 0.0)
    minus_dm = np.where((down > 0) & (down > up), down, 0.0)
    prev_close = np.vstack([np.full((1, close.shape[1]), np.nan), close[:-1]])
    tr = np.maximum(high - low, np.maximum(np.abs(high - prev_close), np.abs(low - prev_close)))
    s = period - 1                                 # Wilder sums start from rows 1..period-1
    seed = lambda x: x[1:period].sum(axis=0) / period
    sm_plus = wilder(plus_dm, period, s, seed(plus_dm))
    sm_minus = wilder(minus_dm, period, s, seed(minus_dm))
    sm_tr = wilder(tr, period, s, seed(tr))
    with np.errstate(invalid="ignore", divide="ignore"):
        plus_di = np.where(sm_tr > 0, 100.0 * sm_plus / sm_tr, 0.0)
        minus_di = np.where(sm_tr > 0, 100.0 * sm_minus / sm_tr, 0.0)
        di_sum = plus_di + minus_di
        dx = np.where(di_sum > 0, 100.0 * np.abs(plus_di - minus_di) / di_sum, 0.0)
    dx[:period] = np.nan
    s2 = 2 * period - 1
    return wilder(dx, period, s2, dx[period:s2 + 1].mean(axis=0))


def turbulence(returns: np.ndarray, window: int = TURBULENCE_WINDOW) -> np.ndarray:
    """Turbulence index (Kritzman & Li 2010): [T, N] log returns -> [T] squared Mahalanobis distance.

    d_t = (r_t - mu_t)' pinv(S_t) (r_t - mu_t), where mu_t and S_t (sample covariance, ddof=1) come
    from rows t - window .. t - 1, excluding row t itself. Row 0 of `returns` is NaN (no return), so
    the first value is at row window + 1. N < 2: zeros (no cross-section to measure).
    """
    T, N = returns.shape
    out = np.full(T, np.nan)
    if N < 2:
        return np.zeros(T)
    first = window + 1
    if T <= first:
        return out
    r = np.nan_to_num(returns)                      # row 0 only; it never enters a window
    if N > 150:                                     # huge cross-sections: one covariance at a time
        for t in range(first, T):
            hist = r[t - window:t]
            dev = r[t] - hist.mean(axis=0)
            out[t] = _quad_form(np.cov(hist, rowvar=False)[None], dev[None])[0]
        return out
    # Window sums via prefix sums over chunks of rows (memory ~ (chunk + window) N^2); chunk bounds
    # depend on row indices only, so no value ever depends on later rows.
    chunk = max(256, 5_000_000 // (N * N))
    for c0 in range(first, T, chunk):
        c1 = min(T, c0 + chunk)
        seg = r[c0 - window:c1]
        cs1 = np.concatenate([np.zeros((1, N)), np.cumsum(seg, axis=0)])
        cs2 = np.concatenate([np.zeros((1, N, N)), np.cumsum(seg[:, :, None] * seg[:, None, :], axis=0)])
        t = np.arange(window, window + c1 - c0)     # local index of rows c0 .. c1-1 in seg
        mu = (cs1[t] - cs1[t - window]) / window                                   # [B, N]
        cov = ((cs2[t] - cs2[t - window]) - window * mu[:, :, None] * mu[:, None, :]) / (window - 1)
        out[c0:c1] = _quad_form(cov, seg[t] - mu)
    return out


def _cholesky_rows(cov: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """[B, N, N] -> (Cholesky factors [B, N, N], ok [B]): ok where the matrix is positive definite and
    not near-singular (smallest pivot^2 > 1e-8 x largest variance).

    Each row's verdict depends on its own matrix only: if the batched call fails because some matrix
    is not positive definite, rows are factorized one by one, so one bad (later) row can never change
    how the other (earlier) rows are computed. That keeps the turbulence index exactly causal.
    """
    chol = np.zeros_like(cov)
    try:
        chol[:] = np.linalg.cholesky(cov)
    except np.linalg.LinAlgError:
        for i in range(len(cov)):
            try:
                chol[i] = np.linalg.cholesky(cov[i])
            except np.linalg.LinAlgError:
                chol[i] = np.nan
    pivots = np.diagonal(chol, axis1=1, axis2=2) ** 2
    var = np.diagonal(cov, axis1=1, axis2=2)
    ok = np.isfinite(pivots).all(axis=1) & (pivots.min(axis=1) > 1e-8 * var.max(axis=1))
    return chol, ok


def _quad_form(cov: np.ndarray, dev: np.ndarray) -> np.ndarray:
    """[B, N, N] covariances, [B, N] deviations -> [B] dev' pinv(cov) dev.

    A Cholesky solve where the covariance is well conditioned (fast, equal to pinv there up to
    round-off); pinv (eigh) only for the rows that are near-singular, e.g. two identical symbols.
    """
    out = np.empty(len(dev))
    chol, ok = _cholesky_rows(cov)
    if ok.any():
        z = np.linalg.solve(chol[ok], dev[ok][..., None])[..., 0]      # L z = dev, so z'z = dev' cov^-1 dev
        out[ok] = np.sum(z * z, axis=1)
    if not ok.all():
        prec = np.linalg.pinv(cov[~ok], hermitian=True)
        out[~ok] = np.einsum("ti,tij,tj->t", dev[~ok], prec, dev[~ok])
    return out


def size_proxy(close: np.ndarray, volume: np.ndarray | None = None, window: int = WINDOW) -> np.ndarray:
    """[T, N] size proxy, larger = bigger (the data hold no market caps), or all NaN where the data
    cannot support a causal one.

    With volume: trailing mean of dollar volume (close x volume) over the last `window` rows
    (min_periods=1, so no warm-up), a standard liquidity/size proxy. It is point-in-time when
    close x volume is the dollar volume actually traded: unadjusted prices, or split-adjusted prices
    with split-adjusted volume (a split divides earlier prices and multiplies earlier volumes by the
    same factor, so the product is unchanged). Dividend-adjusted closes would scale it by the later
    dividends; `load_csv` therefore uses Close, not Adj Close, when a file has both.

    Without volume (adjusted close-only data such as sp500-20): all NaN. A back-adjusted price level
    on day t is the traded price divided by every split and dividend after t, so ranking by it looks
    ahead (the old trailing-mean-of-close proxy ranked AAPL "small" in 2009 because of its later
    splits). `Features.has_size` is False then, and `Split.to_device` puts zeros and
    `EnvData.has_size = False` on the device: size factors must not be used on such data.
    """
    if volume is None:
        return np.full(close.shape, np.nan)
    return pd.DataFrame(close * volume).rolling(window, min_periods=1).mean().to_numpy()


class Features(NamedTuple):
    """Raw (unnormalized) features of a whole MarketData, all rows.

    per_symbol: [T, N, F] in FEATURE_NAMES order. market: [T, M] in market_names order:
    "log_turbulence" = log1p(turbulence) (N >= 2 only; log1p tames its heavy right tail),
    "market_return" = equal-weight mean log return, "benchmark_return" (when there is a benchmark).
    turbulence [T] raw; momentum, volatility, sharpe, size [T, N] raw. size is all NaN and has_size
    False where the data have no volume (no causal size proxy; see `size_proxy`).
    first_valid: first row where every feature is finite (the warm-up length; size is not counted).

    Every array is causal and, except size, scale-free per symbol: dividing all of a symbol's prices
    before some date by a constant (back-adjusting a later split or dividend) leaves every value
    before that date unchanged (up to float round-off). size is unchanged by a back-adjusted split
    (prices / f, volume x f).
    """

    per_symbol: np.ndarray
    market: np.ndarray
    turbulence: np.ndarray
    momentum: np.ndarray
    volatility: np.ndarray
    sharpe: np.ndarray
    size: np.ndarray
    feature_names: tuple[str, ...]
    market_names: tuple[str, ...]
    first_valid: int
    has_size: bool = False


def compute_features(close: np.ndarray, high: np.ndarray | None = None, low: np.ndarray | None = None,
                     volume: np.ndarray | None = None, benchmark: np.ndarray | None = None, *,
                     turbulence_window: int = TURBULENCE_WINDOW) -> Features:
    """All features from [T, N] prices (high/low None: close-only variants), benchmark [T] or None."""
    high = close if high is None else high
    low = close if low is None else low
    ret = log_returns(close)
    vol, mom, shp = rolling_volatility(close), momentum(close), rolling_sharpe(close)
    line, _, hist = macd(close)
    per_symbol = np.stack([ret, vol, mom, shp, line / close, hist / close, rsi(close),
                           cci(high, low, close), adx(high, low, close)], axis=-1)
    n = close.shape[1]
    turb = turbulence(ret, turbulence_window)
    market, names = [], []
    if n >= 2:
        market.append(np.log1p(np.maximum(turb, 0.0)))
        names.append("log_turbulence")
    market.append(ret.mean(axis=1))
    names.append("market_return")
    if benchmark is not None:
        market.append(log_returns(benchmark[:, None])[:, 0])
        names.append("benchmark_return")
    market = np.stack(market, axis=-1)
    raw = (per_symbol, market, turb, mom, vol, shp)
    ok = np.all([np.isfinite(x).reshape(x.shape[0], -1).all(axis=1) for x in raw], axis=0)   # [T]
    first_valid = int(np.argmax(ok)) if ok.any() else close.shape[0]
    return Features(per_symbol, market, turb, mom, vol, shp, size_proxy(close, volume),
                    FEATURE_NAMES, tuple(names), first_valid, has_size=volume is not None)


class NormStats(NamedTuple):
    """Normalization statistics from the training split: features mean/std [F], market mean/std [M]."""

    feature_mean: np.ndarray
    feature_std: np.ndarray
    market_mean: np.ndarray
    market_std: np.ndarray


CLIP = 10.0


def fit_norm(per_symbol: np.ndarray, market: np.ndarray) -> NormStats:
    """Mean and std of each feature over the given (training) rows, pooled over symbols.

    Pooling keeps cross-sectional differences (a volatile stock stays more volatile after scaling),
    which the factor regimes rely on. std ~ 0 becomes 1 so constant features map to 0.
    """
    flat = per_symbol.reshape(-1, per_symbol.shape[-1])
    fix = lambda s: np.where(s > _TINY, s, 1.0)
    return NormStats(flat.mean(axis=0), fix(flat.std(axis=0)), market.mean(axis=0), fix(market.std(axis=0)))


def apply_norm(per_symbol: np.ndarray, market: np.ndarray, stats: NormStats
               ) -> tuple[np.ndarray, np.ndarray]:
    """z-score with fixed statistics, clipped to +-CLIP (10 std) so a crash outside the training
    range cannot blow up the network's inputs. Returns ([T, N, F], [T, M])."""
    f = np.clip((per_symbol - stats.feature_mean) / stats.feature_std, -CLIP, CLIP)
    m = np.clip((market - stats.market_mean) / stats.market_std, -CLIP, CLIP)
    return f, m

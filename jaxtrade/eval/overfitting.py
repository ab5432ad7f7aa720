"""The statistics of overfitting: how much of a chosen model's Sharpe is selection luck.

Host-side float64 numpy and the standard library's NormalDist (no jax, no scipy). Every Sharpe here is per
period (not annualized) unless a name says `_annual`; kurtosis is the plain (non-excess) kurtosis, 3 for a
normal distribution.

1. `sharpe_moments(returns)`: per-period Sharpe (mean / std, ddof=1), skewness, kurtosis (population
   moments, as in the papers and skfolio), n.
2. `probabilistic_sharpe_ratio` (PSR) and `min_track_record_length` (MinTRL): Bailey & López de Prado
   (2012), "The Sharpe Ratio Efficient Frontier", J. of Risk 15(2).
3. `expected_max_sharpe` and `deflated_sharpe_ratio` (DSR): Bailey & López de Prado (2014), "The Deflated
   Sharpe Ratio", J. of Portfolio Management 40(5): PSR against the best Sharpe that N skill-less
   trials would show by luck.
4. `pbo_cscv`: the probability of backtest overfitting by combinatorially symmetric cross-validation,
   Bailey, Borwein, López de Prado & Zhu (2015/2017), "The Probability of Backtest Overfitting", J. of
   Computational Finance 20(4).
5. `cpcv_folds`: combinatorial purged cross-validation folds, López de Prado (2018), "Advances in
   Financial Machine Learning", ch. 12. Pure: row indices in, row indices out.
6. `trial_summary` / `markdown_section`: all of the above for a trial ledger (every configuration a
   choice was made among, with its returns on the selection data), as a JSON-safe dict and a report
   section.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Callable, Sequence
from statistics import NormalDist
from typing import NamedTuple

import numpy as np

EULER_GAMMA = float(np.euler_gamma)
_NORMAL = NormalDist()      # Phi and Phi^-1 from the standard library: no scipy at run time


class SharpeMoments(NamedTuple):
    sr: float      # per-period Sharpe, mean / std (ddof=1); 0 for a zero-variance series
    skew: float    # population skewness; 0 for a zero-variance series
    kurt: float    # population (non-excess) kurtosis; 3 for a zero-variance series
    n: int         # number of returns


def sharpe_moments(returns) -> SharpeMoments:
    """Per-period Sharpe, skewness, kurtosis and length of a return series [T].

    SR = mean(r) / std(r, ddof=1); skew = m3 / m2^1.5; kurt = m4 / m2^2 (m_k the central moments with
    divisor T, scipy's default and the papers' sample moments). A zero-variance series (a trial that never
    traded) has SR 0 and the normal shape (skew 0, kurt 3): it took no risk and carries no evidence.
    Raises ValueError on non-finite returns (naming the first row) or fewer than 2 returns.
    """
    r = np.asarray(returns, np.float64).reshape(-1)
    bad = np.flatnonzero(~np.isfinite(r))
    if bad.size:
        raise ValueError(f"returns have {bad.size} non-finite values (first at row {bad[0]}): "
                         "drop or fill them before computing Sharpe statistics")
    if r.size < 2:
        raise ValueError(f"a Sharpe ratio needs at least 2 returns, got {r.size}")
    centred = r - r.mean()
    m2 = float(np.mean(centred**2))
    if m2 == 0.0:
        return SharpeMoments(0.0, 0.0, 3.0, int(r.size))
    sr = float(r.mean() / r.std(ddof=1))
    return SharpeMoments(sr, float(np.mean(centred**3) / m2**1.5), float(np.mean(centred**4) / m2**2),
                         int(r.size))


def _check_shape(skew: float, kurt: float) -> None:
    # Every distribution has kurt >= 1 + skew^2 (Pearson), which keeps the PSR variance term positive.
    if not kurt >= 1.0 + skew**2 - 1e-9 * (1.0 + skew**2):
        raise ValueError(f"kurtosis {kurt} is below 1 + skewness^2 = {1 + skew**2}, which no distribution "
                         "has; pass the non-excess kurtosis (3 for normal returns)")


def probabilistic_sharpe_ratio(sr: float, n: int, skew: float, kurt: float,
                               sr_benchmark: float = 0.0) -> float:
    """PSR: the probability that the true Sharpe exceeds `sr_benchmark` (Bailey & López de Prado 2012,
    "The Sharpe Ratio Efficient Frontier"):

        PSR(SR*) = Phi( (SR - SR*) sqrt(n - 1) / sqrt(1 - skew SR + (kurt - 1) / 4 SR^2) )

    sr, sr_benchmark: per-period Sharpes; n: number of returns (>= 2); kurt: non-excess.
    """
    if n < 2:
        raise ValueError(f"PSR needs n >= 2 returns, got {n}")
    _check_shape(skew, kurt)
    var = 1.0 - skew * sr + (kurt - 1.0) / 4.0 * sr**2       # >= 0 by the check; 0 only at a two-point edge
    return float(_NORMAL.cdf((sr - sr_benchmark) * math.sqrt(n - 1) / math.sqrt(max(var, 1e-300))))


def min_track_record_length(sr: float, skew: float, kurt: float, sr_benchmark: float = 0.0,
                            alpha: float = 0.05) -> float:
    """MinTRL in periods: the track record after which PSR(sr_benchmark) reaches 1 - alpha if the
    moments stay the same (Bailey & López de Prado 2012):

        MinTRL = 1 + (1 - skew SR + (kurt - 1) / 4 SR^2) (z_alpha / (SR - SR*))^2,  z_alpha = Phi^-1(1-alpha)

    inf when SR <= SR* (no track record can show skill above the benchmark). Per-period Sharpes.
    """
    if not 0.0 < alpha < 1.0:
        raise ValueError(f"alpha must lie in (0, 1), got {alpha}")
    _check_shape(skew, kurt)
    if sr <= sr_benchmark:
        return math.inf
    var = 1.0 - skew * sr + (kurt - 1.0) / 4.0 * sr**2
    return float(1.0 + var * (_NORMAL.inv_cdf(1.0 - alpha) / (sr - sr_benchmark)) ** 2)


def expected_max_sharpe(n_trials: float, var_sr: float) -> float:
    """E[max SR] of `n_trials` independent skill-less trials whose Sharpe estimates have variance `var_sr`
    (Bailey & López de Prado 2014, "The Deflated Sharpe Ratio"; per-period in, per-period out):

        E[max SR] = sqrt(V) ((1 - gamma) Phi^-1(1 - 1/N) + gamma Phi^-1(1 - 1/(N e))),  gamma = 0.5772...

    One trial involves no selection: 0. The formula approximates the expected maximum of N normals
    (1.575 sd at N = 10, exact 1.539), and is meant for N >> 1.
    """
    if not n_trials >= 1:
        raise ValueError(f"n_trials must be >= 1, got {n_trials}")
    if not var_sr >= 0.0:
        raise ValueError(f"var_sr must be >= 0, got {var_sr}")
    if n_trials == 1:
        return 0.0
    return float(math.sqrt(var_sr) * ((1.0 - EULER_GAMMA) * _NORMAL.inv_cdf(1.0 - 1.0 / n_trials)
                                      + EULER_GAMMA * _NORMAL.inv_cdf(1.0 - 1.0 / (n_trials * math.e))))


def deflated_sharpe_ratio(returns=None, trial_sharpes=None, *, sr: float | None = None,
                          n: int | None = None, skew: float | None = None, kurt: float | None = None,
                          n_trials: float | None = None, var_trials: float | None = None) -> float:
    """DSR = PSR(SR*) with SR* = expected_max_sharpe(N, V) (Bailey & López de Prado 2014).

    The chosen strategy: either `returns` [T] (its moments come from `sharpe_moments`) or all of
    `sr`, `n`, `skew`, `kurt`. The trials it was chosen among: either `trial_sharpes` [N] (per-period
    Sharpes of every trial, the chosen one included; N = their count, V = their variance, ddof=1) or
    `n_trials` and `var_trials`. Per-period Sharpes throughout.
    """
    moments = (sr, n, skew, kurt)
    if returns is not None:
        if any(m is not None for m in moments):
            raise ValueError("pass either `returns` or the moments (sr, n, skew, kurt), not both")
        sr, skew, kurt, n = sharpe_moments(returns)
    elif any(m is None for m in moments):
        raise ValueError("pass `returns` or all of sr, n, skew, kurt")
    if trial_sharpes is not None:
        if n_trials is not None or var_trials is not None:
            raise ValueError("pass either `trial_sharpes` or (n_trials, var_trials), not both")
        t = np.asarray(trial_sharpes, np.float64).reshape(-1)
        if t.size < 2 or not np.all(np.isfinite(t)):
            raise ValueError(f"trial_sharpes needs >= 2 finite values for a variance, got {t.tolist()}")
        n_trials, var_trials = t.size, float(t.var(ddof=1))
    elif n_trials is None or var_trials is None:
        raise ValueError("pass `trial_sharpes` or both n_trials and var_trials")
    return probabilistic_sharpe_ratio(sr, n, skew, kurt, expected_max_sharpe(n_trials, var_trials))


# --- the probability of backtest overfitting ------------------------------------------------------

class PBOResult(NamedTuple):
    pbo: float                  # share of combinations whose IS-best trial has logit <= 0 (OOS median/below)
    logits: np.ndarray          # [C] lambda_c = ln(omega_c / (1 - omega_c))
    n_combinations: int         # C = C(S, S/2)
    is_performance: np.ndarray  # [C] metric of the IS-best trial in sample
    oos_performance: np.ndarray  # [C] metric of the same trial out of sample
    degradation_slope: float    # b of the least-squares OOS = a + b IS over the C pairs (nan: IS constant)
    prob_oos_loss: float        # share of combinations whose IS-best trial has OOS metric < 0
    n_splits: int               # S
    n_rows_used: int            # S * floor(T / S): the oldest T mod S rows are dropped


def _group_sharpes(x: np.ndarray, members: np.ndarray) -> np.ndarray:
    """[C, N] per-period Sharpe (ddof=1, 0 where the variance is 0) of the rows of the groups selected
    by the 0/1 matrix members [C, S]; x is [S, rows, N]. Sums of centred values keep constant columns
    exactly at zero variance."""
    count = members.sum(1, keepdims=True) * x.shape[1]
    centred = x - x.reshape(-1, x.shape[2]).mean(0)
    s1 = members @ centred.sum(1)
    s2 = members @ (centred**2).sum(1)
    mean = members @ x.sum(1) / count
    var = np.maximum(s2 - s1**2 / count, 0.0) / (count - 1)
    sd = np.sqrt(var)
    return np.divide(mean, sd, out=np.zeros_like(mean), where=sd > 0)


def pbo_cscv(returns, n_splits: int = 16,
             metric: Callable[[np.ndarray], np.ndarray] | None = None) -> PBOResult:
    """Probability of backtest overfitting by CSCV (Bailey, Borwein, López de Prado & Zhu).

    returns: [T, N] per-period returns of N trials on the same T periods. The rows are cut into S =
    `n_splits` contiguous groups of floor(T/S) rows (the oldest T mod S rows are dropped). For each of the
    C(S, S/2) combinations c of S/2 groups (itertools.combinations order) the rows of c are in sample (IS)
    and the rest out of sample (OOS). n* = argmax of the IS metric (ties: the lowest column); its OOS
    relative rank omega_c = rank / (N + 1), ranks 1..N ascending with ties averaged; the logit
    lambda_c = ln(omega_c / (1 - omega_c)). PBO = share of lambda_c <= 0: an IS winner exactly at the OOS
    median counts as overfit (the paper's integral of f(lambda) over (-inf, 0]).

    metric: [rows, N] -> [N] performance of each trial (default: per-period Sharpe, ddof=1, 0 for zero
    variance). Raises ValueError naming the constraint for N < 2, odd or < 2 S, too few rows, non-finite
    returns.
    """
    r = np.asarray(returns, np.float64)
    if r.ndim != 2:
        raise ValueError(f"returns must be [T, N] (periods x trials), got shape {r.shape}")
    t_rows, n_trials = r.shape
    if n_trials < 2:
        raise ValueError(f"PBO ranks trials against each other: needs N >= 2 trials (columns), "
                         f"got {n_trials}")
    if n_splits < 2 or n_splits % 2:
        raise ValueError(f"n_splits must be an even number >= 2, got {n_splits}")
    rows = t_rows // n_splits
    if rows < 1 or rows * n_splits // 2 < 2:
        raise ValueError(f"{t_rows} rows cannot fill {n_splits} groups with >= 2 rows per half: "
                         f"needs T >= {max(n_splits, 4)}")
    if not np.all(np.isfinite(r)):
        raise ValueError("returns have non-finite values; drop the trials or rows that have them first")
    used = rows * n_splits
    x = r[t_rows - used:].reshape(n_splits, rows, n_trials)
    combos = list(itertools.combinations(range(n_splits), n_splits // 2))
    member = np.zeros((len(combos), n_splits))
    for i, c in enumerate(combos):
        member[i, list(c)] = 1.0
    perf = lambda groups: np.asarray(metric(x[groups].reshape(-1, n_trials)), np.float64)
    is_best, oos_best, rank = (np.empty(len(combos)) for _ in range(3))
    for lo in range(0, len(combos), 1024):                   # [chunk, N] at a time: large ledgers fit
        m, at = member[lo:lo + 1024], slice(lo, lo + 1024)
        if metric is None:
            is_perf, oos_perf = _group_sharpes(x, m), _group_sharpes(x, 1.0 - m)
        else:
            is_perf = np.stack([perf(row > 0) for row in m])
            oos_perf = np.stack([perf(row == 0) for row in m])
        best = np.argmax(is_perf, axis=1)[:, None]
        is_best[at] = np.take_along_axis(is_perf, best, axis=1)[:, 0]
        chosen = np.take_along_axis(oos_perf, best, axis=1)
        oos_best[at] = chosen[:, 0]
        rank[at] = (oos_perf < chosen).sum(1) + 1 + 0.5 * ((oos_perf == chosen).sum(1) - 1)
    omega = rank / (n_trials + 1)
    logits = np.log(omega / (1.0 - omega))
    dx = is_best - is_best.mean()                      # least-squares slope; nan when IS is (near) constant
    sxx = float(dx @ dx)
    spread = sxx > 1e-24 * max(1.0, float(is_best @ is_best))
    slope = float(dx @ (oos_best - oos_best.mean())) / sxx if spread else math.nan
    return PBOResult(float(np.mean(logits <= 0)), logits, len(combos), is_best, oos_best, slope,
                     float(np.mean(oos_best < 0)), n_splits, used)


# --- combinatorial purged cross-validation ---------------------------------------------------------

class CPCVFold(NamedTuple):
    test_groups: tuple[int, ...]          # the k group ids tested in this fold (ascending)
    test: np.ndarray                      # int row indices tested, ascending
    train: np.ndarray                     # int row indices trained on, ascending
    train_blocks: list[tuple[int, int]]   # train as contiguous half-open row ranges [start, stop)


class CPCV(NamedTuple):
    folds: list[CPCVFold]                 # C(N, k) folds, in itertools.combinations order of test groups
    n_paths: int                          # phi = k / N * C(N, k) = C(N - 1, k - 1) backtest paths
    groups: list[tuple[int, int]]         # group g covers rows [start, stop)
    paths: np.ndarray                     # [phi, N] int: path p reads group g from fold paths[p, g]


def _blocks(mask: np.ndarray) -> list[tuple[int, int]]:
    edges = np.diff(np.concatenate([[0], mask.astype(np.int8), [0]]))
    return list(zip(np.flatnonzero(edges == 1).tolist(), np.flatnonzero(edges == -1).tolist(), strict=True))


def cpcv_folds(n_rows: int, n_groups: int, n_test_groups: int, purge: int = 0, embargo: int = 0) -> CPCV:
    """Combinatorial purged cross-validation (López de Prado 2018, AFML ch. 12).

    The rows 0..n_rows-1 are cut into N = n_groups contiguous groups (np.array_split: the first
    n_rows mod N groups have one row more). Each of the C(N, k) combinations of k = n_test_groups groups is
    one fold's test set; adjacent test groups form one test block. The training rows are all others except
    the `purge` rows just before each test block (rows whose labels or episodes reach into it) and the
    `embargo` rows just after it (serial correlation). Every group is tested in C(N-1, k-1) folds, which
    make phi = C(N-1, k-1) complete backtest paths; `paths[p, g]` is the fold whose test of group g
    belongs to path p (the p-th fold, in order, that tests g).

    skfolio's CombinatorialPurgedCV(purged_size=p, embargo_size=e) purges p rows on both sides: here that
    is purge=p, embargo=p+e. Raises ValueError naming the constraint for bad sizes or a fold left without
    training rows.
    """
    for name, v in (("n_rows", n_rows), ("n_groups", n_groups), ("n_test_groups", n_test_groups),
                    ("purge", purge), ("embargo", embargo)):
        if not isinstance(v, int | np.integer) or isinstance(v, bool):
            raise ValueError(f"{name} must be an int, got {v!r}")
    if n_groups < 2:
        raise ValueError(f"n_groups must be >= 2, got {n_groups}")
    if not 1 <= n_test_groups < n_groups:
        raise ValueError(f"n_test_groups must satisfy 1 <= k < n_groups = {n_groups}, got {n_test_groups}")
    if n_rows < n_groups:
        raise ValueError(f"n_rows = {n_rows} cannot fill n_groups = {n_groups} groups of >= 1 row")
    if purge < 0 or embargo < 0:
        raise ValueError(f"purge and embargo must be >= 0, got purge={purge}, embargo={embargo}")
    bounds = np.cumsum([0] + [len(a) for a in np.array_split(np.arange(n_rows), n_groups)])
    groups = [(int(bounds[g]), int(bounds[g + 1])) for g in range(n_groups)]
    folds = []
    for combo in itertools.combinations(range(n_groups), n_test_groups):
        test_mask = np.zeros(n_rows, bool)
        for g in combo:
            test_mask[groups[g][0]:groups[g][1]] = True
        train_mask = ~test_mask
        for start, stop in _blocks(test_mask):
            train_mask[max(0, start - purge):start] = False
            train_mask[stop:stop + embargo] = False
        if not train_mask.any():
            raise ValueError(f"purge={purge} and embargo={embargo} leave the fold testing groups {combo} "
                             f"with no training rows (n_rows={n_rows}, n_groups={n_groups})")
        folds.append(CPCVFold(combo, np.flatnonzero(test_mask), np.flatnonzero(train_mask),
                              _blocks(train_mask)))
    n_paths = math.comb(n_groups - 1, n_test_groups - 1)
    paths = np.zeros((n_paths, n_groups), np.int64)
    for g in range(n_groups):
        paths[:, g] = [i for i, f in enumerate(folds) if g in f.test_groups]
    return CPCV(folds, n_paths, groups, paths)


# --- the trial ledger summary -----------------------------------------------------------------------

def _finite_or_none(x):
    return None if x is None or not math.isfinite(x) else float(x)


def trial_summary(returns, chosen: int, periods_per_year: float, names: Sequence[str] | None = None,
                  sr_benchmark: float = 0.0, n_splits: int = 16, min_trials_for_pbo: int = 4,
                  alpha: float = 0.05) -> dict:
    """The overfitting statistics of a model chosen among trials, as a JSON-safe dict.

    returns: [T, N] per-period returns of every trial a choice was made among (seeds, population members,
    search trials), on the data the choice was made on; `chosen`: the column of the chosen model.
    sr_benchmark: per-period Sharpe that PSR and MinTRL test against (DSR always tests against the expected
    maximum Sharpe under the null). Conventions:
    - N counts every trial, also one whose returns are not finite (it was tried; counting it is the
      conservative side). Such a trial is left out of the Sharpe variance and of PBO; the chosen trial
      must be finite.
    - A trial that never traded (zero variance) has Sharpe 0; it is left out of the variance of trial
      Sharpes (its 0 carries no sampling noise and would understate the dispersion of luck) but stays in
      N and in PBO's ranking.
    - Fewer than 2 trials with variance: the trials' Sharpe variance is undefined, so DSR falls back to
      PSR(0) and `dsr_reason` says so. PBO is None with `pbo_reason` below `min_trials_for_pbo` trials or
      when the rows cannot fill `n_splits` groups.
    NaN and inf become None. MinTRL in periods and years (None when SR <= sr_benchmark: never).
    """
    r = np.asarray(returns, np.float64)
    if r.ndim != 2:
        raise ValueError(f"returns must be [T, N] (periods x trials), got shape {r.shape}")
    t_rows, n_trials = r.shape
    if not 0 <= chosen < n_trials:
        raise ValueError(f"chosen = {chosen} is not a trial column of returns with {n_trials} columns")
    names = [f"trial {i}" for i in range(n_trials)] if names is None else [str(s) for s in names]
    if len(names) != n_trials:
        raise ValueError(f"{len(names)} names for {n_trials} trials")
    finite = np.all(np.isfinite(r), axis=0)
    if not finite[chosen]:
        raise ValueError(f"the chosen trial {names[chosen]!r} has non-finite returns")
    moments = [sharpe_moments(r[:, i]) if finite[i] else None for i in range(n_trials)]
    sr, skew, kurt, n = moments[chosen]
    varied = [i for i in range(n_trials) if finite[i] and np.ptp(r[:, i]) > 0]
    excluded = [{"name": names[i], "reason": "non-finite returns"} for i in range(n_trials) if not finite[i]]
    excluded += [{"name": names[i], "reason": "zero variance (never traded): Sharpe 0, not in V[SR]"}
                 for i in range(n_trials) if finite[i] and i not in varied]
    ann = math.sqrt(periods_per_year)
    out = {
        "n_trials": n_trials, "n_periods": t_rows, "periods_per_year": float(periods_per_year),
        "chosen": chosen, "chosen_name": names[chosen],
        "sharpe_annual": sr * ann, "sharpe": sr, "skew": skew, "kurt": kurt,
        "sr_benchmark": sr_benchmark,
        "psr": probabilistic_sharpe_ratio(sr, n, skew, kurt, sr_benchmark),
        "trial_sharpes_annual": [None if m is None else m.sr * ann for m in moments],
        "excluded_trials": excluded,
    }
    if len(varied) >= 2:
        var = float(np.var([moments[i].sr for i in varied], ddof=1))
        sr_star = expected_max_sharpe(n_trials, var)
        dsr, reason = probabilistic_sharpe_ratio(sr, n, skew, kurt, sr_star), None
    else:
        var = sr_star = None
        dsr = probabilistic_sharpe_ratio(sr, n, skew, kurt, 0.0)
        reason = (f"{len(varied)} trial(s) with varying returns: the variance of trial Sharpes is undefined, "
                  "so DSR falls back to PSR against 0 (no deflation for selection)")
    out.update({
        "var_trial_sharpe": var, "n_trials_in_variance": len(varied),
        "expected_max_sharpe": sr_star,
        "expected_max_sharpe_annual": None if sr_star is None else sr_star * ann,
        "dsr": dsr, "dsr_reason": reason,
    })
    trl = min_track_record_length(sr, skew, kurt, sr_benchmark, alpha)
    out.update({"alpha": alpha, "min_trl": trl, "min_trl_years": trl / periods_per_year})
    cols = np.flatnonzero(finite)
    pbo = pbo_reason = None
    if cols.size < min_trials_for_pbo:
        pbo_reason = f"{cols.size} trial(s) with finite returns; PBO needs at least {min_trials_for_pbo}"
    elif t_rows < max(n_splits, 4):
        pbo_reason = f"{t_rows} periods cannot fill {n_splits} groups"
    else:
        pbo = pbo_cscv(r[:, cols], n_splits)
    got = pbo is not None
    out.update({
        "pbo": pbo.pbo if got else None, "pbo_reason": pbo_reason,
        "pbo_n_splits": n_splits if got else None, "pbo_n_combinations": pbo.n_combinations if got else None,
        "pbo_prob_oos_loss": pbo.prob_oos_loss if got else None,
        "pbo_degradation_slope": pbo.degradation_slope if got else None,
    })
    return {k: _finite_or_none(v) if isinstance(v, float) else v for k, v in out.items()}


def _fmt(x, spec=".2f", none="n/a") -> str:
    return none if x is None else format(x, spec)


def markdown_section(summary: dict) -> str:
    """A "## Overfitting" report section from `trial_summary`'s dict."""
    s = summary
    lines = [
        "## Overfitting: how much of this is selection luck", "",
        f"The model is `{s['chosen_name']}`, chosen among **{s['n_trials']} trials** on {s['n_periods']} "
        f"periods of selection data (annualized Sharpe {_fmt(s['sharpe_annual'])}, skewness "
        f"{_fmt(s['skew'])}, kurtosis {_fmt(s['kurt'])}).", "",
        "| statistic | value |", "| --- | --- |",
        f"| PSR (P[true Sharpe > {_fmt(s['sr_benchmark'] * math.sqrt(s['periods_per_year']))} a year]) "
        f"| {_fmt(s['psr'], '.3f')} |",
        f"| E[max Sharpe] of {s['n_trials']} skill-less trials, annualized "
        f"| {_fmt(s['expected_max_sharpe_annual'])} |",
        f"| Deflated Sharpe ratio (DSR) | {_fmt(s['dsr'], '.3f')} |",
        f"| Probability of backtest overfitting (PBO) | {_fmt(s['pbo'], '.2f')} |",
        f"| Minimum track record at {1 - s['alpha']:.0%} | {_fmt(s['min_trl'], '.0f', 'never')} periods "
        f"({_fmt(s['min_trl_years'], '.1f', 'never')} years; have {s['n_periods']}) |", "",
        f"DSR is the probability that the true Sharpe beats the best Sharpe that {s['n_trials']} trials "
        "without skill would show by luck; 0.95 or more is the usual bar (Bailey & López de Prado 2014).",
    ]
    if s["dsr_reason"]:
        lines.append(f"DSR here is not deflated: {s['dsr_reason']}.")
    if s["pbo"] is not None:
        lines.append(f"PBO is the share of {s['pbo_n_combinations']} in-sample/out-of-sample splits (CSCV, "
                     f"{s['pbo_n_splits']} groups) in which the in-sample best trial ranked at or below the "
                     f"out-of-sample median; the in-sample best lost money out of sample in "
                     f"{_fmt(s['pbo_prob_oos_loss'], '.0%')} of the splits.")
    else:
        lines.append(f"PBO not computed: {s['pbo_reason']}.")
    if s["excluded_trials"]:
        lines.append("Left out of the trial Sharpe variance: "
                     + "; ".join(f"`{e['name']}` ({e['reason']})" for e in s["excluded_trials"]) + ".")
    return "\n".join(lines) + "\n"

"""Combinatorial purged cross-validation (CPCV) as a walk-forward mode (`walk_forward.mode = "cpcv"`):
the plan and the arithmetic, pure (rows in, rows out). `jaxtrade.pipeline.walk_forward` trains, tests
and reports the folds.

1. Groups: the rows of the walk-forward period (from the first row with the features' warm-up and
   the history rows before it, or `walk_forward.start`, to the data's last row; its first rows mod N
   rows are left out) are cut into N = `walk_forward.n_groups` contiguous groups of equal length (one
   compiled backtest serves every group); each of the C(N, k) combinations of
   k = `walk_forward.n_test_groups` groups is one fold's test set (`eval.overfitting.cpcv_folds`).
2. Purge and embargo, sized from the env. An episode starting at row s reads rows s - H .. s + L
   (H = the history rows every split carries: `env.window`, or more where the env's registration
   needs more; L = `env.episode_length`). So the H + L rows before each test block are purged (an
   episode or observation window starting there reaches into the block) and the H rows after it are
   embargoed (their observation windows hold test rows): purge = H + L, embargo = H.
   `walk_forward.purge` / `embargo` may raise them (e.g. by the features' own warm-up, whose
   rolling statistics at the first rows after the embargo still remember test rows), never lower
   them.
3. Validation: the last `walk_forward.val_size` rows of the fold's last training block (the latest
   training rows; where a test block follows, the rows just before its purge) are the fold's
   validation window, on which the run's best checkpoint is chosen (validation composite). They are
   not training rows; the validation backtest's H history rows are training or embargo rows, never
   test rows (embargo >= H).
4. Training on non-contiguous blocks: the remaining training rows form up to k + 1 blocks. The
   fold's training env holds every row from H rows before the first block to the end of the last one
   (test, purge and embargo rows between blocks included), and random-start episodes begin only on
   rows s whose whole window and episode, s - H .. s + L, lie inside one training block
   (`EnvData.start_count`, `start_count` below): no episode reads a test, purge, embargo or
   validation row. A block shorter than H + L + 1 rows hosts no episode.
5. The Preprocessor (normalization statistics, turbulence threshold) is fitted on the fold's longest
   training block (`fit`: one contiguous range of training rows, what `fit_split` fits) and applied
   unchanged to the other blocks, the validation window and the test groups; nothing is fitted on a
   test row.
6. Paths: every group is tested by C(N-1, k-1) folds; path p reads group g from fold `paths[p][g]`,
   which gives phi = C(N-1, k-1) complete out-of-sample paths over the whole period. Each path's
   Sharpe is reported, with their distribution (`distribution`: mean, std, min, max).

Refused, naming the key and the constraint: k outside 1 .. N-1, purge / embargo below the rule,
groups too short for one window + episode, a fold whose last training block cannot hold the
validation window, or whose training blocks hold no window + episode.
"""

from __future__ import annotations

import dataclasses
import math

import numpy as np
import pandas as pd

from jaxtrade.data.dates import format_date
from jaxtrade.eval.overfitting import cpcv_folds

Range = tuple[int, int]  # inclusive (first, last) rows of the data


@dataclasses.dataclass(frozen=True)
class PurgedFold:
    """One CPCV fold in rows of the data (inclusive ranges).

    test_groups: the k group ids it tests; test: their row ranges, one per group. train: the training
    blocks (purged, embargoed, validation removed); val: the validation window; fit: the longest
    training block (the Preprocessor's range); span: first .. last training row."""

    index: int
    test_groups: tuple[int, ...]
    test: tuple[Range, ...]
    train: tuple[Range, ...]
    val: Range
    fit: Range

    @property
    def span(self) -> Range:
        return self.train[0][0], self.train[-1][1]

    def to_json(self, dates: pd.DatetimeIndex | None = None) -> dict:
        out = {
            "index": self.index,
            "test_groups": list(self.test_groups),
            "test_rows": [list(r) for r in self.test],
            "train_blocks": [list(r) for r in self.train],
            "val_rows": list(self.val),
            "fit_rows": list(self.fit),
        }
        if dates is not None:
            d = lambda r: [format_date(dates[r[0]]), format_date(dates[r[1]])]
            out["test_dates"] = [d(r) for r in self.test]
            out["train_dates"] = [d(r) for r in self.train]
            out["val_dates"] = d(self.val)
        return out


@dataclasses.dataclass(frozen=True)
class CPCVPlan:
    """The folds, the groups (inclusive row ranges), the paths ([phi][N] fold indices) and the sizes
    they were made with (history H, episode length L, purge, embargo in rows)."""

    folds: tuple[PurgedFold, ...]
    groups: tuple[Range, ...]
    paths: tuple[tuple[int, ...], ...]
    n_groups: int
    n_test_groups: int
    history: int
    episode_length: int
    purge: int
    embargo: int
    val_size: int

    @property
    def n_paths(self) -> int:
        return len(self.paths)

    def rule(self) -> str:
        """The purge / embargo rule with this plan's numbers, for logs and reports."""
        h, length = self.history, self.episode_length
        return (
            f"purge {self.purge} rows before each test block (>= history {h} + episode length {length}: "
            f"an episode or window starting there reaches into the block) and embargo {self.embargo} rows "
            f"after it (>= history {h}: their windows hold test rows); episodes start only where their "
            f"window and episode ({h} + {length} + 1 rows) lie inside one training block"
        )

    def to_json(self, dates: pd.DatetimeIndex | None = None) -> dict:
        out = {
            "n_groups": self.n_groups,
            "n_test_groups": self.n_test_groups,
            "n_folds": len(self.folds),
            "n_paths": self.n_paths,
            "history": self.history,
            "episode_length": self.episode_length,
            "purge": self.purge,
            "embargo": self.embargo,
            "val_size": self.val_size,
            "rule": self.rule(),
            "group_rows": [list(g) for g in self.groups],
            "paths": [list(p) for p in self.paths],
        }
        if dates is not None:
            out["group_dates"] = [[format_date(dates[a]), format_date(dates[b])] for a, b in self.groups]
        return out


def _int(key: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"walk_forward.{key} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def _at_least(key: str, value, minimum: int, why: str) -> int:
    if value is None:
        return minimum
    value = _int(key, value, 0)
    if value < minimum:
        raise ValueError(f"walk_forward.{key} ({value}) must be >= {minimum}: {why}")
    return value


def make_plan(
    n_rows: int,
    *,
    origin: int,
    n_groups,
    n_test_groups,
    val_size,
    history: int,
    episode_length: int,
    purge=None,
    embargo=None,
    dates: pd.DatetimeIndex | None = None,
) -> CPCVPlan:
    """The CPCV plan over rows origin .. n_rows - 1 (see the module docstring). purge / embargo None:
    the minimum of the rule. ValueError naming the key and the constraint for bad sizes."""
    n = _int("n_groups", n_groups, 2)
    k = n_test_groups
    if isinstance(k, bool) or not isinstance(k, (int, np.integer)) or not 1 <= k < n:
        raise ValueError(
            f"walk_forward.n_test_groups ({k!r}) must be an integer >= 1 and < walk_forward.n_groups ({n}): "
            "a fold tests k groups and trains on the others"
        )
    k = int(k)
    val = _int("val_size", val_size, 2)
    h, length = int(history), int(episode_length)
    p = _at_least("purge", purge, h + length,
                  f"history rows {h} + env.episode_length {length}: rows whose observation windows or "
                  "episodes reach into a test block are purged")
    e = _at_least("embargo", embargo, h,
                  f"history rows {h}: rows whose observation windows hold test rows are embargoed")
    origin += (n_rows - origin) % n       # equal groups: one compile serves every group's backtest
    rows = n_rows - origin
    need = h + length + 1
    where = f"row {origin}"
    if dates is not None and origin < n_rows:
        where += f" ({format_date(dates[origin])})"
    if rows // n < need:
        raise ValueError(
            f"walk_forward.n_groups ({n}) cuts the {rows} rows of the walk-forward period (from {where}) "
            f"into groups of {rows // n} rows; a group must hold one observation window and one episode "
            f"(history {h} + env.episode_length {length} + 1 = {need} rows): lower walk_forward.n_groups "
            "or env.episode_length, or start earlier (walk_forward.start)"
        )
    try:
        cv = cpcv_folds(rows, n, k, purge=p, embargo=e)
    except ValueError as err:
        raise ValueError(f"walk_forward.purge ({p}) and walk_forward.embargo ({e}): {err}") from err
    folds = []
    for i, f in enumerate(cv.folds):
        blocks = [(origin + a, origin + b - 1) for a, b in f.train_blocks]
        last = blocks[-1]
        if last[1] - last[0] + 1 < val:
            raise ValueError(
                f"walk_forward.val_size ({val}) does not fit the fold testing groups {f.test_groups}: its "
                f"last training block, rows {last[0]} .. {last[1]}, holds {last[1] - last[0] + 1} rows after "
                f"purge ({p}) and embargo ({e}); lower walk_forward.val_size or walk_forward.n_groups"
            )
        val_rows = (last[1] - val + 1, last[1])
        blocks[-1] = (last[0], val_rows[0] - 1)
        blocks = [b for b in blocks if b[1] >= b[0]]
        hosting = [b for b in blocks if b[1] - b[0] + 1 >= need]
        if not hosting:
            longest = max((b[1] - b[0] + 1 for b in blocks), default=0)
            raise ValueError(
                f"the fold testing groups {f.test_groups} has no training block of {need} rows (history "
                f"{h} + env.episode_length {length} + 1: one window and episode) after purge ({p}), embargo "
                f"({e}) and the {val}-row validation window (its longest holds {longest}); lower "
                "walk_forward.n_groups, n_test_groups, val_size or env.episode_length"
            )
        fit = max(hosting, key=lambda b: (b[1] - b[0], -b[0]))
        test = tuple((origin + cv.groups[g][0], origin + cv.groups[g][1] - 1) for g in f.test_groups)
        folds.append(PurgedFold(i, tuple(f.test_groups), test, tuple(blocks), val_rows, fit))
    groups = tuple((origin + a, origin + b - 1) for a, b in cv.groups)
    paths = tuple(tuple(int(x) for x in row) for row in cv.paths)
    return CPCVPlan(tuple(folds), groups, paths, n, k, h, length, p, e, val)


def start_rows(fold: PurgedFold, *, history: int, episode_length: int) -> np.ndarray:
    """The rows of the data an episode of `fold` may start on, ascending: s with s - history .. s +
    episode_length inside one training block."""
    ranges = [np.arange(a + history, b - episode_length + 1) for a, b in fold.train]
    return np.concatenate(ranges).astype(np.int64)


def start_count(fold: PurgedFold, first_row: int, n_rows: int, *, history: int,
                episode_length: int) -> np.ndarray:
    """`EnvData.start_count` (int32 [n_rows]) of a training split whose row 0 is row `first_row` of the
    data: the running count of `start_rows` up to each row."""
    mask = np.zeros(n_rows, np.int32)
    rows = start_rows(fold, history=history, episode_length=episode_length) - first_row
    if rows.size and (rows[0] < 0 or rows[-1] >= n_rows):
        raise ValueError(f"the training split (data rows {first_row} .. {first_row + n_rows - 1}) does not "
                         f"hold fold {fold.index}'s training blocks {fold.train}")
    mask[rows] = 1
    return np.cumsum(mask, dtype=np.int32)


def distribution(values) -> dict:
    """{n, mean, std (ddof=1; None for one value), min, max} of the finite values (None where none)."""
    x = np.asarray([v for v in values if v is not None and math.isfinite(v)], np.float64)
    if not x.size:
        return {"n": 0, "mean": None, "std": None, "min": None, "max": None}
    return {
        "n": int(x.size),
        "mean": float(x.mean()),
        "std": float(x.std(ddof=1)) if x.size > 1 else None,
        "min": float(x.min()),
        "max": float(x.max()),
    }

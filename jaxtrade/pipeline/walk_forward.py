"""Walk-forward training: a model rolled forward through time, fold by fold, on the re-entrant
`jaxtrade.train.loop.run` and model artifacts.

    result = walk_forward.run(config, workdir)       # config: an experiment config + `walk_forward`

1. Folds (`FoldSpec`, `make_folds`), in bars of the data: fold i trains on `initial_window` rows
   ending `i * step` rows after the first fold's (mode "sliding": the window moves; "expanding":
   it grows from the first training row), validates on the next `val_size` rows and tests on the
   `test_size` = `step` rows after those, so that max(train) < min(val) <= max(val) < min(test)
   and the test windows tile the out-of-sample period without overlap. Every split keeps
   `env.window` history rows before it, and the first training row leaves the features' warm-up.
2. Each fold is one `run` in `<workdir>/fold_<i>`: the Preprocessor is refitted on the fold's
   training window only; the model starts from the previous fold's chosen artifact (a warm start,
   optimizer reset unless `reset_optimizer=False`) or, with `warm_start=False`, from scratch.
3. Budget: T_i = max(T_min, round(T_0 * decay^i)) env steps, in whole iterations (`budget_schedule`);
   early stopping inside a fold on that fold's validation window (`train.patience`,
   `train.min_delta`). Across folds (`fold_patience` > 0, off by default): after that many folds in
   a row where new training did not beat the carried model on validation, later folds train no
   more but are still tested with the carried model and say so (`trained: false`).
4. Phases by the fraction of folds done (`phases`: aggressive < 0.3, balanced < 0.7, fine-tune):
   learning rate, entropy and clip are traced hyperparameters, so they change without a compile;
   epochs are static, so each distinct epochs value compiles the iteration once (one agent per
   set of static hyperparameters, reused by every fold: expanding windows are padded to one shape
   with `jaxtrade.data.envdata.pad_rows`).
5. Selection without leakage: the fold's newly trained best-by-validation model and the carried
   model are both backtested on fold i's validation window; the better composite is fold i's
   chosen model (`fold_<i>/model`), traded on fold i's test window and carried into fold i+1.
   Nothing after fold i's validation window is read by any decision for fold i.
6. Output: `walk_forward.json` (per fold: rows and dates, phase, timesteps, iterations, wall time,
   early stop, validation scores, chosen model, test statistics; totals), `report.md` with the
   stitched out-of-sample equity curve against the baselines on the same windows (`oos/`) and a
   per-fold plot. The JSON is rewritten after every fold: a killed walk-forward continues from the
   last finished fold (and a fold killed mid-way resumes from its own `latest`).
7. Registry (`registry` set): every fold's chosen model is registered as the next version of
   `registry_name` (stage rl, graded on that fold's validation window, tags fold_<i> and the
   walk-forward's id), with the previous fold's version as its parent when it was warm-started from
   it. A resumed run finds a fold already registered by those tags and does not register it twice.
8. Mode "cpcv" (`walk_forward.mode`, with `n_groups`, `n_test_groups`, `val_size` and optionally
   `purge` / `embargo`): combinatorial purged cross-validation instead of rolling windows
   (`jaxtrade.pipeline.cpcv`: the groups, the purge and embargo sized from the window and the episode
   length, validation, training on non-contiguous blocks). The folds are not a sequence, so every fold
   trains from scratch for `timesteps` env steps with the agent section's hyperparameters (no warm
   start, budget decay, phases or fold patience) and is tested on its k test groups; the phi backtest
   paths assembled from the groups' test results, each path's Sharpe and their distribution (mean,
   std, min, max) go into `walk_forward.json` (`cpcv`, `paths`) and `report.md` (`paths/`, `paths.png`).
9. Several processes (`run(..., process_id=i, num_processes=P)`, on one machine or many, each on its
   own local devices): where the folds are independent (mode "cpcv", or `warm_start=False` with
   `fold_patience=0`) process i trains folds i, i + P, ...; a chain of warm starts is refused by
   name. Each finished fold leaves `fold_<i>/record.json` (a restarted process skips its finished
   folds); process 0 waits for every fold's record, then alone registers the folds in order and
   writes `walk_forward.json` and the report, the same as one process's but for wall times. The
   workdir must be on a filesystem every process reaches.
"""

from __future__ import annotations

import dataclasses
import hashlib
import json
import logging
import math
import os
import time
from collections.abc import Callable

import jax
import ml_collections
import numpy as np
import pandas as pd
from ml_collections import config_dict

from jaxtrade import envs
from jaxtrade import eval as evaluate
from jaxtrade.agents import registry as agent_registry
from jaxtrade.agents.base import check_keys
from jaxtrade.data.dates import format_date
from jaxtrade.data.envdata import pad_rows
from jaxtrade.pipeline import cpcv
from jaxtrade.pipeline.registry import Registry
from jaxtrade.train import artifact as artifact_lib
from jaxtrade.train import evaluation, loop, sources
from jaxtrade.train import setup as setup_lib
from jaxtrade.train.checkpoints import Checkpoints
from jaxtrade.train.trials import TrialLedger, frame_returns, summary_of_artifact

log = logging.getLogger("jaxtrade")

MODES = ("sliding", "expanding")   # rolling windows (`make_folds`)
CPCV = "cpcv"                      # combinatorial purged cross-validation (`jaxtrade.pipeline.cpcv`)
JSON_NAME = "walk_forward.json"
FORMAT = "jaxtrade-walk-forward/1"


# FOLDS


@dataclasses.dataclass(frozen=True)
class FoldSpec:
    """Fold sizes in bars (rows of the data). start: the first training row's date (None: the
    earliest row with the features' warm-up and `env.window` history rows before it). first_test:
    a date; when set, initial_window is derived so the first test window starts there.
    max_folds: 0 = as many full folds as the data hold."""

    initial_window: int
    step: int
    val_size: int
    test_size: int
    mode: str = "sliding"
    start: str | None = None
    first_test: str | None = None
    max_folds: int = 0


@dataclasses.dataclass(frozen=True)
class Fold:
    """Inclusive row ranges (first, last) of the data for one fold."""

    index: int
    train: tuple[int, int]
    val: tuple[int, int]
    test: tuple[int, int]

    def to_json(self, dates: pd.DatetimeIndex | None = None) -> dict:
        out = {
            "index": self.index,
            "train_rows": list(self.train),
            "val_rows": list(self.val),
            "test_rows": list(self.test),
        }
        if dates is not None:
            for k in ("train", "val", "test"):
                lo, hi = getattr(self, k)
                out[f"{k}_dates"] = [format_date(dates[lo]), format_date(dates[hi])]
        return out


def _int(key: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)) or value < minimum:
        raise ValueError(f"walk_forward.{key} must be an integer >= {minimum}, got {value!r}")
    return int(value)


def make_folds(
    spec: FoldSpec, dates: pd.DatetimeIndex, *, first_row: int, min_train_rows: int = 2
) -> list[Fold]:
    """The folds of `spec` over rows `first_row` .. len(dates) - 1 (first_row: the earliest row a
    training split may start on: feature warm-up + window). ValueError naming the key and the
    constraint when the spec is inconsistent or the data hold no full fold."""
    if spec.mode not in MODES:
        raise ValueError(f"walk_forward.mode must be one of {[*MODES, CPCV]}, got {spec.mode!r}")
    step = _int("step", spec.step, 1)
    val_size = _int("val_size", spec.val_size, 2)
    test_size = _int("test_size", spec.test_size, 2)
    if test_size != step:
        raise ValueError(
            f"walk_forward.test_size ({test_size}) must equal walk_forward.step ({step}): the "
            "folds' test windows tile the out-of-sample period, without gaps or overlap"
        )
    max_folds = _int("max_folds", spec.max_folds, 0)
    n = len(dates)
    origin = first_row
    if spec.start is not None:
        origin = int(dates.searchsorted(pd.Timestamp(spec.start), "left"))
        if origin < first_row:
            raise ValueError(
                f"walk_forward.start={spec.start} leaves too little history: the first training "
                f"row must be >= row {first_row} ({format_date(dates[min(first_row, n - 1)])}), "
                "after the features' warm-up and env.window history rows"
            )
    if spec.first_test is not None:
        first_test = int(dates.searchsorted(pd.Timestamp(spec.first_test), "left"))
        initial = first_test - val_size - origin
        if initial < 1:
            raise ValueError(
                f"walk_forward.first_test={spec.first_test} leaves {initial} training rows after "
                f"walk_forward.start and the {val_size}-row validation window"
            )
    else:
        initial = _int("initial_window", spec.initial_window, 1)
    if initial < 3 * step:
        raise ValueError(
            f"walk_forward.initial_window ({initial} rows) must be >= 3 * walk_forward.step "
            f"({3 * step}): a fold must train on several steps' worth of data"
        )
    if initial < min_train_rows:
        raise ValueError(
            f"walk_forward.initial_window ({initial} rows) is shorter than the training split "
            f"needs ({min_train_rows} rows: env.episode_length + 1 for random-start episodes)"
        )
    need = origin + initial + val_size + test_size
    if need > n:
        raise ValueError(
            f"the data hold {n} rows ({format_date(dates[0])} .. {format_date(dates[-1])}): one fold "
            f"needs {initial} training + {val_size} validation + {test_size} test rows from row "
            f"{origin} ({format_date(dates[min(origin, n - 1)])}), {need - n} more than there are; "
            "lower walk_forward.initial_window, val_size or step"
        )
    count = (n - need) // step + 1
    if max_folds:
        count = min(count, max_folds)
    folds = []
    for i in range(count):
        end = origin + initial + i * step  # first row after the training window
        lo = origin if spec.mode == "expanding" else origin + i * step
        folds.append(
            Fold(
                i, (lo, end - 1), (end, end + val_size - 1), (end + val_size, end + val_size + test_size - 1)
            )
        )
    return folds


def check_folds(folds: list[Fold]) -> None:
    """AssertionError unless every fold is ordered train < val < test and the test windows tile."""
    for f in folds:
        assert f.train[0] <= f.train[1] < f.val[0] <= f.val[1] < f.test[0] <= f.test[1], f
    for a, b in zip(folds, folds[1:], strict=False):
        assert b.test[0] == a.test[1] + 1, (a, b)


# BUDGET AND PHASES


def budget_schedule(n_folds: int, *, timesteps: int, decay: float, min_timesteps: int) -> list[int]:
    """T_i = max(T_min, round(T_0 * decay^i)) env steps for folds i = 0 .. n_folds - 1."""
    if timesteps < 1 or min_timesteps < 0 or not 0 < decay <= 1:
        raise ValueError(
            f"walk_forward budget needs timesteps >= 1, min_timesteps >= 0 and 0 < decay <= 1; got "
            f"timesteps={timesteps}, min_timesteps={min_timesteps}, decay={decay}"
        )
    return [max(int(min_timesteps), int(round(timesteps * decay**i))) for i in range(n_folds)]


def iterations_for(timesteps: int, steps_per_iteration: int) -> int:
    """Whole iterations for a budget of `timesteps` env steps (at least one)."""
    return max(1, math.ceil(timesteps / steps_per_iteration))


@dataclasses.dataclass(frozen=True)
class Phase:
    """One phase's hyperparameters; a fold i of n is in the first phase with i / n < until."""

    name: str
    until: float
    lr: float
    update_epochs: int
    ent_coef: float
    clip_eps: float


PRESET_PHASES = {
    "aggressive": dict(until=0.3, lr=2e-3, update_epochs=4, ent_coef=0.05, clip_eps=0.2),
    "balanced": dict(until=0.7, lr=1e-3, update_epochs=6, ent_coef=0.02, clip_eps=0.15),
    "fine_tune": dict(until=1.0, lr=5e-4, update_epochs=8, ent_coef=0.01, clip_eps=0.1),
}


def phases_of(cfg) -> list[Phase]:
    """The config's phases (`walk_forward.phases`: name -> until, lr, update_epochs, ent_coef,
    clip_eps), sorted by `until`; empty when `walk_forward.use_phases` is False."""
    if not cfg.get("use_phases", True):
        return []
    out = []
    for name, p in dict(cfg.phases).items():
        p = dict(p)
        unknown = sorted(set(p) - {"until", "lr", "update_epochs", "ent_coef", "clip_eps"})
        if unknown:
            raise ValueError(
                f"walk_forward.phases.{name}: unknown keys {unknown}; known: until, lr, "
                "update_epochs, ent_coef, clip_eps"
            )
        out.append(
            Phase(
                name,
                float(p["until"]),
                float(p["lr"]),
                int(p["update_epochs"]),
                float(p["ent_coef"]),
                float(p["clip_eps"]),
            )
        )
    out.sort(key=lambda q: q.until)
    if out and out[-1].until < 1.0:
        raise ValueError(
            f"walk_forward.phases: the last phase ({out[-1].name}) must run until 1.0, got {out[-1].until}"
        )
    return out


def phase_for(i: int, n_folds: int, phases: list[Phase]) -> Phase | None:
    """The phase of fold i of n_folds (by the fraction of folds done, i / n_folds)."""
    frac = i / max(n_folds, 1)
    return next((p for p in phases if frac < p.until), phases[-1] if phases else None)


PHASE_KEYS = ("update_epochs", "ent_coef", "clip_eps")


def apply_phase(config, phase: Phase | None) -> tuple[str, ...]:
    """Writes `phase` into the config's agent section (config unlocked): the agent's primary learning
    rate (its registration's first `lr_keys`) = lr, its other learning rates keep their ratio to it;
    update_epochs, ent_coef and clip_eps where the section has them. -> the phase keys the agent
    has no use for (e.g. clip_eps for DQN), which the caller logs."""
    if phase is None:
        return ()
    section = agent_registry.section(config)
    lr_keys = agent_registry.registration(agent_registry.agent_name(config)).lr_keys
    primary = float(section[lr_keys[0]])
    ratios = {k: float(section[k]) / primary for k in lr_keys}
    for k in lr_keys:
        section[k] = phase.lr * ratios[k]
    for k in PHASE_KEYS:
        if k in section:
            section[k] = getattr(phase, k)
    return tuple(k for k in PHASE_KEYS if k not in section)


# THE RUN


@dataclasses.dataclass
class WalkForwardHooks:
    """should_stop(): polled between folds and inside them (a stop finishes the iteration, saves and
    returns; the next call continues). on_fold_start(fold, init_params or None): before each fold's
    training (tests capture the warm start with it); the fold is a `Fold`, in mode "cpcv" a
    `cpcv.PurgedFold` (always None: CPCV folds train from scratch)."""

    should_stop: Callable[[], bool] | None = None
    on_fold_start: Callable[[Fold, object], None] | None = None


@dataclasses.dataclass
class WalkForwardResult:
    workdir: str
    summary: dict  # walk_forward.json's content
    complete: bool  # every fold done (False: stopped by request)
    report_path: str | None


def _fold_config(config, ranges: tuple, iterations: int, phase: Phase | None):
    """The fold's experiment config: data.train / val / test = `ranges` (row ranges or None)."""
    c = ml_collections.ConfigDict(config.to_dict())
    c.data.train, c.data.val, c.data.test = ranges
    c.train.iterations = int(iterations)
    c.train.total_timesteps = None
    c.train.episodes = None
    c.train.final_report = False
    c.train.in_sample_report = False
    unused = apply_phase(c, phase)
    if unused:
        log.debug("phase %s: the agent has no %s; those phase keys are not applied", phase.name, unused)
    return c


def _archive(workdir: str) -> None:
    ours = (JSON_NAME, "report.md", "oos", "folds.png", "paths", "paths.png")
    loop.archive_previous(workdir, lambda p: p.startswith("fold_") or p in ours)


def _write_json(path: str, payload: dict) -> None:
    artifact_lib.write_json_atomic(path, payload, default=_json_default)


def _json_default(x):
    if isinstance(x, (np.floating, np.integer)):
        return x.item()
    if isinstance(x, pd.Timestamp):
        return x.isoformat()
    raise TypeError(f"not JSON-serializable: {type(x).__name__}")


def _finite(x):
    x = float(x)
    return x if math.isfinite(x) else None


def _frame_stats(frame: pd.DataFrame) -> dict:
    """The numeric `eval.stats` of a backtest frame, JSON-safe (None for non-finite)."""
    return {
        k: _finite(v)
        for k, v in evaluate.stats(frame).items()
        if isinstance(v, (int, float, np.number)) and not isinstance(v, bool)
    }


def _spec_of(cfg) -> FoldSpec:
    return FoldSpec(
        initial_window=int(cfg.get("initial_window", 0) or 0),
        step=cfg.step,
        val_size=cfg.val_size,
        test_size=cfg.get("test_size") or cfg.step,
        mode=cfg.mode,
        start=cfg.get("start"),
        first_test=cfg.get("first_test"),
        max_folds=int(cfg.get("max_folds", 0) or 0),
    )


def plan(config, market) -> tuple[list, list[int]]:
    """(folds, budget in env steps per fold) of `config` on `market` (checked; nothing trained): `Fold`s,
    or in mode "cpcv" the `cpcv.PurgedFold`s of `plan_cpcv`, each with the full `timesteps`."""
    wf = config.walk_forward
    if wf.get("mode") == CPCV:
        folds = list(plan_cpcv(config, market).folds)
        return folds, budget_schedule(len(folds), timesteps=int(wf.timesteps), decay=1.0, min_timesteps=0)
    window = int(config.env.window)
    first_row = market.features().first_valid + window
    folds = make_folds(
        _spec_of(wf), market.dates, first_row=first_row, min_train_rows=int(config.env.episode_length) + 2
    )
    check_folds(folds)
    budgets = budget_schedule(
        len(folds), timesteps=int(wf.timesteps), decay=float(wf.decay), min_timesteps=int(wf.min_timesteps)
    )
    return folds, budgets


def _check_config(config) -> None:
    if int(config.train.get("seeds", 1) or 1) != 1:
        raise ValueError(
            f"walk-forward trains one seed per run (train.seeds={config.train.seeds}); run one "
            "walk-forward per seed with --config.seed=S"
        )
    if "walk_forward" not in config:
        raise ValueError("the config has no walk_forward section (see experiments/configs/walk_forward_*.py)")
    check_keys(config.walk_forward, default_config(), name="walk_forward")
    mode = config.walk_forward.get("mode", "sliding")
    if mode not in (*MODES, CPCV):
        raise ValueError(f"walk_forward.mode must be one of {[*MODES, CPCV]}, got {mode!r}")
    if mode == CPCV and not bool(config.env.get("random_start", True)):
        raise ValueError(
            "walk_forward.mode='cpcv' trains on random-start episodes inside the training blocks: "
            "env.random_start must be True"
        )


def history_rows_of(config, market) -> int:
    """H, the history rows every split of `config` carries: the window, or more where the env's
    registration needs more (the same number `train.setup.build` cuts its splits with)."""
    cfg = setup_lib.env_config_of(config)
    return max(int(cfg["window"]),
               envs.history_rows(cfg["name"], cfg, has_volume=market.volume is not None))


def plan_cpcv(config, market) -> cpcv.CPCVPlan:
    """The CPCV plan of a `walk_forward.mode = "cpcv"` config on `market` (checked; nothing trained):
    the walk-forward period runs from the first row with the features' warm-up and H history rows
    before it (or `walk_forward.start`) to the data's last row."""
    wf = config.walk_forward
    h = history_rows_of(config, market)
    dates = market.dates
    first_row = market.features().first_valid + h
    origin = first_row
    if wf.get("start") is not None:
        origin = int(dates.searchsorted(pd.Timestamp(wf.start), "left"))
        if origin < first_row:
            raise ValueError(
                f"walk_forward.start={wf.start} leaves too little history: the first row must be >= row "
                f"{first_row} ({format_date(dates[min(first_row, len(dates) - 1)])}), after the features' "
                f"warm-up and {h} history rows"
            )
    return cpcv.make_plan(
        len(dates),
        origin=origin,
        n_groups=wf.n_groups,
        n_test_groups=wf.n_test_groups,
        val_size=wf.val_size,
        history=h,
        episode_length=int(config.env.episode_length),
        purge=wf.get("purge"),
        embargo=wf.get("embargo"),
        dates=dates,
    )


def _finished_folds(json_path: str, plan_json: list, workdir: str, n_folds: int) -> list[dict]:
    """The fold records of an earlier run in the workdir (its plan must be this one), or []."""
    if not os.path.exists(json_path):
        return []
    with open(json_path, encoding="utf-8") as f:
        previous = json.load(f)
    if previous.get("plan") != plan_json:
        raise ValueError(
            f"{json_path} holds a walk-forward over other folds than this config's; pass "
            "--fresh_start to move it aside, or another --workdir"
        )
    records = list(previous.get("folds", []))
    if records:
        log.info("continuing the walk-forward in %s after fold %d of %d", workdir, len(records), n_folds)
    return records


def run(
    config,
    workdir: str,
    *,
    market=None,
    hooks: WalkForwardHooks | None = None,
    fresh_start: bool = False,
    verbosity: str = "normal",
    process_id: int = 0,
    num_processes: int = 1,
) -> WalkForwardResult:
    """Walks `config` forward into `workdir` (see the module docstring).

    market: the MarketData to use instead of loading `config.data` (tests perturb it).
    fresh_start: move what the workdir holds aside and start over; otherwise finished folds recorded
    in walk_forward.json are kept (the fold plan must be the same) and the run continues.
    process_id, num_processes: this process among those sharing the folds (module docstring, 9).
    """
    hooks = hooks or WalkForwardHooks()
    config = ml_collections.ConfigDict(config.to_dict())
    _check_config(config)
    _check_processes(config, process_id, num_processes, fresh_start)
    procs = (int(process_id), int(num_processes))
    wf = config.walk_forward
    md = setup_lib.load_market_data(config.data) if market is None else market
    if wf.mode == CPCV:
        return _run_cpcv(config, md, workdir, hooks, fresh_start, verbosity, procs)
    folds, budgets = plan(config, md)
    phases = phases_of(wf)
    pad = (
        max(f.train[1] - f.train[0] + 1 for f in folds) + int(config.env.window)
        if wf.mode == "expanding"
        else None
    )
    log.info(
        "walk-forward: %d folds (%s, %d-row step), budgets %s env steps, phases %s",
        len(folds),
        wf.mode,
        folds[0].test[1] - folds[0].test[0] + 1,
        ", ".join(f"{b:,}" for b in budgets),
        ", ".join(p.name for p in phases) or f"none (config.{agent_registry.agent_name(config)} throughout)",
    )

    def run_one(fold, records, agents):
        return _run_fold(config, md, fold, folds, budgets, phases, agents, workdir, pad, hooks, verbosity,
                         _stalled(records))

    def report(records, summary):
        summary["out_of_sample"], path = _final_report(config, md, folds, records, workdir, summary)
        return path

    return _drive(config, md, workdir, folds, budgets, run_one, report, hooks=hooks, fresh_start=fresh_start,
                  processes=procs)


def _check_processes(config, process_id: int, num_processes: int, fresh_start: bool) -> None:
    """ValueError unless `process_id` of `num_processes` can share this walk-forward's folds."""
    if not 0 <= int(process_id) < int(num_processes):
        raise ValueError(f"process_id={process_id} must be in [0, num_processes={num_processes})")
    if int(num_processes) == 1:
        return
    wf = config.walk_forward
    if wf.mode != CPCV and (bool(wf.warm_start) or int(wf.get("fold_patience", 0) or 0) > 0):
        raise ValueError(
            f"walk_forward.mode={wf.mode!r} with warm_start={bool(wf.warm_start)} and "
            f"fold_patience={wf.get('fold_patience', 0)} chains the folds (each starts from, or compares "
            f"with, the previous fold's model), so {num_processes} processes cannot share them: set "
            "--config.walk_forward.warm_start=false and fold_patience=0, use mode='cpcv', or run one process")
    if fresh_start:
        raise ValueError("--fresh_start with several processes: move the old workdir aside (or pass another "
                         "--workdir) before starting them, so that no process writes into it meanwhile")


def _stalled(records) -> int:
    """Folds in a row, at the end of `records`, where new training lost to the carried model."""
    n = 0
    for r in records:
        n = n + 1 if r.get("chosen") == "previous" else 0
    return n


def _drive(config, md, workdir: str, folds, budgets, run_one, report, *, hooks: WalkForwardHooks,
           fresh_start: bool, extra=None, processes: tuple[int, int] = (0, 1)) -> WalkForwardResult:
    """The fold loop of every mode: the workdir (its earlier results moved aside on fresh_start), the
    folds an earlier run finished (kept when the plan is the same), then per remaining fold
    `run_one(fold, records, agents)` -> its record (None: stopped by request), registered where
    `walk_forward.registry` is set, and the summary JSON rewritten; once every fold is done,
    `report(records, summary)` -> the report's path (it may add to the summary). extra: what the
    mode adds to every summary (CPCV: its plan). processes: (this process, how many) share the folds
    (`_drive_shared`)."""
    if processes[1] > 1:
        return _drive_shared(config, md, workdir, folds, budgets, run_one, report, hooks=hooks, extra=extra,
                             processes=processes)
    wf = config.walk_forward
    os.makedirs(workdir, exist_ok=True)
    if fresh_start:
        _archive(workdir)
    json_path = os.path.join(workdir, JSON_NAME)
    plan_json = [f.to_json(md.dates) for f in folds]
    records = _finished_folds(json_path, plan_json, workdir, len(folds))
    agents: dict = {}
    t_start = time.perf_counter()
    wall_before = sum(r.get("wall_seconds", 0.0) for r in records)

    def summarize(*, complete: bool) -> dict:
        wall = wall_before + time.perf_counter() - t_start
        out = _summary(config, folds, plan_json, budgets, records, agents, wall, complete=complete)
        return {**out, **(extra or {})}

    complete = True
    for fold in folds[len(records):]:
        if hooks.should_stop is not None and hooks.should_stop():
            complete = False
            break
        record = run_one(fold, records, agents)
        if record is None:  # stopped by request inside the fold
            complete = False
            break
        if wf.get("registry"):
            record["registered"] = _register_fold(wf, workdir, record, records)
        records.append(record)
        _write_json(json_path, summarize(complete=False))
    summary = summarize(complete=complete and len(records) == len(folds))
    report_path = report(records, summary) if summary["complete"] else None
    _write_json(json_path, summary)
    return WalkForwardResult(workdir, summary, summary["complete"], report_path)


RECORD_NAME = "record.json"


def _drive_shared(config, md, workdir: str, folds, budgets, run_one, report, *, hooks: WalkForwardHooks,
                  extra, processes: tuple[int, int], poll_s: float = 1.0) -> WalkForwardResult:
    """`_drive` for independent folds shared by several processes (module docstring, 9): this process's
    folds (index % P == its id) each leave `fold_<i>/record.json`; process 0 then waits for every record
    and alone registers, summarizes and reports. Other processes return complete=False, no report."""
    wf = config.walk_forward
    me, n_proc = processes
    os.makedirs(workdir, exist_ok=True)
    json_path = os.path.join(workdir, JSON_NAME)
    plan_json = [f.to_json(md.dates) for f in folds]
    _finished_folds(json_path, plan_json, workdir, len(folds))      # an earlier run over other folds: refused
    record_path = lambda fold: os.path.join(_fold_dir(workdir, fold.index), RECORD_NAME)  # noqa: E731
    agents: dict = {}
    t_start = time.perf_counter()

    def result(records, *, complete, report_path=None):
        out = _summary(config, folds, plan_json, budgets, records, agents, time.perf_counter() - t_start,
                       complete=complete)
        return WalkForwardResult(workdir, {**out, **(extra or {})}, complete, report_path)

    mine = [f for f in folds if f.index % n_proc == me]
    log.info("walk-forward process %d of %d: folds %s", me, n_proc, ", ".join(str(f.index) for f in mine))
    done_here = []
    for fold in mine:
        if os.path.exists(record_path(fold)):
            continue
        if hooks.should_stop is not None and hooks.should_stop():
            return result(done_here, complete=False)
        record = run_one(fold, [], agents)       # independent folds: no earlier record matters
        if record is None:
            return result(done_here, complete=False)
        _write_json(record_path(fold), record)
        done_here.append(record)
    if me != 0:
        return result(done_here, complete=False)
    while missing := [f.index for f in folds if not os.path.exists(record_path(f))]:
        if hooks.should_stop is not None and hooks.should_stop():
            return result(done_here, complete=False)
        log.debug("waiting for the records of folds %s", missing)
        time.sleep(poll_s)
    records = []
    for fold in folds:
        with open(record_path(fold), encoding="utf-8") as f:
            record = json.load(f)
        if wf.get("registry"):
            record["registered"] = _register_fold(wf, workdir, record, records)
        records.append(record)
    out = result(records, complete=True)
    out.summary["totals"]["wall_seconds"] = sum(r.get("wall_seconds", 0.0) for r in records)
    out.report_path = report(records, out.summary)
    _write_json(json_path, out.summary)
    return out


def choose(composite: dict) -> str:
    """The candidate ("new" or "previous") with the higher validation composite; a tie or two NaNs go
    to the new model, a NaN loses to a number."""
    return max(
        composite,
        key=lambda k: (_finite(composite[k]) if _finite(composite[k]) is not None else -math.inf, k == "new"),
    )


def _agent_for(agents: dict, setup):
    """The agent of the fold's static hyperparameters (one compiled iteration each), its traced
    ones set to the fold's (phase) values. Building an agent compiles nothing, so a fresh one is
    made to read its static key and kept only when no earlier one has that key."""
    fresh = setup.make_agent()
    cfg = setup.agent_config()
    key = (fresh.name, fresh.static_key(cfg))
    agent = agents.setdefault(key, fresh)
    agent.hparams = agent.hparams_from(cfg)
    return agent


def _fold_dir(workdir: str, i: int) -> str:
    return os.path.join(workdir, f"fold_{i:03d}")


def _previous_opt_state(agent, setup, prev_dir: str):
    """The optimizer state at the end of the previous fold's training (its `latest`)."""
    target = agent.init(jax.random.key(0), setup.train_params, setup.devices)
    restored = Checkpoints(prev_dir).restore("latest", agent.to_checkpoint(target))
    if restored is None:
        raise FileNotFoundError(
            f"walk_forward.reset_optimizer=False needs the previous fold's latest checkpoint "
            f"in {prev_dir}/checkpoints/latest"
        )
    state = agent.from_checkpoint(target, loop.to_target(agent.to_checkpoint(target), restored.state))
    return jax.device_get(agent.opt_state(state))


def _run_fold(
    config, md, fold: Fold, folds, budgets, phases, agents, workdir, pad, hooks, verbosity, stalled: int
) -> dict | None:
    """Trains, selects and tests one fold; its walk_forward.json record (None: stopped by request)."""
    wf = config.walk_forward
    i, n = fold.index, len(folds)
    phase = phase_for(i, n, phases)
    t0 = time.perf_counter()
    fold_dir = _fold_dir(workdir, i)
    fold_cfg = _fold_config(config, (fold.train, fold.val, fold.test), 1, phase)
    setup = setup_lib.build(fold_cfg, market=md, train_rows=pad)
    fold_patience = int(wf.get("fold_patience", 0) or 0)
    frozen = fold_patience > 0 and stalled >= fold_patience
    iterations = 0 if frozen else iterations_for(budgets[i], setup.budget.steps_per_iteration)
    fold_cfg.train.iterations = max(iterations, 1)
    setup.budget = dataclasses.replace(setup.budget, iterations=max(iterations, 1))
    agent = _agent_for(agents, setup)
    prev_model = os.path.join(_fold_dir(workdir, i - 1), "model") if i > 0 else None
    warm = bool(wf.warm_start) and prev_model is not None
    init_params = artifact_lib.load_params(prev_model) if (warm or frozen) and prev_model else None
    init_opt = (
        _previous_opt_state(agent, setup, _fold_dir(workdir, i - 1))
        if warm and not bool(wf.reset_optimizer) and not frozen
        else None
    )
    dates = md.dates
    log.info(
        "fold %d/%d: train %s .. %s, val %s .. %s, test %s .. %s; %s; %s",
        i + 1,
        n,
        format_date(dates[fold.train[0]]),
        format_date(dates[fold.train[1]]),
        format_date(dates[fold.val[0]]),
        format_date(dates[fold.val[1]]),
        format_date(dates[fold.test[0]]),
        format_date(dates[fold.test[1]]),
        f"{iterations} iterations ({iterations * setup.budget.steps_per_iteration:,} env steps)"
        if not frozen
        else "no training (fold_patience reached: the carried model is tested)",
        f"phase {phase.name}" if phase else f"config.{agent.name}",
    )
    if hooks.on_fold_start is not None:
        hooks.on_fold_start(fold, init_params)
    evaluator = evaluation.Evaluator(setup, agent, dict(fold_cfg.train.composite))
    result = None
    if not frozen:
        result = loop.run(
            setup,
            agent,
            fold_dir,
            hooks=loop.Hooks(should_stop=hooks.should_stop),
            init_params=init_params,
            init_opt_state=init_opt,
            verbosity=verbosity,
        )
        if result.stopped == "signal":
            return None
    # Selection on this fold's validation window only: the new best model against the carried one.
    candidates = {}
    best_dir = os.path.join(fold_dir, "checkpoints", "best_composite")
    if result is not None and artifact_lib.is_artifact(best_dir):
        candidates["new"] = artifact_lib.load_params(best_dir)
    if init_params is not None:
        candidates["previous"] = init_params
    if not candidates:
        raise RuntimeError(f"fold {i}: no model to choose (no validation ran and nothing was carried)")
    frames = {k: evaluator.frames([p])[0] for k, p in candidates.items()}
    scores = {k: evaluator.metrics(f) for k, f in frames.items()}
    composite = {k: v["composite"] for k, v in scores.items()}
    chosen = choose(composite)
    params = candidates[chosen]
    # The candidates are trials of this fold's choice too: the new model is its run's best checkpoint
    # (already in the fold's ledger), the carried model joins the ledger as a walk-forward candidate.
    ledger = TrialLedger.open(fold_dir, setup.splits.val.periods_per_year)
    trial = {"previous": "previous_fold_model"}
    if "new" in candidates:
        trial["new"] = sources.metric_sources(artifact_lib.load_spec(best_dir).metrics)[0].get("trial")
    if "previous" in candidates:
        ledger.add(trial["previous"], frame_returns(frames["previous"]), kind="walk_forward_candidate",
                   metrics=scores["previous"], dates=frames["previous"].index, fold=i)
    ledger.save(fold_dir)
    spec = loop.model_spec(
        setup,
        agent,
        sources.selection_metrics(loop.json_floats(scores[chosen]), fold=i, chosen=chosen,
                                       selected_by="composite", split="val", trial=trial[chosen]),
    )
    model_dir = os.path.join(fold_dir, "model")
    artifact_lib.save_model(model_dir, params, spec)
    # The chosen model on the fold's test window, with the baselines on the same window.
    row = f"{agent.name}_agent"
    test_results, _, _ = evaluation.split_results(
        agent.policy(params), setup.env_config, setup.splits.test, market=md, name=row
    )
    # The fold's test window is data no choice saw: the model's held-out metrics, what grades it; the
    # trials it was chosen among (this fold's checkpoints and the carried model) say how lucky the choice.
    evaluation.record_held_out(model_dir, test_results[row][0], f"test window of fold {i}")
    trials = summary_of_artifact(ledger, model_dir)
    if trials:
        artifact_lib.add_trials(model_dir, trials)
    test_dir = os.path.join(fold_dir, "test")
    os.makedirs(test_dir, exist_ok=True)
    for name, frames in test_results.items():
        frames[0].to_csv(os.path.join(test_dir, f"{name}.csv"))
    test_stats = {name: _frame_stats(frames[0]) for name, frames in test_results.items()}
    trained_its = 0 if result is None else result.iterations
    spi = setup.budget.steps_per_iteration
    record = {
        **fold.to_json(dates),
        "phase": phase.name if phase else None,
        "agent": agent.name,
        "agent_row": row,
        "hparams": {k: float(v) for k, v in dataclasses.asdict(agent.hparams).items()},
        "update_epochs": agent_registry.section(fold_cfg).get("update_epochs"),
        "trained": not frozen,
        "budget_timesteps": budgets[i],
        "budget_iterations": iterations,
        "iterations": trained_its,
        "timesteps": trained_its * spi,
        "steps_per_iteration": spi,
        "early_stopped": bool(result is not None and result.stopped == "early_stopping"),
        "warm_start": prev_model if init_params is not None else None,
        "reset_optimizer": init_opt is None,
        "val_scores": {k: {m: _finite(x) for m, x in v.items()} for k, v in scores.items()},
        "val_composite": _finite(composite[chosen]),
        "chosen": chosen,
        "model": model_dir,
        "test": test_stats,
        "wall_seconds": time.perf_counter() - t0,
        "overfitting": {k: trials.get(k) for k in ("n_trials", "dsr", "pbo", "psr")},
    }
    log.info(
        "fold %d/%d: chose the %s model (validation composite %s); test Sharpe %.3f; %.1f s",
        i + 1,
        n,
        chosen,
        ", ".join(f"{k} {v:.4f}" for k, v in composite.items()),
        test_stats[row]["sharpe"] or float("nan"),
        record["wall_seconds"],
    )
    return record


def _register_fold(wf, workdir: str, record: dict, records: list[dict]) -> str:
    """Registers fold `record`'s chosen model (once: a resumed run finds it by its tags); its ref."""
    reg = Registry(wf.registry)
    run_tag = "walk_forward:" + hashlib.sha256(os.path.abspath(workdir).encode()).hexdigest()[:12]
    fold_tag = f"fold_{record['index']}"
    for e in reg.list(name=wf.registry_name):
        if run_tag in e.tags and fold_tag in e.tags:
            return e.ref
    parents = ()
    if record.get("warm_start") and records and records[-1].get("registered"):
        parents = (records[-1]["registered"],)
    entry = reg.register(
        wf.registry_name,
        record["model"],
        stage="rl",
        parents=parents,
        # its spec: the candidates' validation scores chose it (selection); its fold's test window,
        # which no choice saw, grades it (held-out)
        # its spec: the trials it was chosen among
        tags=(run_tag, fold_tag),
        description=f"walk-forward {workdir}, fold {record['index']}",
    )
    return entry.ref


def _summary(config, folds, plan_json, budgets, records, agents, wall, *, complete: bool) -> dict:
    wf = config.walk_forward
    t0 = int(wf.timesteps)
    spis = [r["steps_per_iteration"] for r in records]
    full = sum(iterations_for(t0, s) * s for s in spis)
    budgeted = sum(r["budget_iterations"] * r["steps_per_iteration"] for r in records)
    trained = sum(r["timesteps"] for r in records)
    return {
        "format": FORMAT,
        "complete": complete,
        "config": json.loads(config.to_json_best_effort()),
        "plan": plan_json,
        "folds": records,
        "totals": {
            "folds": len(folds),
            "folds_done": len(records),
            "timesteps": trained,
            "timesteps_budgeted": budgeted,
            "timesteps_without_decay": full,
            "timesteps_saved_by_adaptive_budget": full - budgeted,
            "timesteps_saved_by_early_stopping": budgeted - trained,
            "compiles": sum(a.compiles for a in agents.values()) if agents else 0,
            "compiles_by_epochs": {str(getattr(static, "update_epochs", name)): a.compiles
                                   for (name, static), a in agents.items()},
            "wall_seconds": wall,
            "early_stopped_folds": sum(r["early_stopped"] for r in records),
            "chosen_previous": sum(r["chosen"] == "previous" for r in records),
        },
        "budgets": budgets,
    }


# THE OUT-OF-SAMPLE REPORT


def stitch(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """One backtest frame of consecutive test windows: each window's values rescaled to start where
    the previous one ended (its costs and trade PnL likewise), so the curve compounds across folds.
    Each window starts flat, so the bar between two windows earns nothing."""
    out, scale = [], 1.0
    for k, f in enumerate(frames):
        f = f.copy()
        if k:
            scale = out[-1]["value"].iloc[-1] / f["value"].iloc[0]
            for col in ("value", "costs", "trade_pnl"):
                if col in f:
                    f[col] = f[col] * scale
        out.append(f)
    stitched = pd.concat(out)
    stitched.attrs.update(frames[0].attrs)
    return stitched


def _load_test_frames(records) -> dict[str, list[pd.DataFrame]]:
    names = None
    per_name: dict[str, list[pd.DataFrame]] = {}
    for r in records:
        test_dir = os.path.join(os.path.dirname(r["model"]), "test")
        files = sorted(p[:-4] for p in os.listdir(test_dir) if p.endswith(".csv"))
        names = files if names is None else [x for x in names if x in files]
        for name in files:
            f = pd.read_csv(os.path.join(test_dir, f"{name}.csv"), index_col=0, parse_dates=True)
            per_name.setdefault(name, []).append(f)
    return {k: per_name[k] for k in (names or [])}


def _final_report(config, md, folds, records, workdir, summary) -> tuple[dict, str]:
    frames = _load_test_frames(records)
    ppy = float(md.periods_per_year)
    stitched = {}
    for name, fs in frames.items():
        s = stitch(fs)
        s.attrs["periods_per_year"] = ppy
        stitched[name] = [s]
    oos_dir = os.path.join(workdir, "oos")
    first, last = md.dates[folds[0].test[0]], md.dates[folds[-1].test[1]]
    rep = evaluate.report(
        stitched,
        oos_dir,
        title="Walk-forward: the stitched out-of-sample period",
        n_boot=int(config.train.bootstrap_samples),
        seed=int(config.seed),
        notes=f"{len(folds)} folds' test windows, {format_date(first)} .. {format_date(last)}, "
        "each traded by that fold's chosen model; baselines on the same windows (dotted lines: the "
        "fold starts).",
        boundaries=[md.dates[f.test[0]] for f in folds[1:]],
    )
    table = rep.table
    oos = {
        name: {
            k: _finite(table.loc[name, k])
            for k in ("sharpe", "annual_return", "cumulative_return", "max_drawdown", "annual_volatility")
        }
        for name in table.index
    }
    png = _plot_folds(records, os.path.join(workdir, "folds.png"))
    t = summary["totals"]
    lines = [
        "# Walk-forward",
        "",
        f"{len(folds)} folds ({config.walk_forward.mode} training window, "
        f"{folds[0].test[1] - folds[0].test[0] + 1}-row step) on "
        f"{config.data.get('csv_path') or config.data.dataset}; out of sample {format_date(first)} .. "
        f"{format_date(last)}. Each fold chooses between its newly trained model and the carried one on "
        "its own validation window only.",
        "",
        f"Timesteps trained {t['timesteps']:,} (budgeted {t['timesteps_budgeted']:,}; the adaptive budget "
        f"saved {t['timesteps_saved_by_adaptive_budget']:,} and early stopping "
        f"{t['timesteps_saved_by_early_stopping']:,}); {t['compiles']} compile(s) of the training iteration; "
        f"wall time {t['wall_seconds']:.1f} s.",
        "",
        "## Folds",
        "",
        fold_table(records),
        "",
        "## Stitched out-of-sample",
        "",
        evaluate.to_markdown(table),
        "",
        f"![equity](oos/{os.path.basename(rep.png_paths[0])})",
        "",
        f"![folds]({os.path.basename(png)})",
        "",
    ]
    path = _write_markdown(workdir, lines)
    return oos, path


def _write_markdown(workdir: str, lines) -> str:
    """`lines` as the walk-forward's report.md in `workdir` (either mode); its path."""
    path = os.path.join(workdir, "report.md")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))
    return path


def fold_table(records) -> str:
    """A markdown table: one row per fold."""
    head = (
        "| fold | train | val | test | phase | iterations | timesteps | early stop | chosen | val composite "
        "| trials | DSR | PBO | test Sharpe | test return | seconds |"
    )
    rows = [head, "|" + "---|" * 16]
    for r in records:
        t = r["test"][r.get("agent_row", "ppo_agent")]
        o = r.get("overfitting") or {}       # the trials the fold's model was chosen among (selection)
        num = lambda x, f: "n/a" if x is None else format(x, f)
        rows.append(
            f"| {r['index']} | {r['train_dates'][0]} .. {r['train_dates'][1]} | "
            f"{r['val_dates'][0]} .. {r['val_dates'][1]} | "
            f"{r['test_dates'][0]} .. {r['test_dates'][1]} | {r['phase'] or '-'} | "
            f"{r['iterations']} | {r['timesteps']:,} | {'yes' if r['early_stopped'] else 'no'} | "
            f"{r['chosen']} | {num(r['val_composite'], '.4f')} | {num(o.get('n_trials'), 'd')} | "
            f"{num(o.get('dsr'), '.3f')} | {num(o.get('pbo'), '.2f')} | {num(t.get('sharpe'), '.3f')} | "
            f"{num(t.get('cumulative_return'), '.2%')} | {r['wall_seconds']:.1f} |"
        )
    return "\n".join(rows)


def _plot_folds(records, path: str) -> str:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10.0, 7.0), dpi=100)
    ax1, ax2 = fig.subplots(2, 1, sharex=True)
    idx = [r["index"] for r in records]
    nan = lambda x: np.nan if x is None else x
    ax1.plot(idx, [nan(r["val_composite"]) for r in records], "o-", label="validation composite (chosen)")
    ax1.plot(idx, [nan(r["test"][r.get("agent_row", "ppo_agent")].get("sharpe")) for r in records], "s-",
             label="test Sharpe")
    ax1.axhline(0.0, color="grey", lw=0.8)
    ax1.legend(loc="upper left", fontsize=8)
    ax1.grid(alpha=0.3)
    ax1.set_title("Per fold")
    ax2.bar(idx, [r["timesteps"] for r in records], color="tab:blue", label="timesteps trained")
    ax2.plot(idx, [r["budget_timesteps"] for r in records], "k.--", label="budget")
    ax2.set_xlabel("fold")
    ax2.legend(loc="upper right", fontsize=8)
    ax2.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path


# CPCV: COMBINATORIAL PURGED CROSS-VALIDATION (mode "cpcv")


def _run_cpcv(config, md, workdir: str, hooks: WalkForwardHooks, fresh_start: bool,
              verbosity: str, processes: tuple[int, int] = (0, 1)) -> WalkForwardResult:
    """`run` in mode "cpcv" (module docstring, step 8; `jaxtrade.pipeline.cpcv`)."""
    cv = plan_cpcv(config, md)
    folds, budgets = plan(config, md)
    pad = max(f.span[1] - f.span[0] + 1 for f in folds) + cv.history   # one shape: one compile
    log.info(
        "walk-forward CPCV: %d groups of %d rows, %d tested per fold: %d folds, %d backtest paths; each "
        "fold trains from scratch for %s env steps with config.%s (warm starts, budget decay, phases and "
        "fold patience do not apply to folds that are not a sequence)",
        cv.n_groups, cv.groups[0][1] - cv.groups[0][0] + 1, cv.n_test_groups, len(folds), cv.n_paths,
        f"{budgets[0]:,}", agent_registry.agent_name(config),
    )
    log.info("CPCV rule: %s", cv.rule())

    def run_one(fold, records, agents):
        return _run_cpcv_fold(config, md, fold, cv, budgets[fold.index], agents, workdir, pad, hooks,
                              verbosity)

    def report(records, summary):
        summary["paths"], path = _cpcv_report(config, md, cv, records, workdir, summary)
        return path

    return _drive(config, md, workdir, folds, budgets, run_one, report, hooks=hooks, fresh_start=fresh_start,
                  extra={"cpcv": cv.to_json(md.dates)}, processes=processes)


def _blocks_env(setup, md, fold: cpcv.PurgedFold, cv: cpcv.CPCVPlan, pad: int):
    """(env, params) of a CPCV fold's training: the rows from H history rows before its first training
    block to the end of its last, cut and normalized by the fold's Preprocessor, padded to `pad` rows,
    with episodes starting only where window and episode lie inside one training block."""
    split = setup.preprocessor.transform(md, fold.span, name="train")
    if split.start != cv.history:
        raise AssertionError(f"the training split carries {split.start} history rows, the plan {cv.history}")
    count = cpcv.start_count(fold, fold.span[0] - split.start, split.n_rows, history=cv.history,
                             episode_length=cv.episode_length)
    data = pad_rows(split.to_device().replace(start_count=jax.numpy.asarray(count)), pad)
    return envs.make(setup.env_config["name"], data, setup.env_config)


def _run_cpcv_fold(config, md, fold: cpcv.PurgedFold, cv: cpcv.CPCVPlan, budget: int, agents, workdir: str,
                   pad: int, hooks: WalkForwardHooks, verbosity: str) -> dict | None:
    """Trains one CPCV fold from scratch, chooses its best checkpoint on the validation window and tests
    it on each of its test groups; its walk_forward.json record (None: stopped by request)."""
    i, n = fold.index, len(cv.folds)
    t0 = time.perf_counter()
    fold_dir = _fold_dir(workdir, i)
    fold_cfg = _fold_config(config, (fold.fit, fold.val, None), 1, None)
    setup = setup_lib.build(fold_cfg, market=md)
    setup.env, setup.train_params = _blocks_env(setup, md, fold, cv, pad)
    iterations = iterations_for(budget, setup.budget.steps_per_iteration)
    fold_cfg.train.iterations = iterations
    setup.budget = dataclasses.replace(setup.budget, iterations=iterations)
    agent = _agent_for(agents, setup)
    n_starts = int(setup.train_params.data.start_count[-1])
    dates = md.dates
    log.info(
        "CPCV fold %d/%d: tests groups %s; trains on %s (%d episode start rows), validates on %s .. %s; %d "
        "iterations (%s env steps)",
        i + 1, n, list(fold.test_groups),
        ", ".join(f"{format_date(dates[a])} .. {format_date(dates[b])}" for a, b in fold.train), n_starts,
        format_date(dates[fold.val[0]]), format_date(dates[fold.val[1]]), iterations,
        f"{iterations * setup.budget.steps_per_iteration:,}",
    )
    if hooks.on_fold_start is not None:
        hooks.on_fold_start(fold, None)
    result = loop.run(setup, agent, fold_dir, hooks=loop.Hooks(should_stop=hooks.should_stop),
                      verbosity=verbosity)
    if result.stopped == "signal":
        return None
    best_dir = os.path.join(fold_dir, "checkpoints", "best_composite")
    if not artifact_lib.is_artifact(best_dir):
        raise RuntimeError(f"CPCV fold {i}: no model to choose (no validation ran in {fold_dir})")
    params = artifact_lib.load_params(best_dir)
    evaluator = evaluation.Evaluator(setup, agent, dict(fold_cfg.train.composite))
    scores = evaluator.metrics(evaluator.frames([params])[0])
    trial = sources.metric_sources(artifact_lib.load_spec(best_dir).metrics)[0].get("trial")
    spec = loop.model_spec(
        setup, agent,
        sources.selection_metrics(loop.json_floats(scores), fold=i, chosen="new",
                                       selected_by="composite", split="val", trial=trial),
    )
    model_dir = os.path.join(fold_dir, "model")
    artifact_lib.save_model(model_dir, params, spec)
    # The chosen model on each of the fold's test groups (a window each, starting flat), with the
    # baselines on the same windows; the paths are assembled from these windows at the end.
    row = f"{agent.name}_agent"
    policy = agent.policy(params)
    test_stats, tested = {}, []
    for g, rows in zip(fold.test_groups, fold.test, strict=True):
        split = setup.preprocessor.transform(md, rows, name="test")
        results, _, _ = evaluation.split_results(policy, setup.env_config, split, market=md, name=row)
        group_dir = os.path.join(fold_dir, "test", f"group_{g}")
        os.makedirs(group_dir, exist_ok=True)
        for name, frames in results.items():
            frames[0].to_csv(os.path.join(group_dir, f"{name}.csv"))
        test_stats[str(g)] = {name: _frame_stats(frames[0]) for name, frames in results.items()}
        tested.append(results[row][0])
    # The test groups are data no choice saw: the model's held-out metrics (the groups end to end).
    evaluation.record_held_out(model_dir, stitch(tested),
                               f"test groups {list(fold.test_groups)} of CPCV fold {i}")
    trials = summary_of_artifact(fold_dir, model_dir)     # the fold run's checkpoints it was chosen among
    if trials:
        artifact_lib.add_trials(model_dir, trials)
    trained_its = result.iterations
    spi = setup.budget.steps_per_iteration
    record = {
        **fold.to_json(dates),
        "agent": agent.name,
        "agent_row": row,
        "hparams": {k: float(v) for k, v in dataclasses.asdict(agent.hparams).items()},
        "update_epochs": agent_registry.section(fold_cfg).get("update_epochs"),
        "trained": True,
        "train_rows": sum(b - a + 1 for a, b in fold.train),
        "episode_start_rows": n_starts,
        "budget_timesteps": budget,
        "budget_iterations": iterations,
        "iterations": trained_its,
        "timesteps": trained_its * spi,
        "steps_per_iteration": spi,
        "early_stopped": result.stopped == "early_stopping",
        "warm_start": None,
        "reset_optimizer": True,
        "val_scores": {"new": {m: _finite(x) for m, x in scores.items()}},
        "val_composite": _finite(scores["composite"]),
        "chosen": "new",
        "model": model_dir,
        "test": test_stats,
        "wall_seconds": time.perf_counter() - t0,
        "overfitting": {k: trials.get(k) for k in ("n_trials", "dsr", "pbo", "psr")},
    }
    sharpes = [_num(test_stats[str(g)][row].get("sharpe"), ".3f") for g in fold.test_groups]
    log.info("CPCV fold %d/%d: validation composite %.4f; test Sharpe %s; %.1f s", i + 1, n,
             scores["composite"], ", ".join(f"group {g} {x}" for g, x in zip(fold.test_groups, sharpes,
                                                                            strict=True)),
             record["wall_seconds"])
    return record


def _num(x, spec: str) -> str:
    return "n/a" if x is None else format(x, spec)


def _group_frames(records) -> dict:
    """{(fold, group): {row name: test frame}} from the folds' test/group_<g>/ directories."""
    out = {}
    for r in records:
        for g in r["test_groups"]:
            d = os.path.join(os.path.dirname(r["model"]), "test", f"group_{g}")
            out[(r["index"], g)] = {
                p[:-4]: pd.read_csv(os.path.join(d, p), index_col=0, parse_dates=True)
                for p in sorted(os.listdir(d)) if p.endswith(".csv")
            }
    return out


def cpcv_paths(cv: cpcv.CPCVPlan, frames: dict, periods_per_year: float) -> tuple[list[dict], dict]:
    """(per path {path, folds, stats: {row: {sharpe, cumulative_return, max_drawdown}}}, the stitched
    frames {row: [one per path]}): path p is groups 0 .. N-1 end to end, group g as tested by fold
    paths[p][g] (`stitch`: each group's window starts flat)."""
    names = sorted(set.intersection(*(set(v) for v in frames.values())))
    per_path, stitched = [], {name: [] for name in names}
    for p, fold_of in enumerate(cv.paths):
        stats = {}
        for name in names:
            s = stitch([frames[(fold_of[g], g)][name] for g in range(cv.n_groups)])
            s.attrs["periods_per_year"] = float(periods_per_year)
            st = evaluate.stats(s)
            stats[name] = {k: _finite(st[k]) for k in ("sharpe", "cumulative_return", "max_drawdown")}
            stitched[name].append(s)
        per_path.append({"path": p, "folds": list(fold_of), "stats": stats})
    return per_path, stitched


def _cpcv_report(config, md, cv: cpcv.CPCVPlan, records, workdir: str, summary: dict) -> tuple[dict, str]:
    """The paths' statistics ({agent_row, per_path, sharpe: {row: distribution}}) and report.md."""
    row = records[0]["agent_row"]
    per_path, stitched = cpcv_paths(cv, _group_frames(records), md.periods_per_year)
    dist = {name: cpcv.distribution([q["stats"][name]["sharpe"] for q in per_path]) for name in stitched}
    paths_dir = os.path.join(workdir, "paths")
    os.makedirs(paths_dir, exist_ok=True)
    for p, s in enumerate(stitched[row]):
        s.to_csv(os.path.join(paths_dir, f"path_{p}_{row}.csv"))
    png = _plot_paths(stitched[row], row, os.path.join(workdir, "paths.png"))
    out = {"agent_row": row, "per_path": per_path, "sharpe": dist}
    first, last = cv.groups[0][0], cv.groups[-1][1]
    t = summary["totals"]
    order = [row] + [k for k in stitched if k != row]
    lines = [
        "# Walk-forward: combinatorial purged cross-validation",
        "",
        f"{len(cv.folds)} folds: every {cv.n_test_groups} of {cv.n_groups} groups "
        f"({cv.groups[0][1] - cv.groups[0][0] + 1} rows each) of {format_date(md.dates[first])} .. "
        f"{format_date(md.dates[last])} on {config.data.get('csv_path') or config.data.dataset}; "
        f"{cv.n_paths} backtest paths, each covering every group once. Each fold trains from scratch "
        f"({t['timesteps']:,} env steps in all, {t['wall_seconds']:.1f} s) on its training blocks, chooses "
        f"its best checkpoint on its validation window (the last {cv.val_size} rows of its last training "
        "block) and is tested on its test groups, each a window starting flat; baselines on the same "
        "windows.",
        "",
        f"Rule: {cv.rule()}. The Preprocessor is fitted on each fold's longest training block.",
        "",
        f"## Sharpe across the {cv.n_paths} paths (annualized, held-out)",
        "",
        "| policy | paths | mean | std | min | max |",
        "|---|---|---|---|---|---|",
        *(f"| {k} | {dist[k]['n']} | {_num(dist[k]['mean'], '.3f')} | {_num(dist[k]['std'], '.3f')} | "
          f"{_num(dist[k]['min'], '.3f')} | {_num(dist[k]['max'], '.3f')} |" for k in order),
        "",
        "## Paths",
        "",
        "| path | fold testing each group | " + " | ".join(f"{k} Sharpe" for k in order)
        + f" | {row} return |",
        "|" + "---|" * (len(order) + 3),
        *(f"| {q['path']} | {', '.join(map(str, q['folds']))} | "
          + " | ".join(_num(q["stats"][k]["sharpe"], ".3f") for k in order)
          + f" | {_num(q['stats'][row]['cumulative_return'], '.2%')} |" for q in per_path),
        "",
        "## Folds",
        "",
        "| fold | test groups | training blocks | val | iterations | val composite | test Sharpe by group "
        "| seconds |",
        "|---|---|---|---|---|---|---|---|",
        *(f"| {r['index']} | {', '.join(map(str, r['test_groups']))} | "
          f"{'; '.join(f'{a} .. {b}' for a, b in r['train_dates'])} | "
          f"{r['val_dates'][0]} .. {r['val_dates'][1]} | "
          f"{r['iterations']} | {_num(r['val_composite'], '.4f')} | "
          + ", ".join(_num(r["test"][str(g)][row].get("sharpe"), ".3f") for g in r["test_groups"])
          + f" | {r['wall_seconds']:.1f} |" for r in records),
        "",
        f"![paths]({os.path.basename(png)})",
        "",
    ]
    path = _write_markdown(workdir, lines)
    return out, path


def _plot_paths(frames: list[pd.DataFrame], row: str, path: str) -> str:
    from matplotlib.figure import Figure

    fig = Figure(figsize=(10.0, 4.5), dpi=100)
    ax = fig.subplots()
    for p, f in enumerate(frames):
        ax.plot(f.index, f["value"] / f["value"].iloc[0], lw=1.0, label=f"path {p}")
    ax.axhline(1.0, color="grey", lw=0.8)
    ax.set_title(f"CPCV backtest paths: {row}, growth of 1")
    ax.legend(loc="upper left", fontsize=8, ncol=2)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=100)
    return path


def default_config(**changes) -> ml_collections.ConfigDict:
    """The `walk_forward` config section with its defaults (every key overridable from the command
    line, e.g. --config.walk_forward.decay=0.9), updated with `changes`.

    initial_window / step / val_size / test_size (None = step) / mode / start / first_test /
    max_folds: the `FoldSpec`. timesteps, decay, min_timesteps: the budget. warm_start,
    reset_optimizer. fold_patience: early stopping across folds (0 = off). use_phases, phases: the
    phase presets (name -> until, lr, update_epochs, ent_coef, clip_eps).

    mode="cpcv" (`jaxtrade.pipeline.cpcv`) reads start, val_size, timesteps, registry and its own keys:
    n_groups (N, default 6) and n_test_groups (k, default 2): C(N, k) folds, C(N-1, k-1) paths;
    purge / embargo (None = the rule's minimum: history rows + env.episode_length, history rows)."""
    cfg = ml_collections.ConfigDict(
        dict(
            initial_window=0,
            step=0,
            val_size=0,
            test_size=None,
            mode="sliding",
            start=None,
            first_test=None,
            max_folds=0,
            timesteps=50_000,
            decay=0.95,
            min_timesteps=15_000,
            warm_start=True,
            reset_optimizer=True,
            fold_patience=0,
            use_phases=True,
            phases={k: dict(v) for k, v in PRESET_PHASES.items()},
            registry=config_dict.placeholder(str),  # a registry root: every fold's model is registered
            registry_name="walk_forward",
            n_groups=6,
            n_test_groups=2,
            purge=config_dict.placeholder(int),
            embargo=config_dict.placeholder(int),
        )
    )
    for k, v in check_keys(changes, cfg, name="walk_forward").items():
        cfg[k] = v
    return cfg

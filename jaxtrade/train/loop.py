"""`train(config, workdir)`: the one host loop.

Build data and environments, initialize or restore, then per call of the pmap'd iteration: pull
metrics to the host, keep the history, evaluate the deterministic policy on the validation split
every `eval_every` iterations, save `latest` and the best-by-metric checkpoints, log, and decide
whether to stop (budget, early stopping, signal, non-finite numbers). At the end the best-composite
model is backtested on the test split against the baselines and `report.md` is written.
"""

from __future__ import annotations

import dataclasses
import json
import logging
import math
import os
import shutil
import time
from collections.abc import Callable
from typing import Any

import jax
import ml_collections
import numpy as np

from jaxtrade import envs
from jaxtrade.agents import ppo
from jaxtrade.data import load_csv, load_dataset, split
from jaxtrade.train import budget as budget_lib
from jaxtrade.train import evaluation
from jaxtrade.train.checkpoints import BEST_METRICS, Checkpoints
from jaxtrade.train.metrics import TIMING_KEYS, EarlyStopping, iteration_row
from jaxtrade.train.reporting import Reporter, setup_logging
from jaxtrade.train.signals import StopRequest

log = logging.getLogger("jaxtrade")


class TrainingDiverged(RuntimeError):
    """A loss, gradient or parameter became NaN or infinite."""


@dataclasses.dataclass
class TrainResult:
    workdir: str
    iterations: int
    stopped: str                      # budget | early_stopping | signal
    report_path: str | None
    best: dict[str, float]            # best validation value per metric
    history: list[dict]


@dataclasses.dataclass
class Setup:
    """Everything built from the config before the first iteration."""

    config: ml_collections.ConfigDict
    market: Any                       # the host-side MarketData
    splits: Any
    env: Any
    env_params: Any
    eval_env: Any
    val_params: Any
    test_params: Any
    n_devices: int
    budget: budget_lib.Budget


def load_market_data(data_cfg):
    """The config's data source: a bundled dataset name or a user CSV (`data.csv_path`)."""
    if data_cfg.get("csv_path"):
        return load_csv(data_cfg.csv_path, **dict(data_cfg.get("csv_options") or {}))
    return load_dataset(data_cfg.dataset)


def env_overrides(env_cfg) -> dict:
    """The nested env config as a plain dict for `envs.make` (costs and reward stay sub-dicts)."""
    return {k: v for k, v in envs.registry.plain(env_cfg).items() if k != "name"}


def build(config, *, env_transform: Callable | None = None) -> Setup:
    """Data, splits, training and evaluation environments and the budget of one run."""
    md = load_market_data(config.data)
    d = config.data
    # Each split carries exactly env.window history rows, so a whole-split episode (which starts at
    # row `window`) trades from the split's first date: never on the rows of the split before it.
    splits = split(md, train=tuple(d.train), val=tuple(d.val) if d.get("val") else None,
                   test=tuple(d.test) if d.get("test") else None, lookback=config.env.window,
                   turbulence_quantile=d.turbulence_quantile)
    overrides = env_overrides(config.env)
    env, env_params = envs.make(config.env.name, splits.train.to_device(), overrides)
    if env_transform is not None:
        env = env_transform(env)
    eval_overrides = dict(overrides, random_start=False)
    eval_env, val_params = (envs.make(config.env.name, splits.val.to_device(), eval_overrides)
                            if splits.val is not None else (None, None))
    test_params = None
    if splits.test is not None:
        eval_env, test_params = envs.make(config.env.name, splits.test.to_device(), eval_overrides)
    n_devices = config.train.get("n_devices") or jax.local_device_count()
    if config.train.get("max_device_memory_gb"):
        fixed, per_env = measure_footprint(config, env, env_params, n_devices)
        config.ppo.n_envs = budget_lib.cap_n_envs(
            config.ppo.n_envs, max_gb=config.train.max_device_memory_gb, fixed_bytes=fixed,
            bytes_per_env=per_env, multiple_of=config.ppo.n_minibatches)
    b = budget_lib.resolve_budget(
        total_timesteps=config.train.total_timesteps, episodes=config.train.episodes,
        iterations=config.train.iterations, n_envs=config.ppo.n_envs, n_steps=config.ppo.n_steps,
        n_devices=n_devices, episode_length=config.env.episode_length)
    return Setup(config, md, splits, env, env_params, eval_env, val_params, test_params, n_devices, b)


def measure_footprint(config, env, env_params, n_devices: int) -> tuple[float, float]:
    """(fixed bytes, bytes per environment) of one device's training iteration, fitted from the
    compiled memory analysis (arguments + outputs + temporaries - donated aliases) at two sizes.

    The two sizes are n_envs/8 and n_envs/4 (rounded to multiples of n_minibatches), close enough to
    the configured size for a linear fit and cheap to compile.
    """
    m = config.ppo.n_minibatches
    small = max(m, (config.ppo.n_envs // 8) // m * m)
    sizes, totals = (small, 2 * small), []
    for n in sizes:
        cfg = ml_collections.ConfigDict(config.to_dict())
        cfg.ppo.n_envs = n
        carry = ppo.init_carry(cfg, env, env_params, jax.random.key(0), n_devices=n_devices)
        stats = ppo.make_train_iteration(cfg, env).lower(carry, env_params).compile().memory_analysis()
        totals.append(stats.argument_size_in_bytes + stats.output_size_in_bytes
                      + stats.temp_size_in_bytes - stats.alias_size_in_bytes)
    per_env = max((totals[1] - totals[0]) / (sizes[1] - sizes[0]), 1.0)
    fixed = max(totals[0] - per_env * sizes[0], 0.0)
    log.info("measured footprint per device: %.2f MiB fixed + %.3f MiB per environment",
             fixed / 2**20, per_env / 2**20)
    return fixed, per_env


def device_memory_gib() -> float | None:
    """GiB in use on device 0 where the backend reports it (GPUs), else None."""
    stats = getattr(jax.devices()[0], "memory_stats", lambda: None)()
    if not stats or "bytes_in_use" not in stats:
        return None
    return stats["bytes_in_use"] / 2**30


def _archive_previous(workdir: str) -> None:
    """--fresh_start: move earlier checkpoints and metrics aside (nothing is deleted)."""
    old = [p for p in ("checkpoints", "metrics.jsonl", "tensorboard", "report.md")
           if os.path.exists(os.path.join(workdir, p))]
    if not old:
        return
    dest = os.path.join(workdir, f"previous-{time.strftime('%Y%m%d-%H%M%S')}")
    os.makedirs(dest)
    for p in old:
        shutil.move(os.path.join(workdir, p), os.path.join(dest, p))
    log.info("fresh start: moved the earlier run's %s into %s", ", ".join(old), dest)


def _config_json(config) -> dict:
    return json.loads(config.to_json_best_effort())


def _nonfinite(raw: dict) -> str | None:
    """The name of the first non-finite loss/metric of an iteration, or None."""
    if bool(np.any(np.asarray(raw.get("any_nonfinite", False)))):
        for k, v in raw.items():
            if k != "any_nonfinite" and np.issubdtype(np.asarray(v).dtype, np.floating) \
                    and not np.all(np.isfinite(v)):
                return k
        return "parameters or gradients"
    for k in ("policy_loss", "value_loss", "entropy", "approx_kl", "grad_norm", "reward_sum"):
        if k in raw and not np.all(np.isfinite(np.asarray(raw[k]))):
            return k
    return None


def train(config: ml_collections.ConfigDict, workdir: str, *, resume_from: str | None = None,
          fresh_start: bool = False, verbosity: str = "normal",
          env_transform: Callable | None = None) -> TrainResult:
    """Trains, checkpoints and reports one experiment into `workdir`.

    resume_from: None resumes `latest` if the workdir has one; "latest", a best metric name
    ("composite", "win_rate", "profit_rate", "sharpe") or a checkpoint path resume from there.
    fresh_start: ignore (and move aside) what the workdir holds. env_transform: wraps the training
    environment (tests use it to inject faults).
    """
    os.makedirs(workdir, exist_ok=True)
    setup_logging(workdir, verbosity)
    if fresh_start:
        _archive_previous(workdir)
    config = ml_collections.ConfigDict(config.to_dict())  # unlocked private copy
    s = build(config, env_transform=env_transform)
    with open(os.path.join(workdir, "config.json"), "w", encoding="utf-8") as f:
        json.dump(_config_json(config), f, indent=2, sort_keys=True)
    log.info("jaxtrade: %s on %s, %d device(s) (%s), %d envs per device",
             config.env.name, config.data.get("csv_path") or config.data.dataset, s.n_devices,
             jax.devices()[0].platform, config.ppo.n_envs)
    log.info("budget: %s", s.budget.describe())

    key = jax.random.key(config.seed)
    carry = ppo.init_carry(config, s.env, s.env_params, key, n_devices=s.n_devices)
    train_iteration = ppo.make_train_iteration(config, s.env)
    ckpts = Checkpoints(workdir)
    run = RunState.fresh(config)
    if not fresh_start:
        name = resume_from or ("latest" if ckpts.steps("latest") else None)
        if name is not None:
            restored = ckpts.restore(name, carry)
            if restored is None:
                if resume_from is not None:
                    raise FileNotFoundError(f"--resume_from={resume_from}: no readable checkpoint "
                                            f"under {ckpts.root}")
            else:
                carry = jax.tree.map(lambda t, r: jax.numpy.asarray(r, dtype=t.dtype)
                                     if not jax.dtypes.issubdtype(t.dtype, jax.dtypes.prng_key)
                                     else jax.random.wrap_key_data(r), carry, restored.state)
                run = RunState.from_meta(restored.meta, config) if name == "latest" or \
                    restored.meta.get("kind") == "latest" else run
                log.info("resumed from %s (iteration %d)", restored.path, restored.meta["iteration"])

    config_meta = _config_json(config)
    reporter = Reporter(workdir, total=s.budget.iterations, initial=run.iteration, verbosity=verbosity,
                        log_every=config.train.log_every, tensorboard=config.train.tensorboard)
    evaluator = evaluation.Evaluator(config, s) if s.val_params is not None else None
    stopped = "budget"
    try:
        with StopRequest() as stop:
            while run.iteration < s.budget.iterations:
                t0 = time.perf_counter()
                carry, metrics = train_iteration(carry, s.env_params)
                raw = {k: np.asarray(v)[0] for k, v in jax.device_get(metrics).items()}  # same on all devices
                k_inner = 1 if all(np.ndim(v) == 0 for v in raw.values()) else len(next(iter(raw.values())))
                seconds = (time.perf_counter() - t0) / k_inner
                before = run.iteration
                for j in range(k_inner):  # ppo.iterations_per_call = k iterations ran in this one call
                    raw_j = raw if k_inner == 1 else {k: v[j] for k, v in raw.items()}
                    run.iteration += 1
                    bad = _nonfinite(raw_j)
                    if bad is not None:
                        raise TrainingDiverged(
                            f"iteration {run.iteration}: metric '{bad}' is not finite; training stopped. "
                            f"The last good state is in {ckpts.directory('latest')} "
                            f"(iteration {run.last_saved}).")
                    row = iteration_row(raw_j, iteration=run.iteration,
                                        periods_per_year=s.splits.train.periods_per_year)
                    run.total_env_steps += int(row.get("env_steps", 0))
                    row["total_env_steps"] = run.total_env_steps
                    row["iteration_seconds"] = seconds
                    row["steps_per_second"] = row.get("env_steps", 0) / seconds if seconds > 0 else math.nan
                    if (mem := device_memory_gib()) is not None:
                        row["device_memory_gib"] = mem
                    run.history.append({k: v for k, v in row.items() if k not in TIMING_KEYS})
                    reporter.iteration(row)

                def crossed(every, before=before):
                    return run.iteration // every > before // every

                last = run.iteration >= s.budget.iterations
                if evaluator is not None and (crossed(config.train.eval_every) or last):
                    val = evaluator.validate(carry, row)
                    run.val_history.append(dict(val, iteration=run.iteration))
                    reporter.evaluation(run.iteration, val)
                    for metric in BEST_METRICS:
                        value = val.get(metric, math.nan)
                        if math.isfinite(value) and value > run.best.get(metric, -math.inf):
                            run.best[metric] = value
                            ckpts.save(metric, run.iteration, carry,
                                       dict(kind="best", metric=metric, value=value,
                                            iteration=run.iteration, metrics=_finite(val),
                                            config=config_meta))
                    if run.early.update(val.get("composite", math.nan)):
                        stopped = "early_stopping"
                        reporter.info(f"early stopping at iteration {run.iteration}: no validation "
                                      f"composite gain > {run.early.min_delta} for "
                                      f"{run.early.patience} evaluations")
                if stop.requested and stopped == "budget":
                    stopped = "signal"
                if crossed(config.train.checkpoint_every) or last or stopped != "budget":
                    ckpts.save("latest", run.iteration, carry, run.to_meta(config_meta))
                    run.last_saved = run.iteration
                if stopped != "budget":
                    break
    finally:
        reporter.close()
    if stopped == "signal":
        log.warning("stopped by signal after iteration %d; `latest` saved in %s", run.iteration,
                    ckpts.directory("latest"))
        return TrainResult(workdir, run.iteration, stopped, None, dict(run.best), run.history)
    report_path = None
    if s.test_params is not None and config.train.final_report:
        report_path = evaluation.final_report(config, s, carry, ckpts, workdir)
    return TrainResult(workdir, run.iteration, stopped, report_path, dict(run.best), run.history)


def _finite(d: dict) -> dict:
    return {k: (float(v) if isinstance(v, (int, float)) and math.isfinite(v) else None)
            for k, v in d.items() if isinstance(v, (int, float))}


@dataclasses.dataclass
class RunState:
    """Host-side counters and histories; all of it goes into `latest`'s metadata."""

    iteration: int
    total_env_steps: int
    history: list
    val_history: list
    best: dict
    early: EarlyStopping
    last_saved: int = 0

    @classmethod
    def fresh(cls, config) -> RunState:
        return cls(0, 0, [], [], {}, EarlyStopping(config.train.patience, config.train.min_delta))

    def to_meta(self, config_meta: dict) -> dict:
        return dict(kind="latest", iteration=self.iteration, total_env_steps=self.total_env_steps,
                    history=[_finite(r) for r in self.history],
                    val_history=[_finite(r) for r in self.val_history],
                    best=self.best, early_stopping=self.early.to_json(), config=config_meta)

    @classmethod
    def from_meta(cls, meta: dict, config) -> RunState:
        nan = float("nan")
        hist = [{k: (nan if v is None else v) for k, v in r.items()} for r in meta["history"]]
        val = [{k: (nan if v is None else v) for k, v in r.items()} for r in meta["val_history"]]
        return cls(int(meta["iteration"]), int(meta["total_env_steps"]), hist, val,
                   dict(meta["best"]), EarlyStopping.from_json(meta["early_stopping"]),
                   int(meta["iteration"]))

"""`run(setup, agent, workdir)`: the one host loop; `train(config, workdir)`, the thin wrapper mains call.

One run, in this order:

1. Initialize the agent's state from the config's seed, or restore it (`latest`: the full training
   state, resumed bit for bit; a best model or any artifact: its params in a fresh state). A
   checkpoint that is there but does not restore stops the run with the reason (`CheckpointError`),
   never a silent fresh start without the warm start or pretrained encoder.
2. Per call of the agent's compiled iteration: pull metrics to the host, keep the history, stop on a
   non-finite number (naming the iteration, the metric and the last good checkpoint).
3. Every `train.eval_every` iterations: backtest the deterministic policy on the validation split;
   a new best validation metric saves that model as an artifact in `checkpoints/best_<metric>`;
   early stopping on the validation composite.
4. Every `train.checkpoint_every` iterations (and at the end): save `latest`.
5. At the end (budget or early stopping, not a stop request): the best-composite artifact is
   backtested on the test split against the baselines (`report.md`), through the same path a fresh
   process given only that artifact takes (`evaluation.evaluate_artifact`).

Many seeds (`train.seeds = K > 1`): seeds `seed .. seed + K - 1` train as one population
(`agent.init_seeds`, one compile; the budget is per seed). Each validation backtests every member;
the logged and early-stopping metrics are their means; every member keeps its own best artifacts in
`checkpoints/seed_<s>/best_<metric>`; the report's agent row is the mean, std and bootstrap interval
over the members' best-composite models. Resuming restores `latest` (the whole population).
A `Population` generalizes this: K members with their own seeds, traced hyperparameters and labels
(hyperparameter search trains a batch of trials so, `checkpoints/<label>/best_<metric>`).

Multi-process runs (`jax.distributed`, `jaxtrade.agents.devices`): every process runs this loop over
its own devices, with the same decisions at the same iteration (metrics, validation backtests and
early stopping are identical on every process; a stop request on any process stops all of them at
the same iteration, `devices.any_process`); every process saves and restores `latest` (its own
shards, one Orbax commit; the workdir on a shared filesystem) and a `latest` saved on another layout
is refused by name; process 0 alone writes config.json, resolved.json, train.log, metrics.jsonl,
TensorBoard, MLflow, the trial ledger, the best-model artifacts (plain single-host artifacts: the
params are the same on every device) and the final report. Other processes return report_path None.

`run` is re-entrant: walk-forward and search call it many times in one process with one agent, and
the agent's compiled iteration is reused while shapes stay the same. It configures no logging
(beyond the run's own `train.log` file in the workdir) and installs no signal handler: mains do
that and pass `hooks.should_stop`.
"""

from __future__ import annotations

import contextlib
import dataclasses
import json
import logging
import math
import os
import time
from collections.abc import Callable

import jax
import ml_collections
import numpy as np

from jaxtrade.agents import devices as devices_lib
from jaxtrade.agents import registry as agent_registry
from jaxtrade.data import fingerprint
from jaxtrade.train import artifact as artifact_lib
from jaxtrade.train import config as config_lib
from jaxtrade.train import evaluation, sources
from jaxtrade.train import setup as setup_lib
from jaxtrade.train.checkpoints import BEST_METRICS, CheckpointError, Checkpoints
from jaxtrade.train.metrics import TIMING_KEYS, EarlyStopping, iteration_row
from jaxtrade.train.reporting import MlflowSink, Reporter, run_log_file, trended_of
from jaxtrade.train.trials import TrialLedger, frame_returns, trial_name
from jaxtrade.train.workdir import archive_previous, check_resume

log = logging.getLogger("jaxtrade")


class TrainingDiverged(RuntimeError):
    """A loss, gradient or parameter became NaN or infinite."""


@dataclasses.dataclass
class TrainResult:
    workdir: str
    iterations: int
    stopped: str                      # budget | early_stopping | signal | already_finished (nothing ran)
    report_path: str | None
    best: dict[str, float]            # best validation value per metric
    history: list[dict]
    val_history: list[dict] = dataclasses.field(default_factory=list)
    compiles: int | None = None       # compiles of the agent's iteration so far (this process)


@dataclasses.dataclass
class Hooks:
    """Callbacks of one run (all optional).

    on_iteration(row): after each training iteration's history row.
    on_validation(iteration, metrics): after each validation.
    should_stop(): polled after each call of the iteration; True finishes the iteration, saves
        `latest` and returns with stopped="signal" (mains wire SIGINT/SIGTERM to it).
    """

    on_iteration: Callable[[dict], None] | None = None
    on_validation: Callable[[int, dict], None] | None = None
    should_stop: Callable[[], bool] | None = None
    on_member_validation: Callable[[int, list[dict]], None] | None = None   # per-member metrics


@dataclasses.dataclass(frozen=True)
class Population:
    """K members trained side by side in one compile: member k starts from `jax.random.key(seeds[k])`
    with traced hyperparameters `hparams[k]` (the agent's `hparams` type; None: the config's) and
    keeps its best artifacts in `checkpoints/<labels[k]>/best_<metric>` (one member:
    `checkpoints/best_<metric>`)."""

    labels: tuple[str, ...]
    seeds: tuple[int, ...]
    hparams: tuple | None = None

    def __post_init__(self):
        if len(self.labels) != len(self.seeds) or len(set(self.labels)) != len(self.labels) \
                or (self.hparams is not None and len(self.hparams) != len(self.seeds)):
            raise ValueError(f"a Population needs one unique label, one seed (and one hparams) per "
                             f"member; got labels {self.labels}, seeds {self.seeds}")

    def __len__(self) -> int:
        return len(self.seeds)


def device_memory_gib() -> float | None:
    """GiB in use on device 0 where the backend reports it (GPUs), else None."""
    stats = getattr(jax.local_devices()[0], "memory_stats", lambda: None)()
    if not stats or "bytes_in_use" not in stats:
        return None
    return stats["bytes_in_use"] / 2**30


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


def model_spec(setup, agent, metrics: dict | None = None, *, code_version: str | None = None,
               seed: int | None = None) -> artifact_lib.ModelSpec:
    """The `ModelSpec` of `agent`'s model trained in `setup` (metrics: what to record with it)."""
    c = setup.config
    return artifact_lib.ModelSpec(
        agent=agent.name, model=artifact_lib.as_plain(agent.model_config), action_spec=agent.action_spec,
        obs_spec=agent.obs_spec, env=artifact_lib.as_plain(setup.env_config),
        data=artifact_lib.as_plain(c.data), preprocessor=setup.preprocessor,
        data_fingerprint=fingerprint(setup.market),
        code_version=artifact_lib.code_version() if code_version is None else code_version,
        versions=artifact_lib.library_versions(), machine=artifact_lib.machine_info(),
        metrics=dict(metrics or {}), seed=int(c.seed if seed is None else seed))


def seeds_of(config) -> list[int]:
    """The seeds one run trains: [seed] or, with train.seeds = K > 1, seed .. seed + K - 1."""
    k = int(config.train.get("seeds", 1) or 1)
    if k < 1:
        raise ValueError(f"train.seeds must be >= 1, got {k}")
    return [int(config.seed) + i for i in range(k)]


def population_of(config) -> Population:
    """The population of `train.seeds`: seeds `seeds_of(config)` labelled seed_<s>, the config's hparams."""
    seeds = seeds_of(config)
    return Population(tuple(f"seed_{s}" for s in seeds), tuple(seeds))


def best_directory(ckpts: Checkpoints, metric: str, labels, member: int) -> str:
    """Where member `member`'s best-`metric` artifact lives: checkpoints/best_<metric> for one member,
    checkpoints/<label>/best_<metric> (seed_<s>, trial_<n>) for many."""
    if len(labels) == 1:
        return ckpts.directory(metric)
    return os.path.join(ckpts.root, labels[member], f"best_{metric}")


def best_key(metric: str, labels, member: int) -> str:
    """RunState.best's key of member `member`'s best `metric`."""
    return metric if len(labels) == 1 else f"{metric}/{labels[member]}"


def _member(tree, k: int):
    return jax.tree.map(lambda x: x[k], tree)


def _member_raws(raw: dict, n: int) -> list[dict]:
    """Per-member host metrics of one call: a population's leaves [K, ...] split into K dicts."""
    if n == 1:
        return [raw]
    return [{key: np.asarray(v)[k] for key, v in raw.items()} for k in range(n)]


def _mean_row(rows: list[dict]) -> dict:
    """One row for K members' rows: env steps summed, every other number averaged."""
    if len(rows) == 1:
        return rows[0]
    out = {}
    for key, v in rows[0].items():
        if isinstance(v, (int, float, np.number)) and not isinstance(v, bool):
            vals = [float(r[key]) for r in rows]
            out[key] = (int(sum(vals)) if key == "env_steps" else float(np.mean(vals)))
        else:
            out[key] = v
    return out


def to_target(target, restored):
    """Restored numpy leaves cast to the target's dtypes (typed PRNG keys re-wrapped)."""
    def leaf(t, r):
        if jax.dtypes.issubdtype(t.dtype, jax.dtypes.prng_key):
            return jax.random.wrap_key_data(np.asarray(r))
        return jax.numpy.asarray(r, dtype=t.dtype)
    return jax.tree.map(leaf, target, restored)


def _restore(agent, state, ckpts: Checkpoints, name: str, explicit: bool):
    """(state, meta or None) restored from `name`: latest | a best metric | a path (checkpoint step
    directory, latest directory, or model artifact); None where nothing is there and `name` was not
    asked for. A checkpoint that is there but does not restore is an error, never a fresh start: the
    caller would skip its warm start and pretrained encoder believing the run resumed."""
    if name in BEST_METRICS or (os.path.isdir(name) and artifact_lib.is_artifact(name)):
        directory = ckpts.directory(name) if name in BEST_METRICS else name
        if not artifact_lib.is_artifact(directory):
            if explicit:
                raise FileNotFoundError(f"--resume_from={name}: no model artifact at {directory}")
            return None
        params = artifact_lib.load_params(directory)
        log.info("starting from the params of %s (optimizer and env state fresh)", directory)
        return agent.with_params(state, params), None
    target = agent.to_checkpoint(state)      # what `latest` holds of the state (the agent decides)
    try:
        restored = ckpts.restore(name, target)
    except CheckpointError as exc:      # (a LayoutError is a ValueError: it passes through as it is)
        raise CheckpointError(exc.directory, exc.failures, advice=(
            "This run cannot resume from it, and it does not start fresh on its own (that would also "
            "drop a warm start or model.encoder_init). To start over, run with --fresh_start (moves the "
            f"old run into previous-<time>/) or delete {exc.directory}; to continue that run, use the "
            "config and code it was written with (config.json beside it)")) from exc
    if restored is None:
        if explicit:
            raise FileNotFoundError(f"--resume_from={name}: no readable checkpoint under {ckpts.root}")
        return None
    log.info("resumed from %s (iteration %d)", restored.path, restored.meta["iteration"])
    return agent.from_checkpoint(state, to_target(target, restored.state)), restored.meta


def run(setup, agent, workdir: str, *, hooks: Hooks | None = None, resume_from: str | None = None,
        fresh_start: bool = False, verbosity: str = "normal", init_params=None,
        init_opt_state=None, population: Population | None = None) -> TrainResult:
    """Trains `agent` in `setup` into `workdir` (see the module docstring). Returns a TrainResult.

    resume_from: None resumes `latest` if the workdir has one; "latest", a best metric name
    ("composite", "win_rate", "profit_rate", "sharpe"), a checkpoint path or an artifact path.
    fresh_start: ignore what the workdir holds (the caller moved it aside). init_params: network
    params to start from (a warm start), used when nothing is resumed; init_opt_state: with them, the
    optimizer state to keep (a warm start without `reset_optimizer`), else the optimizer starts fresh.
    population: the members to train (default: `population_of(config)`, the seeds of train.seeds).
    """
    hooks = hooks or Hooks()
    config, s = setup.config, setup
    main = devices_lib.is_main_process()      # the one process that writes (module docstring)
    os.makedirs(workdir, exist_ok=True)
    config_meta = _config_json(config)
    if main:
        artifact_lib.write_json_atomic(os.path.join(workdir, "config.json"), dict(
            config_meta, _machine=artifact_lib.machine_info(), _versions=artifact_lib.library_versions()),
            sort_keys=True)
        # What setup decided, beside the user's config (which it never changes): the resolved env config
        # (fitted thresholds, the impact model chosen from the data) and the agent's envs after the cap.
        artifact_lib.write_json_atomic(os.path.join(workdir, "resolved.json"), {
            "env": artifact_lib.as_plain(s.env_config),
            "agent": {"name": agent.name, "n_envs": int(s.n_envs), "n_envs_configured":
                      int(agent_registry.section(config)["n_envs"])}})

    log_file = (run_log_file(workdir, verbose=verbosity == "verbose") if main
                else contextlib.nullcontext())
    with log_file:
        source = config.data.get("csv_path") or config.data.dataset
        log.info("jaxtrade: %s on %s with %s, %d device(s) (%s), %d envs per device", config.env.name,
                 source, agent.name, s.n_devices, jax.devices()[0].platform, agent.n_envs)
        log.info("budget: %s", s.budget.describe())
        pop = population_of(config) if population is None else population
        seeds = list(pop.seeds)
        if len(pop) == 1:
            state = agent.init(jax.random.key(seeds[0]), s.train_params, s.devices,
                               hparams=pop.hparams[0] if pop.hparams else None)
            iterate = agent.make_iteration()
        else:
            log.info("training %d members (%s) as one population", len(pop), ", ".join(pop.labels))
            hparams = pop.hparams or (agent.hparams,) * len(pop)
            state = agent.init_population(jax.numpy.stack([jax.random.key(sd) for sd in seeds]),
                                          s.train_params, agent.stack_hparams(hparams), s.devices)
            iterate = agent.make_population_iteration()
        ckpts = Checkpoints(workdir, devices=s.devices)
        run_state = RunState.fresh(config)
        resumed = False
        if not fresh_start:
            name = resume_from or ("latest" if ckpts.steps("latest") else None)
            if name is not None:
                if len(seeds) > 1 and name != "latest" and not os.path.basename(
                        os.path.dirname(os.path.abspath(name))) == "latest":
                    raise ValueError(f"--resume_from={name} with train.seeds={len(seeds)}: a many-seed run "
                                     "resumes from latest only (a single model's params would make the "
                                     "seeds identical)")
                restored = _restore(agent, state, ckpts, name, explicit=resume_from is not None)
                if restored is not None:
                    state, meta = restored
                    if meta is not None and meta.get("kind") == "latest":
                        run_state = RunState.from_meta(meta, config)
                    resumed = True
        if init_params is not None and not resumed:
            state = agent.with_params(state, init_params, opt_state=init_opt_state)
        elif not resumed and config.model.get("encoder_init"):   # a pretrained encoder, every member
            encoder = artifact_lib.encoder_init(config.model.encoder_init, agent.model_config, agent.obs_spec,
                                                train_end=s.preprocessor.train[1])
            state = agent.with_encoder(state, encoder)
            log.info("encoder from the pretrained encoder %s", config.model.encoder_init)
        elif not resumed and "encoder" in agent.frozen:
            log.warning("%s.frozen holds 'encoder' but model.encoder_init is unset: the encoder stays at "
                        "its random initialization", agent.name)
        result = _loop(s, agent, state, iterate, ckpts, run_state, workdir, hooks, verbosity, config_meta,
                       pop)
        compiles = getattr(agent, "compiles", None)
        if compiles is not None:
            log.info("the training iteration compiled %d time(s) in this process", compiles)
        return dataclasses.replace(result, compiles=compiles)


def _loop(s, agent, state, iterate, ckpts, run, workdir, hooks, verbosity, config_meta,
          pop: Population) -> TrainResult:
    config = s.config
    main = devices_lib.is_main_process()
    seeds, labels = list(pop.seeds), list(pop.labels)
    # what each member's best artifacts record of its traced hparams (read from the device once)
    hparams_json = None if pop.hparams is None else [
        json_floats({k: float(v) for k, v in dataclasses.asdict(h).items()}) for h in pop.hparams]
    uri = config.train.get("mlflow_uri")
    sink = (MlflowSink(uri, experiment=config.train.get("mlflow_experiment") or "jaxtrade",
                       run_name=os.path.basename(os.path.abspath(workdir)), config=config_meta)
            if uri and main else None)
    reporter = Reporter(workdir, total=s.budget.iterations, initial=run.iteration, verbosity=verbosity,
                        log_every=config.train.log_every, tensorboard=config.train.tensorboard, mlflow=sink,
                        trended=trended_of(agent.diagnostics), members=len(seeds), writes=main)
    failed = True
    evaluator = (evaluation.Evaluator(s, agent, dict(config.train.composite))
                 if s.val_params is not None else None)
    # Every checkpoint compared on validation is a trial of the best-model choice (module docstring, 3).
    ledger = TrialLedger.open(workdir, s.splits.val.periods_per_year) if evaluator is not None else None
    sha = artifact_lib.code_version()
    stopped = "budget"
    try:
        while run.iteration < s.budget.iterations:
            t0 = time.perf_counter()
            state, metrics = iterate(state, s.train_params)
            # the same on every device of every process: this process's first device's copy
            raw = {k: np.asarray(v) for k, v in jax.device_get(devices_lib.first_device(metrics)).items()}
            members = _member_raws(raw, len(seeds))
            k_inner = (1 if all(np.ndim(v) == 0 for v in members[0].values())
                       else len(next(iter(members[0].values()))))
            seconds = (time.perf_counter() - t0) / k_inner
            before = run.iteration
            for j in range(k_inner):  # <agent>.iterations_per_call = k iterations ran in this one call
                raws_j = [m if k_inner == 1 else {k: v[j] for k, v in m.items()} for m in members]
                run.iteration += 1
                for m, raw_j in enumerate(raws_j):
                    bad = _nonfinite(raw_j)
                    if bad is not None:
                        who = "" if len(seeds) == 1 else f" ({labels[m]}, seed {seeds[m]})"
                        raise TrainingDiverged(
                            f"iteration {run.iteration}{who}: metric '{bad}' is not finite; training "
                            f"stopped. The last good state is in {ckpts.directory('latest')} "
                            f"(iteration {run.last_saved}).")
                row = _mean_row([iteration_row(raw_j, iteration=run.iteration,
                                               periods_per_year=s.splits.train.periods_per_year)
                                 for raw_j in raws_j])
                run.total_env_steps += int(row["env_steps"])
                row["total_env_steps"] = run.total_env_steps
                row["iteration_seconds"] = seconds
                row["steps_per_second"] = row["env_steps"] / seconds if seconds > 0 else math.nan
                if (mem := device_memory_gib()) is not None:
                    row["device_memory_gib"] = mem
                run.history.append({k: v for k, v in row.items() if k not in TIMING_KEYS})
                reporter.iteration(row)
                if hooks.on_iteration is not None:
                    hooks.on_iteration(row)

            def crossed(every, before=before):
                return run.iteration // every > before // every

            last = run.iteration >= s.budget.iterations
            if evaluator is not None and (crossed(config.train.eval_every) or last):
                params = agent.params(state)
                member_params = [params] if len(seeds) == 1 else [_member(params, k)
                                                                   for k in range(len(seeds))]
                frames = evaluator.frames(member_params)
                vals = [evaluator.metrics(f) for f in frames]
                for m, (frame, val_m) in enumerate(zip(frames, vals, strict=True)):
                    ledger.add(trial_name(labels[m], run.iteration), frame_returns(frame), kind="checkpoint",
                               metrics=val_m, dates=frame.index, member=labels[m], seed=seeds[m],
                               iteration=run.iteration,
                               **({} if hparams_json is None else {"hparams": hparams_json[m]}))
                if main:
                    ledger.save(workdir)
                val = _mean_row(vals)
                if len(seeds) > 1:
                    val = dict(val, **{f"{k}/{lb}": v[k] for lb, v in zip(labels, vals, strict=True)
                                       for k in ("composite", "sharpe")})
                run.val_history.append(dict(val, iteration=run.iteration))
                reporter.evaluation(run.iteration, val)
                if hooks.on_validation is not None:
                    hooks.on_validation(run.iteration, val)
                if hooks.on_member_validation is not None:
                    hooks.on_member_validation(run.iteration, vals)
                for m, (p_m, val_m) in enumerate(zip(member_params, vals, strict=True)):
                    improved = [k for k in BEST_METRICS if math.isfinite(val_m.get(k, math.nan))
                                and val_m[k] > run.best.get(best_key(k, labels, m), -math.inf)]
                    for metric in improved:
                        run.best[best_key(metric, labels, m)] = val_m[metric]
                        recorded = dict(json_floats(val_m), iteration=run.iteration, selected_by=metric,
                                        split="val", trial=trial_name(labels[m], run.iteration))
                        if hparams_json is not None:
                            recorded["hparams"] = hparams_json[m]
                        if main:      # the params are the same everywhere: one plain artifact
                            spec = model_spec(s, agent, sources.selection_metrics(recorded),
                                              code_version=sha, seed=seeds[m])
                            artifact_lib.save_model(best_directory(ckpts, metric, labels, m), p_m, spec)
                if run.early.update(val.get("composite", math.nan)):
                    stopped = "early_stopping"
                    reporter.info(f"early stopping at iteration {run.iteration}: no validation "
                                  f"composite gain > {run.early.min_delta} for "
                                  f"{run.early.patience} evaluations")
            # every process polls, and all stop if any was asked to (the same iteration everywhere)
            if hooks.should_stop is not None and devices_lib.any_process(hooks.should_stop()) \
                    and stopped == "budget":
                stopped = "signal"
            if crossed(config.train.checkpoint_every) or last or stopped != "budget":
                ckpts.save("latest", run.iteration, agent.to_checkpoint(state), run.to_meta(config_meta))
                run.last_saved = run.iteration
            if stopped != "budget":
                break
        if sink is not None:
            sink.log_artifacts({os.path.relpath(d, ckpts.root): d for d in
                                (best_directory(ckpts, m, labels, k) for m in BEST_METRICS
                                 for k in range(len(labels))) if artifact_lib.is_artifact(d)})
        failed = False
    finally:
        reporter.close(failed=failed)
    result = TrainResult(workdir, run.iteration, stopped, None, dict(run.best), run.history,
                         run.val_history)
    if stopped == "signal":
        log.warning("stopped by request after iteration %d; `latest` saved in %s", run.iteration,
                    ckpts.directory("latest"))
        return result
    if s.test_params is not None and config.train.final_report and main:
        result.report_path = final_report(s, agent, state, ckpts, workdir, code_version=sha, population=pop)
    return result


def final_report(s, agent, state, ckpts: Checkpoints, workdir: str, *, code_version: str,
                 population: Population | None = None) -> str:
    """Backtests the best-composite artifact of every seed (the final model where no validation ran)
    on the test split against the baselines, writes report.md into workdir and returns its path.

    The test split is data no choice has seen: its metrics go into each chosen artifact's spec as its
    held-out metrics (the registry grades those only). The report ends with the overfitting section:
    the trials behind the model (`trials.json`), its deflated Sharpe and PBO, and its Sharpe on the
    training, validation and test splits side by side (`overfitting.json`)."""
    config = s.config
    pop = population or Population(("seed_" + str(config.seed),), (int(config.seed),))
    seeds, labels = list(pop.seeds), list(pop.labels)
    params = agent.params(state)
    policies, specs, which, chosen = [], [], [], []
    for m, seed in enumerate(seeds):
        directory = best_directory(ckpts, "composite", labels, m)
        if artifact_lib.is_artifact(directory):
            policy, spec = artifact_lib.load_model(directory)
            selection, _ = sources.metric_sources(spec.metrics)
            which.append(f"seed {seed}: best validation composite (iteration "
                         f"{selection.get('iteration')}, {directory})")
            chosen.append((directory, selection.get("trial")))
        else:
            spec = model_spec(s, agent, {}, code_version=code_version, seed=seed)
            policy = agent.policy(params if len(seeds) == 1 else _member(params, m))
            which.append(f"seed {seed}: final model (no validation ran)")
            chosen.append((None, None))
        policies.append(policy)
        specs.append(spec)
    split = s.splits.test
    notes = (f"Agent: {'; '.join(which)}; trained on {s.splits.train.traded_dates[0]:%Y-%m-%d}"
             f"..{s.splits.train.traded_dates[-1]:%Y-%m-%d}; test split "
             f"{split.traded_dates[0]:%Y-%m-%d}..{split.traded_dates[-1]:%Y-%m-%d} (held out: no choice "
             "saw it). Every row trades in the agent's environment with its costs and its turbulence gate; "
             "a row marked \"gate off\" is a reference outside that world." +
             (f" The agent row is the mean ± std over {len(seeds)} seeds, its Sharpe interval a bootstrap "
              "that resamples the seeds and the days together." if len(seeds) > 1 else ""))
    rep = evaluation.evaluate_artifact(policies if len(seeds) > 1 else policies[0], specs[0], split,
                                       market=s.market, n_boot=config.train.bootstrap_samples,
                                       seed=config.seed, out_dir=workdir, notes=notes, trials_section=False)
    row = evaluation.agent_row(specs[0])
    for (directory, _), frame in zip(chosen, rep.results[row], strict=True):
        if directory is not None and devices_lib.is_main_process():
            evaluation.record_held_out(directory, frame, "test")
    from jaxtrade import eval as evaluate

    log.info("test-split report:\n%s", evaluate.to_markdown(rep.table))
    in_sample = None
    if config.train.get("in_sample_report", True):
        in_sample = evaluation.in_sample_comparison(s, policies)
        in_sample.to_csv(os.path.join(workdir, "in_sample.csv"))
        _append(rep.md_path, evaluation.in_sample_markdown(in_sample))
    test_sharpe = float(rep.table.loc[row, "sharpe"])
    section = overfitting_section(s, workdir, policies, chosen, test_sharpe, in_sample)
    if section:
        _append(rep.md_path, section)
    return rep.md_path


def _append(path: str, section: str) -> None:
    with open(path, "a", encoding="utf-8") as f:
        f.write("\n" + section)
    log.info("%s", section)


def overfitting_section(s, workdir: str, policies, chosen, test_sharpe: float, in_sample=None) -> str:
    """The report's overfitting section ("" without a trial ledger): `eval.overfitting.trial_summary`
    of choosing the best seed's chosen checkpoint (highest validation Sharpe) among every trial of the
    run's ledger, and the agent's Sharpe by split (median over seeds; test: the report's mean),
    written to overfitting.json too."""
    path = os.path.join(workdir, "trials.json")
    if not os.path.exists(path):
        return ""
    ledger = TrialLedger.load(path)
    names = [t for _, t in chosen if t in ledger.trials]
    if not names:
        return ""
    sharpe_of = lambda n: ledger.trials[n]["metrics"].get("sharpe")
    best = max(names, key=lambda n: -math.inf if sharpe_of(n) is None else sharpe_of(n))
    summary = ledger.summary(best)
    if in_sample is not None and "train" in in_sample.index:
        train = float(in_sample.loc["train", "agent_median"])
    else:
        train = float(np.median(evaluation.split_sharpes(s, policies, "train")))
    val = [sharpe_of(n) for n in names if sharpe_of(n) is not None]
    by_split = {"train": train, "val": float(np.median(val)) if val else None, "test": test_sharpe}
    summary["sharpe_by_split"] = by_split
    summary["chosen_trials"] = names
    summary["n_seeds"] = len(policies)
    summary = sources.json_safe_tree(summary)
    if devices_lib.is_main_process():
        artifact_lib.write_json_atomic(os.path.join(workdir, "overfitting.json"), summary)
        for directory, _ in chosen:        # every chosen model carries the trials it was chosen among
            if directory is not None:
                artifact_lib.add_trials(directory, summary)
    return evaluation.overfitting_markdown(summary)


def train(config: ml_collections.ConfigDict, workdir: str, *, resume_from: str | None = None,
          fresh_start: bool = False, verbosity: str = "normal", env_transform: Callable | None = None,
          should_stop: Callable[[], bool] | None = None) -> TrainResult:
    """Builds the setup and the agent of `config` and runs them into `workdir`.

    The config and the data are validated (by building the setup) before anything in the workdir is
    touched (`jaxtrade.train.workdir`): `fresh_start` moves the whole earlier run into
    `previous-<time>/`; otherwise a run the workdir holds resumes only with the same config (but
    `workdir.RESUMABLE_KEYS`), and a finished one is not run again (stopped="already_finished", its
    report's path). env_transform wraps the training env (tests inject faults).
    """
    config = ml_collections.ConfigDict(config.to_dict())  # unlocked private copy
    setup = setup_lib.build(config)
    if env_transform is not None:
        setup.env = env_transform(setup.env)
    if fresh_start:      # process 0 moves the run aside (a shared filesystem), the others wait for it
        if devices_lib.is_main_process():
            archive_previous(workdir)
        devices_lib.barrier("jaxtrade: fresh_start moved the earlier run aside")
    else:
        meta = check_resume(workdir, _config_json(config), budget_iterations=setup.budget.iterations,
                            report_expected=setup.test_params is not None and bool(config.train.final_report),
                            resume_from=resume_from, defaults=_config_json(config_lib.base_config()))
        # every process has read the workdir before process 0 rewrites its config.json
        devices_lib.barrier("jaxtrade: every process checked the workdir")
        if meta is not None:
            done = RunState.from_meta(meta, config)
            report = os.path.join(workdir, "report.md")
            return TrainResult(workdir, done.iteration, "already_finished",
                               report if os.path.exists(report) else None, dict(done.best), done.history,
                               done.val_history)
    agent = setup.make_agent()
    return run(setup, agent, workdir, hooks=Hooks(should_stop=should_stop), resume_from=resume_from,
               fresh_start=fresh_start, verbosity=verbosity)


def json_floats(d: dict) -> dict:
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
                    history=[json_floats(r) for r in self.history],
                    val_history=[json_floats(r) for r in self.val_history],
                    best=self.best, early_stopping=self.early.to_json(), config=config_meta)

    @classmethod
    def from_meta(cls, meta: dict, config) -> RunState:
        nan = float("nan")
        hist = [{k: (nan if v is None else v) for k, v in r.items()} for r in meta["history"]]
        val = [{k: (nan if v is None else v) for k, v in r.items()} for r in meta["val_history"]]
        return cls(int(meta["iteration"]), int(meta["total_env_steps"]), hist, val,
                   dict(meta["best"]), EarlyStopping.from_json(meta["early_stopping"]),
                   int(meta["iteration"]))


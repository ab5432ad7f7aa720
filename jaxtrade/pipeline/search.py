"""Hyperparameter search: optuna's TPE sampler outside, one vmapped population per batch of trials inside.

    result = search.run(config, workdir)     # config: an experiment config with a `search` section

1. The study lives in the workdir: `study.journal` (optuna's JournalFileBackend), or `search.storage`:
   an RDB URL (sqlite:///study.db, postgresql://user@host/db; SQLAlchemy and the database's driver)
   or the path of a journal file. It is created or loaded by `search.study_name`, so a killed search
   resumes: the trials a dead process left RUNNING are marked FAIL and their parameters (and seeds)
   enqueued again, so they are the first to run on restart.
2. Trials are asked in batches of `search.batch_size` = K through ask/tell (TPE with
   `constant_liar`, so the K trials of a batch differ). Every dimension of `search.space` is a traced
   hyperparameter of the config's agent (`agent.hparam_names()`: for PPO learning rates, clip,
   coefficients, gamma, lambda), so all
   batches share one compiled population iteration: one compile per static signature (a smaller last
   batch is a second one).
3. A batch trains as one `loop.run` with a `loop.Population` (labels trial_<n>, seed = config seed +
   trial number) in `workdir/batch_<first trial>/`. Each validation reports every member's
   `search.objective` (a validation metric) to its trial; the median pruner marks members pruned; once
   every member of a batch is pruned the batch stops. A pruned member rides along in the vmapped
   computation until then: it costs compute, not results.
4. A trial's value is the best validation objective its member reached, whose model is
   `checkpoints/trial_<n>/best_<objective>`. Validation metrics only choose: the test split is never
   read while searching (`train.final_report` is switched off).
5. Several processes (`run(..., process_id=i, num_processes=P)`, on one machine or many) share one
   study: each is an independent worker on its own local devices (`train.n_devices`) that asks
   batches from the shared storage until `search.n_trials` trials are finished or running, each
   with its own sampler seed (`sampler_seed + i`, so that their first random trials differ). A
   worker restarted after a kill requeues only its own stale trials (user attribute `worker`;
   process 0 also those of workers beyond the count, and unmarked ones over a minute old: `_stale`). A
   trial asked beyond the budget by a race between workers is told FAIL at once, never trained
   (`surplus`). Process 0 then waits for the others' running trials and alone writes the report
   and registers the winner; the other processes return with report_path None. The workdir (every
   batch's directory) and the storage must be reachable by every process: a shared filesystem, or
   an RDB server for the study.
6. At the end: `trials.csv`, `search.md` (trials by value, best parameters) and `search.png`; the best
   trial's artifact is registered (`search.registry`, as `search.name`) with its parameters, its
   validation metrics as selection metrics, its test-split metrics as held-out metrics (the test split
   read once, for the winner only, where the config has one; else it is registered ungraded) and the
   overfitting summary of choosing it among every checkpoint of every batch (`study_ledger`).
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import logging
import math
import os
import time
from collections.abc import Callable

import jax.numpy as jnp
import ml_collections
from ml_collections import config_dict

from jaxtrade.agents import registry as agents_registry
from jaxtrade.agents.base import check_keys
from jaxtrade.pipeline.registry import Registry
from jaxtrade.train import artifact as artifact_lib
from jaxtrade.train import evaluation
from jaxtrade.train import loop as loop_lib
from jaxtrade.train import setup as setup_lib
from jaxtrade.train.checkpoints import BEST_METRICS, Checkpoints
from jaxtrade.train.trials import TrialLedger, summary_of_artifact

log = logging.getLogger("jaxtrade")

KINDS = ("float", "log")
_JOURNAL = "study.journal"


def default_config(**changes) -> ml_collections.ConfigDict:
    """The `search` section: what to search, how many trials, in batches of how many (an unknown key
    raises, naming `search.<key>`)."""
    cfg = ml_collections.ConfigDict(dict(
        n_trials=32,
        batch_size=8,                  # K trials trained as one population (one compile)
        objective="composite",         # a validation metric: composite | sharpe | win_rate | profit_rate
        sampler_seed=0,
        n_startup_trials=8,            # random trials before TPE models the space
        pruner="median",               # median | none
        pruner_startup_trials=4,       # completed trials before the median pruner prunes
        pruner_warmup_steps=0,         # iterations before a trial can be pruned
        study_name="search",
        storage=config_dict.placeholder(str),   # an optuna RDB URL; default: workdir/study.journal
        registry=config_dict.placeholder(str),  # registry root for the best trial's model; unset: none
        name="search_best",                     # its registry name
        # name -> "float:low:high" or "log:low:high", over the agent's traced hyperparameters only;
        # empty: the agent's registered space (agents.registry, AgentRegistration.search_space)
        space=ml_collections.ConfigDict(),
    ))
    cfg.update(check_keys(changes, cfg, name="search"))
    return cfg


@dataclasses.dataclass(frozen=True)
class Dimension:
    name: str
    kind: str
    low: float
    high: float


def parse_space(space, traced: tuple[str, ...]) -> list[Dimension]:
    """`search.space` -> dimensions; a key outside the agent's traced hyperparameters (`traced`) or a
    bad spec raises ValueError naming `search.space.<key>` and the rule."""
    dims = []
    for name, spec in dict(space).items():
        key = f"search.space.{name}"
        if name not in traced:
            raise ValueError(f"{key}: only the agent's traced hyperparameters can be searched inside "
                             f"one compile ({', '.join(traced)}); static ones (sizes, epochs) change the "
                             "compiled shapes")
        parts = str(spec).split(":")
        try:
            kind, low, high = parts[0], float(parts[1]), float(parts[2])
        except (IndexError, ValueError):
            raise ValueError(f"{key}={spec!r}: expected 'float:LOW:HIGH' or 'log:LOW:HIGH'") from None
        if len(parts) != 3 or kind not in KINDS or not low < high or (kind == "log" and low <= 0):
            raise ValueError(f"{key}={spec!r}: expected kind in {KINDS}, LOW < HIGH (and LOW > 0 for log)")
        dims.append(Dimension(name, kind, low, high))
    if not dims:
        raise ValueError("search.space is empty: name at least one traced hyperparameter to search")
    return dims


def _check(s) -> None:
    check_keys(s, default_config(), name="search")
    if s.objective not in BEST_METRICS:
        raise ValueError(f"search.objective={s.objective!r}: must be one of {BEST_METRICS} (validation "
                         "metrics with a best-model artifact)")
    for key in ("n_trials", "batch_size"):
        if int(s[key]) < 1:
            raise ValueError(f"search.{key}={s[key]} must be >= 1")
    if s.pruner not in ("median", "none"):
        raise ValueError(f"search.pruner={s.pruner!r}: must be median or none")


def _optuna():
    try:
        import optuna
    except ImportError as e:
        raise ValueError("the search needs optuna, the `search` extra: pip install 'jaxtrade[search]'") from e
    return optuna


def storage_of(s, workdir: str):
    """The optuna storage of search section `s`: an RDB URL as is, else a journal file (the given
    path, or workdir/study.journal)."""
    if s.get("storage") and "://" in s.storage:
        return s.storage
    from optuna.storages import JournalStorage
    from optuna.storages.journal import JournalFileBackend

    return JournalStorage(JournalFileBackend(s.storage or os.path.join(workdir, _JOURNAL)))


def open_study(s, workdir: str, process_id: int = 0, num_processes: int = 1):
    """The study of search section `s` in `workdir` (created or loaded), with this worker's stale trials
    requeued, and (process 0) those of workers beyond `num_processes` (module docstring, 1 and 5)."""
    optuna = _optuna()
    storage = storage_of(s, workdir)
    sampler = optuna.samplers.TPESampler(seed=int(s.sampler_seed) + int(process_id),
                                         n_startup_trials=int(s.n_startup_trials), constant_liar=True)
    pruner = (optuna.pruners.MedianPruner(n_startup_trials=int(s.pruner_startup_trials),
                                          n_warmup_steps=int(s.pruner_warmup_steps))
              if s.pruner == "median" else optuna.pruners.NopPruner())
    study = optuna.create_study(storage=storage, sampler=sampler, pruner=pruner, study_name=s.study_name,
                                direction="maximize", load_if_exists=True)
    stale = [t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.RUNNING
             and _stale(t, int(process_id), int(num_processes))]
    for t in stale:
        study.tell(t.number, state=optuna.trial.TrialState.FAIL)
        study.enqueue_trial(t.params, user_attrs={"seed": t.user_attrs.get("seed"), "retry_of": t.number})
    if stale:
        log.info("resuming study %r: %d trial(s) a stopped process left running are queued again (%s)",
                 s.study_name, len(stale), ", ".join(str(t.number) for t in stale))
    return study


UNMARKED_STALE_S = 60.0   # a worker marks a trial it asked within milliseconds


def _stale(trial, process_id: int, num_processes: int) -> bool:
    """Whether a RUNNING trial was left by a dead process, as worker `process_id` of `num_processes`
    sees it at its start: its own (a restart of the same worker), process 0's view of workers beyond the
    count, and one no worker marked (a one-process run's, or older than `UNMARKED_STALE_S`)."""
    worker = trial.user_attrs.get("worker")
    if worker is None:
        started = trial.datetime_start
        age = None if started is None else (datetime.datetime.now() - started).total_seconds()
        return num_processes == 1 or age is None or age > UNMARKED_STALE_S
    return int(worker) == process_id or (process_id == 0 and int(worker) >= num_processes)


def _finished(study) -> int:
    optuna = _optuna()
    done = (optuna.trial.TrialState.COMPLETE, optuna.trial.TrialState.PRUNED)
    return sum(t.state in done for t in study.get_trials(deepcopy=False))


def _running(study) -> int:
    optuna = _optuna()
    return sum(t.state == optuna.trial.TrialState.RUNNING for t in study.get_trials(deepcopy=False))


def wait_for_others(study, should_stop: Callable[[], bool] | None = None, poll_s: float = 1.0) -> str:
    """Process 0, its own trials told: waits while any trial of the study runs (the other workers');
    "done" once none runs, "signal" if `should_stop()` said so first."""
    while _running(study):
        if should_stop is not None and should_stop():
            return "signal"
        time.sleep(poll_s)
    return "done"


def _surplus(study, trials, n_trials: int) -> list:
    """Those of `trials` (just asked) beyond the first `n_trials` trials that are not FAIL, by number:
    asked by a race between workers, they are not to be trained."""
    optuna = _optuna()
    kept = sorted(t.number for t in study.get_trials(deepcopy=False)
                  if t.state != optuna.trial.TrialState.FAIL)
    last = kept[n_trials - 1] if len(kept) >= n_trials else None
    return [t for t in trials if last is not None and t.number > last]


def _suggest(trial, dims: list[Dimension]) -> dict:
    return {d.name: trial.suggest_float(d.name, d.low, d.high, log=d.kind == "log") for d in dims}


@dataclasses.dataclass
class SearchResult:
    workdir: str
    best_trial: int | None
    best_value: float | None
    best_params: dict
    best_artifact: str | None
    registered: str | None
    counts: dict                       # trials by state
    batches: int                       # batches run by this call
    compiles: int
    seconds: float
    stopped: str                       # done | signal
    report_path: str | None


def run(config, workdir: str, *, market=None, should_stop: Callable[[], bool] | None = None,
        verbosity: str = "normal", setup=None, agent=None, process_id: int = 0, num_processes: int = 1,
        poll_s: float = 1.0) -> SearchResult:
    """Runs (or resumes) the search of `config.search` into `workdir` (module docstring).

    market: the MarketData (default: loaded from config.data). setup, agent: reuse a built setup and
    agent (benchmarks compare batch sizes with one compile each). should_stop: polled after every
    training call; True ends the current batch (its trials are requeued on the next start).
    process_id, num_processes: this worker among the processes sharing the study (module docstring,
    5); poll_s: how often process 0 looks at the others' running trials."""
    if not 0 <= int(process_id) < int(num_processes):
        raise ValueError(f"process_id={process_id} must be in [0, num_processes={num_processes})")
    t0 = time.perf_counter()
    config = ml_collections.ConfigDict(config.to_dict())      # a private copy
    s = config.search
    _check(s)
    config.train.final_report = False                          # validation only: test is never read
    config.train.seeds = 1
    os.makedirs(workdir, exist_ok=True)
    setup = setup_lib.build(config, market=market) if setup is None else setup
    if setup.val_params is None:
        raise ValueError("the search scores trials on the validation split: set data.val")
    agent = setup.make_agent() if agent is None else agent
    space = dict(s.space) or agents_registry.registration(setup.agent_name).search_space
    if not dict(s.space):
        log.info("search.space: %s's registered space %s", setup.agent_name, space)
    dims = parse_space(space, agent.hparam_names())
    study = open_study(s, workdir, process_id, num_processes)
    optuna = _optuna()
    compiles0, batches, stopped = agent.compiles, 0, "done"
    while True:
        left = int(s.n_trials) - _finished(study) - _running(study)
        if left <= 0:
            if process_id != 0 or _running(study) == 0:
                break
            stopped = wait_for_others(study, should_stop, poll_s)
            if stopped == "signal":
                break
            continue            # counted again: a trial that failed elsewhere is asked again
        trials = [study.ask() for _ in range(min(int(s.batch_size), left))]
        params = [_suggest(t, dims) for t in trials]
        for t in trials:
            t.set_user_attr("worker", int(process_id))
        surplus = _surplus(study, trials, int(s.n_trials))
        for t in surplus:
            t.set_user_attr("surplus", True)
            study.tell(t, state=optuna.trial.TrialState.FAIL)
            log.info("trial %d: asked beyond search.n_trials=%d by a race with another worker; not trained",
                     t.number, int(s.n_trials))
        params = [p for t, p in zip(trials, params, strict=True) if t not in surplus]
        trials = [t for t in trials if t not in surplus]
        if not trials:
            continue
        seeds = []
        for t in trials:
            seed = t.user_attrs.get("seed")
            seed = int(config.seed) + t.number if seed is None else int(seed)
            t.set_user_attr("seed", seed)
            seeds.append(seed)
        labels = tuple(f"trial_{t.number}" for t in trials)
        batch_dir = os.path.join(workdir, f"batch_{trials[0].number:04d}")
        for t in trials:
            t.set_user_attr("batch_dir", os.path.relpath(batch_dir, workdir))
        pop = loop_lib.Population(labels, tuple(seeds), tuple(
            agent.hparams.replace(**{k: jnp.float32(v) for k, v in p.items()}) for p in params))
        pruned: set[int] = set()
        external = [False]

        def report(iteration, vals, trials=trials, pruned=pruned):
            for m, (t, v) in enumerate(zip(trials, vals, strict=True)):
                value = v.get(s.objective, math.nan)
                if m in pruned or not math.isfinite(value):
                    continue
                t.report(value, step=iteration)
                if t.should_prune():
                    pruned.add(m)
                    log.info("trial %d pruned at iteration %d (%s %.4g)", t.number, iteration, s.objective,
                             value)

        def stop(trials=trials, pruned=pruned, external=external):
            external[0] = external[0] or bool(should_stop and should_stop())
            return external[0] or len(pruned) == len(trials)

        log.info("batch %d: trials %s (%d finished of %d)", batches + 1,
                 ", ".join(str(t.number) for t in trials), int(s.n_trials) - left, int(s.n_trials))
        result = loop_lib.run(setup, agent, batch_dir, fresh_start=True, verbosity=verbosity, population=pop,
                              hooks=loop_lib.Hooks(on_member_validation=report, should_stop=stop))
        batches += 1
        if external[0]:
            stopped = "signal"
            log.warning("search stopped by request; trials %s are queued again on the next start",
                        ", ".join(str(t.number) for t in trials))
            break
        for m, t in enumerate(trials):
            best = result.best.get(loop_lib.best_key(s.objective, labels, m))
            artifact = loop_lib.best_directory(Checkpoints(batch_dir), s.objective, labels, m)
            t.set_user_attr("artifact", os.path.relpath(artifact, workdir))
            if m in pruned:
                study.tell(t, state=optuna.trial.TrialState.PRUNED)
            elif best is None or not math.isfinite(best):
                study.tell(t, state=optuna.trial.TrialState.FAIL)
            else:
                study.tell(t, float(best))
    if process_id != 0:          # process 0 alone reports and registers (module docstring, 5)
        return _result(study, workdir, batches=batches, compiles=agent.compiles - compiles0,
                       seconds=time.perf_counter() - t0, stopped=stopped)
    return _finish(config, study, workdir, batches=batches, compiles=agent.compiles - compiles0,
                   seconds=time.perf_counter() - t0, stopped=stopped)


def _result(study, workdir: str, **kwargs) -> SearchResult:
    """What a worker other than process 0 returns: the study's counts and best trial so far, no report."""
    _, counts, best, artifact = _standing(study, workdir)
    return SearchResult(workdir, None if best is None else best.number, None if best is None else best.value,
                        {} if best is None else dict(best.params), artifact, None, counts, report_path=None,
                        **kwargs)


def _standing(study, workdir: str):
    """(trials_frame, {state: count} over its rows, the best COMPLETE trial, its artifact path; None, None
    without one)."""
    optuna = _optuna()
    frame = trials_frame(study)
    counts = {state.name: int((frame["state"] == state.name).sum()) if len(frame) else 0
              for state in optuna.trial.TrialState}
    complete = [t for t in study.get_trials(deepcopy=False) if t.state == optuna.trial.TrialState.COMPLETE]
    best = max(complete, key=lambda t: t.value) if complete else None
    artifact = os.path.join(workdir, best.user_attrs["artifact"]) if best is not None else None
    return frame, counts, best, artifact


def trials_frame(study):
    """One row per trial: number, state, value, each parameter, seed, batch and artifact (not the
    surplus trials a race between workers asked and never trained)."""
    import pandas as pd

    rows = []
    for t in study.get_trials(deepcopy=False):
        if t.user_attrs.get("surplus"):    # asked by a race between workers, never trained
            continue
        rows.append({"trial": t.number, "state": t.state.name, "value": t.value, **t.params,
                     "seed": t.user_attrs.get("seed"), "retry_of": t.user_attrs.get("retry_of"),
                     "batch": t.user_attrs.get("batch_dir"), "artifact": t.user_attrs.get("artifact")})
    return pd.DataFrame(rows)


def _finish(config, study, workdir, *, batches, compiles, seconds, stopped) -> SearchResult:
    s = config.search
    frame, counts, best, artifact = _standing(study, workdir)
    frame.to_csv(os.path.join(workdir, "trials.csv"), index=False)
    registered, trials = None, {}
    if best is not None and stopped == "done":
        # The trials behind the winner: every checkpoint of every batch, all compared on validation.
        trials = summary_of_artifact(study_ledger(workdir), artifact)
        if trials:
            artifact_lib.add_trials(artifact, trials)
    if best is not None and stopped == "done" and s.get("registry"):
        # The winner was chosen on validation; its grade needs data no trial saw: the test split, read
        # here once for the chosen model only.
        if config.data.get("test"):
            evaluation.held_out_of_artifact(artifact, "test")
        entry = Registry(s.registry).register(
            s.name, artifact, stage="rl", tags=(f"search:{s.study_name}", f"trial_{best.number}"),
            description=json.dumps({"search": s.study_name, "trial": best.number, "objective": s.objective,
                                    "value": best.value, "params": best.params, "seed":
                                        best.user_attrs.get("seed")}, sort_keys=True))
        registered = entry.ref
        log.info("registered the best trial (%d, %s %.4g) as %s", best.number, s.objective, best.value,
                 registered)
    report = _write_report(frame, workdir, s, best, registered, trials) if stopped == "done" else None
    return SearchResult(workdir, None if best is None else best.number, None if best is None else best.value,
                        {} if best is None else dict(best.params), artifact, registered, counts, batches,
                        compiles, seconds, stopped, report)


def study_ledger(workdir: str) -> TrialLedger:
    """Every batch's trial ledger of the study in `workdir`, merged (names prefixed by the batch)."""
    batches = sorted(d for d in os.listdir(workdir) if d.startswith("batch_")
                     and os.path.exists(os.path.join(workdir, d, "trials.json")))
    return TrialLedger.merge([TrialLedger.load(os.path.join(workdir, d)) for d in batches], prefixes=batches)


def _write_report(frame, workdir: str, s, best, registered, trials=None) -> str:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    done = frame[frame["state"] == "COMPLETE"].sort_values("value", ascending=False)
    fig, ax = plt.subplots(figsize=(7, 3.5))
    if len(done):
        ax.scatter(done["trial"], done["value"], s=14, label="complete")
        ax.plot(done.sort_values("trial")["trial"], done.sort_values("trial")["value"].cummax(),
                drawstyle="steps-post", label="best so far")
    pruned = frame[frame["state"] == "PRUNED"]
    if len(pruned):
        ax.scatter(pruned["trial"], [done["value"].min() if len(done) else 0.0] * len(pruned), marker="x",
                   s=14, label="pruned")
    ax.set_xlabel("trial")
    ax.set_ylabel(f"validation {s.objective}")
    ax.legend(loc="lower right", fontsize=8)
    fig.tight_layout()
    fig.savefig(os.path.join(workdir, "search.png"), dpi=110)
    plt.close(fig)
    cols = ["trial", "value", *[c for c in frame.columns if c not in ("trial", "state", "value", "seed",
                                                                       "retry_of", "batch", "artifact")]]
    lines = [f"# Search {s.study_name}: validation {s.objective}", "",
             f"{len(frame)} trials: " + ", ".join(f"{n} {st.lower()}" for st, n in
                                                  frame["state"].value_counts().items()) + ".", ""]
    cell = lambda v: f"{v:.4g}" if isinstance(v, float) else ("-" if v is None else str(v))
    table = lambda rows, cs: ["| " + " | ".join(cs) + " |", "|" + "---|" * len(cs),
                              *("| " + " | ".join(cell(r[c]) for c in cs) + " |" for _, r in rows.iterrows())]
    if best is not None:
        model = os.path.join(os.path.abspath(workdir), best.user_attrs["artifact"])
        py = ".venv/bin/python -m experiments"
        lines += [f"Best: trial {best.number}, {s.objective} {best.value:.4f}, "
                  + ", ".join(f"{k}={v:.4g}" for k, v in best.params.items())
                  + (f"; registered as {registered}" if registered else "") + ".", "",
                  f"Best model: `{model}`", "",
                  "Next: its held-out report (test split, baselines, intervals):", "", "```bash",
                  f"{py}.evaluate --checkpoint={model}"]
        if registered:
            lines += [f"{py}.registry info {registered} --root={os.path.abspath(s.registry)}"]
        lines += ["```", ""]
    lines += [f"## Completed trials ({len(done)}), best first", "", *table(done, cols), ""]
    others = frame[frame["state"] != "COMPLETE"].sort_values("trial")
    if len(others):
        rerun = {int(r): int(t) for t, r in zip(frame["trial"], frame["retry_of"], strict=True)
                 if r is not None and r == r}
        others = others.assign(note=[
            (f"killed with its batch; rerun as trial {rerun[t]}" if t in rerun else
             "pruned: below the median of earlier trials at a validation" if st == "PRUNED" else st.lower())
            for t, st in zip(others["trial"], others["state"], strict=True)])
        lines += [f"## Pruned and failed trials ({len(others)})", "",
                  *table(others, ["trial", "state", *cols[2:], "note"]), ""]
    lines += ["![search](search.png)", ""]
    if trials:
        lines += [evaluation.overfitting_markdown(trials)]
    path = os.path.join(workdir, "search.md")
    with open(path, "w", encoding="utf-8") as f:
        f.write("\n".join(lines))
    return path

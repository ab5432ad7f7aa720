"""Ensembles of model artifacts: build one as an artifact, backtest it, re-select its winner over time.

    path = build_ensemble(member_dirs, directory, mode="winner", names=refs)   # load_model reads it
    frame, schedule = backtest_ensemble(path, "test")                         # or a Split

1. Members agree on action_spec, obs_spec, the env config, the Preprocessor (one observation
   pipeline feeds them all) and `continuous_dist`; a disagreement is refused naming the member and
   the field. An ensemble of ensembles is refused. A member's validation Sharpe is its
   its selection metrics' "sharpe" (the validation Sharpe recorded when it was chosen: weights are
   themselves a choice on validation; missing or non-finite: refused).
2. The artifact (`artifact.save_model`: atomic): spec.json with agent "ensemble" and model = {"mode",
   "temperature", "members" (names or registry refs, as given), "val_sharpe", "schedule_every",
   "active" (the best validation Sharpe; ties: the lowest index)}; action_spec, obs_spec, env,
   preprocessor from the members, data and data_fingerprint from the first one. params.npz is empty
   (the ensemble owns no parameters); every member's artifact is copied to members/<k>/, so the
   directory is self-contained. `load_model` gives the combinator Policy (`jaxtrade.agents.ensemble`),
   the winner mode fixed on "active".
3. Winner re-selection (`backtest_ensemble`, mode "winner", as in the ensemble paper): every member
   is backtested alone over the split (`eval.backtest_many`: one vmapped run per architecture).
   Steps 0 .. E-1 (E = schedule_every, 63 trading days) trade with "active"; from each boundary
   b = E, 2E, ... the member with the best Sharpe of its own values at rows b-E .. b-1 trades steps
   b .. b+E-1 (`winner_schedule`). Rows before b only: value[b] is marked at close[b], which the
   trade at row b does not see. Ties go to the lowest index, an undefined (NaN) Sharpe never wins over
   a defined one. The ensemble Policy with that schedule is then backtested once; all members keep
   their recurrent state throughout, whichever of them trades.
"""

from __future__ import annotations

import math
import os

import numpy as np

from jaxtrade import eval as evaluate
from jaxtrade.agents import ensemble as ensemble_lib
from jaxtrade.train import artifact as artifact_lib
from jaxtrade.train import evaluation, sources
from jaxtrade.train import setup as setup_lib

SCHEDULE_EVERY = 63
MODES = ensemble_lib.MODES
_AGREE = ("action_spec", "obs_spec", "env", "preprocessor")


def val_sharpe(spec, name: str) -> float:
    """The selection (validation) Sharpe of member `name` (ValueError when missing or not finite)."""
    s = sources.metric_sources(spec.metrics)[0].get("sharpe")
    if s is None or not math.isfinite(float(s)):
        raise ValueError(f"ensemble member {name}: its spec.json has no finite metrics.sharpe (got {s!r}); "
                         "ensembles weigh and choose members by validation Sharpe, so use an artifact "
                         "saved by training (best_<metric>) or record its validation Sharpe")
    return float(s)


def check_members(specs, names) -> None:
    """ValueError naming the first member and field on which `specs` disagree with member 0 (see 1.)."""
    if not specs:
        raise ValueError("an ensemble needs at least one member")
    for spec, name in zip(specs, names, strict=True):
        if spec.agent == "ensemble":
            raise ValueError(f"ensemble member {name} is itself an ensemble, which is not supported; "
                             "build one ensemble from its members instead")
    for spec, name in zip(specs[1:], names[1:], strict=True):
        for field in _AGREE:
            a, b = getattr(spec, field), getattr(specs[0], field)
            if a != b:
                diff = ({k: (a.get(k), b.get(k)) for k in sorted(set(a) | set(b)) if a.get(k) != b.get(k)}
                        if isinstance(a, dict) and isinstance(b, dict) else (a, b))
                raise ValueError(f"ensemble member {name} has a different {field} than member {names[0]} "
                                 f"({diff}); members must share the {field} (one env, one observation "
                                 "pipeline)")
    ensemble_lib.shared_continuous_dist([s.model for s in specs])


def ensemble_spec(specs, *, mode: str, temperature: float = 1.0, names, every: int = SCHEDULE_EVERY,
                  metrics: dict | None = None):
    """The `ModelSpec` of the ensemble of member `specs` named `names` (see 1. and 2.)."""
    names = [str(n) for n in names]
    if mode not in MODES:
        raise ValueError(f"ensemble mode {mode!r} is not one of {MODES}")
    if every < 1:
        raise ValueError(f"schedule_every must be >= 1, got {every}")
    check_members(specs, names)
    sharpe = [val_sharpe(s, n) for s, n in zip(specs, names, strict=True)]
    ensemble_lib.softmax_weights(sharpe, temperature)             # checks the temperature
    model = {"mode": mode, "temperature": float(temperature), "members": names, "val_sharpe": sharpe,
             "schedule_every": int(every), "active": int(np.argmax(sharpe))}
    first = specs[0]
    return artifact_lib.ModelSpec(
        agent="ensemble", model=model, action_spec=first.action_spec, obs_spec=first.obs_spec,
        env=first.env, data=first.data, preprocessor=first.preprocessor,
        data_fingerprint=first.data_fingerprint, code_version=artifact_lib.code_version(),
        versions=artifact_lib.library_versions(), machine=artifact_lib.machine_info(),
        metrics=dict(metrics or {}))


def build_ensemble(member_dirs, directory: str, *, mode: str, temperature: float = 1.0, names=None,
                   metrics: dict | None = None) -> str:
    """Writes the ensemble artifact of the artifacts in `member_dirs` into `directory` (see 2.);
    names: what "members" records (e.g. registry refs; default: the directories as given); metrics:
    what the ensemble's spec records (e.g. its own validation metrics). Returns the path."""
    member_dirs = [os.fspath(d) for d in member_dirs]
    names = member_dirs if names is None else list(names)
    if len(names) != len(member_dirs):
        raise ValueError(f"{len(names)} names for {len(member_dirs)} ensemble members")
    spec = ensemble_spec([artifact_lib.load_spec(d) for d in member_dirs], mode=mode,
                         temperature=temperature, names=names, metrics=metrics)
    return artifact_lib.save_model(directory, {}, spec, members=member_dirs)


def winner_schedule(values, sharpe, *, n_steps: int, every: int = SCHEDULE_EVERY) -> np.ndarray:
    """int32 [n_steps] the member that trades each step (see 3.).

    values: [K, >= n_steps] each member's standalone value series (a backtest's `value` column: row i
    before the trade at row i); sharpe: [K] validation Sharpes, which choose steps 0 .. every-1.
    Only rows b-every .. b-1 decide the member from boundary b on."""
    values = np.asarray(values, np.float64)
    schedule = np.full(n_steps, int(np.argmax(sharpe)), np.int32)
    for b in range(every, n_steps, every):
        window = values[:, b - every:b]
        s = np.array([evaluate.sharpe_ratio(v[1:] / v[:-1] - 1.0) for v in window])
        schedule[b:b + every] = int(np.argmax(np.where(np.isnan(s), -np.inf, s)))
    return schedule


def backtest_ensemble(source, split, *, mode: str | None = None, temperature: float = 1.0, key=None):
    """(frame, schedule): the ensemble's backtest over the whole of `split` in its members' env.

    source: an ensemble artifact directory, or a list of member artifact directories (then `mode`
        and `temperature` make the ensemble in memory, exactly as `build_ensemble` would save it).
    split: a `Split`, or "val" / "test": that split of the artifact's data (`evaluation.split_of`).
    Returns the `eval.backtest` frame and, for mode "winner", the int32 [steps] member schedule
    re-selected every schedule_every rows (see 3.); None for the other modes.
    """
    if isinstance(source, (str, os.PathLike)):
        if mode is not None:
            raise ValueError("mode is the ensemble artifact's own; pass it only with a list of members")
        spec = artifact_lib.load_spec(source)
        if spec.agent != "ensemble":
            raise ValueError(f"{source} is a {spec.agent!r} artifact, not an ensemble; pass a list of "
                             "member directories, or build_ensemble first")
        members, member_specs = artifact_lib.ensemble_members(source, spec)
    else:
        dirs = [os.fspath(d) for d in source]
        loaded = [artifact_lib.load_model(d) for d in dirs]
        members, member_specs = [p for p, _ in loaded], [s for _, s in loaded]
        spec = ensemble_spec(member_specs, mode=mode, temperature=temperature, names=dirs)
    if isinstance(split, str):
        split = evaluation.split_of(spec, split)[1]
    env, params = setup_lib.make_split_env(spec.env, split)
    kw = dict(dates=split.dates, symbols=split.symbols, key=key)
    schedule = None
    if spec.model["mode"] == "winner":
        frames = evaluate.backtest_many(members, env, params, **kw)
        schedule = winner_schedule(np.stack([f["value"].to_numpy() for f in frames]),
                                   spec.model["val_sharpe"], n_steps=len(frames[0]) - 1,
                                   every=spec.model["schedule_every"])
    policy = artifact_lib.ensemble_policy_of(spec, members, member_specs, schedule=schedule)
    return evaluate.backtest(policy, env, params, **kw), schedule

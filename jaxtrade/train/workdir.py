"""What a training run finds in its workdir before it starts: resume it, refuse it, or move it aside.

A workdir holds one run: `config.json` (the user's config), the checkpoints trained with exactly that
config, and the logs and reports written from them. `train(config, workdir)` keeps that true:

1. `--fresh_start` (`archive_previous`): everything in the workdir but earlier `previous-*` archives
   moves into a new `previous-<time>/`, so an archived report keeps its images, logs and config beside
   it. A workdir that holds files but no run (no config.json, no checkpoints/) is refused instead:
   `--workdir=.` must never move a repository aside.
2. Otherwise, where the workdir holds a run (`check_resume`), the config must equal the saved
   config.json in every dotted key but `RESUMABLE_KEYS`, or the run is refused before anything is
   touched, in one line naming each differing key (old -> new) and the two ways out. So config.json
   always describes the models beside it.
3. A run that already finished (its `latest` reached the budget or stopped early) and has its report
   is not run again: `check_resume` says so and returns its `latest` metadata; nothing is rewritten.

Reading only: nothing here but `archive_previous` writes, and `check_resume` opens no Orbax manager
(which may create directories); it reads `latest`'s JSON metadata with a standalone checkpointer.
"""

from __future__ import annotations

import json
import logging
import os
import shutil
import time

import orbax.checkpoint as ocp

log = logging.getLogger("jaxtrade")

# What a resume may change of the saved config (dotted keys); any other difference refuses it. The
# budget says how long to train, not what is trained; the others only say how progress is logged and
# how often `latest` is saved (a resume continues bit for bit whatever its checkpoint_every).
BUDGET_KEYS = ("train.iterations", "train.total_timesteps", "train.episodes")
RESUMABLE_KEYS = BUDGET_KEYS + ("train.log_every", "train.checkpoint_every", "train.tensorboard",
                                "train.mlflow_uri", "train.mlflow_experiment")
ARCHIVE_PREFIX = "previous-"
_ABSENT = object()


def archive_previous(workdir: str, names=None) -> str | None:
    """Moves the workdir's earlier outputs into a new `previous-<time>/` (nothing is deleted) and
    returns it (None: nothing to move). names: None (everything but earlier `previous-*` archives; a
    workdir that holds no run is refused, module docstring, 1), a tuple of entries or a predicate on
    an entry's name."""
    if not os.path.isdir(workdir):
        return None
    entries = sorted(os.listdir(workdir))
    if names is None:
        old = [p for p in entries if not p.startswith(ARCHIVE_PREFIX)]
        if old and not holds_run(workdir):
            shown = ", ".join(old[:5]) + (f" and {len(old) - 5} more" if len(old) > 5 else "")
            raise ValueError(f"--fresh_start: {workdir} holds {shown} but no jaxtrade run (no config.json, "
                             "no checkpoints/); not moving files a run did not write: pass an empty or "
                             "new --workdir")
    else:
        keep = names if callable(names) else (lambda p: p in names)
        old = [p for p in entries if keep(p)]
    if not old:
        return None
    stamp = os.path.join(workdir, f"{ARCHIVE_PREFIX}{time.strftime('%Y%m%d-%H%M%S')}")
    dest, n = stamp, 1
    while os.path.exists(dest):            # two fresh starts within one second
        n += 1
        dest = f"{stamp}-{n}"
    os.makedirs(dest)
    for p in old:
        shutil.move(os.path.join(workdir, p), os.path.join(dest, p))
    log.info("fresh start: moved the earlier run (%s) into %s", ", ".join(old), dest)
    return dest


def holds_run(workdir: str) -> bool:
    """Whether `workdir` holds a training run (its config.json or its checkpoints)."""
    return any(os.path.exists(os.path.join(workdir, p)) for p in ("config.json", "checkpoints"))


def saved_config(workdir: str) -> dict | None:
    """The user's config the workdir's run was trained with (config.json without its `_` bookkeeping
    keys), or None where there is none."""
    path = os.path.join(workdir, "config.json")
    if not os.path.exists(path):
        return None
    with open(path, encoding="utf-8") as f:
        saved = json.load(f)
    return {k: v for k, v in saved.items() if not k.startswith("_")}


def latest_meta(workdir: str) -> dict | None:
    """The JSON metadata of the newest readable step of `checkpoints/latest` (None: no readable step)."""
    root = os.path.join(workdir, "checkpoints", "latest")
    steps = sorted((int(p) for p in os.listdir(root) if p.isdigit()), reverse=True) \
        if os.path.isdir(root) else []
    reader = ocp.Checkpointer(ocp.JsonCheckpointHandler())
    for step in steps:
        try:
            return reader.restore(os.path.join(root, str(step), "meta"))
        except Exception:  # noqa: BLE001 -- an unreadable step: the restore reports it, step by step
            continue
    return None


def _flat(tree: dict, prefix: str = "") -> dict:
    out = {}
    for k, v in tree.items():
        if isinstance(v, dict) and v:
            out.update(_flat(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = v
    return out


def config_changes(saved: dict, config: dict,
                   defaults: dict | None = None) -> list[tuple[str, object, object]]:
    """(dotted key, saved value, new value) of every leaf where the two JSON configs differ, sorted;
    a key only one of them has shows `_ABSENT` on the other side. defaults: the code's default config
    (JSON); a key the saved config lacks (the code gained it after that run) and the new config holds
    at its default is no difference: the old run ran without it, as the default does."""
    a, b = _flat(json.loads(json.dumps(saved))), _flat(json.loads(json.dumps(config)))
    d = _flat(json.loads(json.dumps(defaults))) if defaults is not None else {}
    return [(k, a.get(k, _ABSENT), b.get(k, _ABSENT)) for k in sorted(set(a) | set(b))
            if a.get(k, _ABSENT) != b.get(k, _ABSENT)
            and not (k not in a and k in d and b.get(k, _ABSENT) == d[k])]


def _show(v) -> str:
    return "(absent)" if v is _ABSENT else repr(v)


def check_resume(workdir: str, config: dict, *, budget_iterations: int, report_expected: bool,
                 resume_from: str | None = None, defaults: dict | None = None) -> dict | None:
    """Before a run without --fresh_start touches `workdir` (module docstring, 2 and 3).

    config: the run's config as JSON (what config.json will hold); defaults: the code's default config
    (`config_changes`). Raises ValueError when the workdir's run was trained with another config (keys
    outside `RESUMABLE_KEYS`). Returns `latest`'s metadata when that run already finished
    (`budget_iterations` reached, or stopped early) and needs nothing more (its report is there, or
    `report_expected` is False), after saying so; else None: go on.
    An explicit `resume_from` other than latest starts a new run from those params: never "finished".
    """
    if not holds_run(workdir):
        return None
    meta = latest_meta(workdir)
    saved = saved_config(workdir)
    if saved is None and meta is not None:
        saved = meta.get("config")
    if saved is not None:
        changed = [c for c in config_changes(saved, config, defaults) if c[0] not in RESUMABLE_KEYS]
        if changed:
            shown = ", ".join(f"{k} {_show(old)} -> {_show(new)}" for k, old, new in changed[:8])
            more = f" and {len(changed) - 8} more" if len(changed) > 8 else ""
            raise ValueError(
                f"{workdir} holds a run trained with another config ({shown}{more}; see its config.json), "
                f"so this run cannot resume it (a resume may change only {', '.join(RESUMABLE_KEYS)}): "
                f"pass --fresh_start to move the old run into {os.path.join(workdir, ARCHIVE_PREFIX)}"
                "<time>/, or another --workdir")
    if meta is None or resume_from not in (None, "latest"):
        return None
    done = int(meta.get("iteration", 0))
    early = meta.get("early_stopping") or {}
    stopped_early = int(early.get("patience", 0) or 0) > 0 and \
        int(early.get("bad_evals", 0)) >= int(early["patience"])
    if not stopped_early and done < budget_iterations:
        return None
    report = os.path.join(workdir, "report.md")
    if report_expected and not os.path.exists(report):
        log.info("%s finished iteration %d but has no report.md: writing it", workdir, done)
        return None
    of = f"of {budget_iterations}" if done <= budget_iterations else f"(the budget is {budget_iterations})"
    how = (f"stopped early at iteration {done} {of}, the validation composite without gain for "
           f"{early['patience']} evaluations" if stopped_early else f"already finished iteration {done} {of}")
    where = f"its report is {report}" if os.path.exists(report) else "it wrote no report"
    more = "" if stopped_early else ", or raise the budget to train on"
    log.warning("%s %s; %s (nothing ran: use --fresh_start to train again%s)", workdir, how, where, more)
    return meta

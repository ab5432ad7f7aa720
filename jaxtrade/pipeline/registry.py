"""The model registry: a directory of model artifacts plus one index, with integer and semantic
versions, aliases, tags, lineage, grades from held-out metrics only, and SHA-256 over every file.

    reg = Registry(root)                                   # root/index.json, root/<name>/v<k>/
    e = reg.register("ppo_sp500", artifact_dir, stage="rl", parents=("enc_sp500/v2",))
    e.ref, e.version, e.semver, e.grade, e.score           # "ppo_sp500/v3", 3, "1.1.0", "A-", 0.73
    reg.get("ppo_sp500/v3"); reg.get("ppo_sp500@champion"); reg.get("ppo_sp500@1.1.0"); reg.get("ppo_sp500")
    policy, spec = reg.load_model("ppo_sp500@champion")    # checksums first, then artifact.load_model
    reg.promote("ppo_sp500/v3", "champion")                # moves the alias from the version that had it
    reg.list(stage="rl", grade=">=B"); reg.verify()        # entries; a report over every entry

1. Layout. `root/index.json` (format "jaxtrade-registry/2"; a /1 index is read, and written back as /2
   by the next registration) lists every entry in registration order;
   `root/<name>/v<k>/` is the copy of the artifact registered as version k of <name> (integers from 1
   per name); `root/.lock` is the lock file. A stored version is never written again: a new version
   is a new directory. Aliases and tags live in the index only. Model names and aliases match
   [A-Za-z0-9_.-]+, do not start with "." and are not "index.json"; an alias is not a semantic version.
   A ref is "name/v<k>", "name@<alias>", "name@<semver>" or "name" (its latest version).
2. Register: hash every file of the source artifact, copy it into `root/.tmp-<id>/` (guarded by a
   flock on `root/.tmp-<id>.lock` while the registering process lives), hash the copy (it must equal
   the source), then, under an exclusive flock on root/.lock: allocate the next version, rename the
   copy to root/<name>/v<k>, rewrite index.json atomically (temporary file, flush + fsync, os.replace,
   fsync of the directory). Reads take no lock: index.json is only ever replaced whole. A process
   killed anywhere leaves index.json parseable and complete for every earlier entry. What a killed
   registration leaves behind is never listed: a temporary directory is removed by a later
   register; a version directory that never reached the index keeps its number (the next version
   skips it, and `verify` names it as an orphan).
3. Checks: `path`, `load_model`, `promote` and `verify` re-hash the stored files against the index.
   A modified (truncation included), missing or extra file is refused with `ChecksumError` (a
   ValueError) naming the entry and the file. Parents are refs of registered entries; each must
   exist and pass that check when the child is registered, else `RegistryError`. Parents are stored
   as name/v<k> (an alias is resolved at registration, so the lineage never moves).
4. Semantic versions: the first version of a name is 1.0.0; a later one is compared with the previous
   version of that name: the obs_spec or action_spec of spec.json differ -> major (X+1.0.0); else any
   other file differs (params, preprocessor) -> minor (X.Y+1.0); else (spec.json metadata only:
   metrics, dates, versions) -> patch (X.Y.Z+1).
5. Every entry carries two kinds of metrics, labelled: `selection`, measured on the data that chose
   the model (the validation split a best checkpoint, a search trial, a hybrid or an ensemble weight
   was picked on), and `held_out`, measured on data no choice has seen (the test split; for a
   walk-forward fold model, its fold's test window), each with its "split". By default both come
   from the artifact's spec.json (`jaxtrade.train.sources.metric_sources`). Grades come from the
   held-out metrics only: the best of many validation checkpoints of a model with no skill shows a
   positive validation Sharpe by selection alone. An entry without held-out metrics is registered
   ungraded (grade "ungraded", score None); `list` shows both kinds. `trials`: the overfitting
   summary of the trials behind the model (`jaxtrade.eval.overfitting`), when the caller gives it.
   Each metric of the stage's row
   of `GRADE_METRICS` (printed by `grading_table()`) is normalized as
   clip((v - poor) / (excellent - poor), 0, 1) (max drawdown as |v|); the score is the weighted mean
   over the table's metrics whose key is present in the entry's held-out metrics (weights renormalized
   over them), rounded to 9 decimals so that a metric exactly at a boundary is not pushed below it by
   float error. A metric present without a value (None or NaN: an undefined Sharpe) counts as 0, so a
   missing value can never raise a grade; an absent key is left out (an encoder reports R^2 or the
   directional accuracy's edge over the majority class, or both). No metric of the table at all:
   score 0, grade F ("no usable metrics" in `describe_grade`). Letters by score: `GRADES` (S >= 0.95,
   A+ >= 0.90, ..., D >= 0.20, F below).

       stage                  metric                poor   excellent   weight
       rl, hybrid, ensemble   sharpe                0.5    2.0         2
                              |max_drawdown|        0.30   0.05        1.5
                              annual_return         0.0    0.25        1
       pretrain               val_r2                     0.0    0.10        1
                              directional_accuracy_edge  0.0    0.10        1
   (the edge is the directional accuracy minus the majority class's share: "always up" scores 0)
6. Test hook (the only one): JAXTRADE_REGISTRY_TEST_PAUSE=<point>:<seconds>, point after_copy |
   after_rename, sleeps there inside `register` so a test can kill a registration mid-way.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime
import fcntl
import hashlib
import json
import logging
import math
import numbers
import os
import re
import shutil
import time
import uuid
from collections.abc import Mapping

from jaxtrade.train.sources import json_safe_tree, metric_sources

log = logging.getLogger("jaxtrade")

FORMAT = "jaxtrade-registry/2"
OLD_FORMATS = ("jaxtrade-registry/1",)
UNGRADED = "ungraded"
INDEX, LOCK, TMP = "index.json", ".lock", ".tmp-"
SPEC_FILE = "spec.json"                      # jaxtrade.train.artifact's spec file
STAGES = ("pretrain", "rl", "hybrid", "ensemble")
SPLITS = ("val", "test")
PAUSE_ENV = "JAXTRADE_REGISTRY_TEST_PAUSE"
_NAME = re.compile(r"[A-Za-z0-9_.-]+")
_SEMVER = re.compile(r"(\d+)\.(\d+)\.(\d+)")
_REF = re.compile(r"(?P<name>[^/@]+)(?:/v(?P<version>\d+)|@(?P<label>[^/@]+))?")
_VERSION_DIR = re.compile(r"v(\d+)")


class RegistryError(ValueError):
    """A refused registry operation; the message names the ref or file, the rule and what to do."""


class ChecksumError(RegistryError):
    """A stored artifact differs from what was registered. problems: ((relative path, "modified" |
    "missing" | "extra"), ...)."""

    def __init__(self, ref: str, path: str, problems):
        self.ref, self.path, self.problems = ref, path, tuple(problems)
        listed = "; ".join(f"{rel}: {kind}" for rel, kind in self.problems)
        super().__init__(f"{ref}: the stored artifact {path} fails its SHA-256 check ({listed}); it changed "
                         "after registration: restore the file(s) or register the model again")


# GRADES


@dataclasses.dataclass(frozen=True)
class GradeMetric:
    """One row of the grading table: `name` in an entry's metrics, normalized between poor (0) and
    excellent (1), weighted by `weight`; absolute: grade |value| (max drawdown is <= 0)."""

    name: str
    poor: float
    excellent: float
    weight: float
    absolute: bool = False

    def normalize(self, value) -> float:
        """clip((v - poor) / (excellent - poor), 0, 1); None or NaN -> 0."""
        if value is None or not math.isfinite(float(value)):
            return 0.0
        v = abs(float(value)) if self.absolute else float(value)
        return min(max((v - self.poor) / (self.excellent - self.poor), 0.0), 1.0)


_POLICY_METRICS = (GradeMetric("sharpe", 0.5, 2.0, 2.0),
                   GradeMetric("max_drawdown", 0.30, 0.05, 1.5, absolute=True),
                   GradeMetric("annual_return", 0.0, 0.25, 1.0))
GRADE_METRICS = {"pretrain": (GradeMetric("val_r2", 0.0, 0.10, 1.0),
                              GradeMetric("directional_accuracy_edge", 0.0, 0.10, 1.0)),
                 "rl": _POLICY_METRICS, "hybrid": _POLICY_METRICS, "ensemble": _POLICY_METRICS}
GRADES = (("S", 0.95), ("A+", 0.90), ("A", 0.80), ("A-", 0.70), ("B+", 0.60), ("B", 0.50), ("B-", 0.40),
          ("C", 0.30), ("D", 0.20))              # (letter, lowest score); below the last: F
LETTERS = tuple(g for g, _ in GRADES) + ("F",)   # best first


def letter_of(score: float) -> str:
    """The grade letter of a score in [0, 1]: the first of `GRADES` whose threshold it reaches."""
    return next((g for g, threshold in GRADES if score >= threshold), "F")


def grade_parts(metrics: Mapping, stage: str) -> list[tuple[str, float, float]]:
    """(metric, normalized value, weight) for each metric of `stage`'s table present in `metrics`."""
    _check_stage(stage, "grade")
    return [(m.name, m.normalize(metrics[m.name]), m.weight) for m in GRADE_METRICS[stage]
            if m.name in metrics]


def grade(metrics: Mapping, stage: str = "rl") -> tuple[str, float]:
    """(letter, score) of out-of-sample `metrics` for a model of `stage` (module docstring, step 5)."""
    parts = grade_parts(metrics, stage)
    if not parts:
        return "F", 0.0
    score = round(sum(n * w for _, n, w in parts) / sum(w for _, _, w in parts), 9)
    return letter_of(score), score


def describe_grade(metrics: Mapping, stage: str) -> list[str]:
    """Lines explaining a grade: each graded metric's value, normalized value and weight."""
    table = {m.name: m for m in GRADE_METRICS[stage]}
    parts = grade_parts(metrics, stage)
    if not any(metrics[k] is not None for k, _, _ in parts):
        return [f"no usable metrics (none of {', '.join(table)} has a value): graded F with score 0"]
    return [f"{k} = {metrics[k]}: normalized {n:.3f} (poor {table[k].poor}, excellent {table[k].excellent}"
            f"{', as |value|' if table[k].absolute else ''}), weight {w:g}" for k, n, w in parts]


def grading_table() -> str:
    """The grading rules as markdown (for the README and `--help`)."""
    lines = ["| stage | metric | poor (0) | excellent (1) | weight |", "| --- | --- | --- | --- | --- |"]
    for stage, metrics in GRADE_METRICS.items():
        lines += [f"| {stage} | {f'abs({m.name})' if m.absolute else m.name} | {m.poor:g} | "
                  f"{m.excellent:g} | {m.weight:g} |" for m in metrics]
    letters = ", ".join(f"{g} >= {t:.2f}" for g, t in GRADES)
    return "\n".join(lines) + f"\n\nGrades by score: {letters}, F below.\n"


# ENTRIES


@dataclasses.dataclass(frozen=True)
class Entry:
    """One registered version. path: absolute path of the stored artifact; files: {relative path:
    SHA-256} at registration; parents: refs name/v<k>; created: UTC ISO time; source: where the
    artifact was copied from."""

    name: str
    version: int
    semver: str
    stage: str
    path: str
    created: str
    selection: dict            # metrics on the data that chose the model, with their "split"
    held_out: dict             # metrics on data no choice has seen ({} when none): the grade's only input
    score: float | None        # None: ungraded (no held-out metrics)
    grade: str
    parents: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    aliases: tuple[str, ...] = ()
    description: str = ""
    files: dict = dataclasses.field(default_factory=dict)
    source: str = ""
    agent: str = ""            # the algorithm of the artifact (its spec's agent: ppo, dqn, ensemble, ...)
    trials: dict = dataclasses.field(default_factory=dict)   # overfitting summary of the trials behind it

    @property
    def ref(self) -> str:
        return f"{self.name}/v{self.version}"

    def to_json(self) -> dict:
        d = dataclasses.asdict(self)
        d.update(path=f"{self.name}/v{self.version}", parents=list(self.parents), tags=list(self.tags),
                 aliases=list(self.aliases))
        return d

    @property
    def graded(self) -> bool:
        return self.grade != UNGRADED

    @classmethod
    def from_json(cls, d: dict, root: str) -> Entry:
        if "metrics" in d:        # a jaxtrade-registry/1 entry: one metrics dict graded on its split
            d = dict(d)
            old, split = dict(d.pop("metrics") or {}), d.pop("metrics_split", None)
            old.setdefault("split", split)
            d["selection"], d["held_out"] = ({}, old) if split == "test" else (old, {})
            if split != "test":   # graded on the data that chose it: not a grade under /2
                d["grade"], d["score"] = UNGRADED, None
        fields = {f.name for f in dataclasses.fields(cls)}
        d = {k: v for k, v in d.items() if k in fields}
        return cls(**dict(d, path=os.path.join(root, *d["path"].split("/")), parents=tuple(d["parents"]),
                          tags=tuple(d["tags"]), aliases=tuple(d["aliases"])))


@dataclasses.dataclass(frozen=True)
class VerifyReport:
    """checked: refs verified; failures: {ref: message}; orphans: version directories not in the index
    (left by a registration that was killed; never listed, reported only)."""

    checked: tuple[str, ...]
    failures: dict
    orphans: tuple[str, ...] = ()

    @property
    def ok(self) -> bool:
        return not self.failures


def hash_tree(directory: str) -> dict[str, str]:
    """{path relative to `directory` ('/'-separated): SHA-256 hex} of every file under it."""
    out = {}
    for here, dirs, names in os.walk(directory, followlinks=True):   # as copytree copies links
        dirs.sort()
        for n in sorted(names):
            full = os.path.join(here, n)
            h = hashlib.sha256()
            with open(full, "rb") as f:
                for block in iter(lambda f=f: f.read(1 << 20), b""):
                    h.update(block)
            out[os.path.relpath(full, directory).replace(os.sep, "/")] = h.hexdigest()
    return out


def compare_files(expected: Mapping, found: Mapping) -> list[tuple[str, str]]:
    """(relative path, "modified" | "missing" | "extra") for every difference, sorted by path."""
    problems = [(k, "missing" if k not in found else "modified") for k in expected
                if found.get(k) != expected[k]]
    return sorted(problems + [(k, "extra") for k in found if k not in expected])


# THE REGISTRY


class Registry:
    """The registry in directory `root` (created by the first `register`; see the module docstring)."""

    def __init__(self, root: str):
        self.root = os.path.abspath(os.fspath(root))
        self.index_path = os.path.join(self.root, INDEX)

    # READ
    def entries(self) -> list[Entry]:
        """Every entry, in registration order (no lock: index.json is replaced whole)."""
        if not os.path.exists(self.index_path):
            return []
        try:
            with open(self.index_path, encoding="utf-8") as f:
                d = json.load(f)
        except (OSError, json.JSONDecodeError) as e:
            raise RegistryError(f"{self.index_path} cannot be read ({e}); restore it from a backup") from e
        if not isinstance(d, dict) or d.get("format") not in (FORMAT, *OLD_FORMATS):
            raise RegistryError(f"{self.index_path} is not a {FORMAT} index")
        return [Entry.from_json(x, self.root) for x in d["entries"]]

    def get(self, ref: str) -> Entry:
        """The entry of `ref`: name/v<k>, name@<alias>, name@<semver> or name (the latest version)."""
        return self._resolve(self.entries(), ref)

    def list(self, name: str | None = None, stage: str | None = None, grade: str | None = None,
             alias: str | None = None) -> list[Entry]:
        """Entries matching every filter given. grade: a letter ("A-": exactly) or ">=<letter>" (that
        or better)."""
        if stage is not None:
            _check_stage(stage, "list")
        keep = _grade_filter(grade)
        return [e for e in self.entries() if (name is None or e.name == name)
                and (stage is None or e.stage == stage) and keep(e.grade)
                and (alias is None or alias in e.aliases)]

    def check(self, ref) -> Entry:
        """The entry of `ref` (a ref or an Entry) after checking every stored file's SHA-256; raises
        ChecksumError naming the modified, missing or extra files."""
        e = ref if isinstance(ref, Entry) else self.get(ref)
        problems = compare_files(e.files, hash_tree(e.path) if os.path.isdir(e.path) else {})
        if problems:
            raise ChecksumError(e.ref, e.path, problems)
        return e

    def path(self, ref: str) -> str:
        """The verified artifact directory of `ref`."""
        return self.check(ref).path

    def load_model(self, ref: str, *, deterministic: bool = True):
        """(Policy, ModelSpec) of `ref`'s verified artifact (`jaxtrade.train.artifact.load_model`)."""
        from jaxtrade.train import artifact as artifact_lib

        return artifact_lib.load_model(self.path(ref), deterministic=deterministic)

    def verify(self, ref: str | None = None) -> VerifyReport:
        """Checks `ref` (default: every entry); never raises for a failed check, reports it."""
        every = self.entries()
        entries = every if ref is None else [self._resolve(every, ref)]
        failures = {}
        for e in entries:
            try:
                self.check(e)
            except ChecksumError as err:
                failures[e.ref] = str(err)
        orphans = self._orphans(every) if ref is None else ()
        return VerifyReport(tuple(e.ref for e in entries), failures, orphans)

    # WRITE
    def register(self, name: str, artifact_dir: str, *, stage: str, parents=(),
                 metrics: Mapping | None = None, metrics_split: str | None = None,
                 held_out: Mapping | None = None, trials: Mapping | None = None, tags=(), aliases=(),
                 description: str = "") -> Entry:
        """Copies the artifact in `artifact_dir` into the registry as the next version of `name`.

        stage: one of STAGES. parents: refs of registered entries this model was built from.
        Metrics (module docstring, step 5): by default the artifact's spec.json selection and held-out
        metrics. held_out: held-out metrics to grade, with their "split" (overrides the spec's).
        metrics + metrics_split: one dict from one split: "val" (the data that chose the model) is
        recorded as selection, "test" as held-out (metrics_split default: metrics["split"]).
        trials: the overfitting summary of the trials behind the model (default: the spec's).
        aliases: set on the new version (moved from the version of `name` that had them). Returns the
        new Entry."""
        _check_name(name, "model name")
        _check_stage(stage, f"register {name}")
        aliases = tuple(_check_name(a, "alias", alias=True) for a in _strings(aliases))
        src = os.path.abspath(os.fspath(artifact_dir))
        spec = _read_spec(src)
        where = f"{name} ({src})"
        selection, stored = metric_sources(spec.get("metrics"))
        raw = spec.get("metrics") or {}
        if metrics is None and metrics_split is not None and not {"selection", "held_out"} & set(raw):
            metrics = raw             # an earlier artifact's flat metrics, from the split the caller names
            selection, stored = {}, {}
        if metrics is not None:
            split = metrics.get("split") if metrics_split is None else metrics_split
            if split not in SPLITS:
                raise RegistryError(f"metrics_split of {where} is {split!r}: it must be one of {SPLITS} (the "
                                    "split the metrics come from: val = selection, test = held-out); pass "
                                    "metrics_split=")
            if split == "test":
                stored = dict(metrics, split=split)
            else:
                selection = dict(metrics, split=split)
        if held_out is not None:
            stored = dict(held_out)
            if not stored.get("split"):
                raise RegistryError(f"held-out metrics of {where} need their 'split' (test, or the "
                                    "walk-forward fold's test window)")
        selection = _clean_metrics(selection, stage, where + " selection metrics")
        stored = _clean_metrics(stored, stage, where + " held-out metrics")
        letter, score = grade(stored, stage) if stored else (UNGRADED, None)
        trials = json_safe_tree(dict(trials or raw.get("trials") or {}))
        parent_refs = tuple(self._checked_parent(p, name) for p in _strings(parents))
        files = hash_tree(src)
        os.makedirs(self.root, exist_ok=True)
        with self._staging() as tmp:
            shutil.copytree(src, tmp)
            _fsync_tree(tmp)
            if hash_tree(tmp) != files:
                raise RegistryError(f"{src} changed while it was being copied into the registry: register it "
                                    "again once nothing writes to it")
            _pause("after_copy")
            with self._locked():
                self._remove_leftovers()
                entries = self.entries()
                same = [e for e in entries if e.name == name]
                version = self._next_version(name, same)
                prev = max(same, key=lambda e: e.version) if same else None
                entry = Entry(name=name, version=version, semver=_next_semver(prev, spec, files), stage=stage,
                              path=os.path.join(self.root, name, f"v{version}"), created=_now(),
                              selection=selection, held_out=stored, score=score, grade=letter,
                              parents=parent_refs, tags=tuple(_strings(tags)), aliases=aliases,
                              description=str(description), files=files, source=src,
                              agent=str(spec.get("agent") or ""), trials=trials)
                os.makedirs(os.path.dirname(entry.path), exist_ok=True)
                os.rename(tmp, entry.path)
                _fsync_dir(os.path.dirname(entry.path))
                _pause("after_rename")
                self._write([_without(e, aliases) if e.name == name else e for e in entries] + [entry])
        log.info("registered %s (%s, %s, grade %s%s)", entry.ref, entry.semver, stage, letter,
                 f", score {score:.3f} on held-out {stored.get('split')}" if score is not None
                 else ": no held-out metrics, so no grade")
        return entry

    def promote(self, ref: str, alias: str) -> Entry:
        """Gives `alias` (e.g. "champion") to the verified entry of `ref`, taking it from the other
        version of that name that had it. Index only; returns the updated entry."""
        _check_name(alias, "alias", alias=True)
        with self._locked():
            entries = self.entries()
            target = self.check(self._resolve(entries, ref))
            entries = [dataclasses.replace(e, aliases=e.aliases + (alias,)) if e.ref == target.ref
                       else _without(e, (alias,)) if e.name == target.name else e for e in entries]
            self._write(entries)
        log.info("%s is now %s@%s", target.ref, target.name, alias)
        return self._resolve(entries, target.ref)

    def tag(self, ref: str, add=(), remove=()) -> Entry:
        """Adds and removes free-form tags of `ref`'s entry (index only); returns the updated entry."""
        add, remove = tuple(_strings(add)), set(_strings(remove))
        with self._locked():
            entries = self.entries()
            target = self._resolve(entries, ref)
            tags = tuple(dict.fromkeys(t for t in target.tags + add if t not in remove))
            entries = [dataclasses.replace(e, tags=tags) if e.ref == target.ref else e for e in entries]
            self._write(entries)
        return self._resolve(entries, target.ref)

    # INTERNALS
    def _resolve(self, entries: list[Entry], ref: str) -> Entry:
        m = _REF.fullmatch(str(ref))
        if not m:
            raise RegistryError(f"{ref!r} is not a registry ref: use name/v<k>, name@<alias>, name@<semver> "
                                "or name (its latest version)")
        name, version, label = m["name"], m["version"], m["label"]
        same = sorted((e for e in entries if e.name == name), key=lambda e: e.version)
        if not same:
            known = ", ".join(sorted({e.name for e in entries})) or "none"
            raise RegistryError(f"no model named {name!r} in {self.index_path} (models: {known})")
        if version is not None:
            found = [e for e in same if e.version == int(version)]
        elif label is not None:
            by_semver = bool(_SEMVER.fullmatch(label))
            found = [e for e in same if (e.semver == label if by_semver else label in e.aliases)]
        else:
            found = same
        if not found:
            choices = ", ".join(e.ref + "".join(f" @{a}" for a in e.aliases) + f" ({e.semver})" for e in same)
            raise RegistryError(f"{ref!r} is not in {self.index_path}; {name} has: {choices}")
        return found[-1]

    def _checked_parent(self, ref: str, child: str) -> str:
        try:
            return self.check(ref).ref
        except ChecksumError as e:
            listed = ", ".join(f"{p}: {k}" for p, k in e.problems)
            raise RegistryError(f"parent {ref!r} of {child} fails its checksum ({listed} in {e.path}): "
                                f"restore it or register {child} with a sound parent") from e
        except RegistryError as e:
            raise RegistryError(f"parent {ref!r} of {child} is not registered: {e}") from e

    def _next_version(self, name: str, same: list[Entry]) -> int:
        top = max((e.version for e in same), default=0)
        folder = os.path.join(self.root, name)
        on_disk = [int(m[1]) for n in (os.listdir(folder) if os.path.isdir(folder) else ())
                   if (m := _VERSION_DIR.fullmatch(n))]
        if max(on_disk, default=0) > top:
            log.warning("%s/v%d is not in %s (a registration that did not finish); the next version skips it",
                        name, max(on_disk), self.index_path)
        return max([top, *on_disk]) + 1

    def _orphans(self, entries: list[Entry]) -> tuple[str, ...]:
        known = {e.ref for e in entries}
        out = []
        for name in sorted(os.listdir(self.root)) if os.path.isdir(self.root) else ():
            folder = os.path.join(self.root, name)
            if name.startswith(".") or not os.path.isdir(folder):
                continue
            out += [f"{name}/{n}" for n in sorted(os.listdir(folder))
                    if _VERSION_DIR.fullmatch(n) and f"{name}/{n}" not in known]
        return tuple(out)

    def _write(self, entries: list[Entry]) -> None:
        """index.json replaced atomically (call under the lock)."""
        tmp = os.path.join(self.root, f"{TMP}index-{uuid.uuid4().hex}.json")
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump({"format": FORMAT, "entries": [e.to_json() for e in entries]}, f, indent=1,
                      allow_nan=False)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self.index_path)
        _fsync_dir(self.root)

    @contextlib.contextmanager
    def _locked(self):
        os.makedirs(self.root, exist_ok=True)
        with open(os.path.join(self.root, LOCK), "a") as f:
            fcntl.flock(f, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(f, fcntl.LOCK_UN)

    @contextlib.contextmanager
    def _staging(self):
        """A fresh root/.tmp-<id> path (not created), flock-guarded by root/.tmp-<id>.lock while we live;
        removed (if still there) on the way out."""
        while True:
            tmp = os.path.join(self.root, f"{TMP}{uuid.uuid4().hex}")
            fd = os.open(tmp + ".lock", os.O_CREAT | os.O_EXCL | os.O_WRONLY, 0o644)
            fcntl.flock(fd, fcntl.LOCK_EX)
            with contextlib.suppress(FileNotFoundError):   # a cleaner may take it between open and flock
                if os.stat(tmp + ".lock").st_ino == os.fstat(fd).st_ino:
                    break
            os.close(fd)
        try:
            yield tmp
        finally:
            shutil.rmtree(tmp, ignore_errors=True)       # gone already once renamed into place
            with contextlib.suppress(FileNotFoundError):
                os.remove(tmp + ".lock")
            os.close(fd)

    def _remove_leftovers(self) -> None:
        """Temporary directories of registrations whose process died, and stray index temp files
        (call under the lock)."""
        for n in os.listdir(self.root):
            p = os.path.join(self.root, n)
            if not n.startswith(TMP):
                continue
            if n.endswith(".lock"):
                if not _held(p):
                    shutil.rmtree(p[:-len(".lock")], ignore_errors=True)
                    with contextlib.suppress(FileNotFoundError):
                        os.remove(p)
            elif n.startswith(f"{TMP}index-"):             # only ever written under the lock we hold
                with contextlib.suppress(FileNotFoundError):
                    os.remove(p)
            elif not os.path.exists(p + ".lock"):           # its owner always creates the lock first
                shutil.rmtree(p, ignore_errors=True)


# BENCHMARK


# (metric, column, as a percentage): the `list` table's key metrics (RL agents, then encoders)
LIST_METRICS = (("sharpe", "sharpe", False), ("max_drawdown", "max_dd", True),
                ("annual_return", "ann_ret", True), ("val_r2", "val_r2", False),
                ("directional_accuracy_edge", "dir_edge", True))
# `list` shows both kinds of metrics, labelled: held-out (graded) and selection (what chose the model).
LIST_SOURCES = (("held_out", "held-out"), ("selection", "selection"))


def text_table(rows: list[dict]) -> str:
    """Rows of strings as an aligned text table (columns in the first row's order)."""
    if not rows:
        return ""
    cols = list(rows[0])
    width = {c: max(len(c), *(len(r[c]) for r in rows)) for c in cols}
    line = lambda r: "  ".join(str(r[c]).ljust(width[c]) for c in cols).rstrip()
    return "\n".join([line({c: c for c in cols}), *map(line, rows)])


def format_metric(metrics: Mapping, key: str, pct: bool) -> str:
    """One metric for a table: "" where absent, "n/a" where undefined, else 3 decimals or a percentage."""
    if key not in metrics:
        return ""
    v = metrics[key]
    return "n/a" if v is None else (f"{100 * v:.1f}%" if pct else f"{v:.3f}")


def list_rows(entries) -> list[dict]:
    """The `list` table's rows (id, version, grade, created, key metrics of both kinds, labelled
    "<metric>(held-out)" and "<metric>(selection)", lineage); metric columns that no entry has are left
    out."""
    rows = []
    for e in entries:
        row = dict(ref=e.ref, semver=e.semver, stage=e.stage, agent=e.agent or "-", grade=e.grade,
                   score="-" if e.score is None else f"{e.score:.3f}",
                   created=e.created[:16].replace("T", " "),
                   held_out_split=str(e.held_out.get("split") or "-"))
        for source, word in LIST_SOURCES:
            metrics = getattr(e, source)
            row.update({f"{label}({word})": format_metric(metrics, k, pct) for k, label, pct in LIST_METRICS})
        row.update(aliases=",".join(e.aliases), parents=",".join(e.parents))
        rows.append(row)
    metric_cols = [f"{label}({word})" for _, word in LIST_SOURCES for _, label, _ in LIST_METRICS]
    empty = [c for c in metric_cols if not any(r[c] for r in rows)]
    return [{k: v for k, v in r.items() if k not in empty} for r in rows]


def benchmark(registry: Registry, refs=(), *, split: str = "val", baselines: bool = True) -> list[dict]:
    """Backtests models of the registry on one split of their own data (deterministic, whole split, the
    artifact's env and costs; `jaxtrade.train.evaluation.split_of`, `jaxtrade.eval.backtest`), then the
    baselines of that split in the same world (`baseline_rows`).

    refs: default every entry with a policy (stage not pretrain). Returns one row per model: kind "model",
    ref, grade (as registered), split_grade (the grade these metrics would give; only a test split is
    held-out), split, period (its first .. last traded date), sharpe, annual_return, max_drawdown,
    turnover, and the other `evaluation.validation_metrics`; then, with `baselines`, one row per baseline
    (kind "baseline", ref "baseline:<name>", grade "-") for each distinct world of the models (data, split
    dates, env config: costs and gate), run in the first such model's env."""
    from jaxtrade.train.setup import load_market_data

    if split not in SPLITS:
        raise RegistryError(f"benchmark split {split!r}: must be one of {SPLITS}")
    entries = [registry.get(r) for r in refs] or [e for e in registry.entries() if e.stage != "pretrain"]
    markets, worlds, rows = {}, {}, []
    for e in entries:
        if e.stage == "pretrain":
            raise RegistryError(f"{e.ref} is a pretrained encoder (stage pretrain): it has no policy to "
                                "backtest; give refs of rl, hybrid or ensemble entries")
        policy, spec = registry.load_model(e.ref)
        source = json.dumps({k: spec.data.get(k) for k in ("dataset", "csv_path", "csv_options")},
                            sort_keys=True, default=str)
        if source not in markets:
            markets[source] = load_market_data(spec.data)
        m = _split_backtest(policy, spec, split, markets[source])
        rows.append(dict(kind="model", ref=e.ref, grade=e.grade, split_grade=grade(m, e.stage)[0], **m))
        world = json.dumps([source, spec.data.get(split), spec.env], sort_keys=True, default=str)
        worlds.setdefault(world, (spec, markets[source], e.ref))
    if baselines:
        for spec, market, ref in worlds.values():
            where = f" [{ref}'s env]" if len(worlds) > 1 else ""
            rows += [dict(r, ref=r["ref"] + where) for r in baseline_rows(spec, split, market=market)]
    return rows


def _split_backtest(policy, spec, split: str, market) -> dict:
    """`evaluation.split_metrics` of `policy` backtested over the whole of `split` of spec's data."""
    from jaxtrade import eval as evaluate
    from jaxtrade.train import evaluation
    from jaxtrade.train.setup import make_split_env

    _, data_split = evaluation.split_of(spec, split, market=market)
    env, params = make_split_env(spec.env, data_split)
    frame = evaluate.backtest(policy, env, params, dates=data_split.dates, symbols=data_split.symbols)
    return evaluation.split_metrics(frame, split)


def baseline_rows(spec, split: str, *, market=None) -> list[dict]:
    """The baselines of `split` of a model's data in the model's own world (its env, costs and turbulence
    gate; `jaxtrade.eval.baselines`, the minimum-variance warm-up from the rows before the split): one row
    per baseline, kind "baseline", ref "baseline:<name>", label (the report's name), grade "-",
    split_grade (the grade its metrics would give an rl model), split, period and
    `evaluation.validation_metrics`; a baseline of several seeds (random) is the mean over its seeds."""
    from jaxtrade import eval as evaluate
    from jaxtrade.train import evaluation
    from jaxtrade.train.setup import load_market_data, make_split_env

    market = load_market_data(spec.data) if market is None else market
    _, data_split = evaluation.split_of(spec, split, market=market)
    env, params = make_split_env(spec.env, data_split)
    history = evaluation.baseline_history(market, data_split)
    rows = []
    for name, frames in evaluate.baselines(env, params, data_split, history=history).items():
        each = [evaluation.split_metrics(f, split) for f in frames]
        m = {k: (each[0][k] if k in ("split", "period") else _mean([x[k] for x in each])) for k in each[0]}
        label = frames[0].attrs.get("label", name) + (f" (mean of {len(frames)} seeds)" if len(frames) > 1
                                                      else "")
        rows.append(dict(kind="baseline", ref=f"baseline:{name}", label=label, grade="-",
                         split_grade=grade(m, "rl")[0], **m))
    return rows


def _mean(values) -> float | None:
    """The mean of the values that are defined (None: none is)."""
    ok = [float(v) for v in values if v is not None and math.isfinite(float(v))]
    return sum(ok) / len(ok) if ok else None


# HELPERS


def _check_name(name, what: str, *, alias: bool = False) -> str:
    if not isinstance(name, str) or not _NAME.fullmatch(name) or name.startswith(".") or name == INDEX:
        raise RegistryError(f"{what} {name!r}: use letters, digits, '_', '.' and '-' only ([A-Za-z0-9_.-]+), "
                            "not starting with '.' and not 'index.json'")
    if alias and (_SEMVER.fullmatch(name) or _VERSION_DIR.fullmatch(name)):
        raise RegistryError(f"alias {name!r} looks like a version: name@{name} would be ambiguous; choose "
                            "a word such as champion or challenger")
    return name


def _check_stage(stage, where: str) -> None:
    if stage not in STAGES:
        raise RegistryError(f"{where}: stage {stage!r} must be one of {STAGES}")


def _grade_filter(spec: str | None):
    if spec is None:
        return lambda g: True
    letter = spec[2:] if spec.startswith(">=") else spec
    if letter not in LETTERS and spec != UNGRADED:
        raise RegistryError(f"grade filter {spec!r}: use a letter of {LETTERS}, >=<letter> or {UNGRADED!r}")
    if spec.startswith(">="):
        return lambda g: g in LETTERS and LETTERS.index(g) <= LETTERS.index(letter)
    return lambda g: g == letter


def _strings(values) -> list[str]:
    """A str is one value, not a sequence of characters."""
    return [values] if isinstance(values, str) else [str(v) for v in values]


def _read_spec(src: str) -> dict:
    path = os.path.join(src, SPEC_FILE)
    if not os.path.isfile(path):
        raise RegistryError(f"{src} is not a model artifact: it has no {SPEC_FILE} (give a directory "
                            "written by artifact.save_model, e.g. <workdir>/checkpoints/best_composite)")
    try:
        with open(path, encoding="utf-8") as f:
            spec = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise RegistryError(f"{path} cannot be read as JSON ({e})") from e
    if not isinstance(spec, dict):
        raise RegistryError(f"{path} is not a JSON object")
    return spec


def _clean_metrics(metrics, stage: str, where: str) -> dict:
    """JSON-safe metrics: numbers as int/float (NaN, inf -> None); strings, bools, None and (ungraded)
    nested records such as hyperparameters kept. The stage's graded metrics must be numbers or None."""
    if not isinstance(metrics, Mapping):
        raise RegistryError(f"metrics of {where} must be a dict of name -> number, got "
                            f"{type(metrics).__name__}")
    graded = {m.name for m in GRADE_METRICS[stage]}
    out = {}
    for k, v in metrics.items():
        if isinstance(v, (Mapping, list, tuple)) and k not in graded:   # e.g. a model's hyperparameters
            out[str(k)] = json_safe_tree(dict(v) if isinstance(v, Mapping) else list(v))
            continue
        if v is None or isinstance(v, (str, bool)):
            if k in graded and v is not None:
                raise RegistryError(f"metric {k!r} of {where} is {v!r}: a graded metric must be a number "
                                    "or None")
            out[str(k)] = v
            continue
        if isinstance(v, numbers.Integral):
            out[str(k)] = int(v)
            continue
        try:
            f = float(v)
        except (TypeError, ValueError) as e:
            raise RegistryError(f"metric {k!r} of {where} is {v!r}: not a number") from e
        out[str(k)] = f if math.isfinite(f) else None
    return out


def _next_semver(prev: Entry | None, spec: dict, files: dict) -> str:
    if prev is None:
        return "1.0.0"
    major, minor, patch = (int(x) for x in _SEMVER.fullmatch(prev.semver).groups())
    try:
        with open(os.path.join(prev.path, SPEC_FILE), encoding="utf-8") as f:
            old = json.load(f)
    except (OSError, json.JSONDecodeError) as e:
        raise RegistryError(f"{prev.ref}: its stored {SPEC_FILE} cannot be read ({e}); run verify") from e
    if any(old.get(k) != spec.get(k) for k in ("obs_spec", "action_spec")):
        return f"{major + 1}.0.0"
    others = lambda fs: {k: v for k, v in fs.items() if k != SPEC_FILE}
    if others(prev.files) != others(files):
        return f"{major}.{minor + 1}.0"
    return f"{major}.{minor}.{patch + 1}"


def _without(e: Entry, aliases) -> Entry:
    return dataclasses.replace(e, aliases=tuple(a for a in e.aliases if a not in aliases))


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def _held(lock_path: str) -> bool:
    """Whether a live process holds the flock of `lock_path`."""
    try:
        fd = os.open(lock_path, os.O_RDONLY)
    except FileNotFoundError:
        return False
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        return False
    except BlockingIOError:
        return True
    finally:
        os.close(fd)


def _fsync_dir(path: str) -> None:
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _fsync_tree(directory: str) -> None:
    """The copy's files and folders on disk before it is renamed into place (power loss, not only kill)."""
    for here, _, names in os.walk(directory):
        for n in names:
            fd = os.open(os.path.join(here, n), os.O_RDONLY)
            try:
                os.fsync(fd)
            finally:
                os.close(fd)
        _fsync_dir(here)


def _pause(point: str) -> None:
    """The test hook of module docstring step 6."""
    at, _, seconds = os.environ.get(PAUSE_ENV, "").partition(":")
    if at == point:
        time.sleep(float(seconds))

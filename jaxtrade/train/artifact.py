"""Model artifacts: everything needed to backtest, ensemble or trade a trained model, and nothing else.

    save_model(directory, params, spec)      # atomic: a crash leaves the previous artifact readable
    policy, spec = load_model(directory)     # no config file, no `setup.build`

Layout of an artifact directory:

    spec.json            ModelSpec without the Preprocessor (JSON: model config, specs, env config,
                         data source and split dates, fingerprint, code and library versions, machine,
                         metrics)
    params.npz           the network parameters, one array per '/'-joined parameter path
    preprocessor/        the fitted `jaxtrade.data.Preprocessor` (JSON + arrays)
    members/<k>/         an ensemble's (agent "ensemble") member artifacts, complete copies

No pickle anywhere: arrays are `.npz` read with `allow_pickle=False`, everything else is JSON.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import logging
import os
import platform
import re
import shutil
import subprocess
import uuid
from typing import Any

import jax
import numpy as np

from jaxtrade.agents import ensemble
from jaxtrade.agents import registry as agent_registry
from jaxtrade.data import Preprocessor
from jaxtrade.envs.base import (
    ActionSpec,
    ObsSpec,
    Policy,
    action_spec_from_json,
    obs_spec_from_json,
)
from jaxtrade.train.sources import HELD_OUT, SELECTION, TRIALS, json_safe_tree, metric_sources

log = logging.getLogger("jaxtrade")

FORMAT = "jaxtrade-model/1"
_SPEC, _PARAMS, _PRE = "spec.json", "params.npz", "preprocessor"
ENSEMBLE_MEMBERS = "members"     # an ensemble artifact's member artifacts: members/<k>/


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """What a model is, where it came from and how it did.

    agent: which agent family rebuilds the policy ("ppo"). model: the model config (plain dict).
    action_spec, obs_spec: the env's specs the model was built for. env: the nested env config
    (name, window, costs, reward, ...) the model was trained and validated with. data: the data
    source (dataset or csv_path and csv_options) and split dates (train, val, test).
    preprocessor: fitted on the training split only. data_fingerprint: SHA-256 of the training data.
    code_version: git SHA (+ "-dirty") or "unknown"; versions: jax, jaxlib, flax, optax, numpy,
    python; machine: platform, device kind, CPU model, device count. metrics: where every number comes
    from, `{"selection": {...}, "held_out": {...}}` (`metric_sources`): selection, the metrics on the
    data that chose the model (validation: iteration, the metric it was selected by, "split": "val");
    held_out, metrics on data no choice has seen ("split": "test", or a walk-forward fold's test
    window), added when it is evaluated there (`add_held_out`); trials, the overfitting summary of the
    trials it was chosen among (`add_trials`). created: UTC ISO time. seed.
    """

    agent: str
    model: dict
    action_spec: ActionSpec
    obs_spec: ObsSpec
    env: dict
    data: dict
    preprocessor: Preprocessor
    data_fingerprint: str
    code_version: str = "unknown"
    versions: dict = dataclasses.field(default_factory=dict)
    machine: dict = dataclasses.field(default_factory=dict)
    metrics: dict = dataclasses.field(default_factory=dict)
    created: str = ""
    seed: int | None = None

    def to_json(self) -> dict:
        return {"format": FORMAT, "agent": self.agent, "model": self.model,
                "action_spec": self.action_spec.to_json(), "obs_spec": self.obs_spec.to_json(),
                "env": self.env, "data": self.data, **_provenance_json(self)}

    @classmethod
    def from_json(cls, d: dict, preprocessor: Preprocessor) -> ModelSpec:
        if d.get("format") != FORMAT:
            raise ValueError(f"not a {FORMAT} artifact (format {d.get('format')!r})")
        return cls(agent=d["agent"], model=d["model"], action_spec=action_spec_from_json(d["action_spec"]),
                   obs_spec=obs_spec_from_json(d["obs_spec"]), env=d["env"], data=d["data"],
                   preprocessor=preprocessor, **_provenance_of(d))

    def replace(self, **changes) -> ModelSpec:
        return dataclasses.replace(self, **changes)


def add_held_out(directory: str, held_out: dict) -> ModelSpec:
    """Records `held_out` metrics (with their "split") in the spec.json of the artifact in `directory`,
    beside its selection metrics; returns the updated spec. Only data no choice has seen belongs here."""
    if held_out.get("split") is None:
        raise ValueError(f"held-out metrics for {directory} need their 'split' (test, or the fold's window)")
    return _update_metrics(directory, HELD_OUT, dict(held_out))


def add_trials(directory: str, summary: dict) -> ModelSpec:
    """Records the overfitting summary of the trials the model in `directory` was chosen among
    (`jaxtrade.train.trials`) in its spec's metrics as "trials"; returns the updated spec."""
    return _update_metrics(directory, TRIALS, dict(summary))


def _update_metrics(directory: str, key: str, value: dict) -> ModelSpec:
    directory, d = _read_spec(directory, "a model artifact")
    selection, held_out = metric_sources(d.get("metrics"))
    trials = dict((d.get("metrics") or {}).get(TRIALS) or {})
    metrics = {SELECTION: selection, HELD_OUT: held_out, TRIALS: trials}
    metrics[key] = value
    d["metrics"] = json_safe_tree({k: v for k, v in metrics.items() if v or k == SELECTION})
    write_json_atomic(os.path.join(directory, _SPEC), d)
    return load_spec(directory)


def _provenance_json(spec) -> dict:
    """The fields ModelSpec and EncoderSpec share (where the artifact came from, how it did) as JSON."""
    return {"data_fingerprint": spec.data_fingerprint, "code_version": spec.code_version,
            "versions": spec.versions, "machine": spec.machine, "metrics": json_safe_tree(spec.metrics),
            "created": spec.created, "seed": spec.seed}


def _provenance_of(d: dict) -> dict:
    """`_provenance_json`'s fields back from a spec.json dict, as constructor keywords (defaults filled)."""
    return dict(data_fingerprint=d["data_fingerprint"], code_version=d.get("code_version", "unknown"),
                versions=d.get("versions", {}), machine=d.get("machine", {}), metrics=d.get("metrics", {}),
                created=d.get("created", ""), seed=d.get("seed"))


def code_version() -> str:
    """The git SHA of the checkout this package runs from (+ "-dirty" with uncommitted changes)."""
    here = os.path.dirname(os.path.abspath(__file__))
    try:
        sha = subprocess.run(["git", "rev-parse", "HEAD"], cwd=here, capture_output=True, text=True,
                             timeout=5)
        if sha.returncode != 0:
            return "unknown"
        dirty = subprocess.run(["git", "status", "--porcelain", "--untracked-files=no"], cwd=here,
                               capture_output=True, text=True, timeout=5)
        return sha.stdout.strip() + ("-dirty" if dirty.stdout.strip() else "")
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def library_versions() -> dict:
    import flax
    import jaxlib
    import optax

    return {"jax": jax.__version__, "jaxlib": jaxlib.__version__, "flax": flax.__version__,
            "optax": optax.__version__, "numpy": np.__version__, "python": platform.python_version()}


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def machine_info() -> dict:
    """The machine a number was produced on: bit-for-bit reproduction holds on one machine type and
    device count."""
    dev = jax.devices()[0]
    return {"platform": dev.platform, "device_kind": dev.device_kind, "device_count": jax.device_count(),
            "process_count": jax.process_count(), "cpu": cpu_model(), "cpu_count": os.cpu_count(),
            "xla_flags": os.environ.get("XLA_FLAGS", "")}


def _flatten(params) -> dict[str, np.ndarray]:
    flat = {}
    for path, leaf in jax.tree_util.tree_flatten_with_path(params)[0]:
        keys = [str(getattr(k, "key", getattr(k, "name", getattr(k, "idx", k)))) for k in path]
        name = "/".join(keys)
        if any("/" in k for k in keys) or name in flat:
            raise ValueError(f"parameter path {keys} cannot be stored unambiguously")
        flat[name] = np.asarray(jax.device_get(leaf))
    return flat


def _unflatten(flat: dict[str, np.ndarray]) -> dict:
    tree: dict = {}
    for name, value in flat.items():
        node = tree
        *parents, last = name.split("/")
        for p in parents:
            node = node.setdefault(p, {})
        node[last] = value
    return tree


def save_model(directory: str, params, spec: ModelSpec, *, members=()) -> str:
    """Writes the artifact into `directory` atomically (a sibling temporary directory renamed into
    place; an artifact already there is replaced only once the new one is complete). Returns the path.

    members: artifact directories copied into members/<k>/ (an ensemble's, `ENSEMBLE_MEMBERS`)."""
    spec = spec.replace(created=spec.created or _now())

    def write(tmp):
        np.savez(os.path.join(tmp, _PARAMS), **_flatten(params))
        spec.preprocessor.save(os.path.join(tmp, _PRE))
        for k, member in enumerate(members):
            shutil.copytree(member, os.path.join(tmp, ENSEMBLE_MEMBERS, str(k)))
        _write_json(os.path.join(tmp, _SPEC), spec.to_json())

    return _write_atomic(directory, write)


def _now() -> str:
    return datetime.datetime.now(datetime.UTC).isoformat(timespec="seconds")


def _write_json(path: str, d: dict) -> None:
    with open(path, "w", encoding="utf-8") as f:
        json.dump(d, f, indent=2, sort_keys=True, allow_nan=False)
        f.flush()
        os.fsync(f.fileno())


def write_json_atomic(path: str, payload, *, default=None, sort_keys: bool = False) -> None:
    """`payload` as indented JSON in `path`, or `path` untouched: a temporary sibling file, flushed and
    fsynced, then `os.replace`-d (walk-forward summaries, the pipeline's stage record, a run's config)."""
    tmp = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        with open(tmp, "w", encoding="utf-8") as f:
            json.dump(payload, f, indent=2, default=default, sort_keys=sort_keys)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.remove(tmp)


def _write_atomic(directory: str, write) -> str:
    """Calls write(tmp) on a fresh sibling temporary directory, then renames it into `directory` (an
    artifact already there is replaced only once the new one is complete; a crash leaves it readable).
    Returns the absolute path."""
    directory = os.path.abspath(directory)
    parent = os.path.dirname(directory)
    os.makedirs(parent, exist_ok=True)
    tmp = os.path.join(parent, f".{os.path.basename(directory)}.tmp-{uuid.uuid4().hex[:8]}")
    os.makedirs(tmp)
    try:
        write(tmp)
        old = None
        if os.path.exists(directory):
            old = os.path.join(parent, f".{os.path.basename(directory)}.old-{uuid.uuid4().hex[:8]}")
            os.rename(directory, old)
        os.rename(tmp, directory)
        if old is not None:
            shutil.rmtree(old, ignore_errors=True)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return directory


def is_artifact(directory: str) -> bool:
    return os.path.isfile(os.path.join(directory, _SPEC))


# WHERE THE MODELS OF A RUN ARE: what an error names when a path is no artifact

_NOT_MODELS = ("latest", "tensorboard")     # Orbax training state and event files: never an artifact
_ARCHIVES = "previous-"                     # earlier runs moved aside by --fresh_start: not this run's
_LISTED = 24                                # artifacts named in an error; the rest are counted


def run_dir(path: str) -> str:
    """The run's workdir from a checkpoint path (.../<workdir>/checkpoints/<name>[/<step>])."""
    parts = os.path.abspath(path).split(os.sep)
    if "checkpoints" in parts:
        return os.sep.join(parts[:len(parts) - 1 - parts[::-1].index("checkpoints")])
    return os.path.dirname(os.path.abspath(path))


def _natural(path: str) -> list:
    """Sort key: seed_2 before seed_10."""
    return [int(t) if t.isdigit() else t for t in re.split(r"(\d+)", path)]


def artifacts_under(root: str, *, max_depth: int = 4) -> list[str]:
    """Every model artifact directory (one holding spec.json) under `root`, at most `max_depth`
    directories down, as paths relative to root in natural order; an artifact's own subdirectories
    (an ensemble's members), `latest`, `tensorboard` and earlier runs' `previous-*` archives are not
    searched."""
    root = os.path.abspath(root)
    found = []
    for here, dirs, _ in os.walk(root):
        rel = os.path.relpath(here, root)
        depth = 0 if rel == "." else rel.count(os.sep) + 1
        if here != root and is_artifact(here):
            found.append(rel)
            dirs[:] = []
            continue
        dirs[:] = [] if depth >= max_depth else [d for d in dirs if d not in _NOT_MODELS
                                                  and not d.startswith((".", _ARCHIVES))]
    return sorted(found, key=_natural)


_LAYOUT = ("a one-seed run keeps its models in <workdir>/checkpoints/best_<metric>, a run of several seeds "
           "(train.seeds, 3 by default) each seed's in <workdir>/checkpoints/seed_<s>/best_<metric>")


def what_exists(root: str) -> str:
    """One sentence naming the model artifacts under `root` (relative to it), and the layout."""
    if not os.path.isdir(root):
        return f"{root} does not exist ({_LAYOUT})"
    found = artifacts_under(root)
    if not found:
        return f"no model artifact exists under {root}: has a run finished there? ({_LAYOUT})"
    more = f" and {len(found) - _LISTED} more" if len(found) > _LISTED else ""
    return f"the model artifacts under {root} are {', '.join(found[:_LISTED])}{more} ({_LAYOUT})"


def missing_artifact_message(path: str) -> str:
    """Why `path` is no model artifact, and the model artifacts that exist under its run's workdir
    (`path` itself where it is a directory, else `run_dir(path)`)."""
    path = os.path.abspath(path)
    root = path if os.path.isdir(path) else run_dir(path)
    why = "it has no spec.json" if os.path.isdir(path) else "no such directory"
    return f"{path} is not a model artifact ({why}); {what_exists(root)}"


def require_artifact(path: str) -> str:
    """`path` if it is a model artifact; else FileNotFoundError naming the artifacts that do exist."""
    if not is_artifact(path):
        raise FileNotFoundError(missing_artifact_message(path))
    return path


def _read_spec(directory: str, what: str) -> tuple[str, dict]:
    """(absolute directory, its spec.json as a dict); FileNotFoundError naming `what` it should be."""
    directory = os.path.abspath(directory)
    path = os.path.join(directory, _SPEC)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{directory} is not {what}: it has no {_SPEC}; "
                                f"{what_exists(run_dir(directory))}")
    with open(path, encoding="utf-8") as f:
        return directory, json.load(f)


def load_spec(directory: str) -> ModelSpec:
    directory, d = _read_spec(directory, "a model artifact")
    _refuse_encoder(d, directory)
    return ModelSpec.from_json(d, Preprocessor.load(os.path.join(directory, _PRE)))


def load_params(directory: str) -> dict:
    with np.load(os.path.join(os.path.abspath(directory), _PARAMS), allow_pickle=False) as z:
        return _unflatten({k: z[k] for k in z.files})


def policy_of(spec: ModelSpec, params, *, deterministic: bool = True) -> Policy:
    """The `Policy` of a model of `spec.agent` with `params` (no env needed): the agent registry's
    rebuild (`agents.registry.policy_from_spec`)."""
    if spec.agent == "ensemble":
        raise ValueError("an ensemble's policy is made of its member artifacts: use load_model(directory)")
    return agent_registry.policy_from_spec(spec, params, deterministic)


def load_model(directory: str, *, deterministic: bool = True) -> tuple[Policy, ModelSpec]:
    """(Policy, ModelSpec) of the artifact in `directory`. An ensemble artifact (agent "ensemble",
    `jaxtrade.pipeline.ensemble`) gives the ensemble Policy of its members, each loaded from
    members/<k>/ the same way (an ensemble of ensembles is refused)."""
    spec = load_spec(directory)
    if spec.agent == "ensemble":
        members, specs = ensemble_members(directory, spec, deterministic=deterministic)
        return ensemble_policy_of(spec, members, specs, deterministic=deterministic), spec
    return policy_of(spec, load_params(directory), deterministic=deterministic), spec


def ensemble_members(directory: str, spec: ModelSpec, *, deterministic: bool = True
                     ) -> tuple[list[Policy], list[ModelSpec]]:
    """The member (Policy, ModelSpec)s of the ensemble artifact in `directory`, from members/0 ..
    members/K-1 (K = len(spec.model["members"])); a member that is itself an ensemble is refused."""
    policies, specs = [], []
    for k in range(len(spec.model["members"])):
        path = os.path.join(os.path.abspath(directory), ENSEMBLE_MEMBERS, str(k))
        if not is_artifact(path):
            raise FileNotFoundError(f"ensemble artifact {directory} lacks its member artifact {path}; "
                                    "rebuild it with jaxtrade.pipeline.ensemble.build_ensemble")
        m_spec = load_spec(path)
        if m_spec.agent == "ensemble":
            raise ValueError(f"ensemble artifact {directory}: member {path} is itself an ensemble, which "
                             "is not supported; build one ensemble from the inner ensemble's members")
        policies.append(policy_of(m_spec, load_params(path), deterministic=deterministic))
        specs.append(m_spec)
    return policies, specs


def ensemble_policy_of(spec: ModelSpec, members, member_specs, *, deterministic: bool = True,
                       schedule=None) -> Policy:
    """The Policy of the ensemble `spec` (agent "ensemble") over member Policies and their ModelSpecs;
    winner mode trades `schedule` (member index per step; default: the fixed winner spec.model["active"])."""
    dist = ensemble.shared_continuous_dist([m.model for m in member_specs])
    return ensemble.ensemble_from_spec(members, spec.model, action_spec=spec.action_spec, env_config=spec.env,
                                       continuous_dist=dist, deterministic=deterministic, schedule=schedule)


def as_plain(tree: Any):
    """ml_collections ConfigDicts and tuples -> JSON-able dicts and lists."""
    if hasattr(tree, "to_dict"):
        tree = tree.to_dict()
    return json.loads(json.dumps(json_safe_tree(tree), default=str))


# ENCODER ARTIFACTS: a supervised-pretrained encoder (jaxtrade.pipeline.pretrain), the same layout as a
# model artifact (spec.json, params.npz holding the `encoder` subtree only, preprocessor/), its own
# format; an RL run starts from one with `model.encoder_init=<directory>`.

ENCODER_FORMAT = "jaxtrade-encoder/1"


@dataclasses.dataclass(frozen=True)
class EncoderSpec:
    """What a pretrained encoder is, what it reads, where it came from and how it did.

    encoder: `jaxtrade.models.encoder_config` of the model config it was pretrained with (the type and
    the settings that shape its parameter tree: what a transplant must match); model: that model
    config. obs_spec: the env observation spec its inputs had; env: the env config. data, preprocessor,
    data_fingerprint: as in ModelSpec (the preprocessor's `train` dates are the rows it learnt from).
    targets: the supervised targets, in order. metrics: {"selection": the validation windows' metrics
    that chose the epoch (val_loss, val_r2, directional_accuracy and its edge over the majority class,
    ..., split="val"), "held_out": the same on the test split's windows (split="test"), where the run
    has a test split} (`metric_sources`).
    """

    encoder: dict
    model: dict
    obs_spec: ObsSpec
    env: dict
    data: dict
    preprocessor: Preprocessor
    data_fingerprint: str
    targets: tuple[str, ...] = ()
    code_version: str = "unknown"
    versions: dict = dataclasses.field(default_factory=dict)
    machine: dict = dataclasses.field(default_factory=dict)
    metrics: dict = dataclasses.field(default_factory=dict)
    created: str = ""
    seed: int | None = None

    def to_json(self) -> dict:
        return {"format": ENCODER_FORMAT, "encoder": self.encoder, "model": self.model,
                "obs_spec": self.obs_spec.to_json(), "env": self.env, "data": self.data,
                "targets": list(self.targets), **_provenance_json(self)}

    @classmethod
    def from_json(cls, d: dict, preprocessor: Preprocessor) -> EncoderSpec:
        if d.get("format") != ENCODER_FORMAT:
            raise ValueError(f"not a {ENCODER_FORMAT} artifact (format {d.get('format')!r})")
        return cls(encoder=d["encoder"], model=d["model"], obs_spec=obs_spec_from_json(d["obs_spec"]),
                   env=d["env"], data=d["data"], preprocessor=preprocessor,
                   targets=tuple(d.get("targets", ())), **_provenance_of(d))

    def replace(self, **changes) -> EncoderSpec:
        return dataclasses.replace(self, **changes)


def _refuse_encoder(d: dict, directory: str) -> None:
    """ValueError where the spec.json `d` of `directory` is a pretrained encoder's (load_spec's check)."""
    if d.get("format") == ENCODER_FORMAT:
        raise ValueError(f"{directory} is a pretrained encoder ({ENCODER_FORMAT}: an encoder without core or "
                         "heads), not a model: it cannot act. Start an RL run from it with "
                         f"--config.model.encoder_init={directory} (add ppo.frozen=('encoder',) to freeze "
                         "it), or read it with jaxtrade.train.artifact.load_encoder")


def save_encoder(directory: str, params, spec: EncoderSpec) -> str:
    """Writes the encoder artifact (params: the `encoder` subtree) into `directory` atomically, as
    `save_model` does (the same files). Returns the path."""
    return save_model(directory, params, spec)


def load_encoder(directory: str) -> tuple[dict, EncoderSpec]:
    """(encoder params, EncoderSpec) of the encoder artifact in `directory`."""
    directory, d = _read_spec(directory, "an encoder artifact")
    if d.get("format") != ENCODER_FORMAT:
        raise ValueError(f"{directory} is not a pretrained encoder (its {_SPEC} has format "
                         f"{d.get('format')!r}, expected {ENCODER_FORMAT!r}): make one with "
                         "experiments/pretrain.py")
    return load_params(directory), EncoderSpec.from_json(d, Preprocessor.load(os.path.join(directory, _PRE)))


def describe_obs_spec(spec: ObsSpec) -> str:
    """'{state: [21] float32, window: [30, 183] float32}'."""
    return "{" + ", ".join(f"{k}: {list(v.shape)} {v.dtype}" for k, v in spec.entries) + "}"


def encoder_init(directory: str, model_config, obs_spec: ObsSpec, *, train_end=None,
                 key: str = "model.encoder_init") -> dict:
    """The encoder params of the artifact in `directory`, checked for a network built from
    `model_config` observing `obs_spec` (the `key` config value names it).

    ValueError unless the encoder settings match (`jaxtrade.models.encoder_config`), the observation
    specs are equal (both named), and, where `train_end` (the run's last training date) is given, the
    encoder learnt from no row after it (else the run's validation and test rows would be in-sample for
    the encoder).
    """
    from jaxtrade.models import encoder_config

    params, spec = load_encoder(directory)
    want = encoder_config(model_config)
    if want != spec.encoder:
        raise ValueError(f"{key}={directory}: the encoder was pretrained as {spec.encoder}, this run's "
                         f"model config builds {want}: set the model section's encoder settings to the "
                         "encoder's (or pretrain one with this run's model section)")
    if spec.obs_spec != obs_spec:
        raise ValueError(f"{key}={directory}: the encoder was pretrained on observations "
                         f"{describe_obs_spec(spec.obs_spec)}, this run's env observes "
                         f"{describe_obs_spec(obs_spec)}: pretrain it with this run's env and data "
                         "(env.window, symbols, features) or drop model.encoder_init")
    last = spec.preprocessor.train[1]
    if train_end is not None and last > train_end:
        raise ValueError(f"{key}={directory}: the encoder was pretrained on rows up to {last:%Y-%m-%d}, "
                         f"after this run's training split ends ({train_end:%Y-%m-%d}), so this run's "
                         "validation and test rows may be in the encoder's training data: pretrain on a "
                         "training range that ends on or before the run's")
    return params

"""Model artifacts: everything needed to backtest, ensemble or trade a trained model, and nothing else.

    save_model(directory, params, spec)      # atomic: a crash leaves the previous artifact readable
    policy, spec = load_model(directory)     # no config file, no `setup.build`

Layout of an artifact directory:

    spec.json            ModelSpec without the Preprocessor (JSON: model config, specs, env config,
                         data source and split dates, fingerprint, code and library versions, machine,
                         metrics)
    params.npz           the network parameters, one array per '/'-joined parameter path
    preprocessor/        the fitted `jaxtrade.data.Preprocessor` (JSON + arrays)

No pickle anywhere: arrays are `.npz` read with `allow_pickle=False`, everything else is JSON.
"""

from __future__ import annotations

import dataclasses
import datetime
import json
import logging
import os
import platform
import shutil
import subprocess
import uuid
from typing import Any

import jax
import numpy as np

from jaxtrade.data import Preprocessor
from jaxtrade.envs.base import (
    ActionSpec,
    ObsSpec,
    Policy,
    action_spec_from_json,
    obs_spec_from_json,
)

log = logging.getLogger("jaxtrade")

FORMAT = "jaxtrade-model/1"
_SPEC, _PARAMS, _PRE = "spec.json", "params.npz", "preprocessor"


@dataclasses.dataclass(frozen=True)
class ModelSpec:
    """What a model is, where it came from and how it did.

    agent: which agent family rebuilds the policy ("ppo"). model: the model config (plain dict).
    action_spec, obs_spec: the env's specs the model was built for. env: the nested env config
    (name, window, costs, reward, ...) the model was trained and validated with. data: the data
    source (dataset or csv_path and csv_options) and split dates (train, val, test).
    preprocessor: fitted on the training split only. data_fingerprint: SHA-256 of the training data.
    code_version: git SHA (+ "-dirty") or "unknown"; versions: jax, jaxlib, flax, optax, numpy,
    python; machine: platform, device kind, CPU model, device count. metrics: validation metrics (and
    whatever the stage records: iteration, metric name). created: UTC ISO time. seed.
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
                "env": self.env, "data": self.data, "data_fingerprint": self.data_fingerprint,
                "code_version": self.code_version, "versions": self.versions, "machine": self.machine,
                "metrics": _json_safe(self.metrics), "created": self.created, "seed": self.seed}

    @classmethod
    def from_json(cls, d: dict, preprocessor: Preprocessor) -> ModelSpec:
        if d.get("format") != FORMAT:
            raise ValueError(f"not a {FORMAT} artifact (format {d.get('format')!r})")
        return cls(agent=d["agent"], model=d["model"], action_spec=action_spec_from_json(d["action_spec"]),
                   obs_spec=obs_spec_from_json(d["obs_spec"]), env=d["env"], data=d["data"],
                   preprocessor=preprocessor, data_fingerprint=d["data_fingerprint"],
                   code_version=d.get("code_version", "unknown"), versions=d.get("versions", {}),
                   machine=d.get("machine", {}), metrics=d.get("metrics", {}), created=d.get("created", ""),
                   seed=d.get("seed"))

    def replace(self, **changes) -> ModelSpec:
        return dataclasses.replace(self, **changes)


def _json_safe(tree):
    """NaN/inf -> None, numpy scalars -> Python numbers, recursively."""
    if isinstance(tree, dict):
        return {str(k): _json_safe(v) for k, v in tree.items()}
    if isinstance(tree, (list, tuple)):
        return [_json_safe(v) for v in tree]
    if isinstance(tree, (np.floating, float)):
        v = float(tree)
        return v if np.isfinite(v) else None
    if isinstance(tree, np.integer):
        return int(tree)
    if isinstance(tree, np.bool_):
        return bool(tree)
    return tree


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


def save_model(directory: str, params, spec: ModelSpec) -> str:
    """Writes the artifact into `directory` atomically (a sibling temporary directory renamed into
    place; an artifact already there is replaced only once the new one is complete). Returns the path."""
    directory = os.path.abspath(directory)
    parent = os.path.dirname(directory)
    os.makedirs(parent, exist_ok=True)
    tmp = os.path.join(parent, f".{os.path.basename(directory)}.tmp-{uuid.uuid4().hex[:8]}")
    os.makedirs(tmp)
    try:
        spec = spec.replace(created=spec.created or datetime.datetime.now(datetime.UTC).isoformat(
            timespec="seconds"))
        np.savez(os.path.join(tmp, _PARAMS), **_flatten(params))
        spec.preprocessor.save(os.path.join(tmp, _PRE))
        with open(os.path.join(tmp, _SPEC), "w", encoding="utf-8") as f:
            json.dump(spec.to_json(), f, indent=2, sort_keys=True, allow_nan=False)
            f.flush()
            os.fsync(f.fileno())
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


def load_spec(directory: str) -> ModelSpec:
    directory = os.path.abspath(directory)
    path = os.path.join(directory, _SPEC)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"{directory} is not a model artifact: it has no {_SPEC}")
    with open(path, encoding="utf-8") as f:
        d = json.load(f)
    return ModelSpec.from_json(d, Preprocessor.load(os.path.join(directory, _PRE)))


def load_params(directory: str) -> dict:
    with np.load(os.path.join(os.path.abspath(directory), _PARAMS), allow_pickle=False) as z:
        return _unflatten({k: z[k] for k in z.files})


def policy_of(spec: ModelSpec, params, *, deterministic: bool = True) -> Policy:
    """The `Policy` of a model of `spec.agent` with `params` (no env needed)."""
    if spec.agent == "ppo":
        from jaxtrade.agents import ppo

        return ppo.policy_from_spec(spec.model, spec.action_spec, params, deterministic=deterministic)
    raise ValueError(f"unknown agent {spec.agent!r} in the artifact; known: ppo")


def load_model(directory: str, *, deterministic: bool = True) -> tuple[Policy, ModelSpec]:
    """(Policy, ModelSpec) of the artifact in `directory`."""
    spec = load_spec(directory)
    return policy_of(spec, load_params(directory), deterministic=deterministic), spec


def as_plain(tree: Any):
    """ml_collections ConfigDicts and tuples -> JSON-able dicts and lists."""
    if hasattr(tree, "to_dict"):
        tree = tree.to_dict()
    return json.loads(json.dumps(_json_safe(tree), default=str))

"""Orbax checkpoints: `latest` (the full training state) and the best model per validation metric.

Layout under `workdir/checkpoints/`:

    latest/<iteration>/{state, meta}            the last `keep` full training states
    best_<metric>/<iteration>/{state, meta}     the model with the best validation <metric> so far

`state` is a pytree of numpy arrays saved with `StandardSave`; `meta` is JSON (config, counters,
metric history, early-stopping state, the metrics that made a best). Orbax writes each step into a
temporary directory and renames it when complete, so a crash mid-save leaves the previous step
readable; a step directory that is there but cannot be read (half-written by other means) is
skipped with a warning and the one before it is restored. A step restores only if its state has
the target's tree and every leaf the target's shape. When steps exist but none restores (a corrupt
directory, a state of another model or env shape), `CheckpointError` says why, step by step: never
a silent None, which a caller would take for "nothing saved". No pickle anywhere.

Multi-process runs (`jax.distributed`; `Checkpoints(workdir, devices=...)`): every process calls
`save` and `restore` at the same point with its own slices of the state (leaves [n_local, ...]); they
become one global array per leaf (`devices.to_global`), so Orbax writes every process's shards and
commits the step once (the workdir must be on a filesystem every process reaches). `meta` records the
layout (processes x devices per process); a step saved on another layout is refused with both named
(`LayoutError`), never reshaped. One process saves plain numpy arrays, as before.
"""

from __future__ import annotations

import dataclasses
import logging
import os
from typing import Any

import jax
import numpy as np
import orbax.checkpoint as ocp

from jaxtrade.agents import devices as devices_lib

log = logging.getLogger("jaxtrade")

BEST_METRICS = ("composite", "win_rate", "profit_rate", "sharpe")
RESUME_NAMES = ("latest",) + BEST_METRICS


def to_host(tree):
    """Every leaf as a numpy array; typed PRNG keys become their uint32 key data."""

    def leaf(x):
        if isinstance(x, jax.Array) and jax.dtypes.issubdtype(x.dtype, jax.dtypes.prng_key):
            x = jax.random.key_data(x)
        return np.asarray(x)

    return jax.tree.map(leaf, tree)


def _manager(directory: str, keep: int) -> ocp.CheckpointManager:
    options = ocp.CheckpointManagerOptions(max_to_keep=keep, enable_async_checkpointing=False,
                                           create=True)
    return ocp.CheckpointManager(directory, options=options, item_names=("state", "meta"))


class CheckpointError(RuntimeError):
    """Checkpoint steps exist under `directory` but none restores; `failures`: (step path, reason)."""

    def __init__(self, directory: str, failures: list[tuple[str, str]], advice: str = ""):
        self.directory, self.failures = directory, failures
        reasons = "; ".join(f"step {os.path.basename(path)}: {why}" for path, why in failures)
        super().__init__(f"no step of the checkpoint {directory} restores ({reasons})"
                         + (f". {advice}" if advice else ""))


class LayoutError(ValueError):
    """A checkpoint step was saved by another process count or device count per process."""


@dataclasses.dataclass
class Restored:
    state: Any
    meta: dict
    step: int
    path: str


class Checkpoints:
    """The `latest` and `best_<metric>` checkpoint managers of one workdir."""

    def __init__(self, workdir: str, keep_latest: int = 2, devices=None):
        """devices: this process's devices of the run (its state's leading axis). Given, every save
        records the layout and every restore checks it; required in a multi-process run."""
        self.root = os.path.join(os.path.abspath(workdir), "checkpoints")
        self._keep_latest = keep_latest
        self.devices = None if devices is None else list(devices)
        self._managers: dict[str, ocp.CheckpointManager] = {}

    def directory(self, name: str) -> str:
        return os.path.join(self.root, name if name == "latest" else f"best_{name}")

    def _get(self, name: str) -> ocp.CheckpointManager:
        if name not in self._managers:
            keep = self._keep_latest if name == "latest" else 1
            self._managers[name] = _manager(self.directory(name), keep)
        return self._managers[name]

    def save(self, name: str, step: int, state, meta: dict) -> None:
        """Saves `state` (any pytree; converted to numpy) and JSON `meta` as step `step` of `name`."""
        mngr = self._get(name)
        state = to_host(state)
        if self.devices is not None:
            meta = dict(meta, layout=devices_lib.layout(self.devices))
        if devices_lib.is_multiprocess():
            state = devices_lib.to_global(state, self._devices())
        args = ocp.args.Composite(state=ocp.args.StandardSave(state), meta=ocp.args.JsonSave(meta))
        mngr.save(step, args=args, force=True)
        mngr.wait_until_finished()

    def _devices(self) -> list:
        if self.devices is None:
            raise ValueError("a multi-process checkpoint needs the run's devices: Checkpoints(workdir, "
                             "devices=...)")
        return self.devices

    def steps(self, name: str) -> list[int]:
        if not os.path.isdir(self.directory(name)):
            return []
        return sorted(self._get(name).all_steps())

    def restore(self, name_or_path: str, target) -> Restored | None:
        """Restores the newest readable step of `name` (latest or a best metric) or of a directory path.

        `target` is a pytree of the expected structure and shapes (numpy or jax leaves, or None to
        read both from the checkpoint). Returns None when no checkpoint step exists; raises
        `CheckpointError` when steps exist and none restores (module docstring).
        """
        if name_or_path in RESUME_NAMES:
            directory, mngr = self.directory(name_or_path), None
            if not os.path.isdir(directory):
                return None
            mngr = self._get(name_or_path)
        else:
            directory = os.path.abspath(name_or_path)
            if not os.path.isdir(directory):
                raise FileNotFoundError(f"no checkpoint directory at {directory}")
            step_dir = _step_of(directory)
            if step_dir is not None:  # a path to one step: restore exactly that one
                try:
                    return self._restore_step(_manager(os.path.dirname(directory), 1), step_dir, target,
                                              directory)
                except LayoutError:
                    raise
                except Exception as exc:  # noqa: BLE001 -- reported with its reason
                    raise CheckpointError(os.path.dirname(directory), [(directory, _reason(exc))]) from exc
            mngr = _manager(directory, 1)
        failures = []
        for step in sorted(mngr.all_steps(), reverse=True):
            path = os.path.join(directory, str(step))
            try:
                return self._restore_step(mngr, step, target, path)
            except LayoutError:
                raise          # readable, but for another layout: the older steps are too
            except Exception as exc:  # noqa: BLE001 -- any unreadable step is skipped, loudly
                failures.append((path, _reason(exc)))
                log.warning("checkpoint %s is unreadable or does not fit this run (%s); skipping it and "
                            "trying the one before", path, failures[-1][1])
        if failures:
            raise CheckpointError(directory, failures)
        return None

    def _restore_step(self, mngr, step: int, target, path: str) -> Restored:
        multi = devices_lib.is_multiprocess()
        if self.devices is not None or multi:     # the layout first, from the metadata alone
            meta = mngr.restore(step, args=ocp.args.Composite(meta=ocp.args.JsonRestore()))["meta"]
            try:
                devices_lib.check_layout(meta.get("layout"), self._devices(), f"checkpoint {path}")
            except ValueError as exc:
                raise LayoutError(str(exc)) from None
        host = None if target is None else to_host(target)     # one host copy: restore target and shapes
        if multi:
            if host is None:
                raise ValueError("a multi-process restore needs the target state (its shapes place "
                                 "every process's slices)")
            state_args = ocp.args.StandardRestore(devices_lib.global_like(host, self._devices()))
        else:
            state_args = ocp.args.StandardRestore(host) if host is not None else ocp.args.StandardRestore()
        out = mngr.restore(step, args=ocp.args.Composite(state=state_args, meta=ocp.args.JsonRestore()))
        if multi:
            out = dict(out, state=devices_lib.from_global(out["state"]))
        return _checked(out, step, host, path)


def _reason(exc: Exception) -> str:
    return f"{type(exc).__name__}: {' '.join(str(exc).split())[:300]}"


def _step_of(directory: str) -> int | None:
    base = os.path.basename(os.path.normpath(directory))
    return int(base) if base.isdigit() else None


def _checked(out, step: int, host_target, path: str) -> Restored:
    """host_target: the run's state on the host (`to_host`), or None to restore as saved."""
    if host_target is not None:    # orbax restores the saved shapes whatever the target's: check them
        want = jax.tree.leaves(host_target)
        got, _ = jax.tree_util.tree_flatten_with_path(out["state"])
        bad = [f"{jax.tree_util.keystr(k)} saved {np.shape(v)}, expected {np.shape(w)}"
               for (k, v), w in zip(got, want, strict=True) if np.shape(v) != np.shape(w)]
        if bad:
            raise ValueError(f"{len(bad)} array(s) of the saved state have other shapes than this run's "
                             f"({', '.join(bad[:3])}): it was written by another model, env or envs "
                             "per device")
    return Restored(state=out["state"], meta=out["meta"], step=step, path=path)

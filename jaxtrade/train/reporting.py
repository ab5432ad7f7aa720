"""What a training run shows and writes: progress bar, summary lines, metrics.jsonl, TensorBoard, log file,
and, with `train.mlflow_uri` set (the `mlflow` extra), an MLflow run (`MlflowSink`).

verbosity: "quiet" (warnings, the final report path), "normal" (progress bar and a summary line
every `log_every` iterations), "verbose" (also every evaluation and checkpoint, debug logs). The
console handler is installed by the mains (`experiments.common.setup_logging`), never here.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import sys
import time

from tqdm.auto import tqdm

from jaxtrade.train.metrics import json_safe

log = logging.getLogger("jaxtrade")

VERBOSITIES = ("quiet", "normal", "verbose")
_HEADLINE = ("episode_return", "win_rate", "explained_variance", "steps_per_second")
_TRENDED = ("policy_loss", "value_loss", "entropy", "approx_kl")


def trended_of(diagnostics, n: int = 4) -> tuple[str, ...]:
    """The `n` diagnostics a summary line shows with trend arrows: PPO's four where the agent has them,
    then the agent's other diagnostics in its own order (never a headline metric or the NaN flag)."""
    rest = [d for d in diagnostics if d not in _HEADLINE and d != "any_nonfinite"]
    first = [d for d in _TRENDED if d in rest]
    return tuple((first + [d for d in rest if d not in first])[:n])


@contextlib.contextmanager
def run_log_file(workdir: str, *, verbose: bool = False):
    """The run's own log file, `workdir/train.log`, for the duration of a run (INFO, DEBUG if verbose).

    Only a file handler on the `jaxtrade` logger is added and removed again; console output and
    levels are the main's business (`experiments.common.setup_logging`).
    """
    handler = logging.FileHandler(os.path.join(workdir, "train.log"))
    handler.setLevel(logging.DEBUG if verbose else logging.INFO)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    if log.level == logging.NOTSET or log.level > handler.level:
        log.setLevel(handler.level)
    log.addHandler(handler)
    try:
        yield handler
    finally:
        log.removeHandler(handler)
        handler.close()


def _fmt(v) -> str:
    if v is None or (isinstance(v, float) and not math.isfinite(v)):
        return "n/a"
    return f"{v:.4g}" if isinstance(v, float) else str(v)


def trend_arrow(previous, current) -> str:
    """'↑' / '↓' / '→' (within 1%) comparing one metric to its value a summary ago."""
    if previous is None or current is None or not (math.isfinite(previous) and math.isfinite(current)):
        return " "
    if abs(current - previous) <= 0.01 * max(abs(previous), 1e-12):
        return "→"
    return "↑" if current > previous else "↓"


class Reporter:
    """Sinks for one run's metrics; `close()` flushes them."""

    def __init__(self, workdir: str, *, total: int, initial: int, verbosity: str, log_every: int,
                 tensorboard: bool = True, mlflow: MlflowSink | None = None, trended=_TRENDED):
        self.verbosity, self.log_every = verbosity, max(1, log_every)
        self.trended = tuple(trended)
        self.mlflow = mlflow
        self._jsonl = open(os.path.join(workdir, "metrics.jsonl"), "a", encoding="utf-8")
        self._tb = None
        if tensorboard:
            from tensorboardX import SummaryWriter

            self._tb = SummaryWriter(os.path.join(workdir, "tensorboard"))
        self._bar = tqdm(total=total, initial=initial, unit="it", dynamic_ncols=True,
                         disable=verbosity == "quiet", file=sys.stderr, mininterval=1.0)
        self._last_summary: dict | None = None
        self._last_known: dict = {}

    def postfix(self, row: dict) -> dict:
        """The progress bar's postfix for `row`: every headline metric by its whole name; a metric the
        row lacks (no episode finished this iteration) keeps its last known value."""
        for k in _HEADLINE:
            v = row.get(k)
            if v is not None and not (isinstance(v, float) and not math.isfinite(v)):
                self._last_known[k] = v
        return {k: _fmt(self._last_known.get(k)) for k in _HEADLINE}

    def iteration(self, row: dict) -> None:
        """Records one training iteration's row (see `metrics.iteration_row`)."""
        self.write_row("train", row)
        it = int(row["iteration"])
        self._bar.set_postfix(self.postfix(row), refresh=False)
        self._bar.update(it - self._bar.n)
        if it % self.log_every == 0:
            prev = self._last_summary or {}
            parts = [f"it {it}", f"steps {int(row.get('total_env_steps', 0)):,}"]
            parts += [f"{k} {_fmt(row.get(k))}" for k in _HEADLINE]
            parts += [f"{k} {_fmt(row.get(k))}{trend_arrow(prev.get(k), row.get(k))}" for k in self.trended]
            if "device_memory_gib" in row:
                parts.append(f"device memory {row['device_memory_gib']:.2f} GiB")
            self.info(" | ".join(parts))
            self._last_summary = row

    def evaluation(self, iteration: int, row: dict) -> None:
        self.write_row("val", dict(row, iteration=iteration))
        msg = " | ".join(f"{k} {_fmt(v)}" for k, v in row.items() if isinstance(v, (int, float)))
        (self.info if self.verbosity == "verbose" else log.debug)(f"validation @ it {iteration}: {msg}")

    def write_row(self, kind: str, row: dict) -> None:
        self._jsonl.write(json.dumps(dict(json_safe(row), kind=kind)) + "\n")
        self._jsonl.flush()
        scalars = {k: float(v) for k, v in row.items() if isinstance(v, (int, float)) and k != "iteration"
                   and math.isfinite(v)}
        if self._tb is not None:
            for k, v in scalars.items():
                self._tb.add_scalar(f"{kind}/{k}", v, int(row["iteration"]))
        if self.mlflow is not None:
            self.mlflow.log_metrics(kind, scalars, int(row["iteration"]))

    def info(self, msg: str) -> None:
        """A log line that does not tear the progress bar."""
        if self.verbosity != "quiet" and not self._bar.disable:
            self._bar.clear()
        log.info(msg)
        if not self._bar.disable:
            self._bar.refresh()

    def close(self, failed: bool = False) -> None:
        self._bar.close()
        self._jsonl.close()
        if self._tb is not None:
            self._tb.close()
        if self.mlflow is not None:
            self.mlflow.close(failed=failed)


def _flat_params(tree: dict, prefix: str = "") -> dict[str, str]:
    out = {}
    for k, v in tree.items():
        if isinstance(v, dict):
            out.update(_flat_params(v, f"{prefix}{k}."))
        else:
            out[f"{prefix}{k}"] = json.dumps(v, default=str)[:6000]
    return out


class MlflowSink:
    """One training run as an MLflow run (through `mlflow.MlflowClient`, so runs in one process never
    share fluent global state): params = the resolved config, flattened (`ppo.actor_lr`); metrics
    `train/<name>` per iteration and `val/<name>` per validation, stepped by iteration; artifacts =
    the run's best model artifacts (`log_artifacts`). A `file:` URI is MLflow's file store, which
    MLflow 3 serves only with MLFLOW_ALLOW_FILE_STORE=true: that opt-out is set for file URIs."""

    def __init__(self, uri: str, *, experiment: str, run_name: str, config: dict):
        try:
            import mlflow
        except ImportError as e:
            raise ValueError(f"train.mlflow_uri={uri!r} is set but mlflow is not installed; install the "
                             "extra: pip install 'jaxtrade[mlflow]'") from e
        if uri.startswith("file:") and "MLFLOW_ALLOW_FILE_STORE" not in os.environ:
            os.environ["MLFLOW_ALLOW_FILE_STORE"] = "true"
        self._mlflow = mlflow
        self.client = mlflow.MlflowClient(tracking_uri=uri)
        found = self.client.get_experiment_by_name(experiment)
        exp_id = found.experiment_id if found is not None else self.client.create_experiment(experiment)
        self.run_id = self.client.create_run(exp_id, run_name=run_name).info.run_id
        params = [mlflow.entities.Param(k, v) for k, v in _flat_params(config).items()]
        for i in range(0, len(params), 100):      # MLflow takes at most 100 params per batch
            self.client.log_batch(self.run_id, params=params[i:i + 100])
        log.info("MLflow: run %s in experiment %r at %s", self.run_id, experiment, uri)

    def log_metrics(self, kind: str, scalars: dict, step: int) -> None:
        now = int(time.time() * 1000)
        metrics = [self._mlflow.entities.Metric(f"{kind}/{k}", v, now, step) for k, v in scalars.items()]
        for i in range(0, len(metrics), 1000):
            self.client.log_batch(self.run_id, metrics=metrics[i:i + 1000])

    def log_artifacts(self, directories: dict[str, str]) -> None:
        for name, path in directories.items():
            self.client.log_artifacts(self.run_id, path, artifact_path=name)

    def close(self, failed: bool = False) -> None:
        self.client.set_terminated(self.run_id, "FAILED" if failed else "FINISHED")

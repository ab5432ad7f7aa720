"""What a training run shows and writes: progress bar, summary lines, metrics.jsonl, TensorBoard, log file,
the learning curve (`learning_curve.png`) and, with `train.mlflow_uri` set (the `mlflow` extra), an
MLflow run (`MlflowSink`).

verbosity: "quiet" (warnings, the final report path), "normal" (progress bar, a summary line every
`log_every` iterations and one line per validation: composite and Sharpe, mean over the members with
their range, and the best so far), "verbose" (also every validation metric and checkpoint, debug
logs). The console handler is installed by the mains (`experiments.common.setup_logging`), never here.

Counting: the progress bar, the summary lines and the budget line (`Budget.describe`) all count
training iterations per member (a population's members run their iterations side by side); env steps
are per member too, with the population's sum beside them.

TensorBoard reads the event files in `<workdir>/tensorboard` (the `tensorboard` extra installs the
viewer): `tensorboard --logdir <workdir>/tensorboard`.
"""

from __future__ import annotations

import contextlib
import json
import logging
import math
import os
import sys
import time

import numpy as np
import pandas as pd
from tqdm.auto import tqdm

from jaxtrade.train.metrics import json_safe

log = logging.getLogger("jaxtrade")

VERBOSITIES = ("quiet", "normal", "verbose")
_HEADLINE = ("episode_return", "win_rate", "explained_variance", "steps_per_second")
_TRENDED = ("policy_loss", "value_loss", "entropy", "approx_kl")
# The validation line and the learning curve's validation panels, in order.
_VAL_HEADLINE = ("composite", "sharpe", "annual_return")
_VAL_PLOTTED = ("composite", "sharpe")
LEARNING_CURVE = "learning_curve.png"


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


def member_values(row: dict) -> dict[str, dict[str, float]]:
    """{metric: {member label: value}} of a validation row's per-member entries (`<metric>/<label>`,
    as the loop adds them for a population); empty for a single model."""
    out: dict[str, dict[str, float]] = {}
    for k, v in row.items():
        if "/" in k and isinstance(v, (int, float)) and not isinstance(v, bool):
            metric, label = k.split("/", 1)
            out.setdefault(metric, {})[label] = float(v)
    return out


def validation_line(iteration: int, row: dict, best: tuple[float, int] | None) -> str:
    """The console line of one validation: each headline metric's mean over the members, its range
    over them (min .. max) where the row has per-member values, and the best mean composite so far
    (`best` = (value, iteration)).

    'validation @ it 20, mean of 3 members (min .. max): composite 0.41 (0.21 .. 0.55) | sharpe 0.93 |
    annual_return 0.081 | best composite 0.45 @ it 10' (a range per metric where the row has
    `<metric>/<label>` entries; the loop passes `composite/<label>`)
    """
    members = member_values(row)
    n = max((len(v) for v in members.values()), default=1)
    parts = []
    for k in _VAL_HEADLINE:
        if k not in row:
            continue
        part = f"{k} {_fmt(row[k])}"
        per = [v for v in members.get(k, {}).values() if math.isfinite(v)]
        if len(per) > 1:
            part += f" ({_fmt(min(per))} .. {_fmt(max(per))})"
        parts.append(part)
    if best is not None:
        parts.append(f"best composite {_fmt(best[0])} @ it {best[1]}")
    who = f", mean of {n} members (min .. max)" if n > 1 else ""
    return f"validation @ it {iteration}{who}: " + " | ".join(parts)


def read_history(path: str, upto: int) -> tuple[list[dict], list[dict]]:
    """The train and val rows of `metrics.jsonl` at `path` with iteration <= `upto` (what a resumed run
    had written before its checkpoint); ([], []) where there is no file. A torn last line is skipped."""
    train: list[dict] = []
    val: list[dict] = []
    if upto <= 0 or not os.path.exists(path):
        return train, val
    with open(path, encoding="utf-8") as f:
        for line in f:
            try:
                row = json.loads(line)
            except json.JSONDecodeError:
                continue
            it = row.get("iteration") if isinstance(row, dict) else None
            if not isinstance(it, int) or it > upto:
                continue
            {"train": train, "val": val}.get(row.get("kind"), []).append(row)
    return train, val


def _finite(v) -> float:
    return float(v) if isinstance(v, (int, float)) and math.isfinite(v) else math.nan


def plot_learning_curve(train_rows: list[dict], val_rows: list[dict], path: str, *, title: str) -> str:
    """Writes the learning curve PNG at `path` (atomically) and returns `path`.

    Panels, sharing the iteration axis: the training episode return per iteration (the mean over the
    members; iterations in which no episode ended are skipped), then per validation the composite and
    the Sharpe ratio on the validation split (mean over the members, the band their min .. max where
    the rows carry per-member values), the best mean composite marked. matplotlib's object API only
    (no pyplot)."""
    from matplotlib.figure import Figure
    from matplotlib.ticker import MaxNLocator

    from jaxtrade.eval.report import DPI, FIGSIZE

    fig = Figure(figsize=FIGSIZE, dpi=DPI)
    axes = fig.subplots(1 + len(_VAL_PLOTTED), 1, sharex=True)
    fig.suptitle(title)
    ax = axes[0]
    its = np.array([r["iteration"] for r in train_rows], dtype=np.float64)
    ret = np.array([_finite(r.get("episode_return")) for r in train_rows])
    ended = np.isfinite(ret)              # an iteration in which no episode ended has no return
    its, ret = its[ended], ret[ended]
    long = len(its) >= 50
    line, = ax.plot(its, ret, lw=0.8, marker=None if long else ".", alpha=0.5 if long else 1.0,
                    label="per iteration")
    if long:     # a long run's noise hides the trend: its moving mean over ~2% of the run
        window = max(5, len(its) // 50)
        trend = pd.Series(ret).rolling(window, min_periods=1).mean().to_numpy()
        ax.plot(its, trend, lw=1.6, color=line.get_color(), label=f"moving mean of {window} values")
        ax.legend(loc="best", fontsize=8)
    ax.set_ylabel("episode return")
    ax.set_title("training: mean episode return per iteration (log return per episode)", fontsize=9)
    v_its = np.array([r["iteration"] for r in val_rows], dtype=np.float64)
    composite = np.array([_finite(r.get("composite")) for r in val_rows])
    best = int(np.nanargmax(composite)) if np.isfinite(composite).any() else None
    for ax, metric in zip(axes[1:], _VAL_PLOTTED, strict=True):
        mean = np.array([_finite(r.get(metric)) for r in val_rows])
        line, = ax.plot(v_its, mean, marker="o", ms=3, lw=1.2, label=f"{metric} (mean over members)")
        per = [member_values(r).get(metric, {}) for r in val_rows]
        if any(len(p) > 1 for p in per):
            lo = np.array([min(p.values()) if p else math.nan for p in per])
            hi = np.array([max(p.values()) if p else math.nan for p in per])
            ax.fill_between(v_its, lo, hi, color=line.get_color(), alpha=0.2, label="min .. max over members")
        if best is not None:
            ax.axvline(v_its[best], color="0.5", ls="--", lw=0.8,
                       label=f"best mean composite (it {int(v_its[best])})")
        ax.set_ylabel(metric)
        ax.set_title(f"validation split: {metric} per validation", fontsize=9)
        ax.legend(loc="best", fontsize=8)
    axes[-1].set_xlabel("training iteration (per member)")
    axes[-1].xaxis.set_major_locator(MaxNLocator(integer=True))
    for a in axes:
        a.grid(alpha=0.3)
    fig.tight_layout()
    tmp = path + ".tmp"
    fig.savefig(tmp, dpi=DPI, format="png")
    os.replace(tmp, path)
    return path


class Reporter:
    """Sinks for one run's metrics; `close()` flushes them.

    `total` / `initial`: the budget's iterations and the iteration the run starts from (a resumed run's
    learning curve also shows the rows `metrics.jsonl` holds up to `initial`). `members`: how many
    models train side by side (their rows arrive as one mean row; env steps summed over them).
    `plot_every_s`: the learning curve is redrawn at a validation at most this often, and at `close()`.
    `writes`: False on every process of a multi-process run but process 0: log lines and the progress
    bar only, no file (metrics.jsonl, TensorBoard, MLflow, the learning curve).
    """

    def __init__(self, workdir: str, *, total: int, initial: int, verbosity: str, log_every: int,
                 tensorboard: bool = True, mlflow: MlflowSink | None = None, trended=_TRENDED,
                 members: int = 1, learning_curve: bool = True, plot_every_s: float = 30.0,
                 writes: bool = True):
        self.verbosity, self.log_every = verbosity, max(1, log_every)
        self.trended = tuple(trended)
        self.mlflow = mlflow if writes else None
        learning_curve = learning_curve and writes
        self.total, self.members = int(total), max(1, int(members))
        jsonl = os.path.join(workdir, "metrics.jsonl")
        self._train_rows, self._val_rows = read_history(jsonl, initial) if learning_curve else ([], [])
        self._best: tuple[float, int] | None = None
        for r in self._val_rows:
            self._note_best(r)
        self.curve_path = os.path.join(workdir, LEARNING_CURVE) if learning_curve else None
        self.plot_every_s = float(plot_every_s)
        self._plotted_at = time.monotonic()
        self._plotted = True          # nothing new to draw yet
        self._title = f"Learning curve: {os.path.basename(os.path.abspath(workdir))}"
        self._jsonl = open(jsonl, "a", encoding="utf-8") if writes else None
        self._tb = None
        if tensorboard and writes:
            from tensorboardX import SummaryWriter

            self._tb = SummaryWriter(os.path.join(workdir, "tensorboard"))
        # Iterations, as the budget line counts them ("60 iterations x 8,192 env steps").
        self._bar = tqdm(total=total, initial=initial, desc="iterations", unit="it", dynamic_ncols=True,
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
        if self.curve_path is not None:
            self._train_rows.append({"iteration": it, "episode_return": row.get("episode_return")})
            self._plotted = False
        self._bar.set_postfix(self.postfix(row), refresh=False)
        self._bar.update(it - self._bar.n)
        if it % self.log_every == 0:
            prev = self._last_summary or {}
            parts = [f"it {it}/{self.total:,}", self.steps_text(int(row.get("total_env_steps", 0)))]
            parts += [f"{k} {_fmt(row.get(k))}" for k in _HEADLINE]
            parts += [f"{k} {_fmt(row.get(k))}{trend_arrow(prev.get(k), row.get(k))}" for k in self.trended]
            if "device_memory_gib" in row:
                parts.append(f"device memory {row['device_memory_gib']:.2f} GiB")
            self.info(" | ".join(parts))
            self._last_summary = row

    def steps_text(self, total_env_steps: int) -> str:
        """'env steps 491,520' (per member, as the budget counts them; the population's sum beside)."""
        if self.members == 1:
            return f"env steps {total_env_steps:,}"
        return f"env steps {total_env_steps // self.members:,} per member ({total_env_steps:,} in all)"

    def _note_best(self, row: dict) -> None:
        c = _finite(row.get("composite"))
        if math.isfinite(c) and (self._best is None or c > self._best[0]):
            self._best = (c, int(row["iteration"]))

    def evaluation(self, iteration: int, row: dict) -> None:
        """Records one validation: `row` holds the members' mean validation metrics and, for a population,
        `<metric>/<label>` per member (the loop passes `composite/<label>`)."""
        row = dict(row, iteration=iteration)
        self.write_row("val", row)
        self._note_best(row)
        self.info(validation_line(iteration, row, self._best))
        if self.verbosity == "verbose":
            msg = " | ".join(f"{k} {_fmt(v)}" for k, v in row.items()
                             if isinstance(v, (int, float)) and "/" not in k and k != "iteration")
            self.info(f"validation @ it {iteration}, every metric: {msg}")
        if self.curve_path is not None:
            self._val_rows.append(row)
            self._plotted = False
            if time.monotonic() - self._plotted_at >= self.plot_every_s:
                self.plot()

    def plot(self) -> str | None:
        """Redraws `learning_curve.png` from the rows so far (nothing new: nothing drawn); its path.
        A plot that fails is a warning, never the end of a run."""
        if self.curve_path is None or self._plotted or not (self._train_rows or self._val_rows):
            return None
        try:
            plot_learning_curve(self._train_rows, self._val_rows, self.curve_path, title=self._title)
        except Exception as e:          # a figure must not stop training
            log.warning("learning curve not written (%s: %s)", type(e).__name__, e)
            return None
        finally:
            self._plotted, self._plotted_at = True, time.monotonic()
        return self.curve_path

    def write_row(self, kind: str, row: dict) -> None:
        if self._jsonl is not None:
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
        self.plot()
        if self._jsonl is not None:
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

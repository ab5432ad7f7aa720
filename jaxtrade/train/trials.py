"""The trial ledger: every configuration a choice was made among, with its validation return series.

A model that was chosen as the best of N candidates on validation carries selection luck: the best
of N skill-free candidates shows a positive validation Sharpe by the maximum alone. The ledger keeps
what is needed to say how much (`jaxtrade.eval.overfitting`: deflated Sharpe, probability of
backtest overfitting):

1. A trial is one candidate compared on the validation split: a checkpoint of a member at one
   validation (`kind` "checkpoint"; a population's members and seeds are members), a search trial, a
   walk-forward candidate. It records its name, kind, what identifies it (member label, seed,
   iteration, hyperparameters), its validation metrics, and its per-period simple returns on the
   validation split (the backtest every candidate of one ledger shares: the same dates).
2. `add` with a name already there replaces it (a resumed run re-validates the iterations after its
   last `latest` and must not count them twice).
3. The ledger is a JSON file (`trials.json` in the workdir; format "jaxtrade-trials/1"), written
   atomically after every validation; ledgers of several runs on one validation split (a search's
   batches, a walk-forward fold's candidates) `merge` into one.
4. `summary(chosen)` is `eval.overfitting.trial_summary` of the returns matrix [T, N] with the chosen
   trial marked, JSON-safe: it goes into reports and into the registry record of the chosen model.
"""

from __future__ import annotations

import json
import os

import numpy as np

from jaxtrade.train import artifact as artifact_lib
from jaxtrade.train import sources

FORMAT = "jaxtrade-trials/1"
FILE = "trials.json"


class TrialLedger:
    """The trials of one validation split (module docstring)."""

    def __init__(self, dates=(), periods_per_year: float = 252.0, trials=None):
        self.dates = [str(d) for d in dates]
        self.periods_per_year = float(periods_per_year)
        self.trials: dict[str, dict] = dict(trials or {})

    def __len__(self) -> int:
        return len(self.trials)

    @property
    def names(self) -> list[str]:
        return list(self.trials)

    def add(self, name: str, returns, *, kind: str, metrics: dict | None = None, dates=None, **meta) -> None:
        """Records trial `name` (replacing one of that name) with its validation returns [T-1] (excess
        returns where cash earns a rate); dates: the [T] dates of the backtest (the first trial's set
        the ledger's)."""
        r = np.asarray(returns, np.float64).reshape(-1)
        if not self.dates and dates is not None:
            self.dates = [str(d) for d in dates]
        if self.dates and r.size != len(self.dates) - 1:
            raise ValueError(f"trial {name!r} has {r.size} validation returns, the ledger's split "
                             f"{len(self.dates) - 1} ({self.dates[0]} .. {self.dates[-1]}): not the same "
                             "split")
        self.trials[str(name)] = {"kind": str(kind), "meta": sources.json_safe_tree(meta),
                                  "metrics": sources.json_safe_tree(dict(metrics or {})),
                                  "returns": [float(x) for x in r]}

    def returns_matrix(self) -> np.ndarray:
        """[T-1, N] validation returns, trials in insertion order."""
        if not self.trials:
            return np.zeros((0, 0))
        return np.stack([np.asarray(t["returns"], np.float64) for t in self.trials.values()], axis=1)

    def find(self, **meta) -> list[str]:
        """Names of the trials whose meta has every given key: value."""
        return [n for n, t in self.trials.items() if all(t["meta"].get(k) == v for k, v in meta.items())]

    def summary(self, chosen: str, **kw) -> dict:
        """The overfitting statistics of choosing `chosen` among every trial of the ledger
        (`eval.overfitting.trial_summary`; kw: its options), with the ledger's size."""
        from jaxtrade.eval.overfitting import trial_summary

        if chosen not in self.trials:
            raise ValueError(f"chosen trial {chosen!r} is not in the ledger ({len(self)} trials: "
                             f"{', '.join(self.names[:5])}{', ...' if len(self) > 5 else ''})")
        names = self.names
        out = trial_summary(self.returns_matrix(), names.index(chosen), self.periods_per_year,
                            names=names, **kw)
        kinds = sorted({t["kind"] for t in self.trials.values()})
        return dict(sources.json_safe_tree(out), kinds=kinds,
                    period=f"{self.dates[0]} .. {self.dates[-1]}" if self.dates else "")

    def to_json(self) -> dict:
        return {"format": FORMAT, "dates": self.dates, "periods_per_year": self.periods_per_year,
                "trials": self.trials}

    @classmethod
    def from_json(cls, d: dict, where: str = "trial ledger") -> TrialLedger:
        if d.get("format") != FORMAT:
            raise ValueError(f"{where} is not a {FORMAT} file (format {d.get('format')!r})")
        return cls(d["dates"], d["periods_per_year"], d["trials"])

    def save(self, workdir_or_path: str) -> str:
        path = _path(workdir_or_path)
        os.makedirs(os.path.dirname(os.path.abspath(path)), exist_ok=True)
        artifact_lib.write_json_atomic(path, self.to_json())
        return path

    @classmethod
    def load(cls, workdir_or_path: str) -> TrialLedger:
        path = _path(workdir_or_path)
        with open(path, encoding="utf-8") as f:
            return cls.from_json(json.load(f), path)

    @classmethod
    def open(cls, workdir: str, periods_per_year: float) -> TrialLedger:
        """The workdir's ledger (a resumed run adds to it), else a new one."""
        path = _path(workdir)
        return cls.load(path) if os.path.exists(path) else cls((), periods_per_year)

    @classmethod
    def merge(cls, ledgers, prefixes=None) -> TrialLedger:
        """One ledger of several runs' ledgers on the same validation split; trial names are prefixed
        (`prefixes`, e.g. the batch directories) where given."""
        ledgers = list(ledgers)
        if not ledgers:
            return cls()
        out = cls(ledgers[0].dates, ledgers[0].periods_per_year)
        for i, ledger in enumerate(ledgers):
            if ledger.dates != out.dates:
                raise ValueError(f"ledger {i} covers {ledger.dates[:1]} .. {ledger.dates[-1:]}, the first "
                                 f"{out.dates[:1]} .. {out.dates[-1:]}: trials of different splits do not "
                                 "pool")
            prefix = "" if prefixes is None else f"{prefixes[i]}/"
            out.trials.update({prefix + n: t for n, t in ledger.trials.items()})
        return out


def summary_of_artifact(ledger: TrialLedger | str, artifact_dir: str) -> dict:
    """The overfitting summary of the model in `artifact_dir` among the trials of `ledger` (a ledger,
    or a workdir / path holding one): its chosen trial is the one its selection metrics name
    ("trial", the name the loop records). {} where the ledger or the trial is missing."""
    if isinstance(ledger, str):
        if not os.path.exists(_path(ledger)):
            return {}
        ledger = TrialLedger.load(ledger)
    selection, _ = sources.metric_sources(artifact_lib.load_spec(artifact_dir).metrics)
    chosen = selection.get("trial")
    matches = [n for n in ledger.names if n == chosen or n.endswith("/" + str(chosen))]
    return ledger.summary(matches[0]) if chosen is not None and len(matches) == 1 else {}


def trial_name(label: str, iteration: int) -> str:
    """The ledger name of member `label`'s checkpoint at validation `iteration`."""
    return f"{label}/it{int(iteration)}"


def frame_returns(frame) -> np.ndarray:
    """The per-period returns of a backtest frame in excess of the rate cash earned (its `risk_free`
    column, where the env has one): what Sharpe ratios of the trials are computed on."""
    from jaxtrade.eval.stats import excess_rate, returns_of

    return returns_of(frame) - excess_rate(frame, 0.0, 252.0)


def _path(workdir_or_path: str) -> str:
    return workdir_or_path if workdir_or_path.endswith(".json") else os.path.join(workdir_or_path, FILE)

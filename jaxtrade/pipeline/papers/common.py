"""What every reproduced paper's report shares.

1. `Metric` names one column of the comparison table (key, label, number format).
2. `seed_summary(values)`: the median and range (min, max) over seeds of one number; a single value is
   its own median and range.
3. `comparison_frame(rows, keys, metrics)`: the table as a DataFrame, one row per `rows` entry, with for
   every metric `<m>_ours` (median over seeds), `<m>_ours_min`, `<m>_ours_max` and `<m>_paper`. A paper
   value that is unknown (not published, or not found with certainty) is None and stays an empty cell:
   it is never guessed or filled.
4. `write_table_csv(frame, path) -> sha256`: the CSV with a fixed float format (`%.10g`), so the same run
   gives the same bytes; the hash is the determinism hook that the report prints.
5. `markdown_table(frame, keys, metrics)`: ours beside paper, "median [min, max]" where seeds differ.
6. `departures_section(lines)`, `overfitting_section(returns, ...)` (deflated Sharpe, PBO from
   `jaxtrade.eval.overfitting`), `write_report(workdir, title, sections, frame)`.
7. `float64_env(name, split, env_cfg)`: the env a protocol's baselines run in, in float64 under
   `jax.enable_x64` (their books then agree with a plain float64 ledger to the cent).

Host-side numpy/pandas, but for `float64_env`; nothing here knows a paper or an agent.
"""

from __future__ import annotations

import contextlib
import dataclasses
import hashlib
import math
import pathlib
from collections.abc import Mapping, Sequence

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd

from jaxtrade import envs
from jaxtrade.data.envdata import astype
from jaxtrade.eval import overfitting

FLOAT_FORMAT = "%.10g"      # the CSV's float format: fixed, so equal numbers give equal bytes


@dataclasses.dataclass(frozen=True)
class Metric:
    """One column pair of the comparison table: `key` (CSV prefix), `label` (markdown header), `fmt`
    (format spec for the markdown cell, e.g. ".2f" or ".1%")."""
    key: str
    label: str
    fmt: str = ".2f"


def _values(x) -> np.ndarray:
    v = np.atleast_1d(np.asarray([] if x is None else x, np.float64)).reshape(-1)
    return v


def seed_summary(values) -> dict:
    """{"median", "min", "max", "n"} of one number over seeds (NaN-aware: a NaN seed is counted in n but
    not in the summary; all-NaN or empty gives NaN)."""
    v = _values(values)
    finite = v[np.isfinite(v)]
    if finite.size == 0:
        return {"median": math.nan, "min": math.nan, "max": math.nan, "n": int(v.size)}
    return {"median": float(np.median(finite)), "min": float(finite.min()), "max": float(finite.max()),
            "n": int(v.size)}


def comparison_frame(rows: Sequence[Mapping], keys: Sequence[str], metrics: Sequence[Metric]) -> pd.DataFrame:
    """The comparison table. Each row is a mapping with every key in `keys` (e.g. instrument, strategy),
    "ours": {metric key: a number or a sequence over seeds} and optionally "paper": {metric key: number or
    None}. A metric missing from "ours" is NaN; missing from "paper" is None (unknown). Raises ValueError
    naming the row for a missing key or a paper value for an unknown metric."""
    known = {m.key for m in metrics}
    out = []
    for i, row in enumerate(rows):
        missing = [k for k in keys if k not in row]
        if missing:
            raise ValueError(f"table row {i} lacks the key column(s) {missing} (has {sorted(row)})")
        ours, paper = dict(row.get("ours", {})), dict(row.get("paper", {}) or {})
        extra = sorted(set(ours) - known) + sorted(set(paper) - known)
        if extra:
            raise ValueError(f"table row {i} ({', '.join(str(row[k]) for k in keys)}) has values for "
                             f"unknown metric(s) {extra}; the metrics are {sorted(known)}")
        rec = {k: row[k] for k in keys}
        n = 0
        for m in metrics:
            s = seed_summary(ours.get(m.key))
            n = max(n, s["n"])
            rec[f"{m.key}_ours"], rec[f"{m.key}_ours_min"], rec[f"{m.key}_ours_max"] = \
                s["median"], s["min"], s["max"]
            p = paper.get(m.key)
            rec[f"{m.key}_paper"] = None if p is None else float(p)
        rec["n_seeds"] = n
        out.append(rec)
    cols = list(keys) + ["n_seeds"] + [f"{m.key}_{s}" for m in metrics
                                       for s in ("ours", "ours_min", "ours_max", "paper")]
    return pd.DataFrame(out, columns=cols)


def table_csv_bytes(frame: pd.DataFrame) -> bytes:
    """The table as CSV bytes: fixed float format, unknown paper values as empty cells, '\\n' lines."""
    return frame.to_csv(index=False, float_format=FLOAT_FORMAT, na_rep="", lineterminator="\n").encode()


def write_table_csv(frame: pd.DataFrame, path) -> str:
    """Writes the table's CSV to `path`; returns its sha256 (hex)."""
    data = table_csv_bytes(frame)
    path = pathlib.Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_bytes(data)
    tmp.replace(path)
    return hashlib.sha256(data).hexdigest()


def _cell(x, fmt: str) -> str:
    return "" if x is None or (isinstance(x, float) and math.isnan(x)) else format(x, fmt)


def markdown_table(frame: pd.DataFrame, keys: Sequence[str], metrics: Sequence[Metric]) -> str:
    """Markdown: the key columns, then per metric "<label> ours" (median [min, max] over seeds where they
    differ) beside "<label> paper" (empty where the paper's value is unknown)."""
    head = list(keys) + ["seeds"] + [f"{m.label} {w}" for m in metrics for w in ("ours", "paper")]
    lines = ["| " + " | ".join(head) + " |", "|" + " --- |" * len(head)]
    for _, r in frame.iterrows():
        cells = [str(r[k]) for k in keys] + [str(int(r["n_seeds"]))]
        for m in metrics:
            med, lo, hi = r[f"{m.key}_ours"], r[f"{m.key}_ours_min"], r[f"{m.key}_ours_max"]
            ours = _cell(med, m.fmt)
            if ours and lo != hi:
                ours += f" [{_cell(lo, m.fmt)}, {_cell(hi, m.fmt)}]"
            p = r[f"{m.key}_paper"]
            cells += [ours, _cell(None if p is None or pd.isna(p) else float(p), m.fmt)]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def departures_section(lines: Sequence[str],
                       title: str = "Where this protocol departs from the paper") -> str:
    """A report section listing every departure from the paper, one line each (data, conventions the paper
    leaves open, budgets), so a referee reads them without digging."""
    body = [f"- {s}" for s in lines] if lines else ["- none"]
    return "\n".join([f"## {title}", "", *body]) + "\n"


def overfitting_section(returns, names: Sequence[str], *, periods_per_year: float, chosen: int | None = None,
                        title: str | None = None, **kwargs) -> tuple[str, dict]:
    """The overfitting statistics (PSR, deflated Sharpe, PBO by CSCV, MinTRL) of a choice among trials.

    returns: [T, N] per-period returns of every trial (seeds, agents) on the data the choice was made on;
    chosen: the chosen column (default: the best per-period Sharpe among the finite columns). Returns the
    markdown section (under `title` when given) and `trial_summary`'s JSON-safe dict. kwargs go to
    `overfitting.trial_summary` (n_splits, sr_benchmark, ...)."""
    r = np.asarray(returns, np.float64)
    if chosen is None:
        sharpes = [overfitting.sharpe_moments(r[:, i]).sr if np.all(np.isfinite(r[:, i])) else -math.inf
                   for i in range(r.shape[1])]
        chosen = int(np.argmax(sharpes))
    summary = overfitting.trial_summary(r, chosen, periods_per_year, names=names, **kwargs)
    text = overfitting.markdown_section(summary)
    if title:
        text = text.replace("## Overfitting: how much of this is selection luck", f"## {title}", 1)
    return text, summary


def write_report(workdir, title: str, sections: Sequence[str], frame: pd.DataFrame, *,
                 name: str = "report") -> pathlib.Path:
    """Writes `<workdir>/<name>.csv` (the table) and `<workdir>/<name>.md`: the title, the table CSV's
    sha256 (the same command twice must print the same hash on one machine type), then `sections` in
    order. Returns the markdown path."""
    workdir = pathlib.Path(workdir)
    workdir.mkdir(parents=True, exist_ok=True)
    csv_path = workdir / f"{name}.csv"
    digest = write_table_csv(frame, csv_path)
    md = [f"# {title}", "",
          f"Table: `{csv_path.name}`, sha256 `{digest}` (by seed: the same command gives the same hash on "
          "the same machine type).", ""]
    md += [s.rstrip("\n") + "\n" for s in sections]
    path = workdir / f"{name}.md"
    tmp = path.with_name(path.name + ".tmp")
    tmp.write_text("\n".join(md))
    tmp.replace(path)
    return path


@contextlib.contextmanager
def float64_env(name: str, split, env_cfg: dict, **replace):
    """`with float64_env(name, split, env_cfg) as (env, params):` env `name` made on `split` with every
    float array in float64 and the split's float64 host closes (`jaxtrade.data.envdata.astype`; `replace`
    sets other fields or other closes, host arrays), inside `jax.enable_x64`: the book of every step is
    kept in float64, so a baseline's values agree with a plain float64 ledger to the cent (issue 27).
    Backtest inside the `with` (the frames it returns are plain pandas)."""
    with jax.enable_x64(True):
        data = astype(split.to_device(), jnp.float64, **{"close": split.close, **replace})
        yield envs.make(name, data, env_cfg)

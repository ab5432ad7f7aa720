"""Every notebook runs top to bottom the way the README runs it, `jupyter execute notebooks/<name>.ipynb`,
started from another directory (a temporary one): its kernel works in notebooks/ and has only the
installed packages, not the repository root, on its path. No cell may fail, each notebook shows at
least one figure, and the quickstart's Sharpe ratios are the report's."""

import glob
import json
import os
import shutil
import subprocess
import sys

import nbformat
import pandas as pd
import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
NOTEBOOKS = sorted(glob.glob(os.path.join(ROOT, "notebooks", "*.ipynb")))
JUPYTER = os.path.join(os.path.dirname(sys.executable), "jupyter")


def test_there_are_notebooks():
    assert any(p.endswith("quickstart.ipynb") for p in NOTEBOOKS)


def execute(path: str, tmp_path) -> nbformat.NotebookNode:
    """`jupyter execute` of `path` from `tmp_path` (the conftest's environment but PYTHONPATH: the XLA
    flags and the compilation cache); returns the executed notebook."""
    out = tmp_path / "executed.ipynb"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    proc = subprocess.run([JUPYTER, "execute", path, f"--output={out}"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=600)
    assert proc.returncode == 0, proc.stderr[-6000:]
    return nbformat.read(out, as_version=4)


def outputs_of(nb) -> list:
    return [o for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", [])]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=os.path.basename)
def test_notebook_executes(path, tmp_path):
    nb = execute(path, tmp_path)
    outputs = outputs_of(nb)
    errors = [o for o in outputs if o.output_type == "error"]
    assert not errors, "\n".join(f"{o.ename}: {o.evalue}" for o in errors)
    assert any("image/png" in o.get("data", {}) for o in outputs), "the notebook shows no figure"
    if os.path.basename(path) == "quickstart.ipynb":
        check_quickstart(outputs)


def check_quickstart(outputs):
    """The quickstart prints `... report at <path>` and `sharpe {json}`: its own backtests' Sharpe
    ratios, which must be the report's (report.csv), the agent's and minimum variance's above all."""
    lines = [line for o in outputs if o.output_type == "stream" and o.name == "stdout"
             for line in o.text.splitlines()]
    report_md = next(line.split("report at ", 1)[1].strip() for line in lines if "report at " in line)
    ours = json.loads(next(line[len("sharpe "):] for line in lines if line.startswith("sharpe {")))
    workdir = os.path.dirname(report_md)
    assert os.path.basename(workdir).startswith("jaxtrade-quickstart-"), report_md
    try:
        report = pd.read_csv(report_md.replace(".md", ".csv"), index_col=0)["sharpe"]
    finally:
        shutil.rmtree(workdir, ignore_errors=True)     # the notebook's temporary run
    for row in ("ppo_agent", "min_variance", "equal_weight_buy_hold"):
        assert ours[row] == pytest.approx(report[row], rel=1e-9, abs=1e-12), row
    assert set(ours) == set(report.index)
    assert all(ours[k] == pytest.approx(report[k], rel=1e-9, abs=1e-12) for k in ours), (ours, report)

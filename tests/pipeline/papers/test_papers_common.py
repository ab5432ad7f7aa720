"""The reproduce frame: experiments/reproduce.py's paper lookup and jaxtrade.pipeline.papers.common's
table (ours beside paper, empty when unknown), seed summaries, departures, overfitting and the hash."""

import hashlib
import math
import subprocess
import sys

import numpy as np
import pytest

from experiments import reproduce
from jaxtrade.pipeline.papers import common

METRICS = (common.Metric("sharpe", "Sharpe"), common.Metric("ret", "Return", ".1%"))


def _rows():
    return [
        {"instrument": "AAPL", "strategy": "B&H", "ours": {"sharpe": 1.25, "ret": 0.1},
         "paper": {"sharpe": 1.239}},
        {"instrument": "AAPL", "strategy": "DQN",
         "ours": {"sharpe": [0.5, -1.0, 2.0], "ret": [0.1, 0.2, 0.3]}, "paper": {"sharpe": None}},
    ]


def test_seed_summary_is_median_and_range():
    assert common.seed_summary([3.0, 1.0, 2.0, 10.0]) == {"median": 2.5, "min": 1.0, "max": 10.0, "n": 4}
    assert common.seed_summary(4.0) == {"median": 4.0, "min": 4.0, "max": 4.0, "n": 1}
    s = common.seed_summary([math.nan, 1.0])
    assert (s["median"], s["n"]) == (1.0, 2)


def test_table_puts_ours_beside_paper_and_leaves_unknown_paper_cells_empty(tmp_path):
    frame = common.comparison_frame(_rows(), ("instrument", "strategy"), METRICS)
    assert list(frame["sharpe_ours"]) == [1.25, 0.5]
    assert list(frame["sharpe_ours_min"]) == [1.25, -1.0] and list(frame["n_seeds"]) == [1, 3]
    csv = common.table_csv_bytes(frame).decode().splitlines()
    assert csv[0].startswith("instrument,strategy,n_seeds,sharpe_ours,sharpe_ours_min,sharpe_ours_max,"
                             "sharpe_paper")
    assert csv[1].split(",")[6] == "1.239"
    assert csv[2].split(",")[6] == "" and csv[1].split(",")[10] == ""    # unknown: empty, not 0 or nan
    md = common.markdown_table(frame, ("instrument", "strategy"), METRICS).splitlines()
    assert md[0] == ("| instrument | strategy | seeds | Sharpe ours | Sharpe paper | Return ours "
                     "| Return paper |")
    assert md[2] == "| AAPL | B&H | 1 | 1.25 | 1.24 | 10.0% |  |"
    assert md[3] == "| AAPL | DQN | 3 | 0.50 [-1.00, 2.00] |  | 20.0% [10.0%, 30.0%] |  |"


def test_table_refuses_missing_keys_and_unknown_metrics():
    with pytest.raises(ValueError, match=r"row 0 lacks the key column\(s\) \['strategy'\]"):
        common.comparison_frame([{"instrument": "X"}], ("instrument", "strategy"), METRICS)
    with pytest.raises(ValueError, match="unknown metric"):
        common.comparison_frame([{"instrument": "X", "strategy": "Y", "paper": {"sortino": 1.0}}],
                                ("instrument", "strategy"), METRICS)


def test_report_holds_the_table_hash_the_departures_and_the_overfitting_section(tmp_path):
    frame = common.comparison_frame(_rows(), ("instrument", "strategy"), METRICS)
    r = np.random.default_rng(0).normal(0.0005, 0.01, size=(256, 6))
    text, summary = common.overfitting_section(r, [f"seed {i}" for i in range(6)], periods_per_year=252)
    assert summary["n_trials"] == 6 and summary["chosen"] == int(np.argmax(r.mean(0) / r.std(0, ddof=1)))
    assert summary["pbo"] is not None and "Deflated Sharpe ratio" in text
    path = common.write_report(tmp_path, "T", [common.departures_section(["a", "b"]), text], frame)
    md = path.read_text()
    digest = hashlib.sha256((tmp_path / "report.csv").read_bytes()).hexdigest()
    assert f"sha256 `{digest}`" in md
    assert "## Where this protocol departs from the paper\n\n- a\n- b\n" in md


def test_reproduce_knows_the_papers_in_the_configs_folder():
    assert "tdqn2021" in reproduce.known_papers()
    assert reproduce._paper_in_argv(["prog", "--paper", "x", "--paper=tdqn2021"]) == "tdqn2021"
    with pytest.raises(ValueError, match="unknown paper 'nope': the known papers are .*tdqn2021"):
        reproduce.resolve("nope", None, None)


def test_reproduce_unknown_paper_is_one_line_and_exit_2():
    out = subprocess.run([sys.executable, "-m", "experiments.reproduce", "--paper=nope"], capture_output=True,
                         text=True, timeout=120, cwd=str(reproduce.PAPERS_DIR.parents[2]))
    assert out.returncode == 2
    assert out.stderr.startswith("error: unknown paper 'nope': the known papers are ")

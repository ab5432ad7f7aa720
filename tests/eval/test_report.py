"""`report` writes report.md, report.csv and PNGs of the documented pixel size into a directory."""

import os

import numpy as np
import pandas as pd
import pytest
from matplotlib.image import imread

from jaxtrade.eval.report import (
    DPI,
    FIGSIZE,
    actions_figure,
    allocation_figure,
    cost_notes,
    equity_figure,
    gate_figure,
    gross_return,
    report,
    summarize,
    verdict,
)

DATA = os.path.join(os.path.dirname(__file__), "..", "..", "jaxtrade", "datasets",
                    "sp500_20_stocks_adjclose.csv.gz")


def _frames():
    px = pd.read_csv(DATA, index_col=0, parse_dates=True).loc["2016-01-01":"2016-12-31"]
    rng = np.random.default_rng(0)
    ew = px.div(px.iloc[0]).mean(axis=1).to_numpy() * 1e6

    def agent(s):
        w = rng.dirichlet(np.ones(3), len(px))
        f = pd.DataFrame({"value": px["MSFT"].to_numpy() * (1e6 / px["MSFT"].iloc[0]) * (1 + 0.01 * s)},
                         index=px.index)
        f[["w_MSFT", "w_KO", "w_cash"]] = w
        f["turnover"], f["costs"] = 0.01, 5.0
        f["trade_closed"], f["trade_pnl"] = rng.random(len(px)) < 0.2, rng.normal(size=len(px))
        f["gate"] = rng.random(len(px)) < 0.05
        f["turbulence"], f["turbulence_threshold"] = rng.random(len(px)) * 30, 25.0
        return f

    return {"equal_weight_buy_hold": pd.DataFrame({"value": ew}, index=px.index),
            "index": pd.DataFrame({"value": px["JNJ"].to_numpy()}, index=px.index),
            "ppo": [agent(s) for s in range(3)]}


def test_report_writes_table_and_pngs(tmp_path):
    out = report(_frames(), str(tmp_path), n_boot=200)
    md = open(out.md_path).read()
    assert "Winner by Sharpe" in md and "| policy |" in md
    for name in ("equal_weight_buy_hold", "index", "ppo"):
        assert f"| {name} |" in md
    assert " ± " in md                                   # the 3-seed agent reads mean ± std
    table = pd.read_csv(out.csv_path, index_col=0)
    assert list(table.index) == ["equal_weight_buy_hold", "index", "ppo"]
    assert table.loc["ppo", "n_seeds"] == 3 and table.loc["index", "n_seeds"] == 1
    ppo = table.loc["ppo"]
    cols = ["sharpe", "sharpe_std", "sharpe_diff_low", "sharpe_diff_high"]
    assert np.isfinite(ppo[cols].astype(float)).all()
    assert ppo["sharpe_diff_low"] <= ppo["sharpe_diff"] <= ppo["sharpe_diff_high"]
    names = sorted(os.path.basename(p) for p in out.png_paths)
    assert names == ["allocation_ppo.png", "equity.png", "gate_ppo.png"]
    for p in out.png_paths:
        assert os.path.basename(p) in md
        img = imread(p)
        assert img.shape[:2] == (int(FIGSIZE[1] * DPI), int(FIGSIZE[0] * DPI))
        assert img[..., :3].std() > 0.05                 # not a blank canvas


def test_report_table_is_reproducible(tmp_path):
    a = report(_frames(), str(tmp_path / "a"), n_boot=100, seed=3).table
    b = report(_frames(), str(tmp_path / "b"), n_boot=100, seed=3).table
    pd.testing.assert_frame_equal(a, b)


def _path(mu, sigma, n=250, seed=0):
    """A value frame whose daily returns have exactly mean mu and std sigma (standardized noise)."""
    z = np.random.default_rng(seed).normal(size=n - 1)
    r = mu + sigma * (z - z.mean()) / z.std()
    dates = pd.bdate_range("2021-01-04", periods=n)
    return pd.DataFrame({"value": 1e6 * np.concatenate([[1.0], np.cumprod(1 + r)])}, index=dates)


def _verdict(**paths):
    table = summarize(paths, n_boot=200)
    return table, verdict(table)


def test_verdict_names_the_winner_when_the_agent_wins():
    # Sharpe (annualized): ppo 0.001/0.004 -> ~4.0; index ~0.9 but the highest return; buy-and-hold < 0.
    table, text = _verdict(equal_weight_buy_hold=_path(-0.0005, 0.01, seed=1),
                           index=_path(0.002, 0.035, seed=2), ppo=_path(0.001, 0.004, seed=3))
    sharpe = table["sharpe"]
    assert sharpe["ppo"] > sharpe["index"] > sharpe["equal_weight_buy_hold"]
    assert table.loc["index", "cumulative_return"] > table.loc["ppo", "cumulative_return"]
    assert "**Winner by Sharpe: `ppo`**" in text
    assert "Highest cumulative return: `index`" in text
    assert "Best learned agent `ppo`" in text
    assert "beats the best baseline `index`" in text
    assert "does not beat" not in text
    assert "Sharpe difference `ppo` - `equal_weight_buy_hold`: +" in text
    assert "(95% CI [+" in text and "significant at 95%)" in text and "not significant" not in text


def test_verdict_names_the_winner_when_the_agent_loses():
    # The agent's winning path is now buy-and-hold's; the agent loses money; min_variance is second.
    table, text = _verdict(equal_weight_buy_hold=_path(0.001, 0.004, seed=3),
                           index=_path(-0.0005, 0.01, seed=1), min_variance=_path(0.0004, 0.01, seed=4),
                           ppo=_path(-0.001, 0.01, seed=2))
    assert table.loc["ppo", "sharpe"] < 0 < table.loc["min_variance", "sharpe"]
    assert table["sharpe"].idxmax() == table["cumulative_return"].idxmax() == "equal_weight_buy_hold"
    assert "**Winner by Sharpe: `equal_weight_buy_hold`**" in text
    assert "Highest cumulative return" not in text              # the Sharpe winner has it too
    assert "Best learned agent `ppo`" in text
    assert "does not beat the best baseline `equal_weight_buy_hold`" in text
    assert "Sharpe difference `ppo` - `equal_weight_buy_hold`: -" in text
    assert "significant at 95%)" in text and "not significant" not in text
    hi = table.loc["ppo", "sharpe_diff_high"]
    assert hi < 0 and f"{hi:+.3f}]" in text


def test_report_leaves_out_columns_equal_in_every_row_and_states_the_rate(tmp_path):
    """A statistic that reads the same in every row (here every row's profit rate ends above its start
    in each month: all rows 100%) is constant by construction: the table leaves it out and names it;
    the CSV keeps it. A dated risk-free column of one frame sets every row's excess returns."""
    frames = _frames()
    up = pd.DataFrame({"value": 1e6 * 1.001 ** np.arange(252)}, index=frames["index"].index)
    rate = np.full(252, 0.0001)
    rated = {"a": up.assign(risk_free=rate), "b": up * 1.0}
    out = report(rated, str(tmp_path), n_boot=50, reference=None)
    md = open(out.md_path).read()
    header = next(line for line in md.splitlines() if line.startswith("| policy |"))
    assert "profit_rate" not in header and "Left out, the same in every row: " in md
    assert "profit_rate 100.00%" in md and "profit_rate" in pd.read_csv(out.csv_path).columns
    assert "Sharpe and Sortino are on returns in excess of it" in md
    table = pd.read_csv(out.csv_path, index_col=0)
    assert table.loc["a", "sharpe"] == table.loc["b", "sharpe"]        # the index row too: one period
    full = report(_frames(), str(tmp_path / "varied"), n_boot=50)     # profit rates differ: shown
    assert "profit_rate" in next(line for line in open(full.md_path).read().splitlines()
                                 if line.startswith("| policy |"))


def _agent(n=60, n_assets=20, gate=False, actions=None, index=None):
    """A synthetic agent frame: `n` rows, `n_assets` + cash weights, no costs, optional action column."""
    rng = np.random.default_rng(1)
    index = pd.bdate_range("2021-01-04", periods=n) if index is None else index
    f = pd.DataFrame({"value": 1e6 * np.cumprod(1 + rng.normal(0.0005, 0.01, n))}, index=index)
    w = rng.dirichlet(np.ones(n_assets + 1), n)
    for i in range(n_assets):
        f[f"w_S{i}"] = w[:, i]
    f["w_cash"] = w[:, -1]
    f["turnover"], f["costs"], f["gate"] = 0.0, 0.0, gate
    f["turbulence"], f["turbulence_threshold"] = 1.0, 25.0
    if actions is not None:
        f["action"] = actions
    return f


def test_agent_plots_timeline_distinct_colours_no_idle_gate(tmp_path):
    """A discrete agent gets an action timeline (its actions named from attrs); a gate that never acted
    gets no plot but a sentence; 21 weight series get 21 colours; a short weight shows below 0."""
    acts = np.repeat([0, 3, 11, 3], 15)
    f = _agent(actions=acts)
    f.attrs["action_names"] = [f"R{k}" for k in range(12)]
    out = report({"ppo": f, "flat": _agent()}, str(tmp_path), n_boot=20, reference=None)
    names = sorted(os.path.basename(p) for p in out.png_paths)
    assert names == ["actions_ppo.png", "allocation_ppo.png", "equity.png"]
    assert "The turbulence gate never acted on `ppo`" in open(out.md_path).read()
    ticks = [t.get_text() for t in actions_figure("ppo", f).axes[0].get_yticklabels()]
    assert len(ticks) == 12 and ticks[3] == "R3 (49%)" and ticks[11] == "R11 (25%)"   # of 59 traded bars
    ax = allocation_figure("ppo", f).axes[0]
    colours = {tuple(np.round(c.get_facecolor()[0], 3)) for c in ax.collections}
    assert len(ax.collections) == 21 and len(colours) == 21
    short = f.assign(w_S0=-0.3)
    assert allocation_figure("ppo", short).axes[0].get_ylim()[0] < -0.25
    gated = _agent(gate=np.arange(60) % 7 == 0, index=pd.date_range("2021-01-04 09:00", periods=60, freq="h"))
    assert "(9 of 60 bars gated)" in gate_figure("ppo", gated).axes[0].get_title()


def test_equity_legend_uses_row_labels():
    index_frame = _agent(n_assets=1)[["value"]]
    index_frame.attrs["label"] = "S&P 500 (price index)"
    legend = equity_figure({"index": [index_frame], "ppo": [_agent(n_assets=1)] * 2}).axes[0].get_legend()
    texts = [t.get_text() for t in legend.get_texts()]
    assert texts == ["S&P 500 (price index)", "ppo (mean of 2 seeds)"]
    # walk-forward equity: the fold starts are marked on both panels
    frame = _agent(n_assets=1)
    marks = [frame.index[2], frame.index[5]]
    fig = equity_figure({"ppo": [frame]}, boundaries=marks)
    dotted = [ln for a in fig.axes for ln in a.get_lines() if ln.get_linestyle() == ":"]
    assert len(dotted) == 4 and "fold start" in [t.get_text() for t in fig.axes[0].get_legend().get_texts()]


def _costly(costs):
    """Three bars: value before each trade and the costs each trade paid."""
    f = pd.DataFrame({"value": [100.0, 104.0, 105.0, 110.0], "costs": [costs, costs, costs, 0.0],
                      "turnover": [1.0, 1.0, 1.0, 0.0]}, index=pd.bdate_range("2021-01-04", periods=4))
    return f


def test_gross_return_by_hand_and_costs_dominate_sentence():
    # Before costs each bar earns value[t+1] / (value[t] - costs[t]): 104/98 * 105/102 * 110/103.
    f = _costly(2.0)
    assert gross_return(f) == pytest.approx(104 / 98 * 105 / 102 * 110 / 103 - 1, rel=1e-12)
    assert gross_return(_costly(0.0)) == pytest.approx(0.10, rel=1e-12)
    assert np.isnan(gross_return(f[["value"]]))                   # no costs column: n/a, not net
    table = summarize({"ppo": f, "cheap": _costly(0.1), "flat": _costly(2.0)}, reference=None, n_boot=10)
    assert table.loc["ppo", "cumulative_return"] == pytest.approx(0.10)
    assert table.loc["ppo", "gross_return"] == pytest.approx(gross_return(f))
    # ppo: +10% after costs, +16.7% before: costs took 6.7 points, under half of the gain -> only the
    # per-year rule (costs 6% of the start) can call it; cheap (0.3%) never; flat is a baseline.
    assert cost_notes(table, years=100.0) == ""
    notes = cost_notes(table, years=0.5)
    assert "**Costs dominate `ppo`**" in notes and "`cheap`" not in notes and "`flat`" not in notes
    assert "came to 12.0% of the starting value a year" in notes
    assert "+16.7% before costs and +10.0% after" in notes
    heavy = summarize({"ppo": _costly(4.0)}, reference=None, n_boot=10)     # gain +21.5% -> +10%
    assert "they took more than half of its gain" in cost_notes(heavy, years=100.0)

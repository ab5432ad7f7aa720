"""`report` writes report.md, report.csv and PNGs of the documented pixel size into a directory."""

import os

import numpy as np
import pandas as pd
from matplotlib.image import imread

from jaxtrade.eval.report import DPI, FIGSIZE, report, summarize, verdict

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

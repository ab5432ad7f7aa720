"""The TDQN protocol (jaxtrade.pipeline.papers.tdqn2021): its data quirks, its baselines against an
independent plain-pandas ledger, and the by-seed test (a reduced protocol run twice, identical bytes)."""

from __future__ import annotations

import hashlib
import json

import numpy as np
import pandas as pd
import pytest

from jaxtrade.data import load_csv
from jaxtrade.data.errors import DataError
from jaxtrade.data.tdqn2021 import load_tdqn2021
from jaxtrade.envs.fixed_policies import action_schedule_policy, constant_policy
from jaxtrade.eval import rules
from jaxtrade.eval.backtest import backtest_many
from jaxtrade.pipeline.papers import tdqn2021 as protocol

CASH, C, EPS = 100_000.0, 0.001, 0.1
CASH_MARGIN = 1e-5      # jaxtrade's cash floor leaves this share of a capped buy as cash (envs.market)


def pandas_ledger(close: pd.Series, actions, cash0=CASH, c=C, eps=EPS) -> pd.DataFrame:
    """The long_short layout written again in plain pandas/float64: at row t (close[t]) the action's side
    is taken all-in unless already held (short: the margin buy-back of Théate & Ernst's tradingEnv), costs
    c x |traded value|, buys capped by cash; the book is marked at close[t+1]. close[0] is the row before
    the first trade (the margin rule reads it); step i trades at close[i + 1]. One row per step: value
    before the trade, whether it traded, the value marked at the next close."""
    px = close.to_numpy(np.float64)
    cash, h, side = cash0, 0.0, 0
    rows = []
    for i, a in enumerate(actions):
        t = i + 1
        p = px[t]
        v0 = cash + h * p
        want = 1 if a == 1 else -1
        shares = 0.0
        if want != side:
            shares = want * v0 / p - h
        elif side == -1:                        # short -> short: their computeLowerBound
            prev = px[t - 1]
            deficit = -h * prev * (1 + eps) * (1 + c) - cash
            lower = (deficit / (prev * (2 * c + eps * (1 + c))) if deficit < 0
                     else deficit / (prev * eps * (1 + c)))
            if lower > 0:
                shares = min(np.floor(lower), -h)
        if shares > 0:                          # a buy: capped so that cash stays >= 0 after costs
            avail = cash - c * shares * p
            if shares * p > avail:
                shares *= max(avail / (shares * p), 0.0) * (1 - CASH_MARGIN)
        cost = c * abs(shares) * p
        cash -= shares * p + cost
        h += shares
        if want != side:
            side = want
        rows.append({"value_before": v0, "traded": shares != 0.0, "value": cash + h * px[t + 1]})
    return pd.DataFrame(rows)


@pytest.fixture(scope="module")
def aapl():
    from experiments.configs.papers import tdqn2021 as cfg_file
    from jaxtrade.pipeline.papers import tdqn2021

    config = cfg_file.get_config()
    return tdqn2021.prepare("AAPL", config), config


def _ledger_close(inst):
    sp = inst["splits"].test
    return pd.Series(sp.close[sp.start - 1:, 0].astype(np.float64))   # row start-1 for the margin rule


# The protocol runs its baselines in float64 (`tdqn2021.baseline_backtests`, `common.float64_env`): the
# issue's acceptance numbers, the cent on the values before the first 50 trades and 1e-9 relative on the
# final value (every marked value is held to 1e-9 relative too).
TRADE_ATOL = 0.005      # dollars, the value before each of the first 50 trades
VALUE_RTOL = 1e-9       # every marked value and the final value, relative to the ledger's


def _check_against_ledger(frame, ledger, name=""):
    ours = frame["value"].to_numpy()
    want = ledger["value"].to_numpy()
    traded = np.flatnonzero(ledger["traded"].to_numpy())[:50]
    assert traded.size >= 1
    gap = np.abs(ours[traded] - ledger["value_before"].to_numpy()[traded])
    final = abs(ours[-1] - want[-1]) / abs(want[-1])
    print(f"{name} ledger gap: {traded.size} trades, max ${gap.max():.2e}; final value off by {final:.2e} "
          f"relative; every marked value within {np.max(np.abs(ours[1:] / want - 1)):.2e} relative")
    np.testing.assert_allclose(ours[traded], ledger["value_before"].to_numpy()[traded], rtol=0,
                               atol=TRADE_ATOL, err_msg=name)
    np.testing.assert_allclose(ours[1:], want, rtol=VALUE_RTOL, atol=0, err_msg=name)
    assert final <= VALUE_RTOL, name


def test_baselines_agree_with_a_plain_pandas_ledger(aapl):
    inst, config = aapl
    sp = inst["splits"].test
    n = sp.n_rows - 1 - sp.start
    means = rules.moving_averages(sp.close[:, 0], sp.start, n, 29)
    schedules = {"B&H": np.ones(n, int), "S&H": np.zeros(n, int),
                 "TF": rules.ma_actions(means, 1, 5, "trend"),       # fast pairs: many trades
                 "MR": rules.ma_actions(means, 2, 3, "mean_reversion")}
    policies = [constant_policy(1), constant_policy(0)] + [action_schedule_policy(schedules[k])
                                                            for k in ("TF", "MR")]
    frames = protocol.baseline_backtests(policies, inst, "test")     # the protocol's float64 backtests
    close = _ledger_close(inst)
    for (name, acts), frame in zip(schedules.items(), frames, strict=True):
        ledger = pandas_ledger(close, acts)
        _check_against_ledger(frame, ledger, name)
        if name in ("TF", "MR"):
            assert ledger["traded"].sum() >= 50          # the trade check covers 50 trades
    # The protocol's own baseline frames (TF and MR with the pair their tuning chose, on a cut grid).
    cut = config.copy_and_resolve_references()
    cut.ma_bounds = (1, 6)
    ours, tuned = protocol.run_baselines(inst, cut)
    for name in protocol.BASELINES:
        if name in tuned:
            short, long = tuned[name]["pairs"][tuned[name]["chosen"]]
            rule = "trend" if name == "TF" else "mean_reversion"
            acts = rules.ma_actions(means, short, long, rule)
        else:
            acts = schedules[name]
        _check_against_ledger(ours[name], pandas_ledger(close, acts), f"run_baselines {name}")


def test_margin_rule_buys_back_a_losing_short_as_the_ledger_does(aapl):
    # AAPL's test closes times a synthetic 1 .. 1.25 ramp: sell-and-hold must meet their margin rule.
    from jaxtrade.pipeline.papers import common

    inst, _ = aapl
    sp = inst["splits"].test
    ramped = sp.close * np.linspace(1.0, 1.25, sp.n_rows)[:, None]
    with common.float64_env("single", sp, dict(inst["resolved"], random_start=False), close=ramped) as (env,
                                                                                                       params):
        frame = backtest_many([constant_policy(0)], env, params)[0]
    close = pd.Series(ramped[sp.start - 1:, 0])
    ledger = pandas_ledger(close, np.zeros(sp.n_rows - 1 - sp.start, int))
    assert ledger["traded"].sum() > 5                     # the buy-backs happened
    assert np.count_nonzero(frame["turnover"].to_numpy()[:-1]) == ledger["traded"].sum()
    _check_against_ledger(frame, ledger, "S&H on the ramp")


def test_quirks_are_named_and_counted():
    path = "jaxtrade/datasets/tdqn2021/AAPL_2018-1-1_2020-1-1.csv.gz"
    with pytest.raises(DataError, match=r"AAPL_2018-1-1_2020-1-1.csv.gz.*2018-01-02 \(line 2\).*ohlc-"):
        load_csv(path, format="ohlcv", symbol="AAPL")
    with pytest.raises(DataError, match="ohlc-consistency"):
        load_tdqn2021("AAPL", close_outside_range="refuse")
    aapl = load_tdqn2021("AAPL")
    assert aapl.close_outside_range["tdqn2021/AAPL_2018-1-1_2020-1-1.csv.gz"] == 418   # of 503 (README)
    assert sum(load_tdqn2021("TSLA").close_outside_range.values()) == 0
    kirin = load_tdqn2021("2503.T")
    md = kirin.market
    vol = pd.Series(md.volume[:, 0], md.dates)
    # Their zero handling: the leading holiday zeros of the test file are back-filled from 2018-01-04.
    assert vol["2018-01-01"] == vol["2018-01-04"] == 2632300.0
    assert kirin.interpolated["tdqn2021/2503.T_2018-1-1_2020-1-1.csv.gz"] == {"Volume": 16}
    raw = load_tdqn2021("2503.T", holidays="keep").market
    assert pd.Series(raw.volume[:, 0], raw.dates)["2018-01-01"] == 0.0


def test_published_sharpes_match_the_papers_own_averages():
    # Table 6 prints its column averages: the 30 transcribed rows must give them back (to its rounding).
    from jaxtrade.pipeline.papers import tdqn2021_paper as paper

    sharpes = np.array([[paper.PUBLISHED[(s, k)]["sharpe_paper_convention"] for k in paper.STRATEGIES]
                        for s in load_symbols()])
    assert sharpes.shape == (30, 5)
    np.testing.assert_allclose(sharpes.mean(0), paper.TABLE6_AVERAGE, rtol=0, atol=5e-4)


def load_symbols():
    from jaxtrade.data.tdqn2021 import SYMBOLS

    return SYMBOLS


def test_paper_conventions():
    v = np.array([100.0, 101.0, 99.99, 102.0])
    r = np.concatenate([np.zeros(30), v[1:] / v[:-1] - 1])
    assert protocol.paper_sharpe(v, 30) == pytest.approx(np.sqrt(252) * r.mean() / r.std(ddof=1), rel=1e-12)
    # trades: long on 0..1 (100 -> 99.99: a loss), short from 2 (99.99 -> 102 last: a gain) -> 1 of 2
    assert protocol.profitability(v, [1, 1, 0, 0]) == 0.5
    annual, vol = protocol.paper_returns(v, 30, 730)
    assert annual == pytest.approx((1 + r.sum()) ** (365 / 730) - 1, rel=1e-12)
    assert vol == pytest.approx(np.sqrt(252) * r.std(ddof=1), rel=1e-12)
    assert protocol.paper_returns(np.array([100.0, 1.0, 0.5]), 0, 730)[0] == -1.0  # sum <= -1: their -100%
    # their drawdown: the largest in money (200 -> 150, 25%), not the largest relative (100 -> 60, 40%)
    assert protocol.paper_max_drawdown(np.array([100.0, 60.0, 200.0, 150.0, 180.0])) == -0.25


def test_reduced_protocol_twice_gives_the_same_table_bytes(tmp_path):
    from experiments.configs.papers import tdqn2021 as cfg_file

    config = cfg_file.get_config()
    config.instruments = ("AAPL", "TSLA")   # one calendar: one compile per backtest length
    config.seeds = 2
    config.ma_bounds = (1, 6)
    config.episode_length = 16
    # DQN only (the paper's family): PPO and A2C would add ~30 s of cold compiles to CI; the full run
    # trains all three through the same code (train_agent), and their own tests check them by seed.
    config.agents = ("dqn",)
    config.iterations = dict(dqn=1, ppo=1, a2c=1)
    config.model.hidden_dim = 8
    config.agent_overrides.dqn.update(n_envs=2, n_steps=8, buffer_size=64, batch_size=8, learning_starts=8)
    a = protocol.run(config, tmp_path / "a")
    b = protocol.run(config, tmp_path / "b")
    csv_a, csv_b = (p.parent / "report.csv" for p in (a, b))
    assert csv_a.read_bytes() == csv_b.read_bytes()
    assert a.read_text() == b.read_text()
    timings = json.loads((a.parent / "timings.json").read_text())
    assert timings["machine"]["cpu"] and timings["machine"]["device_count"] >= 1   # the machine type
    digest = hashlib.sha256(csv_a.read_bytes()).hexdigest()
    assert f"sha256 `{digest}`" in a.read_text()
    table = pd.read_csv(csv_a)
    assert len(table) == 2 * 5 and set(table["strategy"]) == {"B&H", "S&H", "TF", "MR", "DQN"}
    rows = table.set_index(["instrument", "strategy"])
    assert rows.loc[("AAPL", "B&H"), "sharpe_paper_convention_paper"] == 1.239     # Table 6
    assert rows.loc[("AAPL", "DQN"), "sharpe_paper_convention_paper"] == 1.424     # beside their TDQN
    assert rows.loc[("TSLA", "MR"), "max_drawdown_paper_convention_paper"] == -0.6531   # Table 5, 65.31%
    assert table["annual_return_paper"].isna().all()     # our CAGR: never printed, so empty
    assert table["max_drawdown_paper"].isna().all()
    assert (table.loc[table["strategy"] == "DQN", "n_seeds"] == 2).all()

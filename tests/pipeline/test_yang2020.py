"""The Yang et al. (2020) protocol (`jaxtrade.pipeline.papers.yang2020`): its plan, its pick, its
switching policy, its baselines against an independent pandas ledger, and the reduced protocol run twice
giving the same table bytes."""

from __future__ import annotations

import dataclasses
import json
import math

import jax
import jax.numpy as jnp
import numpy as np
import pandas as pd
import pytest

from experiments.configs.papers import yang2020 as paper_config
from jaxtrade.data import load_dataset
from jaxtrade.data.preprocess import Preprocessor
from jaxtrade.envs.fixed_policies import constant_policy
from jaxtrade.envs.minvar import min_variance_schedule
from jaxtrade.pipeline.papers import yang2020 as Y

FEE = 0.001


@pytest.mark.parametrize("symbol", ["AAPL", "XOM"])
def test_close_only_indicators_match_talib(symbol):
    """The state's four indicators on sp500-20 (closes only) against TA-Lib fed high = low = close."""
    talib = pytest.importorskip("talib")
    from jaxtrade.data import features as F

    md = load_dataset("sp500-20")
    c = md.close[-3000:, [md.symbols.index(symbol)]]
    line, _, _ = F.macd(c)
    ours = {"macd": line, "rsi": F.rsi(c), "cci": F.cci(c, c, c), "adx": F.adx(c, c, c)}
    x = c[:, 0]
    ref = {"macd": talib.MACD(x, 12, 26, 9)[0], "rsi": talib.RSI(x, 14), "cci": talib.CCI(x, x, x, 20),
           "adx": talib.ADX(x, x, x, 14)}
    for k in ours:
        ok = ~np.isnan(ref[k])
        np.testing.assert_array_equal(np.isnan(ours[k][:, 0]), ~ok, err_msg=k)
        np.testing.assert_allclose(ours[k][ok, 0], ref[k][ok], rtol=1e-6, atol=1e-6, err_msg=k)


def test_plan_quarters_rows_thresholds_and_no_lookahead():
    dates = pd.bdate_range("2008-01-01", "2012-12-31")
    turb = np.random.default_rng(0).gamma(2.0, 1.0, len(dates))
    kw = dict(start="2008-03-03", in_sample_end="2010-06-30", trade_start="2011-01-03",
              trade_end="2012-06-29", rebalance=63, validation=63)
    quarters, ins = Y.plan_quarters(dates, turb, **kw)
    first, ins_end = ins["rows"]
    assert dates[first] == pd.Timestamp("2008-03-03") and dates[ins_end] == pd.Timestamp("2010-06-30")
    assert ins["q90"] == pytest.approx(np.quantile(turb[first:ins_end + 1], 0.9))
    assert ins["max"] == pytest.approx(turb[first:ins_end + 1].max())
    assert dates[quarters[0].trade[0]] == pd.Timestamp("2011-01-03")
    for q in quarters:
        assert q.train[0] == first and q.train[1] == q.val[0] - 1          # growing window, up to val
        assert q.val[1] - q.val[0] + 1 == 63 and q.val[1] == q.trade[0] - 1
        recent = turb[q.val[0] - 63:q.val[0]].mean()
        assert q.threshold == (ins["q90"] if recent > ins["q90"] else ins["max"])
    assert [q.trade[0] for q in quarters[1:]] == [q.trade[1] + 1 for q in quarters[:-1]]
    # a storm in the validation window before quarter 3 raises nothing before it: the thresholds of
    # quarters 0..3 read rows before their validation windows only; quarter 4's reads the storm
    storm = turb.copy()
    storm[quarters[3].val[0]:quarters[3].val[1] + 1] = 1e6
    stormy, ins2 = Y.plan_quarters(dates, storm, **kw)
    assert ins2 == ins
    assert [q.threshold for q in stormy[:4]] == [q.threshold for q in quarters[:4]]
    assert stormy[4].gate_rule == "q90"


def test_pick_follows_the_authors_ties():
    order = ("ppo", "ddpg", "a2c")
    assert Y.pick({"ppo": 1.0, "a2c": 1.0, "ddpg": 1.0}, order) == "ppo"      # PPO if >= both
    assert Y.pick({"ppo": 0.0, "a2c": 1.0, "ddpg": 1.0}, order) == "ddpg"     # A2C only if > both
    assert Y.pick({"ppo": 0.0, "a2c": 2.0, "ddpg": 1.0}, order) == "a2c"
    assert Y.pick({"ppo": -1.0, "a2c": -3.0, "ddpg": -2.0}, order) == "ppo"


def test_paper_sharpe():
    v = np.array([100.0, 101.0, 100.0, 102.0])
    r = np.diff(v) / v[:-1]
    assert Y.paper_sharpe(v) == pytest.approx(2 * r.mean() / r.std(ddof=1))


def test_switching_policy_plays_each_quarters_model():
    # two "agents", three quarters starting at steps 0, 3, 5; agent a's model q answers 10a + q
    pols = [[constant_policy(jnp.full((2,), 10.0 * a + q), jnp.float32) for q in range(3)] for a in range(2)]
    policy = Y.switching_policy(pols, choice=[1, 0, 1], starts=[0, 3, 5])
    carry, got = policy.init(), []
    act = jax.jit(policy.act)
    for _ in range(7):
        action, carry = act(jax.random.key(0), carry, None)
        got.append(float(action[0]))
    assert got == [10.0, 10.0, 10.0, 1.0, 1.0, 12.0, 12.0]


# BASELINES AGAINST A PANDAS LEDGER


def target_ledger(close: pd.DataFrame, gate: pd.Series, schedule: dict, *, cash: float, fee: float):
    """Trading to target weights at each step's close, written from the rules in words: a gated step
    (gate[t]) sells everything; a scheduled step trades every asset to weight x value (value before the
    trade); any other step keeps the book, except the first one after the book was emptied, which buys the
    last weights again. Buys that the cash (after sells and every cost) cannot pay are scaled down together,
    leaving 1e-5 of them unspent. Returns the per-step frame (value before the trade, costs, traded value,
    positions after the trade) and the final value."""
    n = close.shape[1]
    h = np.zeros(n)
    last_w, held_w = None, np.zeros(n)
    rows = []
    for t in range(len(close) - 1):
        p = close.iloc[t].to_numpy()
        v0 = cash + h @ p
        if t in schedule:
            last_w = np.asarray(schedule[t], np.float64)
        trade_now = gate.iloc[t] or t in schedule or (held_w.sum() <= 0 and last_w is not None)
        target = np.zeros(n) if gate.iloc[t] else last_w
        shares = target * v0 / p - h if trade_now else np.zeros(n)
        cost = fee * np.abs(shares * p)
        buy = shares > 0
        buys = (shares * p)[buy].sum()
        avail = cash - (shares * p)[~buy].sum() - cost.sum()
        if buys > avail:
            alpha = min(max(avail / buys, 0.0), 1.0) * (1 - 1e-5)
            shares[buy] *= alpha
            cost[buy] = fee * np.abs(shares[buy] * p[buy])
        h = h + shares
        cash -= (shares * p).sum() + cost.sum()
        if trade_now:
            held_w = target
        rows.append((v0, cost.sum(), np.abs(shares * p).sum(), *(h * p)))
    frame = pd.DataFrame(rows, columns=["value", "costs", "traded", *[f"pos_{i}" for i in range(n)]])
    return frame, cash + h @ close.iloc[-1].to_numpy()


@pytest.fixture(scope="module")
def baseline_world():
    """4 stocks, 2016-01-04 .. 2018-12-31, quarters whose threshold is the in-sample median (so the gate
    fires often), and the protocol's baseline frames on that trading split (float64)."""
    cfg = paper_config.get_config()
    md = load_dataset("sp500-20")
    idx = [md.symbols.index(s) for s in ("AAPL", "JNJ", "KO", "XOM")]
    md = dataclasses.replace(md, symbols=tuple(md.symbols[i] for i in idx), close=md.close[:, idx], _cache={})
    turb = md.features().turbulence
    quarters, ins = Y.plan_quarters(md.dates, turb, start="2009-01-01", in_sample_end="2015-09-30",
                                    trade_start="2016-01-04", trade_end="2018-12-31", rebalance=63,
                                    validation=63)
    median = float(np.median(turb[ins["rows"][0]:ins["rows"][1] + 1]))
    quarters = [dataclasses.replace(q, threshold=median * (1 + 0.2 * (q.index % 3))) for q in quarters]
    pre = Preprocessor.fit(md, (md.dates[ins["rows"][0]], md.dates[ins["rows"][1]]), window=1)
    lo, hi = quarters[0].trade[0], quarters[-1].trade[1]
    split = Y._trade_split(Y._indicators(pre.transform(md, (md.dates[lo], md.dates[hi]))), quarters, lo)
    frames = Y.baseline_frames(split, md, lo, Y._env_config(cfg, random_start=False), cov_window=252)
    return md, split, quarters, frames, lo


def test_trade_split_applies_each_quarters_threshold(baseline_world):
    md, split, quarters, _, lo = baseline_world
    raw = md.features().turbulence
    for q in quarters:
        for t in (q.trade[0], q.trade[0] + 1, q.trade[1]):
            r = t - lo + split.start                    # the split's row of data row t
            assert (split.turbulence[r - 1] > 1.0) == (raw[t - 1] > q.threshold)


@pytest.mark.parametrize("name", ["equal_weight_buy_hold", "min_variance"])
def test_baselines_match_pandas_ledger(baseline_world, name):
    md, split, quarters, frames, lo = baseline_world
    frame = frames[name][0]
    s = split.start
    close = pd.DataFrame(split.close[s:], index=split.dates[s:])
    gate = pd.Series(split.turbulence[s - 1:-1] > 1.0, index=close.index)     # step t reads row t-1
    assert 0.1 < gate[:-1].mean() < 0.9                                        # the gate both fires and lifts
    n = close.shape[1]
    if name == "equal_weight_buy_hold":
        schedule = {0: np.full(n, 1.0 / n)}
    else:                                     # the weights are the library's; the accounting is the ledger's
        months = close.index.to_period("M")
        rows = [0] + [i for i in range(1, len(close) - 1) if months[i] != months[i - 1]]
        history = md.close[lo - s - 252:lo - s]
        w = min_variance_schedule(np.concatenate([history, split.close]), np.asarray(rows) + s + len(history))
        schedule = dict(zip(rows, w, strict=True))
    ledger, final = target_ledger(close, gate, schedule, cash=1_000_000.0, fee=FEE)
    ours = frame.iloc[:-1].reset_index(drop=True)
    traded_rows = np.flatnonzero(ledger.traded.to_numpy() > 0)
    first50 = traded_rows[:50]
    assert len(traded_rows) >= (10 if name == "equal_weight_buy_hold" else 50)
    np.testing.assert_allclose(ours.value[first50], ledger.value[first50], atol=0.005, rtol=0)
    np.testing.assert_allclose(ours.costs[first50], ledger.costs[first50], atol=0.005, rtol=0)
    traded = ours.turnover * ours.value
    np.testing.assert_allclose(traded[first50], ledger.traded[first50], atol=0.005, rtol=0)
    post = ours.value - ours.costs
    for i, sym in enumerate(split.symbols):
        position = ours[f"w_{sym}"] * post
        np.testing.assert_allclose(position[first50], ledger[f"pos_{i}"][first50], atol=0.005, rtol=0)
    assert frame.value.iloc[-1] == pytest.approx(final, rel=1e-9)


def test_index_baseline_is_the_benchmark(baseline_world):
    _, split, _, frames, _ = baseline_world
    b = split.benchmark[split.start:]
    np.testing.assert_allclose(frames["index"][0].value.to_numpy(), 1_000_000.0 * b / b[0], rtol=1e-12)


# THE REDUCED PROTOCOL, TWICE


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory):
    cfg = paper_config.reduced_config()
    return [Y.run(cfg, tmp_path_factory.mktemp(f"yang{i}")) for i in range(2)]


def test_reduced_protocol_twice_same_bytes(two_runs):
    a, b = (p.parent for p in two_runs)
    for name in ("report.csv", "table_by_seed.csv", "quarters.csv", "report.md"):
        assert (a / name).read_bytes() == (b / name).read_bytes(), name
    table = pd.read_csv(a / "report.csv")
    assert list(table.strategy) == ["Ensemble", "PPO", "A2C", "DDPG", "Equal weight", "Min-Variance", "Index"]
    assert (table.n_seeds[:4] == 2).all() and (table.n_seeds[4:] == 1).all()
    assert table.loc[table.strategy == "Ensemble", "sharpe_paper"].item() == pytest.approx(1.30)
    assert table.loc[table.strategy == "Index", "max_drawdown_paper"].item() == pytest.approx(-0.371)
    assert math.isnan(table.loc[table.strategy == "Equal weight", "sharpe_paper"].item())
    result = json.loads((a / "result.json").read_text())
    assert result["machine"]["cpu"] and result["machine"]["device_count"] >= 1   # the machine type
    report = two_runs[0].read_text()
    assert "reproduced on sp500-20, not the paper's data" in report.splitlines()[0]
    assert "departs from the paper" in report and "deflated Sharpe" in report
    quarters = pd.read_csv(a / "quarters.csv")
    assert len(quarters) == 2 and all(math.isfinite(x) for x in quarters.ppo_val_sharpe)
    assert (quarters[["ppo_picked", "a2c_picked", "ddpg_picked"]].sum(axis=1) == 2).all()

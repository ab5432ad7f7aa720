"""The live runner: a recorded session equals the backtest bit for bit (observations, actions, carry, value);
orders (sells first, zeros skipped, whole shares, buying power); the safety rules (non-finite observation,
turbulence gate, market hours, flattening before the close); partial fills, a rejected order and the
crash between submit and journal against the local fake Alpaca; the session schedule; keys never written;
`experiments.paper_trade --dry_run` against the fake. No test touches the network.

One untrained smoke-config model (window 3, a GRU core) serves every test; its validation month, January
2015, holds a turbulence-gate day (2015-01-28).
"""

import dataclasses
import json
import logging
import os
import signal
import subprocess
import sys

import jax
import numpy as np
import pandas as pd
import pytest

from jaxtrade import eval as evaluate
from jaxtrade.data import load_csv, load_dataset
from jaxtrade.live import replay
from jaxtrade.live import runner as runner_lib
from jaxtrade.live.broker import AlpacaPaper, SimBroker
from jaxtrade.live.runner import RecordedBars, Runner, plan_orders, scale_buys
from jaxtrade.train import artifact, evaluation
from jaxtrade.train.setup import make_split_env

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
GATE_DAY = pd.Timestamp("2015-01-28")


def save_untrained(tmp_path_factory, dirname, env_name="portfolio", **env):
    """(artifact directory, policy, spec) of an untrained smoke-config model (window 3; env overrides)."""
    from experiments.configs import smoke
    from jaxtrade.agents import ppo
    from jaxtrade.train import loop
    from jaxtrade.train import setup as setup_lib
    from jaxtrade.train.config import env_config

    config = smoke.get_config()
    config.env = env_config(env_name, window=3, episode_length=16, **env)
    config.data.val = ("2015-01-01", "2015-02-01")
    s = setup_lib.build(config)
    agent = ppo.make(config, s.env)
    spec = loop.model_spec(s, agent, {"sharpe": 0.0, "split": "val"}, code_version="test")
    path = artifact.save_model(str(tmp_path_factory.mktemp("live") / dirname),
                               agent.init_params(jax.random.key(0), s.train_params), spec)
    policy, spec = artifact.load_model(path)
    return path, policy, spec


@pytest.fixture(scope="module")
def model(tmp_path_factory):
    return save_untrained(tmp_path_factory, "model", action_space="regimes")


@pytest.fixture(scope="module")
def market():
    return load_dataset("sp500-20")


def sim_runner(model, source, tmp_path, **kw):
    _, policy, spec = model
    symbols = runner_lib.traded_symbols(spec.env, spec.preprocessor.symbols)
    broker = SimBroker(symbols, spec.env["initial_cash"])
    runner = Runner(policy, spec, broker, source, journal_path=str(tmp_path / "j.jsonl"), run_id="sim", **kw)
    return runner, broker


# PARITY


@pytest.fixture(scope="module")
def single_model(tmp_path_factory):
    """A single-instrument model trading BAC (column 2) short, flat or long."""
    return save_untrained(tmp_path_factory, "single", "single", asset=2)


@pytest.mark.parametrize("which", ["model", "single_model"])
def test_a_recorded_session_equals_the_backtest_bit_for_bit(which, request, market, tmp_path):
    """Every validation bar through SimBroker: the observation (window and weights), the action, the carry and
    the portfolio value equal the backtest's on the same rows, bit for bit, the gate day included; the
    env's book and SimBroker's positions never part (no rebooking, no mismatch). For the portfolio env
    (12 regimes over 20 stocks) and the single-instrument env (short / flat / long one stock)."""
    model = request.getfixturevalue(which)
    _, policy, spec = model
    _, val = evaluation.split_of(spec, "val", market=market)
    env, params = make_split_env(spec.env, val)
    symbols = runner_lib.traded_symbols(spec.env, val.symbols)
    frame = evaluate.backtest(policy, env, params, dates=val.dates, symbols=symbols)
    runner, sim = sim_runner(model, RecordedBars(market), tmp_path, fractional=True, record_obs=True)
    recs = runner.run(val.dates[val.start:])
    n_steps, W, n = len(frame) - 1, spec.preprocessor.window, len(symbols)
    weights = frame[[f"w_{s}" for s in (*symbols, "cash")]].to_numpy(np.float32)
    # The reference: the backtest's own observations (its obs table, its weights after each trade) and its
    # key schedule (key(0) -> reset, scan; scan split per step; act key first), fed to the policy by hand.
    scan = jax.random.split(jax.random.key(0))[1]
    carry = policy.init()
    assert [r["status"] for r in recs].count("gate") == 1 and recs[val.dates[val.start:].get_loc(GATE_DAY)][
        "status"] == "gate"
    for k in range(n_steps):
        t = val.start + k
        obs = {"window": np.asarray(params.obs_table[t - W:t]),
               "state": weights[k - 1] if k else np.r_[np.zeros(n), 1.0].astype(np.float32)}
        got = recs[k]
        np.testing.assert_array_equal(np.asarray(got["obs"]["window"], np.float32), obs["window"], err_msg=k)
        np.testing.assert_array_equal(np.asarray(got["obs"]["state"], np.float32), obs["state"], err_msg=k)
        assert got["obs_digest"] == runner_lib.obs_digest(obs)
        act_key = jax.random.split(jax.random.split(scan, n_steps)[k])[0]
        action, carry = policy.act(act_key, carry, obs)
        assert got["action"] == int(action) == frame["action"].iloc[k], k
        assert got["carry"] == runner_lib.tree_to_json(carry), k
        assert np.float32(got["value"]) == np.float32(frame["value"].iloc[k]), k
        assert not got["rebooked"] and got["mismatch"] is None, k
    if which == "single_model":
        assert {a for a in frame["action"][:n_steps]} == {0, 1, 2}        # short, flat and long all traded


@pytest.fixture(scope="module")
def shares_model(tmp_path_factory):
    """A portfolio model ordering shares (Yang et al.'s layout: up to hmax shares a stock, sells first)."""
    return save_untrained(tmp_path_factory, "shares", action_space="shares")


def test_a_shares_session_orders_the_envs_own_trade(shares_model, market, tmp_path):
    """The "shares" layout sizes its own trade (`PortfolioEnv.trade`): the runner orders exactly those
    shares, so every bar's value equals the backtest's, bit for bit, and the book never parts from
    SimBroker's. (Sizing from the layout's post-trade fractions through `market.trade` instead, as the
    runner once did, buys other share counts.)"""
    _, policy, spec = shares_model
    _, val = evaluation.split_of(spec, "val", market=market)
    env, params = make_split_env(spec.env, val)
    symbols = runner_lib.traded_symbols(spec.env, val.symbols)
    frame = evaluate.backtest(policy, env, params, dates=val.dates, symbols=symbols)
    runner, _ = sim_runner(shares_model, RecordedBars(market), tmp_path, fractional=True)
    recs = runner.run(val.dates[val.start:])
    n_steps = len(frame) - 1
    assert frame["turnover"].iloc[:n_steps].gt(0).sum() > n_steps // 2      # it trades most bars
    for k in range(n_steps):
        assert np.float32(recs[k]["value"]) == np.float32(frame["value"].iloc[k]), k
        assert not recs[k]["rebooked"] and recs[k]["mismatch"] is None, k


def test_a_session_compiles_once_not_per_bar(model, market, tmp_path):
    """After the first bars (and the key schedule's doubling at k = 4), bars k = 5..7 compile nothing: the
    env's derived tables, the book, the policy and the sizing reuse their first compile."""
    runner, _ = sim_runner(model, RecordedBars(market), tmp_path, fractional=True)
    days = market.dates[market.dates.searchsorted(pd.Timestamp("2015-01-02")):][:8]
    runner.run(days[:5])
    compiles = []

    def listener(event, secs, **kw):
        if event == "/jax/core/compile/backend_compile_duration":
            compiles.append(event)

    jax.monitoring.register_event_duration_secs_listener(listener)
    try:
        recs = runner.run(days[5:])
    finally:
        jax.monitoring.unregister_event_duration_listener(listener)
    assert [r["status"] for r in recs] == ["traded"] * 3 and compiles == []


# ORDERS


def test_orders_sell_first_skip_zeros_and_round_towards_zero():
    shares = np.array([2.7, 0.0, -3.9, 0.4, -0.2, 5.0], np.float32)
    symbols = ["A", "B", "C", "D", "E", "F"]
    assert plan_orders(symbols, shares, fractional=False) == [("C", -3.0), ("A", 2.0), ("F", 5.0)]
    assert plan_orders(symbols, shares, fractional=True) == [
        ("C", float(np.float32(-3.9))), ("E", float(np.float32(-0.2))), ("A", float(np.float32(2.7))),
        ("D", float(np.float32(0.4))), ("F", 5.0)]


def test_buys_are_scaled_down_to_the_buying_power():
    prices = {"A": 10.0, "B": 50.0}
    buys = [("A", 30.0), ("B", 10.0)]                       # 300 + 500 = 800
    assert scale_buys(buys, prices, 1000.0, fractional=False) == (buys, 1.0)
    scaled, alpha = scale_buys(buys, prices, 400.0, fractional=False)
    assert alpha == 0.5 and scaled == [("A", 15.0), ("B", 5.0)]
    scaled, alpha = scale_buys(buys, prices, 100.0, fractional=False)   # 3.75 A, 1.25 B -> 3, 1
    assert scaled == [("A", 3.0), ("B", 1.0)] and sum(q * prices[s] for s, q in scaled) <= 100.0
    assert scale_buys(buys, prices, 20.0, fractional=False)[0] == []       # 0.75 A, 0.25 B: nothing to buy
    scaled, _ = scale_buys(buys, prices, 400.0, fractional=True)
    assert scaled == [("A", 15.0), ("B", 5.0)]


# SAFETY


def test_a_non_finite_observation_aborts_the_bar(model, market, tmp_path, caplog):
    """A NaN close inside the window makes the observation non-finite: the bar is aborted, nothing is sent,
    an alert is logged and journaled; it is never zero-filled."""
    day = pd.Timestamp("2015-01-09")
    close = np.array(market.close)
    close[market.dates.get_loc(day) - 2, 3] = np.nan
    broken = dataclasses.replace(market, close=close, _cache={})
    runner, sim = sim_runner(model, RecordedBars(broken), tmp_path)
    with caplog.at_level(logging.ERROR, logger="jaxtrade"):
        rec = runner.step(day)
    assert rec["status"] == "aborted" and "non-finite observation" in rec["reason"]
    assert sim.orders("all") == [] and sim.positions() == {}
    assert any("ALERT" in r.message and "non-finite" in r.message for r in caplog.records)
    assert json.loads(open(tmp_path / "j.jsonl").read().splitlines()[-1])["status"] == "aborted"


class FakeBars(RecordedBars):
    """A replay whose bar closes are also the fake Alpaca's fill prices."""

    def __init__(self, md, fake):
        super().__init__(md)
        self.fake = fake

    def history(self, bar_time):
        md = super().history(bar_time)
        self.fake.prices.update(zip(md.symbols, md.close[-1].tolist(), strict=True))
        return md


@pytest.fixture
def paper_runner(model, market, fake_alpaca, alpaca_clients, tmp_path):
    """A factory of Runners trading recorded sp500-20 bars on the fake's paper account (fills at the bars'
    closes)."""
    _, policy, spec = model

    def make(**kw):
        return Runner(policy, spec, AlpacaPaper(alpaca_clients, sleep=lambda s: None),
                      FakeBars(market, fake_alpaca), journal_path=str(tmp_path / "paper.jsonl"),
                      run_id="paper", fill_wait_s=0.0, **kw)

    return make


def test_the_gate_closes_everything_through_delete_positions(paper_runner, fake_alpaca):
    runner = paper_runner()
    first = runner.step(GATE_DAY - pd.Timedelta(days=1))
    assert first["status"] == "traded" and fake_alpaca.positions
    gate = runner.step(GATE_DAY)
    assert gate["status"] == "gate" and gate["gate"] and "turbulence gate" in gate["reason"]
    (delete,) = fake_alpaca.requests_to("/v2/positions", "DELETE")
    assert delete["query"]["cancel_orders"].lower() == "true"
    assert fake_alpaca.positions == {} and gate["positions"] == {} and gate["mismatch"] is None
    assert len(gate["closed"]) == len(first["positions"])


def test_no_orders_while_the_market_is_closed(paper_runner, fake_alpaca):
    fake_alpaca.clock = dict(fake_alpaca.clock, is_open=False)
    rec = paper_runner().step("2015-01-09")
    assert rec["status"] == "skipped" and "market closed" in rec["reason"]
    assert fake_alpaca.requests_to("/v2/orders", "POST") == []


def test_flattening_before_the_close(paper_runner, fake_alpaca):
    fake_alpaca.positions.update(AAPL=5.0)
    fake_alpaca.clock = dict(fake_alpaca.clock, timestamp="2024-03-01T15:59:00-05:00")   # 60 s before 16:00
    rec = paper_runner(flatten_before_close_s=120).step("2015-01-09")
    assert rec["status"] == "flatten" and fake_alpaca.positions == {}
    assert fake_alpaca.requests_to("/v2/orders", "POST") == []
    assert len(fake_alpaca.requests_to("/v2/positions", "DELETE")) == 1


def test_partial_fills_and_a_rejected_order_are_reconciled(paper_runner, market, fake_alpaca):
    """Bar 1 fills half of every order: the broker's positions are journaled against what was ordered; bar 2
    cancels bar 1's open remainders and books the broker's positions; bar 3's first order is rejected: the
    bar is journaled as rejected with the order echoed, its other orders still go out."""
    runner = paper_runner()
    fake_alpaca.fill = "partial"
    days = market.dates[market.dates.searchsorted(pd.Timestamp("2015-01-05")):][:3]
    r1 = runner.step(days[0])
    assert r1["status"] == "traded" and r1["orders"]
    halves = {o["symbol"]: {"expected": o["qty"], "broker": o["qty"] / 2} for o in r1["orders"]}
    assert r1["mismatch"] == halves
    assert r1["positions"] == fake_alpaca.positions
    fake_alpaca.fill = "full"
    r2 = runner.step(days[1])
    cancelled = {r["path"].rsplit("/", 1)[1] for r in fake_alpaca.requests_to("/v2/orders/", "DELETE")}
    assert cancelled == {o["id"] for o in r1["orders"]}
    assert r2["rebooked"] and r2["positions_before"] == r1["positions"]
    held = np.array([r1["positions"].get(s, 0.0) for s in runner.symbols], np.float32)
    (holdings,) = [x["value"] for x in r2["book"] if x["name"] == ".holdings"]
    np.testing.assert_array_equal(np.asarray(holdings, np.float32), held)
    fake_alpaca.reject_next_order("insufficient buying power")
    r3 = runner.step(days[2])
    rejected = [o for o in r3["orders"] if o["status"] == "rejected"]
    assert r3["status"] == "rejected" and len(rejected) == 1 and rejected[0] == r3["orders"][0]
    error = rejected[0]["error"]
    assert rejected[0]["client_order_id"] in error and "insufficient buying power" in error
    posted = [r["json"]["client_order_id"] for r in fake_alpaca.requests_to("/v2/orders", "POST")]
    assert posted[-len(r3["orders"]):] == [o["client_order_id"] for o in r3["orders"]]


def test_a_crash_between_submit_and_journal_never_doubles_an_order(model, market, fake_alpaca, alpaca_clients,
                                                                     tmp_path):
    """A runner process SIGKILLed right after submitting a bar's orders, before journaling them; restarted,
    it resumes the bar from the journal: the fake saw each order exactly once; the next bar trades on."""
    path, policy, spec = model
    day = pd.Timestamp("2015-01-09")
    journal = tmp_path / "crash.jsonl"
    closes = market.close[market.dates.get_loc(day)].tolist()
    fake_alpaca.prices.update(zip(market.symbols, closes, strict=True))
    env = dict(os.environ, APCA_API_KEY_ID=fake_alpaca.key_id, APCA_API_SECRET_KEY=fake_alpaca.secret,
               JAXTRADE_TEST_KILL_AFTER_SUBMIT=f"{day:%Y%m%dT%H%M}")
    argv = [sys.executable, "-m", "tests.live.runner_worker", path, fake_alpaca.url, str(journal),
            day.isoformat()]
    proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == -signal.SIGKILL, proc.stderr[-2000:]
    (intent,) = [json.loads(line) for line in open(journal)]
    assert intent["phase"] == "intent" and intent["orders"]
    posts = lambda: [r["json"]["client_order_id"] for r in fake_alpaca.requests_to("/v2/orders", "POST")]
    assert sorted(posts()) == sorted(o["client_order_id"] for o in intent["orders"])
    runner = Runner(policy, spec, AlpacaPaper(alpaca_clients), FakeBars(market, fake_alpaca),
                    journal_path=str(journal), run_id="crash", fill_wait_s=0.0)
    done = runner.step(day)
    assert done["resumed"] and done["status"] == "traded"
    assert len(done["orders"]) == len(intent["orders"])
    assert all(o.get("found_at_broker") for o in done["orders"])
    assert sorted(posts()) == sorted(o["client_order_id"] for o in intent["orders"])      # each exactly once
    assert done["mismatch"] is None and done["positions"] == fake_alpaca.positions
    nxt = runner.step(market.dates[market.dates.get_loc(day) + 1])
    assert nxt["status"] == "traded" and not nxt["resumed"]
    assert len(posts()) == len(set(posts())) == len(intent["orders"]) + len(nxt["orders"])


# THE SCHEDULE


def test_wake_times_follow_the_calendar():
    from jaxtrade.live.broker import Session

    ny = lambda s: pd.Timestamp(s, tz="America/New_York").tz_convert("UTC")
    days = [Session(pd.Timestamp("2024-11-29"), ny("2024-11-29 09:30"), ny("2024-11-29 13:00")),  # early
            Session(pd.Timestamp("2024-12-02"), ny("2024-12-02 09:30"), ny("2024-12-02 16:00"))]
    daily = list(runner_lib.wake_times(days, "1Day", lead_s=60))
    assert daily == [(pd.Timestamp("2024-11-29"), ny("2024-11-29 12:59")),
                     (pd.Timestamp("2024-12-02"), ny("2024-12-02 15:59"))]
    bars = list(runner_lib.wake_times(days, "15Min", lead_s=5))
    assert len(bars) == 14 + 26
    assert bars[0] == (pd.Timestamp("2024-11-29 14:30"), ny("2024-11-29 09:44:55"))
    assert all((b[1] - a[1]).total_seconds() == 900 for a, b in zip(bars[:13], bars[1:14], strict=True))
    assert bars[14][0] == pd.Timestamp("2024-12-02 14:30")


def test_live_bars_sleep_until_each_bar(fake_alpaca, alpaca_clients):
    """From the fake's clock (2024-03-01 15:00 New York), 1Day bars: today's, an hour minus the lead later;
    then the calendar has no session left."""
    slept = []
    now = [0.0]

    def sleep(s):
        slept.append(s)
        now[0] += s

    bars = list(runner_lib.live_bars(AlpacaPaper(alpaca_clients), "1Day", lead_s=60, sleep=sleep,
                                     monotonic=lambda: now[0]))
    assert bars == [pd.Timestamp("2024-03-01")] and slept == [3600 - 60]


def test_a_torn_last_journal_line_is_cut_off(tmp_path):
    journal = runner_lib.Journal(str(tmp_path / "j.jsonl"))
    journal.append({"bar": 1})
    with open(journal.path, "a") as f:
        f.write('{"bar": 2, "ord')                        # a crash while writing the line
    assert journal.records() == [{"bar": 1}]
    journal.append({"bar": 3})
    assert runner_lib.Journal(journal.path).records() == [{"bar": 1}, {"bar": 3}]


def test_alpaca_bars_are_shaped_like_the_training_data(fake_alpaca, alpaca_clients, market):
    """Alpaca's bars cut to the training data's fields (closes only here), the benchmark symbol as the
    benchmark, and a bar not published yet as a provisional row at the last close."""
    from tests.live.fake_alpaca import daily_frame

    idx = pd.bdate_range(end="2024-02-29", periods=60, tz="UTC") + pd.Timedelta(hours=5)
    for j, s in enumerate(("AAPL", "MSFT", "SPY")):
        fake_alpaca.add_bars(s, "1Day", daily_frame(market.close[-60:, j]).set_axis(idx))
    source = runner_lib.AlpacaBars(alpaca_clients, ("AAPL", "MSFT"), "1Day", benchmark="SPY",
                                   fields=(False, False), history_rows=50,
                                   now=lambda: pd.Timestamp("2024-03-01T20:55:00Z"))
    md = source.history(pd.Timestamp("2024-03-01"))
    assert md.symbols == ("AAPL", "MSFT") and md.open is None and md.volume is None
    assert md.dates[-2:].tolist() == [pd.Timestamp("2024-02-29"), pd.Timestamp("2024-03-01")]
    np.testing.assert_array_equal(md.close[-2:], market.close[[-1, -1], :2])   # provisional: the last close
    np.testing.assert_array_equal(md.benchmark[-2:], market.close[[-1, -1], 2])
    assert md.n_rows == len(idx[idx >= pd.Timestamp(source.start_of("2024-03-01"), tz="UTC")]) + 1


# A SESSION FROM THE COMMAND LINE, KEYS NEVER WRITTEN


def test_paper_trade_dry_run_against_the_fake_writes_no_key(model, market, fake_alpaca, tmp_path):
    """`python -m experiments.paper_trade --dry_run` against the fake: bars, clock and calendar from the fake,
    fills simulated (no order reaches it); the keys (from the environment) appear in no file the run wrote."""
    path, _, spec = model
    n = 420
    idx = pd.bdate_range(end="2024-03-01", periods=n, tz="UTC") + pd.Timedelta(hours=5)
    from tests.live.fake_alpaca import daily_frame

    for j, s in enumerate(market.symbols):
        fake_alpaca.add_bars(s, "1Day", daily_frame(market.close[-n:, j], freq="B").set_axis(idx))
    fake_alpaca.add_bars("SPY", "1Day", daily_frame(market.benchmark[-n:] / 10).set_axis(idx))
    fake_alpaca.clock = dict(fake_alpaca.clock, timestamp="2024-03-01T15:59:30-05:00")
    out = tmp_path / "paper"
    env = dict(os.environ, APCA_API_KEY_ID=fake_alpaca.key_id, APCA_API_SECRET_KEY=fake_alpaca.secret)
    argv = [sys.executable, "-m", "experiments.paper_trade", f"--model={path}", "--timeframe=1Day",
            "--dry_run", f"--url_override={fake_alpaca.url}", "--max_bars=1", f"--journal_dir={out}",
            "--run_id=dry", "--verbosity=verbose"]
    proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    lines = proc.stdout.strip().splitlines()
    assert lines[-1] == str(out / "dry.jsonl") and lines[0].startswith("2024-03-01T00:00:00 traded")
    (rec,) = [json.loads(line) for line in open(out / "dry.jsonl") if '"done"' in line]
    assert rec["status"] == "traded" and rec["orders"]
    assert all(o["id"].startswith("sim-") and o["status"] == "filled" for o in rec["orders"])
    assert fake_alpaca.requests_to("/v2/orders") == [] and fake_alpaca.requests_to("/v2/stocks/bars")
    assert sorted(os.listdir(out)) == ["dry.json", "dry.jsonl", "dry.log"]
    for name in os.listdir(out):
        text = open(out / name, encoding="utf-8").read()
        assert fake_alpaca.key_id not in text and fake_alpaca.secret not in text, name
    printed = proc.stdout + proc.stderr
    assert fake_alpaca.secret not in printed and fake_alpaca.key_id not in printed


# OFFLINE: THE BUNDLED SAMPLE, NO KEYS


def test_offline_dry_run_on_the_sample_prints_each_bar_once_and_a_summary(model, tmp_path):
    """`paper_trade --bars_csv=sample --dry_run` with no key anywhere: each of the sample's 20 bars printed
    once (stdout and stderr together, at the default verbosity), then the session summary, the journal last;
    the summary's equity and costs agree with the journal."""
    path, _, _ = model
    env = {k: v for k, v in os.environ.items() if not k.startswith("APCA_")}
    argv = [sys.executable, "-m", "experiments.paper_trade", f"--model={path}", "--bars_csv=sample",
            "--dry_run", f"--journal_dir={tmp_path}", "--run_id=offline"]
    proc = subprocess.run(argv, cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr[-3000:]
    printed = proc.stdout + proc.stderr
    bars = pd.bdate_range("2022-11-30", "2022-12-28").drop(pd.Timestamp("2022-12-26"))    # Christmas observed
    assert len(bars) == 20
    for b in bars:
        assert printed.count(f"{b:%Y-%m-%d}T00:00:00") == 1, (b, printed)
    lines = proc.stdout.strip().splitlines()
    assert lines[-1] == str(tmp_path / "offline.jsonl")
    records = runner_lib.Journal(lines[-1]).records()
    done = [r for r in records if r["phase"] == "done"]
    s = replay.summarize(records)
    assert sum(s["bars"].values()) == 20 and s["orders"] > 0 and s["fills"] == s["orders"]
    assert s["start_equity"] == 1_000_000.0 and s["equity"] == done[-1]["equity"] and s["costs"] > 0
    assert s["return"] == pytest.approx(done[-1]["equity"] / 1e6 - 1)
    assert lines[-3:-1] == replay.summary_lines(s) and lines[-3].startswith("session: 20 bars (")


def test_export_bars_writes_what_a_replay_reads(market, tmp_path):
    """`export_bars`: the wide layout with the benchmark column, history rows before start, read back
    exactly by `load_csv`; a start without enough history is refused."""
    out = str(tmp_path / "bars.csv")
    first, last, rows = replay.export_bars(market, out, start="2022-12-01", end="2022-12-09", history=300)
    assert (first, last) == (pd.Timestamp("2022-12-01"), pd.Timestamp("2022-12-09")) and rows == 307
    md = load_csv(out, benchmark_column="SPY")
    lo = int(market.dates.searchsorted(first)) - 300
    assert md.symbols == market.symbols and md.dates.equals(market.dates[lo:lo + rows])
    np.testing.assert_array_equal(md.close, market.close[lo:lo + rows])
    np.testing.assert_array_equal(md.benchmark, market.benchmark[lo:lo + rows])
    with pytest.raises(ValueError, match="rows before 1990-01-03, the replay needs 300"):
        replay.export_bars(market, out, start="1990-01-03", history=300)

"""Host-loop pieces on their own: budget resolution, composite score, early stopping, checkpoints."""

import math
import os
import shutil

import numpy as np
import pytest

from jaxtrade.train import budget as budget_lib
from jaxtrade.train.checkpoints import CheckpointError, Checkpoints
from jaxtrade.train.metrics import EarlyStopping, composite_score, iteration_row


def test_budget_first_set_field_wins():
    kw = dict(n_envs=8, n_steps=16, n_devices=2, episode_length=64)  # 256 steps per iteration
    b = budget_lib.resolve_budget(total_timesteps=1000, episodes=3, iterations=7, **kw)
    assert (b.source, b.iterations, b.steps_per_iteration) == ("total_timesteps", 4, 256)  # ceil(1000/256)
    b = budget_lib.resolve_budget(total_timesteps=None, episodes=10, iterations=7, **kw)
    assert (b.source, b.iterations) == ("episodes", 3)  # ceil(640/256)
    b = budget_lib.resolve_budget(total_timesteps=None, episodes=0, iterations=7, **kw)
    assert (b.source, b.iterations, b.total_timesteps) == ("iterations", 7, 7 * 256)
    with pytest.raises(ValueError, match="set one of"):
        budget_lib.resolve_budget(total_timesteps=None, episodes=None, iterations=None, **kw)


def test_memory_cap_cuts_and_warns(run_log):
    gib = 2**30
    n = budget_lib.cap_n_envs(4096, max_gb=1.0, fixed_bytes=0.5 * gib, bytes_per_env=gib / 2048,
                              multiple_of=8)
    assert n == 1024
    assert "cut from 4096 to 1024" in run_log.text
    assert budget_lib.cap_n_envs(512, max_gb=1.0, fixed_bytes=0.5 * gib, bytes_per_env=gib / 2048) == 512
    assert budget_lib.cap_n_envs(512, max_gb=None, fixed_bytes=0, bytes_per_env=1) == 512
    with pytest.raises(ValueError, match="no environment"):
        budget_lib.cap_n_envs(8, max_gb=0.4, fixed_bytes=0.5 * gib, bytes_per_env=1)


def test_composite_weights_and_ranges():
    # Hand-derived: .4 tanh(1/2) + .2 tanh(.1/.2) + .1 (2*.6-1) + .1 (2*.75-1) + .2 * (-.2)
    got = composite_score(sharpe=1.0, annual_return=0.1, win_rate=0.6, profit_rate=0.75, max_drawdown=-0.2)
    want = 0.4 * math.tanh(0.5) + 0.2 * math.tanh(0.5) + 0.1 * 0.2 + 0.1 * 0.5 - 0.2 * 0.2
    assert got == pytest.approx(want, abs=1e-12)
    better = composite_score(sharpe=2.0, annual_return=0.1, win_rate=0.6, profit_rate=0.75, max_drawdown=-0.2)
    assert better > got
    deeper = composite_score(sharpe=1.0, annual_return=0.1, win_rate=0.6, profit_rate=0.75, max_drawdown=-0.5)
    assert deeper < got
    nan = float("nan")
    assert composite_score(sharpe=nan, annual_return=0, win_rate=nan, profit_rate=nan, max_drawdown=0) == 0.0
    with pytest.raises(ValueError, match="approx_kl"):    # agent diagnostics never choose models
        composite_score(sharpe=1.0, annual_return=0.1, win_rate=0.6, profit_rate=0.75, max_drawdown=-0.2,
                        weights={"approx_kl": 0.1})


def test_iteration_row_ratios_and_nan_without_denominator():
    raw = dict(episodes=np.float32(4), episode_return_sum=np.float32(0.2), episodes_profitable=np.float32(3),
               trades_closed=np.float32(0), trades_won=np.float32(0), reward_sum=np.float32(0.1),
               reward_sq_sum=np.float32(0.02), env_steps=np.float32(10), costs_sum=np.float32(1.0),
               turnover_sum=np.float32(2.0), episode_return_sq_sum=np.float32(0.02))
    row = iteration_row(raw, iteration=3, periods_per_year=252)
    assert row["episode_return"] == pytest.approx(0.05)
    assert row["profit_rate"] == pytest.approx(0.75)
    assert math.isnan(row["win_rate"])  # no closed trade: unknown, not 0
    mean, var = 0.01, 0.002 - 0.0001
    assert row["sharpe"] == pytest.approx(mean / math.sqrt(var) * math.sqrt(252), rel=1e-5)
    # A missing trading statistic is an error, not a silent 0.
    with pytest.raises(KeyError, match="reward_sq_sum"):
        iteration_row({k: v for k, v in raw.items() if k != "reward_sq_sum"}, iteration=3,
                      periods_per_year=252)


def test_early_stopping_patience_and_roundtrip():
    es = EarlyStopping(patience=2, min_delta=0.1)
    assert not es.update(1.0)
    assert not es.update(1.05)        # not better by min_delta
    restored = EarlyStopping.from_json(es.to_json())
    assert restored == es
    assert restored.update(1.09)      # second evaluation without gain
    assert not EarlyStopping(patience=0, min_delta=0).update(float("nan"))


def test_half_written_checkpoint_is_skipped(tmp_path, run_log):
    ck = Checkpoints(str(tmp_path))
    state = {"w": np.arange(4, dtype=np.float32), "n": np.asarray(1)}
    ck.save("latest", 1, state, {"iteration": 1})
    ck.save("latest", 2, dict(state, w=state["w"] + 1), {"iteration": 2})
    # A half-written step 3: the directory exists but its state item never landed.
    src, dst = os.path.join(ck.directory("latest"), "2"), os.path.join(ck.directory("latest"), "3")
    shutil.copytree(src, dst)
    shutil.rmtree(os.path.join(dst, "state"))
    fresh = Checkpoints(str(tmp_path))
    got = fresh.restore("latest", state)
    assert got.step == 2 and got.meta == {"iteration": 2}
    np.testing.assert_array_equal(got.state["w"], state["w"] + 1)
    assert "unreadable" in run_log.text and os.path.join("latest", "3") in run_log.text
    assert fresh.restore("composite", state) is None



def test_checkpoint_steps_that_do_not_restore_raise_with_each_reason(tmp_path):
    ck = Checkpoints(str(tmp_path))
    state = {"w": np.arange(4, dtype=np.float32), "n": np.asarray(1)}
    ck.save("latest", 1, state, {"iteration": 1})
    ck.save("latest", 2, state, {"iteration": 2})
    with open(os.path.join(ck.directory("latest"), "2", "state", "manifest.ocdbt"), "wb") as f:
        f.write(b"not a checkpoint")                               # step 2 corrupt, step 1 of another shape
    with pytest.raises(CheckpointError, match=r"latest restores \(step 2: .*; step 1: .*\['w'\] saved "
                                              r"\(4,\), expected \(5,\)") as e:
        Checkpoints(str(tmp_path)).restore("latest", dict(state, w=np.zeros(5, np.float32)))
    assert e.value.directory == ck.directory("latest") and len(e.value.failures) == 2


def test_whole_split_episodes_trade_from_the_split_start_only():
    # A whole-split episode starts at row env.window; the split must carry exactly that many history
    # rows, or a backtest of the test split would trade on the validation split's last days.
    from experiments.configs import portfolio_clstm, smoke
    from jaxtrade.train import setup as setup_lib

    for cfg in (smoke.get_config(), portfolio_clstm.get_config()):
        s = setup_lib.build(cfg)
        for split, params in ((s.splits.val, s.val_params), (s.splits.test, s.test_params)):
            assert split.start == params.window == cfg.env.window
            assert split.dates[params.window] == split.traded_dates[0]


def test_progress_bar_shows_whole_names_and_the_last_known_value(tmp_path):
    from jaxtrade.train.reporting import Reporter

    rep = Reporter(str(tmp_path), total=3, initial=0, verbosity="normal", log_every=100, tensorboard=False)
    try:
        base = dict(win_rate=0.5, explained_variance=0.1, steps_per_second=1000.0)
        rep.iteration(dict(base, iteration=1, episode_return=0.123))
        first = rep._bar.postfix
        rep.iteration(dict(base, iteration=2, episode_return=float("nan")))   # no episode finished
        second = rep._bar.postfix
    finally:
        rep.close()
    for name in ("episode_return", "win_rate", "explained_variance", "steps_per_second"):
        assert f"{name}=" in first and f"{name}=" in second
    assert "episode_return=0.123" in first and "episode_return=0.123" in second and "n/a" not in second


def test_period_note_states_the_period_actually_traded_when_a_split_is_cut():
    import types

    import pandas as pd

    from jaxtrade.train.evaluation import period_note

    split = types.SimpleNamespace(name="test", traded_dates=pd.bdate_range("2022-01-03", "2022-12-28"))
    note = period_note(("2022-01-01", "2023-06-30"), split)
    assert "asked for 2022-01-01 .. 2023-06-30" in note and "data end on 2022-12-28" in note
    assert "covers 2022-01-03 .. 2022-12-28 only" in note
    assert period_note(("2022-01-01", "2022-12-28"), split) == ""
    assert period_note(("2022-01-01", "2022-12-31"), split) != ""       # asked past the last row

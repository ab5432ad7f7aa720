"""The trial ledger: what it keeps, that a resumed run does not count a trial twice, that ledgers of
one validation split pool and of two do not, and that its summary is `eval.overfitting`'s."""

import numpy as np
import pandas as pd
import pytest

from jaxtrade.eval.overfitting import trial_summary
from jaxtrade.train.trials import TrialLedger, frame_returns, trial_name


def _ledger(seed=0, n=5, t=120):
    rng = np.random.default_rng(seed)
    dates = pd.bdate_range("2015-01-02", periods=t + 1)
    ledger = TrialLedger(periods_per_year=252.0)
    for i in range(n):
        ledger.add(trial_name(f"seed_{i}", 10), rng.normal(0.0003 * i, 0.01, t), kind="checkpoint",
                   metrics={"sharpe": float(i)}, dates=dates, member=f"seed_{i}", iteration=10)
    return ledger


def test_ledger_records_replaces_saves_and_summarizes(tmp_path):
    ledger = _ledger()
    assert ledger.names == [f"seed_{i}/it10" for i in range(5)] and ledger.returns_matrix().shape == (120, 5)
    again = ledger.returns_matrix()[:, 2] + 1.0
    ledger.add("seed_2/it10", again, kind="checkpoint", member="seed_2", iteration=10)   # a resumed re-run
    assert len(ledger) == 5 and ledger.returns_matrix()[0, 2] == again[0]
    assert ledger.find(member="seed_3") == ["seed_3/it10"]
    ledger.save(str(tmp_path))
    back = TrialLedger.load(str(tmp_path))
    np.testing.assert_array_equal(back.returns_matrix(), ledger.returns_matrix())
    assert back.dates == ledger.dates and back.trials == ledger.trials
    want = trial_summary(ledger.returns_matrix(), 4, 252.0, names=ledger.names)
    got = back.summary("seed_4/it10")
    assert got["dsr"] == pytest.approx(want["dsr"]) and got["n_trials"] == 5
    assert got["kinds"] == ["checkpoint"]
    with pytest.raises(ValueError, match="chosen trial 'nope' is not in the ledger"):
        back.summary("nope")
    with pytest.raises(ValueError, match="has 3 validation returns, the ledger's split 120"):
        back.add("short", np.zeros(3), kind="checkpoint")


def test_ledgers_of_one_split_merge_and_of_two_do_not():
    a, b = _ledger(0, n=2), _ledger(1, n=3)
    merged = TrialLedger.merge([a, b], prefixes=["batch_0", "batch_2"])
    assert merged.names[:2] == ["batch_0/seed_0/it10", "batch_0/seed_1/it10"] and len(merged) == 5
    with pytest.raises(ValueError, match="trials of different splits do not pool"):
        TrialLedger.merge([a, _ledger(0, n=2, t=60)])


def test_trial_returns_are_in_excess_of_the_rate_cash_earned():
    frame = pd.DataFrame({"value": [100.0, 101.0, 100.0], "risk_free": [0.001, 0.002, 0.0]})
    np.testing.assert_allclose(frame_returns(frame), [0.01 - 0.001, 100 / 101 - 1 - 0.002])

"""The in-sample section says so when the agent's train and validation Sharpe diverge strongly."""

import pandas as pd

from jaxtrade.train.evaluation import divergence_sentence, in_sample_markdown


def _table(train, val):
    row = dict(period="2020-01-01 .. 2020-12-31", n_seeds=2, agent_min=0.0, agent_max=5.0,
               best_constant="hold", best_constant_sharpe=0.5, beats=True, best_constant_no_gate="hold",
               best_constant_no_gate_sharpe=0.5)
    rows = {"train": dict(row, agent_median=train), "val": dict(row, agent_median=val)}
    return pd.DataFrame.from_dict(rows, orient="index")


def test_divergence_sentence_only_where_train_and_validation_diverge():
    md = in_sample_markdown(_table(4.47, 0.005))
    assert "**Train and validation Sharpe diverge strongly** (4.470 on train against 0.005 on " in md
    assert "diverge" not in in_sample_markdown(_table(1.2, 0.9))        # close: no sentence
    assert "diverge" not in in_sample_markdown(_table(0.4, 1.6))        # validation above train: none
    assert divergence_sentence(2.5, 1.2) and not divergence_sentence(2.5, 1.6)   # gap 1.3 / gap 0.9
    assert not divergence_sentence(4.0, 2.2)                            # gap 1.8, but 55% of train
    assert divergence_sentence(None, 0.1) == "" and divergence_sentence(3.0, float("nan")) == ""

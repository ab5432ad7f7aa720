"""The Reporter without training: rows fed by hand, as the loop feeds them."""

import logging
import os

import numpy as np

from jaxtrade.train.reporting import LEARNING_CURVE, Reporter, validation_line


def _train_row(it, ret):
    return dict(iteration=it, episode_return=ret, win_rate=0.5, explained_variance=0.1,
                steps_per_second=1000.0, env_steps=2 * 64, total_env_steps=it * 2 * 64)


def _val_row(composite, sharpe, per_member):
    return dict(composite=composite, sharpe=sharpe, annual_return=0.05, max_drawdown=-0.1,
                **{f"composite/seed{i}": c for i, c in enumerate(per_member)})


def _feed(rep, first=1, last=6):
    # members 0, 1, 2: the mean composite peaks at iteration 4
    vals = {2: _val_row(0.3, 0.9, (0.1, 0.3, 0.5)), 4: _val_row(0.4, 1.1, (0.2, 0.45, 0.55)),
            6: _val_row(0.35, 1.0, (0.25, 0.3, 0.5))}
    for it in range(first, last + 1):
        rep.iteration(_train_row(it, 0.01 * it if it != 3 else float("nan")))   # no episode ended at 3
        if it in vals:
            rep.evaluation(it, vals[it])


def _messages(run_log, prefix):
    # one record reaches caplog's handler twice where the `jaxtrade` logger also propagates to the root
    records = {id(r): r for r in run_log.records}.values()
    return [r.getMessage() for r in records
            if r.getMessage().startswith(prefix) and r.levelno == logging.INFO]


def test_each_validation_prints_mean_range_and_best_so_far(tmp_path, run_log):
    run_log.set_level(logging.INFO, logger="jaxtrade")
    rep = Reporter(str(tmp_path), total=6, initial=0, verbosity="normal", log_every=100, tensorboard=False,
                   members=3, learning_curve=False)
    try:
        _feed(rep)
    finally:
        rep.close()
    lines = _messages(run_log, "validation @")
    assert len(lines) == 3, lines
    assert lines[0] == ("validation @ it 2, mean of 3 members (min .. max): composite 0.3 (0.1 .. 0.5) | "
                        "sharpe 0.9 | annual_return 0.05 | best composite 0.3 @ it 2")
    assert "composite 0.4 (0.2 .. 0.55)" in lines[1] and lines[1].endswith("best composite 0.4 @ it 4")
    assert lines[2].endswith("best composite 0.4 @ it 4")           # a worse validation keeps the best
    # a single model: no range, no member count
    one = validation_line(2, dict(composite=0.3, sharpe=0.9), None)
    assert one == "validation @ it 2: composite 0.3 | sharpe 0.9"


def test_bar_and_summary_count_iterations_as_the_budget_does(tmp_path, run_log):
    run_log.set_level(logging.INFO, logger="jaxtrade")
    rep = Reporter(str(tmp_path), total=6, initial=0, verbosity="normal", log_every=2, tensorboard=False,
                   members=2, learning_curve=False)
    try:
        for it in (1, 2):
            rep.iteration(_train_row(it, 0.01))
        assert rep._bar.total == 6 and rep._bar.n == 2 and rep._bar.desc.startswith("iterations")
    finally:
        rep.close()
    summary = _messages(run_log, "it ")
    # 2 iterations x 128 env steps summed over 2 members: 128 per member, as the budget counts them
    assert summary and summary[0].startswith("it 2/6 | env steps 128 per member (256 in all) |")


def test_learning_curve_is_drawn_from_the_rows_and_kept_on_resume(tmp_path):
    from matplotlib.image import imread

    rep = Reporter(str(tmp_path), total=6, initial=0, verbosity="quiet", log_every=100, tensorboard=False,
                   plot_every_s=0.0)
    path = os.path.join(tmp_path, LEARNING_CURVE)
    try:
        _feed(rep, last=2)
        assert os.path.exists(path)                                 # drawn at the validation
        first = os.path.getmtime(path)
        _feed(rep, first=3)
    finally:
        rep.close()
    img = imread(path)[..., :3]
    assert img.shape == (700, 1000, 3) and os.path.getmtime(path) >= first
    # not blank: coloured pixels (the data lines and the members' band), not only white, grey and black
    colourful = (img.max(-1) - img.min(-1)) > 0.2
    assert colourful.mean() > 0.002, colourful.mean()

    # A resumed run (from iteration 4) redraws the curve with the rows written before its checkpoint.
    os.remove(path)
    rep = Reporter(str(tmp_path), total=8, initial=4, verbosity="quiet", log_every=100, tensorboard=False)
    try:
        assert [r["iteration"] for r in rep._train_rows] == [1, 2, 3, 4]
        assert [r["iteration"] for r in rep._val_rows] == [2, 4]
        assert rep._best == (0.4, 4)
        rep.iteration(_train_row(5, 0.05))
    finally:
        rep.close()
    assert os.path.exists(path) and np.asarray(imread(path)).std() > 0.01

"""Walk-forward's fold arithmetic (rolling windows and CPCV), its errors, the budget schedule and the
phases: pure functions."""

import numpy as np
import pandas as pd
import pytest

from jaxtrade.pipeline import cpcv
from jaxtrade.pipeline import walk_forward as wf

DATES = pd.bdate_range("2010-01-01", periods=1000)


def spec(**kw):
    base = dict(initial_window=300, step=50, val_size=40, test_size=50, mode="sliding")
    base.update(kw)
    return wf.FoldSpec(**base)


@pytest.mark.parametrize("mode", wf.MODES)
def test_folds_are_ordered_and_tile_the_test_period(mode):
    folds = wf.make_folds(spec(mode=mode), DATES, first_row=60)
    # (1000 - 60 - 300 - 40 - 50) // 50 + 1 full folds
    assert len(folds) == 12
    wf.check_folds(folds)
    for f in folds:
        assert f.train[1] < f.val[0] and f.val[1] < f.test[0]
        assert f.val[1] - f.val[0] + 1 == 40 and f.test[1] - f.test[0] + 1 == 50
        if mode == "sliding":
            assert f.train[1] - f.train[0] + 1 == 300 and f.train[0] == 60 + 50 * f.index
        else:
            assert f.train[0] == 60 and f.train[1] - f.train[0] + 1 == 300 + 50 * f.index
    # consecutive test windows: no gap, no overlap, and the last one inside the data
    assert [f.test[0] for f in folds] == [folds[0].test[0] + 50 * i for i in range(12)]
    assert folds[-1].test[1] <= len(DATES) - 1
    # train of fold i+1 ends where fold i's training ended plus one step: the next window
    assert folds[1].train[1] == folds[0].train[1] + 50


def test_first_test_date_derives_the_initial_window_and_max_folds_caps():
    folds = wf.make_folds(
        spec(initial_window=0, start="2010-03-01", first_test="2011-06-01", mode="expanding", max_folds=3),
        DATES,
        first_row=10,
    )
    assert len(folds) == 3
    assert DATES[folds[0].test[0]] == pd.Timestamp("2011-06-01")
    assert DATES[folds[0].train[0]] == pd.Timestamp("2010-03-01")
    assert folds[0].val[1] + 1 == folds[0].test[0]


@pytest.mark.parametrize(
    "changes, match",
    [
        (dict(initial_window=120), r"initial_window \(120 rows\) must be >= 3 \* walk_forward.step \(150\)"),
        (dict(test_size=40), r"test_size \(40\) must equal walk_forward.step \(50\)"),
        (dict(mode="rolling"), r"walk_forward.mode must be one of \['sliding', 'expanding', 'cpcv'\]"),
        (dict(step=0), r"walk_forward.step must be an integer >= 1"),
        (dict(val_size=1), r"walk_forward.val_size must be an integer >= 2"),
        (
            dict(initial_window=900),
            r"the data hold 1000 rows .* one fold needs 900 training \+ 40 validation \+ 50 "
            r"test rows from row 60",
        ),
        (dict(start="2010-01-05"), r"walk_forward.start=2010-01-05 leaves too little history"),
        (dict(initial_window=0, first_test="2010-05-03", start="2010-04-01"), r"leaves -?\d+ training rows"),
    ],
)
def test_bad_specs_name_the_key_and_the_constraint(changes, match):
    with pytest.raises(ValueError, match=match):
        wf.make_folds(spec(**changes), DATES, first_row=60)


def test_training_window_must_hold_an_episode():
    with pytest.raises(ValueError, match=r"shorter than the training split needs \(302 rows"):
        wf.make_folds(spec(), DATES, first_row=60, min_train_rows=302)


def test_budget_schedule():
    assert wf.budget_schedule(4, timesteps=50_000, decay=0.95, min_timesteps=15_000) == [
        50_000,
        47_500,
        45_125,
        42_869,
    ]
    b = wf.budget_schedule(40, timesteps=50_000, decay=0.95, min_timesteps=15_000)
    assert min(b) == 15_000 and b[24] == 15_000 and b[23] == round(50_000 * 0.95**23) > 15_000
    assert wf.iterations_for(50_000, 2048) == 25 and wf.iterations_for(1, 2048) == 1
    with pytest.raises(ValueError, match="0 < decay <= 1"):
        wf.budget_schedule(3, timesteps=50_000, decay=1.5, min_timesteps=15_000)


def test_phases_by_fraction_of_folds_done():
    phases = wf.phases_of(wf.default_config())
    names = [wf.phase_for(i, 10, phases).name for i in range(10)]
    assert names == ["aggressive"] * 3 + ["balanced"] * 4 + ["fine_tune"] * 3
    agg = wf.phase_for(0, 10, phases)
    assert (agg.lr, agg.update_epochs, agg.ent_coef, agg.clip_eps) == (2e-3, 4, 0.05, 0.2)
    fine = wf.phase_for(9, 10, phases)
    assert (fine.lr, fine.update_epochs, fine.ent_coef, fine.clip_eps) == (5e-4, 8, 0.01, 0.1)
    assert wf.phases_of(wf.default_config(use_phases=False)) == []
    bad = wf.default_config()
    bad.phases.fine_tune.until = 0.9
    with pytest.raises(ValueError, match="must run until 1.0"):
        wf.phases_of(bad)
    with pytest.raises(ValueError, match=r"unknown walk_forward config key\(s\) \['walk_forward.decay_rate"):
        wf.default_config(decay_rate=0.9)


def test_stitch_compounds_across_windows():
    a = pd.DataFrame(
        {"value": [100.0, 110.0], "costs": [0.0, 1.0], "trade_pnl": [0.0, 0.0]},
        index=pd.to_datetime(["2020-01-01", "2020-01-02"]),
    )
    b = pd.DataFrame(
        {"value": [100.0, 90.0], "costs": [0.0, 2.0], "trade_pnl": [0.0, -10.0]},
        index=pd.to_datetime(["2020-01-03", "2020-01-06"]),
    )
    s = wf.stitch([a, b])
    assert list(s["value"]) == pytest.approx([100.0, 110.0, 110.0, 99.0])
    assert list(s["costs"]) == pytest.approx([0.0, 1.0, 0.0, 2.2])
    assert s["trade_pnl"].iloc[-1] == pytest.approx(-11.0)


def write_mt5_m15(path, n_days=30, seed=0):
    """A MetaTrader 5 "Export Bars" file of 15-minute bars, weekdays only (weekend gaps), broker time:
    a synthetic random walk from 1.05 (the file's layout is the point, not its prices)."""
    rng = np.random.default_rng(seed)
    days = pd.bdate_range("2017-01-02", periods=n_days)
    stamps = [d + pd.Timedelta(minutes=15 * k) for d in days for k in range(96)]
    close = 1.05 * np.exp(np.cumsum(rng.normal(0, 3e-4, len(stamps))))
    lines = ["<DATE>\t<TIME>\t<OPEN>\t<HIGH>\t<LOW>\t<CLOSE>\t<TICKVOL>\t<VOL>\t<SPREAD>"]
    prev = close[0]
    for ts, c in zip(stamps, close, strict=True):
        hi, lo = max(prev, c) + 1e-5, min(prev, c) - 1e-5
        lines.append(f"{ts:%Y.%m.%d}\t{ts:%H:%M:%S}\t{prev:.5f}\t{hi:.5f}\t{lo:.5f}\t{c:.5f}\t100\t0\t7")
        prev = c
    path.write_text("\r\n".join(lines) + "\r\n")
    return path


def test_a_users_15_minute_mt5_csv_plans_folds(tmp_path):
    from experiments.configs import walk_forward_eurusd
    from jaxtrade.train.setup import load_market_data

    cfg = walk_forward_eurusd.get_config()
    cfg.data.csv_path = str(write_mt5_m15(tmp_path / "EURUSD_M15.csv"))
    cfg.data.csv_options.tz = "EET"
    cfg.walk_forward.initial_window, cfg.walk_forward.step, cfg.walk_forward.val_size = 960, 288, 288
    md = load_market_data(cfg.data)
    # annualized from the bars observed: 5 complete weeks of 5 x 96 bars, x 365.25 / 7 weeks a year
    assert md.n_rows == 30 * 96 and md.periods_per_year == pytest.approx(480 * 365.25 / 7)
    assert md.dates[0] == pd.Timestamp("2017-01-01 22:00")             # EET -> UTC
    folds, budgets = wf.plan(cfg, md)
    wf.check_folds(folds)
    first = md.features().first_valid + cfg.env.window
    assert folds[0].train[0] == first and len(folds) == (md.n_rows - first - 960 - 288 - 288) // 288 + 1
    assert budgets[:2] == [50_000, 47_500]


# CPCV (walk_forward.mode = "cpcv"): the plan from a config, the purge / embargo rule, the episode starts.


@pytest.fixture(scope="module")
def eurusd():
    from jaxtrade.data import load_dataset

    return load_dataset("eurusd-1h")


def cpcv_config(window=30, episode_length=32, **changes):
    from experiments.configs import walk_forward_eurusd

    cfg = walk_forward_eurusd.get_config()
    cfg.env.window, cfg.env.episode_length = window, episode_length
    w = cfg.walk_forward
    w.mode, w.val_size, w.start = "cpcv", 60, "2017-09-01"
    for k, v in changes.items():
        w[k] = v
    return cfg


def _oracle_train_rows(cv, fold, origin, end):
    """The training rows by the rule, one row at a time: not tested, not within purge rows before or
    embargo rows after a test block, not validation."""
    tested = {r for a, b in fold.test for r in range(a, b + 1)}
    out = set()
    for r in range(origin, end + 1):
        if r in tested or fold.val[0] <= r <= fold.val[1]:
            continue
        if any(q in tested for q in range(r + 1, r + cv.purge + 1)):      # a test row within purge after r
            continue
        if any(q in tested for q in range(r - cv.embargo, r)):            # a test row within embargo before r
            continue
        out.add(r)
    return out


@pytest.mark.parametrize("n_groups, n_test_groups", [(3, 1), (4, 2), (6, 2)])
def test_cpcv_plan_from_a_config(eurusd, n_groups, n_test_groups):
    import math

    cfg = cpcv_config(n_groups=n_groups, n_test_groups=n_test_groups)
    cv = wf.plan_cpcv(cfg, eurusd)
    h, length = 30, 32
    assert (cv.history, cv.episode_length, cv.purge, cv.embargo) == (h, length, h + length, h)
    assert len(cv.folds) == math.comb(n_groups, n_test_groups)
    assert cv.n_paths == math.comb(n_groups - 1, n_test_groups - 1)
    origin, end = cv.groups[0][0], cv.groups[-1][1]
    start = int(eurusd.dates.searchsorted(pd.Timestamp("2017-09-01")))     # walk_forward.start
    assert origin == start + (eurusd.n_rows - start) % n_groups and end == eurusd.n_rows - 1
    assert {b - a + 1 for a, b in cv.groups} == {(eurusd.n_rows - origin) // n_groups}   # equal groups
    assert all(b + 1 == c for (_, b), (c, _) in zip(cv.groups, cv.groups[1:], strict=False))
    for f in cv.folds:
        assert [cv.groups[g] for g in f.test_groups] == list(f.test)
        train = {r for a, b in f.train for r in range(a, b + 1)}
        assert train == _oracle_train_rows(cv, f, origin, end), f.test_groups
        # validation: the last val_size rows of the last training block, just before its purge or the end
        assert f.val[1] - f.val[0] + 1 == 60 and f.val[0] == f.train[-1][1] + 1
        assert f.fit in f.train and all(f.fit[1] - f.fit[0] >= b - a for a, b in f.train)
        # episodes start only where window and episode lie inside one training block, and everywhere they do
        starts = set(cpcv.start_rows(f, history=h, episode_length=length).tolist())
        inside = {s for s in range(origin, end + 1)
                  if any(a <= s - h and s + length <= b for a, b in f.train)}
        assert starts == inside and starts
    # every path reads each group from a fold that tests it, and the folds testing a group are all used
    paths = np.array(cv.paths)
    for g in range(n_groups):
        assert sorted(paths[:, g]) == [i for i, f in enumerate(cv.folds) if g in f.test_groups]


def test_cpcv_purge_and_embargo_follow_the_window_and_the_episode_length(eurusd):
    cv = wf.plan_cpcv(cpcv_config(window=20, episode_length=48, n_groups=4, n_test_groups=1), eurusd)
    assert (cv.purge, cv.embargo) == (68, 20)
    raised = wf.plan_cpcv(cpcv_config(n_groups=4, n_test_groups=1, purge=100, embargo=40), eurusd)
    assert (raised.purge, raised.embargo) == (100, 40)
    f = raised.folds[1]                                  # tests group 1: blocks on both sides
    assert f.train[0][1] == f.test[0][0] - 101 and f.train[1][0] == f.test[0][1] + 41


def test_cpcv_episodes_start_only_inside_one_training_block(eurusd):
    """The env draws its episode starts uniformly from `EnvData.start_count`'s rows and from no other."""
    import types

    import jax
    import jax.numpy as jnp

    from jaxtrade.envs import market

    cv = wf.plan_cpcv(cpcv_config(n_groups=3, n_test_groups=1), eurusd)
    f = cv.folds[1]                                       # two training blocks around the test group
    assert len(f.train) == 2
    first = f.span[0] - cv.history
    n_rows = f.span[1] - first + 1 + 7                    # a few padding rows past the last block
    count = cpcv.start_count(f, first, n_rows, history=cv.history, episode_length=cv.episode_length)
    data = types.SimpleNamespace(start_count=jnp.asarray(count), start=cv.history, n_rows=n_rows,
                                 valid_rows=None)
    params = types.SimpleNamespace(data=data, episode_length=cv.episode_length, random_start=True)
    k = int(count[-1])
    u = (jnp.arange(k, dtype=jnp.float32) + 0.5) / k      # one draw in each of the k equal slices of [0, 1)
    start, end = jax.vmap(lambda x: market.episode_bounds(x, params))(u)
    want = cpcv.start_rows(f, history=cv.history, episode_length=cv.episode_length) - first
    np.testing.assert_array_equal(np.asarray(start), want)     # each allowed row once: uniform over them
    np.testing.assert_array_equal(np.asarray(end), want + cv.episode_length)


@pytest.mark.parametrize(
    "changes, match",
    [
        (dict(n_groups=3, n_test_groups=3),
         r"walk_forward.n_test_groups \(3\) must be .* < walk_forward.n_groups \(3\)"),
        (dict(n_test_groups=0), r"walk_forward.n_test_groups \(0\) must be an integer >= 1"),
        (dict(purge=61),
         r"walk_forward.purge \(61\) must be >= 62: history rows 30 \+ env.episode_length 32"),
        (dict(embargo=29), r"walk_forward.embargo \(29\) must be >= 30"),
        (dict(n_groups=40), r"walk_forward.n_groups \(40\) cuts the \d+ rows .* one observation window and "
                            r"one episode \(history 30 \+ env.episode_length 32 \+ 1 = 63 rows\)"),
        (dict(n_groups=3, n_test_groups=2, purge=2000),
         r"walk_forward.purge \(2000\) and walk_forward.embargo \(30\): .* no training rows"),
        (dict(n_groups=3, n_test_groups=2, val_size=700), r"walk_forward.val_size \(700\) does not fit"),
        (dict(n_groups=3, n_test_groups=2, val_size=560),
         r"testing groups \(0, 2\) has no training block of 63 rows"),
        (dict(start="2017-01-02"), r"walk_forward.start=2017-01-02 leaves too little history"),
    ],
)
def test_bad_cpcv_sizes_name_the_key_and_the_constraint(eurusd, changes, match):
    with pytest.raises(ValueError, match=match):
        wf.plan_cpcv(cpcv_config(**changes), eurusd)

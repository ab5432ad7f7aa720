"""Every experiment config builds its setup on the bundled data (data, splits, envs, budget)."""

import importlib
import os

import jax
import pytest

from jaxtrade.train.config import env_config
from jaxtrade.train.setup import build

CONFIG_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "experiments", "configs")
NAMES = sorted(f[:-3] for f in os.listdir(CONFIG_DIR) if f.endswith(".py") and f != "__init__.py")


@pytest.mark.parametrize("name", NAMES)
def test_config_builds(name):
    cfg = importlib.import_module(f"experiments.configs.{name}").get_config()
    cfg.train.total_timesteps = cfg.train.episodes = None   # the first set wins: make it iterations
    cfg.train.iterations = 1
    cfg.train.max_device_memory_gb = None                # sizing compiles; not what is checked here
    if "walk_forward" in cfg:                            # walk-forward configs: the plan, then its last fold
        from jaxtrade.pipeline import walk_forward
        from jaxtrade.train.setup import load_market_data

        folds, budgets = walk_forward.plan(cfg, load_market_data(cfg.data))
        assert len(folds) == {"walk_forward_eurusd": 6, "walk_forward_sp500": 27}[name]
        assert budgets[0] == 50_000 and min(budgets) >= 15_000
        cfg.data.train, cfg.data.val, cfg.data.test = folds[-1].train, folds[-1].val, folds[-1].test
    s = build(cfg)
    assert s.splits.train is not None and s.splits.val is not None and s.splits.test is not None
    assert s.budget.iterations == 1
    assert s.env is not None and s.test_params is not None


def test_eurusd_config_trades_hourly_fx_without_us_fees():
    cfg = importlib.import_module("experiments.configs.single_eurusd").get_config()
    cfg.train.iterations = 1
    s = build(cfg)
    assert s.train_params.costs.regulatory_fees == "none"
    # the bars observed per year (6,119 bars in 51 complete weeks), not 252 x 24
    assert s.splits.train.periods_per_year == pytest.approx(6119 / 51 * 365.25 / 7)
    assert s.splits.test.traded_dates[-1].month == 12


def test_options_gate_threshold_is_fitted_on_the_training_split_and_kept_for_the_others():
    """The options env fits its gate threshold on the data make is given: setup fits it on the
    training split and passes it to validation, test and the resolved env config the model saves
    (never refitted); the user's config is not written into."""
    cfg = importlib.import_module("experiments.configs.options_quick").get_config()
    cfg.train.iterations = 1
    s = build(cfg)
    want = float(s.train_params.turbulence_threshold)
    train_turb = s.train_params.data.turbulence[s.train_params.data.start:]
    assert want == pytest.approx(float(jax.numpy.quantile(train_turb, 0.9)), rel=1e-5)
    assert float(s.val_params.turbulence_threshold) == float(s.test_params.turbulence_threshold) == want
    assert s.env_config["turbulence_threshold"] == want
    assert cfg.env.turbulence_threshold is None               # setup resolves, never mutates


def test_a_window_shorter_than_the_adv_window_builds_on_data_with_volume():
    """The history a split carries comes from what the env needs: with the square-root impact law on
    data with volume, 30 rows of ADV history even for env.window=5 (it used to fail asking for a
    lookback the user cannot set), and the observation still shows 5 rows."""
    cfg = importlib.import_module("experiments.configs.smoke").get_config()
    cfg.data.dataset = "googl-ohlcv"
    cfg.data.train = ("2010-01-01", "2014-12-31")
    cfg.env = env_config("single", window=5, episode_length=16)
    s = build(cfg)
    assert s.env_config["costs"]["impact_model"] == "sqrt_adv"
    assert s.splits.train.start == s.splits.val.start == s.splits.test.start == 30
    assert s.preprocessor.window == 30                  # later cuts of the saved model carry the same
    obs, _ = s.env.reset(jax.random.key(0), s.train_params)
    assert obs["window"].shape[0] == 5
    assert cfg.env.costs.impact_model is None           # decided and saved beside, never written back

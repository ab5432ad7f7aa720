"""Every experiment config builds its setup on the bundled data (data, splits, envs, budget)."""

import importlib
import os

import pytest

from jaxtrade.train.setup import build

CONFIG_DIR = os.path.join(os.path.dirname(__file__), "..", "..", "experiments", "configs")
NAMES = sorted(f[:-3] for f in os.listdir(CONFIG_DIR) if f.endswith(".py") and f != "__init__.py")


@pytest.mark.parametrize("name", NAMES)
def test_config_builds(name):
    cfg = importlib.import_module(f"experiments.configs.{name}").get_config()
    cfg.train.total_timesteps = cfg.train.episodes = None   # the first set wins: make it iterations
    cfg.train.iterations = 1
    cfg.train.max_device_memory_gb = None                # sizing compiles; not what is checked here
    s = build(cfg)
    assert s.splits.train is not None and s.splits.val is not None and s.splits.test is not None
    assert s.budget.iterations == 1
    assert s.env is not None and s.test_params is not None


def test_eurusd_config_trades_hourly_fx_without_us_fees():
    cfg = importlib.import_module("experiments.configs.single_eurusd").get_config()
    cfg.train.iterations = 1
    s = build(cfg)
    assert s.train_params.costs.regulatory_fees == "none"
    assert s.splits.train.periods_per_year == pytest.approx(252 * 24)
    assert s.splits.test.traded_dates[-1].month == 12

"""One instrument: the S&P 500 index with real OHLCV (1999-2018), short / flat / long."""

from experiments.configs import portfolio_gru
from jaxtrade.train.config import env_config


def get_config():
    cfg = portfolio_gru.get_config()
    cfg.data.dataset = "sp500-ohlcv"
    cfg.data.train = ("2000-01-01", "2012-12-31")
    cfg.data.val = ("2013-01-01", "2014-12-31")
    cfg.data.test = ("2015-01-01", "2018-12-31")
    cfg.env = env_config("single", positions=(-1.0, 0.0, 1.0), episode_length=256, window=30)
    return cfg

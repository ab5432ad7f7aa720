"""One FX pair, intraday: hourly EUR/USD ask bars of 2017, short / flat / long.

Train 5 January-August, validate September-October, test November-December. No SEC/FINRA fees (not
a US equity); the spread and slippage defaults stand in for the dealer's spread; the data's volume
is a tick count, so the square-root impact on it is a rough liquidity proxy only."""

from experiments.configs import portfolio_gru
from jaxtrade.train.config import env_config


def get_config():
    cfg = portfolio_gru.get_config()
    cfg.data.dataset = "eurusd-1h"
    cfg.data.train = ("2017-01-05", "2017-08-31")   # after 33 warm-up + 30 lookback hourly rows
    cfg.data.val = ("2017-09-01", "2017-10-31")
    cfg.data.test = ("2017-11-01", "2017-12-29")
    cfg.env = env_config("single", positions=(-1.0, 0.0, 1.0), episode_length=240, window=30)
    cfg.env.costs.regulatory_fees = "none"
    return cfg

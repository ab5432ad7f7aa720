"""One FX pair, intraday: hourly EUR/USD ask bars of 2017, short / flat / long.

Train 5 January-August, validate September-October, test November-December. FX costs, not the
US-equity defaults: no SEC/FINRA fees; a 1 bp quoted spread (0.5 bps per side) and commission (an ECN
EUR/USD spread of about 0.2 pip is 0.09 bps per side at 1.15, plus a typical $3.50 per $100k
commission, 0.35 bps) and slippage uniform in [0, 0.5] bps; no market impact (the data's volume is
a tick count, not units traded, so the square-root law has nothing to read).

Chosen on validation (BUILD_NOTES' tuning table): gamma 0.999 (a horizon of ~1,000 hourly bars, not
the daily default's ~100) and 720-bar (30-day) episodes: best validation composite 0.219 against 0.196
with the defaults (gamma 0.99, 240-bar episodes), validation Sharpe median 2.19 against 1.31."""

from experiments.configs import portfolio_gru
from jaxtrade.train.config import env_config


def get_config():
    cfg = portfolio_gru.get_config()
    cfg.data.dataset = "eurusd-1h"
    cfg.data.train = ("2017-01-05", "2017-08-31")   # after 33 warm-up + 30 lookback hourly rows
    cfg.data.val = ("2017-09-01", "2017-10-31")
    cfg.data.test = ("2017-11-01", "2017-12-29")
    cfg.env = env_config("single", positions=(-1.0, 0.0, 1.0), episode_length=720, window=30)
    cfg.ppo.gamma = 0.999
    cfg.env.costs.regulatory_fees = "none"
    cfg.env.costs.spread_bps = 1.0           # quoted spread: half (0.5 bps) per fill
    cfg.env.costs.slippage_bps = 0.5
    cfg.env.costs.impact_model = "none"
    return cfg

"""CLSTM-PPO on the options env (issue 13): S&P 500 index options on a synthetic Black-Scholes chain
priced from the VIX, 91 multi-leg actions, per-contract fees, Greeks limits.

Data: "sp500-vix" (2014-2018); train 2014-05-01 .. 2016-12-31, validate 2017, test 2018-01 .. 2018-11
(the Fama-French risk-free rate ends in 2018-11). The cascaded-LSTM encoder over a window of 30
(the paper's best), an LSTM core of 512 (the paper's best hidden size), PPO defaults otherwise.

Fees: the dated per-contract schedule (`envs.options.costs`) is sourced only from 2024-05-22, so on
these years the env charges the published 2024 rate set on every date (`fee_mode="flat"`: $0.65
commission, OCC $0.02, ORF $0.02685, TAF $0.00279 and SEC $27.80/$1M on sales, CAT): an assumption,
stated in the report's notes, not the fees of 2014-2018.
"""

from experiments.configs import portfolio_gru
from jaxtrade.train.config import env_config


def get_config():
    cfg = portfolio_gru.get_config()
    cfg.data.dataset = "sp500-vix"
    cfg.data.train = ("2014-05-01", "2016-12-31")
    cfg.data.val = ("2017-01-01", "2017-12-31")
    cfg.data.test = ("2018-01-01", "2018-11-30")
    cfg.env = env_config("options", window=30, episode_length=128, fee_mode="flat")
    cfg.model.encoder = "clstm"
    cfg.model.core = "lstm"
    cfg.model.hidden_dim = 512
    cfg.model.n_layers = 1
    cfg.model.n_heads = 8
    cfg.train.seeds = 1
    return cfg

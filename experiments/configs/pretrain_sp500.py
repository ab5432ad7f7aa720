"""Supervised pretraining of the CLSTM encoder on sp500-20 (`python -m experiments.pretrain`).

The experiment is `portfolio_clstm`'s (its data, training split, env and model section), so the
encoder fits that config's network exactly: start it with
`--config=experiments/configs/portfolio_clstm_pretrained.py --config.model.encoder_init=<artifact>`.
Targets (sp500-20 is adjusted closes only: no volume target): next-bar log return and 20-bar realized
volatility per stock; the last 20% of the 2009-2014 samples validate.
"""

from experiments.configs import portfolio_clstm
from jaxtrade.pipeline import pretrain


def get_config():
    cfg = portfolio_clstm.get_config()
    cfg.model.conv_filters = (32, 64)   # model.encoder="cnn_lstm": its 1-D convolutions
    cfg.model.conv_kernel = 3
    cfg.pretrain = pretrain.default_config()
    return cfg

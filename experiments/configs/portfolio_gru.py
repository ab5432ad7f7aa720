"""The default experiment: sp500-20, 12 factor regimes, GRU policy; train 2009-2014, val 2015,
test 2016-2022; three seeds trained as one population. Sized so `make train` finishes in about ten
minutes on a 2-core CPU, install included (five seeds of this size take about 12 minutes of
training there: BUILD_NOTES)."""

from jaxtrade.train.config import base_config


def get_config():
    cfg = base_config()
    # The MLP encoder sees just the last row; the GRU core carries the memory across time.
    cfg.env.window = 1
    # 128 units, one encoder layer, one GRU layer: about 5x cheaper per env step on a CPU than the
    # 256 x 2 + 256 x 2 network, so three seeds fit where one did (see BUILD_NOTES' tuning table).
    cfg.model.hidden_dim = 128
    cfg.model.encoder_layers = 1
    cfg.model.n_layers = 1
    cfg.train.iterations = 60
    cfg.train.seeds = 3
    return cfg

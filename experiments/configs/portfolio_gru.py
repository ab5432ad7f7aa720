"""The default experiment: sp500-20, 12 factor regimes, GRU policy; train 2009-2014, val 2015,
test 2016-2022. Sized so `make train` finishes in under 15 minutes on a 2-core CPU."""

from jaxtrade.train.config import base_config


def get_config():
    cfg = base_config()
    # The MLP encoder sees just the last row; the GRU core carries the memory across time.
    cfg.env.window = 1
    cfg.train.iterations = 60
    return cfg

"""Walk-forward on sp500-20 daily (12 factor regimes, the default portfolio env): quarterly folds of
63 trading days from 2016 on a growing window, the ensemble paper's protocol (Yang et al. 2020):
train from 2009 up to the quarter before, validate on that quarter, trade the next one; 2016-2022,
27 folds. The first test quarter starts on 2016-01-04; `initial_window` is derived from it.

Budget and phases as in `walk_forward_eurusd`; a 64-unit GRU (the default's 128 halves its speed
on a CPU: BUILD_NOTES). Training windows grow by 63 rows per fold; they are padded to the last
fold's length, so every fold reuses one compiled iteration per phase.
"""

from experiments.configs import portfolio_gru, walk_forward_eurusd
from jaxtrade.pipeline.walk_forward import default_config


def get_config():
    cfg = portfolio_gru.get_config()
    cfg.data.train = cfg.data.val = cfg.data.test = None     # set per fold
    walk_forward_eurusd.fold_training(cfg, hidden_dim=64)
    cfg.walk_forward = default_config(step=63, val_size=63, mode="expanding", start="2009-01-01",
                                      first_test="2016-01-01")
    return cfg

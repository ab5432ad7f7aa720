"""The default experiment: sp500-20, 12 factor regimes, GRU policy; train 2009-2014, val 2015,
test 2016-2022; three seeds trained as one population. Sized so `make train` finishes in under ten
minutes on a 2-core CPU, install included: five seeds took 8 min 43 s on 2026-12-01 but 11 min 19 s on
the same kind of machine on 2026-12-02 (the machine, not the code: BUILD_NOTES), so the default is
the issue's fallback of three; `--config.train.seeds=5` runs five."""

from jaxtrade.train.config import base_config


def get_config():
    cfg = base_config()
    # The MLP encoder sees just the last row; the GRU core carries the memory across time.
    cfg.env.window = 1
    # 128 units, one encoder layer, one GRU layer: several times cheaper per env step on a CPU than
    # the 256 x 2 + 256 x 2 network, so five seeds fit where one did (see BUILD_NOTES' tuning table).
    cfg.model.hidden_dim = 128
    cfg.model.encoder_layers = 1
    cfg.model.n_layers = 1
    # Learning rates 1e-3 (actor) / 3e-3 (critic), chosen on validation (BUILD_NOTES' tuning table:
    # best validation composite 0.134 against -0.029 at 3e-4 / 9e-4, three seeds each).
    cfg.ppo.actor_lr = 1e-3
    cfg.ppo.critic_lr = 3e-3
    cfg.train.iterations = 60
    cfg.train.seeds = 3
    return cfg

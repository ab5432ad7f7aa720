"""Walk-forward on the bundled hourly EUR/USD ask bars of 2017: six sliding folds of 2,400 bars
(about 20 weeks) of training, 480 bars (4 weeks) of validation and 480 bars of test, each fold
warm-started from the one before, sized in lots with per-lot FX costs.

Positions short / flat / long one times equity, in lots of 100,000 EUR (step 0.01, 0.01 .. 50
lots). Costs: a 0.2-pip quoted spread (half paid per fill), $3.50 commission per lot per side (a
typical ECN rate), slippage uniform in [0, 0.5] bps, no market impact (the data's volume is a tick
count) and no US regulatory fees. Swap per lot per night: -0.6 pips long, +0.25 pips short, an
assumption near 2017's EUR/USD rate differential (about 1.9% a year) after a broker's markup, not a
broker's published table.

Budget: 50,000 env steps for the first fold, x0.95 per fold, never below 15,000; early stopping
on each fold's validation composite (patience 3 evaluations, threshold 0.001); the three phase
presets of `jaxtrade.pipeline.walk_forward`. A small network (32-unit GRU) keeps a fold under 30 s
on a 2-core CPU (BUILD_NOTES).
"""

from experiments.configs import single_eurusd
from jaxtrade.pipeline.walk_forward import default_config


def fold_training(cfg, *, hidden_dim: int):
    """The small network and per-fold training both walk-forward configs use: a one-layer GRU of
    `hidden_dim` units, 32 envs x 64 steps (2,048 env steps an iteration), validation and a
    checkpoint every 5 iterations, early stopping after 3 validations without a 0.001 gain."""
    cfg.model.hidden_dim = hidden_dim
    cfg.model.encoder_layers = 1
    cfg.model.n_layers = 1
    cfg.ppo.n_envs = 32
    cfg.ppo.n_steps = 64
    cfg.ppo.n_minibatches = 4
    cfg.ppo.critic_epochs = 2
    cfg.train.eval_every = 5
    cfg.train.checkpoint_every = 5
    cfg.train.patience = 3
    cfg.train.min_delta = 0.001
    cfg.train.seeds = 1


def get_config():
    cfg = single_eurusd.get_config()
    cfg.data.train = cfg.data.val = cfg.data.test = None     # set per fold
    cfg.env.episode_length = 240
    cfg.env.costs.spread_bps = 0.0
    cfg.env.costs.slippage_bps = 0.5
    cfg.env.lots.enabled = True
    cfg.env.lots.spread_pips = 0.2
    cfg.env.lots.commission_per_lot = 3.5
    cfg.env.lots.max_lots = 50.0
    cfg.env.lots.swap_long_pips = -0.6
    cfg.env.lots.swap_short_pips = 0.25
    fold_training(cfg, hidden_dim=32)
    cfg.walk_forward = default_config(initial_window=2400, step=480, val_size=480, mode="sliding")
    return cfg

"""Tiny search: for tests and a first look (a few seconds a batch on a CPU). 6 trials in batches of 2
with the smoke config's network; median pruning after 2 completed trials."""

from experiments.configs import smoke
from jaxtrade.pipeline.search import default_config


def get_config():
    cfg = smoke.get_config()
    cfg.model.hidden_dim = 8
    cfg.train.iterations = 4
    cfg.train.eval_every = 1
    cfg.train.checkpoint_every = 4
    cfg.train.tensorboard = False
    cfg.train.n_devices = 1
    cfg.search = default_config(n_trials=6, batch_size=2, n_startup_trials=2, pruner_startup_trials=2)
    return cfg

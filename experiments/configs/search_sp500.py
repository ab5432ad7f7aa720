"""Hyperparameter search on sp500-20 (the default experiment's data, env and small GRU network):
32 trials of the four traced hyperparameters of `jaxtrade.pipeline.search.default_config` (actor and
critic learning rates, entropy coefficient, clip range), 8 trials per batch trained as one population
(one compile), TPE after 8 random trials, median pruning on the validation composite, 30 iterations
of 16 envs x 64 steps per trial. Validation 2015 scores the trials; the test split is never read."""

from experiments.configs import portfolio_gru
from jaxtrade.pipeline.search import default_config


def get_config():
    cfg = portfolio_gru.get_config()
    cfg.model.hidden_dim = 32
    cfg.ppo.n_envs = 16
    cfg.ppo.n_steps = 64
    cfg.ppo.n_minibatches = 2
    cfg.ppo.critic_epochs = 2
    cfg.train.iterations = 30
    cfg.train.eval_every = 5
    cfg.train.checkpoint_every = 10
    cfg.train.seeds = 1
    cfg.train.n_devices = 1
    cfg.train.in_sample_report = False
    cfg.search = default_config()
    return cfg

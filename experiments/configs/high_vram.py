"""For a large GPU (80 GB class): 65,536 environments per device, the full network."""

from experiments.configs import portfolio_gru


def get_config():
    cfg = portfolio_gru.get_config()
    cfg.model.update(hidden_dim=256, encoder_layers=2, n_layers=2)   # the full network
    cfg.train.seeds = 1
    cfg.ppo.n_envs = 65536
    cfg.ppo.n_steps = 64
    cfg.ppo.n_minibatches = 16
    cfg.train.iterations = None
    cfg.train.total_timesteps = 2_000_000_000
    cfg.train.eval_every = 10
    cfg.train.checkpoint_every = 10
    return cfg

"""For a small GPU (8-16 GB): the high_vram preset with 8,192 environments per device."""

from experiments.configs import high_vram


def get_config():
    cfg = high_vram.get_config()
    cfg.ppo.n_envs = 8192
    cfg.ppo.n_minibatches = 8
    cfg.train.total_timesteps = 200_000_000
    return cfg

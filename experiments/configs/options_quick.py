"""The options env with a small CLSTM-PPO for a CPU: `options_clstm` at 64 hidden units, 32 envs x
64 steps, 40 iterations (about two minutes on a 2-core CPU)."""

from experiments.configs import options_clstm


def get_config():
    cfg = options_clstm.get_config()
    cfg.model.hidden_dim = 64
    cfg.model.n_heads = 4
    cfg.ppo.n_envs = 32
    cfg.ppo.n_steps = 64
    cfg.env.episode_length = 64
    cfg.train.iterations = 40
    cfg.train.eval_every = 10
    return cfg

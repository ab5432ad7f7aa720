"""Cascaded LSTM (CLSTM-PPO, Zou et al. 2022/2024, arXiv:2212.02721): an LSTM over the last 30 rows
of features with 8-head self-attention over its outputs, pooled, feeding an LSTM actor and critic.

From the paper where it states them: a 30-day time window (its best on the DJI) and LSTM networks in
the actor and critic. Not stated there, so PPO defaults: the rest of the ppo section.
"""

from experiments.configs import portfolio_gru


def get_config():
    cfg = portfolio_gru.get_config()
    cfg.model.encoder = "clstm"
    cfg.model.core = "lstm"
    cfg.model.hidden_dim = 128
    cfg.model.n_layers = 1
    cfg.model.n_heads = 8
    cfg.env.window = 30
    cfg.train.seeds = 1
    return cfg

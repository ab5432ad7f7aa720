"""Tiny DQN configs shared by the DQN tests."""

from jaxtrade.agents import dqn


def tiny_config(**dqn_overrides):
    cfg = dqn.default_config()
    cfg.model.update(hidden_dim=16, n_layers=1, encoder_layers=1, dropout=0.0, core="mlp")
    cfg.dqn.update(n_envs=8, n_steps=8, buffer_size=256, batch_size=32, learning_starts=64, utd_ratio=1 / 16,
                   n_step=3, total_updates=10)
    cfg.dqn.update(**dqn_overrides)
    return cfg

"""Tiny configs of the continuous off-policy agents shared by their tests."""

from jaxtrade.agents import sac, td3


def tiny_config(name: str = "td3", **overrides):
    cfg = sac.default_config() if name == "sac" else td3.default_config(name)
    cfg.model.update(hidden_dim=8, n_layers=1, encoder_layers=1, dropout=0.0, core="mlp")
    cfg[name].update(n_envs=8, n_steps=8, buffer_size=256, batch_size=16, learning_starts=128,
                     utd_ratio=1 / 16)
    cfg[name].update(**overrides)
    return cfg


def make(name: str = "td3", env=None, **overrides):
    cfg = tiny_config(name, **overrides)
    return sac.make(cfg, env) if name == "sac" else td3.make(cfg, env, name)

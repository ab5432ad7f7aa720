"""Tiny: for tests and a first look. A few seconds of training per iteration on a CPU."""

from experiments.configs import portfolio_gru


def get_config():
    cfg = portfolio_gru.get_config()
    cfg.model.hidden_dim = 16
    cfg.model.n_layers = 1
    cfg.ppo.n_envs = 4
    cfg.ppo.n_steps = 8
    cfg.ppo.n_minibatches = 2
    cfg.ppo.update_epochs = 1
    cfg.ppo.critic_epochs = 1
    # The other agents at the same tiny size (--config.agent.name=a2c | dqn).
    cfg.a2c.n_envs = 4
    cfg.a2c.n_steps = 8
    cfg.dqn.update(dict(n_envs=4, n_steps=8, buffer_size=512, batch_size=32, learning_starts=64,
                        utd_ratio=0.25, n_step=2))
    # The continuous off-policy agents (env.action_space=auto gives them the portfolio weights).
    for name in ("ddpg", "td3", "sac"):
        cfg[name].update(dict(n_envs=4, n_steps=8, buffer_size=512, batch_size=32, learning_starts=64,
                              utd_ratio=0.25))
    cfg.env.episode_length = 16
    cfg.data.val = ("2015-01-01", "2015-03-31")
    cfg.data.test = ("2016-01-01", "2016-06-30")
    cfg.train.iterations = 6
    cfg.train.eval_every = 2
    cfg.train.checkpoint_every = 1
    cfg.train.log_every = 1
    cfg.train.bootstrap_samples = 50
    cfg.train.in_sample_report = False       # the tests that need it switch it on
    cfg.train.seeds = 1
    return cfg

"""The tiny walk-forward config of the walk-forward tests (hourly EUR/USD, 3 expanding folds of a few
iterations), also a config file for `experiments.walk_forward`
(--config=tests/pipeline/walk_forward_tiny.py)."""


def tiny_config():
    from experiments.configs import walk_forward_eurusd

    cfg = walk_forward_eurusd.get_config()
    cfg.model.hidden_dim = 8
    cfg.ppo.n_envs, cfg.ppo.n_steps, cfg.ppo.n_minibatches, cfg.ppo.critic_epochs = 4, 8, 2, 1
    cfg.env.episode_length = 32
    cfg.train.eval_every, cfg.train.checkpoint_every = 1, 3
    cfg.train.bootstrap_samples = 20
    cfg.train.n_devices = 1          # one device (the suite forces four CPU devices): 32 steps per iteration
    w = cfg.walk_forward
    w.initial_window, w.step, w.val_size, w.mode, w.max_folds = 300, 60, 60, "expanding", 3
    w.timesteps, w.min_timesteps = 96, 64
    # Fold 0 aggressive (1 epoch), fold 1 balanced and fold 2 fine-tune (2 epochs each): two compiles,
    # and balanced -> fine-tune changes only traced hyperparameters.
    w.phases.aggressive.update_epochs = 1
    w.phases.balanced.update_epochs = w.phases.fine_tune.update_epochs = 2
    w.phases.balanced.until = 0.6
    return cfg


def get_config():
    return tiny_config()

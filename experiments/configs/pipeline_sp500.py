"""The model pipeline end to end on sp500-20 (`python -m experiments.pipeline`): a CLSTM encoder
pretrained on 2009-2014 windows (next-bar return and 20-bar volatility per stock), PPO on top of it
with the encoder frozen, that model fine-tuned end to end (the hybrid), and an ensemble of the two
weighted by validation Sharpe; all four registered and graded on validation 2015.

Sized for a 2-core CPU (BUILD_NOTES): a 32-unit CLSTM (4 attention heads) over 30-day windows,
an LSTM core, 16 envs x 64 steps, 40 iterations of PPO and 15 of fine-tuning."""

from experiments.configs import pretrain_sp500
from jaxtrade.pipeline import stages


def get_config():
    cfg = pretrain_sp500.get_config()
    cfg.model.hidden_dim = 32
    cfg.model.n_heads = 4
    cfg.ppo.n_envs = 16
    cfg.ppo.n_steps = 64
    cfg.ppo.n_minibatches = 2
    cfg.ppo.critic_epochs = 2
    cfg.train.iterations = 40
    cfg.train.eval_every = 5
    cfg.train.checkpoint_every = 10
    cfg.train.n_devices = 1
    cfg.train.in_sample_report = False
    cfg.pretrain.epochs = 20
    cfg.pipeline = stages.default_config(prefix="sp500", hybrid_iterations=15)
    return cfg

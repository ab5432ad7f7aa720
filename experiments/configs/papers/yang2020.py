"""Yang, Liu, Zhong & Walid (2020), the ensemble strategy, on the bundled sp500-20
(`python -m experiments.reproduce --paper=yang2020`; the protocol: `jaxtrade.pipeline.papers.yang2020`).

The paper's setting: $1,000,000, 0.1% costs, orders of up to 100 shares per stock ("shares" layout),
reward 1e-4 x the change of the account value, train from 2009-01-01 on a growing window, retrain
every 63 trading days, validate on the 63 days before, trade 2016-01-04 .. 2020-05-08 with the agent
of the best validation Sharpe among PPO, A2C and DDPG; turbulence threshold from the in-sample
period (to 2015-09-30).

Budget (`yang.timesteps`, env steps per seed and quarter): the authors' 100k (PPO), 30k (A2C) and
10k (DDPG) steps; 3 agents x 5 seeds x 18 quarters fit the 30-minute budget on a 2-core CPU
(BUILD_NOTES, "yang2020 reproduction")."""

import ml_collections

from jaxtrade.train.config import base_config


def get_config():
    cfg = base_config()
    cfg.protocol = "jaxtrade.pipeline.papers.yang2020"
    cfg.paper = "yang2020"
    cfg.seed = 0
    cfg.seeds = 5
    cfg.data.train = cfg.data.val = cfg.data.test = None        # the protocol cuts the quarters
    cfg.env.action_space = "shares"
    cfg.env.window = 1                                           # the state: the day before's indicators
    cfg.env.episode_length = 252
    cfg.env.hmax = 100.0
    cfg.env.initial_cash = 1_000_000.0
    cfg.env.costs.update(dict(commission_bps=10.0, spread_bps=0.0, slippage_bps=0.0, impact_model="none",
                              regulatory_fees="none"))
    cfg.env.reward.update(dict(log_return_weight=0.0, value_change_weight=1e-4))
    # Stable-Baselines' MlpPolicy as the authors used it: two hidden layers of 64, no memory.
    cfg.model.update(dict(core="mlp", hidden_dim=64, encoder_layers=2, n_layers=1, head_layers=0))
    cfg.ppo.update(dict(n_envs=8, n_steps=64, n_minibatches=4, update_epochs=4, critic_epochs=1,
                        ent_coef=0.005, actor_lr=3e-4, critic_lr=1e-3, total_updates=100))
    cfg.a2c.update(dict(n_envs=8, n_steps=16))
    cfg.ddpg.update(dict(n_envs=8, n_steps=16, buffer_size=16384, batch_size=128, learning_starts=512,
                         utd_ratio=0.125, exploration_noise=0.3))
    cfg.yang = ml_collections.ConfigDict(dict(
        agents=("ppo", "a2c", "ddpg"),
        tie_order=("ppo", "ddpg", "a2c"),  # equal validation Sharpes: the authors' PPO >= both, A2C > both
        symbols="",                      # comma-separated subset of the dataset's symbols; "" = all
        start="2009-01-01",
        in_sample_end="2015-09-30",      # the turbulence threshold and the normalization are fitted here
        trade_start="2016-01-04",
        trade_end="2020-05-08",
        rebalance=63,
        validation=63,
        turbulence_quantile=0.9,
        cov_window=252,                  # minimum variance: the covariance window in days
        max_quarters=0,                  # 0 = every quarter of the trading period
        # env steps per seed and quarter: the authors' (models.py: PPO 100k, A2C 30k, DDPG 10k)
        timesteps=ml_collections.ConfigDict(dict(ppo=100_000, a2c=30_000, ddpg=10_000)),
    ))
    return cfg


def reduced_config():
    """The by-seed test's protocol: two stocks, two seeds, two quarters, a few hundred steps."""
    cfg = get_config()
    cfg.seeds = 2
    cfg.yang.symbols = "AAPL,JNJ"
    cfg.yang.max_quarters = 2
    cfg.yang.timesteps = ml_collections.ConfigDict(dict(ppo=512, a2c=256, ddpg=256))
    cfg.yang.cov_window = 60
    cfg.env.episode_length = 32
    cfg.model.hidden_dim = 16
    cfg.ppo.update(dict(n_envs=4, n_steps=16, n_minibatches=2, update_epochs=1))
    cfg.a2c.update(dict(n_envs=4, n_steps=16))
    cfg.ddpg.update(dict(n_envs=4, n_steps=16, buffer_size=512, batch_size=32, learning_starts=64))
    return cfg

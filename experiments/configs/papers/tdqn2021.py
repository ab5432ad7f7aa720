"""Théate & Ernst (2021), "An Application of Deep Reinforcement Learning to Algorithmic Trading" (TDQN),
Expert Systems with Applications 173, 114632 (arXiv 2004.06627): `python -m experiments.reproduce
--paper=tdqn2021` (protocol: `jaxtrade.pipeline.papers.tdqn2021`).

Every paper config has `protocol` (the module whose run(config, workdir) writes the report) and `seeds`
(seeds per agent; --seeds overrides it). A reduced run: --config.instruments=AAPL,TSLA --seeds=2
--config.iterations.dqn=2 --config.iterations.ppo=2 --config.iterations.a2c=2.
"""

import ml_collections

from jaxtrade.data.tdqn2021 import SYMBOLS


def get_config():
    cfg = ml_collections.ConfigDict()
    cfg.protocol = "jaxtrade.pipeline.papers.tdqn2021"
    cfg.seeds = 5
    cfg.seed = 0                            # seeds seed .. seed + seeds - 1
    cfg.instruments = tuple(SYMBOLS)        # the paper's 30, in its table order
    cfg.train_end = "2017-12-31"            # training 2012-01-01 .. this
    # The test files' rows: their first `window` rows are only observed. They end on 2019-12-31 but Hong
    # Kong's, which hold 2020-01-02 too (yfinance's end 2020-1-1 in local time); their test env trades
    # every row of the file, so this protocol does (0700.HK and 0939.HK's B&H then match the paper).
    cfg.test = ("2018-01-01", "2020-01-02")
    cfg.initial_cash = 100_000.0
    cfg.commission_bps = 10.0               # 0.1% of traded value per trade, nothing else
    cfg.window = 30                         # rows of history in the state
    cfg.short_margin = 0.1                  # their epsilon: the price rise a short must survive
    cfg.ma_bounds = (1, 30)                 # TF/MR grid: 1 <= short < long < 30 (406 pairs)
    cfg.episode_length = 128                # training episodes (random starts)
    cfg.agents = ("dqn", "ppo", "a2c")
    cfg.iterations = ml_collections.ConfigDict(dict(dqn=40, ppo=40, a2c=40))
    cfg.model = ml_collections.ConfigDict(dict(core="mlp", hidden_dim=64, encoder_layers=2, head_layers=1,
                                               dropout=0.0))
    cfg.agent_overrides = ml_collections.ConfigDict(dict(
        dqn=dict(n_envs=8, n_steps=32, buffer_size=8192, batch_size=64, learning_starts=256, utd_ratio=0.125,
                 gamma=0.4, total_updates=40, epsilon_fraction=0.5, lr=1e-3),
        ppo=dict(n_envs=8, n_steps=64, n_minibatches=2, update_epochs=2, critic_epochs=1),
        a2c=dict(n_envs=8, n_steps=32),
    ))
    return cfg

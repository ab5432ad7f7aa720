"""Issue 12's in-sample target on a reduced budget: on sp500-20's regimes, five seeds trained as one
population beat the best constant policy of their own action space (choose a regime on the first
day and hold it) on the data they were trained on, median over the seeds.

Reduced from the default experiment so it fits CI: two training years (2013-2014) instead of six, a
64-unit network, 16 envs x 64 steps x 30 iterations per seed (30,720 env steps), learning rates
1e-3 / 3e-3. The full figure (six years, default budget, 5 seeds) is in BUILD_NOTES."""

import pandas as pd
import pytest

from experiments.configs import smoke
from jaxtrade.train import train


@pytest.mark.slow
def test_five_seeds_beat_the_best_constant_policy_in_sample(tmp_path):
    cfg = smoke.get_config()
    cfg.data.train = ("2013-01-01", "2014-12-31")
    cfg.model.hidden_dim = 64
    cfg.env.episode_length = 128
    cfg.ppo.update(n_envs=16, n_steps=64, n_minibatches=4, update_epochs=4, critic_epochs=2,
                   actor_lr=1e-3, critic_lr=3e-3)
    cfg.train.update(iterations=30, eval_every=30, checkpoint_every=30, n_devices=1, tensorboard=False,
                     in_sample_report=True, seeds=5)
    result = train(cfg, str(tmp_path), verbosity="quiet")
    assert result.compiles == 1
    table = pd.read_csv(tmp_path / "in_sample.csv", index_col="split")
    train_row = table.loc["train"]
    assert train_row["n_seeds"] == 5
    # The best "choose and hold" regime on 2013-2014 with the gate off (measured: EQUAL_WEIGHT, 1.753).
    assert train_row["best_constant"] == "regime_EQUAL_WEIGHT"
    assert abs(train_row["best_constant_sharpe"] - 1.753) < 5e-3
    # Measured at this budget: median 2.241 [2.048, 2.420]; 20 iterations gave 1.632 (not enough).
    assert train_row["agent_median"] >= train_row["best_constant_sharpe"], train_row.to_dict()
    assert bool(train_row["beats"])

"""Issue 12's in-sample target on a reduced budget: on sp500-20's regimes, seeds trained as one
population beat the best constant policy of their own action space (choose a regime on the first
day and hold it, back in after a gated day) on the data they were trained on, median over the seeds.

Reduced from the default experiment so it fits CI: two training years (2013-2014) instead of six, a
64-unit network, 16 envs x 64 steps x 40 iterations per seed (40,960 env steps), learning rates
1e-3 / 3e-3, five seeds. The constant rules trade in the agent's world, its turbulence gate on
(re-entering after a gated day). Measured under the suite's XLA flags (tests/conftest.py): median 2.371
[2.038, 3.167] against the best constant's 2.228 (gate off: 1.753); earlier, with dropout in PPO's
update passes and gate-free constants, 2.117 [1.891, 2.703] against 1.753; at 30 iterations the
median was 1.536 (and 2.241 at the default LLVM optimization: at 30 iterations the verdict hung on
the seeds' luck, so the budget was raised). The test can fail. The full figure (six years, default
budget, 5 seeds) is in BUILD_NOTES."""

import pytest

from experiments.configs import smoke
from jaxtrade.train import artifact, evaluation, setup, train


@pytest.mark.slow
def test_seeds_beat_the_best_constant_policy_in_sample(tmp_path):
    cfg = smoke.get_config()
    cfg.data.train = ("2013-01-01", "2014-12-31")
    cfg.model.hidden_dim = 64
    cfg.env.episode_length = 128
    cfg.ppo.update(n_envs=16, n_steps=64, n_minibatches=4, update_epochs=4, critic_epochs=2,
                   actor_lr=1e-3, critic_lr=3e-3)
    cfg.train.update(iterations=40, eval_every=40, checkpoint_every=40, n_devices=1, tensorboard=False,
                     final_report=False, seeds=5)
    result = train(cfg, str(tmp_path), verbosity="quiet")
    assert result.compiles == 1
    policies = [artifact.load_model(str(tmp_path / "checkpoints" / f"seed_{s}" / "best_composite"))[0]
                for s in range(5)]
    table = evaluation.in_sample_comparison(setup.build(cfg), policies, splits=("train",))
    row = table.loc["train"]
    assert row["n_seeds"] == 5
    # The best "choose and hold" regime on 2013-2014 in the agent's world, its gate on (measured:
    # SIZE_SMALL, 2.228: getting back in after each gated day beats holding through); gate off, the
    # labelled reference, EQUAL_WEIGHT 1.753.
    assert row["best_constant"] == "regime_SIZE_SMALL"
    assert abs(row["best_constant_sharpe"] - 2.228) < 5e-3
    assert row["best_constant_no_gate"] == "regime_EQUAL_WEIGHT"
    assert abs(row["best_constant_no_gate_sharpe"] - 1.753) < 5e-3
    # Measured at this budget: 5 seeds 2.371 [2.038, 3.167] (PPO without dropout in its passes;
    # 2.117 [1.891, 2.703] with it); 30 iterations gave 1.536 (not enough).
    assert row["agent_median"] >= row["best_constant_sharpe"], row.to_dict()
    assert bool(row["beats"])

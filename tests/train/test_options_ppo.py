"""Issue 13: a short PPO run on the options env (S&P 500 + VIX, 91 masked actions) beats a uniformly
random masked policy by more than 2 standard errors over 5 seeds, on the validation year (2017).

Small on purpose (an MLP encoder over the window, a 32-unit GRU, 16 envs x 32 steps x 12 iterations
per seed, one population): what it checks is that PPO, the masked logits and the env's rewards fit
together so that learning moves the policy the right way, not the CLSTM's quality."""

import jax
import numpy as np
import pytest

from experiments.configs import options_quick
from jaxtrade import eval as evaluate
from jaxtrade.eval.baselines import random_policy
from jaxtrade.train import artifact, setup, train


@pytest.mark.slow
def test_short_ppo_beats_random_masked_policy_by_two_standard_errors(tmp_path):
    cfg = options_quick.get_config()
    cfg.model.update(encoder="mlp", core="gru", hidden_dim=32, encoder_layers=1)
    cfg.ppo.update(n_envs=16, n_steps=32, n_minibatches=2, update_epochs=2, critic_epochs=1)
    cfg.env.episode_length = 32
    cfg.train.update(iterations=12, eval_every=4, checkpoint_every=12, seeds=5, n_devices=1,
                     tensorboard=False, final_report=False, in_sample_report=False)
    result = train(cfg, str(tmp_path), verbosity="quiet")
    assert result.compiles == 1
    s = setup.build(cfg)
    params, split = s.val_params, s.splits.val
    growth = lambda frame: float(np.log(frame["value"].iloc[-1] / frame["value"].iloc[0]))
    agent = []
    for seed in range(5):
        policy, _ = artifact.load_model(str(tmp_path / "checkpoints" / f"seed_{seed}" / "best_composite"))
        agent.append(growth(evaluate.backtest(policy, s.test_env, params, dates=split.dates)))
    rand = [growth(evaluate.backtest(random_policy(s.test_env), s.test_env, params, dates=split.dates,
                                     key=jax.random.key(100 + k))) for k in range(5)]
    agent, rand = np.array(agent), np.array(rand)
    se = np.sqrt(agent.var(ddof=1) / 5 + rand.var(ddof=1) / 5)
    assert agent.mean() - rand.mean() > 2 * se, (agent, rand, se)

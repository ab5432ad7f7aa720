"""`jaxtrade.train.offline`: a run's models found from its workdir, one seed or several
(`run_artifacts`, `evaluate_run`: `experiments.evaluate --workdir`), and a path that is no model refused
with the models that do exist (`require_artifact`: also `experiments.paper_trade --model`).

The runs are laid out by hand from untrained smoke-config models (no training): seed_<s>/best_<metric>
as `train.seeds = 2` writes them, or best_<metric> as one seed does (`loop.best_directory`).
"""

import shutil

import jax
import pandas as pd
import pytest

from jaxtrade.train import artifact, offline


@pytest.fixture(scope="module")
def two_seed_run(tmp_path_factory):
    """A workdir as a 2-seed run leaves it: checkpoints/seed_{0,1}/best_{composite,sharpe} and `latest`."""
    from experiments.configs import smoke
    from jaxtrade.agents import ppo
    from jaxtrade.train import loop
    from jaxtrade.train import setup as setup_lib

    config = smoke.get_config()
    s = setup_lib.build(config)
    agent = ppo.make(config, s.env)
    workdir = tmp_path_factory.mktemp("runs") / "two_seeds"
    for seed in (0, 1):
        params = agent.init_params(jax.random.key(seed), s.train_params)
        spec = loop.model_spec(s, agent, {}, code_version="test", seed=seed)
        for metric in ("composite", "sharpe"):
            best = workdir / "checkpoints" / f"seed_{seed}" / f"best_{metric}"
            artifact.save_model(str(best), params, spec)
    (workdir / "checkpoints" / "latest" / "1").mkdir(parents=True)      # Orbax state: never listed
    return workdir


def test_evaluate_run_evaluates_every_seed_of_a_multi_seed_workdir(two_seed_run, tmp_path):
    ckpts = two_seed_run / "checkpoints"
    seeds = [str(ckpts / "seed_0" / "best_composite"), str(ckpts / "seed_1" / "best_composite")]
    assert offline.run_artifacts(str(two_seed_run)) == seeds
    assert offline.run_artifacts(str(ckpts)) == seeds                  # its checkpoints directory too
    assert offline.run_artifacts(str(two_seed_run), "sharpe") == [p.replace("composite", "sharpe")
                                                                     for p in seeds]
    md = offline.evaluate_run(str(two_seed_run), out_dir=str(tmp_path / "eval"), n_boot=20)
    table = pd.read_csv(tmp_path / "eval" / "report.csv", index_col="policy")
    assert table.loc["ppo_agent", "n_seeds"] == 2                    # one row over both seeds
    text = open(md).read()
    assert all(p in text for p in seeds)                             # the notes name both models


def test_one_seed_run_and_a_workdir_holding_both_layouts(two_seed_run, tmp_path):
    one = tmp_path / "one_seed"
    shutil.copytree(two_seed_run / "checkpoints" / "seed_0", one / "checkpoints")
    assert offline.run_artifacts(str(one)) == [str(one / "checkpoints" / "best_composite")]
    shutil.copytree(two_seed_run / "checkpoints" / "seed_1", one / "checkpoints" / "seed_1")
    with pytest.raises(ValueError, match=r"both a one-seed run's best_composite and seeds \[1\]"):
        offline.run_artifacts(str(one))
    with pytest.raises(FileNotFoundError, match="holds no best_win_rate model.*seed_1/best_sharpe"):
        offline.run_artifacts(str(one), "win_rate")


def test_a_missing_model_path_lists_the_artifacts_that_exist(two_seed_run, tmp_path):
    wrong = two_seed_run / "checkpoints" / "best_composite"          # a one-seed path, on a 2-seed run
    with pytest.raises(FileNotFoundError) as e:
        offline.require_artifact(str(wrong))
    msg = str(e.value)
    assert msg.startswith(f"{wrong} is not a model artifact (no such directory); the model artifacts "
                          f"under {two_seed_run} are checkpoints/seed_0/best_composite, "
                          "checkpoints/seed_0/best_sharpe, checkpoints/seed_1/best_composite, "
                          "checkpoints/seed_1/best_sharpe (")
    assert "latest" not in msg
    with pytest.raises(FileNotFoundError, match="not a model artifact.*checkpoints/seed_1/best_composite"):
        offline.evaluate_model(str(two_seed_run))
    with pytest.raises(FileNotFoundError, match=f"{tmp_path / 'nowhere'} does not exist"):
        offline.require_artifact(str(tmp_path / "nowhere" / "checkpoints" / "best_composite"))
    # load_model itself (the README's Python example) names what exists too
    with pytest.raises(FileNotFoundError, match="it has no spec.json; the model artifacts under .* are "
                                                "checkpoints/seed_0/best_composite"):
        artifact.load_model(str(two_seed_run / "checkpoints"))

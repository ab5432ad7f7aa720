"""train.max_device_memory_gb: the footprint is measured from compiled iterations and caps n_envs."""


import jax

from experiments.configs import smoke
from jaxtrade.train import setup as setup_lib


def test_footprint_is_measured_and_grows_with_envs():
    cfg = smoke.get_config()
    cfg.model.core = "mlp"            # the footprint is the env's and the rollout's; a cheaper compile
    s = setup_lib.build(cfg)
    fixed, per_env = setup_lib.measure_footprint(cfg, s.env, s.train_params, s.devices[:1])
    assert fixed > 0
    # An env carries at least its state, observation and rollout of n_steps observations.
    obs_floats = cfg.env.window * s.train_params.obs_table.shape[1]
    assert per_env > cfg.ppo.n_steps * obs_floats * 4 * 0.5
    assert per_env < 2**30


def test_cap_cuts_n_envs_and_budget(monkeypatch, run_log):
    gib = 2**30
    monkeypatch.setattr(setup_lib, "measure_footprint", lambda *a, **k: (0.25 * gib, gib / 1024))
    cfg = smoke.get_config()
    cfg.ppo.n_envs = 4096
    cfg.train.max_device_memory_gb = 1.0
    s = setup_lib.build(cfg)
    assert s.n_envs == 768   # (1 - 0.25) GiB / (1/1024 GiB), a multiple of n_minibatches=2
    assert s.config.ppo.n_envs == 4096                    # the user's config is not written into
    assert s.make_agent().n_envs == 768
    assert s.budget.steps_per_iteration == 768 * cfg.ppo.n_steps * jax.local_device_count()
    assert "n_envs cut from 4096 to 768" in run_log.text

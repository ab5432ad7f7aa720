"""The experiment config: seed, agent, model, one section per registered agent, data, env, train.

`base_config()` holds `agent.name` (default "ppo"), the shared `model` section, every registered
agent's own section (`ppo`, `a2c`, `dqn`, ...: so `--config.agent.name=dqn --config.dqn.lr=1e-4`
works from the command line) and the data, env and train sections, with defaults that work on
bundled data; experiment files in `experiments/configs/` start from it and change a few fields.
"""

from __future__ import annotations

import ml_collections
from ml_collections import config_dict

from jaxtrade import envs
from jaxtrade.agents import registry as agents
from jaxtrade.models import default_model_config
from jaxtrade.train.metrics import DEFAULT_COMPOSITE_WEIGHTS

# load_csv's keyword arguments besides `format` (jaxtrade/data/loaders.py), each a typed placeholder
# of data.csv_options so that it can be set from the command line.
CSV_OPTION_TYPES = dict(date_column=str, date_format=str, tz=str, sep=str, decimal=str, thousands=str,
                        symbol=str, symbols=tuple, benchmark_column=str, max_gap=int, leading=str,
                        periods_per_year=float, na_values=tuple)

# Env keys whose default None means "decided from the data": their types, for CLI overrides.
_DATA_DECIDED = {"turbulence_threshold": float, "impact_model": str, "strike_increment": float}


def env_config(name: str, **overrides) -> ml_collections.ConfigDict:
    """The nested `env` section of environment `name`: every key of `envs.default_config(name)`
    (its own keys, then `costs` and `reward`), so each is overridable from the command line, e.g.
    `--config.env.costs.spread_bps=1.0`; keys decided from the data are typed placeholders. An env
    that offers an action space per action kind starts at `action_space="auto"` (chosen for the
    agent by `train.setup`, `envs.choose_action_space`)."""

    def convert(d):
        out = {}
        for k, v in d.items():
            if isinstance(v, dict):
                out[k] = ml_collections.ConfigDict(convert(v))
            elif v is None:
                out[k] = config_dict.placeholder(_DATA_DECIDED[k])
            else:
                out[k] = v
        return out

    defaults = envs.default_config(name)
    if envs.registration(name).action_spaces:
        defaults["action_space"] = envs.registry.AUTO
    cfg = ml_collections.ConfigDict(convert(defaults))
    cfg.update(overrides)
    return cfg


def base_config() -> ml_collections.ConfigDict:
    cfg = ml_collections.ConfigDict()
    cfg.seed = 0
    cfg.agent = ml_collections.ConfigDict(dict(name=agents.DEFAULT_AGENT))   # registry.registered()
    cfg.model = default_model_config()
    for name in agents.registered():
        cfg[name] = agents.default_config(name)
    cfg.data = ml_collections.ConfigDict(dict(
        dataset="sp500-20",                    # a bundled dataset (jaxtrade.data.list_datasets())
        csv_path=config_dict.placeholder(str),  # or a CSV file of your own (wins over dataset)
        # every keyword argument of jaxtrade.data.load_csv (unset ones take load_csv's defaults), e.g.
        # --config.data.csv_options.tz=EET for a MetaTrader 5 export in broker time,
        # --config.data.csv_options.date_format=%d/%m/%Y, --config.data.csv_options.symbols=AAPL,MSFT
        csv_options=ml_collections.ConfigDict(dict(
            format="auto", **{k: config_dict.placeholder(t) for k, t in CSV_OPTION_TYPES.items()})),
        # split dates (start, end), either side None for open; on the command line
        # --config.data.train=2009-01-01,2014-12-31 (experiments/common.py, split_dates)
        train=("2009-01-01", "2014-12-31"),
        val=("2015-01-01", "2015-12-31"),
        test=("2016-01-01", "2022-12-28"),
        turbulence_quantile=0.99,               # gate threshold: this quantile of the train split
    ))
    # action_space "auto" (env_config's default): the regimes for agents that act in discrete actions
    # (PPO, A2C, DQN), the continuous weights for those that only act in continuous ones (DDPG, TD3,
    # SAC); set it to choose (envs.choose_action_space).
    cfg.env = env_config("portfolio", episode_length=256, window=30)
    cfg.train = ml_collections.ConfigDict(dict(
        total_timesteps=config_dict.placeholder(int),  # first of these three that is set wins
        episodes=config_dict.placeholder(int),          # x env.episode_length env steps
        iterations=config_dict.placeholder(int),        # x n_envs x n_steps x devices env steps
        seeds=1,                                        # K > 1: seeds seed .. seed+K-1 as one population
        n_devices=config_dict.placeholder(int),         # default: every local device
        max_device_memory_gb=config_dict.placeholder(float),
        eval_every=5,
        checkpoint_every=5,
        log_every=5,
        patience=0,                                     # evaluations without gain; 0 disables
        min_delta=0.0,
        composite=dict(DEFAULT_COMPOSITE_WEIGHTS),
        tensorboard=True,
        mlflow_uri=config_dict.placeholder(str),        # e.g. file:./mlruns (the mlflow extra); unset: off
        mlflow_experiment="jaxtrade",
        final_report=True,
        in_sample_report=True,                          # report.md: agent vs best constant policy, train/val
        bootstrap_samples=1000,
    ))
    return cfg

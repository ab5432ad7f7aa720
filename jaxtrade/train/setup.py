"""`build(config) -> Setup`: the one place an experiment config becomes objects. It resolves and never
mutates: the config that goes in is the config that is saved.

1. Data: a bundled dataset (`data.dataset`) or a user CSV (`data.csv_path`, `data.csv_options`).
2. A `Preprocessor` fitted once, on the training split only (normalization, turbulence threshold,
   window).
3. Splits cut by date, each carrying the history rows the env needs (`envs.history_rows`: the
   window, and the ADV window where the impact model reads volume), so `env.window=5` on a file
   with volume simply works.
4. The training environment (random episode starts) and, for validation (`val_env`) and test
   (`test_env`), the same environment over the whole split (`random_start=False`). What the env
   decided from the training data (every config value left None: the gate threshold, the impact
   model) is written into `Setup.env_config`, the resolved env config the model artifact saves and
   every later split's env is made from (never refitted on later data).
5. The budget (iterations x env steps of the config's agent), after `train.max_device_memory_gb` may
   have capped the agent's envs per device (`Setup.n_envs`; the config keeps the user's value).

`train`, `evaluate`, `baselines`, the notebooks and the benchmarks all start here.
"""

from __future__ import annotations

import dataclasses
import logging
from typing import Any

import jax
import ml_collections

from jaxtrade import envs
from jaxtrade.agents import registry as agents
from jaxtrade.agents.devices import pmap_devices, select_devices
from jaxtrade.data import Preprocessor, load_csv, load_dataset
from jaxtrade.data.envdata import pad_rows
from jaxtrade.data.preprocess import fit_split
from jaxtrade.train import budget as budget_lib

log = logging.getLogger("jaxtrade")


@dataclasses.dataclass
class Setup:
    """Everything built from the config before the first iteration.

    env: the training env (auto-reset, random starts); val_env / test_env: the same env for
    whole-split backtests (None where the split is not configured); train/val/test_params: env params
    per split; env_config: the resolved env config (plain dict: the user's, with what was decided
    from the training data filled in); n_envs: the agent's envs per device after the memory cap.
    """

    config: ml_collections.ConfigDict   # the user's, unchanged
    market: Any                       # the host-side MarketData
    preprocessor: Preprocessor
    splits: Any                       # jaxtrade.data.Splits
    env: Any
    train_params: Any
    val_env: Any
    val_params: Any
    test_env: Any
    test_params: Any
    devices: list                     # this process's devices (a multi-process run spans more)
    budget: budget_lib.Budget
    env_config: dict
    n_envs: int

    @property
    def agent_name(self) -> str:
        return agents.agent_name(self.config)

    def agent_config(self) -> ml_collections.ConfigDict:
        """A copy of the config for building the agent: the agent's n_envs as resolved (capped)."""
        cfg = ml_collections.ConfigDict(self.config.to_dict())
        agents.section(cfg)["n_envs"] = int(self.n_envs)
        return cfg

    def make_agent(self):
        """The config's agent (`config.agent.name`) for the training env."""
        return agents.make_agent(self.agent_config(), self.env, env_name=self.env_config["name"])

    @property
    def n_devices(self) -> int:
        return len(self.devices)

    def split_params(self, name: str):
        return {"train": self.train_params, "val": self.val_params, "test": self.test_params}[name]

    def split_env(self, name: str):
        return {"train": self.env, "val": self.val_env, "test": self.test_env}[name]


def load_market_data(data_cfg):
    """The config's data source: a bundled dataset name or a user CSV (`data.csv_path`).

    data_cfg: the `data` section, a ConfigDict or a plain dict (a model artifact's `spec.data`)."""
    if data_cfg.get("csv_path"):
        options = {k: v for k, v in dict(data_cfg.get("csv_options") or {}).items() if v is not None}
        return load_csv(data_cfg["csv_path"], **options)
    return load_dataset(data_cfg["dataset"])


def env_dict(config_env, **changes) -> dict:
    """The nested env config as a plain dict (what `envs.make` and model artifacts take)."""
    d = config_env.to_dict() if hasattr(config_env, "to_dict") else dict(config_env)
    d.update(changes)
    return d


def env_config_of(config) -> dict:
    """The run's nested env config as a plain dict, with `env.action_space="auto"` chosen for the
    config's agent (`envs.choose_action_space` with the agent registration's action kinds)."""
    cfg = env_dict(config.env)
    kinds = agents.registration(agents.agent_name(config)).action_kinds
    return envs.choose_action_space(cfg["name"], cfg, kinds)


def make_split_env(env_cfg: dict, split):
    """(env, params) for one deterministic episode over the whole of `split` (a `Split`)."""
    cfg = dict(env_cfg, random_start=False)
    return envs.make(cfg["name"], split.to_device(), cfg)


def split_ranges(data_cfg) -> dict:
    """{"train": (start, end), "val": ... or None, "test": ... or None} from the data config."""
    rng = lambda k: tuple(data_cfg[k]) if data_cfg.get(k) else None
    return {"train": rng("train"), "val": rng("val"), "test": rng("test")}


def build(config, *, market=None, train_rows: int | None = None) -> Setup:
    """Data, Preprocessor, splits, environments and budget of one run (see the module docstring).

    `config` is not modified. market: the MarketData to use instead of loading `config.data`
    (walk-forward loads it once). train_rows: pad the training split's device arrays to this many
    rows (`pad_rows`), so training windows of different lengths share one compiled iteration
    (walk-forward's expanding folds).
    """
    d = config.data
    md = load_market_data(d) if market is None else market
    cfg = env_config_of(config)
    window = int(cfg["window"])
    ranges = split_ranges(d)
    # The Preprocessor is fitted once; its window is the history rows every split (and every later cut
    # of the saved model's data: evaluation, live bars) carries, what the env needs.
    lookback = max(window, envs.history_rows(cfg["name"], cfg, has_volume=md.volume is not None))
    pre, splits = fit_split(md, train=ranges["train"], val=ranges["val"], test=ranges["test"],
                            lookback=lookback, turbulence_quantile=d.turbulence_quantile)
    train_data = splits.train.to_device()
    if train_rows is not None:
        train_data = pad_rows(train_data, int(train_rows))
    env, train_params = envs.make(cfg["name"], train_data, cfg)
    # What make decided from the training split (None keys) is fixed for validation, test and the saved
    # model's spec: never refitted on later data.
    resolved = envs.resolve_config(cfg["name"], cfg, train_params)
    val_env, val_params, test_env, test_params = None, None, None, None
    if splits.val is not None:
        val_env, val_params = make_split_env(resolved, splits.val)
    if splits.test is not None:
        test_env, test_params = make_split_env(resolved, splits.test)
    devices = select_devices(config.train.get("n_devices"))
    name = agents.agent_name(config)
    section = agents.section(config, name)
    n_envs = int(section.n_envs)
    if config.train.get("max_device_memory_gb"):
        fixed, per_env = measure_footprint(config, env, train_params, devices)
        n_envs = budget_lib.cap_n_envs(
            n_envs, max_gb=config.train.max_device_memory_gb, fixed_bytes=fixed,
            bytes_per_env=per_env, multiple_of=int(section.get("n_minibatches", 1)))
    b = budget_lib.resolve_budget(
        total_timesteps=config.train.total_timesteps, episodes=config.train.episodes,
        iterations=config.train.iterations, n_envs=n_envs, n_steps=int(section.n_steps),
        n_devices=len(pmap_devices(devices)), episode_length=config.env.episode_length)
    return Setup(config, md, pre, splits, env, train_params, val_env, val_params, test_env, test_params,
                 devices, b, resolved, n_envs)


def measure_footprint(config, env, env_params, devices) -> tuple[float, float]:
    """(fixed bytes, bytes per environment) of one device's training iteration of the config's agent,
    fitted from the compiled memory analysis (arguments + outputs + temporaries - donated aliases) at
    two sizes.

    The two sizes are n_envs/8 and n_envs/4 (rounded to multiples of the agent's n_minibatches, where
    it has one), close enough to the configured size for a linear fit and cheap to compile.
    """
    section = agents.section(config)
    m = int(section.get("n_minibatches", 1))
    small = max(m, (int(section.n_envs) // 8) // m * m)
    sizes, totals = (small, 2 * small), []
    for n in sizes:
        cfg = ml_collections.ConfigDict(config.to_dict())
        agents.section(cfg)["n_envs"] = n
        agent = agents.make_agent(cfg, env)
        state = agent.init(jax.random.key(0), env_params, devices)
        stats = agent.make_iteration().lower(state, env_params).compile().memory_analysis()
        totals.append(stats.argument_size_in_bytes + stats.output_size_in_bytes
                      + stats.temp_size_in_bytes - stats.alias_size_in_bytes)
    per_env = max((totals[1] - totals[0]) / (sizes[1] - sizes[0]), 1.0)
    fixed = max(totals[0] - per_env * sizes[0], 0.0)
    log.info("measured footprint per device: %.2f MiB fixed + %.3f MiB per environment",
             fixed / 2**20, per_env / 2**20)
    return fixed, per_env

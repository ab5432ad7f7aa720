"""`build(config) -> Setup`: the one place an experiment config becomes objects.

1. Data: a bundled dataset (`data.dataset`) or a user CSV (`data.csv_path`, `data.csv_options`).
2. A `Preprocessor` fitted on the training split only (normalization, turbulence threshold, window).
3. Splits cut by date, each carrying exactly `env.window` history rows (the lookback derives from
   the window; it is written once, in `config.env.window`).
4. The training environment (random episode starts) and, for validation and test, the same
   environment over the whole split (`random_start=False`), all from `config.env` through
   `envs.make`.
5. The budget (iterations x env steps), after `train.max_device_memory_gb` may have cut n_envs.

`train`, `evaluate`, `baselines`, the notebooks and the benchmarks all start here.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
from typing import Any

import jax
import ml_collections

from jaxtrade import envs
from jaxtrade.agents.devices import pmap_devices, select_devices
from jaxtrade.data import Preprocessor, load_csv, load_dataset, split
from jaxtrade.data.envdata import pad_rows
from jaxtrade.train import budget as budget_lib

log = logging.getLogger("jaxtrade")


@dataclasses.dataclass
class Setup:
    """Everything built from the config before the first iteration.

    env: the training env (auto-reset, random starts); eval_env: the same env for whole-split
    backtests; train/val/test_params: env params per split (val/test None when not configured).
    """

    config: ml_collections.ConfigDict
    market: Any                       # the host-side MarketData
    preprocessor: Preprocessor
    splits: Any                       # jaxtrade.data.Splits
    env: Any
    train_params: Any
    eval_env: Any
    val_params: Any
    test_params: Any
    devices: list                     # this process's devices (a multi-process run spans more)
    budget: budget_lib.Budget

    @property
    def n_devices(self) -> int:
        return len(self.devices)

    def split_params(self, name: str):
        return {"train": self.train_params, "val": self.val_params, "test": self.test_params}[name]


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

    `config` is not modified, except `ppo.n_envs` when `train.max_device_memory_gb` cuts it.
    market: the MarketData to use instead of loading `config.data` (walk-forward loads it once).
    train_rows: pad the training split's device arrays to this many rows (`pad_rows`), so training
    windows of different lengths share one compiled iteration (walk-forward's expanding folds).
    """
    d = config.data
    md = load_market_data(d) if market is None else market
    window = int(config.env.window)
    ranges = split_ranges(d)
    pre = Preprocessor.fit(md, train=ranges["train"], window=window,
                        turbulence_quantile=d.turbulence_quantile)
    splits = split(md, train=ranges["train"], val=ranges["val"], test=ranges["test"], lookback=window,
                   turbulence_quantile=d.turbulence_quantile)
    cfg = env_dict(config.env)
    train_data = splits.train.to_device()
    if train_rows is not None:
        train_data = pad_rows(train_data, int(train_rows))
    env, train_params = envs.make(cfg["name"], train_data, cfg)
    if cfg["name"] == "options" and cfg.get("turbulence_threshold") is None:
        # The options gate's threshold is fitted by make on the data it gets: the training split's,
        # then fixed for validation, test and the saved model's spec (never refitted on later data).
        cfg["turbulence_threshold"] = float(train_params.turbulence_threshold)
        with config.unlocked() if hasattr(config, "unlocked") else contextlib.nullcontext():
            config.env.turbulence_threshold = cfg["turbulence_threshold"]
    eval_env, val_params, test_params = None, None, None
    if splits.val is not None:
        eval_env, val_params = make_split_env(cfg, splits.val)
    if splits.test is not None:
        eval_env, test_params = make_split_env(cfg, splits.test)
    devices = select_devices(config.train.get("n_devices"))
    if config.train.get("max_device_memory_gb"):
        fixed, per_env = measure_footprint(config, env, train_params, devices)
        config.ppo.n_envs = budget_lib.cap_n_envs(
            config.ppo.n_envs, max_gb=config.train.max_device_memory_gb, fixed_bytes=fixed,
            bytes_per_env=per_env, multiple_of=config.ppo.n_minibatches)
    b = budget_lib.resolve_budget(
        total_timesteps=config.train.total_timesteps, episodes=config.train.episodes,
        iterations=config.train.iterations, n_envs=config.ppo.n_envs, n_steps=config.ppo.n_steps,
        n_devices=len(pmap_devices(devices)), episode_length=config.env.episode_length)
    return Setup(config, md, pre, splits, env, train_params, eval_env, val_params, test_params, devices, b)


def measure_footprint(config, env, env_params, devices) -> tuple[float, float]:
    """(fixed bytes, bytes per environment) of one device's training iteration, fitted from the
    compiled memory analysis (arguments + outputs + temporaries - donated aliases) at two sizes.

    The two sizes are n_envs/8 and n_envs/4 (rounded to multiples of n_minibatches), close enough to
    the configured size for a linear fit and cheap to compile.
    """
    from jaxtrade.agents import ppo

    m = config.ppo.n_minibatches
    small = max(m, (config.ppo.n_envs // 8) // m * m)
    sizes, totals = (small, 2 * small), []
    for n in sizes:
        cfg = ml_collections.ConfigDict(config.to_dict())
        cfg.ppo.n_envs = n
        agent = ppo.make(cfg, env)
        state = agent.init(jax.random.key(0), env_params, devices)
        stats = agent.make_iteration().lower(state, env_params).compile().memory_analysis()
        totals.append(stats.argument_size_in_bytes + stats.output_size_in_bytes
                      + stats.temp_size_in_bytes - stats.alias_size_in_bytes)
    per_env = max((totals[1] - totals[0]) / (sizes[1] - sizes[0]), 1.0)
    fixed = max(totals[0] - per_env * sizes[0], 0.0)
    log.info("measured footprint per device: %.2f MiB fixed + %.3f MiB per environment",
             fixed / 2**20, per_env / 2**20)
    return fixed, per_env

"""The environment registry and the nested env config it checks.

    env, params = envs.make("portfolio", data, config.env)

1. `config` is a nested mapping (an `ml_collections.ConfigDict` or a dict; None = all defaults):
   the env's own keys (`window`, `episode_length`, `random_start`, ... and env-specific ones such
   as `action_space`), then one sub-mapping per param group the env names: `costs` (the fields of
   `CostParams`) and `reward` (the fields of `RewardParams`). A key `name` is accepted and must
   equal the name asked for.
2. Every key is checked before anything is built: an unknown one raises ValueError naming its
   full dotted path (`env.costs.spred_bps`) and the known keys of its group. No key is routed by
   its field name alone, so a new cost or reward term never becomes a global name.
3. The env's factory gets `(data, config)` with `config` a plain nested dict of checked keys,
   and returns `(env, params)`; `make` returns them as they are (the factories wrap the core env
   in `EpisodeStats(AutoReset(...))`).
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable, Iterable, Mapping
from typing import Any

from jaxtrade.envs.costs import CostParams
from jaxtrade.envs.lots import LotParams
from jaxtrade.envs.rewards import RewardParams

# Param groups an env may name: config key -> the params class whose fields are its keys.
PARAM_GROUPS: dict[str, type] = {"costs": CostParams, "reward": RewardParams, "lots": LotParams}


@dataclasses.dataclass(frozen=True)
class Registration:
    """One registered environment."""

    name: str
    factory: Callable[[Any, dict], tuple[Any, Any]]   # (data, checked config) -> (env, params)
    param_groups: tuple[str, ...]                      # sub-mappings of the config, PARAM_GROUPS keys
    defaults: dict                                     # the env's own top-level keys -> default

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(self.defaults)


_REGISTRY: dict[str, Registration] = {}


def register(name: str, factory: Callable[[Any, dict], tuple[Any, Any]], *,
             param_groups: Iterable[str] = ("costs", "reward"), defaults: Mapping[str, Any] = {}) -> None:
    """Register `factory(data, config) -> (env, params)` as environment `name`.

    param_groups: the config's sub-mappings (names in `PARAM_GROUPS`); defaults: the env's own
    top-level config keys (everything that is not a group) and their defaults (None: the factory
    decides from the data). Re-registering a name replaces it.
    """
    groups = tuple(param_groups)
    unknown = [g for g in groups if g not in PARAM_GROUPS]
    if unknown:
        raise ValueError(f"environment {name!r}: unknown param groups {unknown}; "
                         f"known: {sorted(PARAM_GROUPS)}")
    defaults = dict(defaults)
    clash = sorted(set(defaults) & set(groups) | ({"name"} & set(defaults)))
    if clash:
        raise ValueError(f"environment {name!r}: keys {clash} clash with its param groups or 'name'")
    _REGISTRY[name] = Registration(name, factory, groups, defaults)


def registered() -> tuple[str, ...]:
    """The names of every registered environment, sorted."""
    return tuple(sorted(_REGISTRY))


def registration(name: str) -> Registration:
    if name not in _REGISTRY:
        raise ValueError(f"unknown environment {name!r}; registered: {list(registered())}")
    return _REGISTRY[name]


def group_defaults(group: str) -> dict:
    """{field: default} of param group `group` (None: decided from the data by `make`)."""
    return {f.name: f.default for f in dataclasses.fields(PARAM_GROUPS[group])}


def default_config(name: str) -> dict:
    """The whole nested config of environment `name` with every key at its default, as a plain dict:
    {"name": name, <own keys>, <group>: {<field>: default}}. None: decided from the data by `make`.
    Experiment configs start from it, so that every key is overridable from the command line."""
    reg = registration(name)
    return {"name": name, **reg.defaults, **{g: group_defaults(g) for g in reg.param_groups}}


def plain(config) -> dict:
    """A plain nested dict of `config` (ConfigDict, FrozenConfigDict, mapping or None)."""
    if config is None:
        return {}
    if hasattr(config, "to_dict"):
        config = config.to_dict()
    if not isinstance(config, Mapping):
        raise ValueError(f"env config must be a mapping (ConfigDict or dict), got {type(config).__name__}")
    return {str(k): (plain(v) if isinstance(v, Mapping) or hasattr(v, "to_dict") else v)
            for k, v in config.items()}


def check_config(name: str, config=None) -> dict:
    """`config` as a plain nested dict whose every key environment `name` knows (ValueError naming
    the first unknown dotted key `env.<group>.<key>` and the known keys of that group otherwise)."""
    reg = registration(name)
    cfg = plain(config)
    if "name" in cfg and cfg.pop("name") != name:
        raise ValueError(f"env.name is {plain(config)['name']!r} but make was asked for {name!r}")
    out = {}
    for key, value in cfg.items():
        if key in reg.param_groups:
            fields = sorted(f.name for f in dataclasses.fields(PARAM_GROUPS[key]))
            if not isinstance(value, Mapping):
                raise ValueError(f"env.{key} must be a mapping of {PARAM_GROUPS[key].__name__} fields "
                                 f"({fields}), got {value!r}")
            for sub in value:
                if sub not in fields:
                    raise ValueError(f"unknown env config key 'env.{key}.{sub}' for environment "
                                     f"{name!r}; known keys of env.{key}: {fields}")
            out[key] = dict(value)
        elif key in reg.keys:
            out[key] = value
        else:
            raise ValueError(f"unknown env config key 'env.{key}' for environment {name!r}; known keys "
                             f"of env: {sorted(reg.keys)}, groups: {list(reg.param_groups)}")
    return out


def make(name: str, data, config=None):
    """(env, params) of registered environment `name` on `data` (an `EnvData`), from the nested
    `config` (see the module docstring); env is `EpisodeStats(AutoReset(core))`."""
    reg = registration(name)
    return reg.factory(data, check_config(name, config))

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
4. A registration owns what is specific to its env, so that nothing outside `envs/` asks which env
   it holds (`registration_of(env)` finds it from the core env's `registry_name`):
   - `history_rows(config, has_volume)`: the history rows a split must carry (default: the window);
   - `resolve(config, params)`: the config with what `make` decided from the data filled in
     (default: every key left None takes the value the params hold, e.g. the gate threshold fitted
     on the training split and the impact model chosen from the data);
   - `baselines(env, params, split, history, cov_window)`: its baseline runs {name: (policy, env,
     params)}; `constant_policies(env, params)`: the constant rules of its action space;
   - `hold_action(config)`: the discrete action that keeps the book (ensemble ties);
   - `describe_costs(params)`: the sentence a report states its costs with;
   - `traded_symbols(config, symbols)`: the symbols a live executor trades (None: not traded live);
   - `action_spaces`: {action kind ("discrete", "continuous"): the value of its `action_space` key
     that gives that kind}, for an env with more than one. `env.action_space="auto"` takes the first
     kind the agent supports (`choose_action_space`, called by `jaxtrade.train.setup` with the
     agent registration's `action_kinds`): the same experiment config trains PPO on the portfolio
     env's regimes and SAC on its weights.
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
    history_rows: Callable[[dict, bool], int] | None = None
    resolve: Callable[[dict, Any], dict] | None = None
    baselines: Callable | None = None
    constant_policies: Callable | None = None
    hold_action: Callable[[dict], int] | None = None
    describe_costs: Callable[[Any], str] | None = None
    traded_symbols: Callable[[dict, tuple], tuple] | None = None
    action_spaces: Mapping[str, str] | None = None

    @property
    def keys(self) -> tuple[str, ...]:
        return tuple(self.defaults)


_REGISTRY: dict[str, Registration] = {}


def register(name: str, factory: Callable[[Any, dict], tuple[Any, Any]], *,
             param_groups: Iterable[str] = ("costs", "reward"), defaults: Mapping[str, Any] = {},
             **hooks) -> None:
    """Register `factory(data, config) -> (env, params)` as environment `name`.

    param_groups: the config's sub-mappings (names in `PARAM_GROUPS`); defaults: the env's own
    top-level config keys (everything that is not a group) and their defaults (None: the factory
    decides from the data); hooks: the optional knowledge of point 4 of the module docstring.
    Re-registering a name replaces it.
    """
    known = {f.name for f in dataclasses.fields(Registration)} - {"name", "factory", "param_groups",
                                                                  "defaults"}
    bad = sorted(set(hooks) - known)
    if bad:
        raise ValueError(f"environment {name!r}: unknown registration hooks {bad}; known: {sorted(known)}")
    groups = tuple(param_groups)
    unknown = [g for g in groups if g not in PARAM_GROUPS]
    if unknown:
        raise ValueError(f"environment {name!r}: unknown param groups {unknown}; "
                         f"known: {sorted(PARAM_GROUPS)}")
    defaults = dict(defaults)
    clash = sorted(set(defaults) & set(groups) | ({"name"} & set(defaults)))
    if clash:
        raise ValueError(f"environment {name!r}: keys {clash} clash with its param groups or 'name'")
    _REGISTRY[name] = Registration(name, factory, groups, defaults, **hooks)


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


AUTO = "auto"


def make(name: str, data, config=None):
    """(env, params) of registered environment `name` on `data` (an `EnvData`), from the nested
    `config` (see the module docstring); env is `EpisodeStats(AutoReset(core))`."""
    reg = registration(name)
    cfg = check_config(name, config)
    if cfg.get("action_space") == AUTO:
        raise ValueError(f"env.action_space='auto' is chosen from the agent's action kinds "
                         f"(envs.choose_action_space, which jaxtrade.train.setup calls); give environment "
                         f"{name!r} one of {sorted((reg.action_spaces or {}).values())} to make it directly")
    return reg.factory(data, cfg)


def choose_action_space(name: str, config, kinds) -> dict:
    """`config` as a plain dict, with `action_space="auto"` replaced by the value of the first of
    `kinds` (an agent's action kinds, in its order of preference) that environment `name` offers;
    any other value is kept. ValueError naming the env, the kinds and what it offers otherwise."""
    cfg = plain(config)
    if cfg.get("action_space") != AUTO:
        return cfg
    offered = dict(registration(name).action_spaces or {})
    for kind in kinds:
        if kind in offered:
            return dict(cfg, action_space=offered[kind])
    raise ValueError(f"env.action_space='auto': environment {name!r} offers {offered or 'no choice'} and "
                     f"the agent acts in {list(kinds)}; set env.action_space or choose another agent")


def registration_of(env) -> Registration:
    """The registration of the env `env` was made as (its core env's `registry_name`)."""
    core = getattr(env, "unwrapped", env)
    name = getattr(core, "registry_name", None)
    if name is None:
        raise ValueError(f"{type(core).__name__} is not a registered environment (no registry_name); "
                         f"registered: {list(registered())}")
    return registration(name)


def hook(env_or_name, what: str):
    """Registration hook `what` of an env (object or name); ValueError naming the env if it has none."""
    reg = registration(env_or_name) if isinstance(env_or_name, str) else registration_of(env_or_name)
    fn = getattr(reg, what)
    if fn is None:
        raise ValueError(f"environment {reg.name!r} registers no {what.replace('_', ' ')}")
    return fn


def history_rows(name: str, config, *, has_volume: bool) -> int:
    """Rows of history each split must carry before its first traded row for env `name` with `config`."""
    reg = registration(name)
    cfg = check_config(name, config)
    if reg.history_rows is not None:
        return int(reg.history_rows(cfg, has_volume))
    return int(cfg.get("window", reg.defaults.get("window", 1)))


def _resolved_from_params(config: dict, params) -> dict:
    """Every None leaf of the (nested) config replaced by the params' attribute of that name (or its
    group's), as a plain number or string."""
    def value(x):
        if hasattr(x, "shape") and not isinstance(x, str):
            return float(x) if getattr(x, "ndim", 0) == 0 else x
        return x

    out = {}
    for key, v in config.items():
        if isinstance(v, Mapping):
            sub = getattr(params, key, None)
            out[key] = _resolved_from_params(dict(v), sub) if sub is not None else dict(v)
        elif v is None and hasattr(params, key):
            out[key] = value(getattr(params, key))
        else:
            out[key] = v
    return out


def resolve_config(name: str, config, params) -> dict:
    """The plain env config of `name` with what `make` decided from the data (its None keys) filled in
    from `params`: the config a model artifact saves and every later split's env is made from."""
    reg = registration(name)
    cfg = dict(default_config(name), **{k: v for k, v in plain(config).items()})
    for g in reg.param_groups:
        cfg[g] = dict(group_defaults(g), **plain(config).get(g, {}))
    cfg["name"] = name
    if reg.resolve is not None:
        return reg.resolve(cfg, params)
    return _resolved_from_params(cfg, params)

"""The agent registry: one name -> one algorithm (rejax's `get_algo` is the outside example).

    agent = make_agent(config, env)              # by config.agent.name (default "ppo")
    section = default_config("dqn")              # the agent's own config section (config.dqn)
    registered()                                 # ('a2c', 'dqn', 'ppo')
    policy = policy_from_spec(spec, params)      # a saved model's Policy from its ModelSpec alone

1. A registration names the agent, its config section (`config.<name>`, the same word), the
   factory `make(config, env) -> Agent`, the `default_config()` of that section, the rebuild
   `policy_from_spec(model_config, action_spec, params, deterministic) -> Policy` that a model
   artifact needs (no env), the action-spec kinds it supports (`discrete`, `continuous`) and the
   keys of its section that are learning rates (the first is the primary one: walk-forward phases
   set it and scale the others with it), and its default search space (traced hyperparameter ->
   "float:LOW:HIGH" | "log:LOW:HIGH": what `pipeline.search` searches when `search.space` is empty).
2. `make_agent` checks the env's action spec against the supported kinds and fails with one line
   naming the env, its action spec and the agents that do support it.
3. Every agent section has `n_envs` (environments per device) and `n_steps` (env steps per
   environment and iteration): the budget and the memory cap read them and nothing else.
4. Nothing outside `agents/` imports a specific agent: the frame asks this module.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Callable

import ml_collections

from jaxtrade.agents.base import action_spec_of
from jaxtrade.envs.base import DiscreteSpec, Policy

DEFAULT_AGENT = "ppo"


@dataclasses.dataclass(frozen=True)
class AgentRegistration:
    name: str
    make: Callable | None                   # (config, env) -> Agent; None: not trained (ensemble)
    default_config: Callable[[], ml_collections.ConfigDict] | None   # the config.<name> section
    policy_from_spec: Callable              # (ModelSpec, params, deterministic) -> Policy
    action_kinds: tuple[str, ...]           # "discrete" and/or "continuous"
    lr_keys: tuple[str, ...]                # learning-rate keys of the section; [0] is the primary
    summary: str = ""                       # one line for the README's agent table and --help
    search_space: dict = dataclasses.field(default_factory=dict)   # default search.space (point 1)

    @property
    def trainable(self) -> bool:
        return self.make is not None


_REGISTRY: dict[str, AgentRegistration] = {}


def register(name: str, *, make: Callable | None, default_config: Callable | None,
             policy_from_spec: Callable, action_kinds, lr_keys=(), summary: str = "",
             search_space=None) -> None:
    """Register agent `name` (re-registering replaces it). `jaxtrade/agents/__init__.py` registers the
    built-in ones, so importing anything from `jaxtrade.agents` fills the registry."""
    kinds = tuple(action_kinds)
    bad = sorted(set(kinds) - {"discrete", "continuous"})
    if bad or not kinds:
        raise ValueError(f"agent {name!r}: action_kinds must be a non-empty subset of "
                         f"('discrete', 'continuous'), got {kinds}")
    _REGISTRY[name] = AgentRegistration(name, make, default_config, policy_from_spec, kinds,
                                        tuple(lr_keys), summary, dict(search_space or {}))


def registered(trainable: bool = True) -> tuple[str, ...]:
    """Every registered agent name, sorted (trainable ones only unless trainable=False)."""
    return tuple(sorted(n for n, r in _REGISTRY.items() if r.trainable or not trainable))


def registration(name: str) -> AgentRegistration:
    if name not in _REGISTRY:
        raise ValueError(f"unknown agent {name!r} (config.agent.name); registered: {list(registered())}")
    return _REGISTRY[name]


def trainable(name: str) -> AgentRegistration:
    reg = registration(name)
    if not reg.trainable:
        raise ValueError(f"agent {name!r} is not trained by the loop; config.agent.name takes one of "
                         f"{list(registered())}")
    return reg


def agent_name(config) -> str:
    """config.agent.name, "ppo" where the config has no agent section (configs of earlier slices)."""
    agent = config.get("agent", None) if hasattr(config, "get") else None
    name = agent.get("name", None) if agent is not None else None
    return str(name or DEFAULT_AGENT)


def default_config(name: str) -> ml_collections.ConfigDict:
    """The default config.<name> section of agent `name`."""
    return trainable(name).default_config()


def section(config, name: str | None = None):
    """The config section of the config's agent (or of `name`): config.ppo, config.dqn, ..."""
    name = name or agent_name(config)
    if name not in config:
        raise ValueError(f"config.agent.name={name!r} but the config has no '{name}' section; start the "
                         "config from jaxtrade.train.config.base_config(), which holds every agent's section")
    return config[name]


def action_kind(action_spec) -> str:
    return "discrete" if isinstance(action_spec, DiscreteSpec) else "continuous"


def check_supports(name: str, env, env_name: str | None = None) -> None:
    """ValueError (one line) unless agent `name` supports `env`'s action spec."""
    reg = registration(name)
    spec = action_spec_of(env)
    kind = action_kind(spec)
    if kind not in reg.action_kinds:
        fits = [n for n in registered() if kind in _REGISTRY[n].action_kinds]
        where = f"env {env_name!r}" if env_name else "the env"
        raise ValueError(f"agent {name!r} needs {' or '.join(reg.action_kinds)} actions, but {where} has "
                         f"{spec}; agents for {kind} actions: {fits}")


def make_agent(config, env, *, env_name: str | None = None):
    """The agent `config.agent.name` for `env`, hyperparameters, model and optimizer built once."""
    name = agent_name(config)
    check_supports(name, env, env_name)
    return trainable(name).make(config, env)


def policy_from_spec(spec, params, deterministic: bool = True) -> Policy:
    """A saved model's Policy from its `ModelSpec` (`spec.agent` picks the rebuild) and params alone
    (an ensemble's registration rebuilds its members through this function again)."""
    if spec.agent not in _REGISTRY:
        raise ValueError(f"unknown agent {spec.agent!r} in the artifact; known: {list(registered(False))}")
    return _REGISTRY[spec.agent].policy_from_spec(spec, params, deterministic)

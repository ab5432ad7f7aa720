"""The `Agent` protocol every learning agent implements, and how populations run.

    agent = registry.make_agent(config, env)      # by config.agent.name; built once
    state = agent.init(key, env_params, devices)  # pytree, leading device axis [n_devices, ...]
    iterate = agent.make_iteration()              # one jax.pmap over the devices
    state, metrics = iterate(state, env_params)   # metrics: dict of [n_devices] or [n_devices, k]
    params = agent.params(state)                  # device 0's network params (devices.first_device)
    policy = agent.policy(params)                 # envs.base.Policy: key-first act, plus dist

1. `metrics` hold every `TradingStats` field (summed over the rollout and all devices),
   `env_steps`, and the agent's `diagnostics`: health metrics (approx_kl, clip_frac, ...) that go
   to the logs and never into model selection. With k iterations per call
   (`<agent>.iterations_per_call`) every metric is [n_devices, k].
2. `model_config` (plain dict), `action_spec` and `obs_spec` are all a saved model needs besides its
   params: `registry.policy_from_spec(spec, params)` rebuilds the policy with no env.
3. Populations (one generic mechanism: a population axis right after the device axis). Traced
   hyperparameters are pytree leaves of the state, so K members -- different seeds and/or settings,
   the same static shapes -- train in one compile:

       hparams = agent.stack_hparams([...K settings...])       # leaves [K]
       state = agent.init_population(keys [K], env_params, hparams, devices)  # leaves [n_dev, K, ...]
       iterate = agent.make_population_iteration()             # pmap over devices of vmap over K
       state, metrics = iterate(state, env_params)             # metrics [n_dev, K] or [n_dev, K, k]
       params = agent.params(state)                            # leaves [K, ...]

   Member i equals a single run from `agent.init(keys[i], env_params, devices, hparams=member i)`
   (to float tolerance: vmap may reorder summations). Devices still average gradients inside each
   member, so a population on 4 devices is 4 x n_envs envs per member.
   `agent.init_seeds(seeds, env_params, devices)` is the population of one member per seed with the
   config's settings (what `train.seeds` trains: many seeds as one run).
"""

from __future__ import annotations

from typing import Any, Protocol, runtime_checkable

from jaxtrade.envs.base import ContinuousSpec, DiscreteSpec


@runtime_checkable
class Agent(Protocol):
    """What `train.loop.run`, walk-forward, search and hybrids call: nothing more, nothing less.

    Every agent keeps its state as a pytree with a leading device axis (a population: [n_dev, K, ...]);
    its traced hyperparameters are a flax struct dataclass of float32 leaves inside that state."""

    name: str                                 # the registry name, recorded in every artifact
    model_config: dict                        # plain dict: with action_spec all a saved model needs
    action_spec: Any
    obs_spec: Any
    diagnostics: tuple[str, ...]              # health metrics: logs only, never model selection
    hparams: Any                              # the config's traced hyperparameters (struct dataclass)
    frozen: tuple[str, ...]                   # parameter modules never updated
    n_envs: int                               # environments per device
    compiles: int                             # traces of the training iteration so far

    def env_steps_per_iteration(self, n_devices: int) -> int: ...

    def hparam_names(self) -> tuple[str, ...]: ...           # the traced hyperparameters, by name

    def stack_hparams(self, members) -> Any: ...             # K settings -> leaves [K]

    def init(self, key, env_params, devices=None, hparams=None) -> Any: ...

    def init_population(self, keys, env_params, hparams, devices=None) -> Any: ...

    def init_seeds(self, seeds, env_params, devices=None) -> Any: ...

    def make_iteration(self, devices=None): ...

    def make_population_iteration(self, devices=None): ...

    def params(self, state) -> Any: ...

    def opt_state(self, state) -> Any: ...                   # device 0's optimizer state

    def with_params(self, state, params, opt_state=None) -> Any: ...

    def with_encoder(self, state, encoder_params) -> Any: ...

    def policy(self, params, deterministic: bool = True): ...

    def static_key(self, config) -> Any: ...          # equal keys: one agent, one compile serves both

    def hparams_from(self, config) -> Any: ...         # the traced hyperparameters a config sets

    def to_checkpoint(self, state) -> Any: ...         # what `latest` saves of the state (PPO: all)

    def from_checkpoint(self, state, restored) -> Any: ...   # a state from what to_checkpoint saved


def action_spec_of(env):
    """env.action_spec; derived from env.discrete / env.action_dim for envs that predate specs."""
    spec = getattr(env, "action_spec", None)
    if spec is not None:
        return spec
    return DiscreteSpec(int(env.action_dim)) if env.discrete else ContinuousSpec((int(env.action_dim),))
